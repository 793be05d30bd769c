"""Turning an :class:`httpx.Request` into the client-independent facts acc keys on.

A transport sees the request as httpx will send it: ``base_url`` joined, ``params``
merged into the URL, client and request headers merged, ``auth`` applied as an
``Authorization`` header and the client's cookies rendered as a ``Cookie`` header.
:func:`describe_request` reduces it to a :class:`~acc.core.CacheRequest`.

Rules this module keeps:

1. The description says what the aiohttp binding says for the same request, wherever the
   two clients give the same facts, so a response stored through one binding is found by
   the other (DESIGN §3): a body-less request has no body (not an empty one); a JSON or
   form body, which httpx has already encoded, is decoded again by its ``Content-Type``
   and keyed as JSON or form pairs (as aiohttp keys ``json=`` and ``data={...}``, and so
   that ``ignored_params`` reach top-level JSON keys and form fields); cookies are
   credential items ``cookie:name=value``, one per cookie, as aiohttp's cookie jar gives
   them, not a ``Cookie`` header.
2. A body that is not in memory (a streaming upload) cannot be keyed without consuming
   it: such a request is described without its body and bypasses the cache, with the
   reason (:func:`describe_request` returns it).
3. Header names and values are decoded as aiohttp decodes them (UTF-8, undecodable bytes
   kept as surrogates), so the same bytes give the same text in both bindings, and
   :func:`header_bytes` gives the bytes back unchanged.
"""

from __future__ import annotations

import json
from urllib.parse import parse_qsl

import httpx

from acc.core import CacheRequest
from acc.core.models import HeaderPairs

__all__ = ["describe_request", "header_bytes", "header_pairs"]

_JSON_SUFFIX = "+json"


def header_pairs(headers: httpx.Headers) -> HeaderPairs:
    """The headers as text pairs, names in the case they were given (rule 3)."""
    return tuple(
        (name.decode("utf-8", "surrogateescape"), value.decode("utf-8", "surrogateescape"))
        for name, value in headers.raw
    )


def header_bytes(pairs: HeaderPairs) -> list[tuple[bytes, bytes]]:
    """Text header pairs as the bytes :func:`header_pairs` read them from (rule 3)."""
    return [
        (name.encode("utf-8", "surrogateescape"), value.encode("utf-8", "surrogateescape"))
        for name, value in pairs
    ]


def _media_type(headers: HeaderPairs) -> str:
    for name, value in headers:
        if name.lower() == "content-type":
            return value.partition(";")[0].strip().lower()
    return ""


def _body(content: bytes, headers: HeaderPairs) -> tuple[str, object]:
    """The body as the aiohttp binding would describe the same payload (rule 1)."""
    if not content:
        return "none", None
    media_type = _media_type(headers)
    if media_type == "application/json" or media_type.endswith(_JSON_SUFFIX):
        try:
            return "json", json.loads(content)
        except ValueError:  # not JSON after all (UnicodeDecodeError is a ValueError)
            return "bytes", content
    if media_type == "application/x-www-form-urlencoded":
        try:
            text = content.decode("utf-8")
            return "form", tuple(parse_qsl(text, keep_blank_values=True, strict_parsing=True))
        except ValueError:
            return "bytes", content
    return "bytes", content


def _in_memory_content(request: httpx.Request) -> bytes | None:
    """The request body when it is in memory; ``None`` for a streaming body (rule 2)."""
    try:
        return request.content
    except httpx.RequestNotRead:
        # A request httpx rebuilt (a 307/308 redirect) shares the original's stream.
        if isinstance(request.stream, httpx.ByteStream):
            return b"".join(request.stream)
        return None


def _cookie_credentials(values: list[str]) -> tuple[str, ...]:
    """``Cookie`` header values as aiohttp's cookie-jar credential items (rule 1)."""
    items = []
    for value in values:
        for part in value.split(";"):
            name, equals, cookie = part.strip().partition("=")
            if name or equals:
                items.append(f"cookie:{name.strip()}={cookie.strip()}")
    return tuple(items)


def describe_request(request: httpx.Request) -> tuple[CacheRequest, str | None]:
    """Describe ``request`` as acc keys it.

    Returns:
        The :class:`CacheRequest` to key it by, and why the cache must leave the request
        alone (a streaming body), or ``None``.
    """
    sent = header_pairs(request.headers)
    cookies = [value for name, value in sent if name.lower() == "cookie"]
    headers = tuple(pair for pair in sent if pair[0].lower() != "cookie") if cookies else sent
    content = _in_memory_content(request)
    bypass = None
    if content is None:
        bypass = "a streaming request body is not cached"
        body_kind, body = "none", None
    else:
        body_kind, body = _body(content, headers)
    described = CacheRequest(
        method=request.method,
        url=str(request.url),
        headers=headers,
        body_kind=body_kind,
        body=body,
        credentials=_cookie_credentials(cookies) if cookies else (),
    )
    return described, bypass
