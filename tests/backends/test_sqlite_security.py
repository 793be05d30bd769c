"""Hostile and corrupt rows in a real SQLite file (issue 12, items 2 and 4), and the
permissions of the files a SQLiteBackend creates.

Rows are changed with the ``sqlite3`` module, as another program with access to the file
would; the backend is then used through ``CacheBackend.fetch``.
"""

from __future__ import annotations

import os
import random
import sqlite3
import stat
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from acc.backends.sqlite import SQLiteBackend
from acc.core import CachedResponse, CacheRequest

URL = "https://example.com/items?page=1"


@pytest.fixture
async def backend(tmp_path: Path) -> AsyncIterator[SQLiteBackend]:
    cache = SQLiteBackend(tmp_path / "cache.sqlite")
    yield cache
    await cache.close()


def _sender(body: bytes = b"fresh body") -> tuple[list[CacheRequest], object]:
    sent: list[CacheRequest] = []

    async def send(request: CacheRequest) -> CachedResponse:
        sent.append(request)
        return CachedResponse(
            200,
            "OK",
            request.url,
            "GET",
            headers=(("Content-Type", "text/plain"), ("ETag", '"v1"')),
            body=body,
        )

    return sent, send


def _set_value(path: Path, key: str, value: object) -> None:
    with sqlite3.connect(path) as db:
        changed = db.execute("UPDATE responses SET value = ? WHERE key = ?", (value, key))
        assert changed.rowcount == 1
    db.close()


def _row_exists(path: Path, key: str) -> bool:
    with sqlite3.connect(path) as db:
        found = db.execute("SELECT 1 FROM responses WHERE key = ?", (key,)).fetchone()
    db.close()
    return found is not None


@pytest.mark.parametrize(
    "value",
    [42, 10**15, 4.5, "ACC text, not a blob", "", b"not an entry"],
    ids=["integer", "huge-integer", "real", "text", "empty-text", "junk-blob"],
)
@pytest.mark.parametrize("path", ["loop-reader", "worker-thread"])
async def test_a_row_of_another_type_is_a_miss_deleted_and_counted(
    backend: SQLiteBackend, value: object, path: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Issue 12, item 2: such a row used to raise TypeError on every request for the URL.
    if path == "worker-thread":  # reads that the loop-thread reader cannot answer
        monkeypatch.setattr(type(backend.connection), "reader", lambda _self: None)
    sent, send = _sender()
    request = CacheRequest("GET", URL)
    stored = await backend.fetch(request, send)  # type: ignore[arg-type]
    assert stored.stored
    await backend.flush()  # the write behind the response has landed
    key = stored.cache_key
    assert key is not None
    _set_value(backend.db_path, key, value)
    again = await backend.fetch(request, send)  # type: ignore[arg-type]
    assert again.from_cache is False
    assert again.response.body == b"fresh body"
    assert backend.stats.errors == 1
    assert len(sent) == 2
    # The bad row is gone; the fresh response took its place and is served.
    assert (await backend.fetch(request, send)).from_cache is True  # type: ignore[arg-type]
    assert len(sent) == 2


async def test_a_row_of_another_type_is_skipped_by_maintenance(backend: SQLiteBackend) -> None:
    _sent, send = _sender()
    result = await backend.fetch(CacheRequest("GET", URL), send)  # type: ignore[arg-type]
    assert result.cache_key is not None
    await backend.flush()  # the write behind the response has landed
    _set_value(backend.db_path, result.cache_key, "text")
    assert [url async for url in backend.urls()] == []
    assert await backend.delete(urls=[URL]) == 1  # the unreadable row goes too
    assert not _row_exists(backend.db_path, result.cache_key)


@pytest.mark.parametrize("secret_key", [None, "s3cret"], ids=["unsigned", "signed"])
async def test_single_bit_flips_are_never_served(tmp_path: Path, secret_key: str | None) -> None:
    # Issue 12, item 4: 300 single-bit flips in unsigned entries used to serve changed
    # bodies, headers, URLs or statuses. Every flip must read as a miss and be deleted.
    path = tmp_path / "flips.sqlite"
    rng = random.Random(12)
    body = bytes(rng.randrange(256) for _ in range(300))
    async with SQLiteBackend(path, secret_key=secret_key) as backend:
        sent, send = _sender(body)
        request = CacheRequest("GET", URL)
        first = await backend.fetch(request, send)  # type: ignore[arg-type]
        await backend.flush()  # the write behind the response has landed
        key = first.cache_key
        assert key is not None
        for flip in range(300):
            original = await backend.responses.read(key)
            assert original is not None
            bit = rng.randrange(len(original) * 8)
            flipped = bytearray(original)
            flipped[bit // 8] ^= 1 << (bit % 8)
            await backend.responses.write(key, bytes(flipped))
            result = await backend.fetch(request, send)  # type: ignore[arg-type]
            assert result.from_cache is False, f"flip {flip} (bit {bit}) was served"
            assert result.response.body == body
            assert backend.stats.errors == flip + 1
            await backend.flush()
            # The flipped value was deleted and the fresh response stored in its place.
            fresh = await backend.read_entry(key)
            assert fresh is not None
            assert fresh.body == body
        assert len(sent) == 301


async def test_a_remembered_entry_is_not_served_once_its_row_changes(tmp_path: Path) -> None:
    # A hit remembers the entry it decoded with the bytes it came from (storage.memo),
    # and reuses it only while the row holds those same bytes: a row changed by another
    # program is checked again, and a row another cache rewrote is served as it now is.
    path = tmp_path / "memo.sqlite"
    request = CacheRequest("GET", URL)
    async with SQLiteBackend(path) as backend, SQLiteBackend(path) as other:
        sent, send = _sender(b"first body")
        await backend.fetch(request, send)  # type: ignore[arg-type]
        await backend.flush()
        for _ in range(2):  # decoded once, then remembered
            hit = await backend.fetch(request, send)  # type: ignore[arg-type]
            assert hit.from_cache is True
            assert hit.response.body == b"first body"
        assert len(backend._decoded) == 1
        key = hit.cache_key
        assert key is not None

        _other_sent, other_send = _sender(b"second body")
        await other.fetch(CacheRequest("GET", URL), other_send, force_refresh=True)  # type: ignore[arg-type]
        await other.flush()
        again = await backend.fetch(request, send)  # type: ignore[arg-type]
        assert again.from_cache is True
        assert again.response.body == b"second body"

        with sqlite3.connect(path) as db:
            (value,) = db.execute("SELECT value FROM responses WHERE key = ?", (key,)).fetchone()
        db.close()
        _set_value(path, key, value[:-1] + bytes([value[-1] ^ 1]))  # one bit of the body
        tampered = await backend.fetch(request, send)  # type: ignore[arg-type]
        assert tampered.from_cache is False
        assert tampered.response.body == b"first body"  # from the origin
        assert backend.stats.errors == 1
        assert len(sent) == 2


# -- cache files are owner-only ------------------------------------------------------------------


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX file modes")
async def test_the_files_and_folders_a_backend_creates_are_owner_only(tmp_path: Path) -> None:
    previous = os.umask(0o022)  # the usual umask: without care, files would be 0644
    try:
        path = tmp_path / "made" / "by-acc" / "cache.sqlite"
        async with SQLiteBackend(path) as backend:
            _sent, send = _sender()
            assert (await backend.fetch(CacheRequest("GET", URL), send)).stored  # type: ignore[arg-type]
            files = [path, path.with_name("cache.sqlite-wal"), path.with_name("cache.sqlite-shm")]
            for made in files:
                assert made.exists(), made
                assert stat.S_IMODE(made.stat().st_mode) == 0o600, made
            for folder in (path.parent, path.parent.parent):
                assert stat.S_IMODE(folder.stat().st_mode) == 0o700, folder
    finally:
        os.umask(previous)


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX file modes")
async def test_an_existing_file_keeps_its_mode(tmp_path: Path) -> None:
    path = tmp_path / "shared.sqlite"
    path.touch(mode=0o640)
    path.chmod(0o640)
    async with SQLiteBackend(path) as backend:
        _sent, send = _sender()
        await backend.fetch(CacheRequest("GET", URL), send)  # type: ignore[arg-type]
    assert stat.S_IMODE(path.stat().st_mode) == 0o640


async def test_the_store_returns_rows_of_other_types_as_their_text(
    backend: SQLiteBackend, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Never bytes(n) for an INTEGER n (n zero bytes: a huge allocation for a huge n).
    await backend.responses.write("k", b"placeholder")
    _set_value(backend.db_path, "k", 10**12)
    assert await backend.responses.read("k") == b"1000000000000"
    monkeypatch.setattr(type(backend.connection), "reader", lambda _self: None)
    assert await backend.responses.read("k") == b"1000000000000"
    assert await backend.responses.read_many(["k"]) == [b"1000000000000"]
    assert [value async for _key, value in backend.responses.items()] == [b"1000000000000"]
