"""The in-memory store: the reference adapter and the default cache.

It is what every other adapter is measured against in the conformance kit, so it is
kept plain: an ordered dict of ``key -> (value, expires_at)``, least recently used
first, optionally bounded by ``max_entries``.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import AsyncIterator, Iterable
from typing import ClassVar

from acc.core.errors import ConfigError
from acc.core.storage.base import BaseCache

__all__ = ["MemoryCache"]


class MemoryCache(BaseCache):
    """A process-local store with native expiry and optional LRU eviction.

    Args:
        max_entries: Evict the least recently used entry once more than this many are
            stored; ``None`` (the default) means unbounded.
    """

    native_ttl: ClassVar[bool] = True
    returns_stored_objects: ClassVar[bool] = True

    def __init__(self, *, max_entries: int | None = None) -> None:
        if max_entries is not None and (
            isinstance(max_entries, bool) or not isinstance(max_entries, int) or max_entries < 1
        ):
            raise ConfigError("max_entries", f"must be a positive int or None, not {max_entries!r}")
        self.max_entries = max_entries
        self._data: OrderedDict[str, tuple[bytes, float | None]] = OrderedDict()

    def _live(self, key: str, now: float) -> bytes | None:
        item = self._data.get(key)
        if item is None:
            return None
        value, expires_at = item
        if expires_at is not None and expires_at <= now:
            del self._data[key]
            return None
        self._data.move_to_end(key)
        return value

    async def read(self, key: str) -> bytes | None:
        """Return the value under ``key`` and mark it recently used."""
        self._ensure_open()
        return self._live(key, time.time())

    async def read_many(self, keys: Iterable[str]) -> list[bytes | None]:
        """Return the values of ``keys`` in order."""
        self._ensure_open()
        now = time.time()
        return [self._live(key, now) for key in keys]

    async def write(self, key: str, value: bytes, *, expires_at: float | None = None) -> None:
        """Store ``value``, evicting the least recently used entry when over the bound."""
        self._ensure_open()
        if expires_at is not None and expires_at <= time.time():
            # Already dead: storing it could only evict a live entry.
            self._data.pop(key, None)
            return
        self._data[key] = (bytes(value), expires_at)
        self._data.move_to_end(key)
        if self.max_entries is not None:
            while len(self._data) > self.max_entries:
                self._data.popitem(last=False)

    async def delete(self, key: str) -> None:
        """Remove ``key`` if present."""
        self._ensure_open()
        self._data.pop(key, None)

    async def bulk_delete(self, keys: Iterable[str]) -> None:
        """Remove every key in ``keys``."""
        self._ensure_open()
        for key in keys:
            self._data.pop(key, None)

    async def contains(self, key: str) -> bool:
        """Whether ``key`` holds a live value (without touching its recency)."""
        self._ensure_open()
        item = self._data.get(key)
        return item is not None and (item[1] is None or item[1] > time.time())

    async def keys(self) -> AsyncIterator[str]:
        """Iterate over the live keys, from a snapshot taken when iteration starts."""
        self._ensure_open()
        now = time.time()
        snapshot = [k for k, (_v, exp) in self._data.items() if exp is None or exp > now]
        for key in snapshot:
            yield key

    async def size(self) -> int:
        """The number of live entries."""
        self._ensure_open()
        now = time.time()
        return sum(1 for _v, exp in self._data.values() if exp is None or exp > now)

    async def delete_expired(self, now: float) -> int:
        """Remove the entries past their ``expires_at``."""
        self._ensure_open()
        dead = [k for k, (_v, exp) in self._data.items() if exp is not None and exp <= now]
        for key in dead:
            del self._data[key]
        return len(dead)

    async def clear(self) -> None:
        """Remove every entry."""
        self._ensure_open()
        self._data.clear()

    async def close(self) -> None:
        """Drop the data and refuse further use."""
        self._data.clear()
        await super().close()
