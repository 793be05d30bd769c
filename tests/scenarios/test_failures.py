"""Fail-open: a broken store never fails a request; ``strict=True`` raises instead."""

from __future__ import annotations

import pytest

from acc.core import BackendError, BackendUnavailable, BaseCache, CacheBackend


def broken_store(error: type[Exception]) -> type[BaseCache]:
    class Broken(BaseCache):
        async def read(self, key):
            raise error("storage is down")

        async def write(self, key, value, *, expires_at=None):
            raise error("storage is down")

        async def delete(self, key):
            raise error("storage is down")

        async def keys(self):
            for _ in ():
                yield ""  # never reached: makes this an async generator
            raise error("storage is down")

        async def clear(self):
            raise error("storage is down")

    return Broken


def _outage_warnings(caplog: pytest.LogCaptureFixture) -> int:
    return sum("failed" in r.getMessage() for r in caplog.records if r.levelname == "WARNING")


@pytest.mark.parametrize("error", [ConnectionError, BackendError])
async def test_a_broken_store_fails_open_and_strict_raises(origin, make_client, caplog, error):
    store = broken_store(error)
    backend = CacheBackend(responses=store(), redirects=store())
    client = make_client(backend)
    with caplog.at_level("WARNING", logger="acc"):
        first = await client.get(origin("/json"))
        await backend.flush()  # the write behind the response fails: nothing is kept
        second = await client.get(origin("/json"))
        await backend.flush()
    assert (first.status, second.status) == (200, 200)
    assert (first.from_cache, second.from_cache) == (False, False)
    assert second.json()["count"] == 2
    assert backend.stats.errors >= 3  # two reads, at least one write
    assert _outage_warnings(caplog) == 1  # one warning per outage, not per request
    strict = make_client(CacheBackend(responses=store(), redirects=store(), strict=True))
    with pytest.raises(BackendUnavailable):
        await strict.get(origin("/json"))
    assert origin.hits["/json"] == 2


async def test_a_stopped_redis_fails_open_and_strict_raises(
    origin, make_client, redis_server_factory, clock, caplog
):
    from acc.backends.redis import RedisBackend

    server = redis_server_factory()
    backend = RedisBackend("outage", url=server.url, clock=clock)
    client = make_client(backend)
    await client.get(origin("/json"))
    assert (await client.get(origin("/json"))).from_cache is True
    await backend.flush()
    assert backend.stats.errors == 0
    server.stop()
    during = []
    with caplog.at_level("WARNING", logger="acc"):
        for _ in range(3):
            during.append(await client.get(origin("/json")))
            await backend.flush()  # the write behind the response fails: nothing is kept
    assert [r.status for r in during] == [200, 200, 200]
    assert [r.from_cache for r in during] == [False, False, False]
    assert [r.json()["count"] for r in during] == [2, 3, 4]
    assert backend.stats.errors >= 3
    assert _outage_warnings(caplog) == 1
    strict = make_client(RedisBackend("outage", url=server.url, clock=clock, strict=True))
    with pytest.raises(BackendUnavailable):
        await strict.get(origin("/json"))
    assert origin.hits["/json"] == 4
