"""CachedSession on SQLite under load: many tasks, two sessions, two processes."""

from __future__ import annotations

import asyncio
import sys
import textwrap
from pathlib import Path

from acc.backends.sqlite import SQLiteBackend
from acc.sessions.aiohttp import CachedSession


async def test_cache_url_string_selects_sqlite(origin, tmp_path):
    db = tmp_path / "nested" / "x.db"
    async with CachedSession(cache=f"sqlite:///{db}?expire_after=60") as session:
        assert isinstance(session.cache, SQLiteBackend)
        assert session.cache.db_path == db
        await session.get(origin("/json"))
        hit = await session.get(origin("/json"))
        assert hit.from_cache
        assert hit.expires is not None
    assert db.exists()
    assert origin.hits["/json"] == 1


async def test_200_concurrent_requests_through_one_session(origin, tmp_path):
    async with CachedSession(cache=SQLiteBackend(str(tmp_path / "load.sqlite"))) as session:
        urls = [origin(f"/json?n={i % 50}") for i in range(200)]
        first = await asyncio.gather(*(session.get(u) for u in urls))
        bodies = await asyncio.gather(*(r.json() for r in first))
        assert all(b["query"] == {"n": str(i % 50)} for i, b in enumerate(bodies))
        second = await asyncio.gather(*(session.get(u) for u in urls))
        assert all(r.from_cache for r in second)
        again = await asyncio.gather(*(r.json() for r in second))
        assert again == bodies
        assert session.cache.stats.errors == 0
    assert origin.hits["/json"] == 50  # coalesced: one request per distinct URL


async def test_two_sessions_share_one_backend(origin, tmp_path):
    backend = SQLiteBackend(str(tmp_path / "shared.sqlite"), autoclose=False)
    async with CachedSession(cache=backend) as a, CachedSession(cache=backend) as b:
        urls = [origin(f"/json?n={i}") for i in range(40)]
        await asyncio.gather(*(a.get(u) for u in urls[:20]), *(b.get(u) for u in urls[20:]))
        hits = await asyncio.gather(*(b.get(u) for u in urls[:20]), *(a.get(u) for u in urls[20:]))
        assert all(r.from_cache for r in hits)
        assert [(await r.json())["query"]["n"] for r in hits] == [str(i) for i in range(40)]
    assert backend.stats.errors == 0
    await backend.close()


WORKER = textwrap.dedent(
    """
    import asyncio, sys
    from acc.backends.sqlite import SQLiteBackend
    from acc.sessions.aiohttp import CachedSession

    async def main(db, base, start):
        async with CachedSession(cache=SQLiteBackend(db)) as session:
            for i in range(start, start + 60):
                response = await session.get(f"{base}/json?n={i}")
                body = await response.json()
                assert body["query"] == {"n": str(i)}, body
            assert session.cache.stats.errors == 0, session.cache.stats

    asyncio.run(main(sys.argv[1], sys.argv[2], int(sys.argv[3])))
    """
)


async def test_two_processes_write_one_file(origin, tmp_path: Path):
    db = str(tmp_path / "procs.sqlite")
    script = tmp_path / "worker.py"
    script.write_text(WORKER)
    base = str(origin.url)
    procs = [
        await asyncio.create_subprocess_exec(
            sys.executable, str(script), db, base, str(start), stderr=asyncio.subprocess.PIPE
        )
        for start in (0, 30)  # overlapping ranges: both processes write n=30..59
    ]
    results = await asyncio.wait_for(asyncio.gather(*(p.communicate() for p in procs)), 60)
    for proc, (_out, err) in zip(procs, results, strict=True):
        assert proc.returncode == 0, err.decode()
    backend = SQLiteBackend(db)
    try:
        assert await backend.responses.size() == 90
        async with CachedSession(cache=backend) as session:
            for i in range(90):
                hit = await session.get(origin(f"/json?n={i}"))
                assert hit.from_cache, i
    finally:
        await backend.close()
