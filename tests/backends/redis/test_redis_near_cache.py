"""``near_cache=`` on a real Redis: hot keys are served from process memory, for a bounded time."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta, timezone

from redis.asyncio import Redis

from acc.backends.redis import RedisBackend
from acc.core.storage.near import NearCache
from acc.sessions.aiohttp import CachedSession


async def test_hits_come_from_memory_and_another_process_change_shows_after_max_age(
    origin, redis_url: str
) -> None:
    name = f"near-{uuid.uuid4().hex[:10]}"
    moments = [datetime.now(timezone.utc)]  # the backend's clock: the test moves it
    backend = RedisBackend(
        name,
        url=redis_url,
        near_cache={"max_age": 0.5},
        autoclose=False,
        clock=lambda: moments[0],
    )
    assert isinstance(backend.responses, NearCache)
    raw = Redis.from_url(redis_url)
    try:
        async with CachedSession(cache=backend) as session:
            first = await session.get(origin("/json"))
            assert first.from_cache is False
            assert await raw.exists(f"{name}:responses:{first.cache_key}") == 1
            second = await session.get(origin("/json"))
            assert second.from_cache is True
            assert backend.responses.local_hits == 1  # no round trip to Redis

            # Another process clears the cache: this one may serve its copy up to max_age ...
            await raw.delete(f"{name}:responses:{first.cache_key}")
            third = await session.get(origin("/json"))
            assert third.from_cache is True
            assert origin.hits["/json"] == 1
            # ... and no longer.
            moments[0] += timedelta(seconds=0.6)
            fourth = await session.get(origin("/json"))
            assert fourth.from_cache is False
            assert origin.hits["/json"] == 2
    finally:
        await raw.aclose()
        await backend.clear()  # the server may be shared (ACC_REDIS_URL)
        await backend.close()


async def test_a_write_or_delete_in_this_process_is_seen_at_once(origin, redis_url: str) -> None:
    name = f"near-{uuid.uuid4().hex[:10]}"
    backend = RedisBackend(name, url=redis_url, near_cache=True, autoclose=False)
    try:
        async with CachedSession(cache=backend) as session:
            first = await session.get(origin("/json"))
            assert (await session.get(origin("/json"))).from_cache is True
            assert first.cache_key is not None
            await backend.delete(first.cache_key)
            again = await session.get(origin("/json"))
            assert again.from_cache is False
        assert origin.hits["/json"] == 2
    finally:
        await backend.clear()  # the server may be shared (ACC_REDIS_URL)
        await backend.close()
