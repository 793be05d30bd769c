"""Observability in the core: events for listeners, the new counters, rate-limited warnings.

The flow runs through ``CacheBackend.fetch`` with a fake ``send`` and a moved clock.
"""

from __future__ import annotations

import logging

import pytest

from acc.core import CacheBackend, CachedResponse, CacheRequest, MemoryCache
from acc.core.events import EVENT_KINDS, CacheEvent, EventHub
from tests.core.test_backend import BrokenCache
from tests.core.test_flow import Clock, Origin, get

URL = "https://api.example.com/items/1"


class Recorder:
    def __init__(self) -> None:
        self.events: list[CacheEvent] = []

    def __call__(self, event: CacheEvent) -> None:
        self.events.append(event)

    @property
    def kinds(self) -> list[str]:
        return [event.kind for event in self.events]


def entry(status: int = 200, body: bytes = b"x" * 10, **headers: str) -> CachedResponse:
    return CachedResponse(
        status=status,
        reason="OK",
        url=URL,
        method="GET",
        headers=tuple(headers.items()),
        body=body,
    )


async def test_each_decision_sends_one_event_with_the_facts_of_its_log_line(
    caplog: pytest.LogCaptureFixture,
) -> None:
    clock = Clock()
    recorder = Recorder()
    backend = CacheBackend(expire_after=60, clock=clock, listeners=[recorder])
    origin = Origin()
    caplog.set_level(logging.DEBUG, logger="acc")
    await backend.fetch(get(), origin)  # miss, stored
    await backend.fetch(get(), origin)  # hit
    clock.advance(61)
    await backend.fetch(get(), origin)  # stale with an ETag: revalidated? the origin says 200
    await backend.fetch(CacheRequest("POST", URL), origin)  # bypass, then invalidation
    await backend.fetch(get(), origin, only_if_cached=True)  # the entry is gone: 504
    assert recorder.kinds == ["miss", "hit", "miss", "bypass", "invalidation", "gateway_timeout"]
    miss, hit = recorder.events[0], recorder.events[1]
    assert (miss.stored, miss.status, miss.body_bytes) == (True, 200, len(b"body 1"))
    assert (hit.status, hit.body_bytes, hit.stored) == (200, len(b"body 1"), None)
    assert miss.key == hit.key is not None
    assert all(e.method in ("GET", "POST") and e.url == URL for e in recorder.events)
    assert all(e.elapsed is not None and e.elapsed >= 0 for e in recorder.events)
    # The same facts as the DEBUG lines, one event per line.
    lines = [r for r in caplog.records if hasattr(r, "acc_decision")]
    facts = [(r.acc_decision, getattr(r, "acc_reason"), getattr(r, "acc_key")) for r in lines]  # noqa: B009
    assert facts == [(e.decision, e.reason, e.key) for e in recorder.events]


async def test_revalidated_stale_and_not_stored_events() -> None:
    clock = Clock()
    recorder = Recorder()
    backend = CacheBackend(
        expire_after=60, clock=clock, listeners=[recorder], stale_while_revalidate=True
    )

    async def send(request: CacheRequest) -> CachedResponse:
        if dict(request.headers).get("If-None-Match") == '"v1"':
            return entry(304, b"", ETag='"v1"')
        if request.url.endswith("/teapot"):
            return entry(418)
        return entry(ETag='"v1"')

    await backend.fetch(get(), send)
    clock.advance(61)
    await backend.fetch(get(), send)  # stale-while-revalidate: served stale
    await backend.refreshes.close(5)
    await backend.fetch(get(), send, refresh=True)  # a 304
    await backend.fetch(get(URL + "/teapot"), send)
    kinds = recorder.kinds
    assert kinds[:2] == ["miss", "stale"]
    assert "revalidated" in kinds
    not_stored = recorder.events[-1]
    assert (not_stored.kind, not_stored.stored, not_stored.status) == ("miss", False, 418)
    assert "allowed_codes" in not_stored.reason


async def test_no_listener_no_event_and_listeners_can_be_added_and_removed() -> None:
    backend = CacheBackend()
    recorder = Recorder()
    await backend.fetch(get(), Origin())
    backend.add_listener(recorder)
    await backend.fetch(get(), Origin())
    backend.remove_listener(recorder)
    backend.remove_listener(recorder)  # absent: no error
    await backend.fetch(get(), Origin())
    assert recorder.kinds == ["hit"]


async def test_a_failing_listener_never_breaks_a_request_nor_the_next_listener(
    caplog: pytest.LogCaptureFixture,
) -> None:
    def broken(event: CacheEvent) -> None:
        raise RuntimeError("exporter down")

    async def awaiting(event: CacheEvent) -> None:  # a mistake: listeners are synchronous
        raise AssertionError("never awaited")

    recorder = Recorder()
    backend = CacheBackend(listeners=[broken, awaiting, recorder])
    caplog.set_level(logging.DEBUG, logger="acc")
    for _ in range(3):
        result = await backend.fetch(get(), Origin())
        assert result.response.status == 200
    assert recorder.kinds == ["miss", "hit", "hit"]
    failures = [r for r in caplog.records if "event listener" in r.getMessage()]
    warnings = [r for r in failures if r.levelno == logging.WARNING]
    assert len(failures) == 6
    assert len(warnings) == 2  # the first failure of each listener; the others at DEBUG
    assert any("RuntimeError" in (r.exc_text or "") for r in warnings)
    assert any("synchronously" in (r.exc_text or "") for r in warnings)


def test_event_hub_checks_its_listeners() -> None:
    hub = EventHub()
    with pytest.raises(ValueError, match="listeners"):
        hub.add("print")  # type: ignore[arg-type]
    assert hub.listeners == ()
    assert "error" in EVENT_KINDS


async def test_storage_errors_are_events_too() -> None:
    recorder = Recorder()
    backend = CacheBackend(responses=BrokenCache(), redirects=BrokenCache(), listeners=[recorder])
    result = await backend.fetch(get(), Origin())
    assert result.response.status == 200
    await backend.flush()  # the write behind the response fails too, then the miss is told
    errors = [e for e in recorder.events if e.kind == "error"]
    assert errors
    assert "ConnectionError" in errors[0].reason
    assert recorder.kinds[-1] == "miss"


# -- counters ----------------------------------------------------------------------------------


async def test_bytes_read_and_written_count_the_stored_bytes() -> None:
    store = MemoryCache()
    backend = CacheBackend(responses=store)
    result = await backend.fetch(get(), Origin())
    stored = await store.read(result.cache_key or "")
    assert stored is not None
    assert backend.stats.bytes_written == len(stored)
    assert backend.stats.bytes_read == 0
    await backend.fetch(get(), Origin())
    await backend.fetch(get(), Origin())
    assert backend.stats.bytes_read == 2 * len(stored)
    assert backend.stats.as_dict()["bytes_read"] == 2 * len(stored)


async def test_evictions_of_a_bounded_memory_store_are_counted() -> None:
    backend = CacheBackend(responses=MemoryCache(max_entries=2))
    for n in range(5):
        await backend.fetch(get(f"{URL}?n={n}"), Origin())
    assert backend.stats.evictions == 3
    assert await backend.responses.size() == 2
    backend.stats.reset()
    await backend.fetch(get(f"{URL}?n=9"), Origin())
    assert backend.stats.evictions == 1  # counted from the reset on


async def test_an_unbounded_store_reports_no_eviction() -> None:
    backend = CacheBackend()
    for n in range(5):
        await backend.fetch(get(f"{URL}?n={n}"), Origin())
    assert backend.stats.evictions == 0
    assert backend.responses.evictions == 0
    assert BrokenCache().evictions is None  # a store that cannot tell


# -- warnings during an outage ------------------------------------------------------------------


def warnings_of(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [
        r.getMessage() for r in caplog.records if r.name == "acc" and r.levelno == logging.WARNING
    ]


async def test_outage_warnings_are_rate_limited_by_the_cache_clock(
    caplog: pytest.LogCaptureFixture,
) -> None:
    clock = Clock()
    store = BrokenCache()
    # No circuit breaker here: every request tries the store (the breaker warns on its own).
    backend = CacheBackend(
        responses=store, redirects=MemoryCache(), clock=clock, breaker_threshold=None
    )
    caplog.set_level(logging.DEBUG, logger="acc")
    for _ in range(50):
        assert await backend.read_entry("k") is None
        clock.advance(1)  # 50 failures over 50 s: one warning
    assert len(warnings_of(caplog)) == 1
    clock.advance(11)  # 61 s after the first warning
    assert await backend.read_entry("k") is None
    messages = warnings_of(caplog)
    assert len(messages) == 2
    assert "still failing: 50 more failure(s)" in messages[1]
    store.broken = False
    assert await backend.read_entry("k") is None
    messages = warnings_of(caplog)
    assert len(messages) == 3
    assert "working again (51 failure(s) during the outage)" in messages[2]
    assert backend.stats.errors == 51
    # The suppressed failures are still in the log, at DEBUG.
    assert (
        sum("failed on" in r.getMessage() for r in caplog.records if r.levelno == logging.DEBUG)
        == 49
    )
