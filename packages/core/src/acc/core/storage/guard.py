"""Bounded waits on storage: the per-request budget and the circuit breaker.

The cache is an optimisation, so a slow or stuck store must never hold a request for
long. :class:`StorageGuard` is what the façade puts around every storage operation of a
request.

Rules this module keeps:

1. A request waits on storage for at most its :class:`Budget` in all: the seconds it
   spends in storage operations are counted, an operation still running when the budget
   is spent is cancelled, and :class:`StorageTimeout` is raised instead. An operation
   with nothing left is not started (:class:`BudgetSpent`): it is no failure of storage.
   (The façade then treats a read as a miss and skips a write, so the request goes on
   to the network.)
2. The circuit breaker counts consecutive failures (errors and timeouts alike). After
   ``threshold`` of them it opens: storage is skipped, without waiting, for ``cooldown``
   seconds by the cache's clock. Then one operation is let through as a probe (the
   breaker is half-open, every other one is still skipped): its success closes the
   breaker, its failure opens it for another cool-down. A probe that ends neither way
   (its request was cancelled) lets the next operation probe.
3. Any success resets the count of consecutive failures.
4. It knows no HTTP, no codec and no flow: it times awaitables and keeps the breaker's
   state; the façade counts in ``stats`` and logs.
"""

from __future__ import annotations

import asyncio
import math
import sys
import time
import weakref
from collections.abc import Awaitable, Callable, Coroutine, Generator
from typing import Any, Final, TypeVar

from acc.core.errors import BackendUnavailable

__all__ = [
    "Budget",
    "BudgetSpent",
    "StorageGuard",
    "StorageTimeout",
]

_T = TypeVar("_T")

CLOSED, OPEN, HALF_OPEN = "closed", "open", "half-open"


class StorageTimeout(BackendUnavailable):
    """A storage operation did not finish within what was left of the request's budget."""


class BudgetSpent(StorageTimeout):
    """A storage operation was not started: the request's budget was already spent."""


class Budget:
    """The seconds of storage waiting one request has left (rule 1).

    Args:
        seconds: The whole budget; ``None`` for no bound.
    """

    __slots__ = ("left",)

    def __init__(self, seconds: float | None) -> None:
        self.left = seconds

    def __repr__(self) -> str:
        return f"Budget(left={self.left!r})"


UNBOUNDED = Budget(None)
"""The budget of operations that are never timed (in-process stores, maintenance)."""


_RESOLUTION: Final = time.get_clock_info("monotonic").resolution


class _Wait:
    """One timed wait of a task: its deadline, and whether the watchdog cancelled it."""

    __slots__ = ("deadline", "expired", "task")

    def __init__(self, task: asyncio.Task[Any], deadline: float) -> None:
        self.task = task
        self.deadline = deadline
        self.expired = False


class _Watchdog:
    """One timer per event loop for every timed storage wait on it (rule 1).

    ``asyncio.timeout`` schedules a timer per wait and cancels it when the wait ends,
    so a hit on a remote store paid a timer-heap push and a cancelled handle (some 7 %
    of a sequential Redis hit). Here a wait is an entry in a dict (added, then popped)
    and the loop holds at most one timer, armed at the earliest deadline it knows of:
    when it fires, the waits past their deadline are cancelled (each as
    ``asyncio.timeout`` would: the waiting task is cancelled, and the wait turns the
    cancellation into :class:`StorageTimeout`) and the timer is armed again at the
    earliest deadline left. Waits that ended are simply gone by then; with the same
    budget for every request, deadlines only grow, so a busy loop re-arms about once a
    budget's length.
    """

    __slots__ = ("_at", "_handle", "_loop", "_waits")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._waits: dict[_Wait, None] = {}
        self._handle: asyncio.TimerHandle | None = None
        self._at = math.inf

    def watch(self, wait: _Wait) -> None:
        self._waits[wait] = None
        if wait.deadline < self._at:
            if self._handle is not None:
                self._handle.cancel()
            self._arm(wait.deadline)

    def unwatch(self, wait: _Wait) -> None:
        self._waits.pop(wait, None)

    def _arm(self, at: float) -> None:
        self._at = at
        self._handle = self._loop.call_at(at, self._fire)

    def _fire(self) -> None:
        self._handle, self._at = None, math.inf
        now = self._loop.time() + _RESOLUTION  # the loop runs timers this early too
        earliest = math.inf
        for wait in list(self._waits):
            if wait.deadline <= now:
                del self._waits[wait]
                wait.expired = True
                wait.task.cancel()
            elif wait.deadline < earliest:
                earliest = wait.deadline
        if earliest < math.inf:
            self._arm(earliest)


_WATCHDOGS: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _Watchdog] = (
    weakref.WeakKeyDictionary()
)


def _watchdog(loop: asyncio.AbstractEventLoop) -> _Watchdog:
    dog = _WATCHDOGS.get(loop)
    if dog is None:
        dog = _WATCHDOGS[loop] = _Watchdog(loop)
    return dog


if sys.version_info >= (3, 11):

    async def _within(operation: Awaitable[_T], seconds: float) -> _T:
        loop = asyncio.get_running_loop()
        task = asyncio.current_task(loop)
        if task is None:  # pragma: no cover - awaited outside a task: no one to cancel
            return await operation
        cancelling = task.cancelling()
        wait = _Wait(task, loop.time() + seconds)
        dog = _watchdog(loop)
        dog.watch(wait)
        try:
            return await operation
        except asyncio.CancelledError:
            # The watchdog's cancellation, and no other one: a timeout (as with
            # asyncio.timeout, a cancellation from outside as well wins and goes on).
            if wait.expired and task.uncancel() <= cancelling:
                wait.expired = False
                raise StorageTimeout(f"no answer within {seconds:.3g}s") from None
            wait.expired = False
            raise
        finally:
            dog.unwatch(wait)
            if wait.expired:  # cancelled, but the operation finished all the same
                task.uncancel()

else:  # pragma: no cover - Python 3.10

    async def _within(operation: Awaitable[_T], seconds: float) -> _T:
        try:
            return await asyncio.wait_for(operation, seconds)
        except asyncio.TimeoutError:
            raise StorageTimeout(f"no answer within {seconds:.3g}s") from None


class StorageGuard:
    """The budget's timer and the circuit breaker of one cache's storage.

    Args:
        threshold: Consecutive failures that open the breaker; ``None`` never opens it.
            (The cache's defaults are in :mod:`acc.core.settings`.)
        cooldown: Seconds, by ``clock``, storage is skipped once the breaker is open.
        clock: Returns the current time in seconds (the cache's clock), for cool-downs.
        on_change: Called with the old and the new state (``"closed"``, ``"open"``,
            ``"half-open"``) whenever it changes.
    """

    __slots__ = (
        "_on_change",
        "_probing",
        "clock",
        "cooldown",
        "failures",
        "opened_at",
        "state",
        "threshold",
    )

    def __init__(
        self,
        *,
        threshold: int | None = None,
        cooldown: float = 10.0,
        clock: Callable[[], float],
        on_change: Callable[[str, str], None] | None = None,
    ) -> None:
        self.threshold = threshold
        self.cooldown = cooldown
        self.clock = clock
        self._on_change = on_change
        self.state = CLOSED
        self.failures = 0
        """Consecutive failures so far."""
        self.opened_at = 0.0
        self._probing = False

    def _set(self, state: str) -> None:
        old = self.state
        if state != old:
            self.state = state
            if self._on_change is not None:
                self._on_change(old, state)

    # -- the breaker -----------------------------------------------------------------------

    def allow(self) -> bool:
        """Whether an operation may use storage now (rule 2); claims the probe if so."""
        if self.state == CLOSED:
            return True
        if self._probing:
            return False
        if self.state == OPEN and self.clock() - self.opened_at < self.cooldown:
            return False
        self._probing = True
        self._set(HALF_OPEN)
        return True

    def succeeded(self) -> None:
        """An operation let through finished without error (rules 2 and 3)."""
        self.failures = 0
        if self.state != CLOSED:
            self._probing = False
            self._set(CLOSED)

    def failed(self) -> None:
        """An operation let through failed or ran out of budget (rule 2)."""
        self.failures += 1
        if self.state != CLOSED:
            self._probing = False
            self.opened_at = self.clock()
            self._set(OPEN)
        elif self.threshold is not None and self.failures >= self.threshold:
            self.opened_at = self.clock()
            self._set(OPEN)

    def abandoned(self) -> None:
        """An operation let through ended neither way (it was cancelled from outside)."""
        self._probing = False

    # -- the budget ------------------------------------------------------------------------

    async def timed(
        self, operation: Awaitable[_T], budget: Budget, *, isolated: bool = False
    ) -> _T:
        """Await ``operation`` within what is left of ``budget``, and charge the wait to it.

        By default the operation runs in the caller's task and is cancelled when the
        budget runs out; a coroutine is first run until it must wait, and one that
        finishes without waiting (a point read on SQLite's loop-thread connection, say)
        is neither timed nor charged, so the hit path pays no timer. With ``isolated``
        (a store whose driver may not end promptly when cancelled), it runs in a task of
        its own, which is cancelled and left behind when the budget runs out: the caller
        stops waiting then, whatever the operation does.

        Raises:
            BudgetSpent: Nothing was left: the operation was not started.
            StorageTimeout: The operation ran out of budget (it was cancelled).
        """
        left = budget.left
        if left is None:
            return await operation
        if left <= 0:
            if asyncio.iscoroutine(operation):
                operation.close()  # never started: no "never awaited" warning
            raise BudgetSpent("the request's storage budget is spent")
        if not isolated and asyncio.iscoroutine(operation):
            try:
                first = operation.send(None)  # run it until it must wait
            except StopIteration as done:
                return done.value  # type: ignore[no-any-return]
            operation = _Continue(operation, first)
        loop = asyncio.get_running_loop()
        started = loop.time()
        try:
            if isolated:
                return await _isolated(operation, left)
            return await _within(operation, left)
        finally:
            budget.left = max(0.0, left - (loop.time() - started))


_LEFT_BEHIND: set[asyncio.Future[Any]] = set()
"""Operations a request stopped waiting for, kept referenced until they end."""


def _left_behind(task: asyncio.Future[Any]) -> None:
    _LEFT_BEHIND.discard(task)
    if not task.cancelled():
        task.exception()  # retrieved: no "exception was never retrieved" at exit


async def _isolated(operation: Awaitable[_T], seconds: float) -> _T:
    """Run ``operation`` in a task of its own; stop waiting for it after ``seconds``."""
    task = asyncio.ensure_future(operation)
    try:
        done, _pending = await asyncio.wait((task,), timeout=seconds)
    except asyncio.CancelledError:
        _leave(task)
        raise
    if not done:
        _leave(task)
        raise StorageTimeout(f"no answer within {seconds:.3g}s")
    return task.result()


def _leave(task: asyncio.Future[Any]) -> None:
    task.cancel()
    _LEFT_BEHIND.add(task)
    task.add_done_callback(_left_behind)


class _Continue:
    """The rest of a coroutine that was run until its first wait, as an awaitable.

    Awaiting it hands the task what the coroutine was waiting for, then drives the
    coroutine on, passing in whatever the task sends or throws (a cancellation).
    """

    __slots__ = ("_coroutine", "_first")

    def __init__(self, coroutine: Coroutine[Any, Any, Any], first: Any) -> None:
        self._coroutine = coroutine
        self._first = first

    def __await__(self) -> Generator[Any, Any, Any]:
        coroutine, waiting = self._coroutine, self._first
        while True:
            try:
                sent = yield waiting
            except BaseException as exc:
                try:
                    waiting = coroutine.throw(exc)
                except StopIteration as done:
                    return done.value
            else:
                try:
                    waiting = coroutine.send(sent)
                except StopIteration as done:
                    return done.value
