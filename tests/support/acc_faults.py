"""The fault-test harness (``tests/faults``): requests while storage is made to fail.

Each fault test builds a backend whose own timeouts are long (30 s: a socket timeout, a
busy timeout, a server selection timeout), so that only the storage budget can keep a
request from waiting on broken storage, and drives it with :class:`Harness`:

* every request goes through :meth:`~acc.core.CacheBackend.fetch` to the real origin
  (``/t/<n>/json``), and its body is checked against what the origin serves;
* every request must finish (``HANG`` seconds would be a hang), and its time beyond the
  origin's own must stay within the budget plus a generous margin (``MARGIN``: a loaded
  2-core machine must never fail it; without the budget a request would wait 30 s);
* an entry a request acknowledged (``result.stored``) is remembered, and
  :meth:`Harness.verify` reads every one back, decoded and checked, after the fault;
* :meth:`Harness.until_recovered` waits (polling, generously) until the cache stores and
  serves again: after the breaker's cool-down a probe finds storage working.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
import attrs

from acc.core import CacheBackend, CachedResponse, CacheRequest

BUDGET = 0.25
"""The storage budget of every backend here (seconds)."""
MARGIN = 3.0
"""Seconds a request may take beyond the budget and the origin's own time (scheduling)."""
HANG = 60.0
"""Seconds after which a request is taken to hang."""
SLOW_STORAGE = 30.0
"""The backends' own timeouts: what a request would wait without the budget."""
BOUNDS: dict[str, Any] = {
    "storage_budget": BUDGET,
    "breaker_threshold": 3,
    "breaker_cooldown": 0.5,
    "expire_after": 3600,
    "write_behind": False,
}
"""The bounds every backend of the fault tests is built with.

Writes are inline: an acknowledged entry (``result.stored``) is then one written, which
:meth:`Harness.verify` checks (a queued entry is acknowledged before it is written, and a
store failing meanwhile loses it, as documented).
"""


@attrs.define
class Record:
    url: str
    from_cache: bool
    stored: bool
    elapsed: float
    origin_time: float


class Harness:
    """Requests through one backend, each checked (see the module docstring)."""

    def __init__(self, origin: Any, backend: CacheBackend, http: aiohttp.ClientSession) -> None:
        self.origin = origin
        self.backend = backend
        self.http = http
        self.acknowledged: dict[str, bytes] = {}
        self.records: list[Record] = []
        self._progress = asyncio.Event()  # set whenever a request finishes

    @staticmethod
    def expected(n: int) -> bytes:
        return json.dumps({"tenant": str(n)}).encode()

    async def fetch(self, n: int) -> Record:
        url = self.origin(f"/t/{n}/json")
        origin_time = 0.0
        loop = asyncio.get_running_loop()

        async def send(request: CacheRequest) -> CachedResponse:
            nonlocal origin_time
            started = loop.time()
            async with self.http.get(request.url) as response:
                body = await response.read()
                headers = tuple(
                    (k, v) for k, v in response.headers.items() if k.lower() != "content-encoding"
                )
                origin_time += loop.time() - started
                return CachedResponse(
                    response.status,
                    response.reason or "",
                    request.url,
                    "GET",
                    headers=headers,
                    body=body,
                )

        started = loop.time()
        result = await asyncio.wait_for(self.backend.fetch(CacheRequest("GET", url), send), HANG)
        elapsed = loop.time() - started
        assert result.response.status == 200
        assert result.response.body == self.expected(n), f"{url}: wrong body"
        assert elapsed - origin_time <= BUDGET + MARGIN, (
            f"{url} waited {elapsed - origin_time:.2f}s beyond the origin's {origin_time:.2f}s"
        )
        if result.stored:
            self.acknowledged[url] = self.expected(n)
        record = Record(url, result.from_cache, result.stored, elapsed, origin_time)
        self.records.append(record)
        self._progress.set()
        return record

    async def load(self, numbers: range, concurrency: int = 8) -> list[Record]:
        """Fetch ``numbers`` with ``concurrency`` requests in flight (distinct URLs)."""
        pending = iter(numbers)
        done: list[Record] = []

        async def worker() -> None:
            for n in pending:
                done.append(await self.fetch(n))

        await asyncio.gather(*(worker() for _ in range(concurrency)))
        return done

    async def warm(self, numbers: range) -> None:
        """Store ``numbers`` and check they are served from the cache (healthy storage).

        The stores are opened first, outside any budget: opening some (DynamoDB checks
        or creates its table) takes longer than a request's storage budget.
        """
        await self.backend.has_url("http://warm-up.invalid/")
        for n in numbers:
            assert (await self.fetch(n)).stored, f"{n} was not stored while storage was healthy"
        for n in numbers:
            assert (await self.fetch(n)).from_cache

    async def during(
        self,
        inject: Callable[[], Awaitable[None] | None],
        first: int,
        *,
        before: int = 5,
        after: int = 40,
        concurrency: int = 8,
    ) -> list[Record]:
        """Inject a fault in the middle of a run, with requests in flight.

        ``concurrency`` workers fetch new URLs (``first``, ``first + 1``, ...) without a
        pause; once ``before`` requests finished, ``inject()`` runs (and is awaited if it
        returns an awaitable) while the others are in flight; the run stops once
        ``after`` more requests finished after it. Returns the records of the requests
        that finished after the fault was in place.
        """
        numbers = iter(range(first, first + 1_000_000))
        injected_at: list[int] = []

        def finished() -> int:
            return len(self.records) - started

        async def worker() -> None:
            while not injected_at or finished() - injected_at[0] < after:
                await self.fetch(next(numbers))

        started = len(self.records)
        load = asyncio.gather(*(worker() for _ in range(concurrency)))
        try:
            while finished() < before:
                self._progress.clear()
                await asyncio.wait_for(self._progress.wait(), HANG)
            outcome = inject()
            if outcome is not None:
                await outcome
            injected_at.append(finished())
            await asyncio.wait_for(load, HANG * 2)
        except BaseException:
            load.cancel()
            raise
        return self.records[started + injected_at[0] :]

    async def until_recovered(self, first: int = 10_000) -> None:
        """Wait until the cache stores a new response and serves it again."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + HANG
        n = first
        while loop.time() < deadline:
            if (await self.fetch(n)).stored and (await self.fetch(n)).from_cache:
                return
            n += 1
            await asyncio.sleep(0.1)
        raise AssertionError(f"the cache did not recover within {HANG}s: {self.backend.stats}")

    async def verify(self, urls: dict[str, bytes] | None = None) -> None:
        """Every acknowledged entry (or those given) reads back whole and right."""
        for url, body in (urls if urls is not None else self.acknowledged).items():
            entry = await self.backend.read_entry(self.backend.url_key(url))
            assert entry is not None, f"the acknowledged entry of {url} was lost"
            assert entry.body == body, f"the entry of {url} is corrupted"
