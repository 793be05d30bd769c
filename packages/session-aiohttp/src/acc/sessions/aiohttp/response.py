"""Responses served from the cache, and the cache attributes of live ones.

:class:`CachedClientResponse` stands in for a read :class:`aiohttp.ClientResponse`: the
same attributes and methods, answered from a stored :class:`~acc.core.CachedResponse`.
It is built on every hit, so it does as little as possible up front: headers, the
``content`` stream, cookies and links are made on first access.

The body is the stored entry's own ``bytes`` object (on a large hit, the very object the
store read or kept), never copied here: ``read()`` returns it, ``content`` is a stream
fed with it whole, and ``json()``/``text()`` decode it directly (strip it only when it
has surrounding whitespace).
"""

from __future__ import annotations

import asyncio
import codecs
import json as jsonlib
import re
from collections.abc import Callable
from datetime import datetime
from http.cookies import SimpleCookie
from types import TracebackType
from typing import Any

from aiohttp import ClientResponse, ClientResponseError, ContentTypeError, RequestInfo
from aiohttp.base_protocol import BaseProtocol
from aiohttp.client_reqrep import ContentDisposition
from aiohttp.helpers import HeadersMixin
from aiohttp.streams import StreamReader
from multidict import CIMultiDict, CIMultiDictProxy, MultiDictProxy
from yarl import URL

from acc.core.flow.exchange import BodyCollector
from acc.core.models import CachedResponse, HeaderPairs, RedirectHop, utcnow

__all__ = ["CachedClientResponse", "PullingStream", "body_stream", "mark_live_response"]

_STREAM_LIMIT = 2**16


class _FinishedProtocol(BaseProtocol):
    """The protocol of a stream fed whole: there is no transport to pause or resume."""

    __slots__ = ()

    def pause_reading(self, *args: Any, **kwargs: Any) -> None:
        """Nothing to pause: the body is already in memory."""

    def resume_reading(self, *args: Any, **kwargs: Any) -> None:
        """Nothing to resume."""


def body_stream(body: bytes) -> StreamReader:
    """Return a finished aiohttp ``StreamReader`` that yields ``body``.

    It is a real ``StreamReader`` (not a look-alike), so ``read(n)``, ``readany``,
    ``readline``, ``iter_chunked`` and the rest behave exactly as on a live response; the
    body is fed whole, without a copy.
    """
    loop = asyncio.get_running_loop()
    stream = StreamReader(_FinishedProtocol(loop), _STREAM_LIMIT, loop=loop)
    if body:
        stream.feed_data(body)
    stream.feed_eof()
    return stream


class PullingStream(StreamReader):
    """A ``StreamReader`` over a live response's own: it reads from it only on demand.

    It stands in for ``response.content`` when acc must see the body as the caller reads
    it, or put back what it read. It is a real ``StreamReader``, so every reading method
    (``read``, ``readany``, ``readline``, ``iter_chunked``, ...) behaves as on the live
    response: each waits for data through ``_wait``, which here pulls the next chunk from
    the live stream, so nothing is read ahead of the caller and the live stream's own
    flow control still applies.

    Args:
        source: The live response's ``content``.
        replay: Chunks already read from ``source``, given to the caller first.
        collector: Gets every chunk pulled from ``source`` (not the replayed ones), and
            is finished at the end of the body, or abandoned if reading it fails.
    """

    __slots__ = ("_collector", "_source")

    def __init__(
        self,
        source: StreamReader,
        *,
        replay: list[bytes] | None = None,
        collector: BodyCollector | None = None,
    ) -> None:
        loop = asyncio.get_running_loop()
        super().__init__(_FinishedProtocol(loop), _STREAM_LIMIT, loop=loop)
        self._source = source
        self._collector = collector
        for chunk in replay or ():
            self.feed_data(chunk)

    async def _wait(self, func_name: str) -> None:
        # Every reading method calls this when its buffer is empty before the end.
        collector = self._collector
        try:
            chunk = await self._source.readany()
        except BaseException:
            if collector is not None:
                collector.abandon()
            raise
        if chunk:
            if collector is not None:
                collector.feed(chunk)
            self.feed_data(chunk)
            return
        if collector is not None:
            await collector.finish()
        self.feed_eof()

    async def wait_eof(self) -> None:
        """Wait for the end of the body, reading it (it is not read ahead otherwise)."""
        while not self.is_eof():
            await self._wait("wait_eof")


def _proxy(pairs: HeaderPairs) -> CIMultiDictProxy[str]:
    return CIMultiDictProxy(CIMultiDict(pairs))


class _Noop:
    """What ``release()`` returns: usable bare or awaited, as in aiohttp."""

    __slots__ = ()

    def __await__(self) -> Any:
        return
        yield  # pragma: no cover - makes this a generator


class CachedClientResponse(HeadersMixin):
    """A cache hit that behaves like a read :class:`aiohttp.ClientResponse`.

    Attributes:
        from_cache: ``True`` when served from the cache.
        created_at: When the stored response was received (aware UTC).
        expires: When it stops being fresh (aware UTC), or ``None``.
        revalidated: ``True`` when a ``304 Not Modified`` just confirmed it.
        stale: ``True`` when it was served stale (stale-while-revalidate,
            stale-if-error, a request ``max-stale``).
        cache_key: The key it is stored under.
    """

    def __init__(
        self,
        entry: CachedResponse,
        *,
        cache_key: str | None = None,
        from_cache: bool = True,
        revalidated: bool = False,
        stale: bool = False,
    ) -> None:
        self._entry = entry
        self._headers_proxy: CIMultiDictProxy[str] | None = None
        self._content: StreamReader | None = None
        self._cookies: SimpleCookie | None = None
        self._history: tuple[CachedClientResponse, ...] | None = None
        self._links: MultiDictProxy[MultiDictProxy[str | URL]] | None = None
        self._url: URL | None = None
        self._closed = False
        self.from_cache = from_cache
        self.revalidated = revalidated
        self.stale = stale
        self.cache_key = cache_key

    @classmethod
    def from_hop(cls, hop: RedirectHop, created_at: datetime) -> CachedClientResponse:
        """Build the response of one redirect hop (it has no body)."""
        entry = CachedResponse(
            status=hop.status,
            reason=hop.reason,
            url=hop.url,
            method=hop.method,
            headers=hop.headers,
            created_at=created_at,
        )
        return cls(entry)

    # -- cache attributes -------------------------------------------------------------

    @property
    def entry(self) -> CachedResponse:
        """The stored response behind this object."""
        return self._entry

    @property
    def created_at(self) -> datetime:
        """When the stored response was received."""
        return self._entry.created_at

    @property
    def expires(self) -> datetime | None:
        """When the stored response stops being fresh, or ``None`` for never."""
        return self._entry.expires

    @property
    def is_expired(self) -> bool:
        """Whether the stored response is past ``expires`` now."""
        return self._entry.is_expired()

    # -- status line and URL ------------------------------------------------------------

    @property
    def status(self) -> int:
        """The HTTP status code."""
        return self._entry.status

    @property
    def reason(self) -> str:
        """The reason phrase."""
        return self._entry.reason

    @property
    def ok(self) -> bool:
        """``True`` when ``status`` is below 400."""
        return self._entry.status < 400

    @property
    def method(self) -> str:
        """The request method."""
        return self._entry.method

    @property
    def url(self) -> URL:
        """The final URL of the response."""
        if self._url is None:
            self._url = URL(self._entry.url)
        return self._url

    @property
    def real_url(self) -> URL:
        """The URL, fragment included (the same as ``url`` for a stored response)."""
        return self.url

    @property
    def host(self) -> str:
        """The host of ``url``."""
        return self.url.host or ""

    @property
    def version(self) -> Any:
        """The HTTP version (stored responses are reported as HTTP/1.1)."""
        from aiohttp import HttpVersion11

        return HttpVersion11

    @property
    def connection(self) -> None:
        """A stored response holds no connection."""
        return None

    # -- headers ------------------------------------------------------------------------

    @property
    def headers(self) -> CIMultiDictProxy[str]:
        """The response headers, case-insensitive, built on first access."""
        if self._headers_proxy is None:
            self._headers_proxy = _proxy(self._entry.headers)
        return self._headers_proxy

    @property
    def _headers(self) -> CIMultiDictProxy[str]:  # type: ignore[override]
        # HeadersMixin (content_type, charset, content_length) reads this name.
        return self.headers

    @property
    def raw_headers(self) -> tuple[tuple[bytes, bytes], ...]:
        """The headers as raw byte pairs."""
        return tuple(
            (n.encode("utf-8", "surrogateescape"), v.encode("utf-8", "surrogateescape"))
            for n, v in self._entry.headers
        )

    @property
    def content_disposition(self) -> ContentDisposition | None:
        """The parsed ``Content-Disposition`` header, if any."""
        disposition: ContentDisposition | None = ClientResponse.content_disposition.wrapped(self)
        return disposition

    @property
    def links(self) -> MultiDictProxy[MultiDictProxy[str | URL]]:
        """The parsed ``Link`` headers, keyed by ``rel`` (or URL)."""
        if self._links is None:
            self._links = ClientResponse.links.wrapped(self)
        return self._links

    @property
    def cookies(self) -> SimpleCookie:
        """The cookies the response set."""
        if self._cookies is None:
            cookies = SimpleCookie()
            for raw in self._entry.cookies:
                try:
                    cookies.load(raw)
                except Exception:
                    continue
            self._cookies = cookies
        return self._cookies

    @property
    def history(self) -> tuple[CachedClientResponse, ...]:
        """The redirect responses that led here, oldest first."""
        if self._history is None:
            created = self._entry.created_at
            self._history = tuple(self.from_hop(hop, created) for hop in self._entry.history)
        return self._history

    @property
    def request_info(self) -> RequestInfo:
        """The request, with credentials redacted."""
        return RequestInfo(
            self.url, self._entry.method, _proxy(self._entry.request_headers), self.url
        )

    # -- body -----------------------------------------------------------------------------

    @property
    def content(self) -> StreamReader:
        """A stream over the stored body (``read(n)``, ``iter_chunked``, ...)."""
        if self._content is None:
            self._content = body_stream(self._entry.body)
        return self._content

    @property
    def _body(self) -> bytes:
        return self._entry.body

    async def read(self) -> bytes:
        """Return the whole body."""
        return self._entry.body

    def get_encoding(self) -> str:
        """The body's text encoding: the ``Content-Type`` charset if known, else UTF-8."""
        charset = self.charset
        if charset:
            try:
                return codecs.lookup(charset).name
            except LookupError:
                pass
        return "utf-8"

    async def text(self, encoding: str | None = None, errors: str = "strict") -> str:
        """Return the body decoded as text."""
        return self._entry.body.decode(encoding or self.get_encoding(), errors=errors)

    async def json(
        self,
        *,
        encoding: str | None = None,
        loads: Callable[[str], Any] = jsonlib.loads,
        content_type: str | None = "application/json",
    ) -> Any:
        """Return the body parsed as JSON, with aiohttp's content-type check."""
        if content_type:
            ctype = self.headers.get("Content-Type", "").lower()
            if not _expected_content_type(ctype, content_type):
                raise ContentTypeError(
                    self.request_info,
                    self.history,  # type: ignore[arg-type]
                    status=self.status,
                    message=f"Attempt to decode JSON with unexpected mimetype: {ctype}",
                    headers=self.headers,
                )
        body = self._entry.body
        if body[:1].isspace() or body[-1:].isspace():  # rare: strip() copies the body
            body = body.strip()
        if not body:
            return None
        return loads(body.decode(encoding or self.get_encoding()))

    # -- life cycle -----------------------------------------------------------------------

    def raise_for_status(self) -> None:
        """Raise :class:`aiohttp.ClientResponseError` when ``status`` is 400 or more."""
        if self.status >= 400:
            raise ClientResponseError(
                self.request_info,
                self.history,  # type: ignore[arg-type]
                status=self.status,
                message=self.reason,
                headers=self.headers,
            )

    @property
    def closed(self) -> bool:
        """Whether :meth:`close` or :meth:`release` was called."""
        return self._closed

    def release(self) -> Any:
        """Mark the response released; returns an awaitable, as aiohttp does."""
        self._closed = True
        return _Noop()

    def close(self) -> None:
        """Mark the response closed."""
        self._closed = True

    async def wait_for_close(self) -> None:
        """Return at once: there is no connection to wait for."""
        self._closed = True

    async def __aenter__(self) -> CachedClientResponse:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.release()

    def __repr__(self) -> str:
        return f"<CachedClientResponse({self._entry.url}) [{self.status} {self.reason}]>"


_JSON_TYPE = re.compile(r"^application/(?:[\w.+-]+?\+)?json")


def _expected_content_type(actual: str, expected: str) -> bool:
    """Aiohttp's rule for ``json(content_type=...)``: any ``+json`` type counts as JSON."""
    if expected == "application/json":
        return _JSON_TYPE.match(actual) is not None
    return expected in actual


def mark_live_response(
    response: ClientResponse,
    *,
    entry: CachedResponse | None = None,
    cache_key: str | None = None,
    body: bytes | None = None,
) -> ClientResponse:
    """Give a live response the cache attributes of a miss.

    When its body was read to store it, ``content`` is replaced by a stream over that
    body, so code that reads ``response.content`` still sees all of it.
    """
    attributes = vars(response)
    attributes["from_cache"] = False
    attributes["revalidated"] = False
    attributes["stale"] = False
    attributes["cache_key"] = cache_key
    attributes["created_at"] = entry.created_at if entry is not None else utcnow()
    attributes["expires"] = entry.expires if entry is not None else None
    attributes["is_expired"] = False
    if body is not None:
        response.content = body_stream(body)
    return response
