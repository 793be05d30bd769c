"""The near cache (acc.core.storage.near): the conformance kit, and what it adds to a store."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from acc.backends.sqlite import SQLiteCache
from acc.core import CacheBackend, CachedResponse, ConfigError, MemoryCache
from acc.core.codec import Codec, DecodeError
from acc.core.models import utcnow
from acc.core.storage import BaseCache
from acc.core.storage.near import NearCache
from acc.core.testing import BaseCacheContract


class TestNearCacheOverMemory(BaseCacheContract):
    @pytest.fixture
    async def cache(self) -> AsyncIterator[NearCache]:
        store = NearCache(MemoryCache())
        yield store
        await store.close()

    @pytest.fixture
    async def other_namespace(self) -> AsyncIterator[NearCache]:
        store = NearCache(MemoryCache())
        yield store
        await store.close()


class TestNearCacheOverSQLite(BaseCacheContract):
    @pytest.fixture
    async def cache(self, tmp_path: Path) -> AsyncIterator[NearCache]:
        store = NearCache(SQLiteCache(tmp_path / "near.sqlite", "responses"), max_entries=8)
        yield store
        await store.close()

    @pytest.fixture
    async def other_namespace(self, tmp_path: Path) -> AsyncIterator[NearCache]:
        store = NearCache(SQLiteCache(tmp_path / "near.sqlite", "redirects"))
        yield store
        await store.close()


class _Counting(MemoryCache):
    """A MemoryCache that counts the reads that reach it (the 'remote' store)."""

    def __init__(self) -> None:
        super().__init__()
        self.reads = 0

    async def read(self, key: str) -> bytes | None:
        self.reads += 1
        return await super().read(key)


@pytest.fixture
def remote() -> _Counting:
    return _Counting()


async def test_repeated_reads_are_served_locally(remote: _Counting) -> None:
    near = NearCache(remote)
    await remote.write("k", b"v")
    assert [await near.read("k") for _ in range(5)] == [b"v"] * 5
    assert remote.reads == 1
    assert near.local_hits == 4


async def test_own_writes_and_deletes_are_seen_at_once(remote: _Counting) -> None:
    near = NearCache(remote)
    await near.write("k", b"1")
    assert await near.read("k") == b"1"
    assert remote.reads == 0  # the write kept a copy
    await near.write("k", b"2")
    assert await near.read("k") == b"2"
    await near.delete("k")
    assert await near.read("k") is None
    await near.write("a", b"1")
    await near.write("b", b"2")
    await near.bulk_delete(["a", "b"])
    assert await near.read_many(["a", "b"]) == [None, None]
    await near.write("c", b"3")
    await near.clear()
    assert await near.read("c") is None


class Seconds:
    """A clock in epoch seconds that tests move by hand (starts at the real time)."""

    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now


async def test_another_writer_is_seen_within_max_age(remote: _Counting) -> None:
    clock = Seconds()
    near = NearCache(remote, max_age=0.2, clock=clock)
    await remote.write("k", b"old")
    assert await near.read("k") == b"old"
    await remote.write("k", b"new")  # another process, writing to the shared store
    assert await near.read("k") == b"old"  # the local copy, still within max_age
    clock.now += 0.25
    assert await near.read("k") == b"new"
    await remote.delete("k")
    clock.now += 0.25
    assert await near.read("k") is None


async def test_the_facade_gives_the_near_cache_its_clock() -> None:
    moments = [utcnow()]
    backend = CacheBackend(near_cache={"max_age": 5}, clock=lambda: moments[0])
    assert isinstance(backend.responses, NearCache)
    inner = backend.responses.inner
    await backend.responses.write("k", b"old")
    await inner.write("k", b"new")  # changed behind the near cache's back
    assert await backend.responses.read("k") == b"old"
    moments[0] += timedelta(seconds=6)  # past max_age by the facade's clock
    assert await backend.responses.read("k") == b"new"


async def test_a_copy_is_never_served_past_its_expiry(remote: _Counting) -> None:
    near = NearCache(remote, max_age=60)
    await near.write("k", b"v", expires_at=time.time() + 0.2)
    assert await near.read("k") == b"v"
    await asyncio.sleep(0.25)
    assert await near.read("k") is None


async def test_expires_of_bounds_copies_read_from_the_store(remote: _Counting) -> None:
    codec = Codec()
    clock = Seconds()
    near = NearCache(remote, max_age=60, expires_of=codec.expires_at, clock=clock)
    created = utcnow()
    short = CachedResponse(
        200, "OK", "https://x/", "GET", created_at=created, expires=created + timedelta(seconds=0.3)
    )
    await remote.write("k", codec.encode(short), expires_at=time.time() + 60)  # a lax store
    assert await near.read("k") is not None
    assert await near.read("k") is not None
    assert remote.reads == 1
    clock.now += 0.35
    assert await near.read("k") is not None  # from the store again: the copy expired
    assert remote.reads == 2


def test_codec_expires_at_reads_the_expiry_without_decoding() -> None:
    created = utcnow()
    for codec in (Codec(), Codec("secret")):
        never = codec.encode(CachedResponse(200, "OK", "u", "GET", created_at=created))
        assert codec.expires_at(never) is None
        later = created + timedelta(hours=1)
        data = codec.encode(CachedResponse(200, "OK", "u", "GET", expires=later))
        assert codec.expires_at(data) == pytest.approx(later.timestamp(), abs=1e-6)
    with pytest.raises(DecodeError):
        Codec().expires_at(b"not an entry")


async def test_a_read_racing_a_delete_does_not_bring_the_value_back() -> None:
    class Slow(MemoryCache):
        async def read(self, key: str) -> bytes | None:
            value = await super().read(key)
            await asyncio.sleep(0.05)  # the value is in flight when the delete happens
            return value

    inner = Slow()
    near = NearCache(inner, max_age=60)
    await inner.write("k", b"v")
    reading = asyncio.create_task(near.read("k"))
    await asyncio.sleep(0.01)
    await near.delete("k")
    assert await reading == b"v"  # it was there when read ...
    assert await near.read("k") is None  # ... but no local copy outlived the delete


async def test_bounds_by_entries_and_bytes(remote: _Counting) -> None:
    near = NearCache(remote, max_entries=2, max_bytes=10)
    for key in "abc":
        await near.write(key, b"12")
    assert list(near._local) == ["b", "c"]  # least recently used went first
    await near.write("big", b"x" * 11)  # larger than max_bytes: never kept locally
    assert "big" not in near._local
    assert await near.read("big") == b"x" * 11
    await near.write("d", b"123456")
    await near.write("e", b"123456")  # 12 bytes > 10: "d" is evicted
    assert list(near._local) == ["e"]


@pytest.mark.parametrize(
    ("option", "value"),
    [
        ("max_entries", 0),
        ("max_bytes", -1),
        ("max_age", 0),
        ("max_age", "5"),
        ("max_entries", True),
        ("clock", "now"),
    ],
)
def test_invalid_options_raise_config_error(option: str, value: object) -> None:
    with pytest.raises(ConfigError, match=option):
        NearCache(MemoryCache(), **{option: value})  # type: ignore[arg-type]


def test_inner_must_be_a_store_with_native_expiry() -> None:
    class NoTTL(MemoryCache):
        native_ttl = False

    with pytest.raises(ConfigError, match="inner"):
        NearCache(NoTTL())
    with pytest.raises(ConfigError, match="inner"):
        NearCache(object())  # type: ignore[arg-type]


async def test_close_closes_the_inner_store(remote: _Counting) -> None:
    near = NearCache(remote)
    await near.close()
    await near.close()
    assert remote.closed
    assert isinstance(near, BaseCache)


# -- values in parts (large entries) --------------------------------------------------------


class _PartsRecording(MemoryCache):
    """A MemoryCache that records the parts written to it and the parts reads it answers."""

    def __init__(self) -> None:
        super().__init__()
        self.written_parts: list[tuple[bytes, ...]] = []
        self.parts_reads = 0

    async def write_parts(self, key: str, parts: Any, *, expires_at: float | None = None) -> None:
        self.written_parts.append(tuple(parts))
        await super().write_parts(key, parts, expires_at=expires_at)

    async def read_parts(self, key: str, split: Any = None) -> tuple[bytes, ...] | None:
        self.parts_reads += 1
        return await super().read_parts(key, split)


async def test_parts_go_to_the_store_as_parts_and_are_kept_as_the_same_objects() -> None:
    inner = _PartsRecording()
    near = NearCache(inner)
    head, body = b"head" * 4, bytes(range(256)) * 8
    await near.write_parts("k", (head, body))
    assert inner.written_parts == [(head, body)]  # not joined on the way to the store
    parts = await near.read_parts("k")
    assert parts is not None
    assert parts[0] is head
    assert parts[1] is body
    assert inner.parts_reads == 0  # answered locally
    assert await near.read("k") == head + body
    assert await near.read_many(["k", "missing"]) == [head + body, None]


async def test_parts_read_from_the_store_are_kept_and_served_again(tmp_path: Path) -> None:
    path = tmp_path / "near-parts.sqlite"
    body = bytes(range(256)) * (8 * 1024)  # 2 MiB: written and read in parts
    entry = CachedResponse(200, "OK", "https://example.com/big", "GET", body=body)
    async with CacheBackend(
        responses=SQLiteCache(path, "responses"), redirects=SQLiteCache(path, "redirects")
    ) as writer:
        await writer.write_entry("k", entry)
    async with CacheBackend(
        responses=SQLiteCache(path, "responses"),
        redirects=SQLiteCache(path, "redirects"),
        near_cache=True,
    ) as reader:
        near = reader.responses
        assert isinstance(near, NearCache)
        first = await reader.read_entry("k")
        second = await reader.read_entry("k")
        assert first == entry
        assert near.local_hits == 1
        # The body SQLite read as a part of its own is the one kept, reused by the memo.
        assert second is first
        assert second.body is first.body


async def test_parts_of_another_type_are_returned_but_never_kept() -> None:
    class Odd(MemoryCache):
        async def read_parts(self, key: str, split: Any = None) -> Any:
            return [b"a", b"b"]  # a list: what a careless store might return

    near = NearCache(Odd())
    got: object = await near.read_parts("k")
    assert got == [b"a", b"b"]
    assert len(near._local) == 0
