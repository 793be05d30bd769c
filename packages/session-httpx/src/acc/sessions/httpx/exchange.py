"""How the flow sends a request with httpx: :class:`HttpxExchange`.

It implements :class:`acc.core.flow.exchange.Exchange` over the transport that
:class:`~acc.sessions.httpx.CacheTransport` wraps, through httpx's public transport seam
(``AsyncBaseTransport.handle_async_request``). It makes no caching decision.

Rules this module keeps:

1. The request the inner transport sees is the caller's, untouched; a revalidation sends
   a copy with the conditional headers set (replacing any of the same name), sharing the
   caller's body stream, which is in memory whenever the cache handles the request.
2. A transport's response is raw: its body not read and still content-encoded. The flow
   reads it only to store it, with :meth:`httpx.Response.aread`, which undoes the
   codings httpx knows (gzip, deflate; br and zstd when their packages are installed)
   and skips the others. :meth:`HttpxExchange.head` says the body is decoded when every
   coding of ``Content-Encoding`` is one httpx undoes, so only then does the entry drop
   ``Content-Encoding``; a body in a coding httpx leaves alone keeps its label.
3. A transport sees one hop: httpx's client follows redirects above it, each hop a request
   of its own, so a response here never has a redirect history.
"""

from __future__ import annotations

import asyncio

import httpx

from acc.core.flow.exchange import ResponseHead
from acc.core.models import HeaderPairs
from acc.sessions.httpx.request import header_pairs

__all__ = ["DECODED_CODINGS", "NETWORK_ERRORS", "HttpxExchange", "body_decoded"]

NETWORK_ERRORS: tuple[type[BaseException], ...] = (
    httpx.TransportError,
    OSError,
    asyncio.TimeoutError,
)
"""Failures that mean the origin could not be reached (connect errors, timeouts, broken
connections, proxy errors; ``OSError`` and ``asyncio.TimeoutError`` for transports that
let them through); stale-if-error may answer them with the stored entry."""


def _decoded_codings() -> frozenset[str]:
    try:  # httpx's table of decoders holds br and zstd only when their packages are there
        from httpx._decoders import SUPPORTED_DECODERS
    except ImportError:  # pragma: no cover - a future httpx; the codings every release has
        return frozenset({"identity", "gzip", "deflate"})
    return frozenset(SUPPORTED_DECODERS)


DECODED_CODINGS: frozenset[str] = _decoded_codings()
"""The ``Content-Encoding`` codings :meth:`httpx.Response.aread` undoes (rule 2)."""


def body_decoded(headers: httpx.Headers) -> bool:
    """Whether ``aread()`` returns the body of a response with ``headers`` decoded (rule 2)."""
    codings = (c.strip().lower() for c in headers.get_list("content-encoding", split_commas=True))
    return all(coding in DECODED_CODINGS for coding in codings if coding)


class HttpxExchange:
    """One request of a :class:`~acc.sessions.httpx.CacheTransport`, sent by its inner one."""

    __slots__ = ("_request", "_transport")

    network_errors = NETWORK_ERRORS

    def __init__(self, transport: httpx.AsyncBaseTransport, request: httpx.Request) -> None:
        self._transport = transport
        self._request = request

    async def send(self, extra_headers: HeaderPairs) -> httpx.Response:
        """Send the caller's request, with ``extra_headers`` set on a copy (rule 1)."""
        request = self._request
        if extra_headers:
            headers = request.headers.copy()
            for name, value in extra_headers:
                headers[name] = value
            request = httpx.Request(
                request.method,
                request.url,
                headers=headers,
                stream=request.stream,
                extensions=request.extensions,
            )
        live = await self._transport.handle_async_request(request)
        # Transports leave this to the client; head() reads the sent request from it.
        live.request = request
        return live

    def head(self, live: httpx.Response) -> ResponseHead:
        """Describe the transport's response (rules 2 and 3)."""
        request = live.request
        return ResponseHead(
            status=live.status_code,
            reason=live.reason_phrase,
            url=str(request.url),
            method=request.method,
            headers=header_pairs(live.headers),
            request_headers=header_pairs(request.headers),
            body_decoded=body_decoded(live.headers),
        )

    async def read(self, live: httpx.Response) -> bytes:
        """Read the whole body, decoded; httpx keeps it and closes the stream."""
        return await live.aread()

    async def release(self, live: httpx.Response) -> None:
        """Close the response unread, giving its connection back."""
        await live.aclose()
