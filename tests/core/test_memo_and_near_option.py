"""The façade's reuse of decoded entries (acc.core.storage.memo) and its ``near_cache`` option."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from datetime import datetime, timezone
from typing import Any

import pytest

from acc.core import CacheBackend, CachedResponse, ConfigError, MemoryCache
from acc.core.codec import Codec
from acc.core.storage import BaseCache
from acc.core.storage.memo import DecodedMemo
from acc.core.storage.near import NearCache


def make_entry(body: bytes = b'{"a": 1}') -> CachedResponse:
    return CachedResponse(
        status=200,
        reason="OK",
        url="https://example.com/items",
        method="GET",
        headers=(("Content-Type", "application/json"),),
        body=body,
        created_at=datetime(2030, 1, 1, tzinfo=timezone.utc),
    )


class CountingCodec(Codec):
    """The real codec, counting its decodes."""

    decodes = 0

    def decode_parts(self, parts: Sequence[bytes], *, key: str = "") -> CachedResponse:
        CountingCodec.decodes += 1
        return super().decode_parts(parts, key=key)


class CountingCodecBackend(CacheBackend):
    """Counts the codec's decodes, to see when a decoded entry is reused."""

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self.codec = CountingCodec()
        CountingCodec.decodes = 0

    @property
    def decodes(self) -> int:
        return CountingCodec.decodes


class CopyingCache(MemoryCache):
    """An in-process store that (wrongly) claims to return stored objects but copies."""

    async def read_parts(self, key: str, split: Any = None) -> tuple[bytes, ...] | None:
        parts = await super().read_parts(key, split)
        return None if parts is None else tuple(bytes(bytearray(part)) for part in parts)


async def test_hits_on_an_in_process_store_decode_once() -> None:
    backend = CountingCodecBackend()
    await backend.write_entry("k", make_entry())
    first = await backend.read_entry("k")
    second = await backend.read_entry("k")
    assert first == second == make_entry()
    assert second is first
    assert backend.decodes == 1


async def test_a_rewrite_is_decoded_again() -> None:
    backend = CountingCodecBackend()
    await backend.write_entry("k", make_entry(b"old"))
    assert (await backend.read_entry("k")).body == b"old"  # type: ignore[union-attr]
    await backend.write_entry("k", make_entry(b"new"))
    assert (await backend.read_entry("k")).body == b"new"  # type: ignore[union-attr]
    assert backend.decodes == 2


class RemoteCache(CopyingCache):
    """A store that returns new bytes objects on every read, as a persistent one does."""

    returns_stored_objects = False


async def test_equal_bytes_read_again_are_decoded_once() -> None:
    backend = CountingCodecBackend(responses=RemoteCache())
    await backend.write_entry("k", make_entry())
    first = await backend.read_entry("k")
    second = await backend.read_entry("k")
    assert first == make_entry()
    assert second is first
    assert backend.decodes == 1


async def test_other_bytes_under_the_key_are_decoded_and_checked_again() -> None:
    backend = CountingCodecBackend(responses=RemoteCache())
    await backend.write_entry("k", make_entry(b"old"))
    assert (await backend.read_entry("k")).body == b"old"  # type: ignore[union-attr]
    other = CacheBackend(responses=backend.responses)  # another process, same store
    await other.write_entry("k", make_entry(b"new"))
    assert (await backend.read_entry("k")).body == b"new"  # type: ignore[union-attr]
    assert backend.decodes == 2


async def test_a_hostile_value_after_a_remembered_entry_reads_as_a_miss() -> None:
    class Hostile(RemoteCache):
        hostile = False

        async def read_parts(self, key: str, split: Any = None) -> Any:
            if self.hostile:
                return 12345  # not a tuple of bytes at all
            return await super().read_parts(key, split)

    store = Hostile()
    backend = CountingCodecBackend(responses=store)
    await backend.write_entry("k", make_entry())
    assert await backend.read_entry("k") == make_entry()
    store.hostile = True
    assert await backend.read_entry("k") is None
    assert backend.stats.errors == 1


def test_the_memo_of_a_persistent_store_keeps_no_large_entry() -> None:
    head, body = b"head", b"a large body"
    entry = make_entry(body)
    shared = DecodedMemo(max_entry_bytes=6)
    shared.put("k", (head, body), entry)  # in-process: the store keeps those bytes anyway
    assert shared.get("k", (head, body)) is entry
    copied = DecodedMemo(max_entry_bytes=6, shares_store_bytes=False)
    copied.put("k", (head, body), entry)  # persistent: the memo alone would keep them
    assert copied.get("k", (head, body)) is None
    assert shared.max_bytes == 32 * 1024 * 1024
    assert copied.max_bytes == 8 * 1024 * 1024


async def test_a_backend_sizes_its_memo_by_where_the_store_keeps_bytes() -> None:
    assert CacheBackend()._decoded.max_bytes == 32 * 1024 * 1024
    assert CacheBackend(responses=RemoteCache())._decoded.max_bytes == 8 * 1024 * 1024


async def test_a_tampered_rewrite_is_still_checked() -> None:
    backend = CacheBackend(secret_key="s3cret")
    await backend.write_entry("k", make_entry())
    assert await backend.read_entry("k") is not None
    data = await backend.responses.read("k")
    assert data is not None
    await backend.responses.write("k", data[:-1] + bytes([data[-1] ^ 1]))
    assert await backend.read_entry("k") is None
    assert backend.stats.errors == 1


def test_memo_bounds_by_count_bytes_and_entry_size() -> None:
    memo = DecodedMemo(max_entries=2, max_bytes=10, max_entry_bytes=6)
    entry = make_entry()
    a, b, c, big = b"aaaa", b"bbbb", b"cccc", b"xxxxxxx"
    memo.put("a", (a,), entry)
    memo.put("b", (b,), entry)
    memo.put("c", (c,), entry)  # over the count: "a" goes
    assert memo.get("a", (a,)) is None
    assert memo.get("b", (b,)) is entry
    assert memo.get("c", (c,)) is entry
    memo.put("d", (b"dddd",), entry)  # 12 bytes > 10: the oldest goes
    assert len(memo) == 2
    memo.put("big", (big,), entry)  # larger than one entry may be: never kept
    assert memo.get("big", (big,)) is None


def test_memo_keeps_a_large_entry_whose_body_is_the_stored_part() -> None:
    memo = DecodedMemo(max_entries=4, max_bytes=100, max_entry_bytes=6)
    head, body = b"head", b"x" * 50
    shared = make_entry(body)
    memo.put("shared", (head, body), shared)  # the body is the part: nothing copied
    assert memo.get("shared", (head, body)) is shared
    copied = make_entry(bytes(bytearray(body)))
    memo.put("copied", (head, body), copied)  # a copy would double it: not kept
    assert memo.get("copied", (head, body)) is None


def test_memo_reuses_only_for_equal_bytes_in_every_part() -> None:
    memo = DecodedMemo()
    head, body = b"head", b"body"
    entry = make_entry(body)
    memo.put("k", (head, body), entry)
    assert memo.get("k", (head, body)) is entry  # a new tuple of the same objects
    assert memo.get("k", (b"HEAD".lower(), bytes(bytearray(body)))) is entry  # equal copies
    assert memo.get("k", (b"hea2", body)) is None  # a revalidated head, same body
    assert memo.get("k", (head, b"bodY")) is None
    assert memo.get("k", (head,)) is None
    assert memo.get("k", (head + body,)) is None  # the same bytes, cut elsewhere
    assert memo.get("other", (head, body)) is None


# -- near_cache ----------------------------------------------------------------------------


async def test_near_cache_wraps_both_stores_and_serves_repeated_reads_locally() -> None:
    inner_responses, inner_redirects = MemoryCache(), MemoryCache()
    backend = CacheBackend(
        responses=inner_responses,
        redirects=inner_redirects,
        near_cache={"max_entries": 10, "max_age": 60},
    )
    assert isinstance(backend.responses, NearCache)
    assert isinstance(backend.redirects, NearCache)
    assert backend.responses.inner is inner_responses
    assert backend.responses.max_entries == 10
    await backend.write_entry("k", make_entry(), aliases=["alias"])
    await inner_responses.clear()  # behind the near cache's back, as another process would
    assert await backend.read_entry("k") == make_entry()  # served from process memory
    assert backend.responses.local_hits == 1


async def test_near_cache_true_uses_the_defaults_and_false_is_off() -> None:
    on = CacheBackend(near_cache=True)
    assert isinstance(on.responses, NearCache)
    assert on.responses.max_age == 5.0
    off = CacheBackend()
    assert not isinstance(off.responses, NearCache)


def test_near_cache_refuses_a_store_without_native_expiry() -> None:
    class NoTTL(BaseCache):
        async def read(self, key: str) -> bytes | None:
            return None

        async def write(self, key: str, value: bytes, *, expires_at: float | None = None) -> None:
            return None

        async def delete(self, key: str) -> None:
            return None

        async def keys(self) -> AsyncIterator[str]:
            nothing: tuple[str, ...] = ()
            for key in nothing:
                yield key

        async def clear(self) -> None:
            return None

    with pytest.raises(ConfigError, match=r"^near_cache: inner: NoTTL does not expire"):
        CacheBackend(responses=NoTTL(), near_cache=True)


def test_near_cache_from_a_url_option() -> None:
    backend = CacheBackend.from_url("memory://c?near_cache=true")
    assert isinstance(backend.responses, NearCache)
