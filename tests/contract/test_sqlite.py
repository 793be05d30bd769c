"""The conformance kit against SQLiteCache, on real database files."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest

from acc.backends.sqlite import SQLiteCache, SQLiteConnection
from acc.core.storage import BaseCache
from acc.core.testing import BaseCacheContract


class TestSQLiteCache(BaseCacheContract):
    """A standalone store: its own connection to a file in tmp_path."""

    @pytest.fixture
    def db_path(self, tmp_path: Path) -> Path:
        return tmp_path / "contract.sqlite"

    @pytest.fixture
    async def cache(self, db_path: Path) -> AsyncIterator[SQLiteCache]:
        store = SQLiteCache(db_path, "responses")
        yield store
        await store.close()

    @pytest.fixture
    async def other_namespace(self, db_path: Path) -> AsyncIterator[SQLiteCache]:
        store = SQLiteCache(db_path, "redirects")  # another table of the same file
        yield store
        await store.close()

    @pytest.fixture
    def reopen(self, cache: SQLiteCache, db_path: Path) -> Callable[[], Awaitable[BaseCache]]:
        async def reopen() -> BaseCache:
            await cache.close()
            return SQLiteCache(db_path, "responses")

        return reopen

    @pytest.fixture
    async def second_handle(self, db_path: Path) -> AsyncIterator[SQLiteCache]:
        store = SQLiteCache(db_path, "responses")  # a second connection to the file
        yield store
        await store.close()


class _TwoStoresOnOneConnection:
    """Both stores on one shared ``connection`` fixture, as SQLiteBackend builds them."""

    @pytest.fixture
    async def cache(self, connection: SQLiteConnection) -> AsyncIterator[SQLiteCache]:
        store = SQLiteCache(connection, "responses")
        yield store
        await store.close()

    @pytest.fixture
    async def other_namespace(self, connection: SQLiteConnection) -> AsyncIterator[SQLiteCache]:
        store = SQLiteCache(connection, "redirects")
        yield store
        await store.close()


class TestSharedConnectionSQLiteCache(_TwoStoresOnOneConnection, BaseCacheContract):
    """Two stores on one shared connection to a file."""

    @pytest.fixture
    async def connection(self, tmp_path: Path) -> AsyncIterator[SQLiteConnection]:
        shared = SQLiteConnection(tmp_path / "shared.sqlite")
        yield shared
        await shared.close()


class TestInMemorySQLiteCache(_TwoStoresOnOneConnection, BaseCacheContract):
    """``:memory:``: gone with its connection, but otherwise the same (one database)."""

    @pytest.fixture
    async def connection(self) -> AsyncIterator[SQLiteConnection]:
        shared = SQLiteConnection(":memory:")
        yield shared
        await shared.close()
