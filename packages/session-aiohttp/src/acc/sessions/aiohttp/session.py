"""The caching session: :class:`CacheMixin` and :class:`CachedSession`.

The session translates; the core caches. For each request it describes the aiohttp
arguments as a :class:`~acc.core.CacheRequest` (:mod:`.request`), hands the core's request
flow (:mod:`acc.core.flow.driver`) that description and an
:class:`~acc.sessions.aiohttp.exchange.AiohttpExchange` to send it with, and turns what
the flow answers into an aiohttp response: the live ``ClientResponse`` when the network
answered, a :class:`CachedClientResponse` when the cache did. Every caching rule (lookup,
freshness, revalidation, coalescing, storing, invalidation, stats, logging) is the flow's.

Settings and maintenance are the backend's (``session.cache``): a setting name read or
assigned on the session raises ``AttributeError`` saying so, and aiohttp-client-cache's
session-level maintenance methods are deprecated aliases of the backend's.
"""

from __future__ import annotations

import asyncio
import warnings
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any, TypeVar

from aiohttp import ClientResponse, ClientSession
from yarl import URL

from acc.core import CacheBackend, CacheRequest
from acc.core.flow.outcome import Outcome
from acc.core.flow.refresh import BackgroundRefreshes
from acc.core.http.decisions import UNSET, RequestOptions
from acc.core.resolve import refuse_settings, resolve_cache
from acc.sessions.aiohttp.exchange import AiohttpExchange
from acc.sessions.aiohttp.request import UncacheableBody, describe_request
from acc.sessions.aiohttp.response import CachedClientResponse, mark_live_response

__all__ = ["CacheMixin", "CachedSession"]

_Session = TypeVar("_Session", bound="CacheMixin")


class CacheMixin:
    """Adds caching to an :class:`aiohttp.ClientSession` subclass.

    Put it before ``ClientSession`` in the bases. Per request, ``get()``, ``post()``,
    ``request()`` and the rest accept, besides aiohttp's own arguments:

    * ``expire_after``: the expiration for this response, overriding the settings;
    * ``refresh``: revalidate the stored entry before using it (with ``ETag`` or
      ``Last-Modified``; without validators, fetch again);
    * ``force_refresh``: ignore the stored entry, fetch, and store the new response;
    * ``only_if_cached``: never use the network; a miss is a ``504`` response.

    Stale-while-revalidate refreshes run as tasks of the session; :attr:`pending_refreshes`
    lists them, and :meth:`close` waits for them up to ``refresh_close_timeout`` seconds,
    then cancels what is left.

    Args:
        cache: A :class:`~acc.core.CacheBackend`, a backend URL such as
            ``"sqlite:///cache.db"``, or ``None`` for an in-memory cache.
        kwargs: Everything :class:`aiohttp.ClientSession` accepts.
    """

    # aiohttp (in debug mode) warns when a session gets attributes not listed here.
    ATTRS = ClientSession.ATTRS | frozenset(
        {"cache", "_acc_disabled", "_acc_refreshes", "refresh_close_timeout"}
    )

    refresh_close_timeout: float = 5.0
    """Seconds :meth:`close` waits for background refreshes before cancelling them."""

    def __init__(self, *args: Any, cache: CacheBackend | str | None = None, **kwargs: Any) -> None:
        self.cache: CacheBackend = resolve_cache(cache)
        self._acc_disabled = 0
        self._acc_refreshes = BackgroundRefreshes()
        super().__init__(*args, **kwargs)

    @property
    def pending_refreshes(self) -> tuple[asyncio.Task[None], ...]:
        """The background refreshes (stale-while-revalidate) still running."""
        return self._acc_refreshes.pending

    if TYPE_CHECKING:
        # Requests return hits or misses, both CacheAwareResponse: say so to type checkers.
        from acc.sessions.aiohttp.protocols import CachedRequestContextManager as _CRM

        def request(self, method: str, url: str | URL, **kwargs: Any) -> _CRM: ...  # noqa: D102
        def get(self, url: str | URL, **kwargs: Any) -> _CRM: ...  # noqa: D102
        def head(self, url: str | URL, **kwargs: Any) -> _CRM: ...  # noqa: D102
        def options(self, url: str | URL, **kwargs: Any) -> _CRM: ...  # noqa: D102
        def post(self, url: str | URL, **kwargs: Any) -> _CRM: ...  # noqa: D102
        def put(self, url: str | URL, **kwargs: Any) -> _CRM: ...  # noqa: D102
        def patch(self, url: str | URL, **kwargs: Any) -> _CRM: ...  # noqa: D102
        def delete(self, url: str | URL, **kwargs: Any) -> _CRM: ...  # noqa: D102
        async def __aenter__(self: _Session) -> _Session: ...

    @asynccontextmanager
    async def disabled(self) -> AsyncIterator[None]:
        """Bypass the cache for requests made inside the block, even if it raises."""
        self._acc_disabled += 1
        try:
            yield
        finally:
            self._acc_disabled -= 1

    # -- aiohttp-client-cache's session-level maintenance: deprecated aliases ----------------

    def _deprecated(self, old: str, new: str) -> None:
        warnings.warn(
            f"{type(self).__name__}.{old} is deprecated (maintenance is the backend's): use {new}",
            DeprecationWarning,
            stacklevel=3,
        )

    def _absolute(self, url: str | URL) -> str:
        """``url`` joined to the session's ``base_url``, as a request would send it."""
        return describe_request(self, "GET", url).url  # type: ignore[arg-type]

    async def delete_expired_responses(self) -> int:
        """Deprecated: ``await session.cache.delete(expired=True)``, which this calls."""
        self._deprecated("delete_expired_responses()", "await session.cache.delete(expired=True)")
        return await self.cache.delete(expired=True)

    async def delete_url(self, url: str | URL, method: str = "GET") -> None:
        """Deprecated: ``await session.cache.delete_url(url, method)``, which this calls.

        A relative ``url`` is joined to the session's ``base_url`` first.
        """
        self._deprecated("delete_url()", "await session.cache.delete_url(url, method)")
        await self.cache.delete_url(self._absolute(url), method)

    async def has_url(self, url: str | URL, method: str = "GET") -> bool:
        """Deprecated: ``await session.cache.has_url(url, method)``, which this calls.

        A relative ``url`` is joined to the session's ``base_url`` first.
        """
        self._deprecated("has_url()", "await session.cache.has_url(url, method)")
        return await self.cache.has_url(self._absolute(url), method)

    async def close(self) -> None:
        """Close the session, and the backend when its ``autoclose`` setting is true.

        Background refreshes go first: they need the connections the session owns. A
        backend left open still writes what its write-behind queue holds first.
        """
        try:
            await self._acc_refreshes.close(self.refresh_close_timeout)
        finally:
            try:
                await super().close()  # type: ignore[misc]
            finally:
                if self.cache.settings.autoclose:
                    await self.cache.close()
                elif not self.cache.closed:
                    await self.cache.flush()

    async def _request(
        self,
        method: str,
        str_or_url: str | URL,
        *,
        expire_after: Any = UNSET,
        refresh: bool = False,
        force_refresh: bool = False,
        only_if_cached: bool = False,
        **kwargs: Any,
    ) -> ClientResponse | CachedClientResponse:
        options = RequestOptions.build(
            expire_after=expire_after,
            refresh=refresh,
            force_refresh=force_refresh,
            only_if_cached=only_if_cached,
        )
        bypass = None
        try:
            described = self._describe(method, str_or_url, kwargs, with_body=True)
        except UncacheableBody as why:
            bypass = str(why)
            described = self._describe(method, str_or_url, kwargs, with_body=False)
        auto_decompress = kwargs.get("auto_decompress")
        if auto_decompress is None:
            auto_decompress = self.auto_decompress  # type: ignore[attr-defined]
        exchange = AiohttpExchange(
            super()._request,  # type: ignore[misc]
            method,
            str_or_url,
            kwargs,
            auto_decompress=bool(auto_decompress),
        )
        outcome = await self.cache.flow.run(
            described,
            exchange,
            options,
            refreshes=self._acc_refreshes,
            bypass=bypass,
            disabled=self._acc_disabled > 0,
        )
        return self._response(outcome)

    def _response(self, outcome: Outcome[ClientResponse]) -> ClientResponse | CachedClientResponse:
        """The aiohttp response for what the flow answered."""
        if outcome.live is not None:
            return mark_live_response(
                outcome.live, entry=outcome.entry, cache_key=outcome.cache_key, body=outcome.body
            )
        entry = outcome.entry
        assert entry is not None
        response = CachedClientResponse(
            entry,
            cache_key=outcome.cache_key,
            from_cache=outcome.from_cache,
            revalidated=outcome.revalidated,
            stale=outcome.stale,
        )
        if outcome.from_cache and (entry.history or entry.cookies):
            self._restore_cookies(response)
        return response

    def _restore_cookies(self, response: CachedClientResponse) -> None:
        """Put the cookies a hit sets, of every redirect hop and then its own, in the jar.

        A hit carries ``Set-Cookie`` only when the backend has ``store_cookies=True`` (or
        when a ``304`` just revalidated it and set a cookie for this very request): the
        core drops it otherwise, so no other session's cookie lands here. A cookie the jar
        refuses is skipped; it never fails the request.
        """
        jar = self.cookie_jar  # type: ignore[attr-defined]
        for source in (*response.history, response):
            if source.entry.cookies:
                try:
                    jar.update_cookies(source.cookies, source.url)
                except Exception:  # a cookie the jar cannot take: skipped, never an error
                    continue

    def _describe(
        self, method: str, str_or_url: str | URL, kwargs: dict[str, Any], *, with_body: bool
    ) -> CacheRequest:
        """Describe the request ``kwargs`` make; without its body when it cannot be keyed."""
        return describe_request(
            self,  # type: ignore[arg-type]
            method,
            str_or_url,
            params=kwargs.get("params"),
            data=kwargs.get("data") if with_body else None,
            json=kwargs.get("json") if with_body else None,
            headers=kwargs.get("headers"),
            auth=kwargs.get("auth"),
            cookies=kwargs.get("cookies"),
        )


refuse_settings(CacheMixin)

with warnings.catch_warnings():
    # aiohttp warns on every ClientSession subclass. This one overrides only _request
    # and close, through the documented CacheMixin, so the warning would be noise.
    warnings.simplefilter("ignore", DeprecationWarning)

    class CachedSession(CacheMixin, ClientSession):  # type: ignore[misc]
        """A drop-in :class:`aiohttp.ClientSession` with a cache.

        Example::

            async with CachedSession(cache=CacheBackend(expire_after=300)) as session:
                async with session.get("https://example.com/api") as response:
                    data = await response.json()
                    print(response.from_cache)
        """
