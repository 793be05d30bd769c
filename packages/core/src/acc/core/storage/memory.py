"""The in-memory store: the reference adapter and the default cache.

It is what every other adapter is measured against in the conformance kit, so it is
kept plain: an :class:`~acc.core.storage.lru.LRU` of ``key -> (value, expires_at)``,
least recently used first, optionally bounded by ``max_entries`` and ``max_bytes``.

A value is kept as it was written: the ``bytes`` given to :meth:`MemoryCache.write`, or
the tuple of parts :meth:`MemoryCache.write_parts` was given (for a large entry: its
head and its body), never joined: :meth:`MemoryCache.read_parts` hands back those very
objects, so the body of a large hit is the object that was stored, uncopied.
:meth:`MemoryCache.read` joins the parts of such a value (a copy); the façade reads
with ``read_parts``. (A tuple around every value would cost some 50 bytes an entry.)
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Iterable, Sequence
from typing import ClassVar

from acc.core.errors import EntryTooLarge
from acc.core.storage.base import BaseCache, Splitter, join_parts
from acc.core.storage.lru import LRU

__all__ = ["MemoryCache"]

StoredValue = bytes | tuple[bytes, ...]
"""A value kept in memory: ``bytes``, or the parts it was written (or read) in.

The near cache keeps its local copies the same way."""


class MemoryCache(BaseCache):
    """A process-local store with native expiry and optional LRU eviction.

    Args:
        max_entries: Evict the least recently used entries once more than this many are
            stored; ``None`` (the default) means unbounded.
        max_bytes: Evict the least recently used entries once their values add up to more
            than this many bytes, and never keep a larger value; ``None`` (the default)
            means unbounded.

    Raises:
        ConfigError: A bound that is not a positive ``int`` or ``None``.
    """

    native_ttl: ClassVar[bool] = True
    returns_stored_objects: ClassVar[bool] = True
    in_process: ClassVar[bool] = True
    cancels_promptly = True

    _read_overridden: ClassVar[bool] = False

    def __init_subclass__(cls, **kwargs: object) -> None:
        super().__init_subclass__(**kwargs)
        cls._read_overridden = cls.read is not MemoryCache.read

    def __init__(self, *, max_entries: int | None = None, max_bytes: int | None = None) -> None:
        self._data: LRU[str, tuple[StoredValue, float | None]] = LRU(
            max_entries=max_entries, max_bytes=max_bytes
        )

    @property
    def max_entries(self) -> int | None:
        """The bound on the number of entries (``None``: unbounded)."""
        return self._data.max_entries

    @property
    def max_bytes(self) -> int | None:
        """The bound on the bytes of the values (``None``: unbounded)."""
        return self._data.max_bytes

    @property
    def evictions(self) -> int:
        """Entries evicted so far to stay within ``max_entries`` and ``max_bytes``."""
        return self._data.evictions

    def _live(self, key: str, now: float) -> StoredValue | None:
        data = self._data
        item = data.peek(key)
        if item is None:
            return None
        value, expires_at = item
        if expires_at is not None and expires_at <= now:
            data.pop(key)
            return None
        data.touch(key)
        return value

    async def read(self, key: str) -> bytes | None:
        """Return the value under ``key`` and mark it recently used."""
        self._ensure_open()
        return stored_bytes(self._live(key, time.time()))

    async def read_parts(self, key: str, split: Splitter | None = None) -> tuple[bytes, ...] | None:
        """Return the parts the value under ``key`` was written in: the very objects.

        ``split`` is not needed: the parts of a large value are already where its
        writer cut it. A subclass that overrides :meth:`read` (to count or fail reads)
        gets the default instead, which goes through its ``read``.
        """
        if self._read_overridden:
            return await super().read_parts(key, split)
        self._ensure_open()
        value = self._live(key, time.time())
        return (value,) if type(value) is bytes else value  # type: ignore[return-value]

    async def read_many(self, keys: Iterable[str]) -> list[bytes | None]:
        """Return the values of ``keys`` in order."""
        self._ensure_open()
        now = time.time()
        return [stored_bytes(self._live(key, now)) for key in keys]

    async def write(self, key: str, value: bytes, *, expires_at: float | None = None) -> None:
        """Store ``value``, evicting the least recently used entries when over a bound.

        Raises:
            EntryTooLarge: ``value`` alone is larger than ``max_bytes`` (the key then holds
                nothing).
        """
        self._ensure_open()
        if expires_at is not None and expires_at <= time.time():
            # Already dead: storing it could only evict a live entry.
            self._data.pop(key)
            return
        value = bytes(value)
        self._put(key, value, len(value), expires_at)

    async def write_parts(
        self, key: str, parts: Sequence[bytes], *, expires_at: float | None = None
    ) -> None:
        """Store the concatenation of ``parts`` as those parts, without joining them.

        Raises:
            EntryTooLarge: The value alone is larger than ``max_bytes``.
        """
        self._ensure_open()
        if expires_at is not None and expires_at <= time.time():
            self._data.pop(key)
            return
        kept = tuple(bytes(part) for part in parts)
        self._put(key, kept[0] if len(kept) == 1 else kept, sum(map(len, kept)), expires_at)

    def _put(self, key: str, value: StoredValue, size: int, expires_at: float | None) -> None:
        if not self._data.put(key, (value, expires_at), size):
            raise EntryTooLarge(f"{size} bytes is more than max_bytes={self.max_bytes}")

    async def delete(self, key: str) -> None:
        """Remove ``key`` if present."""
        self._ensure_open()
        self._data.pop(key)

    async def bulk_delete(self, keys: Iterable[str]) -> None:
        """Remove every key in ``keys``."""
        self._ensure_open()
        for key in keys:
            self._data.pop(key)

    async def contains(self, key: str) -> bool:
        """Whether ``key`` holds a live value (without touching its recency)."""
        self._ensure_open()
        item = self._data.peek(key)
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
        return sum(1 for _k, (_v, exp) in self._data.items() if exp is None or exp > now)

    async def delete_expired(self, now: float) -> int:
        """Remove the entries past their ``expires_at``."""
        self._ensure_open()
        dead = [k for k, (_v, exp) in self._data.items() if exp is not None and exp <= now]
        for key in dead:
            self._data.pop(key)
        return len(dead)

    async def clear(self) -> None:
        """Remove every entry."""
        self._ensure_open()
        self._data.clear()

    async def close(self) -> None:
        """Drop the data and refuse further use."""
        self._data.clear()
        await super().close()


def stored_bytes(value: StoredValue | None) -> bytes | None:
    """A value kept in memory as bytes: itself, or its parts joined (a copy)."""
    if value is None or isinstance(value, bytes):
        return value
    return join_parts(value)
