"""Cache keys: which requests share a stored response.

Rules this module keeps:

1. A key is a hash of length-prefixed, type-tagged fields, so no two different field
   lists can produce the same input to the hash (``data={'a': '1'}`` and
   ``json={'a': '1'}`` differ by their tag; ``("ab", "c")`` and ``("a", "bc")`` by their
   lengths).
2. The URL is normalised here, with the standard library, so that the session adapter
   and the façade (``delete_url``, ``has_url``) agree on it: scheme and host in lower
   case, default ports dropped, the fragment dropped, query parameters decoded, sorted
   by name and re-encoded one way. The sort is by name only and stable: the values of a
   repeated name keep their order (``?a=1&a=2`` is not ``?a=2&a=1``: most servers read
   the first), and so do the values of a repeated form field.
3. A request that carries a credential (a header of :data:`CREDENTIAL_HEADERS`:
   ``Authorization``, ``Proxy-Authorization``, ``Cookie`` and the common API-key headers;
   ``auth=``, ``cookies=``; user info; and the headers and query parameters named in
   ``credential_headers``/``credential_params``) is keyed by a hash of that credential, so
   one user is never served another's response. The credential itself never leaves this
   module: the key is a hash, a credential parameter leaves the normalised URL, and
   stored URLs and request headers are redacted.
4. Names in ``ignored_params`` leave the key wherever they appear: query, form fields,
   top-level JSON keys and header names; their values are redacted where stored.
5. Keys are stable across releases. ``tests/core/test_keys.py`` pins sample keys; a
   change that alters them is a breaking change and must bump ``KEY_VERSION``.

Keys are built on every request, hits included, so the common case is memoised: the
normal form of a URL, and the whole key of a request that is nothing but a method and a
URL (no body, no credential, no header that counts). Both are pure functions of their
arguments, held in bounded LRU caches, so a memoised key is the same key, only cheaper.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable
from functools import lru_cache
from typing import Any, Final
from urllib.parse import parse_qsl, quote, urlencode, urlsplit, urlunsplit

import attrs

from acc.core.models import HeaderPairs

__all__ = [
    "CREDENTIAL_HEADERS",
    "KEY_VERSION",
    "REDACTED",
    "CacheRequest",
    "KeySettings",
    "create_key",
    "create_key_unmemoised",
    "credential_digest",
    "key_inputs",
    "normalize_url",
    "redact_headers",
    "redact_url",
]

KEY_VERSION: Final = b"acc-key-2"
"""Mixed into every key. ``acc-key-2``: repeated query parameters and form fields keep
their order (``acc-key-1`` sorted them by value too)."""
REDACTED: Final = "REDACTED"
CREDENTIAL_HEADERS: Final = frozenset(
    {
        "authorization",
        "proxy-authorization",
        "cookie",
        "x-api-key",
        "api-key",
        "x-auth-token",
        "x-access-token",
    }
)
"""Request headers that are credentials by default (lower case); ``credential_headers=``
adds to them."""
_CREDENTIAL_KINDS: Final = {"auth": "authorization", "cookie": "cookie"}
"""Prefixes of ``CacheRequest.credentials`` items, and the header each stands for."""
_DEFAULT_PORTS: Final = {"http": 80, "https": 443, "ws": 80, "wss": 443}
_MEMO_SIZE: Final = 4096
"""URLs (and plain requests) whose normal form (and key) are remembered, per process."""


@attrs.frozen(slots=True)
class CacheRequest:
    """What acc needs to know of a request to key it, independent of the HTTP client.

    Attributes:
        method: The method, any case.
        url: The absolute URL with its query (``base_url`` and ``params`` already applied).
        headers: The request headers the client will send, as pairs.
        body_kind: ``"none"``, ``"bytes"``, ``"form"`` or ``"json"``.
        body: ``None``; ``bytes``; a tuple of ``(name, value)`` form pairs; or a JSON value.
        credentials: Extra credential material not in ``headers``, as strings. An item
            ``"auth:..."`` stands for an ``Authorization`` header (``auth=``) and
            ``"cookie:..."`` for a cookie (``cookies=``, the session's cookie jar); naming
            that header in ``ignored_params`` leaves such items out of the key.
    """

    method: str
    url: str
    headers: HeaderPairs = ()
    body_kind: str = "none"
    body: Any = None
    credentials: tuple[str, ...] = ()


@attrs.frozen(slots=True, cache_hash=True)
class KeySettings:
    """The settings that change how requests are keyed (hashable: memo caches use it).

    Attributes:
        ignored_params: Names left out of the key wherever they appear.
        include_headers: Key by every request header (credentials aside).
        match_headers: Key by these headers' values.
        credential_headers: Request headers (lower case) keyed by a hash, as credentials.
        credential_params: Query parameters keyed by a hash, as credentials.
    """

    ignored_params: frozenset[str] = frozenset()
    include_headers: bool = False
    match_headers: tuple[str, ...] = ()
    credential_headers: frozenset[str] = CREDENTIAL_HEADERS
    credential_params: frozenset[str] = frozenset()


def _field(tag: bytes, value: bytes) -> bytes:
    return tag + len(value).to_bytes(8, "big") + value


def normalize_url(url: str, ignored_params: frozenset[str] = frozenset()) -> str:
    """Return the canonical form of an absolute URL used in keys.

    Scheme and host are lower-cased, a default port and the fragment are dropped, user
    info is dropped (it is a credential, keyed separately), and query parameters other
    than ``ignored_params`` are sorted and encoded one way. An empty path becomes ``/``.
    The result for a recently seen URL is remembered (parsing costs microseconds).
    """
    if type(ignored_params) is not frozenset:
        ignored_params = frozenset(ignored_params)
    return _normalize_memo(url, ignored_params)


@lru_cache(maxsize=_MEMO_SIZE)
def _normalize_memo(url: str, ignored_params: frozenset[str]) -> str:
    return _normalize(url, ignored_params)


_CANONICAL_URL = re.compile(
    r"(?:http|https)://[a-z0-9.-]+(?::([1-9][0-9]{0,4}))?"
    r"/[A-Za-z0-9/%:@!$&'()*+,;=~._-]*"
    r"(?:\?([A-Za-z0-9._~-]+=[A-Za-z0-9._~-]*(?:&[A-Za-z0-9._~-]+=[A-Za-z0-9._~-]*)*))?\Z"
)
"""A URL already in the form :func:`_normalize` gives, but for the port and query order."""


def _simply_normal(url: str, ignored_params: frozenset[str]) -> str | None:
    """The normal form of ``url`` when it needs no parsing (most URLs a client sends).

    A lower-case http(s) URL with a plain host, a port that is not the default one, a
    path of characters quoting keeps, and a query of ``name=value`` pairs of unreserved
    characters: decoding and quoting leave such pairs as they are, so the normal form is
    the URL with its pairs sorted by name (stably) and the ignored ones left out, which is
    what :func:`_normalize`'s parsing gives. ``None`` when the URL must be parsed.
    """
    match = _CANONICAL_URL.match(url)
    if match is None or "%" in url:  # a percent-escape's case may change: parse it
        return None
    port, query = match.groups()
    if port is not None and (int(port) > 65535 or int(port) == (443 if url[4] == "s" else 80)):
        return None
    if query is None:
        return url
    pairs = query.split("&")
    names = [pair.partition("=")[0] for pair in pairs]
    if names == sorted(names) and ignored_params.isdisjoint(names):
        return url
    kept = sorted(
        (pair for name, pair in zip(names, pairs, strict=True) if name not in ignored_params),
        key=lambda pair: pair.partition("=")[0],
    )
    base = url[: match.start(2) - 1]
    return f"{base}?{'&'.join(kept)}" if kept else base


def _normalize(url: str, ignored_params: frozenset[str]) -> str:
    simple = _simply_normal(url, ignored_params)
    return simple if simple is not None else _parsed_normal(url, ignored_params)


def _parsed_normal(url: str, ignored_params: frozenset[str]) -> str:
    """The normal form of any absolute URL, parsed (see :func:`normalize_url`)."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    host = (parts.hostname or "").lower()
    if ":" in host:
        host = f"[{host}]"
    try:
        port = parts.port
    except ValueError:
        port = None
    netloc = host if port is None or _DEFAULT_PORTS.get(scheme) == port else f"{host}:{port}"
    path = quote(parts.path, safe="/%:@!$&'()*+,;=~-._") or "/"
    query = parse_qsl(parts.query, keep_blank_values=True)
    if ignored_params:
        query = [(k, v) for k, v in query if k not in ignored_params]
    query.sort(key=_name)  # stable: a repeated name's values keep their order (rule 2)
    return urlunsplit((scheme, netloc, path, urlencode(query, quote_via=quote), ""))


def _name(pair: tuple[str, str]) -> str:
    return pair[0]


def _json_key_text(key: Any) -> str:
    return key if isinstance(key, str) else json.dumps(key)


def _ordered_json(value: Any) -> Any:
    """Rebuild dicts with their keys in text order, for dicts ``sort_keys`` cannot sort."""
    if isinstance(value, dict):
        items = sorted(value.items(), key=lambda kv: (_json_key_text(kv[0]), type(kv[0]).__name__))
        return {k: _ordered_json(v) for k, v in items}
    if isinstance(value, (list, tuple)):
        return [_ordered_json(v) for v in value]
    return value


def _canonical_json(value: Any, ignored: frozenset[str]) -> bytes:
    if ignored and isinstance(value, dict):
        value = {k: v for k, v in value.items() if k not in ignored}
    try:
        text = json.dumps(
            value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str
        )
    except TypeError:
        # Keys of mixed types ({1: "a", "b": 2}) cannot be sorted, yet json (and so the
        # client) serialises them; order them by the text json gives each key instead.
        text = json.dumps(
            _ordered_json(value), separators=(",", ":"), ensure_ascii=False, default=str
        )
    return text.encode()


def _canonical_form(pairs: Iterable[tuple[Any, Any]], ignored: frozenset[str]) -> bytes:
    kept = sorted(((str(k), str(v)) for k, v in pairs if str(k) not in ignored), key=_name)
    return b"".join(_field(b"k", k.encode()) + _field(b"v", v.encode()) for k, v in kept)


def _body_field(request: CacheRequest, ignored: frozenset[str]) -> bytes:
    kind = request.body_kind
    if kind == "none" or request.body is None:
        return _field(b"B", b"")
    if kind == "json":
        return _field(b"J", _canonical_json(request.body, ignored))
    if kind == "form":
        return _field(b"F", _canonical_form(request.body, ignored))
    if kind == "bytes":
        body = request.body
        return _field(b"R", body if isinstance(body, bytes) else str(body).encode())
    raise ValueError(f"unknown body kind {kind!r}")


def _header_fields(request: CacheRequest, settings: KeySettings) -> bytes:
    if not settings.include_headers and not settings.match_headers:
        return b""
    ignored = {name.lower() for name in settings.ignored_params}
    credentials = settings.credential_headers
    selected: list[tuple[str, str]] = []
    if settings.include_headers:
        selected = [
            (name.lower(), value)
            for name, value in request.headers
            if name.lower() not in ignored and name.lower() not in credentials
        ]
    elif settings.match_headers:
        wanted = {name.lower() for name in settings.match_headers} - ignored - credentials
        present = {name.lower() for name, _ in request.headers}
        selected = [(n.lower(), v) for n, v in request.headers if n.lower() in wanted]
        selected += [(name, "\x00absent") for name in wanted - present]
    selected.sort()
    return b"".join(_field(b"h", n.encode()) + _field(b"v", v.encode()) for n, v in selected)


def credential_digest(
    request: CacheRequest,
    ignored_params: frozenset[str] = frozenset(),
    credential_headers: frozenset[str] = CREDENTIAL_HEADERS,
    credential_params: frozenset[str] = frozenset(),
) -> bytes:
    """Return a digest of the request's credentials, or ``b""`` when it carries none.

    Args:
        request: The request.
        ignored_params: Names that do not count (an ignored credential is no credential).
        credential_headers: The request headers that are credentials (lower case).
        credential_params: The query parameters that are credentials.
    """
    ignored = {name.lower() for name in ignored_params}
    material = [
        f"{name.lower()}\x00{value}"
        for name, value in request.headers
        if name.lower() in credential_headers and name.lower() not in ignored
    ]
    wanted_params = credential_params - ignored_params
    if wanted_params and "?" in request.url:
        material.extend(
            f"param\x00{name}={value}"
            for name, value in parse_qsl(urlsplit(request.url).query, keep_blank_values=True)
            if name in wanted_params
        )
    userinfo = urlsplit(request.url).netloc.rpartition("@") if "@" in request.url else ("", "", "")
    if userinfo[1]:
        material.append(f"userinfo\x00{userinfo[0]}")
    material.extend(
        f"extra\x00{item}"
        for item in request.credentials
        if _CREDENTIAL_KINDS.get(item.partition(":")[0]) not in ignored
    )
    if not material:
        return b""
    material.sort()
    return hashlib.sha256("\x01".join(material).encode()).digest()


def create_key(request: CacheRequest, settings: KeySettings = KeySettings()) -> str:
    """Return the cache key of ``request`` under ``settings``.

    The key is the hex BLAKE2b-128 digest of the method, the normalised URL, the
    canonical body, the selected headers and the credential digest, each field tagged
    and length-prefixed.
    """
    if (
        request.body is None
        and not request.headers
        and not request.credentials
        and not settings.match_headers
        and "@" not in request.url
    ):
        # Nothing but a method and a URL (most GETs): the key is a function of those.
        return _plain_key(request.method, request.url, settings)
    return _key(request, settings)


def create_key_unmemoised(request: CacheRequest, settings: KeySettings = KeySettings()) -> str:
    """Return :func:`create_key`'s key, without its memo.

    For a walk over many stored URLs (maintenance), which would gain nothing from the
    memo and only evict the keys of live requests from it.
    """
    return _key(request, settings)


@lru_cache(maxsize=_MEMO_SIZE)
def _plain_key(method: str, url: str, settings: KeySettings) -> str:
    return _key(CacheRequest(method, url), settings)


def _key(request: CacheRequest, settings: KeySettings) -> str:
    ignored = settings.ignored_params
    credential_params = settings.credential_params
    digest = credential_digest(request, ignored, settings.credential_headers, credential_params)
    material = b"".join(
        (
            KEY_VERSION,
            _field(b"M", request.method.upper().encode()),
            _field(b"U", normalize_url(request.url, ignored | credential_params).encode()),
            _body_field(request, ignored),
            _field(b"H", _header_fields(request, settings)),
            _field(b"C", digest),
        )
    )
    return hashlib.blake2b(material, digest_size=16).hexdigest()


def redact_url(url: str, ignored_params: frozenset[str]) -> str:
    """Return ``url`` without user info and with ignored parameters' values redacted.

    ``ignored_params`` are the names whose values go: ``ignored_params`` and
    ``credential_params`` alike. ``url`` may be relative (a ``Location`` header).
    """
    if "@" not in url and ("?" not in url or not ignored_params):
        return url  # no user info, no query to redact: most URLs, without parsing
    parts = urlsplit(url)
    netloc = parts.netloc.rpartition("@")[2]
    query = parts.query
    if ignored_params and query:
        pairs = parse_qsl(query, keep_blank_values=True)
        if any(k in ignored_params for k, _ in pairs):
            query = urlencode(
                [(k, REDACTED if k in ignored_params else v) for k, v in pairs], quote_via=quote
            )
    if netloc == parts.netloc and query == parts.query:
        return url
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


def redact_headers(
    headers: HeaderPairs,
    ignored_params: frozenset[str],
    credential_headers: frozenset[str] = CREDENTIAL_HEADERS,
) -> HeaderPairs:
    """Return request headers with credentials and ignored names' values redacted."""
    hidden = (
        credential_headers | {name.lower() for name in ignored_params}
        if ignored_params
        else credential_headers
    )
    return tuple((n, REDACTED if n.lower() in hidden else v) for n, v in headers)


def key_inputs(
    request: CacheRequest, settings: KeySettings = KeySettings()
) -> list[tuple[str, str]]:
    """What goes into the default key of ``request``, in words, for explanations.

    Never a credential: a credential is named, not shown (its hash is what the key holds).
    """
    ignored = settings.ignored_params
    inputs = [
        ("method", request.method.upper()),
        ("url", normalize_url(request.url, ignored)),
    ]
    kind = request.body_kind
    if kind == "none" or request.body is None:
        inputs.append(("body", "none"))
    else:
        size = len(_body_field(request, ignored)) - 9  # the tag and the length prefix
        inputs.append(("body", f"{kind}, {size} bytes in canonical form"))
    if settings.include_headers:
        hidden = {name.lower() for name in ignored} | CREDENTIAL_HEADERS
        names = sorted({n.lower() for n, _ in request.headers if n.lower() not in hidden})
        inputs.append(("headers", "all: " + (", ".join(names) or "(none)")))
    elif settings.match_headers:
        for name in settings.match_headers:
            values = [v for n, v in request.headers if n.lower() == name.lower()]
            inputs.append((f"header {name}", ", ".join(values) if values else "(absent)"))
    lowered = {name.lower() for name in ignored}
    credentials = sorted(
        {n for n, _ in request.headers if n.lower() in CREDENTIAL_HEADERS - lowered}
        | {
            _CREDENTIAL_KINDS[item.partition(":")[0]].title()
            for item in request.credentials
            if item.partition(":")[0] in _CREDENTIAL_KINDS
            and _CREDENTIAL_KINDS[item.partition(":")[0]] not in lowered
        }
    )
    if "@" in urlsplit(request.url).netloc:
        credentials.append("URL user info")
    inputs.append(("credentials", f"a hash of {', '.join(credentials)}" if credentials else "none"))
    if ignored:
        inputs.append(("ignored_params", ", ".join(sorted(ignored))))
    return inputs
