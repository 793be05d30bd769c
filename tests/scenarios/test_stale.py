"""Serving stale entries (RFC 5861): stale-while-revalidate and stale-if-error.

The background refresh of stale-while-revalidate is waited for through the client's
pending refreshes, never by sleeping; stale windows are crossed by moving the clock.
"""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest
from aiohttp import web


async def test_stale_while_revalidate_serves_at_once_and_refreshes(origin, client_factory):
    client = client_factory(cache_control=True)
    # Ten seconds old, fresh for one: stale on arrival, inside a 60 s window.
    url = origin.http("swr", cc="max-age=1, stale-while-revalidate=60", age="10")
    await client.get(url)
    stale = await client.get(url)
    assert (stale.from_cache, stale.stale) == (True, True)
    assert stale.json()["count"] == 1
    assert origin.hits["/http/swr"] == 1  # returned before any network request
    tasks = client.pending_refreshes
    assert len(tasks) == 1
    assert (await client.get(url)).stale is True  # one refresh per key at a time
    assert len(client.pending_refreshes) == 1
    await client.drain_refreshes()
    assert origin.hits["/http/swr"] == 2
    landed = await client.get(url)
    assert landed.json()["count"] == 2  # the refreshed entry
    assert landed.stale is True  # stale on arrival again (Age: 10), so refreshed again
    await client.drain_refreshes()
    assert client.cache.stats.stale == 3


async def test_stale_while_revalidate_setting_and_its_window(origin, client_factory, clock):
    client = client_factory(expire_after=10, stale_while_revalidate=60)
    await client.get(origin("/json"))
    clock.advance(20)
    stale = await client.get(origin("/json"))
    assert (stale.from_cache, stale.stale) == (True, True)
    assert stale.json()["count"] == 1
    assert origin.hits["/json"] == 1
    await client.drain_refreshes()
    assert origin.hits["/json"] == 2
    fresh = await client.get(origin("/json"))
    assert (fresh.from_cache, fresh.stale) == (True, False)
    assert fresh.json()["count"] == 2
    assert fresh.created_at == clock()
    # Stale by more than the window: fetched before answering, not served stale.
    clock.advance(10 + 60 + 1)
    late = await client.get(origin("/json"))
    assert (late.from_cache, late.stale) == (False, False)
    assert late.json()["count"] == 3
    assert client.pending_refreshes == ()
    assert origin.hits["/json"] == 3
    assert client.cache.stats.stale == 1


async def test_stale_while_revalidate_refresh_revalidates(origin, client_factory, clock):
    client = client_factory(expire_after=10, stale_while_revalidate=60)
    await client.get(origin("/etag"))
    clock.advance(20)
    stale = await client.get(origin("/etag"))
    assert (stale.from_cache, stale.stale, stale.revalidated) == (True, True, False)
    await client.drain_refreshes()
    assert origin.requests[-1].headers["If-None-Match"] == '"v1"'
    assert client.cache.stats.revalidations == 1
    fresh = await client.get(origin("/etag"))
    assert (fresh.from_cache, fresh.stale) == (True, False)
    assert fresh.json() == {"version": 1}
    assert origin.hits["/etag"] == 2


async def test_close_waits_for_background_refreshes(origin, client_factory):
    url = origin.http("closing", cc="max-age=1, stale-while-revalidate=60", age="10")
    client = client_factory(cache_control=True)
    await client.get(url)
    await client.get(url)
    tasks = client.pending_refreshes
    assert len(tasks) == 1
    assert not tasks[0].done()
    await client.close()
    assert all(task.done() and not task.cancelled() for task in tasks)
    assert client.pending_refreshes == ()
    assert origin.hits["/http/closing"] == 2


async def test_stale_if_error_on_a_500(origin, client_factory):
    client = client_factory(cache_control=True)
    url = origin.http("sie", cc="max-age=1, stale-if-error=60", age="10")
    forbidden = origin.http(
        "sie-mr", cc="max-age=1, stale-if-error=60, must-revalidate", etag='"m"', age="10"
    )
    await client.get(url)
    await client.get(forbidden)
    origin.force_status.update({"sie": 500, "sie-mr": 500})
    stale = await client.get(url)
    assert stale.status == 200
    assert (stale.from_cache, stale.stale) == (True, True)
    assert stale.json()["count"] == 1
    # must-revalidate forbids serving stale: the 500 comes through.
    failed = await client.get(forbidden)
    assert failed.status == 500
    assert failed.from_cache is False
    assert origin.answered[-2:] == [("/http/sie", 500), ("/http/sie-mr", 500)]
    assert client.cache.stats.stale == 1


@pytest.mark.parametrize("status", [500, 503])
async def test_stale_if_error_setting_within_and_beyond_its_window(
    origin, client_factory, clock, status
):
    client = client_factory(expire_after=10, stale_if_error=60)
    url = origin.http("sie-window")
    await client.get(url)
    origin.force_status["sie-window"] = status
    clock.advance(10 + 30)
    stale = await client.get(url)
    assert (stale.status, stale.from_cache, stale.stale) == (200, True, True)
    assert stale.json()["count"] == 1
    clock.advance(31)  # now stale by 61 s, past the 60 s window
    failed = await client.get(url)
    assert (failed.status, failed.from_cache) == (status, False)
    assert origin.answered == [("/http/sie-window", 200)] + [("/http/sie-window", status)] * 2
    assert client.cache.stats.stale == 1


async def test_stale_if_error_any_staleness_and_none(origin, client_factory, clock):
    anytime = client_factory(expire_after=10, stale_if_error=True)
    never = client_factory(expire_after=10)
    await anytime.get(origin.http("sie-any"))
    await never.get(origin.http("sie-off"))
    origin.force_status.update({"sie-any": 503, "sie-off": 503})
    clock.advance(365 * 86400)
    stale = await anytime.get(origin.http("sie-any"))
    assert (stale.status, stale.from_cache, stale.stale) == (200, True, True)
    assert (await never.get(origin.http("sie-off"))).status == 503


@asynccontextmanager
async def short_lived_origin(headers: dict[str, str]) -> AsyncIterator[str]:
    """A second real server, stopped when the block ends: its port then refuses."""

    async def handler(request: web.Request) -> web.Response:
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


async def test_stale_if_error_on_a_refused_connection(make_backend, make_client):
    window = make_client(make_backend(cache_control=True, stale_if_error=60))
    # Without a window the stale entry is still stored (it has a validator) but not used.
    no_window = make_client(make_backend(cache_control=True))
    # Ten seconds old, fresh for one: stale on arrival, kept for its validator.
    stale_on_arrival = {"Cache-Control": "max-age=1", "Age": "10", "ETag": '"alive"'}
    async with short_lived_origin(stale_on_arrival) as url:
        await window.get(url)
        await no_window.get(url)
    assert refuses(url)
    assert await no_window.cache.has_url(url) is True
    stale = await window.get(url)
    assert (stale.status, stale.from_cache, stale.stale) == (200, True, True)
    assert stale.json() == {"alive": True}
    with pytest.raises(no_window.network_errors):
        await no_window.get(url)


async def test_stale_if_error_window_on_a_refused_connection(make_backend, make_client, clock):
    client = make_client(make_backend(expire_after=10, stale_if_error=60))
    async with short_lived_origin({"ETag": '"alive"'}) as url:
        await client.get(url)
    assert refuses(url)
    clock.advance(10 + 59)
    stale = await client.get(url)
    assert (stale.status, stale.from_cache, stale.stale) == (200, True, True)
    clock.advance(2)  # past the window
    with pytest.raises(client.network_errors):
        await client.get(url)
    assert client.cache.stats.stale == 1
