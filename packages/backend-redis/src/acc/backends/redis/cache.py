"""The Redis store: :class:`RedisCache`, one namespace of keys in a Redis database.

Layout: one Redis string per entry, under ``<cache_name>:<store>:<key>`` (for example
``acc-cache:responses:3f2a...``). One key per entry, rather than one hash per namespace,
is what lets Redis expire each entry by itself and lets a cluster spread a cache over all
its nodes; it also means no command ever loads a whole namespace.

* ``write`` sets value and expiry in one ``SET ... PXAT`` (milliseconds since the epoch,
  from ``expires_at``); an entry written already expired is removed instead.
* ``read``, ``write``, ``delete`` and ``contains`` are single-key commands that go
  through the connection's automatic pipeline (unless ``auto_pipeline=False``): the
  reads of concurrent tasks become one ``MGET``, their writes share its round trip.
* ``read_many`` is one ``MGET`` (on a cluster, one per hash slot, sent in one pipeline).
* ``keys``, ``size``, ``clear`` walk the namespace with ``SCAN MATCH <prefix>*`` (never
  ``KEYS``, which blocks the server), on every primary of a cluster, holding one page of
  keys at a time; the prefix is glob-escaped, so a cache named ``a*`` never matches the
  keys of a cache named ``ab``.
* ``delete_expired`` does nothing (one ``TIME``) unless asked about a time ahead of the
  server's clock: Redis has already expired everything due before it.
* deletions use ``UNLINK`` (the memory is freed in the background) in batches of 500
  keys, all batches in one round trip.

Only core commands are used (``SET``, ``GET``, ``MGET``, ``EXISTS``, ``UNLINK``, ``SCAN``,
``TIME``, ``PEXPIRETIME``, ``EVAL`` for the lock), so Valkey and DragonflyDB work as well.
"""

from __future__ import annotations

import math
import re
import secrets
import time
from collections.abc import AsyncIterator, Iterable, Sequence
from typing import Any, ClassVar

from redis import exceptions as redis_errors

from acc.backends.redis.connection import RedisClient, RedisConnection
from acc.core.errors import BackendError, ConfigError
from acc.core.storage import BaseCache

__all__ = ["LOCK_STORE", "RedisCache", "check_cache_name", "glob_escape"]

LOCK_STORE = "lock"
"""The part of the key layout reserved for fetch locks: ``<cache_name>:lock:<key>``."""
_STORE = re.compile(r"[A-Za-z0-9_-]{1,64}\Z")
_PIECE = 1024 * 1024  # bytes per command when a large value is written in parts
_PARTIAL_TTL_MS = 60_000  # the life of a value being written in parts, if never finished
_GLOB = re.compile(rb"([\\*?\[\]])")


def glob_escape(text: bytes) -> bytes:
    r"""Escape the characters ``SCAN MATCH`` treats as a pattern (``* ? [ ] \\``)."""
    return _GLOB.sub(rb"\\\1", text)


def check_cache_name(cache_name: object) -> str:
    """Validate a cache name used as a key prefix.

    A ``:`` is refused because it would make prefixes ambiguous: the keys of cache
    ``a:responses`` would fall inside the ``responses`` store of cache ``a``, and
    clearing one cache would delete the other's entries.

    Raises:
        ConfigError: Not a non-empty string, or it contains ``:``.
    """
    if not isinstance(cache_name, str) or not cache_name:
        raise ConfigError("cache_name", f"expected a non-empty string, not {cache_name!r}")
    if ":" in cache_name:
        raise ConfigError(
            "cache_name",
            f"{cache_name!r} contains ':', which separates the parts of a Redis key; "
            "use another character, such as '-' or '.'",
        )
    return cache_name


class RedisCache(BaseCache):
    """A store: the keys of one namespace (``<cache_name>:<store>:``) in Redis.

    Args:
        cache_name: The cache the store belongs to (no ``:``).
        store: The store's name in the cache (``responses``, ``redirects``, ...).
        url: The server's URL (see :class:`RedisConnection`); default
            ``redis://localhost:6379/0``.
        client: A redis-py asyncio client the caller owns (never closed by acc).
        connection: A :class:`RedisConnection` to share with other stores (as
            ``RedisBackend`` does for its two); then ``url`` and ``client`` are not given.

    Raises:
        ConfigError: An invalid name or connection argument.
    """

    native_ttl: ClassVar[bool] = True
    persistent: ClassVar[bool] = True  # entries outlive the process (a server's lifetime)
    shared_across_processes: ClassVar[bool] = True
    # A cancelled caller gives up its pipelined reply at once (redis-py drops the
    # connection of a cancelled command when auto_pipeline is off).
    cancels_promptly = True

    scan_count: ClassVar[int] = 1000
    """The ``COUNT`` hint of each ``SCAN``: keys looked at per round trip."""

    def __init__(
        self,
        cache_name: str = "acc-cache",
        store: str = "responses",
        *,
        url: str | None = None,
        client: RedisClient | None = None,
        connection: RedisConnection | None = None,
    ) -> None:
        self.cache_name = check_cache_name(cache_name)
        if not isinstance(store, str) or not _STORE.match(store) or store == LOCK_STORE:
            raise ConfigError(
                "store",
                f"expected 1-64 letters, digits, '_' or '-' other than {LOCK_STORE!r}, "
                f"not {store!r}",
            )
        self.store = store
        if connection is not None:
            if not isinstance(connection, RedisConnection):
                raise ConfigError(
                    "connection", f"expected a RedisConnection, not {type(connection).__name__}"
                )
            if url is not None or client is not None:
                raise ConfigError("connection", "give a connection, or a url or client, not both")
        else:
            connection = RedisConnection(url, client=client)
        connection.acquire()
        self.connection = connection
        self.prefix: bytes = f"{cache_name}:{store}:".encode()
        """What every Redis key of this store starts with."""
        self._match = glob_escape(self.prefix) + b"*"

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.cache_name!r}, {self.store!r})"

    # -- plumbing ---------------------------------------------------------------------------

    def redis_key(self, key: str) -> bytes:
        """The Redis key an entry's ``key`` is stored under."""
        return self.prefix + key.encode("utf-8", "surrogateescape")

    def _entry_key(self, redis_key: bytes) -> str:
        return redis_key[len(self.prefix) :].decode("utf-8", "surrogateescape")

    async def _run(self, operation: str, *command: Any) -> Any:
        """One single-key command, through the automatic pipeline when it is on."""
        self._ensure_open()
        return await self.connection.call(operation, *command)

    async def _scan(self, operation: str) -> AsyncIterator[list[bytes]]:
        """Pages of this namespace's Redis keys, in the memory of one page.

        ``SCAN`` returns every key that exists throughout the scan at least once, and a
        key twice only when the server resizes its hash table meanwhile. Remembering
        every key seen to hide that rare repeat would cost memory that grows with the
        cache (hundreds of MiB at a million keys), so only a page's own repeats are
        dropped: a key may come twice across pages. Every caller here tolerates that
        (``clear``/``delete_expired`` unlink a key twice; ``size`` is an estimate while
        the server rehashes; ``keys``/``items`` say so).
        """
        self._ensure_open()
        async for page in self.connection.scan(operation, self._match, self.scan_count):
            yield list(dict.fromkeys(page))

    async def _mget(self, operation: str, redis_keys: Sequence[bytes]) -> dict[bytes, bytes]:
        """The values of ``redis_keys`` that exist: one round trip (MGET per slot group)."""
        groups = self.connection.by_slot(dict.fromkeys(redis_keys))
        replies = await self.connection.batch(operation, [("MGET", *group) for group in groups])
        found: dict[bytes, bytes] = {}
        for group, values in zip(groups, replies, strict=True):
            for key, value in zip(group, values, strict=True):
                if value is not None:
                    found[key] = bytes(value)
        return found

    async def _unlink(self, operation: str, redis_keys: Iterable[bytes]) -> None:
        groups = self.connection.by_slot(dict.fromkeys(redis_keys))
        await self.connection.batch(operation, [("UNLINK", *group) for group in groups])

    # -- the port -----------------------------------------------------------------------------

    async def read(self, key: str) -> bytes | None:
        """Return the value under ``key``, or ``None`` (Redis hides expired keys).

        With ``auto_pipeline`` (the default), the reads of every task in one loop
        iteration are one ``MGET``.
        """
        value = await self._run("read", "GET", self.redis_key(key))
        return None if value is None else bytes(value)

    async def read_many(self, keys: Sequence[str]) -> list[bytes | None]:
        """Return the values of ``keys`` in order, in one round trip."""
        self._ensure_open()
        redis_keys = [self.redis_key(key) for key in keys]
        if not redis_keys:
            return []
        found = await self._mget("read_many", redis_keys)
        return [found.get(key) for key in redis_keys]

    async def write(self, key: str, value: bytes, *, expires_at: float | None = None) -> None:
        """Store ``value``, with its expiry in the same command (``SET ... PXAT``).

        An ``expires_at`` already past deletes the key instead: the entry is dead, and
        an older value must not stay readable.
        """
        self._ensure_open()
        target = self.redis_key(key)
        if expires_at is None or expires_at == math.inf:
            await self._run("write", "SET", target, bytes(value))
            return
        if not isinstance(expires_at, (int, float)) or math.isnan(expires_at):
            raise ConfigError("expires_at", f"expected epoch seconds or None, not {expires_at!r}")
        deadline_ms = round(expires_at * 1000)
        if expires_at <= time.time():
            await self._run("write", "UNLINK", target)
            return
        await self._run("write", "SET", target, bytes(value), "PXAT", deadline_ms)

    async def write_parts(
        self, key: str, parts: Sequence[bytes], *, expires_at: float | None = None
    ) -> None:
        """Store the concatenation of ``parts``: a large value in 1 MiB commands.

        One ``SET`` of a large value would be copied whole twice on its way to the
        socket (the command, then the transport's buffer). Instead the value is built
        under a temporary key in the same hash slot, ``SET`` then ``APPEND`` a piece at a
        time (each a slice of the parts, never a copy of them), and renamed over
        ``key`` at the end, so readers never see it half written. The temporary key is
        outside the namespace's pattern (its name starts with ``{``) and expires by
        itself within a minute if the write is abandoned.
        """
        self._ensure_open()
        size = sum(len(part) for part in parts)
        target = self.redis_key(key)
        if size < _PIECE * 2 or b"{" in target or b"}" in target:
            await self.write(key, b"".join(parts), expires_at=expires_at)
            return
        if expires_at is not None and expires_at != math.inf and expires_at <= time.time():
            await self._run("write", "UNLINK", target)
            return
        temporary = b"{" + target + b"}:partial:" + secrets.token_hex(8).encode()
        first = True
        for part in parts:
            view = memoryview(part)
            for start in range(0, len(view), _PIECE):
                piece = view[start : start + _PIECE]
                if first:
                    # Not pipelined: a 1 MiB piece would hold up the small commands.
                    await self.connection.run(
                        "write", "SET", temporary, piece, "PX", _PARTIAL_TTL_MS
                    )
                    first = False
                else:  # each piece gives the partial value another minute
                    await self.connection.batch(
                        "write",
                        [("APPEND", temporary, piece), ("PEXPIRE", temporary, _PARTIAL_TTL_MS)],
                    )
        if expires_at is None or expires_at == math.inf:
            finish: tuple[Any, ...] = ("PERSIST", target)
        else:
            finish = ("PEXPIREAT", target, round(expires_at * 1000))
        await self.connection.batch("write", [("RENAME", temporary, target), finish])

    async def delete(self, key: str) -> None:
        """Remove ``key`` (``UNLINK``; a missing key is not an error)."""
        await self._run("delete", "UNLINK", self.redis_key(key))

    async def bulk_delete(self, keys: Iterable[str]) -> None:
        """Remove many keys: ``UNLINK`` in batches of 500, in one round trip."""
        self._ensure_open()
        await self._unlink("bulk_delete", [self.redis_key(key) for key in keys])

    async def contains(self, key: str) -> bool:
        """Whether ``key`` holds a live value (``EXISTS``: the value is not sent)."""
        return bool(await self._run("contains", "EXISTS", self.redis_key(key)))

    async def size(self) -> int:
        """The number of live entries in this namespace, counted with ``SCAN``."""
        count = 0
        async for page in self._scan("size"):
            count += len(page)
        return count

    async def keys(self) -> AsyncIterator[str]:
        """Iterate over this namespace's keys (``SCAN``, a page at a time; no order).

        Memory stays that of one page, whatever the size of the cache. A key may come
        twice if the server resizes its hash table during the iteration (``SCAN``'s
        own guarantee; see :meth:`_scan`); a caller that must see each key once dedupes.
        """
        async for page in self._scan("keys"):
            for redis_key in page:
                yield self._entry_key(redis_key)

    async def items(self) -> AsyncIterator[tuple[str, bytes]]:
        """Iterate over ``(key, value)`` pairs: a ``SCAN`` page, then its values at once.

        As with :meth:`keys`, a pair may come twice while the server rehashes.
        """
        async for page in self._scan("items"):
            found = await self._mget("items", page)
            for redis_key in page:
                value = found.get(redis_key)
                if value is not None:  # expired or deleted since the scan saw it
                    yield self._entry_key(redis_key), value

    async def delete_expired(self, now: float) -> int | None:
        """Remove the entries whose expiry is at or before ``now``.

        Redis drops entries past their expiry by itself (a key past its deadline is
        never returned, whether or not its memory was reclaimed yet), so when ``now`` is
        not ahead of the server's clock (``TIME``, one round trip) there is nothing to
        do: this returns 0 at once, whatever the size of the cache. Only a ``now`` ahead
        of the server's clock (an injected test clock, or a client clock running fast)
        walks the namespace: each page of keys costs one round trip for their
        ``PEXPIRETIME`` and one for the ``UNLINK``.

        Returns:
            The number removed, or ``None`` on a server without ``PEXPIRETIME`` (before
            Redis 7), where the caller decides by decoding the entries.
        """
        limit = now * 1000
        self._ensure_open()
        if limit <= await self.connection.server_time_ms("delete_expired"):
            return 0
        removed = 0
        async for page in self._scan("delete_expired"):
            try:
                deadlines = await self.connection.batch(
                    "delete_expired", [("PEXPIRETIME", key) for key in page]
                )
            except BackendError as exc:
                cause = exc.__cause__
                if (
                    isinstance(cause, redis_errors.ResponseError)
                    and "unknown command" in str(cause).lower()
                ):
                    return None
                raise
            doomed = [
                key
                for key, deadline in zip(page, deadlines, strict=True)
                if isinstance(deadline, int) and 0 <= deadline <= limit
            ]
            if doomed:
                await self._unlink("delete_expired", doomed)
                removed += len(doomed)
        return removed

    async def clear(self) -> None:
        """Remove every key of this namespace (``SCAN`` + ``UNLINK``), and nothing else."""
        async for page in self._scan("clear"):
            await self._unlink("clear", page)

    async def close(self) -> None:
        """Release the shared connection (closed with its last store). Idempotent."""
        if self._closed:
            return
        self._closed = True
        await self.connection.release()
