"""Coalescing: identical cacheable misses make one request; nothing else is serialised.

The origin's ``/gate`` route holds every request until the test opens it, so these
scenarios count the requests that reached the origin meanwhile instead of timing them.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

from aiohttp import web

from acc.core import CacheBackend, CachedResponse, MemoryCache
from acc.core.flow.coalesce import SingleFlight


class CountingFlight(SingleFlight):
    """The backend's in-flight registry, counting the requests that joined it."""

    __slots__ = ("joins",)

    def __init__(self) -> None:
        super().__init__()
        self.joins = 0

    def join(self, key: str) -> asyncio.Future[None] | None:
        self.joins += 1
        return super().join(key)


async def _gathered(origin: Any, requests: list[Awaitable[Any]], ready: Callable[[], bool], until):
    """Run ``requests`` at once; open the gate when ``ready()``; return their results."""
    tasks = [asyncio.ensure_future(r) for r in requests]
    try:
        await until(ready, "the concurrent requests to arrive")
    finally:
        origin.gate.set()
        results = await asyncio.gather(*tasks, return_exceptions=True)
    for result in results:
        if isinstance(result, BaseException):
            raise result
    return results


async def test_concurrent_identical_gets_make_one_origin_request(origin, client_factory, until):
    client = client_factory()
    flight = client.cache.inflight = CountingFlight()
    results = await _gathered(
        origin,
        [client.get(origin("/gate")) for _ in range(20)],
        # Every request joined the flight, and the leader's reached the origin.
        lambda: flight.joins == 20 and origin.hits["/gate"] >= 1,
        until,
    )
    assert origin.hits["/gate"] == 1
    assert all(r.json() == {"method": "GET", "count": 1} for r in results)
    assert sorted(r.from_cache for r in results) == [False] + [True] * 19
    assert len({r.cache_key for r in results}) == 1
    await client.cache.flush()
    stats = client.cache.stats
    assert (stats.misses, stats.hits, stats.writes) == (1, 19, 1)
    assert len(client.cache.inflight) == 0


async def test_uncacheable_concurrent_posts_are_not_serialised(origin, client_factory, until):
    client = client_factory()
    results = await _gathered(
        origin,
        [client.post(origin("/gate")) for _ in range(5)],
        lambda: origin.hits["/gate"] == 5,  # all five at the origin at once
        until,
    )
    assert all(r.status == 200 and not r.from_cache for r in results)
    assert sorted(r.json()["count"] for r in results) == [1, 2, 3, 4, 5]
    assert client.cache.stats.bypassed == 5


async def test_force_refresh_requests_are_not_serialised(origin, client_factory, until):
    client = client_factory()
    results = await _gathered(
        origin,
        [client.get(origin("/gate"), force_refresh=True) for _ in range(4)],
        lambda: origin.hits["/gate"] == 4,
        until,
    )
    assert all(r.status == 200 and not r.from_cache for r in results)
    assert origin.hits["/gate"] == 4
    assert (await client.get(origin("/gate"))).from_cache is True


async def test_refresh_requests_are_not_serialised(origin, client_factory, until):
    client = client_factory()
    origin.gate.set()
    await client.get(origin("/gate"))
    origin.gate.clear()
    results = await _gathered(
        origin,
        [client.get(origin("/gate"), refresh=True) for _ in range(3)],
        lambda: origin.hits["/gate"] == 4,
        until,
    )
    assert all(r.status == 200 and not r.from_cache for r in results)


def test_coalescing_works_across_event_loops(client_type):
    """One backend used from two successive event loops coalesces in each."""
    backend = CacheBackend(autoclose=False)
    flight = backend.inflight = CountingFlight()

    async def run_once(round_number: int) -> tuple[int, int]:
        hits = 0
        gate = asyncio.Event()

        async def slow(request: web.Request) -> web.Response:
            nonlocal hits
            hits += 1
            await gate.wait()
            return web.json_response({"round": round_number})

        app = web.Application()
        app.router.add_get("/slow", slow)
        runner = web.AppRunner(app)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = runner.addresses[0][1]
        client = None
        try:
            client = client_type(backend)
            joins_before = flight.joins
            url = f"http://127.0.0.1:{port}/slow"
            tasks = [asyncio.ensure_future(client.get(url)) for _ in range(10)]
            deadline = asyncio.get_running_loop().time() + 30
            while not (flight.joins - joins_before == 10 and hits >= 1):
                assert asyncio.get_running_loop().time() < deadline, "requests never arrived"
                await asyncio.sleep(0.002)
            gate.set()
            responses = await asyncio.gather(*tasks)
            served = sum(r.status == 200 and r.json() == {"round": round_number} for r in responses)
            return hits, served
        finally:
            gate.set()
            if client is not None:
                await client.close()
            await backend.clear()
            await runner.cleanup()

    assert asyncio.run(run_once(1)) == (1, 10)
    assert asyncio.run(run_once(2)) == (1, 10)
    asyncio.run(backend.close())


async def test_a_lone_miss_reads_the_store_once_and_a_late_joiner_twice(origin, make_client):
    class CountingCache(MemoryCache):
        reads = 0

        async def read(self, key: str) -> bytes | None:
            CountingCache.reads += 1
            return await super().read(key)

    backend = CacheBackend(responses=CountingCache())
    client = make_client(backend)
    await client.get(origin("/json?n=1"))
    assert CountingCache.reads == 1  # nothing finished meanwhile: no second look
    before = backend.inflight.completions
    CountingCache.reads = 0
    original_read = CountingCache.read

    async def read_while_another_finishes(self: CountingCache, key: str) -> bytes | None:
        backend.inflight.done("another-key")  # a fetch finishes during the lookup...
        return await original_read(self, key)

    CountingCache.read = read_while_another_finishes  # type: ignore[method-assign]
    await client.get(origin("/json?n=2"))
    assert backend.inflight.completions > before
    assert CountingCache.reads == 2  # ...so the new leader looks again before fetching


class _OtherProcessFetched(CacheBackend):
    """A backend whose cross-process lock reports that another process fetched meanwhile.

    Entering the lock stores the entry (as that other process would have) and yields True.
    """

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self.locked: list[str] = []
        self.prepared: CachedResponse | None = None

    @asynccontextmanager
    async def fetch_lock(self, key):
        self.locked.append(key)
        if self.prepared is not None:
            await self.write_entry(key, self.prepared)
            yield True
        else:
            yield False


async def test_fetch_lock_wraps_each_leader_fetch_and_a_wait_means_look_again(origin, make_client):
    backend = _OtherProcessFetched(autoclose=False)
    client = make_client(backend)
    first = await client.get(origin("/json"))
    assert first.from_cache is False
    assert backend.locked == [first.cache_key]
    assert first.cache_key is not None
    entry = await backend.read_entry(first.cache_key)
    await backend.clear()
    backend.prepared = entry
    second = await client.get(origin("/json"))
    assert second.from_cache is True  # found after the lock said "another process fetched"
    assert backend.locked == [first.cache_key, first.cache_key]
    third = await client.get(origin("/json"))  # a plain hit takes no lock
    assert third.from_cache is True
    assert origin.hits["/json"] == 1
    assert len(backend.locked) == 2
    await backend.close()
