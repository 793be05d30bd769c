"""``max_body_size``: a response above it streams to the caller, whole, and is not stored.

With a declared ``Content-Length`` the flow decides before reading; a body of unknown
length (chunked) is kept while the caller reads it and given up on past the limit; a
content-encoded body is read bounded, since its decoded size is not the declared one.
Every body is checked byte for byte against what the origin sent.
"""

from __future__ import annotations

import pytest

LIMIT = 256 * 1024


async def test_a_declared_length_above_the_limit_streams_uncached(origin, client_factory):
    client = client_factory(max_body_size=LIMIT)
    url = origin.stream(LIMIT + 1)
    first = await client.get(url)
    second = await client.get(url)
    assert first.body == second.body == origin.pattern(LIMIT + 1)
    assert (first.from_cache, second.from_cache) == (False, False)
    assert origin.hits["/stream"] == 2
    stats = client.cache.stats
    assert (stats.too_large, stats.not_stored, stats.writes) == (2, 2, 0)


@pytest.mark.parametrize("declared", [1, 0], ids=["content-length", "chunked"])
async def test_a_body_at_the_limit_is_stored(origin, client_factory, declared):
    client = client_factory(max_body_size=LIMIT)
    url = origin.stream(LIMIT, cl=declared, chunk=16384)
    miss = await client.get(url)
    hit = await client.get(url)
    assert miss.body == hit.body == origin.pattern(LIMIT)
    assert (miss.from_cache, hit.from_cache) == (False, True)
    assert origin.hits["/stream"] == 1
    assert client.cache.stats.too_large == 0


async def test_a_body_of_unknown_length_past_the_limit_is_given_up(origin, client_factory):
    client = client_factory(max_body_size=LIMIT)
    url = origin.stream(LIMIT + 1, cl=0, chunk=8192)
    first = await client.get(url)
    second = await client.get(url)
    assert first.body == second.body == origin.pattern(LIMIT + 1)
    assert (first.from_cache, second.from_cache) == (False, False)
    stats = client.cache.stats
    assert (stats.too_large, stats.writes) == (2, 0)


@pytest.mark.parametrize("declared", [1, 0], ids=["content-length", "chunked"])
async def test_a_decoded_body_past_the_limit_is_served_whole_and_not_stored(
    origin, client_factory, declared
):
    # A few KiB on the wire, four times the limit once decoded (a small gzip bomb).
    client = client_factory(max_body_size=LIMIT)
    url = origin.stream(4 * LIMIT, gzip=1, cl=declared)
    first = await client.get(url)
    second = await client.get(url)
    assert first.body == second.body == origin.pattern(4 * LIMIT)
    assert (first.from_cache, second.from_cache) == (False, False)
    assert client.cache.stats.too_large == 2


@pytest.mark.parametrize("declared", [1, 0], ids=["content-length", "chunked"])
async def test_a_decoded_body_within_the_limit_is_stored_decoded(origin, client_factory, declared):
    client = client_factory(max_body_size=LIMIT)
    url = origin.stream(LIMIT // 2, gzip=1, cl=declared)
    miss = await client.get(url)
    hit = await client.get(url)
    assert miss.body == hit.body == origin.pattern(LIMIT // 2)
    assert hit.from_cache is True
    assert "Content-Encoding" not in hit.headers
    assert hit.headers["Content-Length"] == str(LIMIT // 2)


async def test_no_limit_stores_any_size(origin, client_factory):
    client = client_factory(max_body_size=None)
    url = origin.stream(4 * LIMIT, cl=0)
    await client.get(url)
    hit = await client.get(url)
    assert hit.from_cache is True
    assert hit.body == origin.pattern(4 * LIMIT)


async def test_the_default_limit_is_sixteen_mebibytes(origin, client_factory):
    client = client_factory()
    assert client.cache.settings.max_body_size == 16 * 1024 * 1024
    url = origin.stream(16 * 1024 * 1024 + 1)
    response = await client.get(url)
    assert len(response.body) == 16 * 1024 * 1024 + 1
    assert client.cache.stats.too_large == 1
