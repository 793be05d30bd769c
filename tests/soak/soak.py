"""The soak run: many requests through one cache, every body checked. Prints JSON.

    python soak.py BACKEND REQUESTS URLS CONCURRENCY [--redis URL] [--seed N]

One process runs an origin (aiohttp, on 127.0.0.1) and a ``CachedSession`` over a
``BACKEND`` cache (``memory``, ``sqlite`` or ``redis``) with ``cache_control=True`` on a
clock the run moves. Three users (each their own ``Authorization``) request ``URLS``
resources, ``CONCURRENCY`` requests in flight, in phases:

* before each phase but the first the clock moves past every entry's ``max-age``, so
  every stored entry is stale: its next request revalidates it (``If-None-Match``), and
  the origin answers ``304`` unless it changed the resource since (a tenth of them, each
  phase), when it answers ``200`` with the new body;
* within a phase, requests are drawn at random (seeded), so they mix first requests
  (misses), repeats (hits, coalesced while in flight), revalidations and expiries.

The origin changes resources only between phases, so every response of a phase, hit or
not, must carry exactly the body the origin serves that user for that resource now:
another version, resource or user's body is a wrong body. The figures: requests,
errors (exceptions), wrong bodies, hits, misses, 304 revalidations, expiries (a stale
entry answered with a new body), latency p50/p99 (ms), the peak RSS of the process
(client, cache and origin; ``ru_maxrss``) and the wall time.
"""

from __future__ import annotations

import asyncio
import json
import random
import resource
import sys
import tempfile
import time
import uuid
from collections import Counter
from datetime import datetime, timedelta, timezone
from typing import Any

import aiohttp
from aiohttp import web

USERS = ("alice", "bob", "carol")
MAX_AGE = 60
PHASES = 5


class Clock:
    def __init__(self) -> None:
        self.now = datetime.now(timezone.utc)

    def __call__(self) -> datetime:
        return self.now


class Origin:
    def __init__(self, urls: int) -> None:
        self.version = [1] * urls
        self.answered: Counter[int | str] = Counter()

    def body(self, n: int, user: str) -> bytes:
        # Varying sizes, from a few bytes to a few KiB, all different per user and version.
        pad = "x" * ((n * 37) % 3000)
        return f"{n}:{self.version[n]}:{user}:{pad}".encode()

    def app(self) -> web.Application:
        async def handler(request: web.Request) -> web.Response:
            n = int(request.match_info["n"])
            user = request.headers.get("Authorization", "").removeprefix("Bearer ")
            tag = f'"{n}-{self.version[n]}-{user}"'
            headers = {"ETag": tag, "Cache-Control": f"max-age={MAX_AGE}"}
            asked = request.headers.get("If-None-Match")
            if asked == tag:
                self.answered[304] += 1
                return web.Response(status=304, headers=headers)
            self.answered[200] += 1
            if asked is not None:
                self.answered["expired"] += 1  # a stale entry, and the resource changed
            return web.Response(body=self.body(n, user), headers=headers)

        app = web.Application()
        app.router.add_get("/r/{n}", handler)
        return app


def _backend(kind: str, folder: str, redis_url: str | None, clock: Clock) -> Any:
    options: dict[str, Any] = {"cache_control": True, "clock": clock}
    if kind == "memory":
        from acc.core import CacheBackend

        return CacheBackend(**options)
    if kind == "sqlite":
        from acc.backends.sqlite import SQLiteBackend

        return SQLiteBackend(f"{folder}/soak.sqlite", **options)
    from acc.backends.redis import RedisBackend

    return RedisBackend(f"soak-{uuid.uuid4().hex[:8]}", url=redis_url, **options)


def _percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))] if ordered else 0.0


async def soak(
    kind: str, requests: int, urls: int, concurrency: int, *, redis_url: str | None, seed: int
) -> dict[str, Any]:
    from acc.sessions.aiohttp import CachedSession

    rng = random.Random(seed)
    origin = Origin(urls)
    runner = web.AppRunner(origin.app())
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    base = f"http://127.0.0.1:{runner.addresses[0][1]}"
    clock = Clock()
    errors: list[str] = []
    wrong = 0
    latencies: list[float] = []
    started = time.monotonic()
    with tempfile.TemporaryDirectory() as folder:
        backend = _backend(kind, folder, redis_url, clock)
        connector = aiohttp.TCPConnector(limit=concurrency)
        async with CachedSession(cache=backend, connector=connector) as session:
            per_phase = [requests // PHASES] * PHASES
            per_phase[-1] += requests - sum(per_phase)
            for phase, count in enumerate(per_phase):
                if phase:
                    clock.now += timedelta(seconds=MAX_AGE + 1)  # every entry is stale now
                    for n in rng.sample(range(urls), max(1, urls // 10)):
                        origin.version[n] += 1
                plan = [(rng.randrange(urls), rng.choice(USERS)) for _ in range(count)]
                pending = iter(plan)

                async def worker(pending: Any = pending) -> None:
                    nonlocal wrong
                    for n, user in pending:
                        headers = {"Authorization": f"Bearer {user}"}
                        t0 = time.monotonic()
                        try:
                            async with session.get(f"{base}/r/{n}", headers=headers) as response:
                                body = await response.read()
                                status = response.status
                        except Exception as exc:  # counted: the soak asserts there are none
                            errors.append(repr(exc))
                            continue
                        latencies.append(time.monotonic() - t0)
                        if status != 200 or body != origin.body(n, user):
                            wrong += 1

                await asyncio.gather(*(worker() for _ in range(concurrency)))
            stats = backend.stats.as_dict()
            if kind == "redis":
                await backend.clear()
    await runner.cleanup()
    return {
        "backend": kind,
        "requests": len(latencies) + len(errors),
        "urls": urls,
        "users": len(USERS),
        "concurrency": concurrency,
        "errors": len(errors),
        "error_samples": errors[:5],
        "wrong_bodies": wrong,
        "hits": stats["hits"],
        "misses": stats["misses"],
        "revalidations_304": origin.answered[304],
        "expiries": origin.answered["expired"],
        "origin_200": origin.answered[200],
        "storage_errors": stats["errors"],
        "p50_ms": round(_percentile(latencies, 0.50) * 1000, 2),
        "p99_ms": round(_percentile(latencies, 0.99) * 1000, 2),
        "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "seconds": round(time.monotonic() - started, 1),
    }


def main() -> None:
    kind, requests, urls, concurrency = sys.argv[1], *map(int, sys.argv[2:5])
    redis_url = sys.argv[sys.argv.index("--redis") + 1] if "--redis" in sys.argv else None
    seed = int(sys.argv[sys.argv.index("--seed") + 1]) if "--seed" in sys.argv else 12
    result = asyncio.run(soak(kind, requests, urls, concurrency, redis_url=redis_url, seed=seed))
    print(json.dumps(result))


if __name__ == "__main__":
    main()
