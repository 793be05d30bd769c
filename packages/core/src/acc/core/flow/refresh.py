"""Background refreshes for stale-while-revalidate (RFC 5861 §3).

A stale entry served at once is refreshed by a task the flow starts and an owner keeps:
the backend for :meth:`~acc.core.CacheBackend.fetch`, or a client binding's session,
which must close its refreshes before its connections. Rules kept here:

1. One refresh per cache key at a time: a second stale hit while one runs starts none.
   At most ``max_pending`` run at once; past that, the stale entry is served and no
   refresh starts (the next stale hit tries again), so a burst of stale hits never
   turns into an unbounded number of tasks.
2. A refresh never raises into anything: a failure is logged (the stale entry stays, and
   the next request tries again).
3. The tasks belong to the session: closing it waits for them a short while, then
   cancels what is left, so no task outlives the connector it uses.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

__all__ = ["BackgroundRefreshes"]

logger = logging.getLogger("acc")


class BackgroundRefreshes:
    """The refresh tasks of one session, at most one per key."""

    __slots__ = ("_tasks", "max_pending")

    def __init__(self, max_pending: int = 100) -> None:
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self.max_pending = max_pending

    @property
    def pending(self) -> tuple[asyncio.Task[None], ...]:
        """The refreshes still running."""
        return tuple(task for task in self._tasks.values() if not task.done())

    def start(self, key: str, refresh: Callable[[], Awaitable[None]]) -> asyncio.Task[None] | None:
        """Run ``refresh()`` in a task unless one for ``key`` is running (rule 1).

        Returns:
            The new task, or ``None`` when a refresh of ``key`` was already running or
            ``max_pending`` refreshes are.
        """
        current = self._tasks.get(key)
        if current is not None and not current.done():
            return None
        if len(self._tasks) >= self.max_pending:
            logger.debug("acc: %d refreshes running; not refreshing %s now", len(self._tasks), key)
            return None
        task = asyncio.get_running_loop().create_task(self._run(key, refresh))
        self._tasks[key] = task
        return task

    async def _run(self, key: str, refresh: Callable[[], Awaitable[None]]) -> None:
        try:
            await refresh()
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            logger.warning("acc: background refresh of %s failed: %r", key, exc)
        finally:
            if self._tasks.get(key) is asyncio.current_task():
                del self._tasks[key]

    async def close(self, timeout: float) -> None:
        """Wait up to ``timeout`` seconds for running refreshes, then cancel the rest."""
        pending = self.pending
        if not pending:
            return
        _done, late = await asyncio.wait(pending, timeout=timeout)
        for task in late:
            task.cancel()
        if late:
            await asyncio.gather(*late, return_exceptions=True)
        self._tasks.clear()
