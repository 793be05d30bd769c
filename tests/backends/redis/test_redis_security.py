"""Hostile values in a real Redis server (issue 12, item 2): what another client wrote
under an entry's key is a miss, never an error, and the fresh response takes its place."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import pytest
from redis.asyncio import Redis

from acc.backends.redis import RedisBackend
from acc.core import CachedResponse, CacheRequest

URL = "https://example.com/items?page=1"


@pytest.fixture
async def raw(redis_url: str) -> AsyncIterator[Redis]:
    client = Redis.from_url(redis_url)
    yield client
    await client.aclose()


@pytest.fixture
async def backend(redis_url: str) -> AsyncIterator[RedisBackend]:
    cache = RedisBackend(f"security-{uuid.uuid4().hex[:12]}", url=redis_url)
    yield cache
    await cache.clear()
    await cache.close()


async def _send(request: CacheRequest) -> CachedResponse:
    return CachedResponse(200, "OK", request.url, "GET", body=b"fresh body")


async def _hostile_string(backend: RedisBackend, key: str) -> bytes:
    entry = CachedResponse(200, "OK", "http://[", "GET", body=b"hostile")
    return backend.codec.encode(entry, key=key)


@pytest.mark.parametrize("kind", ["bracket-url-entry", "junk", "empty", "hash", "list"])
async def test_a_hostile_value_is_a_miss_and_is_replaced(
    backend: RedisBackend, raw: Redis, kind: str
) -> None:
    request = CacheRequest("GET", URL)
    key = backend.create_key(request)
    redis_key = backend.responses.redis_key(key)  # type: ignore[attr-defined]
    if kind == "bracket-url-entry":
        await raw.set(redis_key, await _hostile_string(backend, key))
    elif kind == "junk":
        await raw.set(redis_key, b"\x00junk")
    elif kind == "empty":
        await raw.set(redis_key, b"")
    elif kind == "hash":  # another Redis type: GET answers WRONGTYPE
        await raw.hset(redis_key, "field", "value")
    else:
        await raw.rpush(redis_key, "a", "b")
    result = await backend.fetch(request, _send)
    assert result.from_cache is False
    assert result.response.body == b"fresh body"
    assert backend.stats.errors == 1
    again = await backend.fetch(request, _send)
    assert again.from_cache is True
    assert again.response.body == b"fresh body"
