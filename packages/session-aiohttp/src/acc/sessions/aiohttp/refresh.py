"""Background refreshes for stale-while-revalidate (RFC 5861 §3).

A stale entry served at once is refreshed by a task the session owns. Rules kept here:

1. One refresh per cache key at a time: a second stale hit while one runs starts none.
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

    __slots__ = ("_tasks",)

    def __init__(self) -> None:
        self._tasks: dict[str, asyncio.Task[None]] = {}

    @property
    def pending(self) -> tuple[asyncio.Task[None], ...]:
        """The refreshes still running."""
        return tuple(task for task in self._tasks.values() if not task.done())

    def start(self, key: str, refresh: Callable[[], Awaitable[None]]) -> asyncio.Task[None] | None:
        """Run ``refresh()`` in a task unless one for ``key`` is running (rule 1).

        Returns:
            The new task, or ``None`` when a refresh of ``key`` was already running.
        """
        current = self._tasks.get(key)
        if current is not None and not current.done():
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
