"""A real redis-server stopped and restarted in the middle of a run (DESIGN §8).

Each test owns its server (``redis_server_factory``), so stopping it disturbs nobody.
Requests must keep succeeding from the network, the outage is logged once, counted in
``stats.errors``, and the backend works again once the server is back; with
``strict=True`` the outage is raised instead.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import pytest
from acc_services.redis import RedisServer

from acc.backends.redis import RedisBackend, RedisCache
from acc.core import BackendUnavailable
from acc.sessions.aiohttp import CachedSession

OUTAGE = "serving from the network until storage recovers"
RECOVERED = "is working again"


def _messages(caplog: pytest.LogCaptureFixture, text: str) -> int:
    return sum(1 for record in caplog.records if record.name == "acc" and text in record.message)


async def test_requests_survive_a_server_going_away_and_the_cache_recovers(
    origin, redis_server_factory: Callable[..., RedisServer], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="acc")
    server = redis_server_factory()
    # No breaker here: every request tries storage (the breaker has tests of its own).
    cache = RedisBackend("outage", url=server.url, breaker_threshold=None)
    async with CachedSession(cache=cache) as session:
        assert (await session.get(origin("/json"))).from_cache is False
        assert (await session.get(origin("/json"))).from_cache is True

        server.stop()  # pooled connections now point at a dead server
        for n in range(5):
            response = await session.get(origin(f"/json?n={n}"))
            assert response.status == 200
            assert (await response.json())["query"] == {"n": str(n)}
            assert response.from_cache is False
        again = await session.get(origin("/json"))  # was cached, but the cache is gone
        assert again.from_cache is False
        errors_during_outage = session.cache.stats.errors
        assert errors_during_outage >= 6
        assert _messages(caplog, OUTAGE) == 1  # one warning per outage, not per request

        server.restart()  # empty: persistence is off
        first = await session.get(origin("/json?after=1"))
        assert first.from_cache is False
        second = await session.get(origin("/json?after=1"))
        assert second.from_cache is True  # stored again: the backend reconnected
        assert _messages(caplog, RECOVERED) == 1
        assert session.cache.stats.errors == errors_during_outage

        server.stop()  # a second outage is reported again, once
        await session.get(origin("/json?n=99"))
        await session.get(origin("/json?n=98"))
        assert _messages(caplog, OUTAGE) == 2
    assert origin.hits["/json"] == 1 + 6 + 1 + 2


async def test_strict_raises_backend_unavailable_during_an_outage(
    origin, redis_server_factory: Callable[..., RedisServer]
) -> None:
    server = redis_server_factory()
    cache = RedisBackend("strict", url=server.url, strict=True)
    async with CachedSession(cache=cache) as session:
        await session.get(origin("/json"))
        server.stop()
        with pytest.raises(BackendUnavailable):
            await session.get(origin("/json?n=1"))
        server.restart()
        response = await session.get(origin("/json?n=2"))
        assert response.status == 200
        assert (await session.get(origin("/json?n=2"))).from_cache is True


async def test_store_errors_are_backend_unavailable(
    redis_server_factory: Callable[..., RedisServer],
) -> None:
    server = redis_server_factory()
    store = RedisCache("down", "responses", url=server.url)
    try:
        await store.write("k", b"v")
        server.stop()
        for call in (
            store.read("k"),
            store.write("k", b"v"),
            store.read_many(["k", "j"]),
            store.bulk_delete(["k", "j"]),
            store.size(),
            store.clear(),
        ):
            with pytest.raises(BackendUnavailable):
                await call
        server.restart()
        await store.write("k", b"back")
        assert await store.read("k") == b"back"
    finally:
        await store.close()


async def test_a_server_never_reached_fails_open(origin) -> None:
    # Port 1 on loopback refuses connections: the cache is unreachable from the start.
    async with CachedSession(cache=RedisBackend("nowhere", url="redis://127.0.0.1:1/0")) as s:
        for _ in range(3):
            response = await s.get(origin("/json"))
            assert response.status == 200
            assert response.from_cache is False
            await s.cache.flush()  # the queued write meets the outage before the next request
        assert s.cache.stats.errors >= 3
    assert origin.hits["/json"] == 3


async def test_the_fetch_lock_never_fails_a_request_during_an_outage(
    origin, redis_server_factory: Callable[..., RedisServer]
) -> None:
    server = redis_server_factory()
    cache = RedisBackend("lock-outage", url=server.url, lock=True)
    async with CachedSession(cache=cache) as session:
        server.stop()
        async with cache.fetch_lock("k") as waited:
            assert waited is False  # could not lock: fetch as if there were no lock
        response = await session.get(origin("/json"))
        assert response.status == 200
        server.restart()
        await session.get(origin("/json?n=1"))
        assert (await session.get(origin("/json?n=1"))).from_cache is True
