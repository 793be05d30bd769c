"""The caching session: :class:`CacheMixin` and :class:`CachedSession`.

The session is the adapter that performs I/O for the core's policy. For each request it
builds the key, reads the entry, asks :func:`acc.core.policy.decide_lookup` what to do,
does it (return the entry, send a conditional request, fetch, or answer 504), and asks
:func:`acc.core.policy.decide_store` what to keep of what the network returned.

Concurrent identical cacheable misses in one process are coalesced: the first fetches,
the rest wait for it and read what it stored. Requests the cache does not handle
(methods not in ``allowed_methods``, ``force_refresh``, a disabled session) never wait.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager, nullcontext
from typing import TYPE_CHECKING, Any, TypeVar

import attrs
from aiohttp import ClientResponse, ClientSession
from multidict import CIMultiDict
from yarl import URL

from acc.core import CacheBackend, CachedResponse, ConfigError, RedirectHop
from acc.core.expiration import validate_expiration
from acc.core.keys import CacheRequest, redact_headers, redact_url
from acc.core.models import utcnow
from acc.core.policy import (
    UNSET,
    Fetch,
    GatewayTimeout,
    RequestOptions,
    Revalidate,
    UseCached,
    decide_lookup,
    decide_store,
    is_cacheable_method,
    merge_not_modified,
)
from acc.sessions.aiohttp.request import UncacheableBody, describe_request
from acc.sessions.aiohttp.response import CachedClientResponse, mark_live_response

__all__ = ["CacheMixin", "CachedSession"]

_Session = TypeVar("_Session", bound="CacheMixin")

logger = logging.getLogger("acc")

_NO_LOCK = nullcontext(False)

_UNSTORED_HEADERS = frozenset({"content-encoding", "transfer-encoding", "content-length"})


def resolve_cache(cache: CacheBackend | str | None) -> CacheBackend:
    """Return the backend a session should use for its ``cache`` argument."""
    if cache is None:
        return CacheBackend()
    if isinstance(cache, CacheBackend):
        return cache
    if isinstance(cache, str):
        return CacheBackend.from_url(cache)
    raise ConfigError("cache", f"expected a CacheBackend, a URL string or None, not {cache!r}")


def entry_from_response(
    response: ClientResponse,
    body: bytes,
    *,
    expires: Any,
    ignored_params: frozenset[str],
) -> CachedResponse:
    """Build the stored form of a live response whose body was read (and decoded).

    The body is stored decoded, so ``Content-Encoding`` is dropped and ``Content-Length``
    is set to the stored length; credentials and ignored parameters are redacted.
    """
    headers = [(n, v) for n, v in response.headers.items() if n.lower() not in _UNSTORED_HEADERS]
    headers.append(("Content-Length", str(len(body))))
    history = tuple(
        RedirectHop(
            status=hop.status,
            reason=hop.reason or "",
            url=redact_url(str(hop.url), ignored_params),
            method=hop.method,
            headers=tuple(hop.headers.items()),
        )
        for hop in response.history
    )
    return CachedResponse(
        status=response.status,
        reason=response.reason or "",
        url=redact_url(str(response.url), ignored_params),
        method=response.method,
        headers=tuple(headers),
        request_headers=redact_headers(
            tuple(response.request_info.headers.items()), ignored_params
        ),
        body=body,
        created_at=utcnow(),
        expires=expires,
        history=history,
    )


class CacheMixin:
    """Adds caching to an :class:`aiohttp.ClientSession` subclass.

    Put it before ``ClientSession`` in the bases. Per request, ``get()``, ``post()``,
    ``request()`` and the rest accept, besides aiohttp's own arguments:

    * ``expire_after``: the expiration for this response, overriding the settings;
    * ``refresh``: revalidate the stored entry before using it (with ``ETag`` or
      ``Last-Modified``; without validators, fetch again);
    * ``force_refresh``: ignore the stored entry, fetch, and store the new response;
    * ``only_if_cached``: never use the network; a miss is a ``504`` response.

    Args:
        cache: A :class:`~acc.core.CacheBackend`, a backend URL such as
            ``"sqlite:///cache.db"``, or ``None`` for an in-memory cache.
        kwargs: Everything :class:`aiohttp.ClientSession` accepts.
    """

    # aiohttp (in debug mode) warns when a session gets attributes not listed here.
    ATTRS = ClientSession.ATTRS | frozenset({"cache", "_acc_disabled"})

    def __init__(self, *args: Any, cache: CacheBackend | str | None = None, **kwargs: Any) -> None:
        self.cache: CacheBackend = resolve_cache(cache)
        self._acc_disabled = 0
        super().__init__(*args, **kwargs)

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
        """Close the session, and the backend when its ``autoclose`` setting is true."""
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
        request = super()._request  # type: ignore[misc]
        if self._acc_disabled or not is_cacheable_method(method, backend.settings):
            if only_if_cached:  # never the network, even when the cache is out of play
                url = self._build_url(str_or_url)  # type: ignore[attr-defined]
                return self._gateway_timeout(method, url, None)
            return mark_live_response(await request(method, str_or_url, **kwargs))
        try:
            url, described = describe_request(
                self,  # type: ignore[arg-type]
                method,
                str_or_url,
                params=kwargs.get("params"),
                data=kwargs.get("data"),
                json=kwargs.get("json"),
                headers=kwargs.get("headers"),
                auth=kwargs.get("auth"),
                cookies=kwargs.get("cookies"),
            )
        except UncacheableBody as why:
            logger.debug("acc: not caching %s %s: %s", method, str_or_url, why)
            return mark_live_response(await request(method, str_or_url, **kwargs))
        if expire_after is not UNSET:
            expire_after = validate_expiration(expire_after, "expire_after")
        options = RequestOptions(
            expire_after=expire_after,
            refresh=refresh,
            force_refresh=force_refresh,
            only_if_cached=only_if_cached,
        )
        key = backend.create_key(described)
        completions_before_lookup = backend.inflight.completions
        entry = None if force_refresh else await backend.get_response(key)
        decision = decide_lookup(entry, options, utcnow())

        if isinstance(decision, UseCached):
            return self._serve(decision.entry, key)
        if isinstance(decision, GatewayTimeout):
            return self._gateway_timeout(method, url, key)

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
                    stored = await backend.get_response(key)
                    if isinstance(second := decide_lookup(stored, options, utcnow()), UseCached):
                        return self._serve(second.entry, key)
                if isinstance(decision, Revalidate):
                    headers = CIMultiDict(kwargs.pop("headers", None) or {})
                    headers.extend(decision.headers)
                    response = await request(method, str_or_url, headers=headers, **kwargs)
                    if response.status == 304:
                        return await self._refreshed(decision.entry, response, key, options)
                else:
                    response = await request(method, str_or_url, **kwargs)
                return await self._store(response, key, described, options)
        finally:
            if leader:
                backend.inflight.done(key)

    # -- the decisions' I/O -------------------------------------------------------------------

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
        self, entry: CachedResponse, response: ClientResponse, key: str, options: RequestOptions
    ) -> CachedClientResponse:
        """A 304 confirmed ``entry``: merge its headers, store it again, serve the body."""
        response.release()
        now = utcnow()
        decision = decide_store(
            method=entry.method,
            url=str(response.url),
            status=entry.status,
            options=options,
            settings=self.cache.settings,
            now=now,
        )
        refreshed = merge_not_modified(entry, tuple(response.headers.items()), decision, now)
        if decision.store:
            await self.cache.save_response(key, refreshed)
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
        await backend.save_response(key, entry, aliases=aliases)
        return mark_live_response(response, entry=entry, cache_key=key, body=body)

    def _alias_keys(self, response: ClientResponse, described: CacheRequest) -> Iterable[str]:
        """Keys of the URLs a redirect chain passed through, pointing at the final entry."""
        if not response.history:
            return ()
        urls = [str(hop.url) for hop in response.history[1:]] + [str(response.url)]
        return {
            self.cache.create_key(
                attrs.evolve(described, method="GET", url=u, body_kind="none", body=None)
            )
            for u in urls
        }


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
