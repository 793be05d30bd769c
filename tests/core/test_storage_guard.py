"""Waits on storage are bounded: the per-request budget and the circuit breaker (DESIGN §8).

Stores here never answer, or fail on demand; the tests count calls and outcomes, and
move the cache's clock for cool-downs. Nothing asserts on elapsed time: a request that
waited on a store that never answers simply would not finish, and ``asyncio.wait_for``
with a generous timeout turns that into a failure instead of a hang.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sys
from collections.abc import AsyncIterator, Awaitable
from datetime import datetime, timedelta, timezone

import pytest

from acc.core import BackendUnavailable, BaseCache, CacheBackend, CachedResponse, CacheRequest
from acc.core.storage.guard import CLOSED, HALF_OPEN, OPEN, Budget, StorageGuard, StorageTimeout

WAIT = 30.0  # seconds a test waits for something that takes milliseconds


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2030, 1, 1, tzinfo=timezone.utc)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


class ControlledStore(BaseCache):
    """A store whose operations hang, fail or work, as the test says; it counts calls."""

    def __init__(self) -> None:
        self.data: dict[str, bytes] = {}
        self.mode = "work"  # "work", "fail" or "hang"
        self.writes_work = False  # writes and deletes work whatever the mode
        self.reads_work = False  # reads work whatever the mode
        self.calls = 0
        self.reads = 0
        self.entered = asyncio.Event()
        self.release = asyncio.Event()

    async def _act(self, reading: bool = False) -> None:
        if reading and self.reads_work:
            return
        self.calls += 1
        if self.mode == "fail":
            raise ConnectionError("storage is down")
        if self.mode == "hang":
            self.entered.set()
            await self.release.wait()

    async def read(self, key: str) -> bytes | None:
        self.reads += 1
        await self._act(reading=True)
        return self.data.get(key)

    async def write(self, key: str, value: bytes, *, expires_at: float | None = None) -> None:
        if not self.writes_work:
            await self._act()
        self.data[key] = value

    async def delete(self, key: str) -> None:
        if not self.writes_work:
            await self._act()
        self.data.pop(key, None)

    async def keys(self) -> AsyncIterator[str]:
        await self._act()
        for key in list(self.data):
            yield key

    async def clear(self) -> None:
        await self._act()
        self.data.clear()


def backend(store: ControlledStore, **options) -> CacheBackend:
    # These tests are about a request's own budget over its read and its write: inline.
    options.setdefault("write_behind", False)
    return CacheBackend(responses=store, redirects=ControlledStore(), **options)


def breaker_open(cache: CacheBackend) -> bool:
    return cache.stats.breaker_open


async def origin_send(request: CacheRequest) -> CachedResponse:
    return CachedResponse(200, "OK", request.url, "GET", body=b"from the network")


async def fetch(cache: CacheBackend, url: str = "http://example.invalid/x"):
    return await asyncio.wait_for(cache.fetch(CacheRequest("GET", url), origin_send), WAIT)


# -- the budget --------------------------------------------------------------------------


async def test_a_store_that_never_answers_costs_a_request_at_most_its_budget():
    store = ControlledStore()
    store.mode = "hang"
    cache = backend(store, storage_budget=0.05, breaker_threshold=None)
    for _ in range(3):
        result = await fetch(cache)  # would never finish without the budget
        assert (result.response.body, result.from_cache, result.stored) == (
            b"from the network",
            False,
            False,
        )
    stats = cache.stats
    # Each request: its read ran out of budget; its write was not even started.
    assert stats.storage_timeouts == 3
    assert stats.errors == 3
    assert stats.storage_skipped == 3
    assert store.calls == 3


async def test_the_budget_counts_only_time_spent_waiting_on_storage():
    # A slow origin does not use up the budget: the write after it still happens.
    store = ControlledStore()
    cache = backend(store, storage_budget=0.5)
    gate = asyncio.Event()

    async def slow_send(request: CacheRequest) -> CachedResponse:
        await gate.wait()
        return await origin_send(request)

    task = asyncio.create_task(
        cache.fetch(CacheRequest("GET", "http://example.invalid/"), slow_send)
    )
    await asyncio.sleep(0.6)  # longer than the whole budget, spent at the origin
    gate.set()
    result = await asyncio.wait_for(task, WAIT)
    assert result.stored is True
    assert cache.stats.storage_timeouts == 0


async def test_a_write_that_hangs_is_cut_and_the_response_still_served():
    store = ControlledStore()
    cache = backend(store, storage_budget=0.05)
    original = store.write

    async def hang_write(key: str, value: bytes, *, expires_at: float | None = None) -> None:
        store.entered.set()
        await store.release.wait()
        await original(key, value, expires_at=expires_at)

    store.write = hang_write  # type: ignore[method-assign]
    result = await fetch(cache)
    assert (result.response.body, result.stored) == (b"from the network", False)
    assert cache.stats.storage_timeouts == 1


def test_budget_is_charged_only_while_timed():
    async def main() -> None:
        guard = StorageGuard(clock=lambda: 0.0)
        budget = Budget(10.0)
        assert await guard.timed(asyncio.sleep(0, result=7), budget) == 7
        assert 0 < budget.left <= 10.0  # type: ignore[operator]
        spent = Budget(0.0)
        with pytest.raises(StorageTimeout):
            await guard.timed(asyncio.sleep(0), spent)
        assert await guard.timed(asyncio.sleep(0, result=1), Budget(None)) == 1

    asyncio.run(main())


def test_in_process_stores_are_not_timed():
    assert CacheBackend(storage_budget=0.001).new_budget().left is None
    timed = CacheBackend(responses=ControlledStore(), storage_budget=0.25)
    assert timed.new_budget().left == 0.25
    assert CacheBackend(responses=ControlledStore(), storage_budget=None).new_budget().left is None


async def test_a_storage_timeout_raises_with_strict():
    store = ControlledStore()
    store.mode = "hang"
    cache = backend(store, storage_budget=0.05, strict=True)
    with pytest.raises(BackendUnavailable):
        await fetch(cache)


# -- the breaker --------------------------------------------------------------------------


async def test_the_breaker_opens_skips_storage_then_probes_and_closes(caplog):
    caplog.set_level(logging.WARNING, logger="acc")
    clock = Clock()
    store = ControlledStore()
    store.mode = "fail"
    cache = backend(store, breaker_threshold=3, breaker_cooldown=10, clock=clock)
    for _ in range(3):  # each: a failed read and a failed write
        await fetch(cache)
    assert breaker_open(cache)
    assert cache.read_guard.state == cache.write_guard.state == OPEN
    assert cache.stats.breaker_trips == 2  # reads and writes, each its own breaker
    calls = store.calls
    for _ in range(5):
        result = await fetch(cache)
        assert result.response.body == b"from the network"
    assert store.calls == calls  # storage was not touched while open
    assert cache.stats.storage_skipped == 10
    assert sum("skipping storage" in r.getMessage() for r in caplog.records) == 2

    clock.advance(10)  # the cool-down is over: one read and one write probe, and fail
    await fetch(cache)
    assert store.calls == calls + 2
    assert breaker_open(cache)
    await fetch(cache)
    assert store.calls == calls + 2  # open again, for another cool-down

    store.mode = "work"
    clock.advance(10)
    await fetch(cache)  # the probes succeed (a miss, then its write)
    assert not breaker_open(cache)
    assert cache.read_guard.state == cache.write_guard.state == CLOSED
    hit = await fetch(cache)
    assert hit.from_cache is True
    assert cache.stats.breaker_trips == 2  # re-opening after a failed probe is the same trip


async def test_a_store_that_cannot_write_still_serves_what_it_holds():
    # Reads work, writes fail (a lock another process holds, a full disk): the write
    # breaker opens; hits go on.
    store = ControlledStore()
    cache = backend(store, breaker_threshold=2)
    await fetch(cache)  # stored
    store.mode = "fail"
    store.reads_work = True
    for n in range(3):
        await fetch(cache, f"http://example.invalid/new{n}")
    assert cache.write_guard.state == OPEN
    assert cache.read_guard.state == CLOSED
    assert (await fetch(cache)).from_cache is True


async def test_only_one_request_probes_at_a_time():
    clock = Clock()
    store = ControlledStore()
    store.mode = "fail"
    cache = backend(
        store, breaker_threshold=1, breaker_cooldown=5, clock=clock, storage_budget=None
    )
    await fetch(cache)
    assert cache.read_guard.state == OPEN
    clock.advance(5)
    store.mode = "hang"
    store.writes_work = True
    probe = asyncio.create_task(
        cache.fetch(CacheRequest("GET", "http://example.invalid/p"), origin_send)
    )
    await asyncio.wait_for(store.entered.wait(), WAIT)
    assert cache.read_guard.state == HALF_OPEN
    reads = store.reads
    others = await asyncio.gather(*(fetch(cache, f"http://example.invalid/{n}") for n in range(3)))
    assert [r.response.body for r in others] == [b"from the network"] * 3
    assert store.reads == reads  # the others skipped reading while the probe ran
    store.mode = "work"
    store.release.set()
    await asyncio.wait_for(probe, WAIT)
    assert cache.read_guard.state == CLOSED


async def test_a_cancelled_probe_lets_the_next_request_probe():
    clock = Clock()
    store = ControlledStore()
    store.mode = "fail"
    cache = backend(
        store, breaker_threshold=1, breaker_cooldown=5, clock=clock, storage_budget=None
    )
    await fetch(cache)
    clock.advance(5)
    store.mode = "hang"
    probe = asyncio.create_task(
        cache.fetch(CacheRequest("GET", "http://example.invalid/p"), origin_send)
    )
    await asyncio.wait_for(store.entered.wait(), WAIT)
    probe.cancel()
    with pytest.raises(asyncio.CancelledError):
        await probe
    store.mode = "work"
    await fetch(cache)
    assert cache.read_guard.state == CLOSED


async def test_timeouts_open_the_breaker_too():
    store = ControlledStore()
    store.mode = "hang"
    cache = backend(store, storage_budget=0.02, breaker_threshold=2)
    for _ in range(6):
        await fetch(cache)
    # Two reads ran out of budget (their writes had none left); then, reads skipped,
    # two writes did; then nothing touched storage.
    assert cache.stats.storage_timeouts == 4
    assert cache.read_guard.state == cache.write_guard.state == OPEN
    assert store.calls == 4


async def test_strict_raises_while_the_breaker_is_open():
    store = ControlledStore()
    store.mode = "fail"
    cache = backend(store, breaker_threshold=1, strict=True)
    with pytest.raises(BackendUnavailable):
        await fetch(cache)
    with pytest.raises(BackendUnavailable, match="circuit breaker"):
        await fetch(cache)


def test_reset_keeps_the_breaker_state():
    cache = CacheBackend()
    cache.stats.breaker_open = True
    cache.stats.errors = 4
    cache.stats.reset()
    assert breaker_open(cache)
    assert cache.stats.errors == 0


def test_the_breaker_never_opens_without_a_threshold():
    guard = StorageGuard(threshold=None, clock=lambda: 0.0)
    for _ in range(100):
        guard.failed()
    assert guard.state == CLOSED
    assert guard.allow()


def test_an_answer_without_waiting_is_not_timed_and_a_wait_is_cut_cleanly():
    async def main() -> None:
        guard = StorageGuard(clock=lambda: 0.0)

        async def at_once() -> int:
            return 5

        budget = Budget(1.0)
        assert await guard.timed(at_once(), budget) == 5
        assert budget.left == 1.0  # the hit path pays no timer and no charge

        cleaned: list[bool] = []

        async def waits_forever() -> None:
            try:
                await asyncio.sleep(0)
                await asyncio.Event().wait()
            finally:
                cleaned.append(True)

        budget = Budget(0.05)
        with pytest.raises(StorageTimeout):
            await guard.timed(waits_forever(), budget)
        assert cleaned == [True]  # the cancellation reached the operation
        assert budget.left == 0.0

        async def waits_then_answers() -> str:
            await asyncio.sleep(0)
            await asyncio.sleep(0.01)
            return "done"

        budget = Budget(30.0)
        assert await guard.timed(waits_then_answers(), budget) == "done"
        assert 0 < budget.left < 30.0  # type: ignore[operator]

    asyncio.run(main())


class StubbornStore(ControlledStore):
    """A store whose driver does not end when cancelled: it waits on, until released."""

    async def read(self, key: str) -> bytes | None:
        self.reads += 1
        self.entered.set()
        while not self.release.is_set():
            try:
                await self.release.wait()
            except asyncio.CancelledError:
                continue  # swallowed: the driver goes on waiting for its server
        return None


async def test_a_store_that_ignores_cancellation_still_costs_at_most_the_budget():
    store = StubbornStore()
    assert store.cancels_promptly is False  # the default: timed in a task of its own
    cache = backend(store, storage_budget=0.05)
    result = await fetch(cache)  # would wait forever if the read ran in the request's task
    assert result.response.body == b"from the network"
    assert cache.stats.storage_timeouts == 1
    store.release.set()  # the read left behind ends now
    await asyncio.sleep(0)


def test_stores_that_cancel_promptly_are_timed_in_the_request_task():
    from acc.core import MemoryCache
    from acc.core.storage.near import NearCache

    assert MemoryCache.cancels_promptly is True
    assert CacheBackend()._isolated is False
    assert backend(ControlledStore())._isolated is True
    promptly = ControlledStore()
    promptly.cancels_promptly = True
    near = NearCache(MemoryCache())
    assert near.cancels_promptly is True
    assert CacheBackend(responses=promptly, redirects=near)._isolated is False


# -- one timer per loop (the watchdog behind StorageGuard.timed) ---------------------------


def _assert_not_cancelling() -> None:
    """The running task has no cancellation pending (none left behind by a timeout)."""
    task = asyncio.current_task()
    assert task is not None
    if sys.version_info >= (3, 11):  # Task.cancelling() is new in 3.11
        assert task.cancelling() == 0


async def _pending() -> None:
    await asyncio.sleep(0)
    await asyncio.Event().wait()


def test_a_shorter_budget_after_a_longer_one_is_still_cut_at_its_own_deadline():
    # The loop's one timer is armed at the earliest deadline it knows: a wait with less
    # time left than every wait before it arms it earlier.
    async def main() -> None:
        guard = StorageGuard(clock=lambda: 0.0)
        long_wait = asyncio.ensure_future(guard.timed(_pending(), Budget(3600.0)))
        await asyncio.sleep(0.01)
        with pytest.raises(StorageTimeout):
            # Far below an hour: the bound only keeps a broken re-arm from hanging.
            await asyncio.wait_for(guard.timed(_pending(), Budget(0.05)), 60)
        assert not long_wait.done()  # its own deadline is an hour away
        long_wait.cancel()
        with pytest.raises(asyncio.CancelledError):
            await long_wait

    asyncio.run(main())


def test_many_waits_each_end_by_their_own_deadline_or_answer():
    async def main() -> None:
        guard = StorageGuard(clock=lambda: 0.0)

        async def answers(value: int) -> int:
            await asyncio.sleep(0)
            await asyncio.sleep(0.01)
            return value

        waits: list[Awaitable[object]] = [
            guard.timed(_pending(), Budget(0.02 * (n + 1))) for n in range(5)
        ]
        waits += [guard.timed(answers(n), Budget(60.0)) for n in range(5)]
        results: list[object] = await asyncio.gather(*waits, return_exceptions=True)
        assert [type(r) for r in results[:5]] == [StorageTimeout] * 5
        assert results[5:] == [0, 1, 2, 3, 4]
        _assert_not_cancelling()

    asyncio.run(main())


def test_a_cancellation_from_outside_is_no_timeout():
    async def main() -> None:
        guard = StorageGuard(clock=lambda: 0.0)
        wait = asyncio.ensure_future(guard.timed(_pending(), Budget(60.0)))
        await asyncio.sleep(0.01)
        wait.cancel()
        with pytest.raises(asyncio.CancelledError):
            await wait

    asyncio.run(main())


def test_an_operation_that_answers_despite_the_timeout_leaves_its_task_uncancelled():
    # A driver that swallows the cancellation and answers: its answer is returned, and
    # the task is not left with a cancellation pending (it would cancel the next await).
    async def main() -> None:
        guard = StorageGuard(clock=lambda: 0.0)

        async def stubborn() -> str:
            await asyncio.sleep(0)
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.Event().wait()
            return "answered anyway"

        assert await guard.timed(stubborn(), Budget(0.02)) == "answered anyway"
        _assert_not_cancelling()
        await asyncio.sleep(0.01)  # not cancelled

    asyncio.run(main())
