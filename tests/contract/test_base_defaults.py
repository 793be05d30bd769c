"""The kit against BaseCache's default methods, through the smallest possible adapter.

DESIGN §4 promises that an adapter writing only read, write, delete, keys and clear gets
the rest from BaseCache. This runs the kit on exactly such an adapter, so the defaults
(bulk_delete, read_many, contains, size, values, items, delete_expired) are held to the
contract too.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator

import pytest

from acc.core import BaseCache
from acc.core.testing import BaseCacheContract


class MinimalCache(BaseCache):
    """The five required methods over a dict shared by namespace, nothing more."""

    native_ttl = True

    def __init__(self, data: dict[str, tuple[bytes, float | None]], namespace: str) -> None:
        self._data = data
        self._prefix = namespace + "\x00"

    async def read(self, key: str) -> bytes | None:
        self._ensure_open()
        item = self._data.get(self._prefix + key)
        if item is None or (item[1] is not None and item[1] <= time.time()):
            return None
        return item[0]

    async def write(self, key: str, value: bytes, *, expires_at: float | None = None) -> None:
        self._ensure_open()
        self._data[self._prefix + key] = (bytes(value), expires_at)

    async def delete(self, key: str) -> None:
        self._ensure_open()
        self._data.pop(self._prefix + key, None)

    async def keys(self) -> AsyncIterator[str]:
        self._ensure_open()
        for full in list(self._data):
            if full.startswith(self._prefix):
                yield full[len(self._prefix) :]

    async def clear(self) -> None:
        self._ensure_open()
        for full in [k for k in self._data if k.startswith(self._prefix)]:
            del self._data[full]


class TestBaseCacheDefaults(BaseCacheContract):
    @pytest.fixture
    def storage(self) -> dict[str, tuple[bytes, float | None]]:
        return {}

    @pytest.fixture
    async def cache(
        self, storage: dict[str, tuple[bytes, float | None]]
    ) -> AsyncIterator[MinimalCache]:
        store = MinimalCache(storage, "responses")
        yield store
        await store.close()

    @pytest.fixture
    async def other_namespace(
        self, storage: dict[str, tuple[bytes, float | None]]
    ) -> AsyncIterator[MinimalCache]:
        store = MinimalCache(storage, "redirects")
        yield store
        await store.close()
