"""HTTP freshness (RFC 9111) with ``cache_control=True``: max-age, Expires, Vary, heuristics.

The ``/http/{name}`` route of the origin sends the headers its query names (see
tests/conftest.py), so each test states the response it caches in its URL. Staleness
comes from an ``Age`` header or from the clock, never from sleeping.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from email.utils import format_datetime

import pytest

from acc.core import DO_NOT_CACHE


async def test_max_age_beats_a_longer_session_expire_after(origin, client_factory, clock):
    client = client_factory(cache_control=True, expire_after=3600)
    short = await client.get(origin.http("short", cc="max-age=100"))
    assert 90 < short.seconds_left(clock()) <= 100
    assert (await client.get(origin.http("short", cc="max-age=100"))).from_cache is True
    clock.advance(101)
    assert (await client.get(origin.http("short", cc="max-age=100"))).from_cache is False
    # max-age=60 on a response already 60 s old (Age): stale on arrival, so not kept,
    # although the session's expire_after would keep it an hour.
    url = origin.http("aged", cc="max-age=60", age="60")
    await client.get(url)
    again = await client.get(url)
    assert again.from_cache is False
    assert origin.hits["/http/short"] == 2
    assert origin.hits["/http/aged"] == 2


async def test_without_cache_control_headers_are_ignored(origin, client_factory, clock):
    client = client_factory(expire_after=3600)
    url = origin.http("ignored", cc="no-store, max-age=0", expires="0")
    first = await client.get(url)
    assert 3590 < first.seconds_left(clock()) <= 3600
    assert (await client.get(url)).from_cache is True
    assert origin.hits["/http/ignored"] == 1


@pytest.mark.parametrize("expires", ["0", "not a date"])
async def test_expires_zero_or_invalid_is_already_stale(origin, client_factory, expires):
    client = client_factory(cache_control=True, expire_after=3600)
    url = origin.http("expires", expires=expires)
    await client.get(url)
    second = await client.get(url)
    assert second.from_cache is False
    assert await client.cache.has_url(url) is False
    assert origin.hits["/http/expires"] == 2


async def test_a_future_expires_header_sets_freshness(origin, client_factory, clock):
    client = client_factory(cache_control=True)
    moment = clock() + timedelta(minutes=10)
    url = origin.http("expires-future", expires=format_datetime(moment, usegmt=True))
    first = await client.get(url)
    assert 590 < first.seconds_left(clock()) <= 600
    assert (await client.get(url)).from_cache is True
    clock.advance(601)
    assert (await client.get(url)).from_cache is False
    assert origin.hits["/http/expires-future"] == 2


async def test_vary_keeps_variants_apart(origin, make_backend, make_client):
    backend = make_backend(cache_control=True, autoclose=False)
    client = make_client(backend)
    url = origin.http("vary", cc="max-age=600", vary="Accept")
    counts: dict[str, int] = {}
    served: list[bool] = []
    for accept in ("application/json", "text/html", "application/json", "text/html"):
        response = await client.get(url, headers={"Accept": accept})
        body = response.json()
        assert body["accept"] == accept
        counts.setdefault(accept, body["count"])
        assert body["count"] == counts[accept]
        served.append(response.from_cache)
    assert served == [False, False, True, True]
    assert origin.hits["/http/vary"] == 2
    assert client.cache.stats.hits == 2
    # The client's default headers count as the request's: same variant as the explicit one.
    other = make_client(backend, headers={"Accept": "text/html"})
    from_defaults = await other.get(url)
    assert from_defaults.from_cache is True
    assert from_defaults.json()["accept"] == "text/html"
    assert origin.hits["/http/vary"] == 2


async def test_vary_star_is_never_served_from_cache(origin, client_factory):
    client = client_factory(cache_control=True)
    url = origin.http("star", cc="max-age=600", vary="*")
    await client.get(url)
    assert (await client.get(url)).from_cache is False
    assert origin.hits["/http/star"] == 2


async def test_heuristic_freshness_from_last_modified(origin, client_factory, clock):
    modified = datetime.now(timezone.utc) - timedelta(hours=5)
    stamp = format_datetime(modified, usegmt=True)
    # Heuristic freshness is the response's own: it beats the session's 5 seconds.
    client = client_factory(cache_control=True, expire_after=5)
    url = origin.http("heuristic", lm=stamp)
    first = await client.get(url)
    assert 29 * 60 < first.seconds_left(clock()) <= 30 * 60 + 1  # 10% of 5 hours
    assert (await client.get(url)).from_cache is True
    # A status that is not heuristically cacheable falls back to the settings.
    created = origin.http("heuristic201", lm=stamp, status="201")
    other = client_factory(cache_control=True, expire_after=5, allowed_codes=(201,))
    assert 0 < (await other.get(created)).seconds_left(clock()) <= 5
    assert origin.hits["/http/heuristic"] == 1


async def test_response_no_store_and_per_request_do_not_cache(origin, client_factory):
    client = client_factory(cache_control=True)
    url = origin.http("no-store", cc="no-store, max-age=600")
    await client.get(url)
    assert (await client.get(url)).from_cache is False
    # The response's max-age outranks a per-request expire_after (the precedence).
    ranked = origin.http("ranked", cc="max-age=600")
    await client.get(ranked, expire_after=DO_NOT_CACHE)
    assert (await client.get(ranked)).from_cache is True
    assert origin.hits["/http/no-store"] == 2
    assert origin.hits["/http/ranked"] == 1
