"""CachedSession on DynamoDB: by URL, under load, shared, large, expired, and in an outage.

The origin is the real aiohttp server of ``tests/conftest.py``; DynamoDB is moto's
standalone server or DynamoDB Local, over HTTP. Each test uses a fresh cache name in the
shared test table.
"""

from __future__ import annotations

import asyncio
import random
import socket
from collections.abc import AsyncIterator
from typing import Any

import pytest
from acc_services.dynamodb import unique_name
from aiohttp import web

from acc.backends.dynamodb import DynamoDBBackend, DynamoDBCache
from acc.core import BackendUnavailable, CacheBackend
from acc.sessions.aiohttp import CachedSession

TWO_MB = random.Random(2024).randbytes(2 * 1024 * 1024)


def _backend(dynamodb_url: str, **options: Any) -> DynamoDBBackend:
    backend = CacheBackend.from_url(
        dynamodb_url, cache_name=unique_name("e2e"), create_table=True, **options
    )
    assert isinstance(backend, DynamoDBBackend)
    return backend


@pytest.fixture
async def random_origin() -> AsyncIterator[str]:
    """A second real origin on 127.0.0.1 serving 2 MB of random (incompressible) bytes.

    The shared origin's large body (/big) repeats a pattern, which zlib shrinks to a few
    kilobytes; a body that cannot shrink is what forces the store to split the entry.
    """
    hits: list[int] = []

    async def body(request: web.Request) -> web.Response:
        hits.append(1)
        return web.Response(body=TWO_MB, content_type="application/octet-stream")

    app = web.Application()
    app.router.add_get("/random", body)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        yield f"http://127.0.0.1:{port}/random"
    finally:
        await runner.cleanup()
    assert len(hits) == 1, f"the random origin was hit {len(hits)} times, not once"


async def test_cache_url_string_selects_dynamodb(origin: Any, dynamodb_url: str) -> None:
    url = f"{dynamodb_url}&cache_name={unique_name('url')}&create_table=true&expire_after=60"
    async with CachedSession(cache=url) as session:
        assert isinstance(session.cache, DynamoDBBackend)
        miss = await session.get(origin("/json"))
        assert not miss.from_cache
        hit = await session.get(origin("/json"))
        assert hit.from_cache
        assert hit.expires is not None
        assert await hit.json() == await miss.json()
        assert session.cache.stats.errors == 0
    assert origin.hits["/json"] == 1


async def test_a_two_megabyte_random_response_is_cached_and_read_back(
    random_origin: str, dynamodb_url: str
) -> None:
    backend = _backend(dynamodb_url)
    async with CachedSession(cache=backend) as session:
        first = await session.get(random_origin)
        assert await first.read() == TWO_MB
        hit = await session.get(random_origin)
        assert hit.from_cache
        assert await hit.read() == TWO_MB
        assert hit.content_length == len(TWO_MB)
        await backend.flush()  # the hit came from the write-behind queue
        assert session.cache.stats.errors == 0
        # Stored split, not inline: the entry is a manifest naming its chunk items.
        responses = backend.responses
        assert isinstance(responses, DynamoDBCache)
        client = await backend.connection.client()
        manifest = await client.get_item(
            TableName=backend.table_name,
            Key={"key": {"S": f"{responses.namespace}:{hit.cache_key}"}},
            ConsistentRead=True,
        )
        assert "value" not in manifest["Item"]
        assert int(manifest["Item"]["parts"]["N"]) >= 5
        assert await responses.size() == 1


async def test_a_large_compressible_response_round_trips(origin: Any, dynamodb_url: str) -> None:
    async with CachedSession(cache=_backend(dynamodb_url)) as session:
        url = origin(f"/big?size={2 * 1024 * 1024}")
        body = await (await session.get(url)).read()
        hit = await session.get(url)
        assert hit.from_cache
        assert await hit.read() == body
        assert len(body) == 2 * 1024 * 1024
    assert origin.hits["/big"] == 1


async def test_200_concurrent_requests_through_one_session(origin: Any, dynamodb_url: str) -> None:
    # moto answers from a thread of this process: under 200 concurrent requests it can
    # take longer than the default storage budget, which has tests of its own.
    async with CachedSession(cache=_backend(dynamodb_url, storage_budget=None)) as session:
        urls = [origin(f"/json?n={i % 40}") for i in range(200)]
        first = await asyncio.gather(*(session.get(u) for u in urls))
        bodies = await asyncio.gather(*(r.json() for r in first))
        assert all(b["query"] == {"n": str(i % 40)} for i, b in enumerate(bodies))
        second = await asyncio.gather(*(session.get(u) for u in urls))
        assert all(r.from_cache for r in second)
        assert await asyncio.gather(*(r.json() for r in second)) == bodies
        assert session.cache.stats.errors == 0
    assert origin.hits["/json"] == 40


async def test_two_backends_on_one_table_share_the_cache(origin: Any, dynamodb_url: str) -> None:
    """Two clients, as two processes or machines would have, see each other's entries."""
    name = unique_name("shared")
    first = CacheBackend.from_url(dynamodb_url, cache_name=name, create_table=True)
    second = CacheBackend.from_url(dynamodb_url, cache_name=name)
    async with CachedSession(cache=first) as a, CachedSession(cache=second) as b:
        await a.get(origin("/json?who=a"))
        await first.flush()  # another process sees an entry once it is written
        hit = await b.get(origin("/json?who=a"))
        assert hit.from_cache
        await b.get(origin("/redirect"))  # stored with an alias in the redirects store
        await second.flush()
        again = await a.get(origin("/redirect"))
        assert again.from_cache
    assert origin.hits["/json"] == 2  # ?who=a once, the redirect's target once


async def test_cache_names_keep_caches_in_one_table_apart(origin: Any, dynamodb_url: str) -> None:
    async with CachedSession(cache=_backend(dynamodb_url)) as a:
        await a.get(origin("/json"))
    async with CachedSession(cache=_backend(dynamodb_url)) as b:
        response = await b.get(origin("/json"))
        assert not response.from_cache
        await b.cache.flush()
        assert await b.cache.responses.size() == 1
    assert origin.hits["/json"] == 2


async def test_expired_entries_are_not_served(origin: Any, dynamodb_url: str) -> None:
    """moto (like DynamoDB, for a while) keeps the item: the store hides it."""
    async with CachedSession(cache=_backend(dynamodb_url, expire_after=1)) as session:
        await session.get(origin("/json"))
        assert (await session.get(origin("/json"))).from_cache
        await asyncio.sleep(1.2)
        again = await session.get(origin("/json"))
        assert not again.from_cache
        assert (await again.json())["count"] == 2
    assert origin.hits["/json"] == 2


async def test_facade_maintenance_on_dynamodb(origin: Any, dynamodb_url: str) -> None:
    backend = _backend(dynamodb_url, autoclose=False)
    async with CachedSession(cache=backend) as session:
        for n in range(3):
            await session.get(origin(f"/json?n={n}"))
    try:
        assert sorted([url async for url in backend.urls()]) == sorted(
            origin(f"/json?n={n}") for n in range(3)
        )
        assert await backend.has_url(origin("/json?n=0"))
        assert await backend.delete(urls=[origin("/json?n=0")]) == 1
        assert not await backend.has_url(origin("/json?n=0"))
        await backend.clear()
        assert await backend.responses.size() == 0
    finally:
        await backend.close()


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


async def test_an_unreachable_dynamodb_fails_open(origin: Any, aws_environment: None) -> None:
    backend = DynamoDBBackend(region="us-east-1", endpoint_url=f"http://127.0.0.1:{_closed_port()}")
    async with CachedSession(cache=backend) as session:
        for expected in (1, 2):
            response = await session.get(origin("/json"))
            assert response.status == 200
            assert not response.from_cache
            assert (await response.json())["count"] == expected
            await backend.flush()  # the write behind the response fails too
        assert backend.stats.errors >= 2  # a failed read and a failed write per request
    assert origin.hits["/json"] == 2


async def test_an_unreachable_dynamodb_raises_when_strict(
    origin: Any, aws_environment: None
) -> None:
    backend = DynamoDBBackend(
        region="us-east-1",
        endpoint_url=f"http://127.0.0.1:{_closed_port()}",
        strict=True,
    )
    async with CachedSession(cache=backend) as session:
        with pytest.raises(BackendUnavailable):
            await session.get(origin("/json"))
    assert origin.hits["/json"] == 0
