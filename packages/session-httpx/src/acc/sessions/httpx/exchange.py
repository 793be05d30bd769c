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
4. A response whose body acc must see as the caller reads it (to store it, or to put
   back what it read) is a new response over the decoded body: without
   ``Content-Encoding`` and ``Content-Length``, its stream pulling from the live one
   only as the caller reads, and closing it when closed.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import httpx

from acc.core.flow.exchange import BodyCollector, ResponseHead
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


_BODILESS = frozenset({204, 304})
_ENCODING_HEADERS = frozenset({"content-encoding", "content-length", "transfer-encoding"})


def declared_length(live: httpx.Response) -> int | None:
    """The length of ``live``'s body as sent (``Content-Length``), when declared.

    ``0`` for a response that has no body; ``None`` when not declared or not valid.
    """
    if live.request.method == "HEAD" or live.status_code in _BODILESS or live.status_code < 200:
        return 0
    value = live.headers.get("Content-Length")
    if value is None or not value.isdigit():
        return None
    return int(value)


class _PulledStream(httpx.AsyncByteStream):
    """The decoded body of a live response: replayed chunks first, then pulled on demand."""

    def __init__(
        self,
        live: httpx.Response,
        chunks: AsyncIterator[bytes],
        *,
        replay: list[bytes] | None = None,
        collector: BodyCollector | None = None,
    ) -> None:
        self._live = live
        self._chunks = chunks
        self._replay = replay or []
        self._collector = collector

    async def __aiter__(self) -> AsyncIterator[bytes]:
        replay, self._replay = self._replay, []
        while replay:
            yield replay.pop(0)
        collector = self._collector
        try:
            async for chunk in self._chunks:
                if collector is not None:
                    collector.feed(chunk)
                yield chunk
        except BaseException:
            if collector is not None:
                collector.abandon()
            raise
        if collector is not None:
            await collector.finish()

    async def aclose(self) -> None:
        await self._live.aclose()


def _decoded(live: httpx.Response, stream: _PulledStream) -> httpx.Response:
    """A response in place of ``live`` over ``stream``, its decoded body (rule 4)."""
    headers = [
        (name, value)
        for name, value in live.headers.multi_items()
        if name.lower() not in _ENCODING_HEADERS
    ]
    return httpx.Response(
        live.status_code,
        headers=headers,
        stream=stream,
        request=live.request,
        extensions=live.extensions,
    )


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
            content_length=declared_length(live),
        )

    async def read(
        self, live: httpx.Response, limit: int | None
    ) -> tuple[httpx.Response, bytes | None]:
        """Read the whole body, decoded, unless it grows past ``limit`` (rule 4).

        Within the limit httpx keeps it and closes the stream. Past it, the caller gets
        a response that replays the chunks read, then the rest of the body.
        """
        if limit is None:
            return live, await live.aread()
        chunks: list[bytes] = []
        size = 0
        decoded = live.aiter_bytes()
        async for chunk in decoded:
            chunks.append(chunk)
            size += len(chunk)
            if size > limit:
                return _decoded(live, _PulledStream(live, decoded, replay=chunks)), None
        return live, chunks[0] if len(chunks) == 1 else b"".join(chunks)

    async def stream(self, live: httpx.Response, collector: BodyCollector) -> httpx.Response:
        """A response over ``live``'s decoded body, passing what is read to ``collector``."""
        return _decoded(live, _PulledStream(live, live.aiter_bytes(), collector=collector))

    async def release(self, live: httpx.Response) -> None:
        """Close the response unread, giving its connection back."""
        await live.aclose()
