"""The caching client: :class:`CachedClient`, an :class:`httpx.AsyncClient` with a cache.

Rules this module keeps:

1. The client is built exactly as ``httpx.AsyncClient(**kwargs)`` builds itself (its
   transport from ``transport=`` or from ``verify``, ``cert``, ``http1``, ``http2``,
   ``limits``, ``trust_env``; proxy mounts from ``proxy=`` and the environment; ``mounts=``),
   and then every transport it would send through is wrapped in a
   :class:`~acc.sessions.httpx.CacheTransport` over one cache. httpx has no public hook
   for that, so the wrapping reads and replaces the client's ``_transport`` and ``_mounts``
   (stable attributes across httpx 0.27 and 0.28; the dependency is pinned below 1.0).
   Wrapping only ``_transport`` would leave a request routed through a proxy or a mount
   silently uncached.
2. The transports share one owner of background refreshes and one ``disabled()``
   switch; the main one closes them, then the backend (when ``autoclose`` is true), when
   the client closes.
3. Settings are the backend's (``client.cache``): a setting name read or assigned on
   the client raises ``AttributeError`` saying so.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx

from acc.core import CacheBackend, ConfigError
from acc.core.resolve import refuse_settings
from acc.sessions.httpx.transport import CacheTransport

__all__ = ["CachedClient"]


class CachedClient(httpx.AsyncClient):
    """A drop-in :class:`httpx.AsyncClient` with a cache.

    Per request, ``extensions={"acc": {...}}`` takes the cache options of
    :class:`~acc.sessions.httpx.CacheTransport` (``expire_after``, ``refresh``,
    ``force_refresh``, ``only_if_cached``), and every response carries its cache metadata
    in ``response.extensions["acc"]``.

    Example::

        async with CachedClient(cache=CacheBackend(expire_after=300)) as client:
            response = await client.get("https://example.com/api")
            print(response.extensions["acc"]["from_cache"], response.json())

    Args:
        cache: A :class:`~acc.core.CacheBackend`, a backend URL such as
            ``"sqlite:///cache.db"``, or ``None`` for an in-memory cache.
        kwargs: Everything :class:`httpx.AsyncClient` accepts.

    Raises:
        ConfigError: ``transport`` is already a :class:`CacheTransport` (it would cache
            twice; give it to a plain ``httpx.AsyncClient`` instead), or a bad ``cache``.
    """

    def __init__(self, *, cache: CacheBackend | str | None = None, **kwargs: Any) -> None:
        if isinstance(kwargs.get("transport"), CacheTransport):
            raise ConfigError(
                "transport",
                "is already a CacheTransport; pass it to httpx.AsyncClient, or pass "
                "CachedClient the transport it wraps",
            )
        super().__init__(**kwargs)
        main = CacheTransport(self._transport, cache=cache)
        self._transport = main
        self._mounts = {
            pattern: None if mounted is None else main.sharing(mounted)
            for pattern, mounted in self._mounts.items()
        }
        self._acc_transport = main

    @property
    def cache(self) -> CacheBackend:
        """The backend this client stores in."""
        return self._acc_transport.cache

    @property
    def cache_transport(self) -> CacheTransport:
        """The :class:`CacheTransport` around the client's main transport."""
        return self._acc_transport

    @property
    def pending_refreshes(self) -> tuple[asyncio.Task[None], ...]:
        """The background refreshes (stale-while-revalidate) still running."""
        return self._acc_transport.pending_refreshes

    @asynccontextmanager
    async def disabled(self) -> AsyncIterator[None]:
        """Bypass the cache for requests made inside the block, even if it raises."""
        async with self._acc_transport.disabled():
            yield


refuse_settings(CachedClient)
