"""The conformance kit against RedisCache, on a real redis-server and a real cluster.

Each test gets a cache name of its own, so a shared server (``ACC_REDIS_URL``) is never
flushed: only the test's own keys are written and removed.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest

from acc.backends.redis import RedisCache, RedisConnection
from acc.core.storage import BaseCache
from acc.core.testing import BaseCacheContract


def unique_name(prefix: str = "contract") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


async def _remove(url: str, name: str, *stores: str) -> None:
    """Delete what a test left under ``name``, through a fresh connection."""
    for store in stores:
        leftover = RedisCache(name, store, url=url)
        await leftover.clear()
        await leftover.close()


class _RedisStores:
    """``cache``/``other_namespace``/``reopen``/``second_handle`` for one server URL.

    A subclass provides ``server_url`` (a fixture) and may set ``name_prefix``.
    """

    name_prefix = "contract"

    @pytest.fixture
    def name(self) -> str:
        return unique_name(self.name_prefix)

    @pytest.fixture
    async def cache(self, server_url: str, name: str) -> AsyncIterator[RedisCache]:
        store = RedisCache(name, "responses", url=server_url)
        yield store
        await store.close()
        await _remove(server_url, name, "responses", "redirects")

    @pytest.fixture
    async def other_namespace(self, server_url: str, name: str) -> AsyncIterator[RedisCache]:
        store = RedisCache(name, "redirects", url=server_url)  # same cache, another store
        yield store
        await store.close()

    @pytest.fixture
    def reopen(self, cache: RedisCache, server_url: str) -> Callable[[], Awaitable[BaseCache]]:
        async def reopen() -> BaseCache:
            await cache.close()
            return RedisCache(cache.cache_name, cache.store, url=server_url)

        return reopen

    @pytest.fixture
    async def second_handle(self, server_url: str, name: str) -> AsyncIterator[RedisCache]:
        store = RedisCache(name, "responses", url=server_url)  # its own client
        yield store
        await store.close()


class TestRedisCache(_RedisStores, BaseCacheContract):
    """A standalone store on a single redis-server."""

    @pytest.fixture
    def server_url(self, redis_url: str) -> str:
        return redis_url


class TestRedisCacheWithGlobCharactersInItsName(_RedisStores, BaseCacheContract):
    """A cache named with glob characters: SCAN MATCH must take them literally.

    ``other_namespace`` is another *cache*, ``xazz-<id>``, whose keys the prefix of
    ``x[ab]*?-<id>`` would match if it were used as a glob unescaped (``[ab]`` matches
    ``a``, ``*?`` matches ``zz``); the contract then checks that clearing, counting and
    listing one cache never touches the other.
    """

    @pytest.fixture
    def server_url(self, redis_url: str) -> str:
        return redis_url

    @pytest.fixture
    def name(self) -> str:
        return f"x[ab]*?-{uuid.uuid4().hex[:8]}"

    @pytest.fixture
    async def other_namespace(self, server_url: str, name: str) -> AsyncIterator[RedisCache]:
        other = "xazz" + name[len("x[ab]*?") :]
        store = RedisCache(other, "responses", url=server_url)
        yield store
        await store.close()
        await _remove(server_url, other, "responses")


class TestSharedConnectionRedisCache(_RedisStores, BaseCacheContract):
    """Both stores on one RedisConnection, as RedisBackend builds them."""

    @pytest.fixture
    def server_url(self, redis_url: str) -> str:
        return redis_url

    @pytest.fixture
    async def connection(self, redis_url: str) -> AsyncIterator[RedisConnection]:
        shared = RedisConnection(redis_url)
        yield shared
        await shared.close()

    @pytest.fixture
    async def cache(
        self, connection: RedisConnection, server_url: str, name: str
    ) -> AsyncIterator[RedisCache]:
        store = RedisCache(name, "responses", connection=connection)
        yield store
        await store.close()
        await _remove(server_url, name, "responses", "redirects")

    @pytest.fixture
    async def other_namespace(
        self, connection: RedisConnection, name: str
    ) -> AsyncIterator[RedisCache]:
        store = RedisCache(name, "redirects", connection=connection)
        yield store
        await store.close()


class TestRedisClusterCache(_RedisStores, BaseCacheContract):
    """A store on a three-node Redis Cluster: keys spread over all primaries."""

    name_prefix = "cluster"

    @pytest.fixture
    def server_url(self, redis_cluster_url: str) -> str:
        return redis_cluster_url
