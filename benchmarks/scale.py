"""The scale workload: what hits, stores and maintenance cost as the cache grows.

For each backend and entry count it fills a cache, then measures, in this order: the
bytes stored (SQLite file + WAL, Redis ``INFO memory``, the memory backend's RSS), hits
through the aiohttp binding on keys drawn from the whole cache, stored misses through
the binding, ``delete_url()``, a full ``urls()`` iteration (time and peak Python memory),
and ``delete(expired=True)`` with 10 % of the entries expired.

Rules it keeps:

- Only public APIs: the entries are written with ``CacheBackend.write_entry`` under
  ``backend.url_key(url)``, built from a template that a real fetch through the binding
  stored (same codec, same headers), with each URL's own body, so a hit finds exactly
  what a fetch would have stored. Filling through HTTP would take hours at a million.
- URLs are realistic (two dozen hosts, nested paths, query strings). Every host resolves
  to the loopback origin (:class:`LoopbackResolver`), so a miss never leaves the machine.
- 90 % of the entries never expire; the last 10 % written expire a few seconds after
  they are written. Redis drops them by itself, as it would in production; SQLite keeps
  them until ``delete(expired=True)``, which runs once they have all expired. Hits use
  only the entries that never expire. Redis per-entry memory is read before the expiring
  part is written, so entries Redis already dropped do not skew it.
- Hits run against the origin's request counter: the run fails if one reached it.
"""

from __future__ import annotations

import asyncio
import gc
import json
import os
import random
import socket
import statistics
import sys
import time
import tracemalloc
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import attrs
from aiohttp import ClientSession, TCPConnector
from aiohttp.abc import AbstractResolver, ResolveResult

from benchmarks.origin import JSON_PAD, origin_served

__all__ = [
    "FULL_SCALE",
    "SCALE_BACKENDS",
    "SCALE_FIELDS",
    "SHORT_SCALE",
    "LoopbackResolver",
    "ScaleSizes",
    "run_scale",
    "scale_sizes",
    "url_for",
]

SCALE_BACKENDS = ("memory", "sqlite", "redis")
FULL_SCALE = (10_000, 100_000, 1_000_000)
SHORT_SCALE = (1_000, 5_000)
EXPIRED_SHARE = 0.1
EXPIRE_IN = 2.0
"""Seconds after its write an expiring entry expires."""

SCALE_FIELDS = (
    "backend",
    "entries",
    "fill_s",
    "fill_per_s",
    "entry_bytes",
    "file_bytes_per_entry",
    "disk_bytes_per_entry",
    "disk_over_entry_bytes",
    "wal_mib_after_fill",
    "redis_bytes_per_entry",
    "rss_bytes_per_entry",
    "hit_p50_us",
    "hit_p99_us",
    "miss_store_p50_us",
    "miss_store_p99_us",
    "delete_url_p50_ms",
    "urls_s",
    "urls_count",
    "urls_peak_mib",
    "delete_expired_ms",
    "expired_deleted",
    "wal_mib_after_expiry",
    "disk_mib_after_expiry",
    "run_s",
)
"""Every figure one scale run reports (``None`` where it does not apply to the backend)."""


@attrs.frozen
class ScaleSizes:
    """How much one scale run does besides filling."""

    hits: int
    rounds: int
    misses: int
    deletes: int
    chunk: int = 128


def scale_sizes(short: bool, rounds: int) -> ScaleSizes:
    """The sizes of a full run, or of a ``--short`` check."""
    if short:
        return ScaleSizes(hits=100, rounds=rounds, misses=20, deletes=5)
    return ScaleSizes(hits=2_000, rounds=rounds, misses=500, deletes=11)


# -- URLs -----------------------------------------------------------------------------------

_HOSTS = tuple(
    [f"api.shop-{n}.example" for n in range(12)]
    + [f"{sub}.media-{n}.example.org" for sub in ("cdn", "img") for n in range(4)]
    + ["auth.example.net", "search.example.com", "catalog.eu.example.com", "www.example.com"]
)
_PATHS = (
    "/api/v2/users/{i}/orders",
    "/api/v1/products/{i}",
    "/api/catalog/categories/{c}/items/{i}",
    "/api/v3/accounts/{i}/invoices/{c}",
    "/api/search/{i}",
    "/api/feeds/{c}/entries/{i}.json",
)
_QUERIES = (
    "",
    "?page={p}&per_page=50",
    "?q=term-{c}&sort=price&order=desc&lang=en-GB",
    "?fields=id,name,price,stock&include=images,variants&currency=EUR&page={p}",
    "?utm_source=newsletter&utm_medium=email&ref={c}",
)


def url_for(port: int, i: int) -> tuple[str, str, str]:
    """The ``i``-th URL of the cache: ``(url, Host header, path and query)``.

    A pure function of ``i`` (nothing is kept per entry), distinct for every ``i``.
    """
    mixed = (i * 2_654_435_761) & 0xFFFFFFFF
    host = _HOSTS[mixed % len(_HOSTS)]
    c, p = (mixed >> 8) % 97, (mixed >> 16) % 40 + 1
    path_qs = _PATHS[(mixed >> 4) % len(_PATHS)].format(i=i, c=c) + _QUERIES[
        (mixed >> 12) % len(_QUERIES)
    ].format(c=c, p=p)
    authority = f"{host}:{port}"
    return f"http://{authority}{path_qs}", authority, path_qs


class LoopbackResolver(AbstractResolver):
    """Resolves every host name to 127.0.0.1: the benchmark's hosts all are the origin."""

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        return [
            {
                "hostname": host,
                "host": "127.0.0.1",
                "port": port,
                "family": socket.AF_INET,
                "proto": 0,
                "flags": socket.AI_NUMERICHOST,
            }
        ]

    async def close(self) -> None:
        return None


# -- measuring ------------------------------------------------------------------------------


def _rss_bytes() -> int:
    """The current resident set size of this process (Linux), 0 where unknown."""
    try:
        pages = int(Path("/proc/self/statm").read_text().split()[1])
    except (OSError, ValueError, IndexError):
        return 0
    return pages * os.sysconf("SC_PAGE_SIZE")


def _file_size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0


def _percentile(ordered: list[float], pct: float) -> float:
    index = min(len(ordered) - 1, max(0, round(pct / 100 * len(ordered) + 0.5) - 1))
    return ordered[index]


def _remove_database(path: Path) -> None:
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)


def _redis_used_memory(url: str) -> int:
    import redis

    client = redis.Redis.from_url(url)
    try:
        return int(client.info("memory")["used_memory"])
    finally:
        client.close()


def _open_cache(backend: str, workdir: Path, entries: int, redis_url: str | None) -> Any:
    from acc.core import CacheBackend

    if backend == "memory":
        return CacheBackend()
    if backend == "sqlite":
        from acc.backends.sqlite import SQLiteBackend

        path = workdir / f"scale-{entries}.sqlite"
        _remove_database(path)
        return SQLiteBackend(path)
    if backend == "redis":
        from acc.backends.redis import RedisBackend

        if redis_url is None:
            raise ValueError("the redis scale run needs a dedicated server's URL")
        return RedisBackend("bench-scale", url=redis_url)
    raise ValueError(f"unknown backend {backend!r}")


class _Filler:
    """Writes entries built like the template, for URLs ``url_for(port, i)``."""

    def __init__(self, cache: Any, template: Any, port: int, chunk: int) -> None:
        self.cache = cache
        self.template = template
        self.port = port
        self.chunk = chunk
        headers = template.headers
        self._headers_before = tuple(h for h in headers if h[0].lower() != "content-length")
        self._request_headers = tuple(h for h in template.request_headers if h[0] != "Host")

    def entry(self, i: int, expires: datetime | None) -> tuple[str, Any]:
        url, authority, path_qs = url_for(self.port, i)
        body = json.dumps({"n": path_qs, "pad": JSON_PAD}).encode()
        entry = attrs.evolve(
            self.template,
            url=url,
            body=body,
            headers=(*self._headers_before, ("Content-Length", str(len(body)))),
            request_headers=(("Host", authority), *self._request_headers),
            created_at=datetime.now(timezone.utc),
            expires=expires,
        )
        return self.cache.url_key(url), entry

    async def fill(self, start: int, stop: int, expire_in: float | None) -> None:
        for first in range(start, stop, self.chunk):
            expires = (
                None
                if expire_in is None
                else datetime.now(timezone.utc) + timedelta(seconds=expire_in)
            )
            batch = [self.entry(i, expires) for i in range(first, min(stop, first + self.chunk))]
            done = await asyncio.gather(*(self.cache.write_entry(k, e) for k, e in batch))
            for (key, entry), ok in zip(batch, done, strict=True):
                if not ok:  # a write that ran out of time in a burst: once more, alone
                    await asyncio.sleep(0.05)
                    if not await self.cache.write_entry(key, entry):
                        raise RuntimeError(f"the fill could not write {entry.url}")


async def _get(session: Any, url: str) -> None:
    async with session.get(url) as response:
        await response.read()
        if response.status != 200:
            raise RuntimeError(f"{url}: status {response.status}")


async def _served(origin: str) -> int:
    async with ClientSession() as plain:
        return await origin_served(plain, origin)


async def _timed(session: Any, urls: list[str]) -> list[float]:
    clock = time.perf_counter
    latencies = []
    for url in urls:
        before = clock()
        async with session.get(url) as response:
            await response.read()
        latencies.append(clock() - before)
    return latencies


async def run_scale(
    backend: str,
    entries: int,
    origin: str,
    sizes: ScaleSizes,
    workdir: Path,
    redis_url: str | None = None,
) -> dict[str, Any]:
    """Fill ``backend`` with ``entries`` entries and measure it (see the module docstring)."""
    from acc.sessions.aiohttp import CachedSession

    run_started = time.perf_counter()
    port = int(origin.rsplit(":", 1)[1])
    rng = random.Random(17)
    result: dict[str, Any] = dict.fromkeys(SCALE_FIELDS)
    result.update(backend=backend, entries=entries)
    lasting = entries - int(entries * EXPIRED_SHARE)
    if redis_url is not None and backend == "redis":
        import redis

        redis.Redis.from_url(redis_url).flushall()
    cache = _open_cache(backend, workdir, entries, redis_url)
    connector = TCPConnector(resolver=LoopbackResolver())
    async with CachedSession(cache=cache, connector=connector) as session:
        # The template: what a real fetch through the binding stores.
        await _get(session, f"http://template.example:{port}/api/template")
        template = None
        async for stored in cache.entries():
            template = stored.entry
        if template is None:
            raise RuntimeError("the template fetch stored nothing")
        await cache.clear()
        filler = _Filler(cache, template, port, sizes.chunk)

        gc.collect()
        rss_before = _rss_bytes()
        redis_before = _redis_used_memory(redis_url) if backend == "redis" and redis_url else 0
        written_before = cache.stats.bytes_written
        started = time.perf_counter()
        await filler.fill(0, lasting, None)
        if backend == "redis" and redis_url:
            redis_after = _redis_used_memory(redis_url)
            result["redis_bytes_per_entry"] = (redis_after - redis_before) / lasting
        await filler.fill(lasting, entries, EXPIRE_IN)
        expired_by = time.time() + EXPIRE_IN
        result["fill_s"] = time.perf_counter() - started
        result["fill_per_s"] = entries / result["fill_s"]
        result["entry_bytes"] = (cache.stats.bytes_written - written_before) / entries
        if backend == "memory":
            gc.collect()
            result["rss_bytes_per_entry"] = (_rss_bytes() - rss_before) / entries
        path = workdir / f"scale-{entries}.sqlite"
        if backend == "sqlite":
            on_disk = _file_size(path) + _file_size(Path(f"{path}-wal"))
            result["file_bytes_per_entry"] = _file_size(path) / entries
            result["disk_bytes_per_entry"] = on_disk / entries
            result["disk_over_entry_bytes"] = on_disk / entries / result["entry_bytes"]
            result["wal_mib_after_fill"] = _file_size(Path(f"{path}-wal")) / 2**20

        # Hits on keys drawn from the whole cache (the entries that never expire).
        p50s, p99s = [], []
        for _round in range(sizes.rounds):
            urls = [url_for(port, rng.randrange(lasting))[0] for _ in range(sizes.hits)]
            before = await _served(origin)
            latencies = sorted(await _timed(session, urls))
            through = await _served(origin) - before
            if through:
                raise AssertionError(
                    f"scale {backend}/{entries}: {through} hits reached the origin"
                )
            p50s.append(_percentile(latencies, 50) * 1e6)
            p99s.append(_percentile(latencies, 99) * 1e6)
        result["hit_p50_us"] = statistics.median(p50s)
        result["hit_p99_us"] = statistics.median(p99s)

        # Stored misses: new URLs, fetched from the origin and stored.
        for host_index in range(len(_HOSTS)):  # open a connection to every host first
            await _get(session, f"http://{_HOSTS[host_index]}:{port}/api/warm-up")
        urls = [url_for(port, entries + 1 + n)[0] for n in range(sizes.misses)]
        before = await _served(origin)
        latencies = sorted(await _timed(session, urls))
        if (through := await _served(origin) - before) != len(urls):
            raise AssertionError(f"{len(urls)} stored misses reached the origin {through} times")
        result["miss_store_p50_us"] = _percentile(latencies, 50) * 1e6
        result["miss_store_p99_us"] = _percentile(latencies, 99) * 1e6

        # delete_url() of entries that exist.
        times = []
        for index in rng.sample(range(lasting), sizes.deletes):
            url = url_for(port, index)[0]
            before_delete = time.perf_counter()
            await cache.delete_url(url)
            times.append(time.perf_counter() - before_delete)
            if await cache.has_url(url):
                raise AssertionError(f"delete_url({url}) left the entry")
        result["delete_url_p50_ms"] = statistics.median(times) * 1e3

        # urls(): the whole iteration, then its peak Python memory on one more pass.
        seconds, count = [], 0
        for _round in range(sizes.rounds):
            before_urls = time.perf_counter()
            count = sum([1 async for _url in cache.urls()])
            seconds.append(time.perf_counter() - before_urls)
        result["urls_s"] = statistics.median(seconds)
        result["urls_count"] = count
        gc.collect()
        tracemalloc.start()
        try:
            async for _url in cache.urls():
                pass
            _current, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        result["urls_peak_mib"] = peak / 2**20

        # delete(expired=True) once the expiring tenth has expired (a single run: it
        # cannot be repeated without filling again).
        await asyncio.sleep(max(0.0, expired_by + 0.5 - time.time()))
        before_expiry = time.perf_counter()
        result["expired_deleted"] = await cache.delete(expired=True)
        result["delete_expired_ms"] = (time.perf_counter() - before_expiry) * 1e3
        if backend == "sqlite":
            wal = _file_size(Path(f"{path}-wal"))
            result["wal_mib_after_expiry"] = wal / 2**20
            result["disk_mib_after_expiry"] = (_file_size(path) + wal) / 2**20
    if backend == "sqlite":
        _remove_database(path)
    result["run_s"] = time.perf_counter() - run_started
    return result


def scale_arguments(
    backend: str, entries: int, origin: str, sizes: ScaleSizes, workdir: Path, redis_url: str | None
) -> str:
    """The JSON argument :func:`main` reads."""
    return json.dumps(
        {
            "backend": backend,
            "entries": entries,
            "origin": origin,
            "sizes": attrs.asdict(sizes),
            "workdir": str(workdir),
            "redis_url": redis_url,
        }
    )


def main(argv: list[str]) -> None:
    """One scale run in a fresh process (so RSS is its own); prints one JSON line."""
    arguments = json.loads(argv[0])
    figures = asyncio.run(
        run_scale(
            arguments["backend"],
            arguments["entries"],
            arguments["origin"],
            ScaleSizes(**arguments["sizes"]),
            Path(arguments["workdir"]),
            arguments["redis_url"],
        )
    )
    print(json.dumps(figures))


def iter_plan(sizes: tuple[int, ...], backends: tuple[str, ...]) -> Iterator[tuple[str, int]]:
    """``(backend, entries)`` in run order: every backend at one size, then the next size."""
    for entries in sizes:
        for backend in backends:
            yield backend, entries


if __name__ == "__main__":
    main(sys.argv[1:])
