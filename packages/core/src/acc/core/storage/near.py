"""A near cache: recently used values of a remote store, kept in process memory.

A hit on Redis, MongoDB or DynamoDB costs a network round trip (about 120 µs for a
Redis ``GET`` on loopback), far more than the rest of acc's hit path. :class:`NearCache`
wraps such a store and answers repeated reads of hot keys from a bounded LRU in memory.

What it promises, and what it costs:

* A local copy is never served past its ``expires_at`` (given on ``write``, or read
  from the value by ``expires_of``), nor longer than ``max_age`` seconds after it was
  fetched or written. Other processes' writes and deletes are therefore seen within
  ``max_age`` (5 s by default); this process's own writes and deletes at once.
* Writes and deletes go through to the inner store first, then update or evict the
  local copy; ``clear``, ``bulk_delete`` and ``delete_expired`` evict too.
* A read that raced with a write or delete in this process does not refill the local
  copy with what it read, so a deleted value cannot come back from an earlier read.
* Listing (``keys``, ``size``, ``items``) always asks the inner store.
* A value written or read in parts (:meth:`~acc.core.storage.BaseCache.write_parts`,
  :meth:`~acc.core.storage.BaseCache.read_parts`: a large entry's head and body) is
  kept as those parts and handed out as the very same objects, never joined: a large
  local hit copies nothing, and the inner store gets the parts too (Redis keeps a large
  body in a key of its own).

It is a :class:`~acc.core.storage.BaseCache` like any other, so it passes the same
conformance kit as the stores it wraps.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from typing import ClassVar

from acc.core.errors import ConfigError
from acc.core.storage.base import BaseCache, Splitter, join_parts
from acc.core.storage.lru import LRU
from acc.core.storage.memory import StoredValue, stored_bytes

__all__ = ["NearCache"]

DEFAULT_MAX_AGE = 5.0
"""Seconds a local copy may be served: how stale another process's change may look."""
DEFAULT_MAX_ENTRIES = 1024
DEFAULT_MAX_BYTES = 64 * 1024 * 1024

_Item = tuple[StoredValue, float | None, float]
"""A local copy: the value, its ``expires_at`` (epoch seconds) and when it was fetched."""


def _as_parts(parts: object) -> StoredValue | None:
    """``parts`` as a value to keep: exact ``bytes`` parts only (anything else is not kept)."""
    if type(parts) is not tuple or not parts or any(type(part) is not bytes for part in parts):
        return None
    return parts[0] if len(parts) == 1 else parts


def _positive(name: str, value: object, kind: type | tuple[type, ...]) -> None:
    if isinstance(value, bool) or not isinstance(value, kind) or not value > 0:  # type: ignore[operator]
        raise ConfigError(name, f"expected a positive number, not {value!r}")


class NearCache(BaseCache):
    """An in-process LRU in front of another store (normally a remote one).

    Args:
        inner: The store that holds the data; it must expire entries natively
            (``native_ttl``), as every first-party remote store does.
        max_entries: How many values are kept locally, at most.
        max_bytes: How many bytes of values are kept locally, at most; a value larger
            than this is never kept.
        max_age: Seconds a local copy is served, at most, after it was fetched or
            written (the bound on how stale another process's change may look).
        expires_of: ``f(value) -> expires_at | None``, reading the expiry of a value
            fetched from ``inner`` (the façade passes the codec's), so a copy read from
            the store is not served past its expiry either. Without it, such a copy is
            kept for ``max_age`` at most (the store hides expired values, so it was live
            when read).

        clock: A function returning the current time in epoch seconds, for both the
            expiry and the age of local copies (default: ``time.time`` for expiry and
            ``time.monotonic`` for age). The façade passes its own when it was given one,
            so tests move time instead of sleeping.

    Raises:
        ConfigError: An invalid bound, or an ``inner`` store without native expiry.
    """

    native_ttl: ClassVar[bool] = True
    returns_stored_objects: ClassVar[bool] = True

    def __init__(
        self,
        inner: BaseCache,
        *,
        max_entries: int = DEFAULT_MAX_ENTRIES,
        max_bytes: int = DEFAULT_MAX_BYTES,
        max_age: float = DEFAULT_MAX_AGE,
        expires_of: Callable[[bytes], float | None] | None = None,
        clock: Callable[[], float] | None = None,
    ) -> None:
        if not isinstance(inner, BaseCache):
            raise ConfigError("inner", f"expected a BaseCache, not {type(inner).__name__}")
        if not type(inner).native_ttl:
            raise ConfigError("inner", f"{type(inner).__name__} does not expire entries itself")
        _positive("max_entries", max_entries, int)
        _positive("max_bytes", max_bytes, int)
        _positive("max_age", max_age, (int, float))
        self.inner = inner
        # Its own answers are in memory; the rest is the inner store's.
        self.cancels_promptly = inner.cancels_promptly
        self.max_entries = max_entries
        self.max_bytes = max_bytes
        self.max_age = float(max_age)
        self.expires_of = expires_of
        if clock is not None and not callable(clock):
            raise ConfigError("clock", f"expected a callable returning seconds, not {clock!r}")
        self._now: Callable[[], float] = clock or time.time
        self._age_clock: Callable[[], float] = clock or time.monotonic
        self._local: LRU[str, _Item] = LRU(max_entries=max_entries, max_bytes=max_bytes)
        self._mutations = 0  # bumped by every write, delete or clear made through this
        self.local_hits = 0
        """Reads answered from memory (for statistics and tests)."""

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.inner!r})"

    # -- the local copies -------------------------------------------------------------------

    def _fresh(self, key: str) -> StoredValue | None:
        local = self._local
        item = local.peek(key)
        if item is None:
            return None
        value, expires_at, fetched = item
        if (expires_at is not None and expires_at <= self._now()) or (
            self._age_clock() - fetched >= self.max_age
        ):
            local.pop(key)
            return None
        local.touch(key)
        self.local_hits += 1
        return value

    def _keep(self, key: str, value: StoredValue, expires_at: float | None) -> None:
        """Keep a local copy; one larger than ``max_bytes``, or expired, is not kept."""
        if expires_at is not None and expires_at <= self._now():
            self._local.pop(key)
            return
        size = len(value) if isinstance(value, bytes) else sum(map(len, value))
        self._local.put(key, (value, expires_at, self._age_clock()), size)

    def _changing(self, keys: Iterable[str] | None) -> None:
        """Evict ``keys`` (``None``: all) and void the reads in flight.

        Called before a change is sent to the store and again once it is done, so a
        read that started before the change and ends after either step does not keep
        what it read (:meth:`_fill` compares the counter).
        """
        self._mutations += 1
        if keys is None:
            self._local.clear()
        else:
            for key in keys:
                self._local.pop(key)

    def _fill(self, key: str, value: StoredValue, mutations_before: int) -> None:
        """Keep a value read from the store, unless a change was made meanwhile.

        The expiry of a value read in parts is read from its first part, which holds
        the entry's metadata when the store cut it where the body begins (a value cut
        elsewhere has no readable expiry there, and is not kept).
        """
        if self._mutations != mutations_before:
            return
        expires_at = None
        if self.expires_of is not None:
            try:
                expires_at = self.expires_of(value if isinstance(value, bytes) else value[0])
            except Exception:
                return  # unreadable: do not keep what cannot be bounded
        self._keep(key, value, expires_at)

    # -- the port ---------------------------------------------------------------------------

    @property
    def evictions(self) -> int | None:
        """The inner store's evictions (dropping a local copy evicts nothing from the cache)."""
        return self.inner.evictions

    async def compact(self) -> bool:
        """Compact the inner store."""
        return await self.inner.compact()

    async def read(self, key: str) -> bytes | None:
        """Return the local copy while fresh, else read the store (and keep a copy)."""
        self._ensure_open()
        local = self._fresh(key)
        if local is not None:
            return stored_bytes(local)
        before = self._mutations
        value = await self.inner.read(key)
        if value is not None:
            self._fill(key, value, before)
        return value

    async def read_parts(self, key: str, split: Splitter | None = None) -> tuple[bytes, ...] | None:
        """Return the local copy's parts (the very objects kept), else the store's.

        Parts read from the store (cut by ``split`` where the body begins) are kept as
        they are, so the next local hit returns those same objects.
        """
        self._ensure_open()
        local = self._fresh(key)
        if local is not None:
            return (local,) if isinstance(local, bytes) else local
        before = self._mutations
        parts = await self.inner.read_parts(key, split)
        if parts is not None:
            kept = _as_parts(parts)
            if kept is not None:
                self._fill(key, kept, before)
        return parts

    async def read_many(self, keys: Sequence[str]) -> list[bytes | None]:
        """Return fresh local copies, and read the rest from the store in one call."""
        self._ensure_open()
        keys = list(keys)
        found = [stored_bytes(self._fresh(key)) for key in keys]
        missing = [key for key, value in zip(keys, found, strict=True) if value is None]
        if missing:
            before = self._mutations
            fetched = dict(zip(missing, await self.inner.read_many(missing), strict=True))
            for index, key in enumerate(keys):
                if found[index] is None and (value := fetched.get(key)) is not None:
                    found[index] = value
                    self._fill(key, value, before)
        return found

    async def write(self, key: str, value: bytes, *, expires_at: float | None = None) -> None:
        """Write to the store, then keep the value locally."""
        self._ensure_open()
        self._changing([key])
        try:
            await self.inner.write(key, value, expires_at=expires_at)
        finally:
            self._changing([key])
        self._keep(key, bytes(value), expires_at)

    async def write_parts(
        self, key: str, parts: Sequence[bytes], *, expires_at: float | None = None
    ) -> None:
        """Write the parts to the store as parts, then keep them locally, not joined."""
        self._ensure_open()
        self._changing([key])
        try:
            await self.inner.write_parts(key, parts, expires_at=expires_at)
        finally:
            self._changing([key])
        kept = _as_parts(tuple(parts))
        self._keep(key, kept if kept is not None else join_parts(parts), expires_at)

    async def delete(self, key: str) -> None:
        """Delete from the store and evict the local copy."""
        self._ensure_open()
        self._changing([key])
        try:
            await self.inner.delete(key)
        finally:
            self._changing([key])

    async def bulk_delete(self, keys: Iterable[str]) -> None:
        """Delete many keys from the store in one call and evict their local copies."""
        self._ensure_open()
        keys = list(keys)
        self._changing(keys)
        try:
            await self.inner.bulk_delete(keys)
        finally:
            self._changing(keys)

    async def contains(self, key: str) -> bool:
        """Whether ``key`` holds a live value (a fresh local copy counts)."""
        self._ensure_open()
        if self._fresh(key) is not None:
            return True
        return await self.inner.contains(key)

    async def keys(self) -> AsyncIterator[str]:
        """The store's keys (never the local copies: they may be stale)."""
        self._ensure_open()
        async for key in self.inner.keys():
            yield key

    async def items(self) -> AsyncIterator[tuple[str, bytes]]:
        """The store's ``(key, value)`` pairs."""
        self._ensure_open()
        async for pair in self.inner.items():
            yield pair

    async def size(self) -> int:
        """The number of entries in the store."""
        self._ensure_open()
        return await self.inner.size()

    async def delete_expired(self, now: float) -> int | None:
        """Evict expired local copies, and let the store remove its expired entries."""
        self._ensure_open()
        self._changing(
            [k for k, (_v, exp, _at) in self._local.items() if exp is not None and exp <= now]
        )
        return await self.inner.delete_expired(now)

    async def clear(self) -> None:
        """Clear the store and every local copy."""
        self._ensure_open()
        self._changing(None)
        try:
            await self.inner.clear()
        finally:
            self._changing(None)

    async def close(self) -> None:
        """Drop the local copies and close the store. Idempotent."""
        if self._closed:
            return
        self._local.clear()
        await super().close()
        await self.inner.close()
