"""Finding backends by URL scheme.

Backend packages register their :class:`~acc.core.CacheBackend` subclass under the
``acc.backends`` entry-point group, named by the URL scheme they handle::

    [project.entry-points."acc.backends"]
    sqlite = "acc.backends.sqlite:SQLiteBackend"

``CacheBackend.from_url("sqlite:///cache.db")`` (and a session's ``cache="..."``) then
finds the class with :func:`resolve_backend_class` and calls its own ``from_url``. Entry
points are read on first use, not at import, and read again when a scheme is not found
(a package installed meanwhile is picked up).

Query options are turned into keyword arguments by :mod:`acc.core.url_options`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from acc.core.errors import ConfigError
from acc.core.url_options import parse_url_options, url_scheme

if TYPE_CHECKING:
    from importlib.metadata import EntryPoint

    from acc.core.backend import CacheBackend

__all__ = [
    "ENTRY_POINT_GROUP",
    "KNOWN_SCHEMES",
    "backend_from_url",
    "installed_schemes",
    "invalidate_cache",
    "resolve_backend_class",
]

ENTRY_POINT_GROUP = "acc.backends"
"""The entry-point group backends register in, one entry per URL scheme."""

KNOWN_SCHEMES: Mapping[str, str] = {
    "memory": "acc-core",
    "sqlite": "acc-backend-sqlite",
    "redis": "acc-backend-redis",
    "rediss": "acc-backend-redis",
    "unix": "acc-backend-redis",
    "redis+cluster": "acc-backend-redis",
    "rediss+cluster": "acc-backend-redis",
    "mongodb": "acc-backend-mongo",
    "mongodb+srv": "acc-backend-mongo",
    "dynamodb": "acc-backend-dynamodb",
}
"""First-party schemes and the distribution that provides each (for error messages)."""

_entry_points: dict[str, EntryPoint] | None = None


# -- entry points ---------------------------------------------------------------------------


def _scan() -> dict[str, EntryPoint]:
    from importlib.metadata import entry_points  # slow to import: only on first use

    found: dict[str, EntryPoint] = {}
    for entry_point in entry_points(group=ENTRY_POINT_GROUP):
        found.setdefault(entry_point.name.lower(), entry_point)
    return found


def _registered(*, refresh: bool = False) -> dict[str, EntryPoint]:
    global _entry_points
    if _entry_points is None or refresh:
        _entry_points = _scan()
    return _entry_points


def invalidate_cache() -> None:
    """Forget the entry points read so far; the next lookup reads them again."""
    global _entry_points
    _entry_points = None


def installed_schemes() -> list[str]:
    """The URL schemes of the installed backends, sorted."""
    return sorted(_registered())


def _missing(scheme: str) -> ConfigError:
    installed = ", ".join(installed_schemes()) or "none"
    package = KNOWN_SCHEMES.get(scheme)
    hint = f"; it is provided by {package}:\n    pip install {package}\n" if package else "; "
    return ConfigError(
        "url",
        f"no acc backend is installed for the scheme {scheme!r}{hint}"
        f"installed schemes: {installed}",
    )


def resolve_backend_class(scheme: str) -> type[CacheBackend]:
    """Return the backend class registered for ``scheme`` in the ``acc.backends`` group.

    Raises:
        ConfigError: No installed package registers ``scheme`` (the message lists the
            installed schemes and, for a first-party scheme, the ``pip install`` line),
            or the registered object cannot be imported or is not a ``CacheBackend``.
    """
    from acc.core.backend import CacheBackend

    scheme = scheme.lower()
    entry_point = _registered().get(scheme)
    if entry_point is None:
        entry_point = _registered(refresh=True).get(scheme)
    if entry_point is None:
        raise _missing(scheme)
    try:
        loaded = entry_point.load()
    except Exception as exc:
        package = KNOWN_SCHEMES.get(scheme)
        hint = f" (reinstall it: pip install {package})" if package else ""
        raise ConfigError(
            "url",
            f"the backend for {scheme!r} ({entry_point.value}) cannot be imported: {exc!r}{hint}",
        ) from exc
    if not (isinstance(loaded, type) and issubclass(loaded, CacheBackend)):
        raise ConfigError(
            "url",
            f"the {scheme!r} entry point {entry_point.value} is not a CacheBackend subclass",
        )
    return loaded


def _inherits_default_from_url(klass: type[CacheBackend]) -> bool:
    from acc.core.backend import CacheBackend

    return getattr(klass.from_url, "__func__", None) is getattr(
        CacheBackend.from_url, "__func__", None
    )


def backend_from_url(url: str, **options: Any) -> CacheBackend:
    """Build the backend a URL names: the class by scheme, then its ``from_url``.

    Args:
        url: For example ``sqlite:///cache.sqlite``, ``redis://localhost:6379/0`` or
            ``memory://``; options may follow in the query string.
        options: Keyword arguments for the backend; they override the query's.

    Raises:
        ConfigError: An unknown scheme or an invalid URL or option value.
        TypeError: An unknown option.
    """
    scheme = url_scheme(url)
    klass = resolve_backend_class(scheme)
    if _inherits_default_from_url(klass):
        # The default implementation dispatches here when called on CacheBackend: call
        # the memory builder directly so a class registered for another scheme without
        # its own from_url cannot loop.
        return default_from_url(klass, url, options, dispatch=False)
    return klass.from_url(url, **options)


def default_from_url(
    cls: type[CacheBackend],
    url: str,
    options: Mapping[str, Any],
    *,
    dispatch: bool = True,
) -> CacheBackend:
    """The implementation of ``CacheBackend.from_url``.

    On ``CacheBackend`` itself any scheme but ``memory`` is dispatched through
    :func:`backend_from_url`; ``memory://[name][?option=value...]`` builds ``cls`` with
    in-memory stores.
    """
    from acc.core.backend import CacheBackend

    scheme = url_scheme(url)
    if scheme != "memory":
        if dispatch and cls is CacheBackend:
            return backend_from_url(url, **options)
        raise ConfigError(
            "url",
            f"{cls.__name__}.from_url() does not handle {scheme}:// URLs; "
            "use CacheBackend.from_url() to pick the backend by scheme",
        )
    parts = urlsplit(url)
    if parts.fragment:
        raise ConfigError("url", f"{url!r}: a backend URL has no #fragment")
    name = (parts.netloc + parts.path).strip("/")
    kwargs = parse_url_options(parts.query, skip=("cache_name",), owner=cls.__name__)
    kwargs.update(options)
    if name:
        kwargs.setdefault("cache_name", name)
    return cls(**kwargs)
