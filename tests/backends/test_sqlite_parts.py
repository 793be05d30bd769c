"""SQLite reads a large value in two parts with blob I/O (``SQLiteCache.read_parts``).

The body of a large entry comes back as a ``bytes`` object of its own, cut where the
codec says it begins, on the loop-thread reader and through the worker thread alike; a
value that is not a BLOB, or a small one, comes back whole; a file written before this
existed reads the same way (nothing in the table changed).
"""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from acc_entries import large_entry

import acc.backends.sqlite.cache as sqlite_cache
from acc.backends.sqlite import SQLiteBackend, SQLiteCache
from acc.core.codec import Codec

BODY = bytes(range(256)) * (8 * 1024)  # 2 MiB


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SQLiteCache]:
    cache = SQLiteCache(str(tmp_path / "parts.sqlite"))
    yield cache
    await cache.close()


@pytest.mark.parametrize("thread", ["loop", "worker"])
async def test_a_large_value_is_read_as_head_and_body(
    store: SQLiteCache, thread: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    if thread == "worker":  # every large value counts as too large for the loop thread
        monkeypatch.setattr(sqlite_cache, "_LOOP_READ_MAX", 0)
    codec = Codec()
    head, body = codec.encode_parts(large_entry(BODY), key="k")
    await store.write_parts("k", (head, body))
    parts = await store.read_parts("k", codec.head_size)
    assert parts is not None
    assert [len(part) for part in parts] == [len(head), len(body)]
    assert parts == (head, body)
    assert codec.decode_parts(parts, key="k").body is parts[1]


async def test_a_value_written_whole_is_cut_too(store: SQLiteCache) -> None:
    codec = Codec()
    data = codec.encode(large_entry(BODY), key="k")
    await store.write("k", data)
    parts = await store.read_parts("k", codec.head_size)
    assert parts is not None
    assert len(parts) == 2
    assert b"".join(parts) == data


async def test_small_values_and_text_come_back_whole(store: SQLiteCache, tmp_path: Path) -> None:
    await store.write("small", b"small value")
    assert await store.read_parts("small", lambda prefix: 3) == (b"small value",)
    await store.read("small")  # the table exists; now write a TEXT value behind its back
    with sqlite3.connect(tmp_path / "parts.sqlite") as raw:
        raw.execute(
            "INSERT INTO responses (key, value, expires_at) VALUES ('text', ?, NULL)",
            ("é" * (1024 * 1024),),
        )
    parts = await store.read_parts("text", lambda prefix: 3)
    assert parts == (("é" * (1024 * 1024)).encode(),)


async def test_an_expired_large_value_is_none(store: SQLiteCache) -> None:
    await store.write_parts("k", (b"head", BODY), expires_at=1.0)
    assert await store.read_parts("k", lambda prefix: 4) is None


async def test_a_large_hit_through_the_backend_shares_the_read_body(tmp_path: Path) -> None:
    backend = SQLiteBackend(str(tmp_path / "backend.sqlite"))
    try:
        await backend.write_entry("k", large_entry(BODY))
        found = await backend.read_entry("k")
        assert found == large_entry(BODY)
        assert found is not None
        assert found.body is not BODY
    finally:
        await backend.close()
