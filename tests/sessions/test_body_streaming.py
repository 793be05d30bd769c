"""Bodies stream to the caller as they come: acc never reads ahead of it (``max_body_size``).

The origin's ``/stream?gate=1`` sends its first chunk, then waits for ``origin.gate``:
a caller that gets the first chunk while the gate is still shut was not made to wait for
the whole body. A body of unknown length is stored only once the caller has read all of
it; one the caller stops reading is not stored, and nothing is left hanging.
"""

from __future__ import annotations

import asyncio

import httpx
import pytest

from acc.core import CacheBackend
from acc.sessions.aiohttp import CachedSession
from acc.sessions.httpx import CachedClient

CHUNK = 4096
LIMIT = 64 * 1024
WAIT = 30.0  # seconds: generous, for a loaded machine; the tests wait on events


@pytest.mark.parametrize(
    ("size", "declared"),
    [(3 * CHUNK, 0), (LIMIT + CHUNK, 1)],
    ids=["unknown-length", "declared-above-limit"],
)
async def test_aiohttp_streams_without_reading_ahead(origin, size, declared):
    url = origin.stream(size, cl=declared, chunk=CHUNK, gate=1)
    async with CachedSession(cache=CacheBackend(max_body_size=LIMIT)) as session:
        response = await asyncio.wait_for(session.get(url), WAIT)
        first = await asyncio.wait_for(response.content.readexactly(CHUNK), WAIT)
        assert not origin.gate.is_set()  # the rest has not even been sent yet
        origin.gate.set()
        rest = await asyncio.wait_for(response.content.read(), WAIT)
        assert first + rest == origin.pattern(size)
        response.release()
        again = await session.get(url)
        assert await again.read() == origin.pattern(size)
        assert again.from_cache is (size <= LIMIT)  # stored once read to the end
    assert origin.hits["/stream"] == (1 if size <= LIMIT else 2)


@pytest.mark.parametrize(
    ("size", "declared"),
    [(3 * CHUNK, 0), (LIMIT + CHUNK, 1)],
    ids=["unknown-length", "declared-above-limit"],
)
async def test_httpx_streams_without_reading_ahead(origin, size, declared):
    url = origin.stream(size, cl=declared, chunk=CHUNK, gate=1)
    async with CachedClient(cache=CacheBackend(max_body_size=LIMIT)) as client:
        async with client.stream("GET", url) as response:
            chunks = response.aiter_bytes()
            first = await asyncio.wait_for(chunks.__anext__(), WAIT)
            assert first
            assert not origin.gate.is_set()
            origin.gate.set()
            rest = b"".join([chunk async for chunk in chunks])
        assert first + rest == origin.pattern(size)
        again = await client.get(url)
        assert again.content == origin.pattern(size)
        assert again.extensions["acc"]["from_cache"] is (size <= LIMIT)


async def test_aiohttp_a_body_the_caller_stops_reading_is_not_stored(origin):
    url = origin.stream(8 * CHUNK, cl=0, chunk=CHUNK)
    async with CachedSession(cache=CacheBackend(max_body_size=LIMIT)) as session:
        response = await session.get(url)
        assert len(await response.content.readexactly(CHUNK)) == CHUNK
        response.close()
        unread = await session.get(url)
        unread.release()  # not read at all
        whole = await session.get(url)
        assert (await whole.read(), whole.from_cache) == (origin.pattern(8 * CHUNK), False)
        hit = await session.get(url)
        assert (await hit.read(), hit.from_cache) == (origin.pattern(8 * CHUNK), True)
        assert session.cache.stats.writes == 1
    assert origin.hits["/stream"] == 3


async def test_httpx_a_body_the_caller_stops_reading_is_not_stored(origin):
    url = origin.stream(8 * CHUNK, cl=0, chunk=CHUNK)
    async with CachedClient(cache=CacheBackend(max_body_size=LIMIT)) as client:
        async with client.stream("GET", url) as response:
            async for _chunk in response.aiter_bytes():
                break
        whole = await client.get(url)
        assert (whole.content, whole.extensions["acc"]["from_cache"]) == (
            origin.pattern(8 * CHUNK),
            False,
        )
        hit = await client.get(url)
        assert hit.extensions["acc"]["from_cache"] is True
        assert client.cache.stats.writes == 1
    assert origin.hits["/stream"] == 2


async def test_a_stream_that_breaks_stores_nothing(origin):
    # The origin declares more than it sends, then closes: the read fails, nothing is kept.
    async with CachedSession(cache=CacheBackend(max_body_size=LIMIT)) as session:
        response = await session.get(origin("/broken-stream"))
        with pytest.raises(Exception):  # noqa: B017, PT011 - aiohttp's payload error
            await response.read()
        assert session.cache.stats.writes == 0
    async with CachedClient(cache=CacheBackend(max_body_size=LIMIT)) as client:
        with pytest.raises(httpx.HTTPError):
            await client.get(origin("/broken-stream"))
        assert client.cache.stats.writes == 0
