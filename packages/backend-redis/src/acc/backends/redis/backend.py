"""The Redis cache backend: :class:`RedisBackend`, and its cross-process fetch lock.

With ``lock=True`` the backend coordinates misses between processes. The session calls
:meth:`RedisBackend.fetch_lock` around the fetch and store of a missing key (after
coalescing the identical requests of its own process); the lock is a Redis key
``<cache_name>:lock:<key>`` set with ``SET NX PX`` and a random token:

* the process that sets it checks that the entry did not appear meanwhile (else the
  session looks again), fetches, stores, and then deletes the lock with a
  compare-and-delete script (``EVAL``), so it can only ever release its own lock, never
  one that expired and was taken by another process meanwhile;
* the others poll the lock (a few ``EXISTS`` per second, growing from 10 ms to 100 ms)
  until it is gone, then look in the cache again; after ``lock_timeout`` seconds they
  stop waiting and fetch anyway. The lock itself expires after ``lock_timeout``, so a
  process that died holding it delays the others by that much at most.

The lock is an optimisation like the cache: any Redis error while taking or releasing it
lets the request fetch as if there were no lock.
"""

from __future__ import annotations

import asyncio
import logging
import math
import secrets
import time
from collections.abc import AsyncIterator, Awaitable, Mapping
from contextlib import AbstractAsyncContextManager, asynccontextmanager, nullcontext
from typing import Any, TypeVar
from urllib.parse import parse_qs, urlencode, urlsplit

from redis.asyncio import connection as redis_connection

from acc.backends.redis.cache import LOCK_STORE, RedisCache, check_cache_name
from acc.backends.redis.connection import (
    DEFAULT_RETRIES,
    DEFAULT_SOCKET_CONNECT_TIMEOUT,
    DEFAULT_SOCKET_TIMEOUT,
    RedisClient,
    RedisConnection,
    check_url,
    redact_url,
)
from acc.core.backend import CacheBackend
from acc.core.errors import BackendError, ConfigError
from acc.core.url_options import CACHE_OPTIONS, OptionsTable, parse_url_options, url_scheme

__all__ = ["DEFAULT_LOCK_TIMEOUT", "URL_OPTIONS", "RedisBackend"]

logger = logging.getLogger("acc")

DEFAULT_LOCK_TIMEOUT = 10.0
"""Seconds a process waits for another's fetch (and the life of an abandoned lock)."""

SCHEMES = ("redis", "rediss", "unix", "redis+cluster", "rediss+cluster")
"""The URL schemes :meth:`RedisBackend.from_url` accepts (all registered entry points)."""

_OWN_STORES = ("responses", "redirects")
_T = TypeVar("_T")
_FIRST_POLL = 0.01
_MAX_POLL = 0.1
# Deletes the lock only if it still holds our token: never another process's lock.
_RELEASE = (
    "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end return 0"
)
# Query options redis-py itself reads from a URL; passed on to it, not to the backend.
_DRIVER_QUERY_OPTIONS = frozenset(
    {
        *getattr(redis_connection, "URL_QUERY_ARGUMENT_PARSERS", {}),
        "db",
        "client_name",
        "ssl_cert_reqs",
        "ssl_ca_certs",
        "ssl_ca_path",
        "ssl_certfile",
        "ssl_keyfile",
    }
)

URL_OPTIONS: OptionsTable = {
    "cluster": bool | None,
    "socket_timeout": float | None,
    "socket_connect_timeout": float | None,
    "retries": int,
    "auto_pipeline": bool,
    "lock": bool,
    "lock_timeout": float,
}
"""The options of :class:`RedisBackend` a URL query may set, besides ``CacheBackend``'s.

The server comes from the URL itself; ``client`` and ``connection_options`` are objects
that only code can pass.
"""


class RedisBackend(CacheBackend):
    """A cache in Redis (or Valkey, DragonflyDB): one key per entry, native expiry.

    The two stores (``responses``, ``redirects``) share one client. Many processes and
    machines may share one cache; ``lock=True`` also makes them share fetches.

    Args:
        cache_name: The prefix of the cache's keys (``<cache_name>:responses:<key>``);
            caches with different names in one database never touch each other. No ``:``.
        url: The server: ``redis://[user:password@]host[:port][/db]``, ``rediss://``
            (TLS), ``unix:///path/redis.sock[?db=N]``, ``redis+cluster://host:port`` or
            ``rediss+cluster://`` (a cluster: any one node). Default
            ``redis://localhost:6379/0``.
        client: A ``redis.asyncio.Redis`` or ``RedisCluster`` you own, instead of ``url``
            and connection options; acc never closes it.
        cluster: Use a ``RedisCluster`` client with ``url`` (same as ``redis+cluster://``).
        socket_timeout: Seconds a command may take (default 5): a command that times out
            is not retried. A request waits on storage at most its ``storage_budget``
            in all (default 1 s), whatever this says.
        socket_connect_timeout: Seconds to wait for a connection (default 1): what each
            request pays at most while the server is unreachable.
        retries: Quick retries of a command after a connection error (default 1); never
            after a timeout.
        connection_options: More keyword arguments for the redis-py client
            (``ssl_ca_certs``, ``max_connections``, ``health_check_interval``, ...).
        auto_pipeline: Send the reads and writes that tasks issue in the same loop
            iteration together, in one round trip (one ``MGET`` for the reads); default
            on. A lone request is never delayed. Off, each command takes a pooled
            connection of its own (see :class:`RedisConnection`).
        lock: Coordinate misses across processes: one fetches, the others wait for its
            response (see the module docs).
        lock_timeout: Seconds to wait for another process's fetch before fetching anyway
            (default 10); also the life of a lock whose holder died.
        policy_kwargs: Every option of :class:`~acc.core.CacheBackend`.

    Raises:
        TypeError: An unknown keyword argument.
        ConfigError: An invalid value; the message names the argument.
    """

    def __init__(
        self,
        cache_name: str = "acc-cache",
        *,
        url: str | None = None,
        client: RedisClient | None = None,
        cluster: bool | None = None,
        socket_timeout: float | None = DEFAULT_SOCKET_TIMEOUT,
        socket_connect_timeout: float | None = DEFAULT_SOCKET_CONNECT_TIMEOUT,
        retries: int = DEFAULT_RETRIES,
        connection_options: Mapping[str, Any] | None = None,
        auto_pipeline: bool = True,
        lock: bool = False,
        lock_timeout: float = DEFAULT_LOCK_TIMEOUT,
        **policy_kwargs: Any,
    ) -> None:
        for name in _OWN_STORES:
            if name in policy_kwargs:
                raise TypeError(f"RedisBackend builds its own stores: {name}= is not accepted")
        check_cache_name(cache_name)
        if not isinstance(lock, bool):
            raise ConfigError("lock", f"expected True or False, not {lock!r}")
        if (
            isinstance(lock_timeout, bool)
            or not isinstance(lock_timeout, (int, float))
            or not 0 < lock_timeout <= 3600
        ):
            raise ConfigError(
                "lock_timeout", f"expected seconds above 0, at most 3600, not {lock_timeout!r}"
            )
        self.lock = lock
        """Whether misses are coordinated across processes."""
        self.lock_timeout = float(lock_timeout)
        self.connection = RedisConnection(
            url,
            client=client,
            cluster=cluster,
            socket_timeout=socket_timeout,
            socket_connect_timeout=socket_connect_timeout,
            retries=retries,
            connection_options=connection_options,
            auto_pipeline=auto_pipeline,
        )
        self._lock_prefix = f"{cache_name}:{LOCK_STORE}:".encode()
        self._stores = (
            RedisCache(cache_name, "responses", connection=self.connection),
            RedisCache(cache_name, "redirects", connection=self.connection),
        )
        super().__init__(
            cache_name,
            responses=self._stores[0],
            redirects=self._stores[1],
            **policy_kwargs,
        )

    def __repr__(self) -> str:
        where = self.connection.url
        shown = redact_url(where) if where is not None else "client"
        return f"{type(self).__name__}({self.cache_name!r}, {shown!r})"

    @property
    def client(self) -> RedisClient:
        """The redis-py client both stores use."""
        return self.connection.client

    # -- construction from a URL --------------------------------------------------------------

    @classmethod
    def from_url(cls, url: str, **options: Any) -> RedisBackend:
        """Build a backend from a Redis URL.

        * ``redis://host:6379/0``, ``rediss://user:password@host:6380/2`` (TLS);
        * ``unix:///run/redis/redis.sock?db=1``;
        * ``redis+cluster://host:7000``, ``rediss+cluster://...``: a cluster.

        Backend options go in the query (``?cache_name=my-app&expire_after=3600&lock=true``):
        those of :data:`URL_OPTIONS` and ``CacheBackend``'s, converted to the types they
        declare; the other options redis-py reads from a URL (``db``,
        ``health_check_interval``, ``ssl_cert_reqs``, ...) are passed to it. Keyword
        ``options`` override the query.

        Raises:
            ConfigError: Not a Redis URL, or an invalid value.
            TypeError: An unknown option.
        """
        scheme = url_scheme(url)
        if scheme not in SCHEMES:
            raise ConfigError("url", f"expected one of {', '.join(SCHEMES)} URLs, not {url!r}")
        check_url(url)
        parts = urlsplit(url)
        query = parse_qs(parts.query, keep_blank_values=True)
        # An option acc declares is acc's (socket_timeout too, which redis-py also reads);
        # one only redis-py knows is redis-py's; any other is refused as unknown.
        own = {
            name: values
            for name, values in query.items()
            if name in URL_OPTIONS or name in CACHE_OPTIONS or name not in _DRIVER_QUERY_OPTIONS
        }
        driver = {name: values for name, values in query.items() if name not in own}
        kwargs = parse_url_options(own, URL_OPTIONS, owner=cls.__name__)
        kwargs.update(options)
        kwargs["url"] = parts._replace(query=urlencode(driver, doseq=True)).geturl()
        return cls(**kwargs)

    # -- coordination between processes --------------------------------------------------------

    def fetch_lock(self, key: str) -> AbstractAsyncContextManager[bool]:
        """With ``lock=True``, let one process fetch ``key`` while the others wait for it.

        Yields ``False`` to the process that took the lock (or when locking failed: the
        request then fetches as usual), ``True`` to one that waited for another's fetch
        or that found the entry stored since its lookup (the session looks in the cache
        again before fetching).
        """
        if not self.lock or "closed" not in (self.read_guard.state, self.write_guard.state):
            return nullcontext(False)  # no lock, or Redis is being skipped (the breaker)
        return self._locked(key)

    @asynccontextmanager
    async def _locked(self, key: str) -> AsyncIterator[bool]:
        lock_key = self._lock_prefix + key.encode("utf-8", "surrogateescape")
        token: bytes | None = None
        waited = False
        try:
            token, waited = await self._acquire(key, lock_key)
        except Exception as exc:  # the lock must never fail a request
            logger.debug("acc: cannot take the fetch lock of %s (%r); fetching anyway", key, exc)
        try:
            yield waited
        finally:
            if token is not None:
                try:
                    await self._within_budget(
                        self.connection.run("unlock", "EVAL", _RELEASE, 1, lock_key, token)
                    )
                except Exception as exc:  # it expires by itself after lock_timeout
                    logger.debug("acc: cannot release the fetch lock of %s (%r)", key, exc)

    async def _acquire(self, key: str, lock_key: bytes) -> tuple[bytes | None, bool]:
        """Take the lock, or wait until its holder releases it.

        Returns:
            ``(token, entry already stored)`` when the lock was taken; ``(None, True)``
            after waiting for another process (released, or ``lock_timeout`` passed).
        """
        token = secrets.token_hex(16).encode()
        ttl_ms = math.ceil(self.lock_timeout * 1000)
        if await self._within_budget(
            self.connection.run("lock", "SET", lock_key, token, "NX", "PX", ttl_ms)
        ):
            # Another process may have stored the entry and released its lock between
            # our lookup and now: then look again (one round trip, on a miss only).
            try:
                stored = await self._within_budget(
                    self.connection.batch(
                        "lock", [("EXISTS", store.redis_key(key)) for store in self._stores]
                    )
                )
            except (BackendError, asyncio.TimeoutError):
                return token, False  # keep the token, so the lock is still released
            return token, any(stored)
        deadline = time.monotonic() + self.lock_timeout
        delay = _FIRST_POLL
        while (left := deadline - time.monotonic()) > 0:
            await asyncio.sleep(min(delay, left))
            delay = min(delay * 2, _MAX_POLL)
            if not await self._within_budget(self.connection.run("lock", "EXISTS", lock_key)):
                break  # the holder stored its response (or gave up): look again
        return None, True

    async def _within_budget(self, command: Awaitable[_T]) -> _T:
        """Run one lock command, given ``storage_budget`` seconds at most.

        The lock's commands are storage waits; waiting for another process's fetch is not.
        """
        budget = self.settings.storage_budget
        if budget is None:
            return await command
        return await asyncio.wait_for(command, budget)
