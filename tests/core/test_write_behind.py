"""Write-behind: a miss's entry is stored after its response went back to the caller.

The stores here are in-memory stores that say they are not in-process (so the cache
queues their writes, as it does for SQLite and Redis) and whose writes wait on an
:class:`asyncio.Event` the test sets: no timer decides anything.
"""

from __future__ import annotations

import asyncio
import logging
from typing import ClassVar

import pytest

from acc.core import BackendUnavailable, CacheBackend, CachedResponse, CacheRequest, MemoryCache
from acc.core.errors import ConfigError
from tests.core.test_flow import URL, Origin, get

WAIT = 10.0  # seconds: only a hang would reach it


class GatedStore(MemoryCache):
    """A store outside the process, as the cache sees it, whose writes wait for ``gate``."""

    in_process: ClassVar[bool] = False

    def __init__(self) -> None:
        super().__init__()
        self.gate = asyncio.Event()
        self.gate.set()
        self.fail = False
        self.only_first_waits = False
        self.writers: list[asyncio.Task[object] | None] = []
        self.entered = asyncio.Event()
        self.written: list[str] = []

    async def write(self, key: str, value: bytes, *, expires_at: float | None = None) -> None:
        self.writers.append(asyncio.current_task())
        self.entered.set()
        if not self.only_first_waits or len(self.writers) == 1:
            await self.gate.wait()
        if self.fail:
            raise ConnectionError("storage is down")
        await super().write(key, value, expires_at=expires_at)
        self.written.append(key)


def gated(**options: object) -> tuple[CacheBackend, GatedStore]:
    store = GatedStore()
    return CacheBackend(responses=store, redirects=GatedStore(), **options), store  # type: ignore[arg-type]


async def until(condition: asyncio.Event) -> None:
    await asyncio.wait_for(condition.wait(), WAIT)


async def test_the_response_returns_before_a_slow_write_ends() -> None:
    backend, store = gated()
    store.gate.clear()
    origin = Origin()
    result = await asyncio.wait_for(backend.fetch(get(), origin), WAIT)
    assert (result.from_cache, result.stored, result.response.body) == (False, True, b"body 1")
    await until(store.entered)  # the worker is writing, and waits
    assert backend.stats.writes == 0
    assert await store.read(result.cache_key or "") is None
    store.gate.set()
    await asyncio.wait_for(backend.flush(), WAIT)
    assert backend.stats.writes == 1
    assert await store.read(result.cache_key or "") is not None
    await backend.close()


async def test_a_queued_entry_is_served_to_the_next_request_at_once() -> None:
    backend, store = gated()
    store.gate.clear()
    origin = Origin()
    await backend.fetch(get(), origin)
    second = await asyncio.wait_for(backend.fetch(get(), origin), WAIT)
    assert (second.from_cache, second.response.body) == (True, b"body 1")
    assert len(origin.requests) == 1
    raw = await backend.read_entry(backend.url_key(URL))
    assert raw is not None
    assert raw.body == b"body 1"
    store.gate.set()
    await backend.close()
    assert backend.stats.writes == 1


async def test_a_coalesced_follower_is_served_the_leaders_queued_entry() -> None:
    backend, store = gated()
    store.gate.clear()  # the leader's write stays queued while the follower looks
    origin = Origin()
    origin.gate = asyncio.Event()
    leader = asyncio.create_task(backend.fetch(get(), origin))
    await until(origin.called)
    follower = asyncio.create_task(backend.fetch(get(), origin))
    await asyncio.sleep(0)  # the follower joins the leader's fetch
    assert len(backend.inflight) == 1
    origin.gate.set()
    first, second = await asyncio.wait_for(asyncio.gather(leader, follower), WAIT)
    assert (first.from_cache, second.from_cache) == (False, True)
    assert second.response.body == first.response.body == b"body 1"
    assert len(origin.requests) == 1
    assert backend.stats.writes == 0  # still queued
    store.gate.set()
    await backend.close()
    assert backend.stats.writes == 1


async def test_close_writes_everything_queued() -> None:
    backend, store = gated()
    store.gate.clear()
    origin = Origin()
    urls = [f"{URL}?n={n}" for n in range(5)]
    for url in urls:
        assert (await backend.fetch(get(url), origin)).stored is True
    store.gate.set()
    await asyncio.wait_for(backend.close(), WAIT)
    assert backend.stats.writes == 5
    assert len(set(store.written)) == 5


async def test_flush_writes_everything_and_a_second_backend_sees_it() -> None:
    backend, store = gated()
    origin = Origin()
    for n in range(3):
        await backend.fetch(get(f"{URL}?n={n}"), origin)
    await backend.flush()
    other = CacheBackend(responses=store, redirects=backend.redirects, write_behind=False)
    assert (await other.fetch(get(f"{URL}?n=2"), origin)).from_cache is True
    await backend.close()


async def test_a_full_queue_writes_inline() -> None:
    backend, store = gated(write_behind=1)
    store.gate.clear()
    origin = Origin()
    await backend.fetch(get(f"{URL}?n=1"), origin)  # queued; the worker takes it
    await until(store.entered)
    await backend.fetch(get(f"{URL}?n=2"), origin)  # queued: the queue is now full
    store.entered.clear()
    third = asyncio.create_task(backend.fetch(get(f"{URL}?n=3"), origin))
    await until(store.entered)  # the third request writes by itself, and waits
    assert store.writers[-1] is third
    assert not third.done()
    store.gate.set()
    assert (await asyncio.wait_for(third, WAIT)).stored is True
    await backend.close()
    assert backend.stats.writes == 3


async def test_an_inline_write_never_lands_before_an_older_queued_one_of_its_key() -> None:
    backend, store = gated(write_behind=1)
    store.gate.clear()
    store.only_first_waits = True  # the older write would end after a newer one
    origin = Origin()
    await backend.fetch(get(), origin)  # body 1: the worker writes it, and waits
    await until(store.entered)
    await backend.fetch(get(f"{URL}?other"), origin)  # queued: the queue is full
    origin.called.clear()
    newer = asyncio.create_task(backend.fetch(get(), origin, force_refresh=True))
    await until(origin.called)
    await asyncio.sleep(0)
    assert not newer.done()  # its inline write waits for the older one of its key
    store.gate.set()
    assert (await asyncio.wait_for(newer, WAIT)).response.body == b"body 3"
    await backend.flush()
    reader = CacheBackend(responses=store, redirects=backend.redirects, write_behind=False)
    assert (await reader.read_entry(backend.url_key(URL))).body == b"body 3"  # type: ignore[union-attr]
    await backend.close()


async def test_a_failing_queued_write_is_counted_and_logged_never_raised(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG, logger="acc")
    events: list[object] = []
    backend, store = gated(listeners=[events.append])
    store.fail = True
    result = await backend.fetch(get(), Origin())
    assert (result.stored, result.response.body) == (True, b"body 1")
    await asyncio.wait_for(backend.flush(), WAIT)
    assert (backend.stats.errors, backend.stats.writes) == (1, 0)
    assert any("write failed" in r.getMessage() for r in caplog.records)
    misses = [e for e in events if getattr(e, "kind", None) == "miss"]
    assert [(m.stored, m.reason) for m in misses] == [(False, "not stored: storage refused it")]  # type: ignore[attr-defined]
    await backend.close()


async def test_a_written_queued_entry_is_logged_as_stored(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG, logger="acc")
    backend, _store = gated()
    await backend.fetch(get(), Origin())
    await backend.flush()
    lines = [r for r in caplog.records if getattr(r, "acc_decision", None) == "miss: no entry"]
    assert [r.acc_reason for r in lines] == ["stored"]  # type: ignore[attr-defined]
    await backend.close()


async def test_strict_writes_inline_so_a_failure_reaches_the_caller() -> None:
    backend, store = gated(strict=True)
    store.fail = True
    with pytest.raises(BackendUnavailable):
        await backend.fetch(get(), Origin())
    assert store.writers == [asyncio.current_task()]
    await backend.close()


async def test_write_behind_false_writes_before_the_response() -> None:
    backend, store = gated(write_behind=False)
    result = await backend.fetch(get(), Origin())
    assert backend.stats.writes == 1
    assert store.writers == [asyncio.current_task()]
    assert await store.read(result.cache_key or "") is not None
    backend.write_behind = 10  # a live setting
    assert backend.write_behind == 10
    await backend.fetch(get(f"{URL}?other"), Origin())
    await backend.flush()
    assert len(store.writers) == 2
    assert store.writers[-1] is not asyncio.current_task()
    await backend.close()


async def test_close_drops_what_it_cannot_write_within_its_bound(
    caplog: pytest.LogCaptureFixture,
) -> None:
    backend, store = gated(write_close_timeout=0.01, storage_budget=None)
    store.gate.clear()  # never opened: the writes hang
    origin = Origin()
    for n in range(3):
        await backend.fetch(get(f"{URL}?n={n}"), origin)
    await until(store.entered)
    await asyncio.wait_for(backend.close(), WAIT)
    assert backend.stats.writes == 0
    assert backend.stats.errors == 3
    assert any("3 queued writes dropped" in r.getMessage() for r in caplog.records)
    assert not backend._writes.pending
    tasks = asyncio.all_tasks() - {asyncio.current_task()}
    assert not [t for t in tasks if not t.done()]  # no worker left behind


async def test_cancelling_flush_leaves_the_writes_going() -> None:
    backend, store = gated()
    store.gate.clear()
    await backend.fetch(get(), Origin())
    flushing = asyncio.create_task(backend.flush())
    await until(store.entered)
    flushing.cancel()
    with pytest.raises(asyncio.CancelledError):
        await flushing
    store.gate.set()
    await asyncio.wait_for(backend.flush(), WAIT)
    assert backend.stats.writes == 1
    await backend.close()


async def test_each_queued_write_has_a_budget_of_its_own() -> None:
    backend, store = gated(storage_budget=0.01)
    store.gate.clear()  # a write that never ends is cut by its own budget
    result = await backend.fetch(get(), Origin())
    assert result.stored is True
    await asyncio.wait_for(backend.flush(), WAIT)
    assert (backend.stats.storage_timeouts, backend.stats.writes) == (1, 0)
    await backend.close()


async def test_an_invalidation_drops_the_queued_write_of_its_url() -> None:
    backend, store = gated()
    store.gate.clear()
    origin = Origin()
    await backend.fetch(get(), origin)
    await until(store.entered)  # the first write runs; queue a second key's behind it
    await backend.fetch(get(f"{URL}?b"), origin)
    store.gate.set()
    await backend.fetch(CacheRequest("POST", f"{URL}?b"), origin)
    await backend.flush()
    assert (await backend.fetch(get(f"{URL}?b"), origin)).from_cache is False
    assert (await backend.fetch(get(), origin)).from_cache is True
    await backend.close()


async def test_a_queued_variant_is_served_only_to_the_headers_it_answers() -> None:
    def vary(request: CacheRequest, count: int) -> CachedResponse:
        language = dict(request.headers).get("Accept-Language", "")
        return CachedResponse(
            200,
            "OK",
            request.url,
            "GET",
            headers=(("Vary", "Accept-Language"), ("Cache-Control", "max-age=60")),
            body=f"{language} {count}".encode(),
        )

    backend, store = gated(cache_control=True)
    store.gate.clear()
    origin = Origin(vary)
    en = await backend.fetch(get(**{"Accept-Language": "en"}), origin)
    again = await backend.fetch(get(**{"Accept-Language": "en"}), origin)
    assert (en.from_cache, again.from_cache, again.response.body) == (False, True, b"en 1")
    fr = await backend.fetch(get(**{"Accept-Language": "fr"}), origin)
    assert (fr.from_cache, fr.response.body) == (False, b"fr 2")
    store.gate.set()
    await backend.flush()  # both variants are written: the newer did not replace the other
    for language, body in (("en", b"en 1"), ("fr", b"fr 2")):
        hit = await backend.fetch(get(**{"Accept-Language": language}), origin)
        assert (hit.from_cache, hit.response.body) == (True, body)
    await backend.close()


async def test_an_invalidation_waits_for_the_running_write_of_its_url() -> None:
    backend, store = gated()
    store.gate.clear()
    origin = Origin()
    await backend.fetch(get(), origin)
    await until(store.entered)  # the write of the entry is under way, and waits
    post = asyncio.create_task(backend.fetch(CacheRequest("POST", URL), origin))
    await until(origin.called)
    origin.called.clear()
    await asyncio.sleep(0)
    assert not post.done()  # its invalidation waits for the write it would undo
    store.gate.set()
    await asyncio.wait_for(post, WAIT)
    again = await backend.fetch(get(), origin)
    assert again.from_cache is False
    await backend.close()


def test_the_setting_is_checked_and_comes_from_a_url() -> None:
    with pytest.raises(ConfigError, match="write_behind"):
        CacheBackend(write_behind=-1)
    with pytest.raises(ConfigError, match="write_close_timeout"):
        CacheBackend(write_close_timeout=-1)
    assert CacheBackend().write_behind == 1000
    assert CacheBackend(write_behind=False).write_behind == 0
    assert CacheBackend.from_url("memory://?write_behind=5").write_behind == 5
    assert CacheBackend.from_url("memory://?write_behind=false").write_behind == 0
    backend = CacheBackend()
    with pytest.raises(ConfigError, match="write_behind"):
        backend.write_behind = "many"
    assert backend.write_behind == 1000
