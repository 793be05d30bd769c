"""The conformance kit against MemoryCache, the reference adapter."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from acc.core import MemoryCache
from acc.core.testing import BaseCacheContract


class TestMemoryCache(BaseCacheContract):
    @pytest.fixture
    async def cache(self) -> AsyncIterator[MemoryCache]:
        store = MemoryCache()
        yield store
        await store.close()

    @pytest.fixture
    async def other_namespace(self) -> AsyncIterator[MemoryCache]:
        # Two MemoryCache instances share nothing, which is what a namespace promises.
        store = MemoryCache()
        yield store
        await store.close()


class TestBoundedMemoryCache(BaseCacheContract):
    """Bounds larger than any test writes must change nothing the contract observes."""

    @pytest.fixture
    async def cache(self) -> AsyncIterator[MemoryCache]:
        store = MemoryCache(max_entries=1000, max_bytes=64 * 1024 * 1024)
        yield store
        await store.close()
