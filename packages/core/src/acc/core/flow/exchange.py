"""What a client binding supplies to the flow: the :class:`Exchange` protocol.

The flow (:mod:`acc.core.flow.driver`) decides and sequences; it never performs HTTP
itself. For each request a binding hands it an :class:`Exchange`, which knows how to
send that one request with the client the user has, and how to read what came back.

Rules this module keeps:

1. The flow sees a response only through :class:`ResponseHead`: status, reason, URLs,
   headers as pairs and the redirect hops, in client-independent form. The binding's own
   response object (``LiveT``) travels through the flow untouched, so that a response the
   cache does not store reaches the caller as the client made it (still streaming).
2. The body is read only when the flow asks (:meth:`Exchange.read`): a response that is
   not stored is never buffered by acc.
3. ``send(extra_headers)`` sends the request as the caller made it, plus
   ``extra_headers`` (the conditional headers of a revalidation); it may be called more
   than once for one request (a 304 that selects no stored entry is asked again without
   conditions, RFC 9111 §4.3.4) and again later by a background refresh.
"""

from __future__ import annotations

from typing import Protocol, TypeVar

import attrs

from acc.core.models import HeaderPairs, RedirectHop

__all__ = ["Exchange", "LiveT", "ResponseHead"]

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
    """

    status: int
    reason: str
    url: str
    method: str
    headers: HeaderPairs = ()
    request_headers: HeaderPairs = ()
    history: tuple[RedirectHop, ...] = ()
    body_decoded: bool = True


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

    async def read(self, live: LiveT) -> bytes:
        """Read the whole body of ``live`` (the flow stores it)."""
        ...

    async def release(self, live: LiveT) -> None:
        """Give back ``live`` unread (a 304, a 5xx answered from the cache, a refresh)."""
        ...
