"""Stale entries with validators are revalidated: ETag, Last-Modified, no-cache, directives."""

from __future__ import annotations

import pytest


async def test_expired_entry_is_revalidated_with_etag(origin, client_factory, clock):
    client = client_factory(expire_after=60)
    first = await client.get(origin("/etag"))
    clock.advance(61)
    again = await client.get(origin("/etag"))
    assert again.status == 200
    assert (again.from_cache, again.revalidated, again.stale) == (True, True, False)
    assert again.body == first.body
    assert again.headers["X-Checked"] == "yes"
    assert origin.requests[-1].headers["If-None-Match"] == '"v1"'
    assert again.created_at == clock()
    assert again.seconds_left(clock()) == pytest.approx(60, abs=0.01)  # fresh again
    hit = await client.get(origin("/etag"))
    assert (hit.from_cache, hit.revalidated) == (True, False)
    assert origin.hits["/etag"] == 2
    # The resource changes: the next revalidation gets a full response, which is stored.
    origin.etag_version = 2
    clock.advance(61)
    changed = await client.get(origin("/etag"))
    assert (changed.from_cache, changed.revalidated) == (False, False)
    assert changed.json() == {"version": 2}
    assert (await client.get(origin("/etag"))).json() == {"version": 2}
    assert origin.hits["/etag"] == 3
    stats = client.cache.stats
    assert (stats.revalidations, stats.hits, stats.misses) == (1, 3, 2)


async def test_expired_entry_is_revalidated_with_last_modified(origin, client_factory, clock):
    client = client_factory(expire_after=60)
    await client.get(origin("/last-modified"))
    clock.advance(120)
    again = await client.get(origin("/last-modified"))
    assert (again.from_cache, again.revalidated, again.stale) == (True, True, False)
    assert again.body == b"dated"
    assert origin.requests[-1].headers["If-Modified-Since"] == "Wed, 21 Oct 2015 07:28:00 GMT"
    assert (await client.get(origin("/last-modified"))).revalidated is False
    assert origin.hits["/last-modified"] == 2
    assert client.cache.stats.revalidations == 1


async def test_expired_entry_without_validators_is_fetched_again(origin, client_factory, clock):
    client = client_factory(expire_after=60)
    await client.get(origin("/json"))
    clock.advance(61)
    again = await client.get(origin("/json"))
    assert (again.from_cache, again.revalidated) == (False, False)
    assert again.json()["count"] == 2
    assert "If-None-Match" not in origin.requests[-1].headers
    assert client.cache.stats.revalidations == 0


async def test_stale_entry_with_etag_is_revalidated_by_a_304(origin, client_factory, clock):
    client = client_factory(cache_control=True)
    # Two minutes old with max-age=60: stale on arrival, kept for its validator.
    url = origin.http("etag", cc="max-age=60", etag='W/"v1"', age="120")
    first = await client.get(url)
    assert await client.cache.has_url(url) is True
    refreshed = await client.get(url)
    assert (refreshed.from_cache, refreshed.revalidated, refreshed.stale) == (True, True, False)
    assert refreshed.body == first.body
    assert 50 < refreshed.seconds_left(clock()) <= 60  # freshness refreshed by the 304
    assert origin.requests[-1].headers["If-None-Match"] == 'W/"v1"'
    hit = await client.get(url)
    assert (hit.from_cache, hit.revalidated) == (True, False)
    assert origin.answered == [("/http/etag", 200), ("/http/etag", 304)]
    assert client.cache.stats.revalidations == 1


async def test_response_no_cache_is_revalidated_before_every_use(origin, client_factory):
    client = client_factory(cache_control=True)
    url = origin.http("no-cache", cc="no-cache", etag='"nc1"')
    first = await client.get(url)
    assert first.from_cache is False
    for _ in range(2):
        again = await client.get(url)
        assert (again.from_cache, again.revalidated) == (True, True)
        assert again.json()["count"] == 1  # the stored body
    assert origin.answered == [
        ("/http/no-cache", 200),
        ("/http/no-cache", 304),
        ("/http/no-cache", 304),
    ]


async def test_request_directives(origin, client_factory, clock):
    client = client_factory(cache_control=True)
    url = origin.http("req", cc="max-age=600", etag='"r"')
    await client.get(url)
    no_cache = await client.get(url, headers={"Cache-Control": "No-Cache"})
    assert no_cache.revalidated is True
    pragma = await client.get(url, headers={"Pragma": "no-cache"})
    assert pragma.revalidated is True
    # A max-age smaller than the entry's age needs validation too.
    clock.advance(1)
    young = await client.get(url, headers={"Cache-Control": "max-age=0"})
    assert young.revalidated is True
    relaxed = await client.get(url, headers={"cache-control": "max-age=600"})
    assert (relaxed.from_cache, relaxed.revalidated) == (True, False)
    stored_no = origin.http("req-no-store", cc="max-age=600")
    await client.get(stored_no, headers={"Cache-Control": "no-store"})
    assert await client.cache.has_url(stored_no) is False
    assert [status for path, status in origin.answered if path == "/http/req"] == [
        200,
        304,
        304,
        304,
    ]


async def test_request_only_if_cached_gives_504_without_the_network(origin, client_factory):
    client = client_factory(cache_control=True)
    url = origin.http("oic", cc="max-age=600")
    headers = {"Cache-Control": "only-if-cached"}
    missing = await client.get(url, headers=headers)
    assert missing.status == 504
    assert origin.total == 0
    await client.get(url)
    cached = await client.get(url, headers=headers)
    assert (cached.status, cached.from_cache) == (200, True)
    assert origin.total == 1


async def test_immutable_is_not_revalidated_on_refresh(origin, client_factory):
    client = client_factory(cache_control=True)
    url = origin.http("immutable", cc="max-age=600, immutable", etag='"i"')
    await client.get(url)
    again = await client.get(url, refresh=True)
    assert (again.from_cache, again.revalidated) == (True, False)
    mutable = origin.http("mutable", cc="max-age=600", etag='"m"')
    await client.get(mutable)
    assert (await client.get(mutable, refresh=True)).revalidated is True
    assert origin.hits["/http/immutable"] == 1
    assert origin.answered[-1] == ("/http/mutable", 304)
