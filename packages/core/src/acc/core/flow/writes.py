"""Write-behind: entries are stored after their response went back to the caller.

A miss costs the caller the network and nothing more: the flow hands the entry to a
:class:`WriteBehind` queue, one per cache, whose worker task writes it while the caller
goes on. Rules this module keeps:

1. Bounded. At most ``max_writes`` entries (the cache's ``write_behind`` setting) and
   :data:`MAX_QUEUED_BYTES` bytes of body wait at once; :meth:`WriteBehind.offer` refuses
   past that, and the caller writes inline (backpressure), so a store slower than the
   network never grows memory without end.
2. Read your writes. Until its write ended, a queued entry is found by
   :meth:`WriteBehind.find` under its key and its aliases (the cache consults it before
   storage), so a request of this process (a coalesced follower included) is served what
   was stored a moment ago. Other processes see it once it is written.
3. Nothing is raised, nothing is lost quietly. The write itself (the cache's ``write``
   callable) counts and logs its failures as an inline write does; the worker only
   reports what escapes it. Writes are made one at a time, in the order queued, so the
   newest entry of a key is the one stored, and the one served from the queue meanwhile;
   a write made inline (the queue full) first drops or waits for the queued ones of its
   key (:meth:`WriteBehind.discard`), so an older entry never lands after it.
4. No task outlives its work: the worker exists while there is something to write and
   ends when the queue is empty. :meth:`WriteBehind.flush` waits for everything queued;
   :meth:`WriteBehind.close` waits at most a bound, then cancels the worker and drops
   what is left (counted and logged). Cancelling a caller of :meth:`flush` never
   cancels the worker.
5. Entries are kept as :class:`~acc.core.CachedResponse` objects, not bytes: encoding is
   the worker's job too.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Awaitable, Callable, Iterable
from datetime import datetime

import attrs

from acc.core.models import CachedResponse, HeaderPairs

__all__ = ["MAX_QUEUED_BYTES", "QueuedWrite", "WriteBehind"]

logger = logging.getLogger("acc")

MAX_QUEUED_BYTES = 64 * 1024 * 1024
"""Bytes of body the queue holds at most; an entry that would go past it is written inline."""


@attrs.define(slots=True, eq=False)
class QueuedWrite:
    """One entry waiting to be written: the arguments of the write, and who to tell."""

    key: str
    entry: CachedResponse
    store_key: str
    """The key the entry is stored under (a variant key when the response has ``Vary``)."""
    names: tuple[str, ...]
    """The request headers the response varies on (empty when it does not)."""
    aliases: tuple[str, ...]
    request_headers: HeaderPairs
    keep_until: datetime | None
    on_written: Callable[[bool], None] | None = None
    """Called with whether the entry was written, once the write ended."""

    @property
    def size(self) -> int:
        """The bytes of body it holds."""
        return len(self.entry.body)


class WriteBehind:
    """The write-behind queue of one cache (see the module docstring).

    Args:
        write: Writes one queued entry and returns whether it was written; it counts and
            logs its own failures (it is the cache's inline write).
        max_bytes: Bytes of body the queue holds at most.
    """

    __slots__ = ("_bytes", "_queue", "_running", "_task", "_write", "max_bytes", "pending")

    def __init__(
        self,
        write: Callable[[QueuedWrite], Awaitable[bool]],
        *,
        max_bytes: int = MAX_QUEUED_BYTES,
    ) -> None:
        self._write = write
        self.max_bytes = max_bytes
        self._queue: deque[QueuedWrite] = deque()
        self.pending: dict[str, QueuedWrite] = {}
        """Every key, alias and variant key of a queued or running write -> its newest write.

        Empty when idle: the cache's read path tests it for truth before anything else,
        so an idle queue costs a read one attribute lookup.
        """
        self._bytes = 0
        self._task: asyncio.Task[None] | None = None
        self._running: QueuedWrite | None = None

    def __len__(self) -> int:
        """The writes queued, not yet started."""
        return len(self._queue)

    def offer(self, write: QueuedWrite, max_writes: int) -> bool:
        """Queue ``write`` unless ``max_writes`` wait already; ``False``: write it inline."""
        if len(self._queue) >= max_writes or self._bytes + write.size > self.max_bytes:
            return False
        self._queue.append(write)
        self._bytes += write.size
        found = self.pending
        found[write.key] = write
        found[write.store_key] = write
        for alias in write.aliases:
            found[alias] = write
        task = self._task
        loop = asyncio.get_running_loop()
        if task is None or task.done() or task.get_loop() is not loop:
            self._task = loop.create_task(self._drain())
        return True

    async def _drain(self) -> None:
        queue = self._queue
        while queue:
            write = queue.popleft()
            self._bytes -= write.size
            self._running = write
            try:
                written = await self._write(write)
                if write.on_written is not None:
                    write.on_written(written)
            except asyncio.CancelledError:
                self._forget(write)
                raise
            except Exception:  # the write counts its own failures; this is a bug's trace
                logger.exception("acc: a queued write of %s failed", write.key)
            finally:
                self._running = None
            self._forget(write)

    def _forget(self, write: QueuedWrite) -> None:
        found = self.pending
        for key in (write.key, write.store_key, *write.aliases):
            if found.get(key) is write:
                del found[key]

    async def discard(self, keys: Iterable[str]) -> None:
        """Drop the queued writes of ``keys``, and wait for one of them already running.

        Called before those keys are deleted (an invalidation), so no write queued
        earlier puts an entry back afterwards.
        """
        if not self.pending:
            return
        wanted = set(keys)
        doomed = {
            write
            for write in {*self.pending.values(), *self._queue, self._running}
            if write is not None  # queued, or running
            if write.key in wanted
            or write.store_key in wanted
            or not wanted.isdisjoint(write.aliases)
        }
        if not doomed:
            return
        running = False
        for write in doomed:
            if write in self._queue:
                self._queue.remove(write)
                self._bytes -= write.size
                if write.on_written is not None:
                    write.on_written(False)
            else:
                running = True
            self._forget(write)
        if running:
            await self.flush()

    async def flush(self) -> None:
        """Wait until every write queued so far (and queued meanwhile) has ended.

        Cancelling the caller does not cancel the writes. A worker left from an event
        loop that is gone is replaced by a drain in this one.
        """
        loop = asyncio.get_running_loop()
        while True:
            task = self._task
            if task is not None and not task.done() and task.get_loop() is loop:
                try:
                    await asyncio.shield(task)  # its running write included
                except asyncio.CancelledError:
                    if not task.cancelled():  # this caller was cancelled, not the worker
                        raise
                continue
            if self._queue:  # no worker, or one of a loop that is gone
                self._task = loop.create_task(self._drain())
                continue
            self.pending.clear()  # entries of a worker that died: nothing will end them
            return

    async def close(self, timeout: float) -> int:
        """Flush for at most ``timeout`` seconds, then cancel; the writes dropped."""
        try:
            await asyncio.wait_for(self.flush(), timeout)
        except asyncio.TimeoutError:
            pass
        finally:
            dropped = await self._stop()
        if dropped:
            logger.warning("acc: %d queued writes dropped: close() waited %gs", dropped, timeout)
        return dropped

    async def _stop(self) -> int:
        """Cancel the worker and drop what is queued; the writes dropped."""
        dropped = len(self._queue)
        task, self._task = self._task, None
        if task is not None and not task.done():
            dropped += 1
            task.cancel()
            if task.get_loop() is asyncio.get_running_loop():
                await asyncio.gather(task, return_exceptions=True)
        for write in self._queue:
            if write.on_written is not None:
                write.on_written(False)
        self._queue.clear()
        self.pending.clear()
        self._bytes = 0
        return dropped
