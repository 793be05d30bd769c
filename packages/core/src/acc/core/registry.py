"""Which class serves a URL scheme, and which package to install when none does.

Backend packages register their :class:`~acc.core.CacheBackend` subclass under the
``acc.backends`` entry-point group, named by the URL scheme they handle::

    [project.entry-points."acc.backends"]
    sqlite = "acc.backends.sqlite:SQLiteBackend"

``CacheBackend.from_url("sqlite:///cache.db")`` (and a session's ``cache="..."``) asks
:func:`resolve_backend_class` for the class of the URL's scheme, then calls its own
``from_url``.

Rules this module keeps:

1. It is a leaf, as fsspec's registry is: a scheme maps to a class *named* by a dotted
   string (:class:`BackendSpec`), imported only when it is asked for. It imports nothing
   of acc but its errors; the façade depends on it, never the reverse (an import-linter
   contract says so), so it does not know what a ``CacheBackend`` is and checks only that
   it found a class.
2. It reads two sources: the ``acc.backends`` entry points of the installed
   distributions (first-party and third-party alike), read on first use, not at import,
   and read again when a scheme is not found (a package installed meanwhile is picked
   up); and :data:`KNOWN_BACKENDS`, the first-party schemes, which names their class and
   the distribution that provides it. An installed distribution's entry point wins.
3. A scheme nobody provides is a :class:`~acc.core.ConfigError` that lists the installed
   schemes and, for a known one, the ``pip install`` line.
"""

from __future__ import annotations

import importlib
import importlib.util
from collections.abc import Mapping
from types import MappingProxyType
from typing import TYPE_CHECKING

import attrs

from acc.core.errors import ConfigError

if TYPE_CHECKING:
    from importlib.metadata import EntryPoint

__all__ = [
    "ENTRY_POINT_GROUP",
    "KNOWN_BACKENDS",
    "BackendSpec",
    "installed_schemes",
    "invalidate_cache",
    "resolve_backend_class",
]

ENTRY_POINT_GROUP = "acc.backends"
"""The entry-point group backends register in, one entry per URL scheme."""


_CLONE_INSTALL_HINT = (
    "(until the acc packages are on PyPI, install from a clone of acc: `hatch run dist:build`"
    ", then\n    pip install --find-links dist {package})"
)
"""How to install a first-party package from a clone, in the missing-backend error."""


@attrs.frozen
class BackendSpec:
    """Where the class of a scheme lives, named, not imported.

    Attributes:
        target: ``"module:attribute"``, as in an entry point.
        package: The distribution that provides it, for ``pip install`` hints.
    """

    target: str
    package: str | None = None

    @property
    def module(self) -> str:
        """The module the class is defined in."""
        return self.target.partition(":")[0]

    def load(self) -> object:
        """Import the module and return the object the target names."""
        module, _, attribute = self.target.partition(":")
        found: object = importlib.import_module(module)
        for name in filter(None, attribute.split(".")):
            found = getattr(found, name)
        return found

    def installed(self) -> bool:
        """Whether the module can be found, without importing it."""
        try:
            return importlib.util.find_spec(self.module) is not None
        except (ImportError, ValueError):  # a parent package is missing, or not a package
            return False


def _first_party(package: str, target: str, *schemes: str) -> dict[str, BackendSpec]:
    return dict.fromkeys(schemes, BackendSpec(target, package))


KNOWN_BACKENDS: Mapping[str, BackendSpec] = MappingProxyType(
    {
        **_first_party("acc-core", "acc.core.backend:CacheBackend", "memory"),
        **_first_party("acc-backend-sqlite", "acc.backends.sqlite:SQLiteBackend", "sqlite"),
        **_first_party(
            "acc-backend-redis",
            "acc.backends.redis:RedisBackend",
            "redis",
            "rediss",
            "unix",
            "redis+cluster",
            "rediss+cluster",
        ),
        **_first_party(
            "acc-backend-mongo", "acc.backends.mongo:MongoDBBackend", "mongodb", "mongodb+srv"
        ),
        **_first_party("acc-backend-dynamodb", "acc.backends.dynamodb:DynamoDBBackend", "dynamodb"),
        **_first_party("acc-backend-filesystem", "acc.backends.filesystem:FileBackend", "file"),
    }
)
"""The first-party schemes: the class that serves each, and the distribution to install."""

_entry_points: dict[str, BackendSpec] | None = None


def _spec(entry_point: EntryPoint) -> BackendSpec:
    dist = getattr(entry_point, "dist", None)
    return BackendSpec(
        f"{entry_point.module}:{entry_point.attr or ''}",
        dist.name if dist is not None else None,
    )


def _scan() -> dict[str, BackendSpec]:
    from importlib.metadata import entry_points  # slow to import: only on first use

    found: dict[str, BackendSpec] = {}
    for entry_point in entry_points(group=ENTRY_POINT_GROUP):
        found.setdefault(entry_point.name.lower(), _spec(entry_point))
    return found


def _registered(*, refresh: bool = False) -> dict[str, BackendSpec]:
    global _entry_points
    if _entry_points is None or refresh:
        _entry_points = _scan()
    return _entry_points


def invalidate_cache() -> None:
    """Forget the entry points read so far; the next lookup reads them again."""
    global _entry_points
    _entry_points = None


def installed_schemes() -> list[str]:
    """The URL schemes a backend is installed for, sorted.

    Those the installed distributions register, and the known schemes whose module can
    be found (in a source checkout that was never installed, say).
    """
    known = {scheme for scheme, spec in KNOWN_BACKENDS.items() if spec.installed()}
    return sorted(known | set(_registered()))


def _missing(scheme: str) -> ConfigError:
    installed = ", ".join(installed_schemes()) or "none"
    known = KNOWN_BACKENDS.get(scheme)
    package = known.package if known is not None else None
    hint = (
        f"; it is provided by {package}:\n    pip install {package}\n"
        f"{_CLONE_INSTALL_HINT.format(package=package)}\n"
        if package
        else "; "
    )
    return ConfigError(
        "url",
        f"no acc backend is installed for the scheme {scheme!r}{hint}"
        f"installed schemes: {installed}",
    )


def resolve_backend_class(scheme: str) -> type:
    """Return the class that serves ``scheme``, importing it.

    Raises:
        ConfigError: No installed package provides ``scheme`` (the message lists the
            installed schemes and, for a known scheme, the ``pip install`` line), or
            what is registered cannot be imported or is not a class.
    """
    scheme = scheme.lower()
    spec = _registered().get(scheme) or _registered(refresh=True).get(scheme)
    if spec is None:
        spec = KNOWN_BACKENDS.get(scheme)
        if spec is None or not spec.installed():
            raise _missing(scheme)
    try:
        loaded = spec.load()
    except Exception as exc:
        hint = f" (reinstall it: pip install {spec.package})" if spec.package else ""
        raise ConfigError(
            "url",
            f"the backend for {scheme!r} ({spec.target}) cannot be imported: {exc!r}{hint}",
        ) from exc
    if not isinstance(loaded, type):
        raise ConfigError("url", f"the backend for {scheme!r} ({spec.target}) is not a class")
    return loaded
