"""Ctrl-C: an export leaves no half-written file, an import no half-applied batch.

A batch is ``--batch-size`` records of the input, written whole (entries, then the
aliases among them). SIGINT is sent for real: to a subprocess running ``acc``, and, for
the case of a signal arriving in the middle of a batch, to this process while
``import_cache`` writes one.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from acc.cli.runtime import Interrupted, Interrupts
from acc.cli.transfer import import_cache
from acc.core import CacheBackend, CachedResponse, MemoryCache
from acc.core.transfer import entry_to_json

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="SIGINT to a subprocess is POSIX")


def _entry(n: int, size: int = 16) -> CachedResponse:
    return CachedResponse(
        status=200,
        reason="OK",
        url=f"http://127.0.0.1/item/{n}",
        method="GET",
        body=bytes(size),
    )


def _export_lines(count: int) -> list[str]:
    lines = [json.dumps({"format": "acc-export", "version": 1})]
    backend = CacheBackend()
    for n in range(count):
        key = backend.url_key(f"http://127.0.0.1/item/{n}")
        lines.append(json.dumps({"type": "entry", "key": key, "entry": entry_to_json(_entry(n))}))
    return lines


def _rows(db: Path) -> int:
    if not db.exists():
        return 0
    with sqlite3.connect(db) as connection:
        try:
            return int(connection.execute("SELECT COUNT(*) FROM responses").fetchone()[0])
        except sqlite3.OperationalError:  # the table is not created yet
            return 0


def _acc(*args: str, **kwargs) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "acc.cli.main", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        **kwargs,
    )


def _wait_for(predicate, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("timed out")
        time.sleep(0.005)


def test_ctrl_c_while_the_next_batch_is_read_drops_it_unwritten(tmp_path: Path) -> None:
    db = tmp_path / "target.sqlite"
    process = _acc(
        "--cache",
        f"sqlite:///{db.as_posix()}",
        "import",
        "-",
        "--batch-size",
        "100",
        stdin=subprocess.PIPE,
    )
    assert process.stdin is not None
    lines = _export_lines(150)
    process.stdin.write("\n".join(lines) + "\n")  # one batch and a half; the input stays open
    process.stdin.flush()
    _wait_for(lambda: _rows(db) >= 100)
    process.send_signal(signal.SIGINT)
    _out, err = process.communicate(timeout=30)
    assert process.returncode == 130, err
    assert err.strip() == "acc: interrupted"
    assert _rows(db) == 100  # the first batch whole; nothing of the second


def test_ctrl_c_during_an_export_leaves_no_file(tmp_path: Path) -> None:
    db = tmp_path / "source.sqlite"
    url = f"sqlite:///{db.as_posix()}"

    async def fill() -> None:
        async with CacheBackend.from_url(url) as backend:
            for n in range(8000):
                await backend.write_entry(f"key-{n}", _entry(n, 4096))

    asyncio.run(fill())
    target = tmp_path / "export.jsonl"
    process = _acc("--cache", url, "export", "-o", str(target))
    temporary = [tmp_path / f".export.jsonl.acc-{process.pid}.tmp"]
    _wait_for(lambda: temporary[0].exists() and temporary[0].stat().st_size > 0)
    process.send_signal(signal.SIGINT)
    _out, err = process.communicate(timeout=30)
    assert process.returncode == 130, err
    assert not target.exists()
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")] == []


class InterruptingStore(MemoryCache):
    """A store that presses Ctrl-C (SIGINT to this process) on its 50th write."""

    def __init__(self) -> None:
        super().__init__()
        self.writes = 0

    async def write(self, key: str, value: bytes, *, expires_at: float | None = None) -> None:
        self.writes += 1
        if self.writes == 50:
            os.kill(os.getpid(), signal.SIGINT)
            await asyncio.sleep(0.05)  # the loop sees the signal now, mid-batch
        await super().write(key, value, expires_at=expires_at)


async def test_ctrl_c_in_the_middle_of_a_batch_lets_the_batch_finish(tmp_path: Path) -> None:
    source = tmp_path / "in.jsonl"
    source.write_text("\n".join(_export_lines(250)) + "\n")
    store = InterruptingStore()
    backend = CacheBackend(responses=store)
    interrupts = Interrupts()
    try:
        with pytest.raises(Interrupted):
            await import_cache(backend, str(source), None, None, 100, interrupts)
    finally:
        interrupts.close()
    assert interrupts.requested
    assert store.writes == 100
    assert await store.size() == 100  # the interrupted batch whole, and no other
