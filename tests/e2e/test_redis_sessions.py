"""CachedSession on Redis: URL strings, many tasks, a cluster, and several processes.

The multi-process tests start real Python processes, each with its own CachedSession and
RedisBackend, that request the same slow origin URL at the same moment: with
``lock=True`` the origin sees one request; without it, each process fetches.
"""

from __future__ import annotations

import asyncio
import json
import sys
import textwrap
import uuid
from pathlib import Path

import pytest
from redis.asyncio import Redis

from acc.backends.redis import RedisBackend
from acc.sessions.aiohttp import CachedSession


def unique(prefix: str = "e2e") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


async def test_cache_url_string_selects_redis(origin, redis_url: str) -> None:
    name = unique()
    separator = "&" if "?" in redis_url else "?"
    url = f"{redis_url}{separator}cache_name={name}&expire_after=60"
    async with CachedSession(cache=url) as session:
        assert isinstance(session.cache, RedisBackend)
        assert session.cache.cache_name == name
        await session.get(origin("/json"))
        hit = await session.get(origin("/json"))
        assert hit.from_cache
        assert hit.expires is not None
        async with Redis.from_url(redis_url) as raw:
            assert 55_000 < await raw.pttl(f"{name}:responses:{hit.cache_key}") <= 60_000
        await session.cache.clear()
    assert origin.hits["/json"] == 1


@pytest.mark.parametrize("where", ["single", "cluster"])
async def test_200_concurrent_requests_through_one_session(
    origin, request: pytest.FixtureRequest, where: str
) -> None:
    url = request.getfixturevalue("redis_url" if where == "single" else "redis_cluster_url")
    cache = RedisBackend(unique(where), url=url)
    async with CachedSession(cache=cache) as session:
        urls = [origin(f"/json?n={i % 50}") for i in range(200)]
        first = await asyncio.gather(*(session.get(u) for u in urls))
        bodies = await asyncio.gather(*(r.json() for r in first))
        assert all(b["query"] == {"n": str(i % 50)} for i, b in enumerate(bodies))
        second = await asyncio.gather(*(session.get(u) for u in urls))
        assert all(r.from_cache for r in second)
        assert await asyncio.gather(*(r.json() for r in second)) == bodies
        await cache.flush()
        assert session.cache.stats.errors == 0
        assert await cache.responses.size() == 50
        assert sorted([u async for u in cache.urls()]) == sorted(set(urls))
        await cache.clear()
        assert await cache.responses.size() == 0
    assert origin.hits["/json"] == 50


async def test_a_cluster_spreads_one_cache_over_every_primary(
    origin, redis_cluster_url: str
) -> None:
    cache = RedisBackend(unique("spread"), url=redis_cluster_url)
    async with CachedSession(cache=cache) as session:
        for i in range(60):
            await session.get(origin(f"/json?n={i}"))
        await cache.flush()  # every write behind the responses has landed
        client = cache.client
        per_node = []
        for node in client.get_primaries():  # type: ignore[union-attr]
            _cursor, keys = await client.scan(
                0, match=f"{cache.cache_name}:*", count=1000, target_nodes=node
            )
            per_node.append(len(keys))
        assert sum(per_node) == 60
        assert sum(1 for count in per_node if count) == 3  # no hash tag pins it to one slot
        await cache.clear()
        for node in client.get_primaries():  # type: ignore[union-attr]
            _cursor, keys = await client.scan(
                0, match=f"{cache.cache_name}:*", count=1000, target_nodes=node
            )
            assert keys == []


async def test_two_backends_share_one_cache(origin, redis_url: str) -> None:
    name = unique()
    async with (
        CachedSession(cache=RedisBackend(name, url=redis_url)) as a,
        CachedSession(cache=RedisBackend(name, url=redis_url)) as b,
    ):
        await a.get(origin("/json"))
        hit = await b.get(origin("/json"))
        assert hit.from_cache
        await a.cache.clear()
    assert origin.hits["/json"] == 1


async def test_lock_coalesces_two_backends_in_one_process(origin, redis_url: str) -> None:
    name = unique("lock")
    a = RedisBackend(name, url=redis_url, lock=True)
    b = RedisBackend(name, url=redis_url, lock=True)
    async with CachedSession(cache=a) as first, CachedSession(cache=b) as second:
        url = origin("/slow?delay=0.5")
        responses = await asyncio.gather(first.get(url), second.get(url))
        assert sorted(r.from_cache for r in responses) == [False, True]
        bodies = [await r.json() for r in responses]
        assert bodies[0] == bodies[1] == {"count": 1}
        await a.clear()
    assert origin.hits["/slow"] == 1


WORKER = textwrap.dedent(
    """
    import asyncio, json, sys
    from acc.backends.redis import RedisBackend
    from acc.sessions.aiohttp import CachedSession

    async def main(redis_url, name, lock, url):
        cache = RedisBackend(name, url=redis_url, lock=lock == "1", lock_timeout=20)
        async with CachedSession(cache=cache) as session:
            await cache.responses.size()  # connect before the start signal
            print("ready", flush=True)
            await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
            response = await session.get(url)
            body = await response.json()
            print(json.dumps({"from_cache": response.from_cache, "body": body,
                              "errors": cache.stats.errors}), flush=True)

    asyncio.run(main(sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4]))
    """
)


async def _run_workers(
    tmp_path: Path, redis_url: str, url: str, *, lock: bool, count: int
) -> list[dict[str, object]]:
    """Start ``count`` processes, wait until each is connected, then let them all go."""
    script = tmp_path / "worker.py"
    script.write_text(WORKER)
    name = unique("procs")
    procs = [
        await asyncio.create_subprocess_exec(
            sys.executable,
            str(script),
            redis_url,
            name,
            "1" if lock else "0",
            url,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        for _ in range(count)
    ]
    for proc in procs:  # a barrier: every interpreter started and connected
        assert proc.stdout is not None
        line = await asyncio.wait_for(proc.stdout.readline(), 60)
        if line.strip() != b"ready":
            _out, err = await proc.communicate()
            pytest.fail(f"a worker did not start: {line!r} {err.decode()}")
    for proc in procs:
        assert proc.stdin is not None
        proc.stdin.write(b"go\n")
    results = await asyncio.wait_for(asyncio.gather(*(p.communicate() for p in procs)), 90)
    reports = []
    for proc, (out, err) in zip(procs, results, strict=True):
        assert proc.returncode == 0, err.decode()
        reports.append(json.loads(out.decode().strip().splitlines()[-1]))
    async with RedisBackend(name, url=redis_url) as cleanup:
        leftover_locks = [
            key
            async for page in cleanup.connection.scan("check", f"{name}:lock:*".encode())
            for key in page
        ]
        assert leftover_locks == []  # every lock was released by its owner
        await cleanup.clear()
    return reports


@pytest.mark.slow
@pytest.mark.parametrize("where", ["single", "cluster"])
async def test_lock_lets_one_of_several_processes_fetch(
    origin, request: pytest.FixtureRequest, tmp_path: Path, where: str
) -> None:
    redis_url = request.getfixturevalue("redis_url" if where == "single" else "redis_cluster_url")
    reports = await _run_workers(tmp_path, redis_url, origin("/slow?delay=1.5"), lock=True, count=4)
    assert origin.hits["/slow"] == 1, reports
    assert sorted(bool(r["from_cache"]) for r in reports) == [False, True, True, True], reports
    assert all(r["body"] == {"count": 1} for r in reports)
    assert all(r["errors"] == 0 for r in reports)


@pytest.mark.slow
async def test_without_lock_each_process_fetches(origin, redis_url: str, tmp_path: Path) -> None:
    """The control for the test above: the processes really do miss at the same time."""
    reports = await _run_workers(
        tmp_path, redis_url, origin("/slow?delay=1.5"), lock=False, count=3
    )
    # All three were released at once against a 1.5 s response; >= 2 leaves room for a
    # worker slowed down by a busy machine, and still shows that nothing coordinated them.
    assert origin.hits["/slow"] >= 2, reports
    assert sum(1 for r in reports if not r["from_cache"]) == origin.hits["/slow"]
