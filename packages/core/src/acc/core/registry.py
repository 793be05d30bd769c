"""Finding backends by URL scheme, and turning URL queries into options.

Backend packages register their :class:`~acc.core.CacheBackend` subclass under the
``acc.backends`` entry-point group, named by the URL scheme they handle::

    [project.entry-points."acc.backends"]
    sqlite = "acc.backends.sqlite:SQLiteBackend"

``CacheBackend.from_url("sqlite:///cache.db")`` (and a session's ``cache="..."``) then
finds the class with :func:`resolve_backend_class` and calls its own ``from_url``. Entry
points are read on first use, not at import, and read again when a scheme is not found
(a package installed meanwhile is picked up).

:func:`parse_url_options` converts ``?expire_after=3600&busy_timeout=5`` into keyword
arguments of the types a constructor's signature asks for, so every adapter's
``from_url`` accepts options the same way.
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlsplit

from acc.core.errors import ConfigError

if TYPE_CHECKING:
    from importlib.metadata import EntryPoint

    from acc.core.backend import CacheBackend

__all__ = [
    "ENTRY_POINT_GROUP",
    "KNOWN_SCHEMES",
    "backend_from_url",
    "installed_schemes",
    "invalidate_cache",
    "parse_url_options",
    "resolve_backend_class",
    "url_scheme",
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

_CLONE_INSTALL_HINT = (
    "(until the acc packages are on PyPI, install from a clone of acc: `hatch run dist:build`"
    ", then\n    pip install --find-links dist {package})"
)
"""How to install a first-party package from a clone, in the missing-backend error."""

_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*\Z")
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


def url_scheme(url: str) -> str:
    """Return the lower-cased scheme of ``url``.

    Raises:
        ConfigError: ``url`` is not a string with a scheme (``scheme://...``).
    """
    if not isinstance(url, str):
        raise ConfigError("url", f"expected a URL string, not {type(url).__name__}")
    scheme, sep, _rest = url.partition(":")
    if not sep or not _SCHEME.match(scheme):
        raise ConfigError(
            "url",
            f"{url!r} is not a backend URL; expected scheme://..., for example "
            "sqlite:///http-cache.sqlite or memory://",
        )
    return scheme.lower()


def _missing(scheme: str) -> ConfigError:
    installed = ", ".join(installed_schemes()) or "none"
    package = KNOWN_SCHEMES.get(scheme)
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
    kwargs = parse_url_options(parts.query, cls, skip=("cache_name",))
    kwargs.update(options)
    if name:
        kwargs.setdefault("cache_name", name)
    return cls(**kwargs)


# -- query options --------------------------------------------------------------------------

_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"0", "false", "no", "off"})
_NONE = frozenset({"none", "null"})
_SEQUENCES = frozenset(
    {"Iterable", "Sequence", "Collection", "list", "tuple", "set", "frozenset", "List", "Tuple"}
)

_Converter = Callable[[str, list[str]], Any]


def _split_top(text: str, separator: str) -> list[str]:
    """Split ``text`` on ``separator`` outside brackets."""
    parts: list[str] = []
    depth = 0
    current: list[str] = []
    for char in text:
        if char == "[":
            depth += 1
        elif char == "]":
            depth -= 1
        if char == separator and depth == 0:
            parts.append("".join(current).strip())
            current = []
        else:
            current.append(char)
    parts.append("".join(current).strip())
    return [part for part in parts if part]


def _type_names(annotation: Any) -> list[str]:
    """The members of a union annotation, as names (``"int"``, ``"Iterable[str]"``)."""
    if annotation is inspect.Parameter.empty:
        return []
    text = annotation if isinstance(annotation, str) else inspect.formatannotation(annotation)
    text = re.sub(r"\b(?:typing|collections\.abc|datetime|builtins)\.", "", text)
    text = text.replace(" ", "")
    names: list[str] = []
    for member in _split_top(text, "|"):
        outer, _, inner = member.partition("[")
        if outer in ("Optional", "Union") and inner:
            names.extend(_type_names(inner[:-1].replace(",", "|")))
            if outer == "Optional":
                names.append("None")
        else:
            names.append(member)
    return names


def _to_bool(name: str, raw: str) -> bool:
    value = raw.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ConfigError(name, f"expected true or false in the URL query, not {raw!r}")


def _to_number(name: str, raw: str, *, integer: bool, real: bool) -> int | float:
    text = raw.strip()
    if integer:
        try:
            return int(text)
        except ValueError:
            if not real:
                raise ConfigError(
                    name, f"expected an integer in the URL query, not {raw!r}"
                ) from None
    try:
        return float(text)
    except ValueError:
        raise ConfigError(name, f"expected a number in the URL query, not {raw!r}") from None


def _to_expiration(name: str, raw: str) -> Any:
    text = raw.strip()
    if text.lower() in _NONE or text.lower() == "never":
        return None
    try:
        return _to_number(name, text, integer=True, real=True)
    except ConfigError:
        pass
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        raise ConfigError(
            name, f"expected seconds, -1 or an ISO 8601 datetime in the URL query, not {raw!r}"
        ) from None


def _scalar(name: str, raw: str, names: list[str], default: Any) -> Any:
    if "None" in names and raw.strip().lower() in _NONE:
        return None
    if "ExpirationTime" in names:
        return _to_expiration(name, raw)
    if "bool" in names or (not names and isinstance(default, bool)):
        return _to_bool(name, raw)
    integer = "int" in names or (not names and type(default) is int)
    real = "float" in names or (not names and type(default) is float)
    if integer or real:
        return _to_number(name, raw, integer=integer, real=real)
    return raw


def _converter(parameter: inspect.Parameter) -> _Converter:
    names = _type_names(parameter.annotation)
    default = parameter.default
    sequence: list[str] | None = None
    for member in names:
        outer, _, inner = member.partition("[")
        if outer in _SEQUENCES:
            sequence = _type_names(inner[:-1].split(",")[0]) if inner else []
            break
    scalar_too = any(n.partition("[")[0] not in _SEQUENCES for n in names if n != "None")

    def convert(name: str, values: list[str]) -> Any:
        if sequence is not None and not (scalar_too and len(values) == 1 and "," not in values[0]):
            if len(values) == 1 and values[0].strip().lower() in _NONE and "None" in names:
                return None
            items = [item for value in values for item in value.split(",") if item.strip()]
            return [_scalar(name, item.strip(), sequence, None) for item in items]
        if len(values) > 1:
            raise ConfigError(name, f"given {len(values)} times in the URL query")
        return _scalar(name, values[0], names, default)

    return convert


def _keyword_parameters(target: Callable[..., Any]) -> tuple[dict[str, inspect.Parameter], bool]:
    """The keyword parameters of ``target`` (a class: its ``__init__`` chain).

    A class whose ``__init__`` takes ``**kwargs`` hands them to its base class, so the
    base's parameters are collected too. Returns the parameters and whether unknown
    names are accepted anyway (the chain ends in ``**kwargs``).
    """
    functions: list[Callable[..., Any]] = []
    if isinstance(target, type):
        functions = [vars(k)["__init__"] for k in target.__mro__ if "__init__" in vars(k)]
    else:
        functions = [target]
    found: dict[str, inspect.Parameter] = {}
    open_ended = False
    for function in functions:
        try:
            parameters = inspect.signature(function).parameters
        except (TypeError, ValueError):  # a builtin without a signature
            break
        open_ended = False
        for parameter in parameters.values():
            if parameter.kind is inspect.Parameter.VAR_KEYWORD:
                open_ended = True
            elif parameter.kind in (
                inspect.Parameter.POSITIONAL_OR_KEYWORD,
                inspect.Parameter.KEYWORD_ONLY,
            ) and parameter.name not in ("self", "cls"):
                found.setdefault(parameter.name, parameter)
        if not open_ended:
            break
    return found, open_ended


def parse_url_options(
    query: str | Mapping[str, Iterable[str]],
    target: Callable[..., Any],
    *,
    converters: Mapping[str, Callable[[str], Any]] | None = None,
    skip: Iterable[str] = (),
) -> dict[str, Any]:
    """Turn a URL query into keyword arguments for ``target``.

    Each value is converted by the annotation (or, without one, the default) of the
    parameter it names in ``target``'s signature (for a class, its ``__init__`` and the
    base classes' it forwards ``**kwargs`` to):

    * ``bool``: ``true/false``, ``1/0``, ``yes/no``, ``on/off``;
    * ``int``, ``float``: numbers (``int | float`` keeps ``5`` an ``int``);
    * ``ExpirationTime``: seconds, ``-1``, ``never``/``none``, or an ISO 8601 datetime;
    * ``Iterable[X]``, ``Sequence[X]``, ...: comma-separated or repeated values;
    * ``... | None``: ``none`` or ``null`` gives ``None``;
    * anything else: the string, for the constructor to check.

    Args:
        query: The query string (``a=1&b=2``) or an already parsed mapping.
        target: The class or function the options are for.
        converters: Explicit converters by option name, which win over annotations.
        skip: Names that may not be set in the query (they come from elsewhere in the
            URL, like the path).

    Returns:
        The keyword arguments.

    Raises:
        TypeError: An option that ``target`` does not accept.
        ConfigError: A value that cannot be converted; the message names the option.
    """
    if isinstance(query, str):
        parsed: dict[str, list[str]] = parse_qs(query, keep_blank_values=True)
    else:
        parsed = {
            key: [values] if isinstance(values, str) else list(values)
            for key, values in query.items()
        }
    parameters, open_ended = _keyword_parameters(target)
    skipped = set(skip)
    name_of = getattr(target, "__qualname__", repr(target))
    options: dict[str, Any] = {}
    for name, values in parsed.items():
        if name in skipped:
            raise TypeError(f"{name!r} cannot be set in the URL query of {name_of}")
        if converters and name in converters:
            if len(values) > 1:
                raise ConfigError(name, f"given {len(values)} times in the URL query")
            options[name] = converters[name](values[0])
        elif name in parameters:
            options[name] = _converter(parameters[name])(name, values)
        elif open_ended:
            options[name] = values[0] if len(values) == 1 else values
        else:
            known = ", ".join(sorted(set(parameters) - skipped))
            raise TypeError(
                f"{name_of} got an unknown option {name!r} in the URL query; known options: {known}"
            )
    return options
