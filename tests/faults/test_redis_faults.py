"""Redis faults, on a real redis-server this test owns (see ``conftest.py`` for the checks).

* stopped in the middle of a run, then restarted (with an append-only file, so what it
  acknowledged survives the restart);
* paused three ways: ``CLIENT PAUSE`` (commands wait), ``DEBUG SLEEP`` (the server is
  busy), ``SIGSTOP`` (the process is frozen; the kernel still accepts connections).

The backend's socket timeout is 30 s, so only the storage budget (0.25 s) keeps requests
from waiting on the paused server (issue 12: a request waits at most the budget plus
the origin's own time).
"""

from __future__ import annotations

import os
import signal
import socket
from collections.abc import Callable

import pytest
from acc_faults import BOUNDS, SLOW_STORAGE, Harness
from acc_services.redis import RedisServer

from acc.backends.redis import RedisBackend

PAUSE_SECONDS = 5  # longer than BUDGET + MARGIN: a request waiting on it fails the test

pytestmark = pytest.mark.slow  # servers stopped, paused and restarted


def command(server: RedisServer, *words: str) -> socket.socket:
    """Send one command over a raw socket; the caller reads (or not) and closes it."""
    assert server.port is not None
    conn = socket.create_connection(("127.0.0.1", server.port), timeout=30)
    parts = [f"*{len(words)}\r\n"] + [f"${len(w)}\r\n{w}\r\n" for w in words]
    conn.sendall("".join(parts).encode())
    return conn


def backend(server: RedisServer, *, lock: bool = False) -> RedisBackend:
    return RedisBackend(
        "faults", url=server.url, socket_timeout=SLOW_STORAGE, retries=1, lock=lock, **BOUNDS
    )


async def test_stopped_mid_run_and_restarted(
    harness: Callable[..., Harness], redis_server_factory: Callable[..., RedisServer]
) -> None:
    server = redis_server_factory(extra=("--appendonly", "yes", "--appendfsync", "always"))
    run = harness(backend(server))
    await run.warm(range(10))
    before = dict(run.acknowledged)
    records = await run.during(server.stop, 10)
    assert any(not r.stored for r in records)  # the outage was felt...
    stats = run.backend.stats
    assert stats.errors > 0
    server.start()
    await run.until_recovered()
    await run.verify(before)  # what was acknowledged before the stop survived it
    await run.verify()  # and everything acknowledged since
    assert stats.breaker_open is False


@pytest.mark.parametrize(
    ("how", "lock"),
    [("client-pause", False), ("debug-sleep", False), ("sigstop", False), ("client-pause", True)],
    ids=["client-pause", "debug-sleep", "sigstop", "client-pause-with-fetch-lock"],
)
async def test_paused(
    harness: Callable[..., Harness],
    redis_server_factory: Callable[..., RedisServer],
    how: str,
    lock: bool,
) -> None:
    server = redis_server_factory(extra=("--enable-debug-command", "yes"))
    run = harness(backend(server, lock=lock))
    await run.warm(range(10))
    held: list[socket.socket] = []

    def pause() -> None:
        if how == "client-pause":
            conn = command(server, "CLIENT", "PAUSE", str(PAUSE_SECONDS * 1000), "ALL")
            assert conn.recv(64).startswith(b"+OK")
            held.append(conn)
        elif how == "debug-sleep":
            held.append(command(server, "DEBUG", "SLEEP", str(PAUSE_SECONDS)))
        else:
            assert server.process is not None
            os.kill(server.process.pid, signal.SIGSTOP)

    try:
        records = await run.during(pause, 10)
        # Stored ones cannot be read while paused: they come from the network too.
        hits = [(await run.fetch(n)).from_cache for n in range(3)]
        assert hits == [False, False, False]
    finally:
        if how == "sigstop" and server.process is not None:
            os.kill(server.process.pid, signal.SIGCONT)
        for conn in held:
            conn.close()
    stats = run.backend.stats
    assert stats.storage_timeouts >= 1  # the pause was met, and cut short by the budget
    assert stats.breaker_trips >= 1  # then storage was skipped, not waited on again
    assert any(not r.stored for r in records)
    await run.until_recovered()
    await run.verify()  # nothing acknowledged was lost or corrupted by the pause
