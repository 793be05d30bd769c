"""The Redis store: :class:`RedisCache`, one namespace of keys in a Redis database.

Layout: one Redis string per entry, under ``<cache_name>:<store>:<key>`` (for example
``acc-cache:responses:3f2a...``). One key per entry, rather than one hash per namespace,
is what lets Redis expire each entry by itself and lets a cluster spread a cache over all
its nodes; it also means no command ever loads a whole namespace.

A large entry (written with ``write_parts``, a body of 1 MiB or more) is two keys: its
own holds a small pointer (a mark, the body's length, the head), and its body is the
whole value of ``{<cache_name>:<store>:<key>}:body``. A hit then hands the caller the
body as the ``bytes`` object redis-py parsed, never a slice of a larger value (a copy:
twice the body's memory per hit). The hash tag keeps both keys in one slot of a
cluster, so one ``MULTI``/``EXEC`` or ``UNLINK`` takes both; the leading ``{`` keeps the
body key out of the namespace's ``SCAN`` pattern (it is no entry).

* ``write`` sets value and expiry in one ``SET ... PXAT`` (milliseconds since the epoch,
  from ``expires_at``); an entry written already expired is removed instead. The body key
  a large value written before may have left is unlinked in the same round trip. A
  value that happens to start with the pointers' mark is stored escaped (mark, ``I``,
  value), so the store keeps any bytes at all.
* ``write_parts`` of a large value builds it under a temporary key, 1 MiB per command
  (``SET`` then ``APPEND``), and moves it into place with one ``MULTI``/``EXEC``:
  readers never see half a value, nor a pointer without its body.
* ``read``, ``write``, ``delete`` and ``contains`` are single-key commands that go
  through the connection's automatic pipeline (unless ``auto_pipeline=False``): the
  reads of concurrent tasks become one ``MGET``, their writes share its round trip.
  A value that is not marked (every small entry) is one ``GET``, nothing more; a
  pointer costs a second round trip, ``MULTI``/``GET`` key/``GET`` body key/``EXEC``,
  so head and body come from one state of the database. A body that is gone (evicted
  under ``maxmemory``) makes the entry a miss.
* ``read_many`` is one ``MGET`` (on a cluster, one per hash slot, sent in one pipeline).
* ``keys``, ``size``, ``clear`` walk the namespace with ``SCAN MATCH <prefix>*`` (never
  ``KEYS``, which blocks the server), on every primary of a cluster, holding one page of
  keys at a time; the prefix is glob-escaped, so a cache named ``a*`` never matches the
  keys of a cache named ``ab``.
* ``delete_expired`` does nothing (one ``TIME``) unless asked about a time ahead of the
  server's clock: Redis has already expired everything due before it.
* deletions use ``UNLINK`` (the memory is freed in the background) in batches of 500
  keys, all batches in one round trip, each entry's body key named with it.

Only core commands are used (``SET``, ``GET``, ``MGET``, ``APPEND``, ``RENAME``,
``EXISTS``, ``UNLINK``, ``SCAN``, ``TIME``, ``PEXPIRETIME``, ``MULTI``/``EXEC``, ``EVAL``
for the lock), so Valkey and DragonflyDB work as well.
"""

from __future__ import annotations

import asyncio
import math
import re
import secrets
import struct
import time
from collections.abc import AsyncIterator, Iterable, Iterator, Sequence
from typing import Any, ClassVar

from redis import exceptions as redis_errors

from acc.backends.redis.connection import RedisClient, RedisConnection
from acc.core.errors import BackendError, ConfigError
from acc.core.storage import BaseCache, Splitter, join_parts

__all__ = ["LOCK_STORE", "RedisCache", "check_cache_name", "glob_escape"]

LOCK_STORE = "lock"
"""The part of the key layout reserved for fetch locks: ``<cache_name>:lock:<key>``."""
_STORE = re.compile(r"[A-Za-z0-9_-]{1,64}\Z")
_PIECE = 1024 * 1024  # bytes per command when a large value is written in parts
_PARTIAL_TTL_MS = 60_000  # the life of a value being written in parts, if never finished
_GLOB = re.compile(rb"([\\*?\[\]])")
# What a value the store wraps starts with: no acc entry or record does (they start with
# the codec's magic), and a value given to write() that happens to is stored escaped.
_MARK = b"\x00acc-redis:"
_INLINE = _MARK + b"I"  # the value follows, as it was given
_POINTER = _MARK + b"P"  # the body's length, then the head; the body is in {<key>}:body
_BODY_LENGTH = struct.Struct(">Q")
_DEAD = -1  # the deadline of a value written already expired


def glob_escape(text: bytes) -> bytes:
    r"""Escape the characters ``SCAN MATCH`` treats as a pattern (``* ? [ ] \\``)."""
    return _GLOB.sub(rb"\\\1", text)


def _deadline_ms(expires_at: float | None) -> int | None:
    """``expires_at`` in epoch milliseconds; ``None`` for never, :data:`_DEAD` if past.

    Raises:
        ConfigError: Not a number of seconds (or NaN).
    """
    if expires_at is None or expires_at == math.inf:
        return None
    if not isinstance(expires_at, (int, float)) or math.isnan(expires_at):
        raise ConfigError("expires_at", f"expected epoch seconds or None, not {expires_at!r}")
    if expires_at <= time.time():
        return _DEAD
    return round(expires_at * 1000)


def _set(target: bytes, value: bytes, deadline: int | None) -> tuple[Any, ...]:
    if deadline is None:
        return ("SET", target, value)
    return ("SET", target, value, "PXAT", deadline)


def _expire(redis_key: bytes, deadline: int | None) -> tuple[Any, ...]:
    return ("PERSIST", redis_key) if deadline is None else ("PEXPIREAT", redis_key, deadline)


def _companion(target: bytes) -> bytes | None:
    """The body key of the entry under ``target``, or ``None`` if it cannot have one.

    ``{<key>}:body``: the hash tag puts it in the slot of ``<key>`` (so one ``MULTI`` or
    ``UNLINK`` takes both on a cluster), and the leading ``{`` keeps it outside the
    namespace's ``SCAN`` pattern (it is no entry). A key with a brace of its own would
    make another hash tag, so it never has one.
    """
    if b"{" in target or b"}" in target:
        return None
    return b"{" + target + b"}:body"


def _and_companion(target: bytes, companion: bytes | None) -> tuple[bytes, ...]:
    return (target,) if companion is None else (target, companion)


def _with_companions(redis_keys: Iterable[bytes]) -> list[bytes]:
    """``redis_keys``, each followed by its body key if it may have one."""
    return [name for key in redis_keys for name in _and_companion(key, _companion(key))]


def _stored_form(value: bytes) -> bytes:
    """What ``SET`` stores for ``value``: itself, or escaped when it looks wrapped."""
    return _INLINE + value if value.startswith(_MARK) else value


def _starts_with_mark(parts: Sequence[bytes]) -> bool:
    """Whether the concatenation of ``parts`` starts with the mark (without joining them)."""
    start = b""
    for part in parts:
        start += bytes(part[: len(_MARK) - len(start)])
        if len(start) == len(_MARK):
            break
    return start == _MARK


def _pieces(parts: Sequence[bytes], prefix: bytes = b"") -> Iterator[bytes | memoryview]:
    """``prefix``, then ``parts`` in views of at most 1 MiB (no copy)."""
    if prefix:
        yield prefix
    for part in parts:
        view = memoryview(part)
        for start in range(0, len(view), _PIECE):
            yield view[start : start + _PIECE]


def _parts_of(value: bytes | None, body: bytes | None) -> tuple[bytes, ...] | None:
    """The entry a key's ``value`` (and its body key's ``body``) stand for; ``None``: a miss.

    A pointer whose body is missing, or not of the length it records, is a miss.
    """
    if value is None:
        return None
    if not value.startswith(_MARK):
        return (value,)
    if value.startswith(_INLINE):
        return (value[len(_INLINE) :],)
    start = len(_POINTER) + _BODY_LENGTH.size
    if not value.startswith(_POINTER) or body is None or len(value) < start:
        return None
    if _BODY_LENGTH.unpack_from(value, len(_POINTER))[0] != len(body):
        return None
    head = value[start:]
    return (head, body) if head else (body,)


def _joined(parts: tuple[bytes, ...] | None) -> bytes | None:
    return None if parts is None else join_parts(parts)


def check_cache_name(cache_name: object) -> str:
    """Validate a cache name used as a key prefix.

    A ``:`` is refused because it would make prefixes ambiguous: the keys of cache
    ``a:responses`` would fall inside the ``responses`` store of cache ``a``, and
    clearing one cache would delete the other's entries. A leading ``{`` is refused for
    the same reason: the keys a store keeps beside its entries (``{a:responses:k}:body``)
    would fall inside the namespace of a cache named ``{a``.

    Raises:
        ConfigError: Not a non-empty string, or it contains ``:`` or starts with ``{``.
    """
    if not isinstance(cache_name, str) or not cache_name:
        raise ConfigError("cache_name", f"expected a non-empty string, not {cache_name!r}")
    if cache_name.startswith("{"):
        raise ConfigError(
            "cache_name",
            f"{cache_name!r} starts with '{{', which begins the names of the keys stored "
            "beside the entries of every cache; start it with another character",
        )
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

    async def _run_pair(
        self, operation: str, first: tuple[Any, ...], second: tuple[Any, ...]
    ) -> None:
        """Two single-key commands in one round trip, run in this order."""
        self._ensure_open()
        pipeline = self.connection.pipeline
        if pipeline is None:
            await self.connection.batch(operation, [first, second])
            return
        await asyncio.gather(pipeline.call(operation, *first), pipeline.call(operation, *second))

    async def _resolve(
        self, operation: str, target: bytes, value: bytes
    ) -> tuple[bytes, ...] | None:
        """The parts of a marked ``value`` read under ``target``; ``None`` for a miss.

        An escaped value is unwrapped. A pointer's head and body are read again together
        (``MULTI``: ``GET`` key, ``GET`` body key; ``EXEC``), so that a rewrite between
        the first read and this one can never pair one entry's head with another's
        body: what the key holds then is what is returned, whatever it is. A body that
        is gone (evicted under ``maxmemory``) makes the entry a miss.
        """
        if not value.startswith(_POINTER):
            return _parts_of(value, None)
        companion = _companion(target)
        if companion is None or not self.connection.transactions:
            return None  # read together or not at all
        current, body = await self.connection.transaction(
            operation, [("GET", target), ("GET", companion)]
        )
        return _parts_of(current, body)

    async def _resolve_found(self, operation: str, found: dict[bytes, bytes]) -> None:
        """Replace the marked values of an ``MGET`` by what they stand for, in place."""
        marked = [key for key, value in found.items() if value.startswith(_MARK)]
        if not marked:
            return
        resolved = await asyncio.gather(
            *(self._resolve(operation, key, found[key]) for key in marked)
        )
        for key, parts in zip(marked, resolved, strict=True):
            value = _joined(parts)
            if value is None:
                del found[key]
            else:
                found[key] = value

    # -- the port -----------------------------------------------------------------------------

    async def read(self, key: str) -> bytes | None:
        """Return the value under ``key``, or ``None`` (Redis hides expired keys).

        With ``auto_pipeline`` (the default), the reads of every task in one loop
        iteration are one ``MGET``. A large entry's pointer costs a second round trip
        (its head and body, read together) and one join.
        """
        target = self.redis_key(key)
        value = await self._run("read", "GET", target)
        if value is None:
            return None
        value = bytes(value)
        if not value.startswith(_MARK):
            return value
        return _joined(await self._resolve("read", target, value))

    async def read_parts(self, key: str, split: Splitter | None = None) -> tuple[bytes, ...] | None:
        """Return the value under ``key`` as parts, or ``None``.

        A large entry written apart comes back as the parts it was written in: its head,
        then its body, the very ``bytes`` object redis-py parsed off the wire (never a
        slice of a larger value, which would be a copy). Any other value is one part.
        ``split`` is not needed: the parts are already where the writer cut them.
        """
        target = self.redis_key(key)
        value = await self._run("read", "GET", target)
        if value is None:
            return None
        value = bytes(value)
        if not value.startswith(_MARK):  # the hit path: one GET, no more
            return (value,)
        return await self._resolve("read", target, value)

    async def read_many(self, keys: Sequence[str]) -> list[bytes | None]:
        """Return the values of ``keys`` in order, in one round trip (more for pointers)."""
        self._ensure_open()
        redis_keys = [self.redis_key(key) for key in keys]
        if not redis_keys:
            return []
        found = await self._mget("read_many", redis_keys)
        await self._resolve_found("read_many", found)
        return [found.get(key) for key in redis_keys]

    async def write(self, key: str, value: bytes, *, expires_at: float | None = None) -> None:
        """Store ``value``, with its expiry in the same command (``SET ... PXAT``).

        An ``expires_at`` already past deletes the key instead: the entry is dead, and
        an older value must not stay readable. The body key a large value written before
        may have left is unlinked in the same round trip, after the ``SET``.
        """
        self._ensure_open()
        target = self.redis_key(key)
        deadline = _deadline_ms(expires_at)
        companion = _companion(target)
        if deadline == _DEAD:
            await self._run("write", "UNLINK", *_and_companion(target, companion))
            return
        command = _set(target, _stored_form(bytes(value)), deadline)
        if companion is None:
            await self._run("write", *command)
            return
        await self._run_pair("write", command, ("UNLINK", companion))

    async def write_parts(
        self, key: str, parts: Sequence[bytes], *, expires_at: float | None = None
    ) -> None:
        """Store the concatenation of ``parts``; a large last part in a key of its own.

        One ``SET`` of a large value would be copied whole twice on its way to the
        socket (the command, then the transport's buffer). Instead the value is built
        under a temporary key in the same hash slot, ``SET`` then ``APPEND`` a piece at a
        time (each a slice of the parts, never a copy of them), and moved into place at
        the end by one ``MULTI``/``EXEC``, so readers never see it half written. The
        temporary key is outside the namespace's pattern (its name starts with ``{``)
        and expires by itself within a minute if the write is abandoned.

        A last part of 1 MiB or more (the body of a large entry) is built that way into
        the entry's body key, ``{<key>}:body``, and the entry's own key gets a pointer
        holding the other parts, so that a read hands the body back as the object the
        driver parsed (see :meth:`read_parts`).
        """
        self._ensure_open()
        target = self.redis_key(key)
        companion = _companion(target)
        body = parts[-1] if parts else b""
        apart = companion is not None and len(body) >= _PIECE and self.connection.transactions
        size = sum(len(part) for part in parts)
        if companion is None or not (apart or size >= _PIECE * 2):
            await self.write(key, b"".join(parts), expires_at=expires_at)
            return
        deadline = _deadline_ms(expires_at)
        if deadline == _DEAD:
            await self._run("write", "UNLINK", target, companion)
            return
        temporary = b"{" + target + b"}:partial:" + secrets.token_hex(8).encode()
        # The old body key goes first: if the temporary key were gone (RENAME fails,
        # and Redis does not roll back the rest), a pointer must find no body rather
        # than the previous entry's.
        finish: list[tuple[Any, ...]] = [("UNLINK", companion)]
        if apart:
            await self._upload(temporary, _pieces((body,)))
            pointer = _POINTER + _BODY_LENGTH.pack(len(body)) + b"".join(parts[:-1])
            finish += [
                ("RENAME", temporary, companion),
                _set(target, pointer, deadline),
                _expire(companion, deadline),
            ]
        else:  # a large value without a large last part: built whole, under the key
            escape = _INLINE if _starts_with_mark(parts) else b""
            await self._upload(temporary, _pieces(parts, escape))
            finish += [("RENAME", temporary, target), _expire(target, deadline)]
        if self.connection.transactions:
            await self.connection.transaction("write", finish)
        else:  # a cluster client of redis-py < 6.2: never apart, so nothing to read together
            await self.connection.batch("write", finish)

    async def _upload(self, temporary: bytes, pieces: Iterator[bytes | memoryview]) -> None:
        """Build a value under ``temporary``: ``SET`` its first piece, ``APPEND`` the rest."""
        first = True
        for piece in pieces:
            if first:
                # Not pipelined: a 1 MiB piece would hold up the small commands.
                await self.connection.run("write", "SET", temporary, piece, "PX", _PARTIAL_TTL_MS)
                first = False
            else:  # each piece gives the partial value another minute
                await self.connection.batch(
                    "write",
                    [("APPEND", temporary, piece), ("PEXPIRE", temporary, _PARTIAL_TTL_MS)],
                )

    async def delete(self, key: str) -> None:
        """Remove ``key`` and its body key (``UNLINK``; a missing key is not an error)."""
        target = self.redis_key(key)
        await self._run("delete", "UNLINK", *_and_companion(target, _companion(target)))

    async def bulk_delete(self, keys: Iterable[str]) -> None:
        """Remove many keys: ``UNLINK`` in batches of 500, in one round trip."""
        self._ensure_open()
        await self._unlink("bulk_delete", _with_companions(self.redis_key(key) for key in keys))

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
            await self._resolve_found("items", found)
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
                await self._unlink("delete_expired", _with_companions(doomed))
                removed += len(doomed)
        return removed

    async def clear(self) -> None:
        """Remove every key of this namespace (``SCAN`` + ``UNLINK``), and nothing else.

        The body key of each entry goes with it (``{<key>}:body`` is outside the
        pattern, so it is named, not found).
        """
        async for page in self._scan("clear"):
            await self._unlink("clear", _with_companions(page))

    async def close(self) -> None:
        """Release the shared connection (closed with its last store). Idempotent."""
        if self._closed:
            return
        self._closed = True
        await self.connection.release()
