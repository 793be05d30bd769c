"""Request coalescing: one network request per key at a time, in one process.

When many tasks miss the same key at once, the first becomes the leader and fetches;
the others wait for it and then read what it stored. Only cacheable requests take part:
an uncacheable request never waits behind another.

Waiters are asyncio futures bound to the running loop. A process may run several event
loops over its life (tests, ``asyncio.run`` called twice), so a future left from another
loop is never awaited: the newcomer becomes leader in its own loop instead.
"""

from __future__ import annotations

import asyncio

__all__ = ["SingleFlight"]


class SingleFlight:
    """A registry of in-flight fetches, keyed by cache key."""

    __slots__ = ("_inflight", "completions")

    def __init__(self) -> None:
        self._inflight: dict[str, asyncio.Future[None] | asyncio.AbstractEventLoop] = {}
        # Fetches finished so far, any key. A caller that reads it before its lookup
        # and finds it unchanged on becoming leader knows no leader finished (and so
        # stored) meanwhile: it need not read the cache again.
        self.completions = 0

    def __len__(self) -> int:
        return len(self._inflight)

    def join(self, key: str) -> asyncio.Future[None] | None:
        """Register interest in ``key``.

        Returns:
            ``None`` if the caller is now the leader and must call :meth:`done` when
            finished; otherwise a future to await, done when the leader is.
        """
        loop = asyncio.get_running_loop()
        current = self._inflight.get(key)
        if current is loop:  # a leader of this loop, nobody waiting yet: the first follower
            waiter: asyncio.Future[None] = loop.create_future()
            self._inflight[key] = waiter
            return waiter
        if (
            isinstance(current, asyncio.Future)
            and not current.done()
            and current.get_loop() is loop
        ):
            return current
        # The leader: its loop stands for it until a follower needs a future to await
        # (most fetches have none, and a future costs more than the rest of this).
        self._inflight[key] = loop
        return None

    def done(self, key: str) -> None:
        """Release the waiters of ``key``; called once by its leader, success or not."""
        self.completions += 1
        future = self._inflight.pop(key, None)
        if isinstance(future, asyncio.Future) and not future.done():
            future.set_result(None)
