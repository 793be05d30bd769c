"""Unsafe methods invalidate the URL's entries (RFC 9111 §4.4); failed ones do not."""

from __future__ import annotations

import pytest


@pytest.mark.parametrize("method", ["POST", "PUT", "PATCH", "DELETE"])
async def test_unsafe_method_invalidates_the_cached_get(origin, client_factory, method):
    client = client_factory()
    await client.get(origin("/json"))
    assert (await client.get(origin("/json"))).from_cache is True
    changed = await client.request(method, origin("/json"), json={"changed": True})
    assert (changed.status, changed.from_cache) == (200, False)
    assert await client.cache.has_url(origin("/json")) is False
    after = await client.get(origin("/json"))
    assert after.from_cache is False
    assert after.json()["count"] == 3  # the first GET, the unsafe request, this GET
    assert client.cache.stats.invalidations == 1
    assert origin.hits["/json"] == 3


async def test_failed_unsafe_requests_invalidate_nothing(origin, client_factory):
    client = client_factory()
    url = origin.http("inv")
    await client.get(url)
    origin.force_status["inv"] = 500
    assert (await client.post(url)).status == 500
    assert (await client.request("DELETE", url)).status == 500
    hit = await client.get(url)
    assert hit.from_cache is True
    assert hit.json()["count"] == 1
    await client.request("DELETE", origin("/status/500"))  # another URL, failing: no effect
    assert (await client.get(url)).from_cache is True
    assert client.cache.stats.invalidations == 0


async def test_location_on_the_same_origin_is_invalidated(origin, client_factory):
    client = client_factory()
    await client.get(origin("/json"))
    await client.get(origin("/text"))
    await client.post(origin.http("create", status="201", location="/json"))
    assert (await client.get(origin("/json"))).from_cache is False
    assert (await client.get(origin("/text"))).from_cache is True
    assert origin.hits["/json"] == 2


async def test_post_invalidates_every_variant(origin, client_factory):
    client = client_factory(cache_control=True)
    url = origin.http("variants", cc="max-age=600", vary="Accept")
    for accept in ("a/json", "b/html"):
        await client.get(url, headers={"Accept": accept})
        assert (await client.get(url, headers={"Accept": accept})).from_cache is True
    await client.request("PUT", url)
    for accept in ("a/json", "b/html"):
        assert (await client.get(url, headers={"Accept": accept})).from_cache is False
    assert origin.hits["/http/variants"] == 5


async def test_an_authenticated_unsafe_request_invalidates_its_own_entry(origin, client_factory):
    client = client_factory()
    alice = {"Authorization": "Bearer alice"}
    await client.get(origin("/json"), headers=alice)
    await client.get(origin("/json"))
    assert (await client.get(origin("/json"), headers=alice)).from_cache is True
    await client.post(origin("/json"), headers=alice)
    assert (await client.get(origin("/json"), headers=alice)).from_cache is False
    assert (await client.get(origin("/json"))).from_cache is False
