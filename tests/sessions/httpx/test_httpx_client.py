"""CachedClient (httpx) against the real origin: misses, hits, options, metadata, semantics.

Every test here sends real requests through httpx's own network transport to the origin
on 127.0.0.1 (tests/conftest.py); ``make_backend`` runs each one on memory and SQLite.
"""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime, timezone
from typing import Any

import httpx
import pytest
from aiohttp import web

from acc.core import DO_NOT_CACHE, CacheBackend, ConfigError
from acc.sessions.httpx import CachedClient, CacheTransport


def acc(response: httpx.Response) -> dict[str, Any]:
    info: dict[str, Any] = response.extensions["acc"]
    return info


def http(origin: Any, name: str, **params: str) -> str:
    """The URL of ``/http/{name}`` sending the headers ``params`` name."""
    return str(origin.url.with_path(f"/http/{name}").with_query(params))


def opts(**options: Any) -> dict[str, Any]:
    return {"acc": options}


async def test_miss_then_hit(origin, make_backend):
    async with CachedClient(cache=make_backend()) as client:
        first = await client.get(origin("/json"))
        second = await client.get(origin("/json"))
    assert acc(first)["from_cache"] is False
    assert acc(first)["stored"] is True
    assert acc(second)["from_cache"] is True
    assert acc(second)["stored"] is False
    assert acc(second)["cache_key"] == acc(first)["cache_key"] is not None
    assert acc(second)["created_at"] == acc(first)["created_at"]
    assert acc(second)["expires"] is None
    assert acc(second)["revalidated"] is acc(second)["stale"] is acc(second)["is_expired"] is False
    assert second.json() == first.json() == {"path": "/json", "query": {}, "count": 1}
    assert second.status_code == 200
    assert second.reason_phrase == "OK"
    assert second.http_version == "HTTP/1.1"
    assert second.headers["content-type"] == "application/json; charset=utf-8"
    assert second.headers["content-length"] == str(len(second.content))
    assert second.request.url == origin("/json")
    assert str(second.url) == origin("/json")
    assert origin.hits["/json"] == 1
    assert client.cache.stats.hits == 1
    assert client.cache.stats.misses == 1
    await client.cache.flush()
    assert client.cache.stats.writes == 1


async def test_a_hit_reads_like_a_live_response(origin, make_backend):
    async with CachedClient(cache=make_backend()) as client:
        await client.get(origin("/text"))
        async with client.stream("GET", origin("/text")) as streamed:
            assert acc(streamed)["from_cache"] is True
            assert not streamed.is_stream_consumed  # unread until the caller reads it
            chunks = [chunk async for chunk in streamed.aiter_bytes()]
        assert b"".join(chunks) == "héllo wörld".encode()
        async with client.stream("GET", origin("/text")) as raw:
            assert b"".join([chunk async for chunk in raw.aiter_raw()]) == "héllo wörld".encode()
        async with client.stream("GET", origin("/text")) as text:
            assert [part async for part in text.aiter_text()] == ["héllo wörld"]
        async with client.stream("GET", origin("/json")) as _miss:
            pass
        async with client.stream("GET", origin("/json")) as read:
            assert acc(read)["from_cache"] is True
            assert await read.aread() == read.content
            assert read.json()["path"] == "/json"
        hit = await client.get(origin("/text"))
        assert hit.text == "héllo wörld"
        assert hit.encoding == "utf-8"
        assert hit.is_success
        hit.raise_for_status()
    assert origin.hits["/text"] == 1


async def test_default_cache_is_memory_and_autoclosed(origin):
    client = CachedClient()
    backend = client.cache
    assert type(backend) is CacheBackend
    await client.get(origin("/json"))
    await client.aclose()
    assert backend.closed


async def test_cache_url_and_autoclose_false(origin, make_backend, tmp_path):
    async with CachedClient(cache=f"sqlite:///{tmp_path / 'by-url.sqlite'}") as by_url:
        assert type(by_url.cache).__name__ == "SQLiteBackend"
        await by_url.get(origin("/json"))
        assert acc(await by_url.get(origin("/json")))["from_cache"] is True
    assert by_url.cache.closed
    backend = make_backend(autoclose=False)
    async with CachedClient(cache=backend) as client:
        await client.get(origin("/json"))
    assert not backend.closed
    async with CachedClient(cache=backend) as client:
        assert acc(await client.get(origin("/json")))["from_cache"] is True


async def test_per_request_expire_after_and_do_not_cache(origin, make_backend):
    async with CachedClient(cache=make_backend(expire_after=3600)) as client:
        short = await client.get(origin("/json?a=1"), extensions=opts(expire_after=60))
        left = (acc(short)["expires"] - datetime.now(timezone.utc)).total_seconds()
        assert 50 < left <= 60
        await client.get(origin("/json?a=2"), extensions=opts(expire_after=DO_NOT_CACHE))
        again = await client.get(origin("/json?a=2"))
        assert acc(again)["from_cache"] is False
    assert origin.hits["/json"] == 3


async def test_unknown_or_bad_options_raise(origin):
    async with CachedClient() as client:
        with pytest.raises(TypeError, match="expire_afer"):
            await client.get(origin("/json"), extensions=opts(expire_afer=10))
        with pytest.raises(ConfigError, match=r"^expire_after"):
            await client.get(origin("/json"), extensions=opts(expire_after="soon"))
        with pytest.raises(ConfigError, match=r"^refresh"):
            await client.get(origin("/json"), extensions=opts(refresh="yes"))
        with pytest.raises(TypeError, match="mapping"):
            await client.get(origin("/json"), extensions={"acc": ["refresh"]})
    assert origin.total == 0
    with pytest.raises(TypeError):
        CachedClient(cach=CacheBackend())
    with pytest.raises(ConfigError, match=r"^cache"):
        CachedClient(cache=42)  # type: ignore[arg-type]


async def test_force_refresh_fetches_and_stores(origin, make_backend):
    async with CachedClient(cache=make_backend()) as client:
        await client.get(origin("/json"))
        forced = await client.get(origin("/json"), extensions=opts(force_refresh=True))
        assert (acc(forced)["from_cache"], acc(forced)["stored"]) == (False, True)
        assert forced.json()["count"] == 2
        assert (await client.get(origin("/json"))).json()["count"] == 2


async def test_refresh_revalidates_with_etag(origin, make_backend):
    async with CachedClient(cache=make_backend()) as client:
        first = await client.get(origin("/etag"))
        revalidated = await client.get(origin("/etag"), extensions=opts(refresh=True))
        assert acc(revalidated)["from_cache"] is True
        assert acc(revalidated)["revalidated"] is True
        assert revalidated.status_code == 200
        assert revalidated.json() == first.json() == {"version": 1}
        assert revalidated.headers["X-Checked"] == "yes"  # the 304's headers merged
        assert acc(revalidated)["created_at"] > acc(first)["created_at"]
        assert origin.requests[-1].headers["If-None-Match"] == '"v1"'
        origin.etag_version = 2
        changed = await client.get(origin("/etag"), extensions=opts(refresh=True))
        assert acc(changed)["from_cache"] is False
        assert changed.json() == {"version": 2}
        assert (await client.get(origin("/etag"))).json() == {"version": 2}
        assert client.cache.stats.revalidations == 1
    assert origin.hits["/etag"] == 3


async def test_only_if_cached(origin, make_backend):
    async with CachedClient(cache=make_backend()) as client:
        miss = await client.get(origin("/json"), extensions=opts(only_if_cached=True))
        assert miss.status_code == 504
        assert miss.content == b""
        assert acc(miss)["from_cache"] is False
        assert origin.total == 0
        await client.get(origin("/json"))
        hit = await client.get(origin("/json"), extensions=opts(only_if_cached=True))
        assert (hit.status_code, acc(hit)["from_cache"]) == (200, True)


async def test_a_response_not_stored_streams_from_the_network(origin, make_backend):
    size = 4 * 1024 * 1024
    async with CachedClient(cache=make_backend()) as client:
        async with client.stream("GET", origin("/status/404")) as missing:
            assert acc(missing)["stored"] is False
            assert acc(missing)["cache_key"] is not None
            assert [part async for part in missing.aiter_bytes()] == [b"status"]
        url = origin(f"/big?size={size}")
        async with client.stream("GET", url, extensions=opts(expire_after=DO_NOT_CACHE)) as big:
            assert acc(big)["stored"] is False
            assert not big.is_stream_consumed
            chunks = [chunk async for chunk in big.aiter_bytes()]
        # The body reached the caller piece by piece, as the network delivered it.
        assert len(chunks) > 1
        assert sum(map(len, chunks)) == size
        assert client.cache.stats.writes == 0
        assert await client.cache.responses.size() == 0


async def test_gzip_is_stored_decoded_and_served_right(origin, make_backend):
    async with CachedClient(cache=make_backend()) as client:
        first = await client.get(origin("/gzip"))
        hit = await client.get(origin("/gzip"))
        async with client.stream("GET", origin("/gzip")) as streamed:
            raw = b"".join([chunk async for chunk in streamed.aiter_raw()])
        entry = await client.cache.read_entry(acc(hit)["cache_key"])
    for response in (first, hit):
        assert "content-encoding" not in response.headers
        assert response.headers["content-length"] == str(len(response.content))
        assert response.json()["compressed"] is True
    assert acc(hit)["from_cache"] is True
    assert raw == hit.content  # the stored bytes are the decoded body, not gzip
    assert entry is not None
    assert entry.header("Content-Encoding") is None
    assert json.loads(entry.body)["compressed"] is True
    assert origin.hits["/gzip"] == 1


async def test_post_invalidates_the_cached_get(origin, make_backend):
    async with CachedClient(cache=make_backend()) as client:
        await client.get(origin("/json"))
        assert acc(await client.get(origin("/json")))["from_cache"] is True
        posted = await client.post(origin("/json"), json={"changed": True})
        assert acc(posted)["cache_key"] is None  # POST is not in allowed_methods
        assert acc(await client.get(origin("/json")))["from_cache"] is False
        await client.delete(origin("/status/500"))  # a failed unsafe request changes nothing
        assert acc(await client.get(origin("/json")))["from_cache"] is True
    assert origin.hits["/json"] == 3


async def test_credentials_key_entries_per_user_and_are_not_stored(origin, make_backend):
    async with CachedClient(cache=make_backend()) as client:
        alice = {"Authorization": "Bearer alice-secret"}
        bob = {"Authorization": "Bearer bob-secret"}
        first = await client.get(origin("/json"), headers=alice)
        assert acc(await client.get(origin("/json"), headers=alice))["from_cache"] is True
        other = await client.get(origin("/json"), headers=bob)
        assert acc(other)["from_cache"] is False
        assert acc(other)["cache_key"] != acc(first)["cache_key"]
        assert acc(await client.get(origin("/json")))["from_cache"] is False
        basic = await client.get(origin("/json"), auth=("carol", "carol-password"))
        assert acc(basic)["from_cache"] is False
        await client.cache.flush()
        stored = b"".join([value async for value in client.cache.responses.values()])
        assert await client.cache.responses.size() == 4
    assert b"-secret" not in stored
    assert b"Y2Fyb2w6Y2Fyb2wtcGFzc3dvcmQ=" not in stored  # carol's Basic credentials
    assert origin.hits["/json"] == 4


async def test_cookie_jar_cookies_separate_entries(origin, make_backend):
    backend = make_backend(autoclose=False)
    async with CachedClient(cache=backend, cookies={"session": "one"}) as first:
        one = await first.get(origin("/json"))
        assert acc(await first.get(origin("/json")))["from_cache"] is True
    async with CachedClient(cache=backend, cookies={"session": "two"}) as second:
        two = await second.get(origin("/json"))
    async with CachedClient(cache=backend) as anonymous:
        nobody = await anonymous.get(origin("/json"))
    assert acc(two)["from_cache"] is acc(nobody)["from_cache"] is False
    assert len({acc(r)["cache_key"] for r in (one, two, nobody)}) == 3


async def test_concurrent_identical_gets_make_one_origin_request(origin, make_backend):
    async with CachedClient(cache=make_backend()) as client:
        responses = await asyncio.gather(
            *(client.get(origin("/slow?delay=0.3")) for _ in range(20))
        )
    assert origin.hits["/slow"] == 1
    assert all(response.json() == {"count": 1} for response in responses)
    assert sum(1 for response in responses if acc(response)["from_cache"]) == 19


async def test_disabled_bypasses_and_recovers_after_exception(origin, make_backend):
    async with CachedClient(cache=make_backend()) as client:
        await client.get(origin("/json"))
        seen_inside = []

        async def fail_while_disabled() -> None:
            async with client.disabled():
                response = await client.get(origin("/json"))
                seen_inside.append(acc(response)["from_cache"])
                raise RuntimeError("boom")

        with pytest.raises(RuntimeError, match="boom"):
            await fail_while_disabled()
        assert seen_inside == [False]
        assert acc(await client.get(origin("/json")))["from_cache"] is True
    assert origin.hits["/json"] == 2


async def test_base_url_and_params_key_like_the_full_url(origin, make_backend):
    async with CachedClient(cache=make_backend(), base_url=str(origin.url)) as client:
        first = await client.get("/json", params={"b": "2", "a": "1"})
        full = await client.get(origin("/json?a=1&b=2"))
    assert acc(full)["from_cache"] is True
    assert acc(full)["cache_key"] == acc(first)["cache_key"]


async def test_json_and_form_bodies_are_keyed_by_content(origin, make_backend):
    backend = make_backend(allowed_methods=("GET", "POST"), ignored_params=("nonce",))
    async with CachedClient(cache=backend) as client:
        await client.post(origin("/echo"), json={"a": 1, "b": [1, 2], "nonce": "x"})
        same = await client.post(origin("/echo"), json={"b": [1, 2], "a": 1, "nonce": "y"})
        assert acc(same)["from_cache"] is True  # key order and ignored keys do not count
        spaced = await client.post(
            origin("/echo"),
            content=b'{"a": 1, "b": [1, 2]}',
            headers={"Content-Type": "application/json"},
        )
        assert acc(spaced)["from_cache"] is True  # the same JSON, spelt differently
        other = await client.post(origin("/echo"), json={"a": 2})
        assert acc(other)["from_cache"] is False
        form = await client.post(origin("/echo"), data={"a": "1", "nonce": "1"})
        assert acc(form)["from_cache"] is False  # a form is not a JSON body
        refill = await client.post(origin("/echo"), data={"nonce": "2", "a": "1"})
        assert acc(refill)["from_cache"] is True
        plain = await client.post(origin("/echo"), content=b"a=1")
        assert acc(plain)["from_cache"] is False  # raw bytes, not declared as a form
    assert origin.hits["/echo"] == 4


async def test_a_streaming_request_body_bypasses_the_cache(origin, make_backend):
    async def upload() -> AsyncIterator[bytes]:
        yield b"part one, "
        yield b"part two"

    backend = make_backend(allowed_methods=("GET", "POST"))
    async with CachedClient(cache=backend) as client:
        await client.get(origin("/echo"))
        sent = await client.post(origin("/echo"), content=upload())
        assert sent.json()["body"] == "part one, part two"
        assert acc(sent)["cache_key"] is None
        assert acc(sent)["stored"] is False
        assert client.cache.stats.bypassed == 1
        # A bypassed unsafe request still invalidates the target's entries.
        assert acc(await client.get(origin("/echo")))["from_cache"] is False


async def test_redirects_are_followed_above_the_transport_hop_by_hop(origin, make_backend):
    async with CachedClient(cache=make_backend(), follow_redirects=True) as client:
        first = await client.get(origin("/redirect"))
        second = await client.get(origin("/redirect"))
    for response in (first, second):
        assert response.json()["query"] == {"from": "redirect"}
        assert [hop.status_code for hop in response.history] == [302]
        assert acc(response.history[0])["stored"] is False  # 302 is not in allowed_codes
    assert acc(first)["from_cache"] is False
    assert acc(second)["from_cache"] is True
    assert origin.hits["/redirect"] == 2
    assert origin.hits["/json"] == 1


async def test_stale_while_revalidate_and_aclose_awaits_the_refresh(origin, make_backend):
    url = http(origin, "swr", cc="max-age=1, stale-while-revalidate=60", age="10")
    client = CachedClient(cache=make_backend(cache_control=True))
    await client.get(url)
    stale = await client.get(url)
    assert (acc(stale)["from_cache"], acc(stale)["stale"], acc(stale)["is_expired"]) == (
        True,
        True,
        True,
    )
    assert stale.json()["count"] == 1
    tasks = client.pending_refreshes
    assert len(tasks) == 1
    assert not tasks[0].done()
    await client.aclose()
    assert all(task.done() and not task.cancelled() for task in tasks)
    assert client.pending_refreshes == ()
    assert origin.hits["/http/swr"] == 2


async def test_stale_if_error_on_a_500(origin, make_backend):
    async with CachedClient(cache=make_backend(cache_control=True)) as client:
        url = http(origin, "sie", cc="max-age=1, stale-if-error=60", age="10")
        await client.get(url)
        origin.force_status["sie"] = 500
        stale = await client.get(url)
        assert stale.status_code == 200
        assert (acc(stale)["from_cache"], acc(stale)["stale"]) == (True, True)
        assert stale.json()["count"] == 1
    assert origin.answered[-1] == ("/http/sie", 500)


@asynccontextmanager
async def short_lived_origin() -> AsyncIterator[str]:
    """A second real server, stopped when the block ends: its port then refuses."""

    async def handler(request: web.Request) -> web.Response:
        # Ten seconds old, fresh for one: stale on arrival, kept for its validator.
        headers = {"Cache-Control": "max-age=1", "Age": "10", "ETag": '"alive"'}
        return web.json_response({"alive": True}, headers=headers)

    app = web.Application()
    app.router.add_get("/", handler)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        yield f"http://127.0.0.1:{port}/"
    finally:
        await runner.cleanup()


def refuses(url: str) -> bool:
    port = int(url.rsplit(":", 1)[1].strip("/"))
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) != 0


async def test_stale_if_error_on_a_refused_connection(make_backend):
    window = CachedClient(cache=make_backend(cache_control=True, stale_if_error=60))
    no_window = CachedClient(cache=make_backend(cache_control=True))
    async with window, no_window:
        async with short_lived_origin() as url:
            await window.get(url)
            await no_window.get(url)
        assert refuses(url)
        stale = await window.get(url)
        assert (stale.status_code, acc(stale)["from_cache"], acc(stale)["stale"]) == (
            200,
            True,
            True,
        )
        assert stale.json() == {"alive": True}
        with pytest.raises(httpx.ConnectError):
            await no_window.get(url)


async def test_a_cache_transport_is_not_wrapped_twice():
    with pytest.raises(ConfigError, match=r"^transport"):
        CachedClient(transport=CacheTransport())
