"""Options in a backend URL's query, turned into constructor arguments.

``sqlite:///cache.db?expire_after=3600&busy_timeout=5&allowed_codes=200,404`` gives
``expire_after=3600``, ``busy_timeout=5.0`` and ``allowed_codes=[200, 404]``: every
backend's ``from_url`` calls :func:`parse_url_options` with its options table, so every
backend accepts options the same way.

Rules this module keeps:

1. Options are declared, never guessed. An options table maps each option a URL query
   may set to the type its value becomes; :data:`CACHE_OPTIONS` holds those of
   :class:`~acc.core.CacheBackend`, every backend adds a table of its own (the SQLite
   backend's ``URL_OPTIONS`` is ``{"busy_timeout": float, "fast_save": bool}``).
   Options that only code can give (callables, stores, clients) are in no table.
2. One cattrs converter, :data:`url_converter`, structures the query's strings into
   those types, so a table may use any type it has a hook for: ``str``, ``bool``,
   ``int``, ``float``, :data:`~acc.core.ExpirationTime`, ``list[X]`` (and ``tuple``,
   ``set``, ``frozenset``), ``dict[str, X]``, and unions of them, ``X | None``
   included. A backend with an option of another type registers a hook for it there.
3. The converter only converts; the constructor checks. A value that does not convert
   raises :class:`~acc.core.ConfigError` naming the option, an option the table does not
   have raises ``TypeError`` (as a misspelt keyword does), and the constructor then
   checks the values as it checks keywords.
4. It imports nothing of the façade (:mod:`acc.core.backend`), which depends on it.
"""

from __future__ import annotations

import re
import types
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any, TypeVar, Union, get_args, get_origin
from urllib.parse import parse_qs, unquote, urlsplit

import cattrs

from acc.core.errors import ConfigError
from acc.core.expiration import ExpirationTime

__all__ = [
    "CACHE_OPTIONS",
    "OptionsTable",
    "parse_url_options",
    "register_option_type",
    "local_path_url",
    "url_converter",
    "url_scheme",
]

_T = TypeVar("_T")

OptionsTable = Mapping[str, Any]
"""An options table: option name -> the type (a type form) its value is structured to."""

CACHE_OPTIONS: OptionsTable = types.MappingProxyType(
    {
        "cache_name": str,
        "expire_after": ExpirationTime,
        "allowed_codes": list[int],
        "allowed_methods": list[str],
        "include_headers": bool,
        "match_headers": list[str] | None,
        "ignored_params": list[str],
        "credential_headers": list[str],
        "credential_params": list[str],
        "cache_control": bool,
        "stale_if_error": bool | float,
        "stale_while_revalidate": bool | float,
        "secret_key": str | list[str] | None,
        "store_cookies": bool,
        "autoclose": bool,
        "strict": bool,
        "near_cache": bool | dict[str, int | float],
        "max_body_size": int | None,
        "storage_budget": float | None,
        "breaker_threshold": int | None,
        "breaker_cooldown": float,
        "write_behind": bool | int,
    }
)
"""The options of :class:`~acc.core.CacheBackend` a URL query may set (every backend's)."""

_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*\Z")
_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"0", "false", "no", "off"})
_NONE = frozenset({"none", "null"})
_NEVER = _NONE | {"never"}
_COLLECTIONS: Mapping[Any, Callable[[list[Any]], Any]] = {
    list: list,
    tuple: tuple,
    set: set,
    frozenset: frozenset,
}
_MAPPINGS = (dict, Mapping)


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


def local_path_url(url: str, scheme: str, usage: str) -> tuple[str, str]:
    """Split the URL of a store in a local path (``sqlite:``, ``file:``): its path, its query.

    Three slashes before the path make it relative (``scheme:///x`` -> ``"x"``), four
    absolute (``scheme:////x`` -> ``"/x"``); the path is percent-decoded and may be empty.

    Args:
        url: The backend URL.
        scheme: The scheme it must have.
        usage: The URL forms to suggest when it has a host.

    Raises:
        ConfigError: Another scheme, a host, or a ``#fragment``.
    """
    if url_scheme(url) != scheme:
        raise ConfigError("url", f"expected a {scheme}:// URL, not {url!r}")
    parts = urlsplit(url)
    if parts.netloc:
        raise ConfigError("url", f"{url!r}: a {scheme} URL has no host; use {usage}")
    if parts.fragment:
        raise ConfigError("url", f"{url!r}: a backend URL has no #fragment")
    path = unquote(parts.path)
    return (path[1:] if path.startswith("/") else path), parts.query


# -- the converter ----------------------------------------------------------------------------
#
# What the converter structures is the tuple of strings the query gives an option (one
# per repetition), or one string (an item of a list, a value of a mapping). Hooks raise
# _Invalid or _Repeated; parse_url_options turns them into a ConfigError naming the option.


class _Invalid(ValueError):
    def __init__(self, expected: str, value: str) -> None:
        super().__init__(f"expected {expected} in the URL query, not {value!r}")
        self.expected = expected


class _Repeated(ValueError):
    def __init__(self, count: int) -> None:
        super().__init__(f"given {count} times in the URL query")


def _values(raw: str | Sequence[str]) -> tuple[str, ...]:
    return (raw,) if isinstance(raw, str) else tuple(raw)


def _one(raw: str | Sequence[str]) -> str:
    """The one value of a scalar option; a repeated one is a mistake, not a list."""
    if isinstance(raw, str):
        return raw
    if len(raw) != 1:
        raise _Repeated(len(raw))
    return raw[0]


def _items(raw: str | Sequence[str]) -> list[str]:
    """The items of a list option: comma-separated, repeated, or both; blanks dropped."""
    return [item.strip() for value in _values(raw) for item in value.split(",") if item.strip()]


def _scalar_hook(
    parse: Callable[[str], Any], expected: str
) -> Callable[[str | Sequence[str], Any], Any]:
    def structure(raw: str | Sequence[str], _type: Any) -> Any:
        value = _one(raw)
        try:
            return parse(value)
        except ValueError:
            raise _Invalid(expected, value) from None

    return structure


def _parse_bool(text: str) -> bool:
    word = text.strip().lower()
    if word in _TRUE:
        return True
    if word in _FALSE:
        return False
    raise ValueError(text)


def _parse_expiration(text: str) -> ExpirationTime:
    """Seconds (an ``int`` stays an ``int``), ``-1``/``never``/``none``, or ISO 8601."""
    text = text.strip()
    if text.lower() in _NEVER:
        return None  # NEVER_EXPIRE
    try:
        return int(text)
    except ValueError:
        pass
    try:
        return float(text)
    except ValueError:
        return datetime.fromisoformat(text)


def _is_collection(type_: Any) -> bool:
    return get_origin(type_) in _COLLECTIONS


def _is_mapping(type_: Any) -> bool:
    return get_origin(type_) in _MAPPINGS


def _is_union(type_: Any) -> bool:
    return get_origin(type_) in (Union, types.UnionType)


def _collection_hook(type_: Any) -> Callable[[str | Sequence[str], Any], Any]:
    build = _COLLECTIONS[get_origin(type_)]
    args = get_args(type_)
    item = args[0] if args else str

    def structure(raw: str | Sequence[str], _type: Any) -> Any:
        return build([url_converter.structure(value, item) for value in _items(raw)])

    return structure


def _mapping_hook(type_: Any) -> Callable[[str | Sequence[str], Any], dict[Any, Any]]:
    key_type, value_type = get_args(type_) or (str, str)

    def structure(raw: str | Sequence[str], _type: Any) -> dict[Any, Any]:
        result: dict[Any, Any] = {}
        for pair in _items(raw):
            name, sep, value = pair.partition(":")
            if not sep:
                raise _Invalid("name:value pairs", pair)
            try:
                key = url_converter.structure(name.strip(), key_type)
                result[key] = url_converter.structure(value.strip(), value_type)
            except ValueError as exc:
                expected = getattr(exc, "expected", None) or str(exc)
                raise _Invalid(f"name:value pairs, each value {expected}", pair) from None
        return result

    return structure


def _union_hook(type_: Any) -> Callable[[str | Sequence[str], Any], Any]:
    """Try the members of a union in a fixed order; the first that converts wins.

    ``none``/``null`` is ``None`` when the union allows it. Several values, or a comma,
    try the list and mapping members first; one plain value tries the others first, in
    the order declared (so ``int | float`` keeps ``5`` an ``int`` and ``bool | float``
    reads ``1`` as ``True``).
    """
    members = get_args(type_)
    optional = type(None) in members
    several_first = [m for m in members if _is_collection(m) or _is_mapping(m)]
    one_first = [m for m in members if m is not type(None) and m not in several_first]

    def structure(raw: str | Sequence[str], _type: Any) -> Any:
        values = _values(raw)
        if len(values) > 1:
            if not several_first:
                raise _Repeated(len(values))
            order = several_first
        elif optional and values[0].strip().lower() in _NONE:
            return None
        elif "," in values[0]:
            order = several_first + one_first
        else:
            order = one_first + several_first
        expected: list[str] = []
        for member in order:
            try:
                return url_converter.structure(raw, member)
            except ValueError as exc:
                expected.append(getattr(exc, "expected", None) or str(exc))
        if optional:
            expected.append("none")
        raise _Invalid(", or ".join(expected), ",".join(values))

    return structure


def _make_converter() -> cattrs.Converter:
    converter = cattrs.Converter(detailed_validation=False)
    scalars: list[tuple[type, Callable[[str], Any], str]] = [
        (str, str, "a string"),
        (bool, _parse_bool, "true or false"),
        (int, lambda text: int(text.strip()), "an integer"),
        (float, lambda text: float(text.strip()), "a number"),
    ]
    for type_, parse, expected in scalars:
        converter.register_structure_hook(type_, _scalar_hook(parse, expected))
    # Hooks registered later take precedence in cattrs: the exact ExpirationTime union
    # comes after the generic union rule, so it is not read as a plain union.
    converter.register_structure_hook_factory(_is_collection, _collection_hook)
    converter.register_structure_hook_factory(_is_mapping, _mapping_hook)
    converter.register_structure_hook_factory(_is_union, _union_hook)
    converter.register_structure_hook_func(
        lambda t: t == ExpirationTime,
        _scalar_hook(_parse_expiration, "seconds, -1, never or an ISO 8601 datetime"),
    )
    return converter


url_converter: cattrs.Converter = _make_converter()
"""Structures query strings into the types of options tables.

What it structures is the tuple of strings the query gives an option, or one string (an
item of a list). A backend whose table uses a type of its own teaches it that type with
:func:`register_option_type`.
"""


def register_option_type(type_: type[_T], parse: Callable[[str], _T], expected: str) -> None:
    """Teach :data:`url_converter` a type of option of your own.

    Then a table may use ``type_`` alone, in a ``list[...]``, a ``dict[str, ...]`` or a
    union, like the built-in types.

    Args:
        type_: The type.
        parse: Turns one value of the query into a ``type_``; raises ``ValueError`` for a
            value it cannot convert.
        expected: What a valid value is, for error messages (``"a port number"``).
    """
    url_converter.register_structure_hook(type_, _scalar_hook(parse, expected))


# -- the entry point ------------------------------------------------------------------------


def parse_url_options(
    query: str | Mapping[str, str | Iterable[str]],
    options: OptionsTable | None = None,
    *,
    skip: Iterable[str] = (),
    owner: str = "the backend",
) -> dict[str, Any]:
    """Turn a URL query into keyword arguments for a backend's constructor.

    The query may set the options of :data:`CACHE_OPTIONS` and those of ``options``
    (which win when both name one). Values become the table's types:

    * ``bool``: ``true/false``, ``1/0``, ``yes/no``, ``on/off``;
    * ``int``, ``float``: numbers (``int | float`` keeps ``5`` an ``int``);
    * ``ExpirationTime``: seconds, ``-1``, ``never``/``none``, or an ISO 8601 datetime;
    * ``list[X]`` (``tuple``, ``set``, ``frozenset``): comma-separated or repeated values;
    * ``dict[str, X]``: comma-separated ``name:value`` pairs;
    * ``X | None``: ``none`` or ``null`` gives ``None``;
    * ``str``: the value as it is.

    Args:
        query: The query string (``a=1&b=2``) or an already parsed mapping of values.
        options: The backend's own options table, beside :data:`CACHE_OPTIONS`.
        skip: Options the query may not set, because another part of the URL gives them
            (``cache_name`` from the path, say).
        owner: Who takes the options, for error messages (the class name).

    Returns:
        The keyword arguments: only those the query sets.

    Raises:
        TypeError: An option that is in no table, or in ``skip``.
        ConfigError: A value that does not convert, or a scalar option given more than
            once; the message names the option.
    """
    if isinstance(query, str):
        parsed: dict[str, list[str]] = parse_qs(query, keep_blank_values=True)
    else:
        parsed = {
            name: [values] if isinstance(values, str) else list(values)
            for name, values in query.items()
        }
    skipped = frozenset(skip)
    table = {**CACHE_OPTIONS, **(options or {})}
    kwargs: dict[str, Any] = {}
    for name, values in parsed.items():
        if name in skipped:
            raise TypeError(f"{name!r} cannot be set in the URL query of {owner}")
        if name not in table:
            known = ", ".join(sorted(set(table) - skipped))
            raise TypeError(
                f"{owner} got an unknown option {name!r} in the URL query; "
                f"a URL query may set: {known}"
            )
        try:
            kwargs[name] = url_converter.structure(tuple(values), table[name])
        except ValueError as exc:  # _Invalid, _Repeated, or a backend's own hook's error
            raise ConfigError(name, str(exc)) from None
    return kwargs
