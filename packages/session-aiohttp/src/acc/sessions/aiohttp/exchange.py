"""How the flow sends a request with aiohttp: :class:`AiohttpExchange`.

It implements :class:`acc.core.flow.exchange.Exchange` over the ``_request`` of the
:class:`aiohttp.ClientSession` it belongs to. It holds the caller's arguments as given,
so the request the network sees is the one the caller made (plus the conditional headers
of a revalidation), and it describes aiohttp's response to the flow in client-independent
terms. It makes no caching decision.

aiohttp decodes a body only when decompression is on (the session's or the request's
``auto_decompress``) and ``Content-Encoding`` is exactly one coding it knows; any other
body is read as it came, still encoded, and :meth:`AiohttpExchange.head` says so
(``body_decoded=False``), so the stored entry keeps its ``Content-Encoding``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import ClientConnectionError, ClientResponse, compression_utils
from multidict import CIMultiDict
from yarl import URL

from acc.core import RedirectHop
from acc.core.flow.exchange import BodyCollector, ResponseHead
from acc.core.models import HeaderPairs
from acc.sessions.aiohttp.response import PullingStream

__all__ = ["DECODED_CODINGS", "AiohttpExchange", "body_decoded"]

NETWORK_ERRORS = (ClientConnectionError, OSError, asyncio.TimeoutError)
"""Failures that mean the origin could not be reached (a refused connection, a reset,
a timeout); stale-if-error may answer them with the stored entry."""


DECODED_CODINGS: frozenset[str] = frozenset(
    {"gzip", "deflate", "br"} | ({"zstd"} if hasattr(compression_utils, "HAS_ZSTD") else set())
)
"""The ``Content-Encoding`` values aiohttp's parser decodes (zstd where it defines ``HAS_ZSTD``)."""


def body_decoded(headers: Any, auto_decompress: bool) -> bool:
    """Whether aiohttp hands over the body of a response with ``headers`` decoded.

    True when there is nothing to decode, or when decompression is on and the coding is
    one aiohttp decodes (it compares the whole field value, in lower case).
    """
    coding = headers.get("Content-Encoding")
    if not coding:
        return True
    return auto_decompress and coding.isascii() and coding.lower() in DECODED_CODINGS


_BODILESS = frozenset({204, 304})


def declared_length(live: ClientResponse) -> int | None:
    """The length of ``live``'s body as sent, when known before reading it.

    ``Content-Length`` (the length on the wire, before any decoding), or ``0`` for a
    response that has no body; ``None`` when the length is not declared or not valid.
    """
    if live.method == "HEAD" or live.status in _BODILESS or live.status < 200:
        return 0
    value = live.headers.get("Content-Length")
    if value is None or not value.isdigit():
        return None
    return int(value)


def _hop(hop: ClientResponse) -> RedirectHop:
    return RedirectHop(
        status=hop.status,
        reason=hop.reason or "",
        url=str(hop.url),
        method=hop.method,
        headers=tuple(hop.headers.items()),
    )


class AiohttpExchange:
    """One request of a session, sent with the session's own ``_request``."""

    __slots__ = ("_auto_decompress", "_kwargs", "_method", "_request", "_url")

    network_errors = NETWORK_ERRORS

    def __init__(
        self,
        request: Callable[..., Awaitable[ClientResponse]],
        method: str,
        str_or_url: str | URL,
        kwargs: dict[str, Any],
        *,
        auto_decompress: bool = True,
    ) -> None:
        self._request = request
        self._method = method
        self._url = str_or_url
        self._kwargs = kwargs
        self._auto_decompress = auto_decompress

    async def send(self, extra_headers: HeaderPairs) -> ClientResponse:
        """Send the caller's request, with ``extra_headers`` added to its headers."""
        if not extra_headers:
            return await self._request(self._method, self._url, **self._kwargs)
        arguments = dict(self._kwargs)
        headers = CIMultiDict(arguments.pop("headers", None) or {})
        headers.extend(extra_headers)
        return await self._request(self._method, self._url, headers=headers, **arguments)

    def head(self, live: ClientResponse) -> ResponseHead:
        """Describe aiohttp's response, and whether the body it will read is decoded."""
        return ResponseHead(
            status=live.status,
            reason=live.reason or "",
            url=str(live.url),
            method=live.method,
            headers=tuple(live.headers.items()),
            request_headers=tuple(live.request_info.headers.items()),
            history=tuple(_hop(hop) for hop in live.history),
            body_decoded=body_decoded(live.headers, self._auto_decompress),
            content_length=declared_length(live),
        )

    async def read(
        self, live: ClientResponse, limit: int | None
    ) -> tuple[ClientResponse, bytes | None]:
        """Read the body, unless it is larger than ``limit``.

        A body that is not content-encoded has exactly its declared length, which the
        flow checked, so aiohttp reads it (and keeps it, so the caller can read it
        again). A decoded one may be far longer than was sent: it is read a chunk at a
        time, and past ``limit`` the chunks read are put back in front of the rest of
        ``live.content`` for the caller.
        """
        if limit is None or "Content-Encoding" not in live.headers:
            return live, await live.read()
        content = live.content
        chunks: list[bytes] = []
        size = 0
        while chunk := await content.readany():
            chunks.append(chunk)
            size += len(chunk)
            if size > limit:
                live.content = PullingStream(content, replay=chunks)
                return live, None
        return live, chunks[0] if len(chunks) == 1 else b"".join(chunks)

    async def stream(self, live: ClientResponse, collector: BodyCollector) -> ClientResponse:
        """Hand on ``live``, its ``content`` passing what the caller reads to ``collector``."""
        live.content = PullingStream(live.content, collector=collector)
        return live

    async def release(self, live: ClientResponse) -> None:
        """Give the connection back without reading the body."""
        live.release()
