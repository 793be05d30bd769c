"""The caching transport: :class:`CacheTransport`.

The transport translates; the core caches. For each request it reads the per-request
options from ``request.extensions["acc"]``, describes the request as a
:class:`~acc.core.CacheRequest` (:mod:`.request`), hands the core's request flow
(:mod:`acc.core.flow.driver`) that description and an
:class:`~acc.sessions.httpx.exchange.HttpxExchange` to send it with, and turns what the
flow answers into an :class:`httpx.Response` (:mod:`.response`). Every caching rule
(lookup, freshness, revalidation, coalescing, storing, invalidation, stats, logging) is
the flow's.

Rules this module keeps:

1. A misspelt option raises: an unknown key in ``extensions["acc"]`` is a ``TypeError``
   naming it, a bad value a :class:`~acc.core.ConfigError` naming the option.
2. Background refreshes (stale-while-revalidate) use the inner transport, so they are
   closed (awaited a while, then cancelled) before it is; the backend is closed last,
   and only when its ``autoclose`` setting is true.
3. Transports that share one cache through one client (a :class:`CachedClient` wraps
   its mounts too) share one owner of refreshes and one ``disabled()`` switch; only the
   transport that owns them closes them and the backend.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from typing import Final

import httpx

from acc.core import CacheBackend
from acc.core.flow.refresh import BackgroundRefreshes
from acc.core.http.decisions import RequestOptions
from acc.core.resolve import resolve_cache
from acc.sessions.httpx.exchange import HttpxExchange
from acc.sessions.httpx.request import describe_request
from acc.sessions.httpx.response import EXTENSION, response_for

__all__ = ["OPTIONS", "CacheTransport", "request_options"]

OPTIONS: Final = frozenset({"expire_after", "refresh", "force_refresh", "only_if_cached"})
"""The keys ``request.extensions["acc"]`` accepts."""

_NO_OPTIONS: Final = RequestOptions()


def request_options(given: object) -> RequestOptions:
    """The cache options of a request, from its ``extensions["acc"]`` value (rule 1).

    Raises:
        TypeError: ``given`` is not a mapping, or has keys that are not options.
        ConfigError: An option has an invalid value.
    """
    if given is None:
        return _NO_OPTIONS
    if not isinstance(given, Mapping):
        raise TypeError(
            f'extensions["{EXTENSION}"] must be a mapping of cache options, not {given!r}'
        )
    unknown = sorted(str(name) for name in given if name not in OPTIONS)
    if unknown:
        raise TypeError(
            f'unknown cache option(s) in extensions["{EXTENSION}"]: {", ".join(unknown)}; '
            f"expected some of {', '.join(sorted(OPTIONS))}"
        )
    if not given:
        return _NO_OPTIONS
    return RequestOptions.build(**given)


class _Shared:
    """What the transports of one client share (rule 3)."""

    __slots__ = ("cache", "disabled", "refreshes")

    def __init__(self, cache: CacheBackend) -> None:
        self.cache = cache
        self.refreshes = BackgroundRefreshes()
        self.disabled = 0


class CacheTransport(httpx.AsyncBaseTransport):
    """An :class:`httpx.AsyncBaseTransport` that caches what another transport fetches.

    Per request, ``extensions={"acc": {...}}`` accepts:

    * ``expire_after``: the expiration for this response, overriding the settings;
    * ``refresh``: revalidate the stored entry before using it (with ``ETag`` or
      ``Last-Modified``; without validators, fetch again);
    * ``force_refresh``: ignore the stored entry, fetch, and store the new response;
    * ``only_if_cached``: never use the network; a miss is a ``504`` response.

    Every response it returns has ``response.extensions["acc"]``: ``from_cache``,
    ``revalidated``, ``stale``, ``is_expired``, ``cache_key``, ``created_at``,
    ``expires`` and ``stored``.

    Example::

        transport = CacheTransport(httpx.AsyncHTTPTransport(retries=2), cache="sqlite:///c.db")
        async with httpx.AsyncClient(transport=transport) as client:
            response = await client.get("https://example.com/api")
            print(response.extensions["acc"]["from_cache"])

    Args:
        transport: The transport that reaches the network; a new
            :class:`httpx.AsyncHTTPTransport` when ``None``.
        cache: A :class:`~acc.core.CacheBackend`, a backend URL such as
            ``"sqlite:///cache.db"``, or ``None`` for an in-memory cache.
    """

    refresh_close_timeout: float = 5.0
    """Seconds :meth:`aclose` waits for background refreshes before cancelling them."""

    def __init__(
        self,
        transport: httpx.AsyncBaseTransport | None = None,
        *,
        cache: CacheBackend | str | None = None,
    ) -> None:
        self.transport: httpx.AsyncBaseTransport = (
            transport if transport is not None else httpx.AsyncHTTPTransport()
        )
        self._shared = _Shared(resolve_cache(cache))
        self._owner = True

    def sharing(self, transport: httpx.AsyncBaseTransport) -> CacheTransport:
        """A transport over ``transport`` that shares this one's cache (rule 3).

        It shares the background refreshes and the ``disabled()`` switch, and its
        :meth:`aclose` closes ``transport`` only: this transport closes the rest.
        """
        other = object.__new__(type(self))
        other.transport = transport
        other._shared = self._shared
        other._owner = False
        return other

    @property
    def cache(self) -> CacheBackend:
        """The backend this transport stores in."""
        return self._shared.cache

    @property
    def pending_refreshes(self) -> tuple[asyncio.Task[None], ...]:
        """The background refreshes (stale-while-revalidate) still running."""
        return self._shared.refreshes.pending

    @asynccontextmanager
    async def disabled(self) -> AsyncIterator[None]:
        """Bypass the cache for requests made inside the block, even if it raises."""
        self._shared.disabled += 1
        try:
            yield
        finally:
            self._shared.disabled -= 1

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        """Answer ``request`` from the cache, or through the inner transport."""
        options = request_options(request.extensions.get(EXTENSION))
        shared = self._shared
        described, bypass = describe_request(request)
        outcome = await shared.cache.flow.run(
            described,
            HttpxExchange(self.transport, request),
            options,
            refreshes=shared.refreshes,
            bypass=bypass,
            disabled=shared.disabled > 0,
        )
        return response_for(outcome, request, shared.cache.now())

    async def aclose(self) -> None:
        """Close the refreshes, then the inner transport, then the backend (rule 2).

        The backend is closed only when its ``autoclose`` setting is true; otherwise the
        entries this client's responses left in its write-behind queue are written.
        """
        if not self._owner:
            await self.transport.aclose()
            return
        shared = self._shared
        try:
            await shared.refreshes.close(self.refresh_close_timeout)
        finally:
            try:
                await self.transport.aclose()
            finally:
                if shared.cache.settings.autoclose:
                    await shared.cache.close()
                elif not shared.cache.closed:
                    await shared.cache.flush()

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.transport!r}, cache={self.cache!r})"
