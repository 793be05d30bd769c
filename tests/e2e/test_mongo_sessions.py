"""CachedSession on MongoDB: URL strings, many tasks, big bodies, an unreachable server."""

from __future__ import annotations

import asyncio
import datetime
import logging
import socket
from typing import Any

import pytest
from acc_services.mongo import database_url
from pymongo import AsyncMongoClient

from acc.backends.mongo import MAX_DOCUMENT_SIZE, MongoDBBackend
from acc.core import BackendUnavailable
from acc.sessions.aiohttp import CachedSession


async def test_cache_url_string_selects_mongodb(
    origin, mongodb_url: str, mongodb_database: str
) -> None:
    base = database_url(mongodb_url, mongodb_database)
    url = base + ("&" if "?" in base else "?") + "expire_after=60"
    async with CachedSession(cache=url) as session:
        assert isinstance(session.cache, MongoDBBackend)
        assert session.cache.cache_name == mongodb_database
        await session.get(origin("/json"))
        hit = await session.get(origin("/json"))
        assert hit.from_cache
        assert (await hit.json())["count"] == 1
        assert hit.expires is not None
        await session.cache.flush()  # the entry was served from the write-behind queue
        raw = await session.cache.responses.collection.find_one({"_id": hit.cache_key})
        # The document's expiry is the response's, to the millisecond BSON keeps.
        stored = raw["expires_at"].replace(tzinfo=datetime.timezone.utc)
        assert abs(stored - hit.expires) < datetime.timedelta(milliseconds=1)
    assert origin.hits["/json"] == 1


async def test_200_concurrent_requests_through_one_session(
    origin, mongodb_url: str, mongodb_database: str
) -> None:
    # The test server is slow under 200 concurrent requests; the storage budget (which
    # would send some of them to the network) has tests of its own.
    cache = MongoDBBackend(mongodb_database, url=mongodb_url, storage_budget=None)
    async with CachedSession(cache=cache) as session:
        urls = [origin(f"/json?n={i % 50}") for i in range(200)]
        first = await asyncio.gather(*(session.get(u) for u in urls))
        bodies = await asyncio.gather(*(r.json() for r in first))
        assert all(b["query"] == {"n": str(i % 50)} for i, b in enumerate(bodies))
        second = await asyncio.gather(*(session.get(u) for u in urls))
        assert all(r.from_cache for r in second)
        assert await asyncio.gather(*(r.json() for r in second)) == bodies
        await cache.flush()
        assert session.cache.stats.errors == 0
        assert await cache.responses.size() == 50
    assert origin.hits["/json"] == 50  # coalesced: one request per distinct URL


async def test_two_sessions_with_their_own_clients_share_the_cache(
    origin, mongodb_url: str, mongodb_database: str
) -> None:
    async with CachedSession(cache=MongoDBBackend(mongodb_database, url=mongodb_url)) as first:
        response = await first.get(origin("/text"))
        assert await response.text() == "héllo wörld"
    async with CachedSession(cache=MongoDBBackend(mongodb_database, url=mongodb_url)) as second:
        hit = await second.get(origin("/text"))
        assert hit.from_cache
        assert await hit.text() == "héllo wörld"
        assert hit.charset == "utf-8"
    assert origin.hits["/text"] == 1


async def test_a_two_megabyte_response_is_cached_whole(
    origin, mongodb_url: str, mongodb_database: str
) -> None:
    size = 2 * 1024 * 1024
    async with CachedSession(cache=MongoDBBackend(mongodb_database, url=mongodb_url)) as session:
        body = await (await session.get(origin(f"/big?size={size}"))).read()
        hit = await session.get(origin(f"/big?size={size}"))
        assert hit.from_cache
        assert await hit.read() == body
        assert len(body) == size
    assert origin.hits["/big"] == 1


async def test_a_response_over_the_document_limit_is_served_but_not_cached(
    origin, mongodb_url: str, mongodb_database: str, caplog: pytest.LogCaptureFixture
) -> None:
    size = MAX_DOCUMENT_SIZE + 1024 * 1024  # 17 MiB: whatever the metadata, too large
    # No max_body_size (16 MiB by default): the store's own limit is what is tested here.
    backend = MongoDBBackend(mongodb_database, url=mongodb_url, strict=True, max_body_size=None)
    with caplog.at_level(logging.WARNING, logger="acc"):
        async with CachedSession(cache=backend) as session:
            first = await session.get(origin(f"/big?size={size}"))
            assert len(await first.read()) == size
            second = await session.get(origin(f"/big?size={size}"))
            assert not second.from_cache
            assert len(await second.read()) == size
            assert await backend.responses.size() == 0
            assert backend.stats.errors == 0  # a refusal, not a failure, even when strict
            assert backend.stats.writes == 0  # and nothing was stored
    assert origin.hits["/big"] == 2
    refusals = [r for r in caplog.records if "not caching" in r.getMessage()]
    assert len(refusals) == 2
    assert all(r.levelno == logging.WARNING for r in refusals)


async def test_a_users_client_outlives_the_session(
    origin, mongodb_url: str, mongodb_database: str
) -> None:
    client: AsyncMongoClient[Any] = AsyncMongoClient(mongodb_url)
    try:
        backend = MongoDBBackend(mongodb_database, client=client)
        async with CachedSession(cache=backend) as session:
            await session.get(origin("/json"))
        assert backend.closed  # autoclose closed the backend ...
        collection = client[mongodb_database]["responses"]
        assert await collection.count_documents({}) == 1  # ... and not the client
    finally:
        await client.close()


def _dead_url() -> str:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"mongodb://127.0.0.1:{port}/acc?directConnection=true&serverSelectionTimeoutMS=200"


async def test_an_unreachable_server_fails_open(origin) -> None:
    async with CachedSession(cache=_dead_url()) as session:
        for _ in range(2):
            response = await session.get(origin("/json"))
            assert response.status == 200
            assert not response.from_cache
            assert (await response.json())["path"] == "/json"
            await session.cache.flush()  # the write behind the response fails too
        assert session.cache.stats.errors >= 2  # every read and write failed
    assert origin.hits["/json"] == 2


async def test_an_unreachable_server_raises_when_strict(origin) -> None:
    async with CachedSession(cache=_dead_url() + "&strict=true") as session:
        with pytest.raises(BackendUnavailable):
            await session.get(origin("/json"))
    assert origin.hits["/json"] == 0
