"""The SQLite store: :class:`SQLiteCache` and the connection its stores share.

Each store is one table of a database file::

    CREATE TABLE "<table>" (key TEXT PRIMARY KEY, value BLOB NOT NULL, expires_at REAL)
    CREATE INDEX "<table>_expires_at" ON "<table>" (expires_at)

Reads ignore rows past ``expires_at``, and :meth:`SQLiteCache.delete_expired` removes
them with one indexed ``DELETE``. The file is in WAL mode, so readers never wait for the
writer, and several processes may share it: a busy timeout makes SQLite wait for a lock,
and the few ``database is locked`` errors SQLite raises without waiting are retried with
backoff.

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
import os
import random
import re
import sqlite3
import threading
import time
from collections.abc import AsyncIterator, Iterable, Sequence
from pathlib import Path
from typing import Any, ClassVar

import aiosqlite

from acc.core.errors import BackendError, BackendUnavailable, ConfigError
from acc.core.storage import BaseCache
from acc.core.storage.sharing import SharedConnection

__all__ = ["MEMORY", "SQLiteCache", "SQLiteConnection"]

MEMORY = ":memory:"
"""The path of an in-memory database (it lives as long as its connection)."""

DEFAULT_BUSY_TIMEOUT = 5.0
"""Seconds SQLite waits for another connection's lock before giving up."""

_TABLE = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,62}\Z")
_CHUNK = 500  # keys per statement: well under SQLite's 999-variable floor
_RETRIES = 8
_FIRST_BACKOFF = 0.005
_MAX_BACKOFF = 0.5
_MIN_RETRY_BUDGET = 1.0  # seconds of retries even with busy_timeout=0
_BUSY_CODES = frozenset({5, 6})  # SQLITE_BUSY, SQLITE_LOCKED (primary codes)
_READER_MMAP_SIZE = 256 * 1024 * 1024  # bytes of the file the loop-thread reader maps
_LOOP_READ_MAX = 16 * 1024 * 1024  # larger values are read by the worker thread
_LOOP_WRITE_MAX = 64 * 1024  # larger values are written by the worker thread
_LOOP_WRITE_BUDGET = 4 * 1024 * 1024  # bytes written on the loop between two checkpoints
_FILE_MODE = 0o600  # a database file acc creates: its owner only (the WAL and SHM follow)
_FOLDER_MODE = 0o700  # a folder acc creates for it


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
            timeout=self.busy_timeout,
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
            pragmas = [f"PRAGMA busy_timeout = {int(self.busy_timeout * 1000)}"]
            if not self.in_memory:
                pragmas.append("PRAGMA journal_mode = WAL")
            pragmas.append(f"PRAGMA synchronous = {'OFF' if self.fast_save else 'NORMAL'}")
            for pragma in pragmas:
                await _retrying(connection.execute_fetchall, pragma, (), self.busy_timeout)
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
                await _retrying(connection.execute_fetchall, statement, (), busy_timeout)
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
            await _retrying(connection.execute_fetchall, "VACUUM", (), self.busy_timeout)
            if not self.in_memory:
                await _retrying(
                    connection.execute_fetchall,
                    "PRAGMA wal_checkpoint(TRUNCATE)",
                    (),
                    self.busy_timeout,
                )
        except (sqlite3.Error, ValueError) as exc:
            raise BackendError(f"{self!r}: vacuum failed: {exc}") from exc
        self._written_here = 0

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


def _read_only_uri(path: str) -> str:
    """A ``file:`` URI opening ``path`` read-only (a ``file:`` path keeps its own query)."""
    if path.startswith("file:"):
        separator = "&" if "?" in path else "?"
        return f"{path}{separator}mode=ro"
    return f"{Path(path).absolute().as_uri()}?mode=ro"


async def _retrying(function: Any, sql: str, parameters: Sequence[Any], busy_timeout: float) -> Any:
    """Run ``function(sql, parameters)``, retrying ``database is locked`` with backoff.

    SQLite waits up to ``busy_timeout`` for a lock by itself, but reports some conflicts
    at once (a WAL snapshot gone stale, a lock upgrade that would deadlock). Those are
    retried a few times, with growing, jittered pauses, for at most about
    ``max(busy_timeout, 1)`` seconds in all; a lock held longer is an error.
    """
    deadline = time.monotonic() + max(busy_timeout, _MIN_RETRY_BUDGET)
    delay = _FIRST_BACKOFF
    for _attempt in range(_RETRIES):
        try:
            return await function(sql, parameters)
        except sqlite3.OperationalError as exc:
            if not _is_locked(exc) or time.monotonic() >= deadline:
                raise
        await asyncio.sleep(delay * (0.5 + random.random()))  # jitter
        delay = min(delay * 2, _MAX_BACKOFF)
    return await function(sql, parameters)


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

    Raises:
        ConfigError: An invalid table name or option.
    """

    native_ttl: ClassVar[bool] = True
    persistent: ClassVar[bool] = True
    shared_across_processes: ClassVar[bool] = True

    page_size: ClassVar[int] = 500
    """Rows fetched per query when iterating over keys (fewer for items)."""

    def __init__(
        self,
        db_path: str | os.PathLike[str] | SQLiteConnection = MEMORY,
        table: str = "responses",
        *,
        busy_timeout: float | None = None,
        fast_save: bool | None = None,
    ) -> None:
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
        self._sql_contains = f"SELECT 1 FROM {q} WHERE key = ? AND {live}"
        self._sql_write = f"INSERT OR REPLACE INTO {q} (key, value, expires_at) VALUES (?, ?, ?)"
        self._sql_delete = f"DELETE FROM {q} WHERE key = ?"
        self._sql_size = f"SELECT COUNT(*) FROM {q} WHERE {live}"
        self._sql_expired = f"DELETE FROM {q} WHERE expires_at <= ?"
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
                    connection.execute_fetchall, sql, parameters, self.connection.busy_timeout
                )
            )
        except (sqlite3.Error, ValueError) as exc:
            raise self._failed(operation, exc) from exc

    async def _count(self, operation: str, sql: str, parameters: Sequence[Any]) -> int:
        """Run one statement and return how many rows it changed."""
        connection = await self._connect()

        async def run(sql: str, parameters: Sequence[Any]) -> int:
            async with connection.execute(sql, parameters) as cursor:
                return cursor.rowcount

        try:
            count: int = await _retrying(run, sql, parameters, self.connection.busy_timeout)
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
        """Store ``value`` under ``key``, replacing any previous value."""
        parameters = (key, bytes(value), expires_at)
        if self._conn is not None and not self._closed and self._write_here(parameters):
            return
        await self._fetch("write", self._sql_write, parameters)

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
        """Remove the entries past ``expires_at`` at ``now``: one indexed ``DELETE``."""
        return await self._count("delete_expired", self._sql_expired, (now,))

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
