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
) -> tuple[URL, CacheRequest]:
    """Describe a request as aiohttp will send it.

    Returns:
        The absolute request URL, and the :class:`CacheRequest` to key it by.

    Raises:
        UncacheableBody: The body cannot be keyed without consuming it.
    """
    url = session._build_url(str_or_url)
    if params:
        url = url.extend_query(params)
    merged = CIMultiDict(session.headers)
    if headers:
        merged.update(CIMultiDict(headers))
    request_auth = auth if auth is not None else session.auth
    credentials: tuple[str, ...] = ()
    if request_auth is not None and "Authorization" not in merged:
        credentials = (f"auth:{request_auth.encode()}",)
    credentials += _cookie_material(cookies)
    # Cookies the session's jar will send are credentials too: keyed, never shared.
    jar = session.cookie_jar.filter_cookies(url)
    credentials += tuple(f"cookie:{name}={morsel.value}" for name, morsel in jar.items())
    body_kind, body = _body(data, json)
    return url, CacheRequest(
        method=method.upper(),
        url=str(url),
        headers=tuple(merged.items()),
        body_kind=body_kind,
        body=body,
        credentials=credentials,
    )
