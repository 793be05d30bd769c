"""The exchange behind :meth:`acc.core.CacheBackend.fetch`: a plain ``send`` callable.

Any HTTP client becomes a cache client through one coroutine function,
``send(request: CacheRequest) -> CachedResponse``, that performs the request and returns
the response with its body read. This module adapts it to the flow's
:class:`~acc.core.flow.exchange.Exchange` protocol.

Rules this module keeps:

1. ``send`` receives the request as the caller gave it, plus the conditional headers of a
   revalidation (``If-None-Match``, ``If-Modified-Since``) appended to ``headers``; it may
   answer ``304``.
2. Any exception ``send`` raises is a failed fetch: a stale-if-error window may answer it
   with the stored entry, and otherwise it reaches the caller unchanged.
3. The response ``send`` returns is taken as already decoded (``Content-Encoding`` is
   dropped from what is stored, as for the client bindings), and when it carries no
   request headers, the request's are recorded.
4. Its body is already in memory, so its length is known before the flow decides: a
   body above ``max_body_size`` is returned, not stored.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import attrs

from acc.core.flow.exchange import BodyCollector, ResponseHead
from acc.core.keys import CacheRequest
from acc.core.models import CachedResponse, HeaderPairs

__all__ = ["SendCallable", "SendExchange"]

SendCallable = Callable[[CacheRequest], Awaitable[CachedResponse]]
"""``async def send(request: CacheRequest) -> CachedResponse``: performs the request."""


@attrs.frozen(slots=True)
class SendExchange:
    """One request sent through a user's ``send`` callable."""

    request: CacheRequest
    send_request: SendCallable
    network_errors: tuple[type[BaseException], ...] = (Exception,)

    async def send(self, extra_headers: HeaderPairs) -> CachedResponse:
        """Call ``send`` with the request, conditional headers appended (rule 1)."""
        request = self.request
        if extra_headers:
            request = attrs.evolve(request, headers=(*request.headers, *extra_headers))
        response = await self.send_request(request)
        if not isinstance(response, CachedResponse):
            raise TypeError(
                f"send() must return an acc.core.CachedResponse, not {type(response).__name__}"
            )
        return response

    def head(self, live: CachedResponse) -> ResponseHead:
        """Describe what ``send`` returned (rule 3)."""
        return ResponseHead(
            status=live.status,
            reason=live.reason,
            url=live.url or self.request.url,
            method=live.method or self.request.method,
            headers=live.headers,
            request_headers=live.request_headers or self.request.headers,
            history=live.history,
            content_length=len(live.body),
        )

    async def read(
        self, live: CachedResponse, limit: int | None
    ) -> tuple[CachedResponse, bytes | None]:
        """The body ``send`` already read, unless it is larger than ``limit``."""
        body = live.body
        return live, (body if limit is None or len(body) <= limit else None)

    async def stream(self, live: CachedResponse, collector: BodyCollector) -> CachedResponse:
        """The body is in memory already: the collector gets it whole (rule 4)."""
        collector.feed(live.body)
        await collector.finish()
        return live

    async def release(self, live: CachedResponse) -> None:
        """Nothing to give back: ``send`` returned a finished response."""
