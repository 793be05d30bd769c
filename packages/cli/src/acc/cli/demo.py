"""The acc demo: a slow, rate-limited JSON API, fetched twice through a cached session.

``acc demo`` runs it, and so does ``hatch run demo`` from the repository root (through
``demo/demo.py``). It needs no server and no network: it starts its own origin on
127.0.0.1, caches into an SQLite file in a temporary folder (or the path given), and
prints what happened. The SQLite backend is found by its URL scheme, like every backend
the ``acc`` command uses.
"""

from __future__ import annotations

import asyncio
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

from aiohttp import web

from acc.core import CacheBackend
from acc.sessions.aiohttp import CachedSession

__all__ = ["main", "run"]

LATENCY = 0.25  # seconds the "API" takes to answer
RATE_LIMIT = 10  # requests per second before it answers 429
ITEMS = ("alpha", "bravo", "charlie", "delta", "echo", "foxtrot")


def make_api(seen: Counter[str]) -> web.Application:
    """A JSON API that is slow, rate-limited, and supports ETag revalidation."""
    window: list[float] = []

    async def item(request: web.Request) -> web.Response:
        now = time.monotonic()
        window[:] = [t for t in window if now - t < 1.0]
        if len(window) >= RATE_LIMIT:
            return web.json_response({"error": "rate limited"}, status=429)
        window.append(now)
        name = request.match_info["name"]
        seen[name] += 1
        etag = f'"{name}-v1"'
        if request.headers.get("If-None-Match") == etag:
            return web.Response(status=304, headers={"ETag": etag})
        await asyncio.sleep(LATENCY)
        return web.json_response({"item": name, "size": len(name) * 100}, headers={"ETag": etag})

    app = web.Application()
    app.router.add_get("/items/{name}", item)
    return app


async def main(db_path: Path) -> None:
    """Run the demo against a fresh origin, caching into ``db_path``."""
    seen: Counter[str] = Counter()
    runner = web.AppRunner(make_api(seen))
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    base = f"http://127.0.0.1:{port}"
    backend = CacheBackend.from_url(
        "sqlite:///" + db_path.absolute().as_posix(),  # noqa: ASYNC240  # no I/O: a path
        expire_after=60,
        urls_expire_after={"*/items/echo": 1},
    )
    cache_file = Path(getattr(backend, "db_path", db_path))
    try:
        async with CachedSession(cache=backend) as session:
            print(
                f"Fetching {len(ITEMS)} URLs twice from a slow API ({LATENCY * 1000:.0f} ms each)\n"
            )
            print(f"{'round':<6} {'url':<22} {'result':<7} {'time':>10}")
            timings: dict[str, list[float]] = {"miss": [], "hit": []}
            for round_number in (1, 2):
                for name in ITEMS:
                    started = time.perf_counter()
                    async with session.get(f"{base}/items/{name}") as response:
                        response.raise_for_status()
                        await response.json()
                    elapsed = time.perf_counter() - started
                    kind = "hit" if response.from_cache else "miss"
                    timings[kind].append(elapsed)
                    print(
                        f"{round_number:<6} /items/{name:<15} {kind:<7} {elapsed * 1000:>8.2f} ms"
                    )
            miss_avg = sum(timings["miss"]) / len(timings["miss"])
            hit_avg = sum(timings["hit"]) / len(timings["hit"])
            print(
                f"\naverage miss {miss_avg * 1000:.1f} ms, average hit {hit_avg * 1000:.3f} ms: "
                f"hits are {miss_avg / hit_avg:,.0f}x faster; "
                f"the API saw {sum(seen.values())} requests"
            )

            await backend.flush()  # misses are written behind their responses: land them
            size = await backend.responses.size()
            print(f"\ncache file: {cache_file}")
            print(f"entries:    {size}")
            files = [cache_file, *cache_file.parent.glob(cache_file.name + "-wal")]
            total = sum(f.stat().st_size for f in files if f.exists())
            print(f"on disk:    {total:,} bytes (database and write-ahead log)")

            print("\nRevalidation: refresh=True sends If-None-Match; the API answers 304")
            started = time.perf_counter()
            checked = await session.get(f"{base}/items/alpha", refresh=True)
            print(
                f"  /items/alpha -> status {checked.status}, from_cache={checked.from_cache}, "
                f"revalidated={checked.revalidated}, "
                f"{(time.perf_counter() - started) * 1000:.1f} ms (no body transferred)"
            )

            print("\nExpiry: /items/echo expires after 1 s (urls_expire_after)")
            await asyncio.sleep(1.1)
            expired = await session.get(f"{base}/items/echo")
            print(
                f"  /items/echo after 1.1 s -> from_cache={expired.from_cache}, "
                f"revalidated={expired.revalidated} (stale, revalidated with its ETag)"
            )
            await backend.flush()  # the last revalidation is written behind its response
            print(f"\nstats: {backend.stats.as_dict()}")
    finally:
        await runner.cleanup()


def run(path: str | None = None) -> None:
    """Run the demo, caching into ``path`` (default: a temporary folder, removed after)."""
    if path:
        asyncio.run(main(Path(path)))
    else:
        with tempfile.TemporaryDirectory(prefix="acc-demo-") as folder:
            asyncio.run(main(Path(folder) / "demo-cache.sqlite"))


if __name__ == "__main__":
    run(sys.argv[1] if len(sys.argv) > 1 else None)
