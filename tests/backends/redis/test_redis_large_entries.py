"""Large entries on Redis: a pointer under the entry's key, the body in a key of its own.

What is checked, on real servers (a single redis-server, and a three-node cluster where
the layout matters there too):

* a large hit hands back the body as the ``bytes`` object redis-py parsed (the codec
  then uses that very object), and acc allocates nothing body-sized after the driver
  has handed it over (tracemalloc, through a ``RedisBackend``);
* no write, delete, clear or expiry leaves a body key behind (looked at with a plain
  redis-py client);
* a value that happens to start with the pointers' mark round-trips every way;
* a body gone from Redis (evicted) makes the entry a miss, for the store and the façade;
* reads racing rewrites of the same key always see one whole value.
"""

from __future__ import annotations

import asyncio
import importlib.util
import time
import tracemalloc
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from acc_entries import large_entry
from redis.asyncio import Redis
from redis.asyncio.cluster import RedisCluster

import acc.backends.redis.connection as redis_connection
from acc.backends.redis import RedisBackend, RedisCache
from acc.core import ConfigError
from acc.core.codec import Codec
from acc.sessions.aiohttp import CachedSession

MiB = 1024 * 1024
BODY = bytes(range(256)) * (2 * MiB // 256)  # 2 MiB, a pattern the head never has
MARK = b"\x00acc-redis:"  # what the store's own wrapped values start with


def unique(prefix: str = "large") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


@pytest.fixture(params=["single", "cluster"])
def url(request: pytest.FixtureRequest) -> str:
    fixture = "redis_url" if request.param == "single" else "redis_cluster_url"
    return str(request.getfixturevalue(fixture))


@pytest.fixture
async def raw(url: str) -> AsyncIterator[Any]:
    """A plain redis-py client, to look at (and tamper with) what the store wrote."""
    client: Redis | RedisCluster
    if url.startswith("redis+cluster://"):
        client = RedisCluster.from_url(url.replace("redis+cluster://", "redis://"))
    else:
        client = Redis.from_url(url)
    yield client
    await client.aclose()


@pytest.fixture
async def store(url: str) -> AsyncIterator[RedisCache]:
    cache = RedisCache(unique(), "responses", url=url)
    yield cache
    await cache.clear()
    await cache.close()


def body_key(store: RedisCache, key: str) -> bytes:
    return b"{" + store.redis_key(key) + b"}:body"


async def leftovers(raw: Any, store: RedisCache) -> list[bytes]:
    """Every key of the store's cache still in Redis, body keys included."""
    found: list[bytes] = []
    for pattern in (f"{store.cache_name}:*", f"{{{store.cache_name}:*"):
        async for key in raw.scan_iter(match=pattern):
            found.append(bytes(key))
    return sorted(found)


# -- layout and the body handed over ------------------------------------------------------


async def test_a_large_entry_is_a_pointer_and_a_body_key_with_one_expiry(
    store: RedisCache, raw: Any
) -> None:
    expires_at = time.time() + 100
    await store.write_parts("k", (b"the head", BODY), expires_at=expires_at)
    pointer = await raw.get(store.redis_key("k"))
    assert pointer is not None
    assert pointer.startswith(MARK)
    assert len(pointer) < 100  # the head, not the body
    assert await raw.get(body_key(store, "k")) == BODY
    deadline = round(expires_at * 1000)
    assert await raw.pexpiretime(store.redis_key("k")) == deadline
    assert await raw.pexpiretime(body_key(store, "k")) == deadline
    assert await store.size() == 1  # the body key is no entry
    listed = store.keys()
    assert [key async for key in listed] == ["k"]
    await store.write_parts("k", (b"forever", BODY), expires_at=None)
    assert await raw.pttl(store.redis_key("k")) == -1
    assert await raw.pttl(body_key(store, "k")) == -1


async def test_read_parts_of_a_large_entry_gives_the_parsed_body_itself(
    store: RedisCache,
) -> None:
    codec = Codec()
    head, body = codec.encode_parts(large_entry(BODY), key="k")
    await store.write_parts("k", (head, body))
    parts = await store.read_parts("k", codec.head_size)
    assert parts is not None
    assert [type(part) for part in parts] == [bytes, bytes]
    assert [len(part) for part in parts] == [len(head), len(BODY)]
    assert parts == (head, body)
    decoded = codec.decode_parts(parts, key="k")
    assert decoded.body is parts[1]  # not a slice: the object redis-py built
    assert decoded == large_entry(BODY)
    assert await store.read("k") == head + body
    assert await store.read_many(["k", "missing"]) == [head + body, None]
    assert [pair async for pair in store.items()] == [("k", head + body)]


async def test_a_large_hit_is_a_get_then_one_transaction(
    redis_server_factory: Callable[..., Any],
) -> None:
    server = redis_server_factory()
    raw = Redis.from_url(server.url)
    async with RedisBackend(unique(), url=server.url) as backend:
        await backend.write_entry("big", large_entry(BODY))
        await backend.write_entry("small", large_entry(b"small body"))
        await raw.config_resetstat()
        assert await backend.read_entry("small") == large_entry(b"small body")
        assert await _calls(raw) == {"get": 1}  # a small hit: one GET, nothing more
        await raw.config_resetstat()
        assert await backend.read_entry("big") == large_entry(BODY)
        # The pointer's GET, then MULTI, GET key, GET body key, EXEC.
        assert await _calls(raw) == {"get": 3, "multi": 1, "exec": 1}
        await backend.clear()
    await raw.aclose()


_NOT_COUNTED = ("cmdstat_config", "cmdstat_info", "cmdstat_hello", "cmdstat_client")


async def _calls(raw: Redis) -> dict[str, int]:
    stats = await raw.info("commandstats")
    return {
        name.removeprefix("cmdstat_"): int(value["calls"])
        for name, value in stats.items()
        # Not the test's own commands, nor a new connection's handshake.
        if not name.startswith(_NOT_COUNTED)
    }


async def test_a_5_mib_hit_allocates_nothing_body_sized_after_the_driver(url: str) -> None:
    """The codec uses the body redis-py parsed: acc adds no copy of it (issue 17).

    redis-py's pure-Python parser itself allocates the body a few times over while it
    reads (hiredis parses in C: one object), so the whole read is bounded only with
    hiredis; what acc does once the driver has handed the body over is bounded always.
    """
    size = 5 * MiB
    body = bytes(range(256)) * (size // 256)
    backend = RedisBackend(unique(), url=url)
    after_driver: list[int] = []
    transaction = backend.connection.transaction

    async def measured(operation: str, commands: Any) -> list[Any]:
        replies = await transaction(operation, commands)
        after_driver.append(tracemalloc.get_traced_memory()[0])
        tracemalloc.reset_peak()
        return replies

    backend.connection.transaction = measured  # type: ignore[method-assign]
    try:
        await backend.write_entry("k", large_entry(body))
        assert await backend.read_entry("k") == large_entry(body)  # warm-up
        tracemalloc.start()
        try:
            base = tracemalloc.get_traced_memory()[0]
            found = await backend.read_entry("k")
            current, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        assert found is not None
        assert len(found.body) == size
        assert len(after_driver) == 3  # the write, the warm-up's read, the measured one
        assert peak - after_driver[-1] < size // 2, (peak, after_driver[-1])
        assert current - base < size * 1.5  # what stays: the response, its body once
        if importlib.util.find_spec("hiredis") is not None:  # the bench env
            tracemalloc.start()
            try:
                base = tracemalloc.get_traced_memory()[0]
                await backend.read_entry("k")
                whole = tracemalloc.get_traced_memory()[1] - base
            finally:
                tracemalloc.stop()
            assert whole < size * 1.5, whole
    finally:
        await backend.clear()
        await backend.close()


# -- nothing left behind --------------------------------------------------------------------


async def test_overwriting_a_large_entry_with_a_small_one_removes_its_body(
    store: RedisCache, raw: Any
) -> None:
    await store.write_parts("k", (b"head", BODY))
    assert await raw.exists(body_key(store, "k")) == 1
    await store.write("k", b"small now", expires_at=time.time() + 60)
    assert await raw.exists(body_key(store, "k")) == 0
    assert await store.read("k") == b"small now"
    assert await leftovers(raw, store) == [store.redis_key("k")]


async def test_no_write_or_delete_leaves_a_body_key(store: RedisCache, raw: Any) -> None:
    async def large(key: str) -> None:
        await store.write_parts(key, (b"head", BODY))
        assert await raw.exists(body_key(store, key)) == 1

    await large("deleted")
    await store.delete("deleted")
    for key in ("bulk-1", "bulk-2"):
        await large(key)
    await store.bulk_delete(["bulk-1", "bulk-2", "never-written"])
    await large("expired-by-write")
    await store.write("expired-by-write", b"v", expires_at=time.time() - 1)
    await large("expired-by-parts")
    await store.write_parts("expired-by-parts", (b"h", BODY), expires_at=time.time() - 1)
    await store.write_parts("due", (b"head", BODY), expires_at=time.time() + 30)
    assert await store.delete_expired(time.time() + 60) == 1  # a clock ahead of Redis'
    assert await leftovers(raw, store) == []
    for key in ("a", "b"):
        await large(key)
    await store.write("c", b"small")
    await store.clear()
    assert await leftovers(raw, store) == []


async def test_a_large_value_without_a_large_last_part_is_stored_whole(
    store: RedisCache, raw: Any
) -> None:
    await store.write_parts("k", (b"head", BODY))
    parts = (BODY, b"x" * 100, BODY[:1000])  # 2 MiB+, its last part small
    await store.write_parts("k", parts)
    assert await raw.get(store.redis_key("k")) == b"".join(parts)
    assert await raw.exists(body_key(store, "k")) == 0  # the old body went with it
    assert await store.read_parts("k") == (b"".join(parts),)


# -- the mark -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "value",
    [MARK, MARK + b"P", MARK + b"P" + b"\x00" * 8 + b"head", MARK + b"I" + b"x", MARK + b"?"],
)
async def test_a_value_that_starts_with_the_mark_round_trips(
    store: RedisCache, value: bytes
) -> None:
    await store.write("k", value)
    assert await store.read("k") == value
    assert await store.read_parts("k") == (value,)
    assert await store.read_many(["k"]) == [value]
    assert [pair async for pair in store.items()] == [("k", value)]
    large = MARK + b"P" + BODY  # written in pieces: escaped in its first one
    await store.write_parts("large", (large[:10], large[10:20], b"z" * 10))
    await store.write_parts("larger", (large, b"tail"))
    assert await store.read("large") == large[:20] + b"z" * 10
    assert await store.read("larger") == large + b"tail"


async def test_a_pointer_in_a_key_with_braces_is_not_followed(store: RedisCache, raw: Any) -> None:
    """A key with a brace never gets a body key, so a pointer there is no entry of ours."""
    await store.write_parts("{k}", (b"head", BODY))  # stored whole, in one value
    assert await store.read("{k}") == b"head" + BODY
    await raw.set(store.redis_key("{k}"), MARK + b"P" + len(BODY).to_bytes(8, "big") + b"h")
    assert await store.read("{k}") is None


def test_a_cache_name_starting_with_a_brace_is_refused() -> None:
    # Its namespace would hold the body keys of the cache named without the brace.
    with pytest.raises(ConfigError, match="cache_name"):
        RedisCache("{a", "responses")
    with pytest.raises(ConfigError, match="cache_name"):
        RedisBackend("{a")


# -- a body gone ----------------------------------------------------------------------------


async def test_a_pointer_whose_body_is_gone_is_a_miss(store: RedisCache, raw: Any) -> None:
    await store.write_parts("k", (b"head", BODY))
    await store.write("other", b"v")
    await raw.delete(body_key(store, "k"))  # as maxmemory eviction would
    assert await store.read("k") is None
    assert await store.read_parts("k", lambda prefix: 4) is None
    assert await store.read_many(["k", "other"]) == [None, b"v"]
    assert [pair async for pair in store.items()] == [("other", b"v")]
    await raw.set(body_key(store, "k"), BODY[:-1])  # another body: not this pointer's
    assert await store.read("k") is None


async def test_the_facade_counts_a_miss_when_a_body_is_gone(origin: Any, url: str) -> None:
    backend = RedisBackend(unique(), url=url, autoclose=False)
    try:
        async with CachedSession(cache=backend) as session:
            first = await session.get(origin("/big?size=2097152"))
            assert first.from_cache is False
            await backend.flush()
            assert first.cache_key is not None
            assert (await session.get(origin("/big?size=2097152"))).from_cache is True
            responses = backend.responses
            assert isinstance(responses, RedisCache)
            companion = b"{" + responses.redis_key(first.cache_key) + b"}:body"
            await backend.connection.run("test", "UNLINK", companion)
            again = await session.get(origin("/big?size=2097152"))
            assert again.from_cache is False
            assert len(await again.read()) == 2 * MiB
        assert backend.stats.misses == 2
        assert backend.stats.hits == 1
        assert backend.stats.errors == 0
    finally:
        await backend.clear()
        await backend.close()


# -- concurrent rewrites --------------------------------------------------------------------


async def test_reads_racing_rewrites_see_one_whole_value(store: RedisCache) -> None:
    """Heads and bodies of one length each, so that only the pairing tells them apart."""
    values = {
        b"head-A": b"A" * MiB,
        b"head-B": b"B" * MiB,
    }
    whole = {head + body for head, body in values.items()} | {b"small-C"}
    await store.write_parts("k", (b"head-A", values[b"head-A"]))
    seen: set[bytes] = set()

    async def rewrite(rounds: int) -> None:
        for turn in range(rounds):
            if turn % 3 == 2:
                await store.write("k", b"small-C")
            else:
                head = b"head-A" if turn % 3 == 0 else b"head-B"
                await store.write_parts("k", (head, values[head]))

    async def read(rounds: int) -> None:
        for _ in range(rounds):
            for got in (await store.read("k"), *await store.read_many(["k"])):
                assert got is None or got in whole, (len(got), got[:10])
                if got is not None:
                    seen.add(got[:7])
            parts = await store.read_parts("k")
            if parts is not None:
                assert b"".join(parts) in whole

    await asyncio.gather(rewrite(30), rewrite(30), read(60), read(60))
    assert seen  # the reads did see values (never a mix of two)
    await store.write_parts("k", (b"head-B", values[b"head-B"]))
    assert await store.read("k") == b"head-B" + values[b"head-B"]


# -- without cluster transactions (redis-py before 6.2) -----------------------------------------


async def test_without_cluster_transactions_large_values_are_stored_whole(
    redis_cluster_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    name = unique()
    capable = RedisCache(name, "responses", url=redis_cluster_url)
    await capable.write_parts("pointer", (b"head", BODY))
    monkeypatch.setattr(redis_connection, "_CLUSTER_TRANSACTIONS", False)
    older = RedisCache(name, "responses", url=redis_cluster_url)
    try:
        assert not older.connection.transactions
        await older.write_parts("k", (b"head", BODY))
        raw = RedisCluster.from_url(redis_cluster_url.replace("redis+cluster://", "redis://"))
        try:
            assert await raw.get(older.redis_key("k")) == b"head" + BODY
        finally:
            await raw.aclose()
        assert await older.read("k") == b"head" + BODY
        # A pointer it cannot read together with its body is a miss (a refetch), never
        # a head paired with another entry's body.
        assert await older.read("pointer") is None
        monkeypatch.undo()
        assert await capable.read("pointer") == b"head" + BODY
    finally:
        await older.clear()
        await older.close()
        await capable.close()
