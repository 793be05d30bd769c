"""Automatic pipelining: the commands many tasks issue in one loop iteration go together.

:class:`AutoPipeline` is what ioredis calls auto-pipelining, for redis-py's asyncio client.
A store hands it one command at a time (``GET``, ``SET ... PXAT``, ``UNLINK``, ``EXISTS``)
and awaits the reply; the rules it keeps:

* **No added wait.** The first command of a loop iteration starts the flusher task,
  which runs once the callbacks already ready in that iteration have run: the commands
  those issue join the batch, and the batch is sent in the next iteration. No timer
  is ever involved, so a lone command (a sequential request) goes out at once.
* **One batch in flight.** While a batch awaits its replies, new commands queue and
  form the next batch (so the batches grow with the load, as Nagle's algorithm does).
  A batch holds at most :data:`MAX_BATCH` commands; the rest wait for the next one.
* **One round trip.** Consecutive ``GET``s merge into one ``MGET`` (on a cluster, one
  per hash slot); every command of a batch is sent in one pipeline. Order is kept, so
  a read issued after a write of the same key sees what was written.
* **Errors stay per caller.** A batch that fails as a whole (the server is gone, a
  timeout) fails each of its callers with the error its command alone would have
  raised (:class:`BackendUnavailable` or :class:`BackendError`, naming the caller's
  operation); an error reply to one command goes to that command's caller only.
* **Cancellation stays per caller.** A caller cancelled while it waits gives up its
  reply, never the batch: the others get theirs. A command whose caller gave up before
  its batch left is not sent.
* **Closing drains.** :meth:`AutoPipeline.close` waits for the commands already
  accepted; the store refuses new ones before that (it is closed).

On a single server the flusher holds one connection of the client's pool for itself,
and sends each batch with the connection's own ``pack_commands`` /
``send_packed_command`` / ``read_response``, under the connection's ``retry`` policy:
no pool checkout per command. On Python 3.11+ one ``asyncio.timeout`` of
``socket_timeout`` seconds bounds a whole batch, in place of the connection's timers
per send and per read (a timeout drops the connection, as redis-py's would). On a
cluster it sends each batch as a cluster pipeline.
"""

from __future__ import annotations

import asyncio
import inspect
import sys
from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Any

from redis import exceptions as redis_errors

if TYPE_CHECKING:
    from acc.backends.redis.connection import RedisConnection

__all__ = ["MAX_BATCH", "AutoPipeline"]

_OWN_TIMERS = object()  # no batch timer: the connection's own socket_timeout applies
_BATCH_TIMER = sys.version_info >= (3, 11)  # asyncio.timeout (without a task of its own)

MAX_BATCH = 500
"""Commands per batch at most: big enough to amortise, small enough to never block Redis."""


class _Call:
    """One command a caller waits for."""

    __slots__ = ("command", "future", "operation")

    def __init__(
        self, operation: str, command: tuple[Any, ...], future: asyncio.Future[Any]
    ) -> None:
        self.operation = operation
        self.command = command
        self.future = future


class AutoPipeline:
    """Batches the commands of one :class:`RedisConnection`, per loop iteration.

    Args:
        connection: Whose client sends the batches and whose error rules apply.
    """

    def __init__(self, connection: RedisConnection) -> None:
        self.connection = connection
        self._pending: list[_Call] = []
        self._flusher: asyncio.Task[None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._wire: Any = None  # the connection the flusher holds (a single server)
        self._timeout: Any = _OWN_TIMERS  # the batch timer's seconds, if it replaced redis-py's
        self.batches = 0
        """Batches sent so far (each one round trip, or one per node of a cluster)."""

    def call(self, operation: str, *command: Any) -> asyncio.Future[Any]:
        """Queue ``command``; the future gets its reply (already parsed by the driver).

        ``GET`` replies are ``bytes`` or ``None``; other commands' replies are the raw
        protocol replies (``b"OK"``, an ``int``).
        """
        loop = asyncio.get_running_loop()
        if loop is not self._loop:  # first use, or a new event loop: start afresh
            self._loop = loop
            self._pending = []
            self._flusher = None
            self._wire = None
            self._timeout = _OWN_TIMERS
        future: asyncio.Future[Any] = loop.create_future()
        self._pending.append(_Call(operation, command, future))
        if self._flusher is None:
            self._flusher = loop.create_task(self._flush())
        return future

    async def close(self) -> None:
        """Wait for the commands already queued, then give back the held connection."""
        flusher = self._flusher
        if flusher is not None and flusher.get_loop() is _running_loop():
            await asyncio.wait([flusher])
        wire, self._wire = self._wire, None
        if wire is not None and self._timeout is not _OWN_TIMERS:
            wire.socket_timeout, self._timeout = self._timeout, _OWN_TIMERS
        if wire is not None and self._loop is _running_loop():
            pool = getattr(self.connection.client, "connection_pool", None)
            if pool is not None:
                try:
                    await pool.release(wire)
                except Exception:  # a broken connection is dropped anyway
                    await wire.disconnect(nowait=True)

    # -- the flusher ------------------------------------------------------------------------

    async def _flush(self) -> None:
        """Send the queued commands, a batch at a time, until none is left."""
        try:
            while self._pending:
                batch = self._pending[:MAX_BATCH]
                del self._pending[:MAX_BATCH]
                # A caller that gave up before its command left (cancelled, or out of its
                # storage budget while the server was slow) is not sent at all.
                calls = [call for call in batch if not call.future.done()]
                if calls:
                    await self._send(calls)
        except BaseException as exc:  # cancelled (the loop is closing): no caller may hang
            left, self._pending = self._pending, []
            for call in left:
                _fail(call, self.connection.translate(call.operation, exc))
            raise
        finally:
            self._flusher = None

    async def _send(self, calls: list[_Call]) -> None:
        """Send one batch and hand each caller its reply; no caller is left waiting."""
        self.batches += 1
        try:
            plan = _plan(calls, self.connection.by_slot)
            commands = [command for command, _callers in plan]
            if self.connection.is_cluster:
                replies = await self.connection.replies("pipeline", commands)
            else:
                replies = await self._exchange(commands)
            for (command, callers), reply in zip(plan, replies, strict=True):
                if isinstance(reply, BaseException):
                    for group in callers:
                        for call in group:
                            _fail(call, self.connection.translate(call.operation, reply))
                elif command[0] == "MGET":  # one value per key, for each caller of that key
                    for group, value in zip(callers, reply, strict=True):
                        for call in group:
                            _succeed(call, value)
                else:
                    for call in callers[0]:
                        _succeed(call, reply)
        except BaseException as exc:  # the batch as a whole failed: so does each command
            for call in calls:
                _fail(call, self.connection.translate(call.operation, exc))
            if isinstance(exc, asyncio.CancelledError):
                raise

    async def _exchange(self, commands: Sequence[tuple[Any, ...]]) -> list[Any]:
        """Send ``commands`` on the held connection at once; read a reply for each.

        A connection error (a restarted server) is retried by the connection's own
        policy, the whole batch again (every command acc batches is idempotent).
        """
        pool = self.connection.client.connection_pool  # type: ignore[union-attr]
        wire = self._wire
        if wire is not None:
            return await self._exchange_on(wire, commands, self._timeout)
        wire = await _checkout(pool)
        # The connection is kept for the next batch, unless it is the pool's only one
        # (a client of the user's with max_connections=1): other commands need it too.
        if getattr(pool, "max_connections", 2) <= 1:
            try:
                return await self._exchange_on(wire, commands, _OWN_TIMERS)
            finally:
                await pool.release(wire)
        self._wire = wire
        if _BATCH_TIMER:
            # One timer for a whole batch rather than redis-py's two, one per send and
            # one per read: on Python 3.11 its send timer is also a task of its own and
            # a turn of the loop more. The connection gets its own back when released.
            self._timeout, wire.socket_timeout = wire.socket_timeout, None
        return await self._exchange_on(wire, commands, self._timeout)

    @staticmethod
    async def _exchange_on(
        wire: Any, commands: Sequence[tuple[Any, ...]], seconds: Any
    ) -> list[Any]:
        """The exchange itself; ``seconds`` bounds it all (or the connection's own timers)."""
        packed = wire.pack_commands(commands)

        async def exchange() -> list[Any]:
            await wire.send_packed_command(packed)
            replies: list[Any] = []
            for _ in commands:
                try:
                    replies.append(await wire.read_response())
                except redis_errors.ResponseError as exc:  # the rest are still to read
                    replies.append(exc)
            return replies

        async def attempt() -> list[Any]:
            if seconds is _OWN_TIMERS or seconds is None:
                return await exchange()
            try:
                async with asyncio.timeout(seconds):  # type: ignore[attr-defined]
                    return await exchange()
            except TimeoutError:  # cancelled mid-way, the connection dropped itself
                raise redis_errors.TimeoutError(f"no reply within {seconds:g}s") from None

        async def failed(_error: BaseException) -> None:
            await wire.disconnect()

        result: list[Any] = await wire.retry.call_with_retry(attempt, failed)
        return result


_Plan = list[tuple[tuple[Any, ...], list[list[_Call]]]]


def _plan(calls: list[_Call], by_slot: Callable[[Iterable[bytes]], list[list[bytes]]]) -> _Plan:
    """The commands to send for ``calls``, each with the callers of its reply.

    Runs of ``GET`` become ``MGET``s (grouped by hash slot on a cluster), with the
    callers of each key (a key asked for twice is sent once); every other command is
    sent as it is, in the callers' order.
    """
    plan: _Plan = []
    run: dict[bytes, list[_Call]] = {}

    def close_run() -> None:
        if len(run) == 1:
            ((key, callers),) = run.items()
            plan.append((("GET", key), [callers]))
        elif run:
            for group in by_slot(run):
                plan.append((("MGET", *group), [run[key] for key in group]))
        run.clear()

    for call in calls:
        if call.command[0] == "GET":
            run.setdefault(call.command[1], []).append(call)
            continue
        close_run()
        plan.append((call.command, [[call]]))
    close_run()
    return plan


async def _checkout(pool: Any) -> Any:
    """A connection of ``pool`` to hold (redis-py before 5.3 wants a command name)."""
    wanted = inspect.signature(pool.get_connection).parameters.get("command_name")
    if wanted is not None and wanted.default is inspect.Parameter.empty:
        return await pool.get_connection("MGET")
    return await pool.get_connection()


def _succeed(call: _Call, reply: Any) -> None:
    if not call.future.done():  # a caller cancelled meanwhile gave up its reply
        call.future.set_result(reply)


def _fail(call: _Call, error: BaseException) -> None:
    if not call.future.done():
        call.future.set_exception(error)


def _running_loop() -> asyncio.AbstractEventLoop | None:
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None
