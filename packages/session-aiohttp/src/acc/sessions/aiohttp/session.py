"""The caching session: :class:`CacheMixin` and :class:`CachedSession`.

The session is the adapter that performs I/O for the core's policy. For each request it
builds the key, reads the entry, asks :func:`acc.core.http.policy.decide_lookup` what to do,
does it (return the entry; return it and refresh it in the background; send a
conditional request; fetch; or answer 504), asks :func:`acc.core.http.policy.decide_error`
whether a failed fetch may be answered with the stored entry, and asks
:func:`acc.core.http.policy.decide_store` what to keep of what the network returned. A
successful unsafe request (POST, PUT, PATCH, DELETE), cacheable or not, invalidates the
entries of its target URL (RFC 9111 §4.4).

Concurrent identical cacheable misses in one process are coalesced: the first fetches,
the rest wait for it and read what it stored. Requests the cache does not handle
(methods not in ``allowed_methods``, ``force_refresh``, a disabled session) never wait.
"""

from __future__ import annotations

import asyncio
import logging
import warnings
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager, nullcontext
from typing import TYPE_CHECKING, Any, TypeVar

import attrs
from aiohttp import ClientConnectionError, ClientResponse, ClientSession
from multidict import CIMultiDict
from yarl import URL

from acc.core import CacheBackend, CachedResponse, ConfigError
from acc.core.expiration import validate_expiration
from acc.core.http.policy import (
    UNSET,
    Fetch,
    GatewayTimeout,
    RequestOptions,
    Revalidate,
    StaleWhileRevalidate,
    UseCached,
    decide_error,
    decide_lookup,
    decide_store,
    invalidated_urls,
    is_cacheable_method,
    is_unsafe_method,
    not_modified_selects,
    refresh_not_modified,
)
from acc.core.keys import CacheRequest, redact_url
from acc.core.models import utcnow
from acc.sessions.aiohttp.entries import entry_from_response
from acc.sessions.aiohttp.refresh import BackgroundRefreshes
from acc.sessions.aiohttp.request import UncacheableBody, describe_request
from acc.sessions.aiohttp.response import CachedClientResponse, mark_live_response

__all__ = ["CacheMixin", "CachedSession"]

_Session = TypeVar("_Session", bound="CacheMixin")

logger = logging.getLogger("acc")

_NO_LOCK = nullcontext(False)

_NETWORK_ERRORS = (ClientConnectionError, OSError, asyncio.TimeoutError)
"""Failures that stale-if-error may answer with a stored entry (a refused connection,
a reset, a timeout)."""


def resolve_cache(cache: CacheBackend | str | None) -> CacheBackend:
    """Return the backend a session should use for its ``cache`` argument."""
    if cache is None:
        return CacheBackend()
    if isinstance(cache, CacheBackend):
        return cache
    if isinstance(cache, str):
        return CacheBackend.from_url(cache)
    raise ConfigError("cache", f"expected a CacheBackend, a URL string or None, not {cache!r}")


def _bodiless(described: CacheRequest, method: str, url: str) -> CacheRequest:
    """The description of a body-less ``method`` request for ``url`` with the same headers."""
    return attrs.evolve(described, method=method, url=url, body_kind="none", body=None)


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

    async def close(self) -> None:
        """Close the session, and the backend when its ``autoclose`` setting is true.

        Background refreshes go first: they need the connections the session owns.
        """
        try:
            await self._acc_refreshes.close(self.refresh_close_timeout)
        finally:
            try:
                await super().close()  # type: ignore[misc]
            finally:
                if self.cache.settings.autoclose:
                    await self.cache.close()

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
        backend = self.cache
        settings = backend.settings
        request = super()._request  # type: ignore[misc]
        if self._acc_disabled or not is_cacheable_method(method, settings):
            if only_if_cached:  # never the network, even when the cache is out of play
                url = self._build_url(str_or_url)  # type: ignore[attr-defined]
                return self._gateway_timeout(method, url, None)
            response = await request(method, str_or_url, **kwargs)
            if not self._acc_disabled and is_unsafe_method(method):
                await self._invalidate_target(method, str_or_url, kwargs, response, None)
            return mark_live_response(response)
        try:
            url, described = self._describe(method, str_or_url, kwargs, with_body=True)
        except UncacheableBody as why:
            logger.debug("acc: not caching %s %s: %s", method, str_or_url, why)
            response = await request(method, str_or_url, **kwargs)
            if is_unsafe_method(method):
                await self._invalidate_target(method, str_or_url, kwargs, response, None)
            return mark_live_response(response)
        if expire_after is not UNSET:
            expire_after = validate_expiration(expire_after, "expire_after")
        options = RequestOptions(
            expire_after=expire_after,
            refresh=refresh,
            force_refresh=force_refresh,
            only_if_cached=only_if_cached,
        )
        key = backend.create_key(described)
        request_headers = described.headers
        completions_before_lookup = backend.inflight.completions
        entry = (
            None
            if force_refresh
            else await backend.get_response(key, request_headers=request_headers)
        )
        decision = decide_lookup(
            entry, options, utcnow(), settings=settings, request_headers=request_headers
        )

        if isinstance(decision, UseCached):
            return self._serve(decision.entry, key)
        if isinstance(decision, GatewayTimeout):
            return self._gateway_timeout(method, url, key)
        if isinstance(decision, StaleWhileRevalidate):
            self._refresh_in_background(
                decision, method, str_or_url, kwargs, key, described, options
            )
            return self._serve(decision.entry, key)

        look_again = leader = False
        if isinstance(decision, Fetch) and decision.shareable:
            waiter = backend.inflight.join(key)
            if waiter is None:
                leader = True
                # A leader that finished during our lookup may have stored the entry.
                look_again = backend.inflight.completions != completions_before_lookup
            else:
                await waiter
                look_again = True
        try:
            # A leader also coordinates with other processes (a no-op on most backends).
            async with backend.fetch_lock(key) if leader else _NO_LOCK as waited_elsewhere:
                if look_again or waited_elsewhere:
                    stored = await backend.get_response(key, request_headers=request_headers)
                    second = decide_lookup(
                        stored,
                        options,
                        utcnow(),
                        settings=settings,
                        request_headers=request_headers,
                    )
                    if isinstance(second, UseCached):
                        return self._serve(second.entry, key)
                stale = decision.entry if isinstance(decision, Revalidate) else entry
                return await self._exchange(
                    decision, stale, method, str_or_url, kwargs, key, described, options
                )
        finally:
            if leader:
                backend.inflight.done(key)

    # -- the decisions' I/O -------------------------------------------------------------------

    async def _exchange(
        self,
        decision: Revalidate | Fetch,
        stale: CachedResponse | None,
        method: str,
        str_or_url: str | URL,
        kwargs: dict[str, Any],
        key: str,
        described: CacheRequest,
        options: RequestOptions,
    ) -> ClientResponse | CachedClientResponse:
        """Send the request (conditionally for a revalidation) and act on the answer.

        ``stale`` is the entry that may answer a failure (stale-if-error), or ``None``.
        """
        request = super()._request  # type: ignore[misc]
        settings = self.cache.settings
        try:
            if isinstance(decision, Revalidate):
                conditional = dict(kwargs)
                headers = CIMultiDict(conditional.pop("headers", None) or {})
                headers.extend(decision.headers)
                response = await request(method, str_or_url, headers=headers, **conditional)
                if response.status == 304:
                    refreshed = await self._refreshed(
                        decision.entry, response, key, described, options
                    )
                    if refreshed is not None:
                        return refreshed
                    # The 304 is about another representation: ask without conditions.
                    response = await request(method, str_or_url, **kwargs)
            else:
                response = await request(method, str_or_url, **kwargs)
        except _NETWORK_ERRORS:
            fallback = decide_error(
                stale,
                status=None,
                settings=settings,
                now=utcnow(),
                request_headers=described.headers,
            )
            if fallback is None:
                raise
            logger.debug("acc: connection failed; serving the stored %s", described.url)
            return self._serve(fallback.entry, key)
        if response.status >= 500 and stale is not None:
            fallback = decide_error(
                stale,
                status=response.status,
                settings=settings,
                now=utcnow(),
                request_headers=described.headers,
            )
            if fallback is not None:
                response.release()
                return self._serve(fallback.entry, key)
        stored = await self._store(response, key, described, options)
        if is_unsafe_method(method):
            await self._invalidate_target(method, str_or_url, kwargs, response, described)
        return stored

    def _refresh_in_background(
        self,
        decision: StaleWhileRevalidate,
        method: str,
        str_or_url: str | URL,
        kwargs: dict[str, Any],
        key: str,
        described: CacheRequest,
        options: RequestOptions,
    ) -> None:
        """Start the refresh of a stale entry just served (at most one per key)."""
        follow_up: Revalidate | Fetch = (
            Revalidate(decision.entry, decision.headers) if decision.headers else Fetch("expired")
        )
        arguments = dict(kwargs)

        async def refresh() -> None:
            response = await self._exchange(
                follow_up, None, method, str_or_url, arguments, key, described, options
            )
            response.release()

        self._acc_refreshes.start(key, refresh)

    def _serve(
        self, entry: CachedResponse, key: str, *, revalidated: bool = False
    ) -> CachedClientResponse:
        self.cache.stats.hits += 1
        response = CachedClientResponse(entry, cache_key=key, revalidated=revalidated)
        if entry.cookies:
            self.cookie_jar.update_cookies(response.cookies, response.url)  # type: ignore[attr-defined]
        return response

    def _gateway_timeout(self, method: str, url: URL, key: str | None) -> CachedClientResponse:
        entry = CachedResponse(
            status=504,
            reason="Gateway Timeout",
            url=redact_url(str(url), self.cache.settings.ignored_params),
            method=method.upper(),
            headers=(("Content-Length", "0"),),
        )
        return CachedClientResponse(entry, cache_key=key, from_cache=False)

    async def _refreshed(
        self,
        entry: CachedResponse,
        response: ClientResponse,
        key: str,
        described: CacheRequest,
        options: RequestOptions,
    ) -> CachedClientResponse | None:
        """A 304 answered: merge its headers, store the entry again, serve the body.

        Returns ``None`` when the 304 does not select ``entry`` (RFC 9111 §4.3.4).
        """
        response.release()
        headers = tuple(response.headers.items())
        if not not_modified_selects(entry, headers):
            return None
        refreshed, decision = refresh_not_modified(
            entry,
            headers,
            url=str(response.url),
            options=options,
            settings=self.cache.settings,
            now=utcnow(),
            request_headers=described.headers,
        )
        if decision.store:
            await self.cache.save_response(
                key,
                refreshed,
                request_headers=described.headers,
                keep_until=decision.storage_expires,
            )
        self.cache.stats.revalidations += 1
        return self._serve(refreshed, key, revalidated=True)

    async def _store(
        self,
        response: ClientResponse,
        key: str,
        described: CacheRequest,
        options: RequestOptions,
    ) -> ClientResponse:
        backend = self.cache
        backend.stats.misses += 1
        now = utcnow()
        decision = decide_store(
            method=response.method,
            url=str(response.url),
            status=response.status,
            options=options,
            settings=backend.settings,
            now=now,
            headers=tuple(response.headers.items()),
            request_headers=described.headers,
        )
        if not decision.store:
            return mark_live_response(response, cache_key=key)
        body = await response.read()
        entry = entry_from_response(
            response,
            body,
            expires=decision.expires,
            ignored_params=backend.settings.ignored_params,
        )
        aliases = self._alias_keys(response, described)
        await backend.save_response(
            key,
            entry,
            aliases=aliases,
            request_headers=described.headers,
            keep_until=decision.storage_expires,
        )
        return mark_live_response(response, entry=entry, cache_key=key, body=body)

    async def _invalidate_target(
        self,
        method: str,
        str_or_url: str | URL,
        kwargs: dict[str, Any],
        response: ClientResponse,
        described: CacheRequest | None,
    ) -> None:
        """After a successful unsafe request, drop the entries of its target (RFC 9111 §4.4).

        The GET and HEAD entries of each URL go: the plain request's, and the one a
        request with this request's headers and credentials would have (with every
        variant of either).
        """
        if response.status >= 400:
            return
        if described is None:
            _url, described = self._describe(method, str_or_url, kwargs, with_body=False)
        urls = invalidated_urls(described.url, response.status, tuple(response.headers.items()))
        backend = self.cache
        keys = []
        for target in urls:
            for safe in ("GET", "HEAD"):
                keys.append(backend.url_key(target, safe))
                keys.append(backend.create_key(_bodiless(described, safe, target)))
        await backend.invalidate(keys)

    def _alias_keys(self, response: ClientResponse, described: CacheRequest) -> Iterable[str]:
        """Keys of the URLs a redirect chain passed through, pointing at the final entry."""
        if not response.history:
            return ()
        urls = [str(hop.url) for hop in response.history[1:]] + [str(response.url)]
        return {self.cache.create_key(_bodiless(described, "GET", u)) for u in urls}

    def _describe(
        self, method: str, str_or_url: str | URL, kwargs: dict[str, Any], *, with_body: bool
    ) -> tuple[URL, CacheRequest]:
        """Describe the request ``kwargs`` make; without its body when keys ignore it."""
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
