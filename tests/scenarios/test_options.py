"""The per-request options: refresh, force_refresh, only_if_cached."""

from __future__ import annotations

from datetime import timedelta


async def test_refresh_revalidates_with_etag(origin, client_factory, clock):
    client = client_factory()
    first = await client.get(origin("/etag"))
    assert first.json() == {"version": 1}
    clock.advance(1)
    revalidated = await client.get(origin("/etag"), refresh=True)
    assert revalidated.status == 200
    assert (revalidated.from_cache, revalidated.revalidated) == (True, True)
    assert revalidated.body == first.body
    assert revalidated.headers["X-Checked"] == "yes"  # the 304's headers are merged
    assert revalidated.created_at == first.created_at + timedelta(seconds=1)
    assert origin.requests[-1].headers["If-None-Match"] == '"v1"'
    origin.etag_version = 2
    changed = await client.get(origin("/etag"), refresh=True)
    assert (changed.from_cache, changed.revalidated) == (False, False)
    assert changed.json() == {"version": 2}
    assert origin.requests[-1].headers["If-None-Match"] == '"v1"'
    hit = await client.get(origin("/etag"))
    assert (hit.from_cache, hit.revalidated) == (True, False)
    assert hit.json() == {"version": 2}
    assert origin.hits["/etag"] == 3
    await client.cache.flush()
    stats = client.cache.stats
    assert (stats.revalidations, stats.hits, stats.misses, stats.writes) == (1, 2, 2, 3)


async def test_refresh_with_last_modified(origin, client_factory):
    client = client_factory()
    await client.get(origin("/last-modified"))
    checked = await client.get(origin("/last-modified"), refresh=True)
    assert (checked.from_cache, checked.revalidated) == (True, True)
    assert checked.body == b"dated"
    assert origin.requests[-1].headers["If-Modified-Since"] == "Wed, 21 Oct 2015 07:28:00 GMT"
    assert origin.hits["/last-modified"] == 2
    assert client.cache.stats.revalidations == 1


async def test_refresh_without_validators_fetches_again(origin, client_factory):
    client = client_factory()
    await client.get(origin("/json"))
    refetched = await client.get(origin("/json"), refresh=True)
    assert (refetched.from_cache, refetched.revalidated) == (False, False)
    assert refetched.json()["count"] == 2
    assert "If-None-Match" not in origin.requests[-1].headers
    assert "If-Modified-Since" not in origin.requests[-1].headers
    hit = await client.get(origin("/json"))
    assert hit.from_cache
    assert hit.json()["count"] == 2


async def test_force_refresh_fetches_and_stores(origin, client_factory, clock):
    client = client_factory()
    await client.get(origin("/etag"))
    await client.get(origin("/json"))
    clock.advance(5)
    forced = await client.get(origin("/json"), force_refresh=True)
    assert forced.from_cache is False
    assert forced.json()["count"] == 2
    hit = await client.get(origin("/json"))
    assert hit.from_cache
    assert hit.json()["count"] == 2
    assert hit.created_at == forced.created_at == clock()
    # Even with validators at hand, force_refresh asks unconditionally.
    forced_etag = await client.get(origin("/etag"), force_refresh=True)
    assert forced_etag.status == 200
    assert (forced_etag.from_cache, forced_etag.revalidated) == (False, False)
    assert "If-None-Match" not in origin.requests[-1].headers
    assert origin.hits["/json"] == 2
    await client.cache.flush()
    assert client.cache.stats.writes == 4


async def test_only_if_cached(origin, client_factory):
    client = client_factory()
    miss = await client.get(origin("/json"), only_if_cached=True)
    assert (miss.status, miss.from_cache) == (504, False)
    assert origin.total == 0
    await client.get(origin("/json"))
    hit = await client.get(origin("/json"), only_if_cached=True)
    assert (hit.status, hit.from_cache) == (200, True)
    assert hit.json()["count"] == 1
    # A request the cache does not handle never goes to the network either.
    not_allowed = await client.post(origin("/echo"), only_if_cached=True)
    assert not_allowed.status == 504
    assert origin.total == 1
    assert client.cache.stats.gateway_timeouts == 2


async def test_only_if_cached_with_a_stale_entry_is_a_504(origin, client_factory, clock):
    client = client_factory(expire_after=10)
    await client.get(origin("/etag"))
    clock.advance(11)
    stale = await client.get(origin("/etag"), only_if_cached=True)
    assert stale.status == 504
    assert origin.hits["/etag"] == 1
