"""The workloads: each opens a session of one subject, primes it, and times requests.

Every workload returns a :class:`Measurement`. Latency is the time of one request,
``async with session.get(url) as r: await r.read()``; ops/s is requests over the wall
time of the timed part. Hit workloads ask the origin how many requests it served
before and after the timed part, and fail if a cache let one through.
"""

from __future__ import annotations

import asyncio
import gc
import random
import resource
import statistics
import time
import tracemalloc
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any

import attrs
from aiohttp import ClientSession

from acc.core import CacheBackend
from benchmarks.origin import origin_served
from benchmarks.subjects import UNCACHED, open_session, preload

__all__ = ["FULL", "SHORT", "WORKLOADS", "Measurement", "Sizes", "run_workload"]


@attrs.frozen
class Sizes:
    """How much each workload does."""

    sequential: int
    keys: int
    random_hits: int
    concurrent_total: int
    concurrent_keys: int
    concurrency: int
    misses: int
    big_hits: int
    big_size: int
    cold_entries: int
    warm_hits: int


FULL = Sizes(
    sequential=5000,
    keys=2000,
    random_hits=4000,
    concurrent_total=5000,
    concurrent_keys=200,
    concurrency=50,
    misses=1000,
    big_hits=50,
    big_size=5 * 1024 * 1024,
    cold_entries=20_000,
    warm_hits=500,
)
SHORT = Sizes(
    sequential=20,
    keys=10,
    random_hits=20,
    concurrent_total=30,
    concurrent_keys=5,
    concurrency=5,
    misses=10,
    big_hits=2,
    big_size=256 * 1024,
    cold_entries=30,
    warm_hits=10,
)


@attrs.frozen
class Measurement:
    """What one run of one workload on one subject measured."""

    ops: int
    seconds: float
    latencies: Sequence[float]
    origin_requests: int
    extra: dict[str, float] = attrs.field(factory=dict)

    def summary(self) -> dict[str, Any]:
        """The figures reported: ops/s, p50 and p99 in microseconds, and the extras."""
        ordered = sorted(self.latencies)
        return {
            "ops": self.ops,
            "seconds": self.seconds,
            "ops_per_s": self.ops / self.seconds if self.seconds else 0.0,
            "p50_us": _percentile(ordered, 50) * 1e6,
            "p99_us": _percentile(ordered, 99) * 1e6,
            "origin_requests": self.origin_requests,
            **self.extra,
        }


def _percentile(ordered: Sequence[float], pct: float) -> float:
    if not ordered:
        return 0.0
    index = min(len(ordered) - 1, max(0, round(pct / 100 * len(ordered) + 0.5) - 1))
    return ordered[index]


def peak_rss_mb() -> float:
    """The peak resident set size of this process so far, in MiB (Linux: KiB units)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


async def _get(session: Any, url: str) -> bytes:
    async with session.get(url) as response:
        body: bytes = await response.read()
        if response.status != 200:
            raise RuntimeError(f"{url}: status {response.status}")
        return body


async def _settle(session: Any) -> None:
    """Wait until an acc cache has written what it queued behind its responses.

    acc stores a miss after handing the response back (its ``write_behind`` queue), and
    serves a key whose write is still queued from that queue. A timed part that starts
    right after priming could then measure hits from the queue instead of from the
    backend (a run of hits that never suspends never lets the queue's worker run), so
    every workload lets the writes land first. The other clients write inline.
    """
    cache = getattr(session, "cache", None)
    if cache is None:  # the httpx adapter: the client holds the cache
        cache = getattr(getattr(session, "client", None), "cache", None)
    flush = getattr(cache, "flush", None) if isinstance(cache, CacheBackend) else None
    if flush is not None:  # (an acc older than write-behind has none)
        await flush()


async def _timed(session: Any, urls: Sequence[str]) -> tuple[float, list[float]]:
    latencies = []
    clock = time.perf_counter
    started = clock()
    for url in urls:
        before = clock()
        async with session.get(url) as response:
            await response.read()
        latencies.append(clock() - before)
    return clock() - started, latencies


async def _timed_concurrently(
    session: Any, urls: Sequence[str], concurrency: int
) -> tuple[float, list[float]]:
    latencies: list[float] = []
    pending = iter(urls)
    clock = time.perf_counter

    async def worker() -> None:
        for url in pending:
            before = clock()
            async with session.get(url) as response:
                await response.read()
            latencies.append(clock() - before)

    started = clock()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return clock() - started, latencies


async def _prime(session: Any, urls: Sequence[str], concurrency: int = 20) -> None:
    pending = iter(urls)

    async def worker() -> None:
        for url in pending:
            await _get(session, url)

    await asyncio.gather(*(worker() for _ in range(concurrency)))


class Context:
    """What a workload needs: the subject, the origin, the sizes, a place for files."""

    def __init__(self, client: str, backend: str, origin: str, sizes: Sizes, workdir: Path) -> None:
        self.client = client
        self.backend = backend
        self.origin = origin
        self.sizes = sizes
        self.workdir = workdir
        self.rng = random.Random(5)

    def json_urls(self, count: int, prefix: str) -> list[str]:
        return [f"{self.origin}/json/{prefix}-{i}" for i in range(count)]

    async def served(self) -> int:
        async with ClientSession() as plain:
            return await origin_served(plain, self.origin)

    async def checked(self, run: Callable[[], Awaitable[tuple[float, list[float]]]]) -> Any:
        """Run the timed part; for a cache, fail if the origin served any of it."""
        before = await self.served()
        seconds, latencies = await run()
        through = await self.served() - before
        if self.client not in UNCACHED and through:
            raise AssertionError(
                f"{self.client}/{self.backend}: the origin served {through} requests "
                "during a hit workload"
            )
        return seconds, latencies, through


async def sequential_hits(ctx: Context) -> Measurement:
    """Sequential hits on one URL."""
    url = f"{ctx.origin}/json/one"
    async with open_session(ctx.client, ctx.backend, ctx.workdir) as session:
        await _get(session, url)
        await _settle(session)
        urls = [url] * ctx.sizes.sequential
        seconds, latencies, through = await ctx.checked(lambda: _timed(session, urls))
    return Measurement(len(urls), seconds, latencies, through)


async def random_hits(ctx: Context) -> Measurement:
    """Hits over many keys, in random order."""
    keys = ctx.json_urls(ctx.sizes.keys, "random")
    async with open_session(ctx.client, ctx.backend, ctx.workdir) as session:
        await _prime(session, keys)
        await _settle(session)
        urls = [ctx.rng.choice(keys) for _ in range(ctx.sizes.random_hits)]
        seconds, latencies, through = await ctx.checked(lambda: _timed(session, urls))
    return Measurement(len(urls), seconds, latencies, through)


async def concurrent_hits(ctx: Context) -> Measurement:
    """Hits over a few hundred keys from many concurrent tasks."""
    sizes = ctx.sizes
    keys = ctx.json_urls(sizes.concurrent_keys, "concurrent")
    async with open_session(ctx.client, ctx.backend, ctx.workdir) as session:
        await _prime(session, keys)
        await _settle(session)
        urls = [ctx.rng.choice(keys) for _ in range(sizes.concurrent_total)]
        seconds, latencies, through = await ctx.checked(
            lambda: _timed_concurrently(session, urls, sizes.concurrency)
        )
    return Measurement(len(urls), seconds, latencies, through)


async def stored_misses(ctx: Context) -> Measurement:
    """Misses that the cache stores (for the plain clients: the same requests)."""
    urls = ctx.json_urls(ctx.sizes.misses, f"miss-{time.time_ns()}")
    async with open_session(ctx.client, ctx.backend, ctx.workdir) as session:
        await _get(session, f"{ctx.origin}/json/warm-up")  # open the connection first
        before = await ctx.served()
        seconds, latencies = await _timed(session, urls)
        landed = time.perf_counter()
        await _settle(session)  # the writes still queued count too: every miss stored
        seconds += time.perf_counter() - landed
        through = await ctx.served() - before
    if through != len(urls):
        raise AssertionError(f"{len(urls)} misses reached the origin {through} times")
    return Measurement(len(urls), seconds, latencies, through)


async def large_hits(ctx: Context) -> Measurement:
    """Hits of a large body; also the Python memory one hit allocates at its peak."""
    url = f"{ctx.origin}/big/one?size={ctx.sizes.big_size}"
    async with open_session(ctx.client, ctx.backend, ctx.workdir) as session:
        body = await _get(session, url)
        assert len(body) == ctx.sizes.big_size
        await _settle(session)
        urls = [url] * ctx.sizes.big_hits
        seconds, latencies, through = await ctx.checked(lambda: _timed(session, urls))
        del body
        gc.collect()
        tracemalloc.start()
        try:
            await _get(session, url)
            _current, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
    extra = {"hit_peak_alloc_x_body": peak / ctx.sizes.big_size}
    return Measurement(len(urls), seconds, latencies, through, extra)


async def prepare_cold_start(ctx: Context) -> Measurement:
    """Fill a persistent cache with many entries (run before :func:`cold_start`)."""
    keys = ctx.json_urls(ctx.sizes.cold_entries, "cold")
    started = time.perf_counter()
    async with open_session(ctx.client, ctx.backend, ctx.workdir, name="cold") as session:
        await _prime(session, keys, concurrency=50)
        await _settle(session)
    return Measurement(len(keys), time.perf_counter() - started, [], 0)


async def _open_and_hit(ctx: Context, url: str) -> float:
    """Open the filled cache, serve one hit and close: the seconds until the hit was read."""
    clock = time.perf_counter
    started = clock()
    async with open_session(
        ctx.client, ctx.backend, ctx.workdir, fresh=False, name="cold"
    ) as session:
        async with session.get(url) as response:
            await response.read()
        return clock() - started


async def cold_start(ctx: Context) -> Measurement:
    """Open a cache holding many entries and serve the first hit, twice; then warm hits.

    The first opening is in a process that has imported everything but run nothing
    (``cold_process_first_us``); the second, in the same process, opens the cache anew
    (``first_hit_us``: what opening a cache costs once the code is warm). Warm hits on
    that second session give ``warm_p50_us``.
    """
    keys = ctx.json_urls(ctx.sizes.cold_entries, "cold")
    before = await ctx.served()
    preload(ctx.client, ctx.backend)
    gc.collect()
    cold_process = await _open_and_hit(ctx, ctx.rng.choice(keys))
    gc.collect()
    clock = time.perf_counter
    started = clock()
    async with open_session(
        ctx.client, ctx.backend, ctx.workdir, fresh=False, name="cold"
    ) as session:
        async with session.get(ctx.rng.choice(keys)) as response:
            await response.read()
        first = clock() - started
        warm_urls = [ctx.rng.choice(keys) for _ in range(ctx.sizes.warm_hits)]
        _seconds, warm = await _timed(session, warm_urls)
    through = await ctx.served() - before
    if ctx.client not in UNCACHED and through:
        raise AssertionError(f"{ctx.client}/{ctx.backend}: {through} cold-start hits missed")
    warm_p50 = statistics.median(warm)
    extra = {
        "cold_process_first_us": cold_process * 1e6,
        "first_hit_us": first * 1e6,
        "warm_p50_us": warm_p50 * 1e6,
        "first_over_warm": first / warm_p50,
    }
    return Measurement(1, first, [first], through, extra)


WORKLOADS: dict[str, Callable[[Context], Awaitable[Measurement]]] = {
    "sequential_hits": sequential_hits,
    "random_hits": random_hits,
    "concurrent_hits": concurrent_hits,
    "stored_misses": stored_misses,
    "large_hits": large_hits,
    "cold_start": cold_start,
}
"""The workloads, in report order."""

HIT_WORKLOADS = frozenset(WORKLOADS) - {"stored_misses"}
PREPARE = {"cold_start": prepare_cold_start}
"""Steps run once per subject, in their own process, before a workload's rounds."""


async def run_workload(
    name: str, client: str, backend: str, origin: str, sizes: Sizes, workdir: Path
) -> dict[str, Any]:
    """Run workload (or preparation step) ``name`` and return its summary."""
    workload = PREPARE[name.removeprefix("prepare:")] if name.startswith("prepare:") else None
    context = Context(client, backend, origin, sizes, workdir)
    measurement = await (workload or WORKLOADS[name])(context)
    summary = measurement.summary()
    summary["peak_rss_mb"] = peak_rss_mb()
    return summary
