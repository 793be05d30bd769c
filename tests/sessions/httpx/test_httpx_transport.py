"""The transport seam: CacheTransport over an inner transport the test controls.

These are unit tests of what CacheTransport sends to and reads from the transport it
wraps (``httpx.MockTransport`` or a recording transport stands in for the network only
here); the behaviour against a real origin is in test_httpx_client.py.
"""

from __future__ import annotations

import asyncio
import gzip
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from typing import Any

import httpx
import pytest

from acc.core import CacheBackend
from acc.sessions.httpx import CachedClient, CacheTransport

URL = "http://origin.test/item"


def acc(response: httpx.Response) -> dict[str, Any]:
    info: dict[str, Any] = response.extensions["acc"]
    return info


class Recorder:
    """A handler for ``httpx.MockTransport`` that records requests and answers in turn."""

    def __init__(self, *answers: Callable[[httpx.Request], httpx.Response]) -> None:
        self.answers = list(answers)
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        answer = self.answers[min(len(self.requests), len(self.answers)) - 1]
        return answer(request)


def ok(body: bytes = b"body", **headers: str) -> Callable[[httpx.Request], httpx.Response]:
    return lambda request: httpx.Response(200, headers=headers, content=body)


async def test_wraps_any_transport_for_a_plain_async_client():
    recorder = Recorder(ok(b'{"n": 1}', **{"Content-Type": "application/json"}))
    transport = CacheTransport(httpx.MockTransport(recorder))
    async with httpx.AsyncClient(transport=transport) as client:
        first = await client.get(URL)
        second = await client.get(URL)
    assert (acc(first)["from_cache"], acc(second)["from_cache"]) == (False, True)
    assert second.json() == {"n": 1}
    assert len(recorder.requests) == 1
    assert transport.cache.closed  # autoclose: the default in-memory cache closes with it


async def test_the_inner_transport_gets_the_callers_request_and_a_copy_for_conditions():
    recorder = Recorder(
        ok(b"v1", ETag='"v1"'),
        lambda request: httpx.Response(304, headers={"ETag": '"v1"'}),
    )
    async with httpx.AsyncClient(transport=CacheTransport(httpx.MockTransport(recorder))) as c:
        first = await c.get(URL, headers={"X-Trace": "1"})
        checked = await c.get(URL, headers={"X-Trace": "1"}, extensions={"acc": {"refresh": True}})
    plain, conditional = recorder.requests
    assert plain is first.request  # the caller's own request object
    assert "if-none-match" not in plain.headers
    assert conditional.headers["If-None-Match"] == '"v1"'
    assert conditional.headers["X-Trace"] == "1"
    assert "if-none-match" not in checked.request.headers  # the caller's request is untouched
    assert (acc(checked)["revalidated"], checked.content) == (True, b"v1")


async def test_an_encoded_body_is_stored_decoded():
    payload = b"x" * 1000

    def gzipped(request: httpx.Request) -> httpx.Response:
        stream = httpx.ByteStream(gzip.compress(payload))
        return httpx.Response(200, headers={"Content-Encoding": "gzip"}, stream=stream)

    transport = CacheTransport(httpx.MockTransport(gzipped), cache=CacheBackend(autoclose=False))
    async with httpx.AsyncClient(transport=transport) as client:
        miss = await client.get(URL)
        hit = await client.get(URL)
    for response in (miss, hit):
        assert response.content == payload
        assert "content-encoding" not in response.headers
    # The miss declared no length, so it was streamed to the caller and stored as read.
    assert "content-length" not in miss.headers
    assert hit.headers["content-length"] == "1000"
    entry = await transport.cache.read_entry(acc(hit)["cache_key"])
    assert entry is not None
    assert (entry.body, entry.header("Content-Encoding")) == (payload, None)
    await transport.cache.close()


async def test_a_transport_error_is_answered_stale_if_error_allows():
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    recorder = Recorder(ok(b"kept"), refuse)
    now = [datetime(2030, 1, 1, tzinfo=timezone.utc)]
    backend = CacheBackend(expire_after=60, stale_if_error=True, clock=lambda: now[0])
    async with httpx.AsyncClient(
        transport=CacheTransport(httpx.MockTransport(recorder), cache=backend)
    ) as client:
        await client.get(URL)
        now[0] += timedelta(seconds=61)
        stale = await client.get(URL)
    assert (stale.content, acc(stale)["from_cache"], acc(stale)["stale"]) == (b"kept", True, True)
    assert len(recorder.requests) == 2


class RecordingTransport(httpx.AsyncBaseTransport):
    """An inner transport that answers after ``gate`` opens and logs its life."""

    def __init__(self, log: list[str]) -> None:
        self.log = log
        self.gate = asyncio.Event()
        self.gate.set()
        self.count = 0

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.count += 1
        await self.gate.wait()
        self.log.append(f"answered {self.count}")
        headers = {"Cache-Control": "max-age=1, stale-while-revalidate=60", "Age": "10"}
        return httpx.Response(200, headers=headers, content=str(self.count).encode())

    async def aclose(self) -> None:
        self.log.append("inner closed")


async def test_aclose_awaits_refreshes_then_closes_the_inner_transport_then_the_backend():
    log: list[str] = []
    inner = RecordingTransport(log)
    backend = CacheBackend(cache_control=True)
    transport = CacheTransport(inner, cache=backend)
    client = httpx.AsyncClient(transport=transport)
    await client.get(URL)
    inner.gate.clear()
    stale = await client.get(URL)  # served at once; the refresh waits on the gate
    assert (stale.content, acc(stale)["stale"]) == (b"1", True)
    (refresh,) = transport.pending_refreshes
    closing = asyncio.ensure_future(client.aclose())
    await asyncio.sleep(0.05)
    assert not closing.done()  # waiting for the refresh, the inner transport still open
    assert "inner closed" not in log
    inner.gate.set()
    await closing
    assert refresh.done()
    assert not refresh.cancelled()
    assert log == ["answered 1", "answered 2", "inner closed"]
    assert backend.closed


async def test_aclose_cancels_a_refresh_that_outlives_the_timeout():
    log: list[str] = []
    inner = RecordingTransport(log)
    transport = CacheTransport(inner, cache=CacheBackend(cache_control=True))
    transport.refresh_close_timeout = 0.05
    async with httpx.AsyncClient(transport=transport) as client:
        await client.get(URL)
        inner.gate.clear()
        await client.get(URL)
        (refresh,) = transport.pending_refreshes
    assert refresh.cancelled()
    assert log == ["answered 1", "inner closed"]


async def test_cached_client_wraps_the_given_transport_and_every_mount():
    main, mounted = Recorder(ok(b"main")), Recorder(ok(b"mounted"))
    mounted_inner = httpx.MockTransport(mounted)
    backend = CacheBackend(autoclose=False)
    client = CachedClient(
        cache=backend,
        transport=httpx.MockTransport(main),
        mounts={"http://mounted.test": mounted_inner},
    )
    async with client:
        for _ in range(2):
            await client.get(URL)
            last = await client.get("http://mounted.test/item")
        assert (acc(last)["from_cache"], last.content) == (True, b"mounted")
        async with client.disabled():  # one switch for every transport of the client
            assert acc(await client.get("http://mounted.test/item"))["from_cache"] is False
    assert (len(main.requests), len(mounted.requests)) == (1, 2)
    assert client.cache is backend
    assert client.cache_transport.transport is not mounted_inner
    assert not backend.closed
    await backend.close()


async def test_unknown_keys_raise_before_anything_is_sent():
    recorder = Recorder(ok())
    async with httpx.AsyncClient(transport=CacheTransport(httpx.MockTransport(recorder))) as c:
        with pytest.raises(TypeError, match=r"force_refesh.*expected some of"):
            await c.get(URL, extensions={"acc": {"force_refesh": True}})
        empty = await c.get(URL, extensions={"acc": {}})
    assert acc(empty)["stored"] is True
    assert len(recorder.requests) == 1
