"""Every form of expiration, and their precedence, with the clock moved instead of sleeping."""

from __future__ import annotations

from datetime import timedelta, timezone

import pytest

from acc.core import DO_NOT_CACHE, NEVER_EXPIRE, ConfigError


@pytest.mark.parametrize(
    "expire_after", [10, 10.0, timedelta(seconds=10)], ids=["int", "float", "timedelta"]
)
async def test_relative_expiration(origin, client_factory, clock, expire_after):
    client = client_factory(expire_after=expire_after)
    first = await client.get(origin("/json"))
    assert first.created_at == clock()
    assert first.expires == clock() + timedelta(seconds=10)
    clock.advance(9.9)
    hit = await client.get(origin("/json"))
    assert (hit.from_cache, hit.stale) == (True, False)
    assert hit.json()["count"] == 1
    clock.advance(0.1)  # expired from the moment it expires
    again = await client.get(origin("/json"))
    assert again.from_cache is False
    assert again.json()["count"] == 2
    assert again.expires == clock() + timedelta(seconds=10)
    assert (await client.get(origin("/json"))).from_cache is True
    assert origin.hits["/json"] == 2
    await client.cache.flush()
    stats = client.cache.stats
    assert (stats.hits, stats.misses, stats.writes) == (2, 2, 2)


async def test_fractional_seconds(origin, client_factory, clock):
    client = client_factory(expire_after=0.5)
    await client.get(origin("/json"))
    clock.advance(0.4)
    assert (await client.get(origin("/json"))).from_cache is True
    clock.advance(0.1)
    assert (await client.get(origin("/json"))).from_cache is False


@pytest.mark.parametrize("aware", [True, False], ids=["aware", "naive-utc"])
async def test_absolute_datetime_expiration(origin, client_factory, clock, aware):
    moment = clock() + timedelta(seconds=10)
    value = moment if aware else moment.replace(tzinfo=None)
    client = client_factory(expire_after=value)
    first = await client.get(origin("/json"))
    assert first.expires is not None
    assert abs((first.expires - moment).total_seconds()) < 0.001
    clock.advance(9)
    hit = await client.get(origin("/json"))
    assert hit.from_cache
    assert hit.expires == first.expires
    clock.advance(1)
    assert (await client.get(origin("/json"))).from_cache is False
    assert origin.hits["/json"] == 2


async def test_aware_datetime_in_another_zone_is_correct_to_the_minute(
    origin, client_factory, clock
):
    zone = timezone(timedelta(hours=-5))
    moment = clock().astimezone(zone) + timedelta(hours=3)
    client = client_factory(expire_after=moment)
    await client.get(origin("/json"))
    hit = await client.get(origin("/json"))
    assert hit.from_cache
    assert hit.expires is not None
    assert hit.expires.tzinfo is not None
    assert abs((hit.expires - moment).total_seconds()) < 60
    assert abs(hit.seconds_left(clock()) - 3 * 3600) < 60


async def test_never_expire(origin, client_factory, clock):
    client = client_factory(expire_after=NEVER_EXPIRE)
    await client.get(origin("/json"))
    clock.advance(10 * 365 * 86400)
    hit = await client.get(origin("/json"))
    assert (hit.from_cache, hit.stale) == (True, False)
    assert hit.expires is None
    assert origin.hits["/json"] == 1


@pytest.mark.parametrize(
    "expire_after",
    [DO_NOT_CACHE, 0, 0.0, timedelta(0), "past"],
    ids=["DO_NOT_CACHE", "0", "0.0", "timedelta0", "past-datetime"],
)
async def test_expirations_that_store_nothing(origin, client_factory, clock, expire_after):
    if expire_after == "past":
        expire_after = clock() - timedelta(seconds=1)
    client = client_factory(expire_after=expire_after)
    first = await client.get(origin("/json"))
    assert (first.status, first.from_cache) == (200, False)
    second = await client.get(origin("/json"))
    assert second.from_cache is False
    assert second.json()["count"] == 2
    stats = client.cache.stats
    assert (stats.writes, stats.misses, stats.not_stored, stats.hits) == (0, 2, 2, 0)
    assert await client.cache.has_url(origin("/json")) is False


async def test_per_request_expire_after(origin, client_factory, clock):
    client = client_factory(expire_after=NEVER_EXPIRE)
    await client.get(origin("/json"), expire_after=0)
    assert (await client.get(origin("/json"), expire_after=DO_NOT_CACHE)).from_cache is False
    assert client.cache.stats.writes == 0
    stored = await client.get(origin("/json"), expire_after=timedelta(seconds=30))
    assert stored.expires == clock() + timedelta(seconds=30)
    clock.advance(29)
    hit = await client.get(origin("/json"))
    assert hit.from_cache
    assert hit.expires == stored.expires
    clock.advance(1)
    assert (await client.get(origin("/json"))).from_cache is False
    never = client_factory(expire_after=DO_NOT_CACHE)
    await never.get(origin("/text"), expire_after=60)
    assert (await never.get(origin("/text"))).from_cache is True
    assert origin.hits["/json"] == 4
    assert origin.hits["/text"] == 1


async def test_per_request_expire_after_beats_url_patterns_and_session(
    origin, client_factory, clock
):
    client = client_factory(
        expire_after=3600,
        urls_expire_after={"127.0.0.1:*/json": DO_NOT_CACHE, "127.0.0.1": 60},
    )
    await client.get(origin("/json"))
    assert (await client.get(origin("/json"))).from_cache is False  # pattern: do not cache
    await client.get(origin("/text"))  # second pattern: 60 s, not the session's hour
    text_hit = await client.get(origin("/text"))
    assert text_hit.from_cache
    assert text_hit.seconds_left(clock()) == pytest.approx(60, abs=0.01)
    await client.get(origin("/json"), expire_after=120)  # the request beats the patterns
    json_hit = await client.get(origin("/json"))
    assert json_hit.from_cache
    assert json_hit.seconds_left(clock()) == pytest.approx(120, abs=0.01)
    # The first matching pattern wins, in the order given.
    reordered = client_factory(
        expire_after=3600,
        urls_expire_after={"127.0.0.1": 60, "127.0.0.1:*/json": DO_NOT_CACHE},
    )
    await reordered.get(origin("/json"))
    reordered_hit = await reordered.get(origin("/json"))
    assert reordered_hit.from_cache
    assert reordered_hit.seconds_left(clock()) == pytest.approx(60, abs=0.01)
    # A URL no pattern matches gets the session's expiration.
    other = client_factory(expire_after=3600, urls_expire_after={"example.invalid": 60})
    await other.get(origin("/json"))
    assert (await other.get(origin("/json"))).seconds_left(clock()) == pytest.approx(3600, abs=0.01)
    assert origin.hits["/json"] == 5
    assert origin.hits["/text"] == 1


async def test_invalid_per_request_expire_after_raises_config_error(origin, client_factory):
    client = client_factory()
    with pytest.raises(ConfigError, match=r"^expire_after"):
        await client.get(origin("/json"), expire_after="soon")
    assert origin.total == 0
