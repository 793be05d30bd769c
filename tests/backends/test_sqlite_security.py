"""Hostile and corrupt rows in a real SQLite file (issue 12, items 2 and 4), and the
permissions of the files a SQLiteBackend creates.

Rows are changed with the ``sqlite3`` module, as another program with access to the file
would; the backend is then used through ``CacheBackend.fetch``.
"""

from __future__ import annotations

import random
import sqlite3
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
async def test_a_row_of_another_type_is_a_miss_deleted_and_counted(
    backend: SQLiteBackend, value: object
) -> None:
    # Issue 12, item 2: such a row used to raise TypeError on every request for the URL.
    sent, send = _sender()
    request = CacheRequest("GET", URL)
    stored = await backend.fetch(request, send)  # type: ignore[arg-type]
    assert stored.stored
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
    _set_value(backend.db_path, result.cache_key, "text")
    assert [url async for url in backend.urls()] == []
    assert await backend.delete(urls=[URL]) == 1  # the unreadable row goes too
    assert not _row_exists(backend.db_path, result.cache_key)


@pytest.mark.parametrize("secret_key", [None, "s3cret"], ids=["unsigned", "signed"])
async def test_single_bit_flips_are_never_served(
    tmp_path: Path, secret_key: str | None
) -> None:
    # Issue 12, item 4: 300 single-bit flips in unsigned entries used to serve changed
    # bodies, headers, URLs or statuses. Every flip must read as a miss and be deleted.
    path = tmp_path / "flips.sqlite"
    rng = random.Random(12)
    body = bytes(rng.randrange(256) for _ in range(300))
    async with SQLiteBackend(path, secret_key=secret_key) as backend:
        sent, send = _sender(body)
        request = CacheRequest("GET", URL)
        first = await backend.fetch(request, send)  # type: ignore[arg-type]
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
            # The flipped value was deleted and the fresh response stored in its place.
            fresh = await backend.read_entry(key)
            assert fresh is not None and fresh.body == body
        assert len(sent) == 301
