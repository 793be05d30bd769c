"""The scenario driver: one set of session scenarios for every client binding and backend.

A scenario talks to a :class:`ScenarioClient`, which hides the binding's argument shapes
and response type: ``await client.get(url, headers=..., auth=(user, password),
expire_after=..., refresh=..., force_refresh=..., only_if_cached=...)`` returns a
:class:`Result` (status, body, headers, url, history, and the cache flags). There is one
implementation over ``acc.sessions.aiohttp.CachedSession`` and one over
``acc.sessions.httpx.CachedClient``.

Fixtures:

* ``client_factory(**backend_options)`` -> a client over a new backend; parametrised over
  binding (aiohttp, httpx) x backend (memory, SQLite in ``tmp_path``, a folder of files
  in ``tmp_path``, Redis from the ``redis_url`` fixture under a unique cache name,
  cleared afterwards).
* ``make_backend(**options)`` -> a backend of the parametrised kind, on the test's clock.
* ``make_client(cache, headers=None)`` -> a client of the parametrised binding over any
  backend (for scenarios that build their own backend: only the binding is parametrised).
* ``clock``: the :class:`FakeClock` every backend made here reads; ``clock.advance(s)``
  moves time for expiry, stale windows and revalidation instead of sleeping. It starts
  at the real time and only moves forward, so native storage expiry (real time) never
  drops an entry before the policy is done with it.
* ``until(predicate, what)``: wait for a condition, polling, with a generous timeout.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import AsyncIterator, Callable, Mapping
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Protocol

import aiohttp
import attrs
import pytest
from multidict import CIMultiDict, CIMultiDictProxy

from acc.core import CacheBackend

UNSET: Any = object()
"""Leave a per-request option out, so that the binding's default applies."""

BINDINGS = ("aiohttp", "httpx")
BACKENDS = ("memory", "sqlite", "filesystem", "redis")

WAIT_TIMEOUT = 30.0
"""Seconds a scenario waits for something that takes milliseconds (a busy machine)."""


class FakeClock:
    """A clock for ``CacheBackend(clock=...)``: aware UTC, moved by hand."""

    def __init__(self, start: datetime | None = None) -> None:
        self._now = start or datetime.now(timezone.utc)

    def __call__(self) -> datetime:
        return self._now

    def advance(self, seconds: float) -> datetime:
        """Move forward by ``seconds``; return the new time."""
        assert seconds >= 0, "the clock only moves forward"
        self._now += timedelta(seconds=seconds)
        return self._now


@attrs.frozen
class Result:
    """A response, whichever binding produced it, with its body read."""

    status: int
    body: bytes
    headers: CIMultiDictProxy[str]
    url: str
    history: tuple[int, ...]
    from_cache: bool
    revalidated: bool
    stale: bool
    cache_key: str | None
    created_at: datetime | None
    expires: datetime | None

    def json(self) -> Any:
        return json.loads(self.body)

    def seconds_left(self, now: datetime) -> float:
        """Seconds of freshness left at ``now``."""
        assert self.expires is not None
        return (self.expires - now).total_seconds()


class ScenarioClient(Protocol):
    """What a scenario needs of a caching client."""

    binding: str
    cache: CacheBackend
    network_errors: tuple[type[BaseException], ...]
    """What the client raises when the origin cannot be reached."""
    caches_redirect_chains: bool
    """Whether one entry answers a whole redirect chain (aiohttp follows redirects below
    the cache); httpx follows them above its transport, so each hop is cached on its own."""

    async def request(
        self,
        method: str,
        url: str,
        *,
        headers: Mapping[str, str] | None = None,
        auth: tuple[str, str] | None = None,
        json: Any = UNSET,
        content: bytes | None = None,
        expire_after: Any = UNSET,
        refresh: bool = False,
        force_refresh: bool = False,
        only_if_cached: bool = False,
    ) -> Result: ...

    async def get(self, url: str, **kwargs: Any) -> Result: ...

    async def post(self, url: str, **kwargs: Any) -> Result: ...

    @property
    def pending_refreshes(self) -> tuple[asyncio.Task[None], ...]:
        """The background refreshes (stale-while-revalidate) still running."""
        ...

    async def drain_refreshes(self) -> None:
        """Wait for the background refreshes running now."""
        ...

    async def close(self) -> None: ...


def _options(
    expire_after: Any, refresh: bool, force_refresh: bool, only_if_cached: bool
) -> dict[str, Any]:
    options: dict[str, Any] = {}
    if expire_after is not UNSET:
        options["expire_after"] = expire_after
    if refresh:
        options["refresh"] = True
    if force_refresh:
        options["force_refresh"] = True
    if only_if_cached:
        options["only_if_cached"] = True
    return options


class _Base:
    """What the two drivers share."""

    binding = ""
    cache: CacheBackend

    async def request(
        self,
        method: str,
        url: str,
        *,
        headers: Mapping[str, str] | None = None,
        auth: tuple[str, str] | None = None,
        json: Any = UNSET,
        content: bytes | None = None,
        expire_after: Any = UNSET,
        refresh: bool = False,
        force_refresh: bool = False,
        only_if_cached: bool = False,
    ) -> Result:
        raise NotImplementedError

    async def get(self, url: str, **kwargs: Any) -> Result:
        return await self.request("GET", url, **kwargs)

    async def post(self, url: str, **kwargs: Any) -> Result:
        return await self.request("POST", url, **kwargs)

    @property
    def pending_refreshes(self) -> tuple[asyncio.Task[None], ...]:
        raise NotImplementedError

    async def drain_refreshes(self) -> None:
        tasks = self.pending_refreshes
        if tasks:
            await asyncio.wait_for(asyncio.gather(*tasks), WAIT_TIMEOUT)


class AiohttpClient(_Base):
    """The driver over ``acc.sessions.aiohttp.CachedSession``."""

    binding = "aiohttp"
    caches_redirect_chains = True
    network_errors: tuple[type[BaseException], ...] = (aiohttp.ClientConnectionError,)

    def __init__(self, cache: CacheBackend, *, headers: Mapping[str, str] | None = None) -> None:
        from acc.sessions.aiohttp import CachedSession

        self.cache = cache
        self.session = CachedSession(cache=cache, headers=headers)

    async def request(
        self,
        method: str,
        url: str,
        *,
        headers: Mapping[str, str] | None = None,
        auth: tuple[str, str] | None = None,
        json: Any = UNSET,
        content: bytes | None = None,
        expire_after: Any = UNSET,
        refresh: bool = False,
        force_refresh: bool = False,
        only_if_cached: bool = False,
    ) -> Result:
        kwargs = _options(expire_after, refresh, force_refresh, only_if_cached)
        if headers is not None:
            kwargs["headers"] = dict(headers)
        if auth is not None:
            kwargs["auth"] = aiohttp.BasicAuth(*auth)
        if json is not UNSET:
            kwargs["json"] = json
        if content is not None:
            kwargs["data"] = content
        async with self.session.request(method, url, **kwargs) as response:
            body = await response.read()
            return Result(
                status=response.status,
                body=body,
                headers=CIMultiDictProxy(CIMultiDict(response.headers)),
                url=str(response.url),
                history=tuple(hop.status for hop in response.history),
                from_cache=response.from_cache,
                revalidated=response.revalidated,
                # Every response carries it, but the typing protocol of the binding
                # (acc.sessions.aiohttp.protocols.CacheAwareResponse) does not list it.
                stale=response.stale,  # type: ignore[attr-defined]
                cache_key=response.cache_key,
                created_at=response.created_at,
                expires=response.expires,
            )

    @property
    def pending_refreshes(self) -> tuple[asyncio.Task[None], ...]:
        return self.session.pending_refreshes

    async def close(self) -> None:
        if not self.session.closed:
            await self.session.close()


class HttpxClient(_Base):
    """The driver over ``acc.sessions.httpx.CachedClient``."""

    binding = "httpx"
    caches_redirect_chains = False
    network_errors: tuple[type[BaseException], ...]

    def __init__(self, cache: CacheBackend, *, headers: Mapping[str, str] | None = None) -> None:
        import httpx

        from acc.sessions.httpx import CachedClient

        self.cache = cache
        self.network_errors = (httpx.TransportError,)
        # aiohttp follows redirects by default and httpx does not: the scenarios expect it.
        self.client = CachedClient(cache=cache, headers=headers, follow_redirects=True)
        self._closed = False

    async def request(
        self,
        method: str,
        url: str,
        *,
        headers: Mapping[str, str] | None = None,
        auth: tuple[str, str] | None = None,
        json: Any = UNSET,
        content: bytes | None = None,
        expire_after: Any = UNSET,
        refresh: bool = False,
        force_refresh: bool = False,
        only_if_cached: bool = False,
    ) -> Result:
        kwargs: dict[str, Any] = {}
        options = _options(expire_after, refresh, force_refresh, only_if_cached)
        if options:
            kwargs["extensions"] = {"acc": options}
        if headers is not None:
            kwargs["headers"] = dict(headers)
        if auth is not None:
            kwargs["auth"] = auth
        if json is not UNSET:
            kwargs["json"] = json
        if content is not None:
            kwargs["content"] = content
        response = await self.client.request(method, url, **kwargs)
        body = await response.aread()
        meta = response.extensions["acc"]
        return Result(
            status=response.status_code,
            body=body,
            headers=CIMultiDictProxy(CIMultiDict(response.headers.multi_items())),
            url=str(response.url),
            history=tuple(hop.status_code for hop in response.history),
            from_cache=meta["from_cache"],
            revalidated=meta["revalidated"],
            stale=meta["stale"],
            cache_key=meta["cache_key"],
            created_at=meta["created_at"],
            expires=meta["expires"],
        )

    @property
    def pending_refreshes(self) -> tuple[asyncio.Task[None], ...]:
        return tuple(self.client.pending_refreshes)

    async def close(self) -> None:
        if not self._closed:
            self._closed = True
            await self.client.aclose()


CLIENTS: dict[str, Callable[..., ScenarioClient]] = {
    "aiohttp": AiohttpClient,
    "httpx": HttpxClient,
}


# -- fixtures ------------------------------------------------------------------------------


@pytest.fixture(params=BINDINGS)
def binding(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture(params=BACKENDS)
def backend_kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def client_type(binding: str) -> Callable[..., ScenarioClient]:
    """The driver class of the parametrised binding (for tests that run their own loops)."""
    return CLIENTS[binding]


@pytest.fixture
async def make_client(
    client_type: Callable[..., ScenarioClient],
) -> AsyncIterator[Callable[..., ScenarioClient]]:
    """``make_client(cache, headers=None)``: a client of the binding; closed afterwards."""
    made: list[ScenarioClient] = []

    def factory(cache: CacheBackend, *, headers: Mapping[str, str] | None = None) -> Any:
        client = client_type(cache, headers=headers)
        made.append(client)
        return client

    yield factory
    for client in made:
        await client.close()


@pytest.fixture
async def make_backend(
    backend_kind: str, clock: FakeClock, tmp_path: Path, request: pytest.FixtureRequest
) -> AsyncIterator[Callable[..., CacheBackend]]:
    """``make_backend(**options)``: a backend of the parametrised kind on the test's clock."""
    made: list[CacheBackend] = []
    redis_url = request.getfixturevalue("redis_url") if backend_kind == "redis" else ""
    redis_names: list[str] = []

    def factory(**options: Any) -> CacheBackend:
        options.setdefault("clock", clock)
        backend: CacheBackend
        if backend_kind == "memory":
            backend = CacheBackend(**options)
        elif backend_kind == "sqlite":
            from acc.backends.sqlite import SQLiteBackend

            backend = SQLiteBackend(str(tmp_path / f"cache-{len(made)}.sqlite"), **options)
        elif backend_kind == "filesystem":
            from acc.backends.filesystem import FileBackend

            backend = FileBackend(tmp_path / f"files-{len(made)}", **options)
        else:
            from acc.backends.redis import RedisBackend

            name = f"scenario-{uuid.uuid4().hex[:12]}"
            redis_names.append(name)
            backend = RedisBackend(name, url=redis_url, **options)
        made.append(backend)
        return backend

    yield factory
    for backend in made:
        await backend.close()
    if redis_names:
        from acc.backends.redis import RedisBackend

        for name in redis_names:
            async with RedisBackend(name, url=redis_url) as leftovers:
                await leftovers.clear()


@pytest.fixture
def client_factory(
    binding: str,  # first, so that test ids read [binding-backend]
    make_backend: Callable[..., CacheBackend],
    make_client: Callable[..., ScenarioClient],
) -> Callable[..., Any]:
    """``client_factory(headers=None, **backend_options)``: a client over a new backend."""

    def factory(*, headers: Mapping[str, str] | None = None, **options: Any) -> Any:
        return make_client(make_backend(**options), headers=headers)

    return factory


async def _until(predicate: Callable[[], bool], what: str, timeout: float = WAIT_TIMEOUT) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"waited {timeout:.0f}s for {what}")
        await asyncio.sleep(0.002)


@pytest.fixture
def until() -> Callable[..., Any]:
    """``await until(predicate, what)``: poll until true; fail after a generous timeout."""
    return _until
