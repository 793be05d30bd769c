"""Automatic pipelining and streaming maintenance of the Redis store, on real servers.

Round trips are counted on the server (``INFO commandstats`` of a dedicated server) and
on the wire (a connection class that counts the packets it sends); "not delayed" is
counted in loop iterations, never timed.
"""

from __future__ import annotations

import asyncio
import importlib.util
import os
import re
import signal
import time
import tracemalloc
import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any, ClassVar

import pytest
from acc_services.redis import RedisServer
from redis.asyncio import BlockingConnectionPool, Redis
from redis.asyncio.connection import Connection

from acc.backends.redis import RedisBackend, RedisCache, RedisConnection
from acc.core import BackendError, BackendUnavailable, CacheBackend, ConfigError


def unique(prefix: str = "p") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


class CountingConnection(Connection):
    """A real connection that counts the packets of commands it sends (round trips)."""

    sent: ClassVar[list[int]] = []

    async def send_packed_command(self, command: Any, check_health: bool = True) -> None:
        type(self).sent.append(1)
        await super().send_packed_command(command, check_health)


@pytest.fixture
async def server(redis_server_factory: Callable[..., RedisServer]) -> RedisServer:
    return redis_server_factory()


@pytest.fixture
async def raw(server: RedisServer) -> AsyncIterator[Redis]:
    client = Redis.from_url(server.url)
    yield client
    await client.aclose()


@pytest.fixture
async def store(server: RedisServer) -> AsyncIterator[RedisCache]:
    cache = RedisCache(unique(), "responses", url=server.url)
    yield cache
    await cache.close()


async def _stats(raw: Redis) -> dict[str, int]:
    info = await raw.info("commandstats")
    return {name.removeprefix("cmdstat_"): value["calls"] for name, value in info.items()}


# -- batching ------------------------------------------------------------------------------


async def test_concurrent_reads_in_one_iteration_are_one_mget(
    store: RedisCache, raw: Redis
) -> None:
    for i in range(50):
        await store.write(f"k{i}", f"v{i}".encode())
    await raw.config_resetstat()
    values = await asyncio.gather(*(store.read(f"k{i}") for i in range(60)))
    assert values == [f"v{i}".encode() for i in range(50)] + [None] * 10
    stats = await _stats(raw)
    assert stats["mget"] == 1
    assert "get" not in stats


async def test_reads_of_one_key_share_its_slot_in_the_mget(store: RedisCache, raw: Redis) -> None:
    await store.write("same", b"v")
    await store.write("other", b"w")
    await raw.config_resetstat()
    values = await asyncio.gather(*(store.read(k) for k in ("same", "other", "same", "same")))
    assert values == [b"v", b"w", b"v", b"v"]
    assert (await _stats(raw))["mget"] == 1


async def test_concurrent_writes_are_one_round_trip(server: RedisServer, raw: Redis) -> None:
    connection = RedisConnection(
        server.url, connection_options={"connection_class": CountingConnection}
    )
    store = RedisCache(unique(), "responses", connection=connection)
    try:
        await store.write("warm", b"up")  # the auto-pipeline's connection is open now
        CountingConnection.sent.clear()
        expires_at = time.time() + 100
        await asyncio.gather(
            *(store.write(f"k{i}", b"v", expires_at=expires_at) for i in range(30)),
            store.write("forever", b"v"),
        )
        assert len(CountingConnection.sent) == 1
        assert await raw.pexpiretime(f"{store.prefix.decode()}k7") == round(expires_at * 1000)
        assert await raw.pttl(f"{store.prefix.decode()}forever") == -1
    finally:
        await store.close()


async def test_a_batch_is_bounded_in_size(store: RedisCache, raw: Redis) -> None:
    await raw.config_resetstat()
    assert await asyncio.gather(*(store.read(f"k{i}") for i in range(1200))) == [None] * 1200
    stats = await _stats(raw)
    assert stats["mget"] == 3  # 500 + 500 + 200: three batches, one after the other


async def test_a_read_after_a_write_in_one_iteration_sees_it(store: RedisCache) -> None:
    await store.write("k", b"old")
    _written, value = await asyncio.gather(store.write("k", b"new"), store.read("k"))
    assert value == b"new"
    value, _written = await asyncio.gather(store.read("k"), store.write("k", b"newer"))
    assert value == b"new"  # the read was issued first


async def test_a_lone_read_is_sent_in_the_next_loop_iteration(store: RedisCache) -> None:
    """No timer: the batch leaves before the loop polls for I/O with a wait."""
    await store.write("k", b"v")
    pipeline = store.connection.pipeline
    assert pipeline is not None
    before = pipeline.batches
    loop = asyncio.get_running_loop()
    ticks = 0
    sent_at: list[int] = []

    def tick() -> None:
        nonlocal ticks
        ticks += 1
        if pipeline.batches > before and not sent_at:
            sent_at.append(ticks)
        if ticks < 100:
            loop.call_soon(tick)

    loop.call_soon(tick)
    assert await store.read("k") == b"v"
    # Iteration 1 runs the tick, then the flusher (which sends); iteration 2's tick sees it.
    assert sent_at == [2]


async def test_sequential_reads_each_go_at_once(store: RedisCache, raw: Redis) -> None:
    await store.write("k", b"v")
    await raw.config_resetstat()
    for _ in range(5):
        assert await store.read("k") == b"v"
    assert (await _stats(raw))["get"] == 5


# -- errors, cancellation, closing ---------------------------------------------------------


async def test_a_failed_batch_fails_every_waiter_with_its_own_error(
    server: RedisServer,
) -> None:
    store = RedisCache(unique(), "responses", url=server.url)
    try:
        await store.write("k", b"v")
        server.stop()
        results = await asyncio.gather(
            *(store.read(f"k{i}") for i in range(5)),
            store.write("w", b"v"),
            return_exceptions=True,
        )
        assert all(isinstance(result, BackendUnavailable) for result in results)
        assert len({id(result) for result in results}) == len(results)
        assert all("read failed" in str(result) for result in results[:5])
        assert "write failed" in str(results[5])
    finally:
        await store.close()


async def test_a_batch_that_times_out_fails_its_callers_and_the_next_one_works(
    server: RedisServer,
) -> None:
    connection = RedisConnection(server.url, socket_timeout=0.3)
    store = RedisCache(unique(), "responses", connection=connection)
    try:
        await store.write("k", b"v")
        assert server.process is not None
        os.kill(server.process.pid, signal.SIGSTOP)  # the server answers nothing
        try:
            results = await asyncio.gather(store.read("k"), store.read("k"), return_exceptions=True)
        finally:
            os.kill(server.process.pid, signal.SIGCONT)
        assert all(isinstance(result, BackendUnavailable) for result in results)
        assert all("read failed" in str(result) for result in results)
        assert await store.read("k") == b"v"  # a new connection, the stream in step
    finally:
        await store.close()


async def test_an_error_reply_goes_to_its_caller_only(store: RedisCache) -> None:
    pipeline = store.connection.pipeline
    assert pipeline is not None
    await store.write("k", b"not a number")
    counter = store.redis_key("k")
    results = await asyncio.gather(
        store.read("k"),
        pipeline.call("write", "INCR", counter),
        store.read("k"),
        return_exceptions=True,
    )
    assert results[0] == b"not a number"
    assert isinstance(results[1], BackendError)
    assert not isinstance(results[1], BackendUnavailable)
    assert "not an integer" in str(results[1].__cause__)
    assert results[2] == b"not a number"


async def test_a_cancelled_waiter_leaves_the_others_their_replies(store: RedisCache) -> None:
    for i in range(10):
        await store.write(f"k{i}", f"v{i}".encode())
    tasks = [asyncio.ensure_future(store.read(f"k{i}")) for i in range(10)]
    await asyncio.sleep(0)  # every read is queued; the batch is about to be sent
    tasks[3].cancel()
    await asyncio.sleep(0)  # the batch is on its way
    tasks[6].cancel()
    results = await asyncio.gather(*tasks, return_exceptions=True)
    for i, result in enumerate(results):
        if i in (3, 6):
            assert isinstance(result, asyncio.CancelledError)
        else:
            assert result == f"v{i}".encode()
    assert await store.read("k3") == b"v3"  # the pipeline still works


async def test_a_closed_store_raises_and_close_drains_queued_writes(
    server: RedisServer, raw: Redis
) -> None:
    store = RedisCache(unique(), "responses", url=server.url)
    writes = [asyncio.ensure_future(store.write(f"k{i}", b"v")) for i in range(5)]
    await asyncio.sleep(0)  # queued, not yet answered
    await store.close()
    await asyncio.gather(*writes)
    assert await raw.get(f"{store.prefix.decode()}k4") == b"v"
    with pytest.raises(BackendError, match="closed"):
        await store.read("k4")


async def test_a_pool_of_one_connection_is_not_held_by_the_pipeline(server: RedisServer) -> None:
    pool = BlockingConnectionPool.from_url(server.url, max_connections=1, timeout=5)
    client = Redis.from_pool(pool)
    store = RedisCache(unique(), "responses", client=client)
    try:
        await asyncio.gather(*(store.write(f"k{i}", b"v") for i in range(5)))
        assert await store.read("k1") == b"v"
        assert await store.size() == 5  # SCAN gets the pool's only connection
        await store.clear()
    finally:
        await store.close()
        await client.aclose()


# -- the option ----------------------------------------------------------------------------


async def test_without_auto_pipeline_each_read_is_its_own_get(
    server: RedisServer, raw: Redis
) -> None:
    async with RedisBackend(unique(), url=server.url, auto_pipeline=False) as cache:
        assert cache.connection.pipeline is None
        await cache.responses.write("k", b"v")
        await raw.config_resetstat()
        assert await asyncio.gather(*(cache.responses.read("k") for _ in range(3))) == [b"v"] * 3
        stats = await _stats(raw)
    assert stats["get"] == 3
    assert "mget" not in stats


@pytest.mark.parametrize("value", ["yes", 1, None])
def test_auto_pipeline_must_be_a_bool(value: object) -> None:
    with pytest.raises(ConfigError, match="auto_pipeline"):
        RedisBackend(auto_pipeline=value)  # type: ignore[arg-type]


def test_auto_pipeline_from_a_url() -> None:
    off = CacheBackend.from_url("redis://127.0.0.1:1/0?auto_pipeline=false")
    on = CacheBackend.from_url("redis://127.0.0.1:1/0")
    assert isinstance(off, RedisBackend)
    assert isinstance(on, RedisBackend)
    assert off.connection.pipeline is None
    assert on.connection.pipeline is not None


# -- cluster -------------------------------------------------------------------------------


async def test_concurrent_reads_and_writes_on_a_cluster(redis_cluster_url: str) -> None:
    async with RedisBackend(unique("cl"), url=redis_cluster_url) as cache:
        store = cache.responses
        pipeline = cache.connection.pipeline
        assert pipeline is not None
        await asyncio.gather(*(store.write(f"k{i}", f"v{i}".encode()) for i in range(100)))
        before = pipeline.batches
        values = await asyncio.gather(*(store.read(f"k{i}") for i in range(120)))
        assert values == [f"v{i}".encode() for i in range(100)] + [None] * 20
        assert pipeline.batches == before + 1
        await cache.clear()


# -- hiredis -------------------------------------------------------------------------------


async def test_the_hiredis_extra_gives_redis_py_its_parser(store: RedisCache) -> None:
    # The extra is declared (pip install "acc-backend-redis[hiredis]")...
    pyproject = Path(__file__).parents[3] / "packages" / "backend-redis" / "pyproject.toml"
    assert re.search(r'^hiredis = \["redis\[hiredis\]>=', pyproject.read_text(), re.M)
    # ... and where it is installed (the bench env), redis-py parses with it, and the
    # pipeline works over it; without it, the pure-Python parser is the one in use.
    from redis.asyncio.connection import DefaultParser
    from redis.utils import HIREDIS_AVAILABLE

    installed = importlib.util.find_spec("hiredis") is not None
    assert HIREDIS_AVAILABLE is installed
    assert ("Hiredis" in DefaultParser.__name__) is installed
    await store.write("k", b"v")
    assert list(await asyncio.gather(store.read("k"), store.read("k"))) == [b"v", b"v"]


# -- maintenance ---------------------------------------------------------------------------


async def test_keys_stream_in_bounded_memory(store: RedisCache, raw: Redis) -> None:
    count = 50_000
    prefix = store.prefix
    async with raw.pipeline(transaction=False) as pipe:
        for start in range(0, count, 5000):
            pipe.mset({prefix + f"key-{i:06d}".encode(): b"v" for i in range(start, start + 5000)})
        await pipe.execute()
    # What holding every key would cost: a set of the keys the scan returns.
    tracemalloc.start()
    try:
        held = {prefix + f"key-{i:06d}".encode() for i in range(count)}
        set_size = tracemalloc.get_traced_memory()[0]
        del held
        tracemalloc.reset_peak()
        base = tracemalloc.get_traced_memory()[0]
        seen = 0
        async for _key in store.keys():
            seen += 1
        peak = tracemalloc.get_traced_memory()[1] - base
    finally:
        tracemalloc.stop()
    assert seen >= count  # (a key may come twice if the server rehashed meanwhile)
    assert peak < set_size / 5, (peak, set_size)
    assert await store.size() >= count
    await store.clear()
    assert await store.size() == 0


async def test_delete_expired_does_not_scan_when_now_is_not_ahead(
    store: RedisCache, raw: Redis
) -> None:
    await store.write("soon", b"v", expires_at=time.time() + 30)
    await store.write("later", b"v", expires_at=time.time() + 300)
    await raw.config_resetstat()
    assert await store.delete_expired(time.time()) == 0
    assert await store.delete_expired(time.time() - 3600) == 0
    stats = await _stats(raw)
    assert "scan" not in stats
    assert "pexpiretime" not in stats
    assert await store.delete_expired(time.time() + 60) == 1  # a clock ahead: it scans
    assert "scan" in await _stats(raw)
    assert await store.read("later") == b"v"
    assert await store.read("soon") is None
