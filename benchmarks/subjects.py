"""What is measured: a client library on a storage backend.

Two families, each with its baseline:

- aiohttp: ``acc`` (:mod:`acc.sessions.aiohttp`), ``acc+near`` (acc with
  :class:`~acc.core.storage.near.NearCache` in front of a remote store),
  ``aiohttp-client-cache`` (0.15, when installed) and plain ``aiohttp``;
- httpx: ``acc-httpx`` (:class:`acc.sessions.httpx.CachedClient`), ``hishel`` (1.x, when
  installed: ``hishel.httpx.AsyncCacheClient`` with ``FilterPolicy()``, which stores every
  response as acc does by default) and plain ``httpx``.

The plain clients (no cache: the baseline every cache must beat) have no backend; each
runs once per workload as backend ``none``. Backends: ``memory``, ``sqlite`` and
``redis``. hishel has no in-memory storage: its ``memory`` is its SQLite storage on an
SQLite ``:memory:`` database (:data:`HISHEL_MEMORY`).

The workloads speak aiohttp's shape, ``async with session.get(url) as r: await r.read()``;
the three httpx clients are wrapped in one thin adapter, :class:`HttpxSession`, so that
what it costs is the same for all three.

Adding a backend: add a branch for it to ``_acc_cache``, ``_open_acc015`` and
``_open_hishel`` below, its name to :data:`BACKENDS` and, if it needs a server, a check
to :func:`backend_unavailable`.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import sys
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any

from aiohttp import ClientSession

if TYPE_CHECKING:
    import httpx

    from acc.core import CacheBackend

__all__ = [
    "ACC",
    "ACC015",
    "ACC_HTTPX",
    "ACC_NEAR",
    "BACKENDS",
    "CLIENTS",
    "HISHEL",
    "HISHEL_MEMORY",
    "HTTPX",
    "NO_BACKEND",
    "PLAIN",
    "REMOTE_BACKENDS",
    "UNCACHED",
    "HttpxSession",
    "backend_unavailable",
    "client_unavailable",
    "open_session",
    "preload",
]

ACC = "acc"
ACC_NEAR = "acc+near"
ACC015 = "aiohttp-client-cache"
PLAIN = "aiohttp"
ACC_HTTPX = "acc-httpx"
HISHEL = "hishel"
HTTPX = "httpx"
CLIENTS = (ACC, ACC_NEAR, ACC015, PLAIN, ACC_HTTPX, HISHEL, HTTPX)
UNCACHED = frozenset({PLAIN, HTTPX})
"""The plain clients: no cache, no backend (they run as backend ``none``)."""
HISHEL_MEMORY = "SQLite :memory: (hishel has no in-memory storage)"
"""What hishel's ``memory`` backend is."""
BACKENDS = ("memory", "sqlite", "redis")
REMOTE_BACKENDS = frozenset({"redis"})
"""Backends behind a network hop: ``acc+near`` (acc with a near cache) runs on these."""
NO_BACKEND = "none"

REDIS_URL = os.environ.get("ACC_BENCH_REDIS_URL", "redis://127.0.0.1:6379/15")
"""The Redis database the benchmark uses (and clears): database 15 by default."""
REDIS_PARSER = os.environ.get("ACC_BENCH_REDIS_PARSER", "default")
"""How redis-py parses replies, for every Redis client of a run (acc's and the rivals'):
``default`` is redis-py's own choice (hiredis, which the bench env installs, as
``acc-backend-redis[hiredis]`` does); ``python`` hides hiredis from this process before
redis-py is imported, so one run with each measures with and without hiredis."""
if REDIS_PARSER == "python":
    if "redis" in sys.modules:
        raise RuntimeError("ACC_BENCH_REDIS_PARSER=python: redis-py was imported already")
    sys.modules["hiredis"] = None  # type: ignore[assignment]  # `import hiredis` fails
elif REDIS_PARSER != "default":
    raise ValueError(f"ACC_BENCH_REDIS_PARSER: expected default or python, not {REDIS_PARSER!r}")


def client_unavailable(client: str) -> str | None:
    """Why ``client`` cannot run here, or ``None`` when it can."""
    if client == ACC015 and importlib.util.find_spec("aiohttp_client_cache") is None:
        return "aiohttp-client-cache is not installed (use the `bench` hatch env)"
    if client in (ACC_HTTPX, HISHEL, HTTPX) and importlib.util.find_spec("httpx") is None:
        return "httpx is not installed"
    if client == ACC_HTTPX and importlib.util.find_spec("acc.sessions.httpx") is None:
        return "acc-session-httpx is not installed"
    if client == HISHEL and importlib.util.find_spec("hishel") is None:
        return "hishel is not installed (use the `bench` hatch env)"
    return None


def backend_unavailable(backend: str) -> str | None:
    """Why ``backend`` cannot run here, or ``None`` when it can."""
    if backend != "redis":
        return None
    try:
        module = importlib.import_module("acc.backends.redis")
    except ImportError:
        return "acc.backends.redis is not installed"
    if not hasattr(module, "RedisBackend"):
        return "acc.backends.redis has no RedisBackend yet"
    try:
        import redis
    except ImportError:
        return "the redis package is not installed"
    try:
        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=1).ping()
    except Exception as exc:
        return f"no Redis server at {REDIS_URL}: {exc}"
    return None


def preload(client: str, backend: str) -> None:
    """Import what ``client`` on ``backend`` uses, so a cold start times no imports."""
    modules = {
        ACC: ["acc.core", "acc.sessions.aiohttp", "acc.backends.sqlite"],
        ACC_NEAR: ["acc.core", "acc.core.storage.near", "acc.sessions.aiohttp"],
        ACC015: ["aiohttp_client_cache"],
        PLAIN: [],
        ACC_HTTPX: ["acc.core", "acc.sessions.httpx", "acc.backends.sqlite"],
        HISHEL: ["hishel", "hishel.httpx", "anysqlite", "redis.asyncio"],
        HTTPX: ["httpx"],
    }[client]
    if client in (ACC, ACC_NEAR, ACC_HTTPX) and backend == "redis":
        modules.append("acc.backends.redis")
    for module in modules:
        importlib.import_module(module)


def _sqlite_file(workdir: Path, name: str, fresh: bool) -> Path:
    path = workdir / f"{name}.sqlite"
    if fresh:
        for suffix in ("", "-wal", "-shm"):
            Path(f"{path}{suffix}").unlink(missing_ok=True)
    return path


# -- acc -------------------------------------------------------------------------------------


async def _acc_cache(
    backend: str, workdir: Path, fresh: bool, name: str, *, near_cache: bool = False
) -> CacheBackend:
    """An acc backend; ``name`` keeps each client's caches apart."""
    from acc.core import CacheBackend

    cache: CacheBackend
    if backend == "memory":
        cache = CacheBackend(near_cache=near_cache)
    elif backend == "sqlite":
        from acc.backends.sqlite import SQLiteBackend

        cache = SQLiteBackend(_sqlite_file(workdir, name, fresh), near_cache=near_cache)
    elif backend == "redis":
        cache = CacheBackend.from_url(REDIS_URL, cache_name=f"bench-{name}", near_cache=near_cache)
        if fresh:
            await cache.clear()
    else:
        raise ValueError(f"unknown backend {backend!r}")
    return cache


@asynccontextmanager
async def _open_acc(
    backend: str, workdir: Path, fresh: bool, name: str, *, near_cache: bool = False
) -> AsyncIterator[Any]:
    from acc.sessions.aiohttp import CachedSession

    cache = await _acc_cache(backend, workdir, fresh, f"acc-{name}", near_cache=near_cache)
    async with CachedSession(cache=cache) as session:
        yield session


@asynccontextmanager
async def _open_acc_near(backend: str, workdir: Path, fresh: bool, name: str) -> AsyncIterator[Any]:
    """Acc with a near cache in front of both stores (``near_cache=True``)."""
    async with _open_acc(backend, workdir, fresh, name, near_cache=True) as session:
        yield session


# -- aiohttp-client-cache 0.15 ----------------------------------------------------------------


@asynccontextmanager
async def _open_acc015(backend: str, workdir: Path, fresh: bool, name: str) -> AsyncIterator[Any]:
    acc015: Any = importlib.import_module("aiohttp_client_cache")  # in the bench env only
    cache: Any
    if backend == "memory":
        cache = acc015.CacheBackend()
    elif backend == "sqlite":
        cache = acc015.SQLiteBackend(cache_name=str(_sqlite_file(workdir, f"acc015-{name}", fresh)))
    elif backend == "redis":
        cache = acc015.RedisBackend(cache_name=f"acc015-bench-{name}", address=REDIS_URL)
        if fresh:
            await cache.clear()
    else:
        raise ValueError(f"unknown backend {backend!r}")
    async with acc015.CachedSession(cache=cache) as session:
        yield session


@asynccontextmanager
async def _open_plain(backend: str, workdir: Path, fresh: bool, name: str) -> AsyncIterator[Any]:
    async with ClientSession() as session:
        yield session


# -- the httpx family ------------------------------------------------------------------------


class HttpxSession:
    """The workloads' shape over an :class:`httpx.AsyncClient` (or a subclass).

    ``async with session.get(url) as r: await r.read()`` is ``await client.get(url)``
    (which reads the body) and ``r.read()`` returns ``response.content``. The same adapter
    wraps acc-httpx, hishel and plain httpx, so its few hundred nanoseconds are the same
    for all three.
    """

    __slots__ = ("client",)

    def __init__(self, client: httpx.AsyncClient) -> None:
        self.client = client

    def get(self, url: str) -> _HttpxGet:
        return _HttpxGet(self.client, url)


class _HttpxGet:
    """One request: an async context manager yielding itself, with ``status`` and ``read()``."""

    __slots__ = ("_client", "_url", "response", "status")

    def __init__(self, client: httpx.AsyncClient, url: str) -> None:
        self._client = client
        self._url = url

    async def __aenter__(self) -> _HttpxGet:
        self.response = await self._client.get(self._url)
        self.status = self.response.status_code
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        return None

    async def read(self) -> bytes:
        return self.response.content


@asynccontextmanager
async def _open_acc_httpx(
    backend: str, workdir: Path, fresh: bool, name: str
) -> AsyncIterator[Any]:
    from acc.sessions.httpx import CachedClient

    cache = await _acc_cache(backend, workdir, fresh, f"acc-httpx-{name}")
    async with CachedClient(cache=cache) as client:
        yield HttpxSession(client)


@asynccontextmanager
async def _open_hishel(backend: str, workdir: Path, fresh: bool, name: str) -> AsyncIterator[Any]:
    hishel: Any = importlib.import_module("hishel")  # in the bench env only
    hishel_httpx: Any = importlib.import_module("hishel.httpx")
    storage: Any
    if backend == "memory":  # no in-memory storage: SQLite's (HISHEL_MEMORY)
        anysqlite: Any = importlib.import_module("anysqlite")
        storage = hishel.AsyncSqliteStorage(connection=await anysqlite.connect(":memory:"))
    elif backend == "sqlite":
        path = _sqlite_file(workdir, f"hishel-{name}", fresh)
        storage = hishel.AsyncSqliteStorage(database_path=path)
    elif backend == "redis":
        from redis.asyncio import Redis

        prefix = f"hishel-bench-{name}"
        client = Redis.from_url(REDIS_URL)
        if fresh:
            async for key in client.scan_iter(match=f"{prefix}:*", count=1000):
                await client.delete(key)
        storage = hishel.AsyncRedisStorage(client=client, key_prefix=prefix)
    else:
        raise ValueError(f"unknown backend {backend!r}")
    # FilterPolicy() with no filters stores every response, whatever its headers, as acc
    # does by default (the default SpecificationPolicy would follow RFC 9111).
    policy = hishel.FilterPolicy()
    async with hishel_httpx.AsyncCacheClient(storage=storage, policy=policy) as client:
        yield HttpxSession(client)


@asynccontextmanager
async def _open_httpx(backend: str, workdir: Path, fresh: bool, name: str) -> AsyncIterator[Any]:
    import httpx

    async with httpx.AsyncClient() as client:
        yield HttpxSession(client)


_OPENERS: dict[str, Callable[[str, Path, bool, str], AbstractAsyncContextManager[Any]]] = {
    ACC: _open_acc,
    ACC_NEAR: _open_acc_near,
    ACC015: _open_acc015,
    PLAIN: _open_plain,
    ACC_HTTPX: _open_acc_httpx,
    HISHEL: _open_hishel,
    HTTPX: _open_httpx,
}


def open_session(
    client: str, backend: str, workdir: Path, *, fresh: bool = True, name: str = "main"
) -> AbstractAsyncContextManager[Any]:
    """Open a session of ``client`` on ``backend``.

    Args:
        client: The client library.
        backend: The backend.
        workdir: Where file backends keep their files.
        fresh: Empty the cache first.
        name: The cache's name (a file, a key prefix): workloads that keep a cache
            between runs use their own.
    """
    return _OPENERS[client](backend, workdir, fresh, name)


def clean_workdir(workdir: Path) -> None:
    """Remove the files the subjects left in ``workdir``."""
    shutil.rmtree(workdir, ignore_errors=True)
