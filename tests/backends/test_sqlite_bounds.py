"""SQLite: bounded stores (``max_entries``, ``max_bytes``), lock waits, large writes.

* Eviction keeps a store within its bounds: expired entries first, then the oldest
  written; the size bounded (``disk_usage``) counts the write-ahead log.
* ``busy_timeout`` is what a statement waits for another connection's lock, and the
  wait happens on the event loop: the worker thread the stores share stays free, so
  concurrent statements never queue behind one another's waits.
* A large value handed over in parts is written with blob I/O, never bound as one
  parameter (which would copy it twice).
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
from pathlib import Path
from typing import Any

import pytest

from acc.backends.sqlite import SQLiteBackend
from acc.core import BackendError, CachedResponse, ConfigError, EntryTooLarge

WAIT = 30.0


async def _trace(backend: SQLiteBackend) -> list[str]:
    statements: list[str] = []
    connection = await backend.connection.get()
    await connection.set_trace_callback(statements.append)
    return statements


async def stored_keys(store) -> list[str]:
    return [key async for key in store.keys()]  # noqa: SIM118 - an async iterator


# -- max_entries -----------------------------------------------------------------------------


async def test_max_entries_evicts_the_oldest_written(tmp_path: Path) -> None:
    async with SQLiteBackend(tmp_path / "c.db", max_entries=10) as backend:
        store = backend.store
        for n in range(30):
            await store.write(f"k{n:02}", b"v")
        assert await store.size() == 10
        assert sorted(await stored_keys(store)) == [f"k{n:02}" for n in range(20, 30)]


async def test_max_entries_evicts_expired_entries_first(tmp_path: Path) -> None:
    async with SQLiteBackend(tmp_path / "c.db", max_entries=10) as backend:
        store = backend.store
        await store.write("old-but-fresh", b"v")
        connection = await backend.connection.get()
        for n in range(10):  # expired rows, written behind the store's back
            await connection.execute(
                "INSERT INTO responses VALUES (?, ?, ?)", (f"gone{n}", b"v", time.time() - 60)
            )
        await store.write("new", b"v")  # 12 rows: over the bound, expired ones go
        rows = await connection.execute_fetchall("SELECT key FROM responses ORDER BY key")
        assert [r[0] for r in rows] == ["new", "old-but-fresh"]


async def test_max_entries_is_checked_every_tenth_of_the_bound(tmp_path: Path) -> None:
    async with SQLiteBackend(tmp_path / "c.db", max_entries=100) as backend:
        store = backend.store
        statements = await _trace(backend)
        for n in range(25):
            await store.write(f"k{n}", b"v")
        counts = [s for s in statements if s.startswith("SELECT COUNT(*)")]
        assert len(counts) == 2  # after the 10th and the 20th write


# -- max_bytes and disk_usage ----------------------------------------------------------------


async def test_disk_usage_counts_the_write_ahead_log(tmp_path: Path) -> None:
    async with SQLiteBackend(tmp_path / "c.db") as backend:
        store = backend.store
        await store.write("k", b"x" * 200_000)
        wal = backend.connection.wal_size()
        assert wal >= 200_000  # not checkpointed yet: the value is in the log
        connection = await backend.connection.get()
        (pages,) = await connection.execute_fetchall(
            "SELECT (SELECT page_count FROM pragma_page_count()) - "
            "(SELECT freelist_count FROM pragma_freelist_count()), "
            "(SELECT page_size FROM pragma_page_size())"
        )
        assert await backend.used_bytes() == pages[0] * pages[1] + wal


async def test_max_bytes_keeps_the_database_within_the_bound(tmp_path: Path) -> None:
    bound = 2 * 1024 * 1024
    async with SQLiteBackend(tmp_path / "c.db", max_bytes=bound) as backend:
        store = backend.store
        for n in range(60):
            await store.write(f"k{n:02}", bytes([n]) * 100_000)
            assert await backend.used_bytes() <= bound + bound // 10 + 100_000 * 2
        await store.evict()
        assert await backend.used_bytes() <= bound
        kept = sorted(await stored_keys(store))
        assert kept, "eviction must not empty a store that fits"
        assert kept == [f"k{n:02}" for n in range(60 - len(kept), 60)]  # the newest stay
        for key in kept:
            value = await store.read(key)
            assert value == bytes([int(key[1:])]) * 100_000


async def test_a_value_above_max_bytes_is_not_stored(tmp_path: Path) -> None:
    async with SQLiteBackend(tmp_path / "c.db", max_bytes=1024 * 1024) as backend:
        store = backend.store
        await store.write("k", b"small")
        with pytest.raises(EntryTooLarge):
            await store.write("k", b"x" * (1024 * 1024 + 1))
        assert await store.read("k") is None  # the older value went too
        entry = CachedResponse(200, "OK", "https://example.com/", "GET", body=b"x" * 2_000_000)
        assert await backend.write_entry("key", entry) is False
        assert backend.stats.errors == 0  # not a storage failure


@pytest.mark.parametrize("name", ["max_entries", "max_bytes"])
@pytest.mark.parametrize("value", [0, -1, 1.5, "10", True])
def test_bounds_are_checked(tmp_path: Path, name: str, value: Any) -> None:
    with pytest.raises(ConfigError, match=name):
        SQLiteBackend(tmp_path / "c.db", **{name: value})


def test_bounds_can_be_set_in_the_url(tmp_path: Path) -> None:
    backend = SQLiteBackend.from_url(f"sqlite:///{tmp_path}/c.db?max_entries=5&max_bytes=1000000")
    assert (backend.store.max_entries, backend.store.max_bytes) == (5, 1_000_000)


# -- large values ------------------------------------------------------------------------------


async def test_a_large_value_in_parts_is_written_with_blob_io(tmp_path: Path) -> None:
    async with SQLiteBackend(tmp_path / "c.db") as backend:
        store = backend.store
        await store.write("k", b"first")
        statements = await _trace(backend)
        head, body = b"head", bytes(range(256)) * 8192  # 2 MiB
        await store.write_parts("k", (head, body))
        assert await store.read("k") == head + body
        inserts = [s for s in statements if s.startswith("INSERT OR REPLACE")]
        assert len(inserts) == 1
        assert "zeroblob(2097156)" in inserts[0]  # the value was never bound whole


async def test_a_failed_large_write_leaves_the_older_value(tmp_path: Path) -> None:
    async with SQLiteBackend(tmp_path / "c.db", busy_timeout=0) as backend:
        store = backend.store
        await store.write("k", b"older")
        holder = sqlite3.connect(backend.db_path, isolation_level=None)
        try:
            holder.execute("BEGIN IMMEDIATE")
            with pytest.raises(BackendError, match="locked"):
                await store.write_parts("k", (b"h", b"x" * 2_000_000))
        finally:
            holder.execute("ROLLBACK")
            holder.close()
        assert await store.read("k") == b"older"


# -- lock waits ------------------------------------------------------------------------------


async def test_busy_timeout_bounds_the_wait_for_a_lock(tmp_path: Path) -> None:
    async with SQLiteBackend(tmp_path / "c.db", busy_timeout=0.3) as backend:
        store = backend.store
        await store.write("k", b"v")
        holder = sqlite3.connect(backend.db_path, isolation_level=None)
        holder.execute("BEGIN IMMEDIATE")
        try:
            started = time.monotonic()
            with pytest.raises(BackendError, match="locked"):
                await store.write("k", b"w" * 100_000)
            waited = time.monotonic() - started
        finally:
            holder.execute("ROLLBACK")
            holder.close()
        assert waited >= 0.29  # it did wait for the lock...
        assert waited < 0.3 + 10  # ...and not for a multiple of busy_timeout (generous)


async def test_concurrent_statements_never_queue_behind_one_anothers_lock_waits(
    tmp_path: Path,
) -> None:
    # Twenty writes wait for a lock another connection holds. Were they waiting in the
    # worker thread, one after the other, a read through that thread would wait behind
    # all of them (20 x busy_timeout); here it is answered at once.
    async with SQLiteBackend(tmp_path / "c.db", busy_timeout=60) as backend:
        store = backend.store
        await store.write("k", b"v")
        holder = sqlite3.connect(backend.db_path, isolation_level=None)
        holder.execute("BEGIN IMMEDIATE")
        try:
            writers = [asyncio.create_task(store.write(f"w{n}", b"x" * 100_000)) for n in range(20)]
            await asyncio.sleep(0.05)  # let them all meet the lock
            assert not any(task.done() for task in writers)
            # read_many goes through the worker thread (the loop reader is for point reads).
            assert await asyncio.wait_for(store.read_many(["k"]), WAIT) == [b"v"]
            assert not any(task.done() for task in writers)
        finally:
            holder.execute("COMMIT")
            holder.close()
        await asyncio.wait_for(asyncio.gather(*writers), WAIT)
        assert await store.size() == 21
