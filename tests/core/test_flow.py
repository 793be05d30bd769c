"""The request flow through ``CacheBackend.fetch``: a fake ``send``, a moved clock, no sockets."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from acc.core import (
    DO_NOT_CACHE,
    CacheBackend,
    CachedResponse,
    CacheRequest,
    CacheResult,
    ConfigError,
)
from acc.core.flow import driver

URL = "https://api.example.com/items/1"


class Clock:
    """A clock tests move by hand.

    It starts at the real time: stores drop entries by the real clock (native expiry), and
    the flow keeps entries at least as long as they are fresh, so moving this clock forward
    only ever makes the flow see entries as older than the store does.
    """

    def __init__(self) -> None:
        self.now = datetime.now(timezone.utc)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


class Origin:
    """A fake ``send``: records every request, answers with what ``respond`` builds."""

    def __init__(self, respond: Callable[[CacheRequest, int], CachedResponse] | None = None):
        self.requests: list[CacheRequest] = []
        self.respond = respond or self.ok
        self.gate: asyncio.Event | None = None
        self.called = asyncio.Event()

    @staticmethod
    def ok(request: CacheRequest, count: int) -> CachedResponse:
        return CachedResponse(
            status=200,
            reason="OK",
            url=request.url,
            method=request.method,
            headers=(("Content-Type", "text/plain"), ("ETag", '"v1"')),
            body=f"body {count}".encode(),
        )

    async def __call__(self, request: CacheRequest) -> CachedResponse:
        self.requests.append(request)
        self.called.set()
        if self.gate is not None:
            await self.gate.wait()
        return self.respond(request, len(self.requests))


def get(url: str = URL, **headers: str) -> CacheRequest:
    return CacheRequest("GET", url, headers=tuple(headers.items()))


@pytest.fixture
def clock() -> Clock:
    return Clock()


async def test_miss_then_hit_counts_and_keys(clock: Clock) -> None:
    backend = CacheBackend(clock=clock)
    origin = Origin()
    first = await backend.fetch(get(), origin)
    second = await backend.fetch(get(), origin)
    assert isinstance(first, CacheResult)
    assert (first.from_cache, first.stored, first.response.body) == (False, True, b"body 1")
    assert (second.from_cache, second.response.body) == (True, b"body 1")
    assert first.cache_key == second.cache_key == backend.url_key(URL)
    assert len(origin.requests) == 1
    stats = backend.stats
    assert (stats.hits, stats.misses, stats.writes) == (1, 1, 1)


async def test_expire_after_applies_through_fetch(clock: Clock) -> None:
    backend = CacheBackend(expire_after=1, clock=clock)
    origin = Origin(lambda r, n: CachedResponse(200, "OK", r.url, "GET", body=b"%d" % n))
    await backend.fetch(get(), origin)
    assert (await backend.fetch(get(), origin)).from_cache is True
    clock.advance(2)
    expired = await backend.fetch(get(), origin)
    assert (expired.from_cache, expired.response.body) == (False, b"2")
    assert len(origin.requests) == 2


@pytest.mark.parametrize("expire_after", [0, DO_NOT_CACHE])
async def test_expire_after_zero_stores_nothing(clock: Clock, expire_after: Any) -> None:
    backend = CacheBackend(expire_after=expire_after, clock=clock)
    origin = Origin()
    result = await backend.fetch(get(), origin)
    assert result.stored is False
    assert (await backend.fetch(get(), origin)).from_cache is False
    assert await backend.responses.size() == 0
    assert backend.stats.not_stored == 2


async def test_urls_expire_after_and_per_request_expire_after(clock: Clock) -> None:
    backend = CacheBackend(
        expire_after=3600, urls_expire_after={"api.example.com/items/*": 10}, clock=clock
    )
    origin = Origin()
    await backend.fetch(get(), origin)
    other = "https://api.example.com/other"
    await backend.fetch(get(other), origin)
    await backend.fetch(get(URL + "?x=1"), origin, expire_after=1000)
    clock.advance(11)
    assert (await backend.fetch(get(), origin)).from_cache is False  # the pattern's 10 s
    assert (await backend.fetch(get(other), origin)).from_cache is True  # the setting's hour
    assert (await backend.fetch(get(URL + "?x=1"), origin)).from_cache is True  # per request


async def test_revalidation_sends_validators_and_accepts_304(clock: Clock) -> None:
    backend = CacheBackend(expire_after=10, clock=clock)

    def respond(request: CacheRequest, count: int) -> CachedResponse:
        if dict(request.headers).get("If-None-Match") == '"v1"':
            etag = (("ETag", '"v1"'),)
            return CachedResponse(304, "Not Modified", request.url, "GET", headers=etag)
        return Origin.ok(request, count)

    origin = Origin(respond)
    await backend.fetch(get(), origin)
    clock.advance(11)
    result = await backend.fetch(get(), origin)
    assert dict(origin.requests[1].headers)["If-None-Match"] == '"v1"'
    assert (result.from_cache, result.revalidated, result.response.status) == (True, True, 200)
    assert result.response.body == b"body 1"
    assert backend.stats.revalidations == 1
    # The 304 refreshed the entry: fresh again for another 10 s, no request.
    assert (await backend.fetch(get(), origin)).revalidated is False
    assert len(origin.requests) == 2


async def test_refresh_and_force_refresh(clock: Clock) -> None:
    backend = CacheBackend(clock=clock)
    origin = Origin()
    await backend.fetch(get(), origin)
    refreshed = await backend.fetch(get(), origin, refresh=True)
    assert dict(origin.requests[1].headers)["If-None-Match"] == '"v1"'
    assert refreshed.from_cache is False  # the fake origin ignores conditions: a new 200
    forced = await backend.fetch(get(), origin, force_refresh=True)
    assert "If-None-Match" not in dict(origin.requests[2].headers)
    assert (forced.from_cache, forced.stored, forced.response.body) == (False, True, b"body 3")


async def test_only_if_cached_never_sends(clock: Clock) -> None:
    backend = CacheBackend(clock=clock)
    origin = Origin()
    miss = await backend.fetch(get(), origin, only_if_cached=True)
    assert (miss.response.status, miss.from_cache, origin.requests) == (504, False, [])
    assert backend.stats.gateway_timeouts == 1
    await backend.fetch(get(), origin)
    hit = await backend.fetch(get(), origin, only_if_cached=True)
    assert (hit.response.status, hit.from_cache) == (200, True)


async def test_concurrent_identical_fetches_make_one_send(clock: Clock) -> None:
    backend = CacheBackend(clock=clock)
    origin = Origin()
    origin.gate = asyncio.Event()
    tasks = [asyncio.create_task(backend.fetch(get(), origin)) for _ in range(20)]
    await asyncio.wait_for(origin.called.wait(), timeout=60)
    for _ in range(5):  # let every other task reach the coalescer and wait there
        await asyncio.sleep(0)
    origin.gate.set()
    results = await asyncio.gather(*tasks)
    assert len(origin.requests) == 1
    assert sorted(r.from_cache for r in results) == [False] + [True] * 19
    assert {r.response.body for r in results} == {b"body 1"}


async def test_stale_if_error_answers_a_failed_send(clock: Clock) -> None:
    backend = CacheBackend(expire_after=10, stale_if_error=60, clock=clock)
    origin = Origin()
    await backend.fetch(get(), origin)
    clock.advance(11)

    async def down(request: CacheRequest) -> CachedResponse:
        raise ConnectionRefusedError("origin down")

    stale = await backend.fetch(get(), down)
    assert (stale.from_cache, stale.stale, stale.response.body) == (True, True, b"body 1")
    assert backend.stats.stale == 1
    clock.advance(120)
    with pytest.raises(ConnectionRefusedError):
        await backend.fetch(get(), down)


async def test_stale_while_revalidate_refreshes_in_the_background(clock: Clock) -> None:
    backend = CacheBackend(expire_after=10, stale_while_revalidate=60, clock=clock)
    origin = Origin(lambda r, n: CachedResponse(200, "OK", r.url, "GET", body=b"%d" % n))
    await backend.fetch(get(), origin)
    clock.advance(11)
    stale = await backend.fetch(get(), origin)
    assert (stale.from_cache, stale.stale, stale.response.body) == (True, True, b"1")
    await asyncio.gather(*backend.refreshes.pending)
    fresh = await backend.fetch(get(), origin)
    assert (fresh.from_cache, fresh.stale, fresh.response.body) == (True, False, b"2")
    assert len(origin.requests) == 2


async def test_close_cancels_refreshes_past_the_timeout(clock: Clock) -> None:
    backend = CacheBackend(
        expire_after=10, stale_while_revalidate=60, clock=clock, refresh_close_timeout=0
    )
    origin = Origin()
    await backend.fetch(get(), origin)
    clock.advance(11)
    origin.gate = asyncio.Event()  # the refresh hangs
    await backend.fetch(get(), origin)
    (task,) = backend.refreshes.pending
    await backend.close()
    assert task.cancelled()


async def test_unsafe_methods_invalidate_and_are_not_stored(clock: Clock) -> None:
    backend = CacheBackend(clock=clock)
    origin = Origin()
    await backend.fetch(get(), origin)
    post = await backend.fetch(CacheRequest("POST", URL, body_kind="bytes", body=b"x"), origin)
    assert (post.from_cache, post.stored, post.cache_key) == (False, False, None)
    assert (backend.stats.bypassed, backend.stats.invalidations) == (1, 1)
    assert (await backend.fetch(get(), origin)).from_cache is False


async def test_send_must_return_a_cached_response(clock: Clock) -> None:
    backend = CacheBackend(clock=clock)

    async def wrong(request: CacheRequest) -> Any:
        return b"bytes"

    with pytest.raises(TypeError, match="CachedResponse"):
        await backend.fetch(get(), wrong)


async def test_bad_options_raise(clock: Clock) -> None:
    backend = CacheBackend(clock=clock)
    with pytest.raises(ConfigError, match="expire_after"):
        await backend.fetch(get(), Origin(), expire_after="soon")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="refresh"):
        await backend.fetch(get(), Origin(), refresh="yes")  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        await backend.fetch("https://example.com", Origin())  # type: ignore[arg-type]


async def test_one_debug_line_per_decision(clock: Clock, caplog: pytest.LogCaptureFixture) -> None:
    backend = CacheBackend(clock=clock)

    def respond(request: CacheRequest, count: int) -> CachedResponse:
        status = 404 if request.url.endswith("/missing") else 200
        return CachedResponse(status, "x", request.url, "GET", body=b"")

    origin = Origin(respond)
    with caplog.at_level(logging.DEBUG, logger="acc"):
        await backend.fetch(get(), origin)
        await backend.fetch(get(), origin)
        await backend.fetch(get("https://api.example.com/missing"), origin)
    messages = [r.getMessage() for r in caplog.records if r.name == "acc"]
    assert messages == [
        f"acc: GET {URL}: miss: no entry: stored",
        f"acc: GET {URL}: hit",
        "acc: GET https://api.example.com/missing: miss: no entry: "
        "not stored: status 404 is not in allowed_codes",
    ]
    first = next(r for r in caplog.records if r.name == "acc")
    assert first.acc_decision == "miss: no entry"  # type: ignore[attr-defined]
    assert first.acc_key == backend.url_key(URL)  # type: ignore[attr-defined]


async def test_dispatch_is_exhaustive_at_run_time(
    clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    # mypy rejects an unhandled decision type; at run time one still fails loudly.
    monkeypatch.setattr(driver, "decide_lookup", lambda *a, **k: object())
    with pytest.raises(AssertionError, match="unhandled decision"):
        await CacheBackend(clock=clock).fetch(get(), Origin())


async def test_log_lines_redact_credentials_and_ignored_params(
    clock: Clock, caplog: pytest.LogCaptureFixture
) -> None:
    backend = CacheBackend(clock=clock, ignored_params=["api_key"])
    with caplog.at_level(logging.DEBUG, logger="acc"):
        await backend.fetch(get("https://user:pw@api.example.com/x?api_key=s3cret&a=1"), Origin())
    (record,) = [r for r in caplog.records if r.name == "acc"]
    assert "s3cret" not in record.getMessage()
    assert "pw@" not in record.getMessage()
    assert "s3cret" not in record.acc_url  # type: ignore[attr-defined]
    assert "a=1" in record.getMessage()
