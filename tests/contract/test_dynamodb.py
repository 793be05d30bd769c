"""The conformance kit against DynamoDBCache, on a real DynamoDB endpoint over HTTP.

The endpoint is DynamoDB Local (``ACC_DYNAMODB_URL``) or moto's standalone server (see
``acc_services.dynamodb``). Each test gets its own namespace of the shared test table,
so the kit's "empty store" is a fresh cache name, and ``other_namespace`` is the other
store of the same cache in the same table: exactly how ``DynamoDBBackend`` lays out its
two stores.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import aioboto3  # type: ignore[import-untyped]
import pytest
from acc_services.dynamodb import dynamodb_options, unique_name

from acc.backends.dynamodb import DynamoDBCache, DynamoDBConnection
from acc.core.storage import BaseCache
from acc.core.testing import BaseCacheContract


async def _warm_up(store: DynamoDBCache) -> None:
    """Open the client and check the table before the test starts.

    Creating an aiobotocore client loads DynamoDB's service model, which takes a few
    tenths of a second: the kit's expiry tests, whose entries live 0.3 s, would measure
    that instead of the store.
    """
    assert await store.contains("warm-up") is False


class _DynamoDBStores:
    """``cache`` and its neighbours, in a fresh namespace of one table."""

    table: str = "acc-tests"
    index: str | None = None

    @pytest.fixture
    def cache_name(self) -> str:
        return unique_name("contract")

    @pytest.fixture
    def options(self, dynamodb_url: str) -> dict[str, object]:
        return {
            **dynamodb_options(dynamodb_url),
            "create_table": True,
            "namespace_index": self.index,
        }

    @pytest.fixture
    async def cache(self, cache_name: str, options: dict[str, object]) -> AsyncIterator[BaseCache]:
        store = DynamoDBCache(self.table, "responses", cache_name=cache_name, **options)
        await _warm_up(store)
        yield store
        await store.close()

    @pytest.fixture
    async def other_namespace(
        self, cache_name: str, options: dict[str, object]
    ) -> AsyncIterator[BaseCache]:
        store = DynamoDBCache(self.table, "redirects", cache_name=cache_name, **options)
        yield store
        await store.close()

    @pytest.fixture
    def reopen(
        self, cache: BaseCache, cache_name: str, options: dict[str, object]
    ) -> Callable[[], Awaitable[BaseCache]]:
        async def reopen() -> BaseCache:
            await cache.close()
            return DynamoDBCache(self.table, "responses", cache_name=cache_name, **options)

        return reopen

    @pytest.fixture
    async def second_handle(
        self, cache_name: str, options: dict[str, object]
    ) -> AsyncIterator[BaseCache]:
        store = DynamoDBCache(self.table, "responses", cache_name=cache_name, **options)
        yield store
        await store.close()


class TestDynamoDBCache(_DynamoDBStores, BaseCacheContract):
    """The default layout: size, keys and clear scan the table, filtered by namespace."""


class TestDynamoDBCacheWithNamespaceIndex(_DynamoDBStores, BaseCacheContract):
    """With a global secondary index on ``namespace``: size, keys and clear query it."""

    table = "acc-tests-indexed"
    index = "namespace-index"


class TestSharedConnectionDynamoDBCache(BaseCacheContract):
    """Both stores on one shared connection (one client), as DynamoDBBackend builds them."""

    @pytest.fixture
    async def connection(self, dynamodb_url: str) -> AsyncIterator[DynamoDBConnection]:
        shared = DynamoDBConnection(
            "acc-tests", create_table=True, **dynamodb_options(dynamodb_url)
        )
        yield shared
        await shared.close()

    @pytest.fixture
    def cache_name(self) -> str:
        return unique_name("shared")

    @pytest.fixture
    async def cache(
        self, connection: DynamoDBConnection, cache_name: str
    ) -> AsyncIterator[DynamoDBCache]:
        store = DynamoDBCache(connection, "responses", cache_name=cache_name)
        await _warm_up(store)
        yield store
        await store.close()

    @pytest.fixture
    async def other_namespace(
        self, connection: DynamoDBConnection, cache_name: str
    ) -> AsyncIterator[DynamoDBCache]:
        store = DynamoDBCache(connection, "redirects", cache_name=cache_name)
        yield store
        await store.close()

    @pytest.fixture
    def reopen(
        self, cache: BaseCache, cache_name: str, dynamodb_url: str
    ) -> Callable[[], Awaitable[BaseCache]]:
        async def reopen() -> BaseCache:
            await cache.close()
            fresh = DynamoDBConnection("acc-tests", **dynamodb_options(dynamodb_url))
            return DynamoDBCache(fresh, "responses", cache_name=cache_name)  # closes it too

        return reopen

    @pytest.fixture
    async def second_handle(self, cache_name: str, dynamodb_url: str) -> AsyncIterator[BaseCache]:
        store = DynamoDBCache(
            "acc-tests", "responses", cache_name=cache_name, **dynamodb_options(dynamodb_url)
        )
        yield store
        await store.close()


class TestResourceDynamoDBCache(BaseCacheContract):
    """On a caller's aioboto3 resource, whose client speaks Python values, not typed ones."""

    @pytest.fixture
    async def resource(self, dynamodb_url: str) -> AsyncIterator[Any]:
        options = dynamodb_options(dynamodb_url)
        async with aioboto3.Session().resource(
            "dynamodb", region_name=options["region"], endpoint_url=options.get("endpoint_url")
        ) as resource:
            yield resource

    @pytest.fixture
    def cache_name(self) -> str:
        return unique_name("resource")

    @pytest.fixture
    async def cache(self, resource: Any, cache_name: str) -> AsyncIterator[DynamoDBCache]:
        store = DynamoDBCache(
            "acc-tests", "responses", cache_name=cache_name, resource=resource, create_table=True
        )
        await _warm_up(store)
        yield store
        await store.close()

    @pytest.fixture
    async def other_namespace(self, resource: Any, cache_name: str) -> AsyncIterator[DynamoDBCache]:
        store = DynamoDBCache("acc-tests", "redirects", cache_name=cache_name, resource=resource)
        yield store
        await store.close()

    @pytest.fixture
    def reopen(
        self, cache: BaseCache, cache_name: str, resource: Any
    ) -> Callable[[], Awaitable[BaseCache]]:
        async def reopen() -> BaseCache:
            await cache.close()
            return DynamoDBCache("acc-tests", "responses", cache_name=cache_name, resource=resource)

        return reopen

    @pytest.fixture
    async def second_handle(self, resource: Any, cache_name: str) -> AsyncIterator[BaseCache]:
        store = DynamoDBCache("acc-tests", "responses", cache_name=cache_name, resource=resource)
        yield store
        await store.close()
