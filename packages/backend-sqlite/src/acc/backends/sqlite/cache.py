"""The SQLite store: :class:`SQLiteCache` and the connection its stores share.

Each store is one table of a database file::

    CREATE TABLE "<table>" (key TEXT PRIMARY KEY, value BLOB NOT NULL, expires_at REAL)
    CREATE INDEX "<table>_expires_at" ON "<table>" (expires_at)

Reads ignore rows past ``expires_at``, and :meth:`SQLiteCache.delete_expired` removes
them with indexed ``DELETE`` statements of a bounded batch of rows each, then truncates
the write-ahead log. A new file gets 8 KiB pages (an existing one keeps its own). The
file is in WAL mode, so readers never wait for the writer, and several processes may
share it. A statement that meets another connection's
lock fails at once (SQLite's own busy timeout is zero) and is tried again after short,
growing pauses on the event loop, for ``busy_timeout`` seconds at most from its first
try: the worker thread is never held by a lock wait, so the statements of concurrent
requests never queue behind one another's waits, and a request whose storage budget
runs out is cancelled in a pause (see :func:`_retrying`).

A store may be bounded (``max_entries``, ``max_bytes``): past a bound, expired entries
are evicted first, then the oldest written. The size bounded is
:meth:`SQLiteCache.disk_usage`, the database's pages in use plus its write-ahead log,
which checkpoints truncate to 32 MiB. Values of 1 MiB or more handed over in parts
(:meth:`SQLiteCache.write_parts`) are written with incremental blob I/O, without a
contiguous copy.

All stores built from one :class:`SQLiteConnection` share one aiosqlite connection, hence
one worker thread. It is opened on first use (constructors do no I/O) and closed when
the last of its stores closes. Every statement runs in autocommit mode and is a single
call to the worker thread; no transaction or cursor stays open across the caller's
awaits.

Point reads (``read``, ``contains``: the hit path) of a database file skip the thread.
They run on the event loop's thread, on a second, read-only ``sqlite3`` connection: in
WAL mode a reader takes a snapshot and never waits for the writer, and a warm point read
costs a few microseconds, against tens for the hop to a worker thread and back. The
reader's busy timeout is zero, so it cannot stall the loop on a lock; whenever it cannot
answer at once (a lock, a missing table or file, any error, a value over 16 MiB, whose
copy would hold the loop for milliseconds) the read goes the usual way, through the
worker thread, which waits, retries and reports errors as before.

Small writes (up to 64 KiB: a miss being stored) skip the thread too, on a third
connection of the loop's thread, also with a zero busy timeout: in WAL mode with
``synchronous = NORMAL`` a commit appends to the log without an ``fsync``, which costs
tens of microseconds, against a hundred or more for the hop. What could stall the loop
is kept off it: that connection never checkpoints (``wal_autocheckpoint = 0``); after
every 4 MiB it has written, the next write goes through the worker thread, whose commit
checkpoints the log there. A lock, an error or a large value also sends the write to
the worker thread, which waits and retries as before.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import random
import re
import sqlite3
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Sequence
from pathlib import Path
from typing import Any, ClassVar, TypeVar

import aiosqlite

from acc.backends.sqlite.parts import SPLIT_FROM, TooLargeHere, read_in_parts
from acc.core.errors import BackendError, BackendUnavailable, ConfigError, EntryTooLarge
from acc.core.storage import BaseCache, Splitter
from acc.core.storage.sharing import SharedConnection

__all__ = ["MEMORY", "SQLiteCache", "SQLiteConnection"]

logger = logging.getLogger("acc")

MEMORY = ":memory:"
"""The path of an in-memory database (it lives as long as its connection)."""

DEFAULT_BUSY_TIMEOUT = 5.0
"""Seconds a statement waits for another connection's lock before giving up."""

_T = TypeVar("_T")

_TABLE = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,62}\Z")
_CHUNK = 500  # keys per statement: well under SQLite's 999-variable floor
_FIRST_BACKOFF = 0.002
_MAX_BACKOFF = 0.05
_BUSY_CODES = frozenset({5, 6})  # SQLITE_BUSY, SQLITE_LOCKED (primary codes)
_READER_MMAP_SIZE = 256 * 1024 * 1024  # bytes of the file the loop-thread reader maps
_LOOP_READ_MAX = 16 * 1024 * 1024  # larger values are read by the worker thread
_LOOP_WRITE_MAX = 64 * 1024  # larger values are written by the worker thread
_LOOP_WRITE_BUDGET = 4 * 1024 * 1024  # bytes written on the loop between two checkpoints
_FILE_MODE = 0o600  # a database file acc creates: its owner only (the WAL and SHM follow)
_FOLDER_MODE = 0o700  # a folder acc creates for it
_JOURNAL_SIZE_LIMIT = 32 * 1024 * 1024  # bytes the WAL file is truncated to by a checkpoint
_PAGE_SIZE = 8192
"""Bytes per page of a new database file. A typical entry (1-2 KiB) fits twice in SQLite's
default 4 KiB page, wasting a quarter of it: 2,117 bytes on disk per 1,470-byte entry,
against 1,705 with 8 KiB pages (and 1,703 with 16 KiB, whose small writes cost a third
more, each commit logging larger pages)."""
_EXPIRY_BATCH = 10_000
"""Expired rows deleted per statement: each is its own transaction, so the write-ahead log
holds one batch's pages (not the whole sweep's) before a checkpoint recycles it. Measured
on 300,000 rows of 1,470 bytes, 30,000 expired: 2,000 rows per batch took 1.29 s, 10,000
took 0.94 s, 50,000 took 0.85 s; a batch of 10,000 holds the write lock about 0.3 s."""
_PARTS_FROM = 1024 * 1024  # values of at least this many bytes are written with blob I/O
_BLOB_IO = hasattr(sqlite3.Connection, "blobopen")  # Python 3.11+
_EVICTION_ROUNDS = 4  # passes of checkpoint-and-delete an eviction makes at most
_EVICTION_PAGE = 10_000  # rows looked at per pass
_ROW_OVERHEAD = 64  # bytes a row costs besides its key and value (header, index entries)
_SQL_PAGES = (
    "SELECT (SELECT page_count FROM pragma_page_count()) - "
    "(SELECT freelist_count FROM pragma_freelist_count()), "
    "(SELECT page_size FROM pragma_page_size())"
)


def _is_locked(exc: sqlite3.OperationalError) -> bool:
    code = getattr(exc, "sqlite_errorcode", None)
    if isinstance(code, int):
        return code & 0xFF in _BUSY_CODES
    message = str(exc).lower()
    return "locked" in message or "busy" in message


def _check_busy_timeout(value: object) -> float:
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, float))
        or value != value
        or not 0 <= value < 86_400
    ):
        raise ConfigError(
            "busy_timeout", f"expected a number of seconds from 0 to 86400, not {value!r}"
        )
    return float(value)


def _check_bound(name: str, value: object) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigError(name, f"expected a positive integer or None, not {value!r}")
    return value


def _check_fast_save(value: object) -> bool:
    if not isinstance(value, bool):
        raise ConfigError("fast_save", f"expected True or False, not {value!r}")
    return value


def _blob(value: object) -> bytes:
    """A stored value as bytes, whatever type the row holds.

    The table declares ``value BLOB``, but SQLite keeps what it is given: a row written by
    something else may hold an INTEGER, a REAL or TEXT. Those come back as their text
    (never ``bytes(n)``, which would allocate ``n`` bytes), for the core to reject as a
    value that is not an entry, and delete.
    """
    if type(value) is bytes:
        return value
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value)
    return str(value).encode("utf-8", "surrogatepass")


def _statement(
    connection: aiosqlite.Connection, sql: str, parameters: Sequence[Any]
) -> Callable[[], Awaitable[Iterable[sqlite3.Row]]]:
    """A call running one statement in the worker thread (one hop), for :func:`_retrying`."""
    return lambda: connection.execute_fetchall(sql, parameters)


def _chunks(keys: Sequence[str]) -> Iterable[Sequence[str]]:
    for start in range(0, len(keys), _CHUNK):
        yield keys[start : start + _CHUNK]


def _thread_of(connection: aiosqlite.Connection) -> threading.Thread | None:
    """The worker thread of an aiosqlite connection (the connection itself before 0.22)."""
    thread: object = connection
    if not isinstance(thread, threading.Thread):
        thread = getattr(connection, "_thread", None)
    return thread if isinstance(thread, threading.Thread) else None


def _daemonize(connection: aiosqlite.Connection) -> None:
    """Make the connection's worker thread a daemon before it starts.

    aiosqlite's worker is a non-daemon thread that only stops when the connection is
    closed, so a cache the program forgot to close would keep the interpreter from
    exiting. Every statement autocommits, so nothing is lost if the thread is
    abandoned at exit.
    """
    thread = _thread_of(connection)
    if thread is not None and not thread.is_alive():
        thread.daemon = True


async def _stopped(connection: aiosqlite.Connection, timeout: float = 5.0) -> None:
    """Wait until the worker of a connection that failed to open has stopped.

    aiosqlite stops it by queueing a task whose result is posted to the event loop;
    returning at once could close the loop first and kill the thread with an error.
    """
    thread = _thread_of(connection)
    deadline = time.monotonic() + timeout
    # A thread cannot set an asyncio.Event of ours, and joining it would block the loop.
    while thread is not None and thread.is_alive() and time.monotonic() < deadline:  # noqa: ASYNC110
        await asyncio.sleep(0.001)


class SQLiteConnection(SharedConnection):
    """One lazily opened aiosqlite connection, shared by the stores of one database.

    Args:
        path: The database file, or ``":memory:"``; missing parent folders (``0700``)
            and the file (``0600``) are created when it is opened.
        busy_timeout: Seconds to wait for another connection's lock.
        fast_save: Use ``PRAGMA synchronous = OFF``: faster writes, but a power failure
            (not a crash of the process) may lose the latest entries.
    """

    def __init__(
        self,
        path: str | os.PathLike[str] = MEMORY,
        *,
        busy_timeout: float = DEFAULT_BUSY_TIMEOUT,
        fast_save: bool = False,
    ) -> None:
        self.path = os.fspath(path)
        if not isinstance(self.path, str) or not self.path:
            raise ConfigError("db_path", f"expected a path or ':memory:', not {path!r}")
        self.busy_timeout = _check_busy_timeout(busy_timeout)
        self.fast_save = _check_fast_save(fast_save)
        self._connection: aiosqlite.Connection | None = None
        self._reader: sqlite3.Connection | None = None
        self._writer: sqlite3.Connection | None = None
        self._written_here = 0  # bytes the loop-thread writer wrote since the last checkpoint
        self._lock: asyncio.Lock | None = None
        self._tables: set[str] = set()
        self._users = 0
        self._closed = False

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.path!r})"

    @property
    def in_memory(self) -> bool:
        """Whether the database lives in memory."""
        return self.path == MEMORY

    @property
    def _shared_file(self) -> bool:
        """Whether another connection opening ``path`` sees the same database."""
        return (
            not self.in_memory and "mode=memory" not in self.path and (":memory:" not in self.path)
        )

    @property
    def is_open(self) -> bool:
        """Whether the database is currently open."""
        return self._connection is not None

    def _get_lock(self) -> asyncio.Lock:
        if self._lock is None:
            self._lock = asyncio.Lock()
        return self._lock

    # -- opening ----------------------------------------------------------------------------------

    async def get(self, table: str | None = None) -> aiosqlite.Connection:
        """Return the open connection, opening it (and creating ``table``) if needed.

        Raises:
            BackendUnavailable: The database cannot be opened.
            BackendError: The connection was closed, or creating the table failed.
        """
        connection = self._connection
        if connection is not None and (table is None or table in self._tables):
            return connection
        if self._closed:
            raise BackendError(f"{self!r} is closed")
        async with self._get_lock():
            if self._closed:
                raise BackendError(f"{self!r} is closed")
            if self._connection is None:
                self._connection = await self._open()
            connection = self._connection
            if table is not None and table not in self._tables:
                await self._create_table(connection, table)
                self._tables.add(table)
        return connection

    def _make_file(self) -> None:
        """Create the database file, owner-only, and its missing folders, before SQLite.

        A cache holds copies of responses, so what acc creates only its owner may read:
        missing folders are made ``0700`` and the file ``0600``; SQLite gives its
        ``-wal`` and ``-shm`` files the mode of the database file. Existing folders and
        files keep their modes. ``file:`` URIs are left to SQLite.
        """
        if self.in_memory or self.path.startswith("file:"):
            return
        path = Path(self.path)
        missing = [folder for folder in (path.parent, *path.parent.parents) if not folder.exists()]
        for folder in reversed(missing):
            with contextlib.suppress(FileExistsError):  # another process made it meanwhile
                folder.mkdir(mode=_FOLDER_MODE)
        with contextlib.suppress(FileExistsError):  # it exists: its mode is the owner's call
            os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, _FILE_MODE))

    async def _open(self) -> aiosqlite.Connection:
        try:
            self._make_file()
        except OSError as exc:
            raise BackendUnavailable(f"cannot create the file {self.path!r}: {exc}") from exc
        connection = aiosqlite.connect(
            self.path,
            timeout=0,  # the worker never waits for a lock: _retrying does, on the loop
            isolation_level=None,  # autocommit: one statement, one transaction
            uri=self.path.startswith("file:"),
        )
        _daemonize(connection)
        try:
            await connection
        except (sqlite3.Error, OSError) as exc:
            await _stopped(connection)
            raise BackendUnavailable(
                f"cannot open the SQLite database {self.path!r}: {exc}"
            ) from exc
        try:
            # Before anything creates the file's first page: a new database gets larger
            # pages (see _PAGE_SIZE); an existing one keeps its own (SQLite ignores this).
            pragmas = ["PRAGMA busy_timeout = 0", f"PRAGMA page_size = {_PAGE_SIZE}"]
            if not self.in_memory:
                pragmas.append("PRAGMA journal_mode = WAL")
                # A checkpoint truncates the log to this, so a large write leaves no
                # large file behind (see disk_usage).
                pragmas.append(f"PRAGMA journal_size_limit = {_JOURNAL_SIZE_LIMIT}")
            pragmas.append(f"PRAGMA synchronous = {'OFF' if self.fast_save else 'NORMAL'}")
            for pragma in pragmas:
                await _retrying(_statement(connection, pragma, ()), self.busy_timeout)
        except BaseException as exc:
            await connection.close()
            if isinstance(exc, sqlite3.Error):
                raise BackendUnavailable(
                    f"cannot set up the SQLite database {self.path!r}: {exc}"
                ) from exc
            raise
        return connection

    async def _create_table(self, connection: aiosqlite.Connection, table: str) -> None:
        statements = (
            f'CREATE TABLE IF NOT EXISTS "{table}" '
            "(key TEXT PRIMARY KEY, value BLOB NOT NULL, expires_at REAL)",
            f'CREATE INDEX IF NOT EXISTS "{table}_expires_at" ON "{table}" (expires_at)',
        )
        busy_timeout = self.busy_timeout
        try:
            for statement in statements:
                await _retrying(_statement(connection, statement, ()), busy_timeout)
        except sqlite3.Error as exc:
            raise BackendError(f"cannot create the table {table!r}: {exc}") from exc

    # -- the loop-thread reader --------------------------------------------------------------------

    def reader(self) -> sqlite3.Connection | None:
        """Return the read-only connection used on the event loop's thread, or ``None``.

        It is opened on first use, only for an existing database file (an in-memory
        database lives in the worker's connection alone; a missing file is created by
        the worker). ``None`` means: read through the worker thread this time.
        """
        reader = self._reader
        if reader is not None or self._closed or not self._shared_file:
            return reader
        if self._connection is None and not os.path.exists(self.path):
            return None  # not created yet; ``file:`` URIs are checked by the open itself
        # Large values are copied straight out of the mapped file: a 5 MB read takes a
        # tenth of the time it takes through read() calls into the page cache.
        reader = _loop_connection(
            _read_only_uri(self.path), uri=True, pragmas=[f"PRAGMA mmap_size = {_READER_MMAP_SIZE}"]
        )
        self._reader = reader
        return reader

    def drop_reader(self) -> None:
        """Close the loop-thread reader after an error; the next read opens a new one."""
        reader, self._reader = self._reader, None
        if reader is not None:
            reader.close()

    # -- the loop-thread writer --------------------------------------------------------------------

    def writer(self, size: int) -> sqlite3.Connection | None:
        """Return the connection that writes ``size`` bytes on the loop's thread, or ``None``.

        ``None`` means: write through the worker thread this time. That is the case for
        an in-memory database, before the worker has opened the file (it sets up WAL and
        the tables), for a value over 64 KiB, and once per 4 MiB written here, so that
        the worker's commit checkpoints the log (this connection never does).
        """
        if (
            self._closed
            or self._connection is None
            or not self._shared_file
            or size > _LOOP_WRITE_MAX
            or self._written_here + size > _LOOP_WRITE_BUDGET
        ):
            self._written_here = 0  # the worker's write that follows checkpoints
            return None
        writer = self._writer
        if writer is None:
            writer = _loop_connection(
                self.path,
                uri=self.path.startswith("file:"),
                pragmas=[
                    "PRAGMA wal_autocheckpoint = 0",  # the worker checkpoints
                    f"PRAGMA synchronous = {'OFF' if self.fast_save else 'NORMAL'}",
                ],
                # Without WAL a commit may fsync: not on the loop thread.
                require_wal=True,
            )
            if writer is None:
                return None
            self._writer = writer
        self._written_here += size
        return writer

    def drop_writer(self) -> None:
        """Close the loop-thread writer after an error; the next write opens a new one."""
        writer, self._writer = self._writer, None
        if writer is not None:
            writer.close()

    # -- size and compaction -----------------------------------------------------------------------

    def disk_usage(self) -> int:
        """Bytes the database takes on disk: the file, its write-ahead log and its index.

        SQLite in WAL mode keeps recent changes in ``<file>-wal`` (and a shared-memory
        index in ``<file>-shm``) until a checkpoint copies them into the file, so the
        file's size alone can be far from what the cache takes. ``0`` in memory.
        """
        if not self._shared_file or self.path.startswith("file:"):
            return 0
        total = 0
        for suffix in ("", "-wal", "-shm"):
            with contextlib.suppress(FileNotFoundError):
                total += os.stat(self.path + suffix).st_size
        return total

    async def vacuum(self) -> None:
        """Compact the database: ``VACUUM``, then a ``TRUNCATE`` checkpoint of the log.

        In WAL mode ``VACUUM`` writes the whole rebuilt database into the log, so alone it
        makes the cache take *more* room; the checkpoint that follows copies the log into
        the file and truncates it. The loop-thread connections are closed first (they
        reopen on the next read or write), so no snapshot of theirs holds the log.

        Raises:
            BackendError: The connection is closed, or SQLite failed (another connection
                held a lock for longer than ``busy_timeout``, say).
        """
        connection = await self.get()
        self.drop_reader()
        self.drop_writer()
        try:
            await _retrying(_statement(connection, "VACUUM", ()), self.busy_timeout)
            if not self.in_memory:
                checkpoint = "PRAGMA wal_checkpoint(TRUNCATE)"
                await _retrying(_statement(connection, checkpoint, ()), self.busy_timeout)
        except (sqlite3.Error, ValueError) as exc:
            raise BackendError(f"{self!r}: vacuum failed: {exc}") from exc
        self._written_here = 0

    def wal_size(self) -> int:
        """The size of the database's write-ahead log file, in bytes (0 if none)."""
        if not self._shared_file or self.path.startswith("file:"):
            return 0
        try:
            return os.path.getsize(self.path + "-wal")
        except OSError:
            return 0

    # -- closing ----------------------------------------------------------------------------------

    async def close(self) -> None:
        """Close the connection and stop its thread. Idempotent."""
        if self._closed:
            return
        self._closed = True
        self.drop_reader()
        self.drop_writer()
        if self._lock is not None and self._lock.locked():
            async with self._lock:  # let an opening in progress finish first
                pass
        connection, self._connection = self._connection, None
        if connection is not None:
            try:
                await connection.close()
            except sqlite3.Error as exc:
                raise BackendError(f"closing {self!r} failed: {exc}") from exc


def _loop_connection(
    database: str, *, uri: bool, pragmas: Sequence[str], require_wal: bool = False
) -> sqlite3.Connection | None:
    """Open a connection for the event loop's thread, or ``None`` if that fails.

    It runs in autocommit mode with a zero busy timeout, so a statement on it either
    runs at once or fails with ``database is locked``: it never waits on the loop thread.
    With ``require_wal``, a database not in WAL mode gives ``None`` too.
    """
    try:
        connection = sqlite3.connect(
            database, uri=uri, isolation_level=None, check_same_thread=False, cached_statements=64
        )
    except sqlite3.Error:
        return None
    try:
        connection.execute("PRAGMA busy_timeout = 0")
        for pragma in pragmas:
            connection.execute(pragma)
        wal = not require_wal or (
            str(connection.execute("PRAGMA journal_mode").fetchone()[0]).lower() == "wal"
        )
    except sqlite3.Error:
        wal = False
    if not wal:
        connection.close()
        return None
    return connection


async def _in_worker(
    connection: aiosqlite.Connection, function: Callable[[sqlite3.Connection], _T]
) -> _T:
    """Run ``function(sqlite3 connection)`` in the connection's worker thread, in one hop.

    aiosqlite has no public call for this (its ``execute*`` methods run one statement);
    its ``_execute`` is how they all queue work, and has been since its first releases.
    """
    execute: Callable[..., Awaitable[_T]] = connection._execute
    return await execute(function, connection._conn)


def _write_blob(
    database: sqlite3.Connection,
    table: str,
    key: str,
    parts: Sequence[bytes],
    size: int,
    expires_at: float | None,
) -> None:
    """Insert a value of ``size`` zero bytes, then write ``parts`` into it: one transaction."""
    database.execute("BEGIN IMMEDIATE")
    try:
        cursor = database.execute(
            f'INSERT OR REPLACE INTO "{table}" (key, value, expires_at) VALUES (?, zeroblob(?), ?)',
            (key, size, expires_at),
        )
        rowid = cursor.lastrowid
        assert rowid is not None
        blob_open: Callable[..., Any] = getattr(database, "blobopen")  # noqa: B009 - Python 3.11+
        with blob_open(table, "value", rowid) as blob:
            for part in parts:
                blob.write(part)
        database.execute("COMMIT")
    except BaseException:
        if database.in_transaction:
            database.execute("ROLLBACK")
        raise


def _read_only_uri(path: str) -> str:
    """A ``file:`` URI opening ``path`` read-only (a ``file:`` path keeps its own query)."""
    if path.startswith("file:"):
        separator = "&" if "?" in path else "?"
        return f"{path}{separator}mode=ro"
    return f"{Path(path).absolute().as_uri()}?mode=ro"


async def _retrying(call: Callable[[], Awaitable[_T]], busy_timeout: float) -> _T:
    """Run ``call()``, waiting for another connection's lock for up to ``busy_timeout``.

    The worker thread never waits for a lock itself (its busy timeout is zero): a
    statement that meets one fails at once with ``database is locked``, and is tried
    again here, after growing, jittered pauses on the event loop, until it runs or
    ``busy_timeout`` seconds have passed since the first try (then the error is raised).
    So the one worker thread a database's stores share is never held by a lock wait:
    statements of other requests run between the tries, and a request whose storage
    budget runs out is cancelled in a pause, leaving nothing queued behind it.
    """
    deadline = time.monotonic() + busy_timeout
    delay = _FIRST_BACKOFF
    while True:
        try:
            return await call()
        except sqlite3.OperationalError as exc:
            left = deadline - time.monotonic()
            if not _is_locked(exc) or left <= 0:
                raise
        await asyncio.sleep(min(left, delay * (0.5 + random.random())))  # jitter
        delay = min(delay * 2, _MAX_BACKOFF)


class SQLiteCache(BaseCache):
    """A store in one table of a SQLite database.

    Args:
        db_path: The database file, ``":memory:"``, or a :class:`SQLiteConnection` to
            share with other stores (as :class:`SQLiteBackend` does for its two).
        table: The table name: letters, digits and underscores, not starting with a
            digit (it is checked, never interpolated unchecked).
        busy_timeout: Seconds to wait for another connection's lock (default 5); only
            with a path.
        fast_save: ``PRAGMA synchronous = OFF``; only with a path.
        max_entries: Evict entries once the table holds more than this many (``None``,
            the default: no bound). Checked after writes, every tenth of the bound.
        max_bytes: Evict entries once the database takes more than this many bytes
            (see :meth:`disk_usage`: the pages in use plus the WAL); a value larger
            than this is never stored. ``None`` (the default): no bound. Checked after
            writes, every tenth of the bound written.

    Eviction removes expired entries first, then the oldest written (a table is a queue
    in write order: reads do not reorder it, so a hit costs no write).

    Raises:
        ConfigError: An invalid table name or option.
    """

    native_ttl: ClassVar[bool] = True
    persistent: ClassVar[bool] = True
    shared_across_processes: ClassVar[bool] = True
    cancels_promptly = True  # a cancelled statement leaves the worker's queue or a pause

    page_size: ClassVar[int] = 500
    """Rows fetched per query when iterating over keys (fewer for items)."""

    def __init__(
        self,
        db_path: str | os.PathLike[str] | SQLiteConnection = MEMORY,
        table: str = "responses",
        *,
        busy_timeout: float | None = None,
        fast_save: bool | None = None,
        max_entries: int | None = None,
        max_bytes: int | None = None,
    ) -> None:
        self.max_entries = _check_bound("max_entries", max_entries)
        """The bound on the number of entries (``None``: unbounded)."""
        self.max_bytes = _check_bound("max_bytes", max_bytes)
        """The bound on :meth:`disk_usage` (``None``: unbounded)."""
        self._written_since_check = 0  # entries, since the bounds were last checked
        self._bytes_since_check = 0
        if (
            not isinstance(table, str)
            or not _TABLE.match(table)
            or table.lower().startswith("sqlite_")
        ):
            raise ConfigError(
                "table",
                "expected 1-63 letters, digits or underscores, not starting with a digit "
                f"or 'sqlite_', not {table!r}",
            )
        if isinstance(db_path, SQLiteConnection):
            for name, value in (("busy_timeout", busy_timeout), ("fast_save", fast_save)):
                if value is not None:
                    raise ConfigError(name, "set it on the shared SQLiteConnection instead")
            shared = db_path
        else:
            shared = SQLiteConnection(
                db_path,
                busy_timeout=DEFAULT_BUSY_TIMEOUT if busy_timeout is None else busy_timeout,
                fast_save=False if fast_save is None else fast_save,
            )
        shared.acquire()
        self.table = table
        self.connection = shared
        self._conn: aiosqlite.Connection | None = None
        q = f'"{table}"'
        live = "(expires_at IS NULL OR expires_at > ?)"
        self._sql_read = f"SELECT value FROM {q} WHERE key = ? AND {live}"
        # On the loop thread: the value only when small enough to copy without stalling
        # the loop (length() reads the record header, not the value).
        self._sql_read_here = (
            f"SELECT CASE WHEN length(value) <= {_LOOP_READ_MAX} THEN value END "
            f"FROM {q} WHERE key = ? AND {live}"
        )
        # read_parts: a small value at once; a large one (NULL here) is then located
        # and read with blob I/O (see parts.py).
        self._sql_read_parts_here = (
            f"SELECT CASE WHEN length(value) < {SPLIT_FROM} THEN value END "
            f"FROM {q} WHERE key = ? AND {live}"
        )
        self._sql_locate = (
            "SELECT rowid, typeof(value) = 'blob', "
            "CASE WHEN typeof(value) <> 'blob' THEN value END "
            f"FROM {q} WHERE key = ? AND {live}"
        )
        self._sql_contains = f"SELECT 1 FROM {q} WHERE key = ? AND {live}"
        self._sql_write = f"INSERT OR REPLACE INTO {q} (key, value, expires_at) VALUES (?, ?, ?)"
        self._sql_delete = f"DELETE FROM {q} WHERE key = ?"
        self._sql_size = f"SELECT COUNT(*) FROM {q} WHERE {live}"
        self._sql_expired = f"DELETE FROM {q} WHERE expires_at <= ?"
        self._sql_expired_batch = (
            f"DELETE FROM {q} WHERE rowid IN (SELECT rowid FROM {q} WHERE expires_at <= ? LIMIT ?)"
        )
        self._sql_clear = f"DELETE FROM {q}"
        self._q = q
        self._live = live

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.connection.path!r}, table={self.table!r})"

    @property
    def db_path(self) -> str:
        """The database file (or ``":memory:"``)."""
        return self.connection.path

    # -- plumbing -------------------------------------------------------------------------------

    async def _connect(self) -> aiosqlite.Connection:
        self._ensure_open()
        connection = self._conn
        if connection is None:
            connection = self._conn = await self.connection.get(self.table)
        return connection

    def _failed(self, operation: str, exc: Exception) -> BackendError:
        if isinstance(exc, ValueError) and (self._closed or self.connection.closed):
            return BackendError(f"{self!r} is closed")
        return BackendError(f"{self!r}: {operation} failed: {exc}")

    async def _fetch(self, operation: str, sql: str, parameters: Sequence[Any]) -> list[Any]:
        """Run one statement in one hop to the worker thread and return its rows."""
        connection = self._conn if self._conn is not None and not self._closed else None
        if connection is None:
            connection = await self._connect()
        try:
            return list(
                await _retrying(
                    _statement(connection, sql, parameters), self.connection.busy_timeout
                )
            )
        except (sqlite3.Error, ValueError) as exc:
            raise self._failed(operation, exc) from exc

    async def _count(self, operation: str, sql: str, parameters: Sequence[Any]) -> int:
        """Run one statement and return how many rows it changed."""
        connection = await self._connect()

        async def run() -> int:
            async with connection.execute(sql, parameters) as cursor:
                return cursor.rowcount

        try:
            count: int = await _retrying(run, self.connection.busy_timeout)
        except (sqlite3.Error, ValueError) as exc:
            raise self._failed(operation, exc) from exc
        return count

    # -- the port ---------------------------------------------------------------------------------

    def _read_here(self, sql: str, key: str) -> tuple[bool, Any]:
        """Run a point query on the loop-thread reader: ``(answered, row or None)``.

        Not answered when there is no reader or it could not answer at once; the
        caller then asks the worker thread, which waits for locks and reports errors.
        """
        if self._closed:
            return False, None
        reader = self.connection.reader()
        if reader is None:
            return False, None
        try:
            return True, reader.execute(sql, (key, time.time())).fetchone()
        except sqlite3.OperationalError as exc:
            if not _is_locked(exc):
                self.connection.drop_reader()  # e.g. no such table yet: reopen later
        except sqlite3.Error:
            self.connection.drop_reader()
        return False, None

    async def read(self, key: str) -> bytes | None:
        """Return the value under ``key``, or ``None`` if missing or expired."""
        answered, row = self._read_here(self._sql_read_here, key)
        if answered and (row is None or row[0] is not None):
            return None if row is None else _blob(row[0])
        # No reader, a lock, or a value too large to copy on the loop thread.
        rows = await self._fetch("read", self._sql_read, (key, time.time()))
        return _blob(rows[0][0]) if rows else None

    async def read_parts(self, key: str, split: Splitter | None = None) -> tuple[bytes, ...] | None:
        """Return the value under ``key``; one of 1 MiB or more cut where ``split`` says.

        A large value is read with blob I/O as two ``bytes`` objects, its head and the
        rest (see :mod:`acc.backends.sqlite.parts`): its body is copied once, out of the
        database, and never sliced out of the whole. Up to 16 MiB on the loop-thread
        reader, larger in the worker thread. Without ``split`` (or blob I/O, or for an
        in-memory database) it is :meth:`read`'s value, one part.
        """
        answered, row = self._read_here(self._sql_read_parts_here, key)
        if answered:
            if row is None:
                return None
            if row[0] is not None:  # small (the usual hit): whole, at once
                return (_blob(row[0]),)
        if split is None or not _BLOB_IO or self.connection.in_memory:
            return await super().read_parts(key, split)
        if answered:
            answered, parts = self._read_parts_here(key, split)
            if answered:
                return parts
        # No reader, a lock, or a value too large to copy on the loop thread.
        connection = await self._connect()
        table, locate, now = self.table, self._sql_locate, time.time()

        def read_split(database: sqlite3.Connection) -> tuple[bytes, ...] | None:
            return read_in_parts(database, table, locate, key, now, split)

        try:
            return await _retrying(
                lambda: _in_worker(connection, read_split), self.connection.busy_timeout
            )
        except (sqlite3.Error, ValueError) as exc:
            raise self._failed("read", exc) from exc

    def _read_parts_here(self, key: str, split: Splitter) -> tuple[bool, tuple[bytes, ...] | None]:
        """:func:`read_in_parts` on the loop-thread reader: ``(answered, parts or None)``."""
        reader = self.connection.reader()
        if reader is None or self._closed:
            return False, None
        try:
            return True, read_in_parts(
                reader, self.table, self._sql_locate, key, time.time(), split, _LOOP_READ_MAX
            )
        except TooLargeHere:
            pass
        except sqlite3.OperationalError as exc:
            if not _is_locked(exc):
                self.connection.drop_reader()
        except sqlite3.Error:
            self.connection.drop_reader()
        return False, None

    async def read_many(self, keys: Sequence[str]) -> list[bytes | None]:
        """Return the values of ``keys`` in order: one query per 500 keys."""
        keys = list(keys)
        if not keys:
            self._ensure_open()
            return []
        found: dict[str, bytes] = {}
        now = time.time()
        for chunk in _chunks(list(dict.fromkeys(keys))):
            marks = ", ".join("?" * len(chunk))
            sql = f"SELECT key, value FROM {self._q} WHERE key IN ({marks}) AND {self._live}"
            for key, value in await self._fetch("read_many", sql, (*chunk, now)):
                found[key] = _blob(value)
        return [found.get(key) for key in keys]

    async def write(self, key: str, value: bytes, *, expires_at: float | None = None) -> None:
        """Store ``value`` under ``key``, replacing any previous value.

        Raises:
            EntryTooLarge: ``value`` is larger than ``max_bytes`` (the key was deleted).
        """
        parameters = (key, bytes(value), expires_at)
        if self.max_bytes is not None and len(value) > self.max_bytes:
            await self._too_large(key, len(value))
        if not (self._conn is not None and not self._closed and self._write_here(parameters)):
            await self._fetch("write", self._sql_write, parameters)
        if self.max_entries is not None or self.max_bytes is not None:
            await self._wrote(len(value))

    async def write_parts(
        self, key: str, parts: Sequence[bytes], *, expires_at: float | None = None
    ) -> None:
        """Store the concatenation of ``parts``: a large value with incremental blob I/O.

        The row is inserted with a zero-filled value of the full length, which the parts
        are then written into, in one transaction in the worker thread, so no contiguous
        copy of a large value is ever made (binding one as a parameter would copy it
        twice) and readers never see it half written.

        Raises:
            EntryTooLarge: The value is larger than ``max_bytes`` (the key was deleted).
        """
        size = sum(len(part) for part in parts)
        if size < _PARTS_FROM or not _BLOB_IO or self.connection.in_memory:
            await self.write(key, b"".join(parts), expires_at=expires_at)
            return
        if self.max_bytes is not None and size > self.max_bytes:
            await self._too_large(key, size)
        connection = await self._connect()
        table = self.table

        def write_blob(database: sqlite3.Connection) -> None:
            _write_blob(database, table, key, parts, size, expires_at)

        try:
            await _retrying(
                lambda: _in_worker(connection, write_blob), self.connection.busy_timeout
            )
        except (sqlite3.Error, ValueError) as exc:
            raise self._failed("write", exc) from exc
        if self.max_entries is not None or self.max_bytes is not None:
            await self._wrote(size)

    async def _too_large(self, key: str, size: int) -> None:
        await self.delete(key)
        logger.warning(
            "acc: not storing %s in %r: %d bytes is more than max_bytes (%d)",
            key,
            self,
            size,
            self.max_bytes,
        )
        raise EntryTooLarge(f"{size} bytes is more than max_bytes ({self.max_bytes})")

    # -- bounds -----------------------------------------------------------------------------------

    async def _wrote(self, size: int) -> None:
        """Count a write; check the bounds every tenth of them (entries or bytes)."""
        self._written_since_check += 1
        self._bytes_since_check += size
        due = (
            self.max_entries is not None
            and self._written_since_check >= max(1, self.max_entries // 10)
        ) or (self.max_bytes is not None and self._bytes_since_check >= self.max_bytes // 10)
        if due:
            self._written_since_check = self._bytes_since_check = 0
            await self.evict()

    async def disk_usage(self) -> int:
        """Bytes the database takes on disk: its pages in use, plus its write-ahead log.

        Free pages (left by deletions, reused by later writes) are not counted; the WAL
        file is, as it stands: until a checkpoint copies it into the database it holds
        the latest writes, and a checkpoint truncates it to 32 MiB at most. The ``-shm``
        index is not counted (a few KiB).
        """
        ((pages, page_size),) = await self._fetch("disk_usage", _SQL_PAGES, ())
        return int(pages) * int(page_size) + self.connection.wal_size()

    async def evict(self) -> int:
        """Remove entries until the table is within ``max_entries`` and ``max_bytes``.

        Expired entries go first, then the oldest written. Called after writes (every
        tenth of a bound); callable at any time.

        Returns:
            The number of entries removed.
        """
        removed = 0
        now = time.time()
        if self.max_entries is not None:
            (count,) = (await self._fetch("evict", f"SELECT COUNT(*) FROM {self._q}", ()))[0]
            if count > self.max_entries:
                expired = await self._count("evict", self._sql_expired, (now,))
                removed += expired
                excess = count - expired - self.max_entries
                if excess > 0:
                    removed += await self._count(
                        "evict",
                        f"DELETE FROM {self._q} WHERE rowid IN "
                        f"(SELECT rowid FROM {self._q} ORDER BY rowid LIMIT ?)",
                        (excess,),
                    )
        if self.max_bytes is not None:
            target = self.max_bytes - self.max_bytes // 10  # room for the next writes
            expired_done = False
            for _round in range(_EVICTION_ROUNDS):
                used = await self.disk_usage()
                if used <= self.max_bytes:
                    break
                await self._checkpoint()  # folds the WAL in, and truncates it
                used = await self.disk_usage()
                if used <= self.max_bytes:
                    break
                if not expired_done:
                    expired_done = True
                    expired = await self._count("evict", self._sql_expired, (now,))
                    if expired:
                        removed += expired
                        continue
                removed += await self._evict_oldest(used - target)
            else:
                await self._checkpoint()
        if removed:
            logger.debug("acc: evicted %d entries from %r", removed, self)
        return removed

    async def _evict_oldest(self, excess: int) -> int:
        """Delete the oldest entries whose values add up to at least ``excess`` bytes."""
        rows = await self._fetch(
            "evict",
            f"SELECT rowid, length(value) + length(key) FROM {self._q} ORDER BY rowid LIMIT ?",
            (_EVICTION_PAGE,),
        )
        doomed: list[int] = []
        total = 0
        for rowid, size in rows:
            doomed.append(rowid)
            total += int(size) + _ROW_OVERHEAD
            if total >= excess:
                break
        removed = 0
        for start in range(0, len(doomed), _CHUNK):
            chunk = doomed[start : start + _CHUNK]
            marks = ", ".join("?" * len(chunk))
            removed += await self._count(
                "evict", f"DELETE FROM {self._q} WHERE rowid IN ({marks})", chunk
            )
        return removed

    async def _checkpoint(self, operation: str = "evict") -> None:
        """Copy the WAL into the database and truncate it, if no reader is in the way."""
        if not self.connection.in_memory:
            await self._fetch(operation, "PRAGMA wal_checkpoint(TRUNCATE)", ())

    def _write_here(self, parameters: tuple[str, bytes, float | None]) -> bool:
        """Try the write on the loop-thread writer; false sends it to the worker thread."""
        writer = self.connection.writer(len(parameters[1]))
        if writer is None:
            return False
        try:
            writer.execute(self._sql_write, parameters)
        except sqlite3.OperationalError as exc:
            if not _is_locked(exc):
                self.connection.drop_writer()
            return False
        except sqlite3.Error:
            self.connection.drop_writer()
            return False
        return True

    async def delete(self, key: str) -> None:
        """Remove ``key`` (a missing key is not an error)."""
        await self._fetch("delete", self._sql_delete, (key,))

    async def bulk_delete(self, keys: Iterable[str]) -> None:
        """Remove many keys: one ``DELETE ... IN`` per 500 keys."""
        unique = list(dict.fromkeys(keys))
        if not unique:
            self._ensure_open()
            return
        for chunk in _chunks(unique):
            marks = ", ".join("?" * len(chunk))
            await self._fetch("bulk_delete", f"DELETE FROM {self._q} WHERE key IN ({marks})", chunk)

    async def contains(self, key: str) -> bool:
        """Whether ``key`` holds a live value (the value is not read)."""
        answered, row = self._read_here(self._sql_contains, key)
        if answered:
            return row is not None
        return bool(await self._fetch("contains", self._sql_contains, (key, time.time())))

    async def size(self) -> int:
        """The number of live entries (a ``COUNT``)."""
        rows = await self._fetch("size", self._sql_size, (time.time(),))
        return int(rows[0][0])

    async def keys(self) -> AsyncIterator[str]:
        """Iterate over the live keys in key order, fetched a page at a time.

        Pages are found by key (``WHERE key > last``), so no read transaction or cursor
        stays open while the caller works, and entries written meanwhile may or may not
        be seen.
        """
        async for row in self._pages("key", self.page_size):
            yield row[0]

    async def items(self) -> AsyncIterator[tuple[str, bytes]]:
        """Iterate over live ``(key, value)`` pairs in key order, a page at a time."""
        async for key, value in self._pages("key, value", max(1, self.page_size // 5)):
            yield key, _blob(value)

    async def _pages(self, columns: str, page: int) -> AsyncIterator[Any]:
        now = time.time()
        first = f"SELECT {columns} FROM {self._q} WHERE {self._live} ORDER BY key LIMIT ?"
        after = (
            f"SELECT {columns} FROM {self._q} WHERE key > ? AND {self._live} ORDER BY key LIMIT ?"
        )
        rows = await self._fetch("keys", first, (now, page))
        while rows:
            for row in rows:
                yield row
            if len(rows) < page:
                return
            rows = await self._fetch("keys", after, (rows[-1][0], now, page))

    async def delete_expired(self, now: float) -> int:
        """Remove the entries past ``expires_at`` at ``now``, in bounded batches.

        Each batch is one indexed ``DELETE`` of at most 10,000 rows, committed on its own,
        with the event loop free between batches (other statements run in between), so
        the write-ahead log never holds the whole sweep. A truncating checkpoint follows,
        so a large expiry leaves no large ``-wal`` file behind.
        """
        removed = 0
        while True:
            count = await self._count(
                "delete_expired", self._sql_expired_batch, (now, _EXPIRY_BATCH)
            )
            removed += count
            if count < _EXPIRY_BATCH:
                break
            await asyncio.sleep(0)
        if removed:
            await self._checkpoint("delete_expired")
        return removed

    async def compact(self) -> bool:
        """``VACUUM`` the database (every table of it), then truncate the write-ahead log.

        The file shrinks to what its live rows need. It takes the database's write lock
        for as long as it rewrites the file: a maintenance operation (``acc vacuum``).
        """
        await self._fetch("compact", "VACUUM", ())
        await self._fetch("compact", "PRAGMA wal_checkpoint(TRUNCATE)", ())
        return True

    async def clear(self) -> None:
        """Remove every entry of this table, and nothing else in the database."""
        await self._fetch("clear", self._sql_clear, ())

    async def close(self) -> None:
        """Release the shared connection (closed with its last store). Idempotent."""
        if self._closed:
            return
        self._closed = True
        self._conn = None
        await self.connection.release()
