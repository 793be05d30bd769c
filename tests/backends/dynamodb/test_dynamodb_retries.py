"""Retries: what is sent again, how often, and what never is.

A throttling DynamoDB is played by a real HTTP server in front of the test endpoint: it
answers the first requests with DynamoDB's throttling error, as DynamoDB does over the
wire, and forwards the rest. HTTP attempts are counted through the events of the
aioboto3 session the backend's client is created from.
"""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator
from typing import Any

import aioboto3  # type: ignore[import-untyped]
import aiohttp
import pytest
from acc_services.dynamodb import dynamodb_options, unique_name
from aiohttp import web

from acc.backends.dynamodb import DynamoDBCache
from acc.core import BackendUnavailable

_THROTTLED = {
    "__type": "com.amazonaws.dynamodb.v20120810#ThrottlingException",
    "message": "Rate of requests exceeds the allowed throughput.",
}


class ThrottlingFront:
    """A real HTTP server that throttles ``GetItem`` ``throttle`` times, then forwards."""

    def __init__(self, upstream: str) -> None:
        self.upstream = upstream
        self.throttle = 0
        self.seen: list[str] = []
        self.url = ""

    async def handle(self, request: web.Request) -> web.Response:
        target = request.headers.get("X-Amz-Target", "").rsplit(".", 1)[-1]
        self.seen.append(target)
        if target == "GetItem" and self.throttle > 0:
            self.throttle -= 1
            return web.json_response(
                _THROTTLED, status=400, content_type="application/x-amz-json-1.0"
            )
        headers = {k: v for k, v in request.headers.items() if k.lower() != "host"}
        async with (
            aiohttp.ClientSession() as client,
            client.post(self.upstream, data=await request.read(), headers=headers) as answer,
        ):
            return web.Response(
                body=await answer.read(),
                status=answer.status,
                content_type=answer.content_type,
            )


@pytest.fixture
async def front(dynamodb_url: str) -> AsyncIterator[ThrottlingFront]:
    upstream = dynamodb_options(dynamodb_url)["endpoint_url"]
    server = ThrottlingFront(upstream)
    app = web.Application()
    app.router.add_post("/", server.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    server.url = f"http://127.0.0.1:{runner.addresses[0][1]}"
    try:
        yield server
    finally:
        await runner.cleanup()


def _store(endpoint: str, session: Any = None, **options: Any) -> DynamoDBCache:
    return DynamoDBCache(
        "acc-tests",
        "responses",
        cache_name=unique_name("retry"),
        create_table=True,
        region="us-east-1",
        endpoint_url=endpoint,
        session=session,
        # Generous: the front and moto answer on this machine, however loaded it is.
        connect_timeout=10,
        read_timeout=30,
        **options,
    )


async def test_a_throttled_request_is_sent_again_up_to_max_attempts(
    front: ThrottlingFront,
) -> None:
    store = _store(front.url, max_attempts=3)
    try:
        await store.write("k", b"v")
        front.throttle = 2
        front.seen.clear()
        assert await store.read("k") == b"v"  # third time lucky
        assert front.seen == ["GetItem"] * 3
    finally:
        await store.close()


async def test_throttling_beyond_max_attempts_is_backend_unavailable(
    front: ThrottlingFront,
) -> None:
    store = _store(front.url)  # the default: 2 attempts
    try:
        await store.write("k", b"v")
        front.throttle = 10
        front.seen.clear()
        with pytest.raises(BackendUnavailable, match="ThrottlingException"):
            await store.read("k")
        assert front.seen == ["GetItem"] * 2
    finally:
        await store.close()


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


async def test_a_refused_connection_is_never_retried(aws_environment: None) -> None:
    """An endpoint that is down costs one connection attempt per operation, no sleep."""
    session = aioboto3.Session()
    sends: list[str] = []
    session.events.register("before-send.dynamodb", lambda **kw: sends.append(kw["event_name"]))
    store = _store(f"http://127.0.0.1:{_closed_port()}", session=session, max_attempts=5)
    try:
        for _ in range(3):
            with pytest.raises(BackendUnavailable, match="Could not connect"):
                await store.read("k")
        assert sends == ["before-send.dynamodb.DescribeTable"] * 3  # once per operation
    finally:
        await store.close()
