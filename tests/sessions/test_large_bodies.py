"""Large bodies on a hit: handed to the caller without a copy, in both bindings.

A hit of a 2 MiB body on the memory store allocates almost nothing (the body is the
object the store keeps); on SQLite and the file store, about one body (the one copy out
of the database or file, read as a ``bytes`` object of its own, never sliced out of the
whole value). The bounds asserted are loose (half a body, one and a half bodies): what they
catch is a copy, which costs a whole body each. Every reading method works on such a
body (``read``, ``content.read(n)``, ``iter_chunked``, ``json``), and a large entry
corrupted on disk reads as a miss.
"""

from __future__ import annotations

import gc
import json
import sqlite3
import tracemalloc
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from yarl import URL

from acc.core import CacheBackend
from acc.sessions.aiohttp import CachedSession
from acc.sessions.httpx import CachedClient

SIZE = 2 * 1024 * 1024  # above the 1 MiB from which entries are written and read in parts
BINARY = bytes(range(256)) * (SIZE // 256)
DOCUMENT = {"items": [{"n": n, "pad": "x" * 1000} for n in range(SIZE // 1024)]}
JSON_BODY = json.dumps(DOCUMENT).encode()


class BigOrigin:
    """A loopback origin serving one large binary and one large JSON body, counting hits."""

    def __init__(self, url: URL) -> None:
        self.url = url
        self.hits = 0

    def __call__(self, path: str) -> str:
        return str(self.url.with_path(path))


@pytest.fixture
async def big_origin() -> AsyncIterator[BigOrigin]:
    ref: list[BigOrigin] = []

    async def binary(_request: web.Request) -> web.Response:
        ref[0].hits += 1
        return web.Response(body=BINARY, content_type="application/octet-stream")

    async def document(_request: web.Request) -> web.Response:
        ref[0].hits += 1
        return web.Response(body=JSON_BODY, content_type="application/json")

    app = web.Application()
    app.router.add_get("/binary", binary)
    app.router.add_get("/json", document)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    ref.append(BigOrigin(URL(f"http://127.0.0.1:{runner.addresses[0][1]}")))
    try:
        yield ref[0]
    finally:
        await runner.cleanup()


@pytest.fixture(params=["memory", "sqlite", "filesystem"])
async def backend(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[CacheBackend]:
    if request.param == "memory":
        cache = CacheBackend()
    elif request.param == "filesystem":
        from acc.backends.filesystem import FileBackend

        cache = FileBackend(tmp_path / "files")
    else:
        from acc.backends.sqlite import SQLiteBackend

        cache = SQLiteBackend(str(tmp_path / "big.sqlite"))
    yield cache
    await cache.close()


# How much Python memory one hit may allocate at its peak, in bodies: nothing to speak of
# from memory, the one copy out of the database (or the file) from SQLite (or files).
PEAK_BOUND = {"memory": 0.5, "sqlite": 1.5, "filesystem": 1.5}


async def peak_of(call: Callable[[], Awaitable[Any]]) -> tuple[Any, float]:
    """Run ``call()``; its result and the peak of Python allocations, in bodies."""
    gc.collect()
    tracemalloc.start()
    try:
        result = await call()
        _current, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return result, peak / SIZE


def kind(backend: CacheBackend) -> str:
    name = type(backend).__name__
    return {"CacheBackend": "memory", "FileBackend": "filesystem"}.get(name, "sqlite")


async def test_aiohttp_hit_hands_over_the_stored_body_without_a_copy(big_origin, backend):
    async with CachedSession(cache=backend) as session:
        async with session.get(big_origin("/binary")) as miss:
            assert await miss.read() == BINARY

        async def hit() -> Any:
            async with session.get(big_origin("/binary")) as response:
                return response, await response.read()

        (response, body), peak = await peak_of(hit)
        assert response.from_cache is True
        assert body == BINARY
        assert body is response.entry.body  # read() is the decoded body itself
        assert peak < PEAK_BOUND[kind(backend)], f"a hit allocated {peak:.2f} bodies"
        if kind(backend) == "memory":  # the very object the store keeps, hit after hit
            async with session.get(big_origin("/binary")) as again:
                assert await again.read() is body
    assert big_origin.hits == 1


async def test_httpx_hit_hands_over_the_stored_body_without_a_copy(big_origin, backend):
    async with CachedClient(cache=backend) as client:
        assert (await client.get(big_origin("/binary"))).content == BINARY
        response, peak = await peak_of(lambda: client.get(big_origin("/binary")))
        assert response.extensions["acc"]["from_cache"] is True
        assert response.content == BINARY
        assert peak < PEAK_BOUND[kind(backend)], f"a hit allocated {peak:.2f} bodies"
    assert big_origin.hits == 1


async def test_aiohttp_reading_methods_on_a_stored_large_body(big_origin, backend):
    async with CachedSession(cache=backend) as session:
        for path in ("/binary", "/json"):
            async with session.get(big_origin(path)) as miss:
                await miss.read()
        async with session.get(big_origin("/binary")) as response:
            assert response.from_cache is True
            chunks = [chunk async for chunk in response.content.iter_chunked(64 * 1024)]
            assert len(chunks) == SIZE // (64 * 1024)
            assert b"".join(chunks) == BINARY
        async with session.get(big_origin("/binary")) as response:
            head = await response.content.read(1000)
            rest = await response.content.read()
            assert head + rest == BINARY
        async with session.get(big_origin("/json")) as response:
            assert response.from_cache is True
            assert await response.json() == DOCUMENT
            assert json.loads(await response.text()) == DOCUMENT
    assert big_origin.hits == 2


async def test_httpx_reading_methods_on_a_stored_large_body(big_origin, backend):
    async with CachedClient(cache=backend) as client:
        for path in ("/binary", "/json"):
            await client.get(big_origin(path))
        async with client.stream("GET", big_origin("/binary")) as response:
            assert response.extensions["acc"]["from_cache"] is True
            chunks = [chunk async for chunk in response.aiter_bytes(64 * 1024)]
            assert b"".join(chunks) == BINARY
            assert {len(chunk) for chunk in chunks} == {64 * 1024}
        response = await client.get(big_origin("/json"))
        assert response.extensions["acc"]["from_cache"] is True
        assert response.json() == DOCUMENT
    assert big_origin.hits == 2


async def test_json_with_surrounding_whitespace_still_parses(big_origin):
    from acc.core import CachedResponse
    from acc.sessions.aiohttp.response import CachedClientResponse

    entry = CachedResponse(
        status=200,
        reason="OK",
        url=big_origin("/json"),
        method="GET",
        headers=(("Content-Type", "application/json"),),
        body=b"\n  " + JSON_BODY + b" \r\n",
    )
    assert await CachedClientResponse(entry).json() == DOCUMENT
    blank = CachedResponse(
        status=200,
        reason="OK",
        url=big_origin("/json"),
        method="GET",
        headers=(("Content-Type", "application/json"),),
        body=b" \n ",
    )
    assert await CachedClientResponse(blank).json() is None


@pytest.mark.parametrize("where", ["body", "head"])
async def test_a_corrupt_large_sqlite_entry_reads_as_a_miss(big_origin, tmp_path, where):
    from acc.backends.sqlite import SQLiteBackend

    path = tmp_path / "corrupt.sqlite"
    async with CachedSession(cache=SQLiteBackend(str(path))) as session:
        async with session.get(big_origin("/binary")) as miss:
            assert await miss.read() == BINARY
        await session.cache.flush()  # the write behind the response has landed
        with sqlite3.connect(path) as raw:  # flip one byte of the stored value
            (value,) = raw.execute("SELECT value FROM responses").fetchone()
            at = len(value) - 1000 if where == "body" else 30
            damaged = value[:at] + bytes([value[at] ^ 0x40]) + value[at + 1 :]
            raw.execute("UPDATE responses SET value = ?", (damaged,))
        async with session.get(big_origin("/binary")) as response:
            assert response.from_cache is False  # a miss: fetched again
            assert await response.read() == BINARY
        assert session.cache.stats.errors == 1
        async with session.get(big_origin("/binary")) as response:
            assert response.from_cache is True  # stored again, whole
            assert await response.read() == BINARY
    assert big_origin.hits == 2


async def test_httpx_and_aiohttp_share_a_large_sqlite_entry(big_origin, tmp_path):
    from acc.backends.sqlite import SQLiteBackend

    path = str(tmp_path / "shared.sqlite")
    async with (
        CachedSession(cache=SQLiteBackend(path)) as session,
        session.get(big_origin("/binary")) as miss,
    ):
        await miss.read()
    async with CachedClient(cache=SQLiteBackend(path)) as client:
        response = await client.get(big_origin("/binary"))
        assert response.extensions["acc"]["from_cache"] is True
        assert response.content == BINARY
    assert big_origin.hits == 1
