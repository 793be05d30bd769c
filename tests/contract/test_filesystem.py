"""The conformance kit against FileCache, on real folders in tmp_path."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest

from acc.backends.filesystem import FileCache
from acc.core.storage import BaseCache
from acc.core.testing import BaseCacheContract


class TestFileCache(BaseCacheContract):
    """Two stores (folders) of one cache folder; a second handle is another instance."""

    @pytest.fixture
    def folder(self, tmp_path: Path) -> Path:
        return tmp_path / "cache"

    @pytest.fixture
    async def cache(self, folder: Path) -> AsyncIterator[FileCache]:
        store = FileCache(folder, "responses")
        yield store
        await store.close()

    @pytest.fixture
    async def other_namespace(self, folder: Path) -> AsyncIterator[FileCache]:
        store = FileCache(folder, "redirects")
        yield store
        await store.close()

    @pytest.fixture
    def reopen(self, cache: FileCache, folder: Path) -> Callable[[], Awaitable[BaseCache]]:
        async def reopen() -> BaseCache:
            await cache.close()
            return FileCache(folder, "responses")

        return reopen

    @pytest.fixture
    async def second_handle(self, folder: Path) -> AsyncIterator[FileCache]:
        store = FileCache(folder, "responses")
        yield store
        await store.close()
