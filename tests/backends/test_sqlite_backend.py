"""SQLiteBackend and SQLiteCache beyond the conformance kit: real files, real processes.

(The file is not named ``test_sqlite.py``: tests/contract/ has one, and the test tree has
no ``__init__.py`` files, so pytest needs unique basenames.)
"""

from __future__ import annotations

import asyncio
import sqlite3
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import pytest

from acc.backends.sqlite import SQLiteBackend, SQLiteCache, SQLiteConnection, sqlite_path
from acc.core import BackendError, BackendUnavailable, BaseCache, CachedResponse, ConfigError
from acc.core.models import utcnow


def _worker_threads() -> set[threading.Thread]:
    return {t for t in threading.enumerate() if "_connection_worker_thread" in t.name}


def _entry(url: str, *, expires_in: float | None = None) -> CachedResponse:
    expires = None if expires_in is None else utcnow() + timedelta(seconds=expires_in)
    return CachedResponse(
        status=200, reason="OK", url=url, method="GET", body=b"body", expires=expires
    )


@pytest.fixture
async def backend(tmp_path: Path) -> AsyncIterator[SQLiteBackend]:
    cache = SQLiteBackend(tmp_path / "cache.sqlite")
    yield cache
    await cache.close()


async def _keys(store: BaseCache) -> list[str]:
    return [key async for key in store.keys()]  # noqa: SIM118 - an async iterator, not a dict


async def _trace(backend: SQLiteBackend) -> list[str]:
    """Record every statement the backend's connection runs from now on."""
    statements: list[str] = []
    connection = await backend.connection.get()
    await connection.set_trace_callback(statements.append)
    return statements


# -- paths ---------------------------------------------------------------------------------


def test_bare_name_gets_sqlite_suffix(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert SQLiteBackend("http-cache").db_path == tmp_path / "http-cache.sqlite"
    assert SQLiteBackend().db_path == tmp_path / "acc-cache.sqlite"


def test_a_suffix_is_kept(tmp_path: Path) -> None:
    assert SQLiteBackend(tmp_path / "cache.db").db_path == tmp_path / "cache.db"
    assert SQLiteBackend(str(tmp_path / "x.cache")).db_path == tmp_path / "x.cache"


def test_relative_path_is_made_absolute_at_construction(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    backend = SQLiteBackend("sub/cache.db")
    assert backend.db_path == tmp_path / "sub" / "cache.db"
    assert backend.db_path.is_absolute()


def test_tilde_is_expanded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    assert SQLiteBackend("~/caches/app").db_path == tmp_path / "caches" / "app.sqlite"
    assert sqlite_path("~/x.db") == tmp_path / "x.db"


async def test_parent_folders_are_created_on_first_use(tmp_path: Path) -> None:
    target = tmp_path / "a" / "b" / "c" / "cache.sqlite"
    backend = SQLiteBackend(target)
    assert not target.parent.exists()  # the constructor does no I/O
    try:
        await backend.responses.write("k", b"v")
        assert target.is_file()
    finally:
        await backend.close()


async def test_memory_backend_shares_one_database_between_its_stores() -> None:
    backend = SQLiteBackend(":memory:")
    assert backend.in_memory
    assert str(backend.db_path) == ":memory:"
    try:
        await backend.responses.write("k", b"response")
        await backend.redirects.write("alias", b"k")
        connection = await backend.connection.get()
        tables = {
            row[0]
            for row in await connection.execute_fetchall(
                "SELECT name FROM sqlite_master WHERE type = 'table'"
            )
        }
        assert {"responses", "redirects"} <= tables  # one database, one connection
        assert await backend.responses.read("k") == b"response"
        assert await backend.redirects.read("alias") == b"k"
        assert await backend.redirects.read("k") is None
    finally:
        await backend.close()


async def test_memory_backend_stores_entries_through_the_facade() -> None:
    async with SQLiteBackend(":memory:") as backend:
        key = backend.url_key("https://example.com/a")
        assert await backend.write_entry(key, _entry("https://example.com/a"), aliases=["x"])
        assert (await backend.read_entry("x")) is not None
        assert await backend.has_url("https://example.com/a")


# -- configuration -------------------------------------------------------------------------


def test_unknown_keyword_raises_type_error(tmp_path: Path) -> None:
    with pytest.raises(TypeError, match="expire_aftr"):
        SQLiteBackend(tmp_path / "c.db", expire_aftr=3)


@pytest.mark.parametrize("name", ["responses", "redirects"])
def test_stores_cannot_be_replaced(tmp_path: Path, name: str) -> None:
    options: dict[str, object] = {name: SQLiteCache()}
    with pytest.raises(TypeError, match=name):
        SQLiteBackend(tmp_path / "c.db", **options)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("kwargs", "argument"),
    [
        ({"busy_timeout": -1}, "busy_timeout"),
        ({"busy_timeout": "5"}, "busy_timeout"),
        ({"busy_timeout": True}, "busy_timeout"),
        ({"busy_timeout": float("nan")}, "busy_timeout"),
        ({"fast_save": "yes"}, "fast_save"),
        ({"expire_after": "soon"}, "expire_after"),
        ({"allowed_codes": [99]}, "allowed_codes"),
    ],
)
def test_invalid_values_raise_config_error_naming_the_argument(
    tmp_path: Path, kwargs: dict[str, object], argument: str
) -> None:
    with pytest.raises(ConfigError) as raised:
        SQLiteBackend(tmp_path / "c.db", **kwargs)  # type: ignore[arg-type]
    assert raised.value.argument == argument
    assert str(raised.value).startswith(argument)


@pytest.mark.parametrize("cache_name", ["", "   ", 42, None, "cache\x00.sqlite", "\x00"])
def test_invalid_cache_name_raises_config_error(cache_name: object) -> None:
    with pytest.raises(ConfigError, match="cache_name"):
        SQLiteBackend(cache_name)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "table", ["", "1abc", "has space", 'quo"te', "drop;table", "sqlite_master", "x" * 64, 7]
)
def test_invalid_table_names_are_refused(table: object) -> None:
    with pytest.raises(ConfigError, match="table"):
        SQLiteCache(":memory:", table)  # type: ignore[arg-type]


def test_options_belong_to_the_shared_connection() -> None:
    shared = SQLiteConnection(":memory:")
    with pytest.raises(ConfigError, match="busy_timeout"):
        SQLiteCache(shared, "t", busy_timeout=1)


async def test_busy_timeout_and_fast_save_reach_sqlite(tmp_path: Path) -> None:
    async with SQLiteBackend(tmp_path / "c.db", busy_timeout=2.5, fast_save=True) as backend:
        connection = await backend.connection.get()
        assert backend.connection.busy_timeout == 2.5  # waited for on the loop, not by SQLite
        assert list(await connection.execute_fetchall("PRAGMA busy_timeout")) == [(0,)]
        assert list(await connection.execute_fetchall("PRAGMA synchronous")) == [(0,)]
    async with SQLiteBackend(tmp_path / "d.db") as backend:
        connection = await backend.connection.get()
        assert list(await connection.execute_fetchall("PRAGMA synchronous")) == [(1,)]


# -- the database file ---------------------------------------------------------------------


async def test_database_is_in_wal_mode(backend: SQLiteBackend) -> None:
    await backend.responses.write("k", b"v")
    with sqlite3.connect(backend.db_path) as other:
        assert other.execute("PRAGMA journal_mode").fetchone() == ("wal",)


async def test_schema_has_one_table_per_store_and_an_expiry_index(backend: SQLiteBackend) -> None:
    await backend.responses.write("k", b"v")
    await backend.redirects.write("a", b"k")
    with sqlite3.connect(backend.db_path) as other:
        columns = [
            (row[1], row[2], row[3], row[5])
            for row in other.execute("PRAGMA table_info(responses)")
        ]
        assert columns == [
            ("key", "TEXT", 0, 1),
            ("value", "BLOB", 1, 0),
            ("expires_at", "REAL", 0, 0),
        ]
        indexes = {row[1] for row in other.execute("PRAGMA index_list(responses)")}
        assert "responses_expires_at" in indexes
        assert "redirects_expires_at" in {
            row[1] for row in other.execute("PRAGMA index_list(redirects)")
        }


async def test_expiry_sweep_uses_the_index(backend: SQLiteBackend) -> None:
    await backend.responses.write("k", b"v")
    with sqlite3.connect(backend.db_path) as other:
        plan = " ".join(
            str(row[3])
            for row in other.execute(
                "EXPLAIN QUERY PLAN DELETE FROM responses WHERE rowid IN "
                "(SELECT rowid FROM responses WHERE expires_at <= ? LIMIT 2000)",
                (time.time(),),
            )
        )
    assert "INDEX responses_expires_at" in plan


async def test_delete_expired_deletes_and_never_reads(backend: SQLiteBackend) -> None:
    now = time.time()
    # Garbage that would fail decoding: if the façade read these, stats.errors would grow.
    for i in range(5):
        await backend.responses.write(f"old-{i}", b"not an entry %d" % i, expires_at=now - 10)
    for i in range(3):
        await backend.responses.write(f"new-{i}", b"\x00garbage", expires_at=now + 3600)
    await backend.responses.write("forever", b"\xff\xfe", expires_at=None)
    statements = await _trace(backend)

    assert await backend.delete(expired=True) == 5

    assert backend.stats.errors == 0
    # One batch per store (fewer rows than a batch), no value read from either store.
    for table in ("responses", "redirects"):
        on_table = [s for s in statements if f'"{table}"' in s and not s.startswith("CREATE")]
        assert len(on_table) == 1
        assert on_table[0].startswith(f'DELETE FROM "{table}" WHERE rowid IN')
    assert not [s for s in statements if s.startswith("SELECT")]
    assert sorted(await _keys(backend.responses)) == ["forever", "new-0", "new-1", "new-2"]


async def test_delete_expired_deletes_every_expired_row_in_batches(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import acc.backends.sqlite.cache as sqlite_cache

    monkeypatch.setattr(sqlite_cache, "_EXPIRY_BATCH", 2000)  # a small batch, few rows
    store = SQLiteCache(tmp_path / "batches.sqlite")
    now = time.time()
    # More than two batches of expired rows (2,000 each), among live ones.
    connection = await store._connect()
    rows: list[tuple[str, bytes, float | None]] = [
        (f"old-{i:05}", b"x" * 100, now - 10 - i % 7) for i in range(4500)
    ]
    rows += [(f"new-{i:05}", b"y" * 100, now + 3600) for i in range(300)]
    rows += [(f"forever-{i}", b"z", None) for i in range(5)]
    await connection.executemany(
        'INSERT INTO "responses" (key, value, expires_at) VALUES (?, ?, ?)', rows
    )
    statements = await _trace_store(store)
    assert await store.delete_expired(now) == 4500
    deletes = [s for s in statements if s.startswith("DELETE")]
    assert len(deletes) == 3  # 2,000 + 2,000 + 500
    assert any("wal_checkpoint(TRUNCATE)" in s for s in statements)
    left = await _keys(store)
    assert len(left) == 305
    assert all(not key.startswith("old-") for key in left)
    assert await store.delete_expired(now) == 0
    await store.close()


async def _trace_store(store: SQLiteCache) -> list[str]:
    statements: list[str] = []
    connection = await store.connection.get()
    await connection.set_trace_callback(statements.append)
    return statements


async def test_the_wal_is_small_after_a_large_expiry(tmp_path: Path) -> None:
    path = tmp_path / "wal.sqlite"
    store = SQLiteCache(path)
    now = time.time()
    connection = await store._connect()
    value = b"v" * 1500
    for start in range(0, 24_000, 4000):
        rows = [
            (f"{(start + i) * 2654435761 % 2**32:08x}-{start + i}", value, now - 1)
            for i in range(4000)
        ]
        await connection.executemany(
            'INSERT INTO "responses" (key, value, expires_at) VALUES (?, ?, ?)', rows
        )
    assert await store.delete_expired(now) == 24_000
    wal = await asyncio.to_thread(store.connection.wal_size)
    assert wal < 1024 * 1024  # truncated: not the 36+ MB the sweep wrote
    assert await store.size() == 0
    await store.close()


def _page_size(path: Path) -> int:
    with sqlite3.connect(path) as other:
        return int(other.execute("PRAGMA page_size").fetchone()[0])


async def test_a_new_file_gets_8k_pages(tmp_path: Path) -> None:
    backend = SQLiteBackend(tmp_path / "new.sqlite")
    await backend.responses.write("k", b"v")
    await backend.close()
    assert _page_size(tmp_path / "new.sqlite") == 8192


async def test_an_old_file_keeps_its_4k_pages_and_works(tmp_path: Path) -> None:
    path = tmp_path / "old.sqlite"
    with sqlite3.connect(path) as old:  # as earlier releases made it
        old.execute("PRAGMA page_size = 4096")
        old.execute("PRAGMA journal_mode = WAL")
        old.execute(
            'CREATE TABLE "responses" (key TEXT PRIMARY KEY, value BLOB NOT NULL, expires_at REAL)'
        )
        old.execute('CREATE INDEX "responses_expires_at" ON "responses" (expires_at)')
        old.execute(
            'INSERT INTO "responses" VALUES (?, ?, ?)', ("before", b"kept", time.time() - 5)
        )
        old.execute('INSERT INTO "responses" VALUES (?, ?, ?)', ("live", b"old", None))
    backend = SQLiteBackend(path)
    assert await backend.responses.read("live") == b"old"
    await backend.responses.write("k", b"v" * 5000)
    assert await backend.responses.read("k") == b"v" * 5000
    assert await backend.delete(expired=True) == 1
    assert sorted(await _keys(backend.responses)) == ["k", "live"]
    await backend.close()
    assert _page_size(path) == 4096


async def test_expired_rows_are_invisible_before_the_sweep(backend: SQLiteBackend) -> None:
    store = backend.responses
    await store.write("gone", b"v", expires_at=time.time() - 1)
    await store.write("live", b"w", expires_at=time.time() + 60)
    assert await store.read("gone") is None
    assert not await store.contains("gone")
    assert await store.size() == 1
    assert await _keys(store) == ["live"]
    assert await store.read_many(["gone", "live"]) == [None, b"w"]
    assert await store.delete_expired(time.time()) == 1
    assert await store.delete_expired(time.time()) == 0


# -- batches -------------------------------------------------------------------------------


async def _fill(store: SQLiteCache, count: int, prefix: str = "k") -> list[str]:
    keys = [f"{prefix}{i:05d}" for i in range(count)]
    for key in keys:
        await store.write(key, key.encode())
    return keys


async def test_bulk_delete_of_2500_keys_is_chunked(tmp_path: Path) -> None:
    async with SQLiteBackend(tmp_path / "c.db") as backend:
        store = backend.responses
        assert isinstance(store, SQLiteCache)
        keys = await _fill(store, 2500)
        statements = await _trace(backend)
        await store.bulk_delete(iter([*keys[:2200], "missing", keys[0]]))
        deletes = [s for s in statements if s.startswith('DELETE FROM "responses"')]
        assert len(deletes) == 5  # 2201 distinct keys, 500 per statement
        assert await store.size() == 300
        assert await _keys(store) == keys[2200:]


async def test_read_many_keeps_order_across_chunks(backend: SQLiteBackend) -> None:
    store = backend.responses
    assert isinstance(store, SQLiteCache)
    keys = await _fill(store, 1200)
    await store.write("expired", b"x", expires_at=time.time() - 1)
    wanted = [*reversed(keys), "missing", "expired", keys[7], keys[7]]
    statements = await _trace(backend)
    values = await store.read_many(wanted)
    assert values == [k.encode() for k in reversed(keys)] + [None, None, b"k00007", b"k00007"]
    assert len([s for s in statements if s.startswith("SELECT key, value")]) == 3


async def test_keys_are_paged_without_holding_a_transaction(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(SQLiteCache, "page_size", 3)
    async with SQLiteBackend(tmp_path / "c.db", busy_timeout=0) as backend:
        store = backend.responses
        assert isinstance(store, SQLiteCache)
        keys = await _fill(store, 10)
        connection = await backend.connection.get()
        seen = []
        with sqlite3.connect(backend.db_path, timeout=0) as other:
            async for key in store.keys():
                seen.append(key)
                assert not connection.in_transaction
                # Another connection can write while we are between pages.
                other.execute("INSERT OR REPLACE INTO responses VALUES (?, ?, NULL)", ("zz", b""))
                other.commit()
                await store.delete(key)  # and so can we
        assert seen == [*keys, "zz"]
        assert await store.size() == 0
        items = [k async for k, _v in store.items()]
        assert items == []


async def test_clear_empties_only_its_own_table(backend: SQLiteBackend) -> None:
    await backend.responses.write("k", b"v")
    await backend.redirects.write("a", b"k")
    other = SQLiteCache(backend.db_path, "elsewhere")
    try:
        await other.write("x", b"y")
        await backend.responses.clear()
        assert await backend.responses.size() == 0
        assert await backend.redirects.read("a") == b"k"
        assert await other.read("x") == b"y"
    finally:
        await other.close()


# -- sharing ---------------------------------------------------------------------------------


async def test_two_backends_on_one_file_see_each_others_writes(tmp_path: Path) -> None:
    path = tmp_path / "shared.sqlite"
    first, second = SQLiteBackend(path), SQLiteBackend(path)
    try:
        url = "https://example.com/shared"
        key = first.url_key(url)
        assert await first.write_entry(key, _entry(url))
        assert await second.has_url(url)
        hit = await second.read_entry(key)
        assert hit is not None
        assert hit.body == b"body"
        await second.delete_url(url)
        assert not await first.has_url(url)
    finally:
        await first.close()
        await second.close()


async def test_both_stores_share_one_connection(backend: SQLiteBackend) -> None:
    before = _worker_threads()
    await backend.responses.write("k", b"v")
    await backend.redirects.write("a", b"k")
    assert len(_worker_threads() - before) == 1
    assert isinstance(backend.responses, SQLiteCache)
    assert isinstance(backend.redirects, SQLiteCache)
    assert backend.responses.connection is backend.redirects.connection


_WRITER = textwrap.dedent(
    """
    import asyncio, sys, time
    from acc.backends.sqlite import SQLiteBackend

    async def main(path, tag, start):
        backend = SQLiteBackend(path)
        await backend.responses.read("warm-up")  # open before the agreed start
        while time.time() < start:
            await asyncio.sleep(0.001)
        async def one(i):
            await backend.responses.write(f"{tag}-{i}", f"{tag}:{i}".encode(), expires_at=None)
            assert await backend.responses.read(f"{tag}-{i}") == f"{tag}:{i}".encode()
        await asyncio.gather(*(one(i) for i in range(200)))
        await backend.close()

    asyncio.run(main(sys.argv[1], sys.argv[2], float(sys.argv[3])))
    """
)


@pytest.mark.slow
async def test_two_processes_write_concurrently_without_errors_or_lost_writes(
    tmp_path: Path,
) -> None:
    path = tmp_path / "multi.sqlite"
    start = time.time() + 1.5
    procs = [
        await asyncio.create_subprocess_exec(
            sys.executable,
            "-c",
            _WRITER,
            str(path),
            tag,
            str(start),
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        for tag in ("a", "b")
    ]
    for proc in procs:
        _out, err = await asyncio.wait_for(proc.communicate(), timeout=60)
        assert proc.returncode == 0, err.decode()
        assert err == b""
    async with SQLiteBackend(path) as backend:
        assert await backend.responses.size() == 400
        keys = [f"{tag}-{i}" for tag in "ab" for i in range(200)]
        values = await backend.responses.read_many(keys)
        assert values == [f"{k.replace('-', ':')}".encode() for k in keys]


async def test_200_concurrent_tasks_on_one_backend(backend: SQLiteBackend) -> None:
    async def one(i: int) -> bytes | None:
        await backend.responses.write(f"k{i}", b"%d" % i, expires_at=time.time() + 60)
        if i % 3 == 0:
            await backend.redirects.write(f"alias{i}", f"k{i}".encode())
        return await backend.responses.read(f"k{i}")

    results = await asyncio.gather(*(one(i) for i in range(200)))
    assert results == [b"%d" % i for i in range(200)]
    assert await backend.responses.size() == 200
    assert await backend.redirects.size() == 67


async def test_first_use_from_many_tasks_opens_once(tmp_path: Path) -> None:
    before = _worker_threads()
    async with SQLiteBackend(tmp_path / "c.db") as backend:
        await asyncio.gather(
            *(backend.responses.read(f"k{i}") for i in range(50)),
            *(backend.redirects.read(f"k{i}") for i in range(50)),
        )
        assert len(_worker_threads() - before) == 1


async def test_database_is_locked_is_retried(tmp_path: Path) -> None:
    path = tmp_path / "locked.sqlite"
    async with SQLiteBackend(path, busy_timeout=30) as backend:
        await backend.responses.write("k", b"v")
        holder = sqlite3.connect(path, isolation_level=None)
        try:
            holder.execute("BEGIN IMMEDIATE")  # take the write lock
            asyncio.get_running_loop().call_later(0.2, holder.execute, "COMMIT")
            started = time.monotonic()
            await backend.responses.write("k", b"w")  # fails at once, then retried
            assert time.monotonic() - started >= 0.15
            assert await backend.responses.read("k") == b"w"
        finally:
            holder.close()


async def test_a_lock_held_too_long_is_a_backend_error(tmp_path: Path) -> None:
    path = tmp_path / "locked.sqlite"
    async with SQLiteBackend(path, busy_timeout=0) as backend:
        await backend.responses.write("k", b"v")
        holder = sqlite3.connect(path, isolation_level=None)
        try:
            holder.execute("BEGIN IMMEDIATE")
            with pytest.raises(BackendError, match="locked"):
                await backend.responses.write("k", b"w")
            # The façade fails open: the save is skipped and counted.
            key = backend.url_key("https://example.com/")
            assert not await backend.write_entry(key, _entry("https://example.com/"))
            assert backend.stats.errors == 1
        finally:
            holder.execute("ROLLBACK")
            holder.close()


# -- failures and closing --------------------------------------------------------------------


async def test_unopenable_file_is_backend_unavailable(tmp_path: Path) -> None:
    (tmp_path / "a-file").write_text("not a folder")
    store = SQLiteCache(tmp_path / "a-file" / "cache.sqlite")
    with pytest.raises(BackendUnavailable):
        await store.read("k")
    await store.close()
    folder = SQLiteCache(tmp_path)  # a directory is not a database
    with pytest.raises(BackendUnavailable):
        await folder.write("k", b"v")
    await folder.close()


async def test_corrupt_file_is_backend_unavailable_and_the_facade_fails_open(
    tmp_path: Path,
) -> None:
    path = tmp_path / "corrupt.sqlite"
    path.write_bytes(b"this is not a database" * 100)
    async with SQLiteBackend(path) as backend:
        with pytest.raises(BackendUnavailable):
            await backend.responses.read("k")
        assert await backend.read_entry("k") is None
        assert backend.stats.errors == 1
    async with SQLiteBackend(path, strict=True) as strict:
        with pytest.raises(BackendUnavailable):
            await strict.read_entry("k")


async def test_close_is_idempotent_and_later_use_raises(tmp_path: Path) -> None:
    backend = SQLiteBackend(tmp_path / "c.db")
    await backend.responses.write("k", b"v")
    await backend.close()
    await backend.close()
    assert backend.closed
    assert backend.connection.closed
    for store in (backend.responses, backend.redirects):
        await store.close()
        with pytest.raises(BackendError):
            await store.read("k")
        with pytest.raises(BackendError):
            await store.write("k", b"v")
        with pytest.raises(BackendError):
            await _keys(store)
    with pytest.raises(BackendError):
        await backend.read_entry("k")


async def test_closing_a_never_opened_backend_starts_nothing(tmp_path: Path) -> None:
    before = _worker_threads()
    backend = SQLiteBackend(tmp_path / "never.sqlite")
    await backend.close()
    assert _worker_threads() == before
    assert not (tmp_path / "never.sqlite").exists()


async def test_connection_stays_open_until_the_last_store_closes(backend: SQLiteBackend) -> None:
    await backend.responses.write("k", b"v")
    await backend.responses.close()
    assert backend.connection.is_open
    assert await backend.redirects.read("a") is None
    await backend.redirects.close()
    assert backend.connection.closed
    assert not backend.connection.is_open


async def test_no_worker_thread_survives_close(tmp_path: Path) -> None:
    before = _worker_threads()
    backends = [SQLiteBackend(tmp_path / f"c{i}.db") for i in range(3)]
    backends.append(SQLiteBackend(":memory:"))
    for backend in backends:
        await backend.responses.write("k", b"v")
    assert len(_worker_threads() - before) == 4
    for backend in backends:
        await backend.close()
    await asyncio.sleep(0)
    for thread in _worker_threads() - before:
        thread.join(timeout=5)
    assert _worker_threads() - before == set()
    assert all(not t.is_alive() for t in threading.enumerate() if t.name.endswith("worker_thread)"))


_UNCLOSED = textwrap.dedent(
    """
    import asyncio, sys
    from acc.backends.sqlite import SQLiteBackend

    backend = SQLiteBackend(sys.argv[1])  # a global: never closed, never collected

    async def main():
        await backend.responses.write("k", b"written", expires_at=None)

    asyncio.run(main())
    print("done")
    """
)


@pytest.mark.slow
def test_a_backend_never_closed_does_not_hang_interpreter_exit(tmp_path: Path) -> None:
    path = tmp_path / "unclosed.sqlite"
    result = subprocess.run(
        [sys.executable, "-c", _UNCLOSED, str(path)],
        capture_output=True,
        timeout=30,
        check=False,
    )
    assert result.returncode == 0, result.stderr.decode()
    assert result.stdout.strip() == b"done"
    with sqlite3.connect(path) as other:  # the write was committed before exit
        assert other.execute("SELECT value FROM responses").fetchall() == [(b"written",)]


# -- the loop-thread reader ------------------------------------------------------------------


async def test_point_reads_of_a_file_skip_the_worker_thread(backend: SQLiteBackend) -> None:
    await backend.responses.write("k", b"v")
    statements = await _trace(backend)
    assert await backend.responses.read("k") == b"v"
    assert await backend.responses.read("missing") is None
    assert await backend.responses.contains("k")
    assert not await backend.responses.contains("missing")
    assert statements == []  # answered on the loop's thread, by the reader connection
    large = b"x" * (64 * 1024 + 1)
    await backend.responses.write("k", large)  # large writes go through the worker ...
    assert any(s.startswith("INSERT OR REPLACE") for s in statements)
    assert await backend.responses.read("k") == large  # ... and the reader sees them at once


async def test_small_writes_skip_the_worker_thread_and_are_read_back_at_once(
    backend: SQLiteBackend, tmp_path: Path
) -> None:
    await backend.responses.write("first", b"v")  # opens the file through the worker
    statements = await _trace(backend)
    await backend.responses.write("k", b"small", expires_at=time.time() + 60)
    assert statements == []  # committed on the loop's thread
    assert await backend.responses.read("k") == b"small"
    # Committed for every other connection too, the worker's and another process's:
    assert await backend.responses.read_many(["k"]) == [b"small"]
    other = sqlite3.connect(tmp_path / "cache.sqlite")
    try:
        assert other.execute("SELECT value FROM responses WHERE key = 'k'").fetchone() == (
            b"small",
        )
    finally:
        other.close()


async def test_every_4_mib_written_on_the_loop_the_worker_writes_and_checkpoints(
    backend: SQLiteBackend,
) -> None:
    await backend.responses.write("first", b"v")
    statements = await _trace(backend)
    value = b"x" * (60 * 1024)
    for number in range(80):  # 4.7 MiB in all
        await backend.responses.write(f"k{number}", value)
    inserts = [s for s in statements if s.startswith("INSERT OR REPLACE")]
    assert len(inserts) == 1  # the write that crossed 4 MiB went to the worker
    assert await backend.responses.size() == 81


async def test_a_small_write_during_another_connection_lock_waits_on_the_worker(
    backend: SQLiteBackend, tmp_path: Path
) -> None:
    await backend.responses.write("first", b"v")
    statements = await _trace(backend)
    blocker = sqlite3.connect(tmp_path / "cache.sqlite", isolation_level=None)
    blocker.execute("BEGIN IMMEDIATE")  # holds the write lock
    loop_ran = asyncio.Event()

    async def release_later() -> None:
        loop_ran.set()  # the loop was free while the write waited
        await asyncio.sleep(0.2)
        blocker.execute("COMMIT")

    releaser = asyncio.create_task(release_later())
    try:
        await backend.responses.write("k", b"after the lock")
    finally:
        await releaser
        blocker.close()
    assert loop_ran.is_set()
    assert any(s.startswith("INSERT OR REPLACE") for s in statements)  # the worker's retry
    assert await backend.responses.read("k") == b"after the lock"


async def test_an_in_memory_database_writes_through_the_worker() -> None:
    backend = SQLiteBackend(":memory:")
    try:
        await backend.responses.write("k", b"v")
        assert backend.connection.writer(1) is None
        assert await backend.responses.read("k") == b"v"
    finally:
        await backend.close()


async def test_the_reader_sees_another_process_write_and_delete_at_once(tmp_path: Path) -> None:
    path = tmp_path / "shared.sqlite"
    script = textwrap.dedent(
        """
        import asyncio, sys
        from acc.backends.sqlite import SQLiteCache

        async def main(path, action):
            store = SQLiteCache(path)
            if action == "write":
                await store.write("k", b"from-the-other-process")
            else:
                await store.delete("k")
            await store.close()

        asyncio.run(main(sys.argv[1], sys.argv[2]))
        """
    )
    async with SQLiteBackend(path) as backend:
        await backend.responses.write("k", b"mine")
        assert await backend.responses.read("k") == b"mine"  # the reader is open now
        for action, expected in (("write", b"from-the-other-process"), ("delete", None)):
            other = await asyncio.create_subprocess_exec(
                sys.executable, "-c", script, str(path), action, stderr=asyncio.subprocess.PIPE
            )
            _out, err = await asyncio.wait_for(other.communicate(), timeout=60)
            assert other.returncode == 0, err.decode()
            assert await backend.responses.read("k") == expected


async def test_a_locked_database_falls_back_to_the_worker_without_blocking_the_loop(
    tmp_path: Path,
) -> None:
    # A file in rollback-journal mode whose writer holds an exclusive lock: readers must
    # wait. The loop-thread reader may not; the read goes to the worker thread, which
    # waits for the lock while the loop keeps running, and then answers.
    path = tmp_path / "rollback.sqlite"
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute(
        'CREATE TABLE "responses" (key TEXT PRIMARY KEY, value BLOB NOT NULL, expires_at REAL)'
    )
    holder.execute("""INSERT INTO "responses" VALUES ('k', x'7631', NULL)""")
    holder.execute("BEGIN EXCLUSIVE")
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            ticks += 1
            await asyncio.sleep(0.01)

    ticking = asyncio.create_task(ticker())
    try:
        async with SQLiteBackend(path) as backend:
            asyncio.get_running_loop().call_later(0.3, holder.execute, "COMMIT")
            assert await backend.responses.read("k") == b"v1"
            assert ticks >= 5  # the loop ran while the read waited for the lock
            assert await backend.responses.read("k") == b"v1"  # and now on the reader
    finally:
        ticking.cancel()
        holder.close()


async def test_a_missing_table_reads_as_missing_through_the_worker(tmp_path: Path) -> None:
    path = tmp_path / "other.sqlite"
    async with SQLiteBackend(path) as backend:
        await backend.redirects.write("alias", b"k")  # the file exists, "responses" not yet
        fresh = SQLiteCache(path, "fresh_table")
        try:
            assert await fresh.read("k") is None
            assert not await fresh.contains("k")
            await fresh.write("k", b"v")
            assert await fresh.read("k") == b"v"
        finally:
            await fresh.close()


async def test_reads_after_close_raise_even_with_a_reader(backend: SQLiteBackend) -> None:
    await backend.responses.write("k", b"v")
    assert await backend.responses.read("k") == b"v"
    await backend.close()
    with pytest.raises(BackendError, match="closed"):
        await backend.responses.read("k")
    with pytest.raises(BackendError, match="closed"):
        await backend.responses.contains("k")


async def test_a_value_too_large_for_the_loop_thread_is_read_by_the_worker(
    backend: SQLiteBackend,
) -> None:
    from acc.backends.sqlite import cache as sqlite_cache

    big, small = b"x" * 20 * 1024 * 1024, b"y" * 1024  # over and under the 16 MiB bound
    await backend.responses.write("big", big)
    await backend.responses.write("small", small)
    statements = await _trace(backend)
    assert await backend.responses.read("small") == small
    assert statements == []
    assert await backend.responses.read("big") == big
    assert [s for s in statements if s.startswith("SELECT value")]  # through the worker
    assert len(big) > sqlite_cache._LOOP_READ_MAX


# -- size on disk and compaction -------------------------------------------------------------


async def test_disk_usage_counts_the_write_ahead_log(tmp_path: Path) -> None:
    backend = SQLiteBackend(tmp_path / "sized.sqlite")
    assert await backend.disk_usage() == 0  # nothing opened yet
    for i in range(50):
        await backend.responses.write(f"k{i}", b"x" * 4000)
    files = [tmp_path / name for name in ("sized.sqlite", "sized.sqlite-wal", "sized.sqlite-shm")]
    assert (tmp_path / "sized.sqlite-wal").stat().st_size > 0
    assert await backend.disk_usage() == sum(p.stat().st_size for p in files if p.exists())
    await backend.close()
    with pytest.raises(BackendError):
        await backend.disk_usage()
    async with SQLiteBackend(":memory:") as memory:
        await memory.responses.write("k", b"v")
        assert await memory.disk_usage() == 0


async def test_vacuum_shrinks_the_file_and_the_log(tmp_path: Path) -> None:
    backend = SQLiteBackend(tmp_path / "big.sqlite")
    for i in range(300):
        await backend.responses.write(f"k{i}", bytes([i % 256]) * 2000)
    await backend.delete(*[f"k{i}" for i in range(280)])
    before = await backend.disk_usage()
    await backend.vacuum()
    after = await backend.disk_usage()
    assert after < before / 3
    assert (tmp_path / "big.sqlite-wal").stat().st_size == 0
    # The cache works as before, on the loop-thread connections too.
    assert await backend.responses.read("k299") == bytes([299 % 256]) * 2000
    await backend.responses.write("new", b"small")
    assert await backend.responses.read("new") == b"small"
    await backend.close()
    with pytest.raises(BackendError):
        await backend.vacuum()


async def test_vacuum_of_an_in_memory_cache_works() -> None:
    async with SQLiteBackend(":memory:") as backend:
        await backend.responses.write("k", b"v")
        await backend.vacuum()
        assert await backend.responses.read("k") == b"v"
