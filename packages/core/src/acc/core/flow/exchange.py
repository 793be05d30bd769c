"""What a client binding supplies to the flow: the :class:`Exchange` protocol.

The flow (:mod:`acc.core.flow.driver`) decides and sequences; it never performs HTTP
itself. For each request a binding hands it an :class:`Exchange`, which knows how to
send that one request with the client the user has, and how to read what came back.

Rules this module keeps:

1. The flow sees a response only through :class:`ResponseHead`: status, reason, URLs,
   headers as pairs, the redirect hops and the declared length, in client-independent
   form. The binding's own response object (``LiveT``) travels through the flow
   untouched, so that a response the cache does not store reaches the caller as the
   client made it (still streaming).
2. The body is read only when the flow asks (:meth:`Exchange.read`), and only as far as
   the flow allows: a response that is not stored is never buffered by acc, and one
   that turns out larger than the flow's limit is handed on with what was read put back
   in front of the rest, so the caller still gets every byte.
3. A body of unknown length is stored while the caller reads it
   (:meth:`Exchange.stream`): the binding gives each chunk the caller reads to a
   :class:`BodyCollector` and awaits :meth:`BodyCollector.finish` when the body ends.
   The collector (the core) decides what is kept; the binding only plumbs.
4. ``send(extra_headers)`` sends the request as the caller made it, plus
   ``extra_headers`` (the conditional headers of a revalidation); it may be called more
   than once for one request (a 304 that selects no stored entry is asked again without
   conditions, RFC 9111 §4.3.4) and again later by a background refresh.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Protocol, TypeVar

import attrs

from acc.core.models import HeaderPairs, RedirectHop

__all__ = ["BodyCollector", "Exchange", "LiveT", "ResponseHead"]

logger = logging.getLogger("acc")

LiveT = TypeVar("LiveT")
"""The binding's own response type (``aiohttp.ClientResponse``, ``httpx.Response``, ...)."""


@attrs.frozen(slots=True)
class ResponseHead:
    """A live response as the flow sees it, before its body is read.

    Attributes:
        status: The final status.
        reason: The reason phrase.
        url: The final URL (after redirects), unredacted: the flow redacts what it stores.
        method: The method of the final request.
        headers: The response headers as pairs, as received.
        request_headers: The headers the final request was sent with (redacted before
            they are stored).
        history: The redirect responses that led here, oldest first.
        body_decoded: Whether the body :meth:`Exchange.read` returns is decoded (the
            client undid ``Content-Encoding``); if not, ``Content-Encoding`` is kept.
        content_length: The length of the body as sent, when the response declares it
            before it is read (its ``Content-Length``; ``0`` for a response that has no
            body: to ``HEAD``, a ``204``, a ``304``), else ``None``. A decoded body may
            be longer: :meth:`Exchange.read` is bounded all the same.
    """

    status: int
    reason: str
    url: str
    method: str
    headers: HeaderPairs = ()
    request_headers: HeaderPairs = ()
    history: tuple[RedirectHop, ...] = ()
    body_decoded: bool = True
    content_length: int | None = None


class BodyCollector:
    """Keeps the chunks of a body as the caller reads them, and stores it when it ends.

    The flow makes one for a response whose length is not known before it is read; the
    binding's :meth:`Exchange.stream` calls :meth:`feed` with each chunk the caller reads
    and awaits :meth:`finish` at the end of the body. Past ``limit`` bytes it gives up:
    what it kept is dropped at once, ``on_overflow`` is called, and the rest of the body
    only passes through. It keeps references to the chunks the caller gets (no copy)
    until the end, then joins them once.

    Args:
        limit: Bytes kept at most; ``None`` for no bound.
        on_complete: ``await on_complete(body)`` stores the whole body; an exception it
            raises is logged, never passed to the caller.
        on_overflow: Called once when the body grows past ``limit``.
    """

    __slots__ = ("_chunks", "_on_complete", "_on_overflow", "done", "limit", "size")

    def __init__(
        self,
        limit: int | None,
        on_complete: Callable[[bytes], Awaitable[None]],
        on_overflow: Callable[[], None],
    ) -> None:
        self.limit = limit
        self._on_complete = on_complete
        self._on_overflow = on_overflow
        self._chunks: list[bytes] = []
        self.size = 0
        """Bytes seen so far."""
        self.done = False
        """Whether it stored, gave up or was abandoned: later chunks only pass through."""

    def feed(self, chunk: bytes) -> None:
        """Keep ``chunk`` (one the caller reads), unless the body grew past the limit."""
        if self.done or not chunk:
            return
        self.size += len(chunk)
        if self.limit is not None and self.size > self.limit:
            self.done = True
            self._chunks = []
            self._on_overflow()
            return
        self._chunks.append(chunk)

    async def finish(self) -> None:
        """The body ended: store it (once), unless it was given up on."""
        if self.done:
            return
        self.done = True
        chunks, self._chunks = self._chunks, []
        body = chunks[0] if len(chunks) == 1 else b"".join(chunks)
        del chunks
        try:
            await self._on_complete(body)
        except Exception as exc:  # storing is an optimisation: never the caller's problem
            logger.warning("acc: storing a body read by the caller failed: %r", exc)

    def abandon(self) -> None:
        """The body will not end (an error, the caller closed it): drop what was kept."""
        self.done = True
        self._chunks = []


class Exchange(Protocol[LiveT]):
    """One request, as the binding's client performs it."""

    @property
    def network_errors(self) -> tuple[type[BaseException], ...]:
        """Exceptions of :meth:`send` that mean "the origin could not be reached".

        A stale-if-error window may answer them with the stored entry (RFC 5861 §4).
        """
        ...

    async def send(self, extra_headers: HeaderPairs) -> LiveT:
        """Send the request, with ``extra_headers`` added, and return the response."""
        ...

    def head(self, live: LiveT) -> ResponseHead:
        """Describe ``live`` for the flow."""
        ...

    async def read(self, live: LiveT, limit: int | None) -> tuple[LiveT, bytes | None]:
        """Read the body of ``live`` if it is at most ``limit`` bytes (``None``: any size).

        Returns:
            The response to hand on and the body. When the body is larger than
            ``limit`` the body is ``None``, and the response (``live``, or one made in
            its place) yields all of it to the caller: what was read, then the rest.
        """
        ...

    async def stream(self, live: LiveT, collector: BodyCollector) -> LiveT:
        """The response to hand the caller: ``live``'s body, streamed as it comes.

        Every chunk the caller reads is given to ``collector.feed`` first, and
        ``collector.finish()`` is awaited when the body ends (before the caller's last
        read returns), so the flow can store it; ``collector.abandon()`` is called if it
        fails or is closed before its end. Nothing is read ahead of the caller.
        """
        ...

    async def release(self, live: LiveT) -> None:
        """Give back ``live`` unread (a 304, a 5xx answered from the cache, a refresh)."""
        ...
