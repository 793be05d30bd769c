"""``acc export`` and ``acc import``: files, batches and Ctrl-C around :mod:`acc.core.transfer`.

Rules this module keeps:

1. An export to a file is written to a temporary file beside it and renamed over it at
   the end (``os.replace``, atomic on one file system): interrupted or failed, it
   leaves the target as it was and no temporary file behind.
2. An import is applied in batches of ``batch_size`` records. A batch is written whole:
   Ctrl-C during a batch lets it finish, then stops; Ctrl-C while the next batch is being
   read drops what was read of it, unwritten. Either way, no batch is half-applied,
   and every alias lands in a later batch than (or the same batch as, after) the
   entry it points at, since entries come first in both formats.
3. Input is read by a daemon thread, so Ctrl-C is seen while the command waits for
   standard input, and an abandoned read never holds up the exit.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import threading
from collections.abc import AsyncIterator
from pathlib import Path
from typing import IO, Any

from acc.cli.runtime import Failure, Interrupts, atomic_target, progress
from acc.core import CacheBackend
from acc.core.expiration import NEVER_EXPIRE
from acc.core.transfer import (
    ImportCounts,
    apply_har_batch,
    apply_records,
    export_header,
    export_records,
    har_creator,
    har_entry,
    har_records,
    read_header,
)

__all__ = ["export_cache", "import_cache", "read_lines"]

_EOF = object()


async def export_cache(
    backend: CacheBackend,
    output: Path | None,
    fmt: str,
    include_expired: bool,
    interrupts: Interrupts,
) -> dict[str, Any]:
    """Write the export (rule 1); return the counts."""
    if output is None:
        return await _export(backend, sys.stdout, fmt, include_expired, interrupts)
    target = atomic_target(output)
    try:
        with target.open("w", encoding="utf-8", newline="\n") as stream:
            report = await _export(backend, stream, fmt, include_expired, interrupts)
        os.replace(target, output)
        return report
    finally:
        target.unlink(missing_ok=True)


async def _export(
    backend: CacheBackend, stream: IO[str], fmt: str, include_expired: bool, interrupts: Interrupts
) -> dict[str, Any]:
    entries = aliases = 0
    total = await backend.responses.size()
    with progress() as bar:
        task = bar.add_task("Exporting", total=total)
        if fmt == "jsonl":
            stream.write(json.dumps(export_header(backend)) + "\n")
            async for record in export_records(backend, include_expired=include_expired):
                interrupts.check()
                stream.write(json.dumps(record, ensure_ascii=False) + "\n")
                if record["type"] == "entry":
                    entries += 1
                    bar.advance(task)
                else:
                    aliases += 1
        else:
            stream.write('{"log": {"version": "1.2", "creator": ')
            stream.write(json.dumps(har_creator()))
            stream.write(', "pages": [], "entries": [\n')
            async for stored in backend.entries():
                interrupts.check()
                if stored.expired and not include_expired:
                    continue
                if entries:
                    stream.write(",\n")
                stream.write(json.dumps(har_entry(stored.key, stored.entry), ensure_ascii=False))
                entries += 1
                bar.advance(task)
            stream.write("\n]}}\n")
    stream.flush()
    return {"entries": entries, "aliases": aliases, "format": fmt}


_FULL_QUEUE_RETRY = 0.005
"""Seconds before the loop tries again to queue a line the full queue had no room for."""


def read_lines(stream: IO[str], loop: asyncio.AbstractEventLoop) -> asyncio.Queue[Any]:
    """Lines of ``stream``, read by a daemon thread into a bounded queue (rule 3).

    The queue yields each line, then an exception if reading failed, then ``_EOF``.
    """
    queue: asyncio.Queue[Any] = asyncio.Queue(maxsize=1000)

    def put(item: Any) -> bool:
        # No coroutine and no task: one made for Queue.put would be left un-awaited (and
        # warned about) whenever the loop closes before it runs, as on Ctrl-C or when
        # the command ends early. The loop's thread puts the item when there is room,
        # and looks again shortly while the queue is full (the reader is ahead).
        done = threading.Event()

        def schedule() -> None:
            try:
                queue.put_nowait(item)
            except asyncio.QueueFull:
                loop.call_later(_FULL_QUEUE_RETRY, schedule)
                return
            done.set()

        try:
            loop.call_soon_threadsafe(schedule)
        except RuntimeError:  # the loop is gone: the command ended
            return False
        while not done.wait(0.1):
            if loop.is_closed():
                return False
        return True

    def reader() -> None:
        try:
            for line in stream:
                if not put(line):
                    return
        except Exception as exc:
            put(exc)
        put(_EOF)

    threading.Thread(target=reader, name="acc-import-reader", daemon=True).start()
    return queue


async def _lines(queue: asyncio.Queue[Any]) -> AsyncIterator[tuple[int, str]]:
    number = 0
    while True:
        item = await queue.get()
        if item is _EOF:
            return
        if isinstance(item, Exception):
            raise Failure(f"cannot read the input: {item}", 1)
        number += 1
        yield number, item


def _open(source: str) -> IO[str]:
    if source == "-":
        return sys.stdin
    return open(source, encoding="utf-8")  # closed by import_cache


def _sniff(source: str, fmt: str | None) -> str:
    if fmt is not None:
        return fmt
    suffix = Path(source).suffix.lower()
    if suffix == ".har":
        return "har"
    if suffix in (".jsonl", ".ndjson") or source == "-":
        return "jsonl"
    with open(source, encoding="utf-8") as stream:
        first = stream.readline()
    try:
        head = json.loads(first)
    except ValueError:
        return "har"
    return "jsonl" if isinstance(head, dict) and head.get("format") == "acc-export" else "har"


async def import_cache(
    backend: CacheBackend,
    source: str,
    fmt: str | None,
    expire_after: float | None,
    batch_size: int,
    interrupts: Interrupts,
) -> dict[str, Any]:
    """Import ``source`` in batches (rule 2); return the counts."""
    fmt = _sniff(source, fmt)
    stream = _open(source)
    counts = ImportCounts()
    try:
        total = None
        if source != "-" and fmt == "jsonl":
            with open(source, encoding="utf-8") as sizing:  # noqa: ASYNC230  # a local file, counted once
                total = max(sum(1 for _ in sizing) - 1, 0)
        queue = read_lines(stream, asyncio.get_running_loop())
        with progress() as bar:
            task = bar.add_task("Importing", total=total)
            if fmt == "jsonl":
                await _import_jsonl(backend, queue, batch_size, interrupts, counts, bar, task)
            else:
                text = "".join([line async for _n, line in _lines(queue)])
                try:
                    document = json.loads(text)
                except ValueError as exc:
                    raise Failure(f"{source}: not JSON: {exc}", 2) from exc
                records = [
                    r
                    async for r in har_records(
                        backend,
                        document,
                        expire_after=NEVER_EXPIRE if expire_after is None else expire_after,
                    )
                ]
                bar.update(task, total=len(records))
                for start in range(0, len(records), batch_size):
                    interrupts.check()
                    batch = records[start : start + batch_size]
                    with interrupts.batch():
                        counts.add(await apply_har_batch(backend, batch))
                    bar.advance(task, len(batch))
    finally:
        if stream is not sys.stdin:
            stream.close()
    return {
        "entries": counts.entries,
        "aliases": counts.aliases,
        "skipped": counts.skipped,
        "skipped_reasons": counts.reasons,
        "format": fmt,
    }


async def _import_jsonl(
    backend: CacheBackend,
    queue: asyncio.Queue[Any],
    batch_size: int,
    interrupts: Interrupts,
    counts: ImportCounts,
    bar: Any,
    task: Any,
) -> None:
    batch: list[dict[str, Any]] = []
    header_seen = False
    async for number, line in _lines(queue):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except ValueError as exc:
            raise Failure(
                f"line {number}: not JSON ({exc}); the batches before it were imported", 2
            ) from exc
        if not isinstance(record, dict):
            raise Failure(f"line {number}: not a JSON object", 2)
        if not header_seen:
            try:
                read_header(record)
            except ValueError as exc:
                raise Failure(str(exc), 2) from exc
            header_seen = True
            continue
        batch.append(record)
        if len(batch) >= batch_size:
            await _apply(backend, batch, interrupts, counts, number)
            bar.advance(task, len(batch))
            batch = []
    if not header_seen:
        raise Failure("the input is empty: not an acc export", 2)
    if batch:
        await _apply(backend, batch, interrupts, counts, None)
        bar.advance(task, len(batch))


async def _apply(
    backend: CacheBackend,
    batch: list[dict[str, Any]],
    interrupts: Interrupts,
    counts: ImportCounts,
    line: int | None,
) -> None:
    interrupts.check()
    with interrupts.batch():
        try:
            counts.add(await apply_records(backend, batch))
        except ValueError as exc:
            where = f"the batch ending on line {line}" if line else "the last batch"
            raise Failure(f"{where}: {exc}; the batches before it were imported", 2) from exc
