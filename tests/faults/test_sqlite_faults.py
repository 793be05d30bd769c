"""SQLite faults (see ``conftest.py`` and ``acc_faults`` for what every request must meet).

* locked by another process: a writer's lock taken in the middle of a run (``BEGIN
  IMMEDIATE``: writes wait, reads go on in WAL mode, so hits go on), and an exclusive
  lock on a rollback-journal database held before the session opens it (nothing works
  until it is released);
* the file system read-only under a session (a tmpfs remounted read-only: Linux refuses
  that while a file on it is open for writing, so the session starts on it read-only),
  then made writable again;
* the database deleted under a running session;
* the disk full (a small tmpfs).

The busy timeout is 30 s, so only the storage budget (0.25 s) keeps requests from
waiting on the lock. The tmpfs tests need to mount one (root, in most sandboxes and CI
containers); where that is refused they skip, saying so.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from acc_faults import BOUNDS, HANG, SLOW_STORAGE, Harness

from acc.backends.sqlite import SQLiteBackend

LOCKER = textwrap.dedent(
    """
    import sqlite3, sys
    connection = sqlite3.connect(sys.argv[1], isolation_level=None, timeout=30)
    if sys.argv[2] == "exclusive":
        connection.execute("BEGIN EXCLUSIVE")
        connection.execute("CREATE TABLE IF NOT EXISTS other_program (x)")
    else:
        connection.execute("BEGIN IMMEDIATE")
    print("LOCKED", flush=True)
    sys.stdin.read()  # held until the test closes our input
    connection.execute("COMMIT")
    connection.close()
    """
)


def backend(path: Path) -> SQLiteBackend:
    return SQLiteBackend(path, busy_timeout=SLOW_STORAGE, **BOUNDS)


class Locker:
    """Another process holding a lock on the database until :meth:`release`."""

    def __init__(self, path: Path, kind: str) -> None:
        self.path = path
        self.kind = kind
        self.process: asyncio.subprocess.Process | None = None

    async def take(self) -> None:
        self.process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-c",
            LOCKER,
            str(self.path),
            self.kind,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
        )
        assert self.process.stdout is not None
        line = await asyncio.wait_for(self.process.stdout.readline(), HANG)
        assert line.strip() == b"LOCKED"

    async def release(self) -> None:
        if self.process is not None and self.process.stdin is not None:
            self.process.stdin.close()
            assert await asyncio.wait_for(self.process.wait(), HANG) == 0


async def test_locked_by_another_process_in_the_middle_of_a_run(
    harness: Callable[..., Harness], tmp_path: Path
) -> None:
    path = tmp_path / "cache.sqlite"
    run = harness(backend(path))
    await run.warm(range(10))
    locker = Locker(path, "immediate")
    try:
        await run.during(locker.take, 10)
        stats = run.backend.stats
        assert stats.storage_timeouts >= 1  # writes met the lock; the budget cut them
        assert run.backend.write_guard.state != "closed"  # and then were skipped
        # In WAL mode the writer's lock does not stop readers: hits go on.
        for n in range(10):
            assert (await run.fetch(n)).from_cache
    finally:
        await locker.release()
    await run.until_recovered()
    await run.verify()


async def test_locked_exclusively_before_the_session_opens_it(
    harness: Callable[..., Harness], tmp_path: Path
) -> None:
    path = tmp_path / "cache.sqlite"
    locker = Locker(path, "exclusive")  # another program's database, rollback journal
    await locker.take()
    try:
        run = harness(backend(path))
        records = await run.load(range(30))
        assert not any(r.stored or r.from_cache for r in records)
        assert run.backend.stats.storage_timeouts >= 1
    finally:
        await locker.release()
    await run.until_recovered()
    await run.warm(range(30, 35))
    await run.verify()


@pytest.fixture
def tmpfs(tmp_path: Path) -> Iterator[Callable[[int], Path]]:
    """``tmpfs(size_bytes)``: a tmpfs mounted for the test (skips where mounting is refused)."""
    mounted: list[Path] = []

    def mount(size: int) -> Path:
        point = tmp_path / f"tmpfs{len(mounted)}"
        point.mkdir()
        done = subprocess.run(
            ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(point)],
            capture_output=True,
            text=True,
            check=False,
        )
        if done.returncode != 0:
            pytest.skip(f"cannot mount a tmpfs here ({done.stderr.strip() or done.returncode})")
        mounted.append(point)
        return point

    yield mount
    for point in mounted:
        subprocess.run(["umount", "-l", str(point)], capture_output=True, check=False)


def remount(point: Path, mode: str) -> None:
    subprocess.run(["mount", "-o", f"remount,{mode}", str(point)], check=True)


async def test_read_only_then_writable(
    harness: Callable[..., Harness], tmpfs: Callable[[int], Path]
) -> None:
    point = tmpfs(64 * 1024 * 1024)
    path = point / "cache.sqlite"
    first = harness(backend(path))
    await first.warm(range(10))
    await first.backend.close()
    remount(point, "ro")
    try:
        run = harness(backend(path))
        records = await run.load(range(0, 40))
        assert not any(r.stored for r in records)  # nothing can be written
        assert run.backend.stats.errors > 0
    finally:
        remount(point, "rw")
    await run.until_recovered()
    await run.verify(first.acknowledged)  # what was stored before is all there
    await run.verify()


async def test_deleted_under_a_running_session(
    harness: Callable[..., Harness], tmp_path: Path
) -> None:
    path = tmp_path / "cache.sqlite"
    run = harness(backend(path))
    await run.warm(range(10))

    def delete() -> None:
        for suffix in ("", "-wal", "-shm"):
            Path(f"{path}{suffix}").unlink(missing_ok=True)

    await run.during(delete, 10)
    # The session's connections still hold the deleted file: it keeps working on it.
    await run.until_recovered()
    await run.verify()
    # A new session on the path starts an empty cache, and works.
    fresh = harness(backend(path))
    await fresh.warm(range(100, 105))


async def test_disk_full(harness: Callable[..., Harness], tmpfs: Callable[[int], Path]) -> None:
    point = tmpfs(8 * 1024 * 1024)
    run = harness(backend(point / "cache.sqlite"))
    await run.warm(range(10))
    filler = point / "filler"

    def fill() -> None:
        stat = os.statvfs(point)
        free = stat.f_bavail * stat.f_frsize
        with filler.open("wb") as out:
            out.write(b"\0" * max(0, free - 16 * 1024))

    records = await run.during(fill, 10, after=100)
    assert any(not r.stored for r in records)  # the disk was full
    assert run.backend.stats.errors > 0
    filler.unlink()
    await run.until_recovered()
    await run.verify()
