"""What is measured: a client library on a storage backend.

Clients: ``acc``, ``acc+near`` (acc with :class:`~acc.core.storage.near.NearCache` in front of
a remote store), ``aiohttp-client-cache`` (0.15, when installed) and plain ``aiohttp``
(no cache: the baseline every cache must beat). Backends: ``memory``, ``sqlite`` and
``redis``. Plain aiohttp has no backend; it runs once per workload as backend ``none``.

Adding a backend: write one ``_open_<name>_acc`` and one ``_open_<name>_acc015`` context
manager below, add the name to :data:`BACKENDS` and, if it needs a server, a check to
:func:`backend_unavailable`.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path
from typing import Any

from aiohttp import ClientSession

__all__ = [
    "ACC",
    "ACC015",
    "ACC_NEAR",
    "BACKENDS",
    "CLIENTS",
    "NO_BACKEND",
    "PLAIN",
    "REMOTE_BACKENDS",
    "backend_unavailable",
    "client_unavailable",
    "open_session",
    "preload",
]

ACC = "acc"
ACC_NEAR = "acc+near"
ACC015 = "aiohttp-client-cache"
PLAIN = "aiohttp"
CLIENTS = (ACC, ACC_NEAR, ACC015, PLAIN)
BACKENDS = ("memory", "sqlite", "redis")
REMOTE_BACKENDS = frozenset({"redis"})
"""Backends behind a network hop: ``acc+near`` (acc with a near cache) runs on these."""
NO_BACKEND = "none"

REDIS_URL = os.environ.get("ACC_BENCH_REDIS_URL", "redis://127.0.0.1:6379/15")
"""The Redis database the benchmark uses (and clears): database 15 by default."""


def client_unavailable(client: str) -> str | None:
    """Why ``client`` cannot run here, or ``None`` when it can."""
    if client == ACC015 and importlib.util.find_spec("aiohttp_client_cache") is None:
        return "aiohttp-client-cache is not installed (use the `bench` hatch env)"
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
    }[client]
    if client in (ACC, ACC_NEAR) and backend == "redis":
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


@asynccontextmanager
async def _open_acc(
    backend: str, workdir: Path, fresh: bool, name: str, *, near_cache: bool = False
) -> AsyncIterator[Any]:
    from acc.core import CacheBackend
    from acc.sessions.aiohttp import CachedSession

    cache: CacheBackend
    if backend == "memory":
        cache = CacheBackend(near_cache=near_cache)
    elif backend == "sqlite":
        from acc.backends.sqlite import SQLiteBackend

        cache = SQLiteBackend(_sqlite_file(workdir, f"acc-{name}", fresh), near_cache=near_cache)
    elif backend == "redis":
        cache = CacheBackend.from_url(
            REDIS_URL, cache_name=f"acc-bench-{name}", near_cache=near_cache
        )
        if fresh:
            await cache.clear()
    else:
        raise ValueError(f"unknown backend {backend!r}")
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


_OPENERS: dict[str, Callable[[str, Path, bool, str], AbstractAsyncContextManager[Any]]] = {
    ACC: _open_acc,
    ACC_NEAR: _open_acc_near,
    ACC015: _open_acc015,
    PLAIN: _open_plain,
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
