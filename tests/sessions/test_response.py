"""A hit behaves like the live aiohttp response it replaces."""

from __future__ import annotations

import gc
import re
import tracemalloc
from typing import Any

import pytest
from aiohttp import ClientSession, ContentTypeError, CookieJar
from multidict import CIMultiDictProxy

from acc.sessions.aiohttp import CachedClientResponse, CachedSession


def _uncounted(body: bytes) -> bytes:
    return re.sub(rb'"count": \d+', b'"count": N', body)


async def _live_and_hit(origin, make_backend, path) -> tuple[Any, dict[str, Any], Any]:
    async with ClientSession() as plain, plain.get(origin(path)) as live:
        live_body = await live.read()
        live_view = {
            "status": live.status,
            "reason": live.reason,
            "ok": live.ok,
            "url": live.url,
            "method": live.method,
            "content_type": live.content_type,
            "charset": live.charset,
            "links": live.links,
            "content_disposition": live.content_disposition,
            "content_length": live.content_length,
            "headers": live.headers.copy(),
            "history": [(h.status, h.url) for h in live.history],
            "body": live_body,
        }
    session = CachedSession(cache=make_backend())
    await session.get(origin(path))
    hit = await session.get(origin(path))
    assert isinstance(hit, CachedClientResponse)
    return session, live_view, hit


@pytest.mark.parametrize("path", ["/json", "/text", "/links", "/redirect", "/gzip", "/download"])
async def test_hit_matches_live_response(origin, make_backend, path):
    session, live, hit = await _live_and_hit(origin, make_backend, path)
    async with session:
        assert hit.status == live["status"]
        assert hit.reason == live["reason"]
        assert hit.ok == live["ok"]
        assert hit.url == live["url"]
        assert hit.method == live["method"]
        assert hit.content_type == live["content_type"]
        assert hit.charset == live["charset"]
        assert hit.links == live["links"]
        assert hit.content_disposition == live["content_disposition"]
        if "Content-Encoding" not in live["headers"]:
            assert hit.content_length == live["content_length"]
        assert [(h.status, h.url) for h in hit.history] == live["history"]
        # The origin counts requests in some bodies; everything else must be identical.
        assert _uncounted(await hit.read()) == _uncounted(live["body"])


async def test_hit_body_accessors(origin, make_backend):
    async with CachedSession(cache=make_backend()) as session:
        await session.get(origin("/text"))
        async with session.get(origin("/text")) as hit:
            assert await hit.text() == "héllo wörld"
            assert await hit.text(encoding="latin-1") == "héllo wörld".encode().decode("latin-1")
            assert hit.get_encoding() == "utf-8"
            with pytest.raises(ContentTypeError):
                await hit.json()
            assert hit.content_length == len("héllo wörld".encode())
        assert hit.closed
        json_hit = await session.get(origin("/json"))
        json_hit = await session.get(origin("/json"))
        assert (await json_hit.json())["path"] == "/json"
        assert await json_hit.json(loads=lambda s: s) == (await json_hit.read()).decode()


async def test_hit_content_streams(origin, make_backend):
    size = 256 * 1024
    async with CachedSession(cache=make_backend()) as session:
        await session.get(origin(f"/big?size={size}"))
        hit = await session.get(origin(f"/big?size={size}"))
        chunks = [chunk async for chunk in hit.content.iter_chunked(10_000)]
        assert b"".join(chunks) == bytes(range(256)) * (size // 256)
        assert max(len(c) for c in chunks) == 10_000
        second = await session.get(origin(f"/big?size={size}"))
        assert await second.content.read(100) == bytes(range(100))
        rest = await second.content.readany()
        assert rest
        assert rest[:1] == bytes([100])
        assert rest == (bytes(range(256)) * (size // 256))[100 : 100 + len(rest)]


async def test_miss_body_is_still_readable_as_a_stream(origin, make_backend):
    async with CachedSession(cache=make_backend()) as session:
        miss = await session.get(origin("/text"))
        assert miss.from_cache is False
        assert await miss.content.read() == "héllo wörld".encode()
        assert await miss.text() == "héllo wörld"


async def test_hit_headers_and_request_info(origin, make_backend):
    async with CachedSession(cache=make_backend()) as session:
        await session.get(origin("/json"), headers={"X-Trace": "t1"})
        hit = await session.get(origin("/json"), headers={"X-Trace": "t1"})
        assert isinstance(hit.headers, CIMultiDictProxy)
        assert hit.headers["content-type"].startswith("application/json")
        assert (b"Content-Type", hit.headers["Content-Type"].encode()) in hit.raw_headers
        assert hit.request_info.method == "GET"
        assert hit.request_info.url == hit.url
        assert hit.request_info.headers["X-Trace"] == "t1"


async def test_gzip_bodies_are_stored_decoded(origin, make_backend):
    async with CachedSession(cache=make_backend()) as session:
        miss = await session.get(origin("/gzip"))
        assert miss.headers["Content-Encoding"] == "gzip"
        hit = await session.get(origin("/gzip"))
        body = await hit.read()
        assert "Content-Encoding" not in hit.headers
        assert int(hit.headers["Content-Length"]) == len(body)
        assert (await hit.json())["compressed"] is True


async def test_cookies_of_a_hit_are_not_stored_by_default(origin, make_backend):
    backend = make_backend(autoclose=False)
    async with CachedSession(cache=backend, cookie_jar=CookieJar(unsafe=True)) as session:
        miss = await session.get(origin("/cookie"))
        assert miss.cookies["flavour"].value == "oatmeal"  # the caller's own response
    async with CachedSession(cache=backend, cookie_jar=CookieJar(unsafe=True)) as fresh:
        hit = await fresh.get(origin("/cookie"))
        assert hit.from_cache
        assert "Set-Cookie" not in hit.headers
        assert not hit.cookies
        assert not any(True for _ in fresh.cookie_jar)


async def test_cookies_of_a_hit_are_restored_to_the_jar(origin, make_backend):
    backend = make_backend(autoclose=False, store_cookies=True)
    async with CachedSession(cache=backend, cookie_jar=CookieJar(unsafe=True)) as session:
        await session.get(origin("/cookie"))
        assert any(c.key == "flavour" for c in session.cookie_jar)
    async with CachedSession(cache=backend, cookie_jar=CookieJar(unsafe=True)) as fresh:
        assert not any(True for _ in fresh.cookie_jar)
        hit = await fresh.get(origin("/cookie"))
        assert hit.from_cache
        assert hit.cookies["flavour"].value == "oatmeal"
        assert [c.value for c in fresh.cookie_jar if c.key == "flavour"] == ["oatmeal"]


async def test_release_is_awaitable_and_plain(origin, make_backend):
    async with CachedSession(cache=make_backend()) as session:
        await session.get(origin("/json"))
        hit = await session.get(origin("/json"))
        states = [hit.closed]
        await hit.release()
        states.append(hit.closed)
        assert states == [False, True]
        again = await session.get(origin("/json"))
        again.release()
        again.close()
        assert again.closed
        assert "CachedClientResponse" in repr(again)


async def test_a_hit_builds_headers_url_and_stream_only_when_asked(origin, make_backend):
    async with CachedSession(cache=make_backend()) as session:
        await session.get(origin("/json"))
        hit = await session.get(origin("/json"))
        assert isinstance(hit, CachedClientResponse)
        assert (hit._headers_proxy, hit._url, hit._content) == (None, None, None)
        assert await hit.read()  # reading the body needs none of them
        assert (hit._headers_proxy, hit._url, hit._content) == (None, None, None)
        assert hit.headers is hit.headers  # built once, on first access
        assert hit.url is hit.url
        assert hit.content is hit.content


async def test_a_large_hit_holds_at_most_one_more_copy_of_its_body(origin, make_backend):
    # The stored bytes are sliced once by the codec; read() returns that very object,
    # and content streams it in chunks, so serving the hit allocates about one body.
    size = 5 * 1024 * 1024
    expected = bytes(range(256)) * (size // 256)
    async with CachedSession(cache=make_backend()) as session:
        url = origin(f"/big?size={size}")
        assert len(await (await session.get(url)).read()) == size
        gc.collect()
        tracemalloc.start()
        try:
            hit = await session.get(url)
            body = await hit.read()
            streamed = 0
            async for chunk in hit.content.iter_chunked(256 * 1024):
                assert len(chunk) <= 256 * 1024
                streamed += len(chunk)
            _current, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        assert isinstance(hit, CachedClientResponse)
        assert body is hit.entry.body
        assert body == expected
        assert streamed == size
        assert peak < 2.5 * size
