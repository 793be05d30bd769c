"""HTTP caching semantics (RFC 9111, RFC 5861) through CachedSession, against a real origin.

The ``/http/{name}`` route of the origin sends the headers its query names (see
tests/conftest.py), so each test states the response it caches in its URL. Staleness
comes from an ``Age`` header or a short real expiry, never from long sleeps.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime, timedelta, timezone
from email.utils import format_datetime
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from acc.core import DO_NOT_CACHE
from acc.sessions.aiohttp import CachedSession


def http(origin: Any, name: str, **params: str) -> str:
    """The URL of ``/http/{name}`` sending the headers ``params`` name."""
    return str(origin.url.with_path(f"/http/{name}").with_query(params))


def seconds_left(response: Any) -> float:
    assert response.expires is not None
    return float((response.expires - datetime.now(timezone.utc)).total_seconds())


async def test_max_age_beats_a_longer_session_expire_after(origin, make_backend):
    async with CachedSession(cache=make_backend(cache_control=True, expire_after=3600)) as session:
        short = await session.get(http(origin, "short", cc="max-age=100"))
        assert 90 < seconds_left(short) <= 100
        assert (await session.get(http(origin, "short", cc="max-age=100"))).from_cache is True
        # max-age=60 on a response already 60 s old (Age): stale on arrival, so not kept,
        # although the session's expire_after would keep it an hour.
        url = http(origin, "aged", cc="max-age=60", age="60")
        await session.get(url)
        again = await session.get(url)
        assert again.from_cache is False
    assert origin.hits["/http/short"] == 1
    assert origin.hits["/http/aged"] == 2


async def test_without_cache_control_headers_are_ignored(origin, make_backend):
    async with CachedSession(cache=make_backend(expire_after=3600)) as session:
        url = http(origin, "ignored", cc="no-store, max-age=0", expires="0")
        first = await session.get(url)
        assert 3590 < seconds_left(first) <= 3600
        assert (await session.get(url)).from_cache is True
    assert origin.hits["/http/ignored"] == 1


@pytest.mark.parametrize("expires", ["0", "not a date"])
async def test_expires_zero_or_invalid_is_already_stale(origin, make_backend, expires):
    async with CachedSession(cache=make_backend(cache_control=True, expire_after=3600)) as session:
        url = http(origin, "expires", expires=expires)
        await session.get(url)
        second = await session.get(url)
        assert second.from_cache is False
        assert await session.cache.has_url(url) is False
    assert origin.hits["/http/expires"] == 2


async def test_response_no_cache_is_revalidated_before_every_use(origin, make_backend):
    async with CachedSession(cache=make_backend(cache_control=True)) as session:
        url = http(origin, "no-cache", cc="no-cache", etag='"nc1"')
        first = await session.get(url)
        assert first.from_cache is False
        for _ in range(2):
            again = await session.get(url)
            assert again.from_cache is True
            assert again.revalidated is True
            assert (await again.json())["count"] == 1  # the stored body
    assert origin.answered == [
        ("/http/no-cache", 200),
        ("/http/no-cache", 304),
        ("/http/no-cache", 304),
    ]


async def test_stale_entry_with_etag_is_revalidated_by_a_304(origin, make_backend):
    async with CachedSession(cache=make_backend(cache_control=True)) as session:
        # Two minutes old with max-age=60: stale on arrival, kept for its validator.
        url = http(origin, "etag", cc="max-age=60", etag='W/"v1"', age="120")
        first = await session.get(url)
        body = await first.json()
        assert await session.cache.has_url(url) is True
        refreshed = await session.get(url)
        assert refreshed.from_cache is True
        assert refreshed.revalidated is True
        assert refreshed.is_expired is False
        assert await refreshed.json() == body
        assert 50 < seconds_left(refreshed) <= 60  # freshness refreshed by the 304
        sent = origin.requests[-1]
        assert sent.headers["If-None-Match"] == 'W/"v1"'
        hit = await session.get(url)
        assert hit.from_cache is True
        assert hit.revalidated is False
    assert origin.answered == [("/http/etag", 200), ("/http/etag", 304)]
    assert session.cache.stats.revalidations == 1


async def test_vary_keeps_variants_apart(origin, make_backend):
    async with CachedSession(cache=make_backend(cache_control=True)) as session:
        url = http(origin, "vary", cc="max-age=600", vary="Accept")
        bodies: dict[str, int] = {}
        for accept in ("application/json", "text/html", "application/json", "text/html"):
            response = await session.get(url, headers={"Accept": accept})
            body = await response.json()
            assert body["accept"] == accept
            bodies.setdefault(accept, body["count"])
            assert body["count"] == bodies[accept]
        assert origin.hits["/http/vary"] == 2
        # The session's headers count as the request's: same variant as the explicit one.
        async with CachedSession(cache=session.cache, headers={"Accept": "text/html"}) as other:
            assert (await (await other.get(url)).json())["accept"] == "text/html"
        assert origin.hits["/http/vary"] == 2


async def test_vary_star_is_never_served_from_cache(origin, make_backend):
    async with CachedSession(cache=make_backend(cache_control=True)) as session:
        url = http(origin, "star", cc="max-age=600", vary="*")
        await session.get(url)
        assert (await session.get(url)).from_cache is False
    assert origin.hits["/http/star"] == 2


async def test_heuristic_freshness_from_last_modified(origin, make_backend):
    modified = datetime.now(timezone.utc) - timedelta(hours=5)
    stamp = format_datetime(modified, usegmt=True)
    # Heuristic freshness is the response's own: it beats the session's 5 seconds.
    async with CachedSession(cache=make_backend(cache_control=True, expire_after=5)) as session:
        url = http(origin, "heuristic", lm=stamp)
        first = await session.get(url)
        assert 29 * 60 < seconds_left(first) <= 30 * 60 + 1  # 10% of 5 hours
        assert (await session.get(url)).from_cache is True
        # A status that is not heuristically cacheable falls back to the settings.
        created = http(origin, "heuristic201", lm=stamp, status="201")
        async with CachedSession(
            cache=make_backend(cache_control=True, expire_after=5, allowed_codes=(201,))
        ) as other:
            assert 0 < seconds_left(await other.get(created)) <= 5
    assert origin.hits["/http/heuristic"] == 1


async def test_stale_while_revalidate_serves_at_once_and_refreshes(origin, make_backend):
    async with CachedSession(cache=make_backend(cache_control=True)) as session:
        # Ten seconds old, fresh for one: stale on arrival, inside a 60 s window.
        url = http(origin, "swr", cc="max-age=1, stale-while-revalidate=60", age="10")
        await session.get(url)
        stale = await session.get(url)
        assert stale.from_cache is True
        assert stale.is_expired is True
        assert (await stale.json())["count"] == 1
        assert origin.hits["/http/swr"] == 1  # returned before any network request
        tasks = session.pending_refreshes
        assert len(tasks) == 1
        assert (await session.get(url)).from_cache is True  # one refresh per key at a time
        assert len(session.pending_refreshes) == 1
        await asyncio.gather(*tasks)
        assert origin.hits["/http/swr"] == 2
        landed = await session.get(url)
        assert (await landed.json())["count"] == 2  # the refreshed entry
        await asyncio.gather(*session.pending_refreshes)


async def test_stale_while_revalidate_setting_without_cache_control(origin, make_backend):
    backend = make_backend(expire_after=0.05, stale_while_revalidate=60)
    async with CachedSession(cache=backend) as session:
        await session.get(origin("/json"))
        await asyncio.sleep(0.1)
        stale = await session.get(origin("/json"))
        assert (stale.from_cache, stale.is_expired) == (True, True)
        await asyncio.gather(*session.pending_refreshes)
        assert origin.hits["/json"] == 2


async def test_close_waits_for_background_refreshes(origin, make_backend):
    url = http(origin, "closing", cc="max-age=1, stale-while-revalidate=60", age="10")
    session = CachedSession(cache=make_backend(cache_control=True))
    await session.get(url)
    await session.get(url)
    tasks = session.pending_refreshes
    assert len(tasks) == 1
    assert not tasks[0].done()
    await session.close()
    assert all(task.done() and not task.cancelled() for task in tasks)
    assert session.pending_refreshes == ()
    assert origin.hits["/http/closing"] == 2


async def test_stale_if_error_on_a_500(origin, make_backend):
    async with CachedSession(cache=make_backend(cache_control=True)) as session:
        url = http(origin, "sie", cc="max-age=1, stale-if-error=60", age="10")
        forbidden = http(
            origin,
            "sie-mr",
            cc="max-age=1, stale-if-error=60, must-revalidate",
            etag='"m"',
            age="10",
        )
        await session.get(url)
        await session.get(forbidden)
        origin.force_status.update({"sie": 500, "sie-mr": 500})
        stale = await session.get(url)
        assert stale.status == 200
        assert (stale.from_cache, stale.is_expired) == (True, True)
        assert (await stale.json())["count"] == 1
        # must-revalidate forbids serving stale: the 500 comes through.
        failed = await session.get(forbidden)
        assert failed.status == 500
        assert failed.from_cache is False
    assert origin.answered[-2:] == [("/http/sie", 500), ("/http/sie-mr", 500)]


async def test_stale_if_error_setting_and_no_window(origin, make_backend):
    async with CachedSession(cache=make_backend(expire_after=0.05, stale_if_error=True)) as session:
        url = http(origin, "sie-setting")
        await session.get(url)
        await asyncio.sleep(0.1)
        origin.force_status["sie-setting"] = 503
        stale = await session.get(url)
        assert (stale.status, stale.from_cache, stale.is_expired) == (200, True, True)
    async with CachedSession(cache=make_backend(expire_after=0.05)) as session:
        url = http(origin, "sie-off")
        await session.get(url)
        await asyncio.sleep(0.1)
        origin.force_status["sie-off"] = 503
        assert (await session.get(url)).status == 503


@asynccontextmanager
async def short_lived_origin() -> AsyncIterator[str]:
    """A second real server, stopped when the block ends: its port then refuses."""

    async def handler(request: web.Request) -> web.Response:
        # Ten seconds old, fresh for one: stale on arrival, kept for its validator.
        headers = {"Cache-Control": "max-age=1", "Age": "10", "ETag": '"alive"'}
        return web.json_response({"alive": True}, headers=headers)

    app = web.Application()
    app.router.add_get("/", handler)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        yield f"http://127.0.0.1:{port}/"
    finally:
        await runner.cleanup()


def refuses(url: str) -> bool:
    port = int(url.rsplit(":", 1)[1].strip("/"))
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) != 0


async def test_stale_if_error_on_a_refused_connection(make_backend):
    window = CachedSession(cache=make_backend(cache_control=True, stale_if_error=60))
    # Without a window the stale entry is still stored (it has a validator) but not used.
    no_window = CachedSession(cache=make_backend(cache_control=True))
    async with window, no_window:
        async with short_lived_origin() as url:
            await window.get(url)
            await no_window.get(url)
        assert refuses(url)
        assert await no_window.cache.has_url(url) is True
        stale = await window.get(url)
        assert (stale.status, stale.from_cache, stale.is_expired) == (200, True, True)
        assert await stale.json() == {"alive": True}
        with pytest.raises(aiohttp.ClientConnectionError):
            await no_window.get(url)


async def test_post_invalidates_the_cached_get(origin, make_backend):
    async with CachedSession(cache=make_backend()) as session:
        await session.get(origin("/json"))
        assert (await session.get(origin("/json"))).from_cache is True
        await session.post(origin("/json"), json={"changed": True})
        assert (await session.get(origin("/json"))).from_cache is False
        # A failed unsafe request changes nothing.
        await session.delete(origin("/status/500"))
        assert (await session.get(origin("/json"))).from_cache is True
        # Location on the same origin is invalidated too.
        await session.post(http(origin, "create", status="201", location="/json"))
        assert (await session.get(origin("/json"))).from_cache is False
    assert origin.hits["/json"] == 4


async def test_post_invalidates_every_variant(origin, make_backend):
    async with CachedSession(cache=make_backend(cache_control=True)) as session:
        url = http(origin, "variants", cc="max-age=600", vary="Accept")
        for accept in ("a/json", "b/html"):
            await session.get(url, headers={"Accept": accept})
            assert (await session.get(url, headers={"Accept": accept})).from_cache is True
        await session.put(url)
        for accept in ("a/json", "b/html"):
            assert (await session.get(url, headers={"Accept": accept})).from_cache is False
    assert origin.hits["/http/variants"] == 5


async def test_request_only_if_cached_gives_504_without_the_network(origin, make_backend):
    async with CachedSession(cache=make_backend(cache_control=True)) as session:
        url = http(origin, "oic", cc="max-age=600")
        headers = {"Cache-Control": "only-if-cached"}
        missing = await session.get(url, headers=headers)
        assert missing.status == 504
        assert origin.total == 0
        await session.get(url)
        cached = await session.get(url, headers=headers)
        assert (cached.status, cached.from_cache) == (200, True)
    assert origin.total == 1


async def test_request_directives(origin, make_backend):
    async with CachedSession(cache=make_backend(cache_control=True)) as session:
        url = http(origin, "req", cc="max-age=600", etag='"r"')
        await session.get(url)
        no_cache = await session.get(url, headers={"Cache-Control": "No-Cache"})
        assert no_cache.revalidated is True
        pragma = await session.get(url, headers={"Pragma": "no-cache"})
        assert pragma.revalidated is True
        # A max-age smaller than the entry's age needs validation too.
        young = await session.get(url, headers={"Cache-Control": "max-age=0"})
        assert young.revalidated is True
        assert (
            await session.get(url, headers={"cache-control": "max-age=600"})
        ).revalidated is False
        stored_no = http(origin, "req-no-store", cc="max-age=600")
        await session.get(stored_no, headers={"Cache-Control": "no-store"})
        assert await session.cache.has_url(stored_no) is False
    assert [status for path, status in origin.answered if path == "/http/req"] == [
        200,
        304,
        304,
        304,
    ]


async def test_immutable_is_not_revalidated_on_refresh(origin, make_backend):
    async with CachedSession(cache=make_backend(cache_control=True)) as session:
        url = http(origin, "immutable", cc="max-age=600, immutable", etag='"i"')
        await session.get(url)
        again = await session.get(url, refresh=True)
        assert (again.from_cache, again.revalidated) == (True, False)
        mutable = http(origin, "mutable", cc="max-age=600", etag='"m"')
        await session.get(mutable)
        assert (await session.get(mutable, refresh=True)).revalidated is True
    assert origin.hits["/http/immutable"] == 1


async def test_response_no_store_and_per_request_do_not_cache(origin, make_backend):
    async with CachedSession(cache=make_backend(cache_control=True)) as session:
        url = http(origin, "no-store", cc="no-store, max-age=600")
        await session.get(url)
        assert (await session.get(url)).from_cache is False
        # The response's max-age outranks a per-request expire_after (the precedence).
        ranked = http(origin, "ranked", cc="max-age=600")
        await session.get(ranked, expire_after=DO_NOT_CACHE)
        assert (await session.get(ranked)).from_cache is True
