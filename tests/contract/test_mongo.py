"""The conformance kit against MongoDBCache, on a real MongoDB wire-protocol server.

The server is ``ACC_MONGODB_URL`` or mongoeco's wire server in another process (see
``acc_services.mongo``); every test gets a database of its own.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
from pymongo import AsyncMongoClient

from acc.backends.mongo import MongoDBCache, MongoDBConnection
from acc.core.storage import BaseCache
from acc.core.testing import BaseCacheContract


class TestMongoDBCache(BaseCacheContract):
    """A standalone store: its own client, built from the URL."""

    @pytest.fixture
    async def cache(self, mongodb_url: str, mongodb_database: str) -> AsyncIterator[MongoDBCache]:
        store = MongoDBCache(mongodb_database, "responses", url=mongodb_url)
        yield store
        await store.close()

    @pytest.fixture
    async def other_namespace(
        self, mongodb_url: str, mongodb_database: str
    ) -> AsyncIterator[MongoDBCache]:
        store = MongoDBCache(mongodb_database, "redirects", url=mongodb_url)  # same database
        yield store
        await store.close()

    @pytest.fixture
    def reopen(
        self, cache: MongoDBCache, mongodb_url: str, mongodb_database: str
    ) -> Callable[[], Awaitable[BaseCache]]:
        async def reopen() -> BaseCache:
            await cache.close()  # closes its client: the data must be on the server
            return MongoDBCache(mongodb_database, "responses", url=mongodb_url)

        return reopen

    @pytest.fixture
    async def second_handle(
        self, mongodb_url: str, mongodb_database: str
    ) -> AsyncIterator[MongoDBCache]:
        store = MongoDBCache(mongodb_database, "responses", url=mongodb_url)  # another client
        yield store
        await store.close()


class TestSharedConnectionMongoDBCache(BaseCacheContract):
    """Both stores on one MongoDBConnection, as MongoDBBackend builds them."""

    @pytest.fixture
    async def connection(self, mongodb_url: str) -> AsyncIterator[MongoDBConnection]:
        shared = MongoDBConnection(mongodb_url)
        yield shared
        await shared.close()

    @pytest.fixture
    async def cache(
        self, connection: MongoDBConnection, mongodb_database: str
    ) -> AsyncIterator[MongoDBCache]:
        store = MongoDBCache(mongodb_database, "responses", connection=connection)
        yield store
        await store.close()

    @pytest.fixture
    async def other_namespace(
        self, connection: MongoDBConnection, mongodb_database: str
    ) -> AsyncIterator[MongoDBCache]:
        store = MongoDBCache(mongodb_database, "redirects", connection=connection)
        yield store
        await store.close()

    @pytest.fixture
    def reopen(
        self, cache: MongoDBCache, mongodb_url: str, mongodb_database: str
    ) -> Callable[[], Awaitable[BaseCache]]:
        async def reopen() -> BaseCache:
            await cache.close()
            return MongoDBCache(
                mongodb_database, "responses", connection=MongoDBConnection(mongodb_url)
            )

        return reopen

    @pytest.fixture
    async def second_handle(
        self, mongodb_url: str, mongodb_database: str
    ) -> AsyncIterator[MongoDBCache]:
        store = MongoDBCache(
            mongodb_database, "responses", connection=MongoDBConnection(mongodb_url)
        )
        yield store
        await store.close()


class TestUserClientMongoDBCache(BaseCacheContract):
    """A store on a client the user owns: closing the store must leave it open."""

    @pytest.fixture
    async def client(self, mongodb_url: str) -> AsyncIterator[AsyncMongoClient[Any]]:
        client: AsyncMongoClient[Any] = AsyncMongoClient(mongodb_url)
        yield client
        await client.close()

    @pytest.fixture
    async def cache(
        self, client: AsyncMongoClient[Any], mongodb_database: str
    ) -> AsyncIterator[MongoDBCache]:
        store = MongoDBCache(mongodb_database, "responses", client=client)
        yield store
        await store.close()

    @pytest.fixture
    def reopen(
        self, cache: MongoDBCache, client: AsyncMongoClient[Any], mongodb_database: str
    ) -> Callable[[], Awaitable[BaseCache]]:
        async def reopen() -> BaseCache:
            await cache.close()  # the user's client stays open, so it can be used again
            return MongoDBCache(mongodb_database, "responses", client=client)

        return reopen

    @pytest.fixture
    async def other_namespace(
        self, client: AsyncMongoClient[Any], mongodb_database: str
    ) -> AsyncIterator[MongoDBCache]:
        store = MongoDBCache(mongodb_database, "redirects", client=client)
        yield store
        await store.close()

    @pytest.fixture
    async def second_handle(
        self, client: AsyncMongoClient[Any], mongodb_database: str
    ) -> AsyncIterator[MongoDBCache]:
        store = MongoDBCache(mongodb_database, "responses", client=client)  # one client, two stores
        yield store
        await store.close()
