"""Turning an aiohttp request's arguments into the client-independent facts acc keys on.

aiohttp accepts a URL, ``params``, ``data`` in several shapes, ``json``, ``headers``,
``auth`` and ``cookies``. :func:`describe_request` reduces them to a
:class:`~acc.core.CacheRequest` the way aiohttp itself will send them: the URL joined to
``base_url`` with ``params`` appended, session headers under request headers, the
session's ``auth`` unless the request has its own. Bodies that cannot be read without
consuming them (streams, files, async generators) make the request uncacheable.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import lru_cache
from typing import Any

from aiohttp import BasicAuth, ClientSession, FormData
from multidict import CIMultiDict
from yarl import URL

from acc.core import CacheRequest

__all__ = ["UncacheableBody", "describe_request"]


class UncacheableBody(Exception):
    """The request body cannot be keyed without consuming it."""


def _form_pairs(data: Any) -> tuple[tuple[str, str], ...] | None:
    if isinstance(data, Mapping):
        items = list(data.items())
    elif isinstance(data, (list, tuple)) and all(
        isinstance(item, tuple) and len(item) == 2 for item in data
    ):
        items = list(data)
    else:
        return None
    pairs = []
    for name, value in items:
        if isinstance(value, (str, int, float)) and not isinstance(value, bool):
            pairs.append((str(name), str(value)))
        elif isinstance(value, (list, tuple)):
            pairs.extend((str(name), str(v)) for v in value)
        else:
            raise UncacheableBody(f"form field {name!r} is a {type(value).__name__}")
    return tuple(pairs)


def _formdata_pairs(data: FormData) -> tuple[tuple[str, str], ...]:
    pairs = []
    for type_options, _headers, value in data._fields:
        if "filename" in type_options or not isinstance(value, (str, bytes)):
            raise UncacheableBody("FormData with files is not cached")
        text = value if isinstance(value, str) else value.decode("utf-8", "surrogateescape")
        pairs.append((str(type_options["name"]), text))
    return tuple(pairs)


def _body(data: Any, json: Any) -> tuple[str, Any]:
    if json is not None:
        return "json", json
    if data is None:
        return "none", None
    if isinstance(data, (bytes, bytearray, memoryview)):
        return "bytes", bytes(data)
    if isinstance(data, str):
        return "bytes", data.encode("utf-8")
    if isinstance(data, FormData):
        return "form", _formdata_pairs(data)
    pairs = _form_pairs(data)
    if pairs is not None:
        return "form", pairs
    raise UncacheableBody(f"a {type(data).__name__} body is not cached")


def _cookie_material(cookies: Any) -> tuple[str, ...]:
    if not cookies:
        return ()
    items = cookies.items() if isinstance(cookies, Mapping) else cookies
    rendered = []
    for name, value in items:
        value = getattr(value, "value", value)
        rendered.append(f"cookie:{name}={value}")
    return tuple(rendered)


@lru_cache(maxsize=4096)
def _joined(base_url: URL | None, url: str) -> tuple[URL, str]:
    """The absolute URL aiohttp requests for ``url`` under ``base_url``, and its text.

    Parsing a URL and rendering it again cost microseconds on every hit; both depend on
    nothing but these two immutable values, so recent results are remembered.
    """
    parsed = URL(url)
    if base_url and not parsed.absolute:
        parsed = base_url.join(parsed)
    return parsed, str(parsed)


def describe_request(
    session: ClientSession,
    method: str,
    str_or_url: str | URL,
    *,
    params: Any = None,
    data: Any = None,
    json: Any = None,
    headers: Any = None,
    auth: BasicAuth | None = None,
    cookies: Any = None,
) -> CacheRequest:
    """Describe a request as aiohttp will send it.

    Returns:
        The :class:`CacheRequest` to key it by (its URL absolute, ``params`` applied).

    Raises:
        UncacheableBody: The body cannot be keyed without consuming it.
    """
    base_url = getattr(session, "_base_url", None)
    if isinstance(str_or_url, str) and not params and (base_url is None or type(base_url) is URL):
        url, url_text = _joined(base_url, str_or_url)
    else:
        url = session._build_url(str_or_url)
        if params:
            url = url.extend_query(params)
        url_text = str(url)
    # This runs on every hit: skip the merges and the cookie-jar walk when there is
    # nothing to merge or walk (the common case), building the same description.
    if headers:
        merged = CIMultiDict(session.headers)
        merged.update(CIMultiDict(headers))
        header_pairs = tuple(merged.items())
    else:
        header_pairs = tuple(session.headers.items()) if session.headers else ()
    request_auth = auth if auth is not None else session.auth
    credentials: tuple[str, ...] = ()
    if request_auth is not None and not any(
        name.lower() == "authorization" for name, _ in header_pairs
    ):
        credentials = (f"auth:{request_auth.encode()}",)
    if cookies:
        credentials += _cookie_material(cookies)
    # Cookies the session's jar will send are credentials too: keyed, never shared.
    session_jar = session.cookie_jar
    if len(session_jar):
        jar = session_jar.filter_cookies(url)
        credentials += tuple(f"cookie:{name}={morsel.value}" for name, morsel in jar.items())
    body_kind, body = ("none", None) if data is None and json is None else _body(data, json)
    return CacheRequest(
        method=method.upper(),
        url=url_text,
        headers=header_pairs,
        body_kind=body_kind,
        body=body,
        credentials=credentials,
    )
