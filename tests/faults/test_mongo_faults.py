"""MongoDB faults, on a mongoeco wire server this test owns (see ``acc_faults``).

* stopped in the middle of a run and restarted on the same port (the server keeps its
  data in memory, so what it held is gone: the cache must recover, and what it
  acknowledged since must be whole);
* paused (``SIGSTOP``: connections are accepted, nothing answers), then resumed: what it
  acknowledged before the pause must be whole.

PyMongo's timeouts are 30 s, so only the storage budget keeps requests from waiting.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from acc_faults import BOUNDS, SLOW_STORAGE, Harness
from acc_services.mongo import MongoecoServer, ServiceUnavailable, prepare_mongoeco

from acc.backends.mongo import MongoDBBackend

TIMEOUT_MS = int(SLOW_STORAGE * 1000)

pytestmark = pytest.mark.slow  # servers stopped, paused and restarted


@pytest.fixture
def mongo_server(tmp_path: Path) -> Iterator[Callable[[int], MongoecoServer]]:
    """``start(port=0)``: a mongoeco server of this test's own, stopped afterwards."""
    started: list[MongoecoServer] = []

    def start(port: int = 0) -> MongoecoServer:
        try:
            server = MongoecoServer(prepare_mongoeco(), tmp_path / "mongoeco.log", port)
        except (ServiceUnavailable, OSError, subprocess.SubprocessError) as exc:
            if os.environ.get("ACC_REQUIRE_SERVICES") == "1":
                pytest.fail(f"ACC_REQUIRE_SERVICES=1 but: {exc}", pytrace=False)
            pytest.skip(f"no mongoeco server: {exc}")
        started.append(server)
        return server

    yield start
    for server in started:
        with contextlib.suppress(ProcessLookupError):
            os.kill(server.process.pid, signal.SIGCONT)
        server.stop()


def backend(url: str) -> MongoDBBackend:
    options = {
        "serverSelectionTimeoutMS": TIMEOUT_MS,
        "socketTimeoutMS": TIMEOUT_MS,
        "connectTimeoutMS": TIMEOUT_MS,
    }
    return MongoDBBackend("faults", url=url, client_options=options, **BOUNDS)


async def test_stopped_mid_run_and_restarted(
    harness: Callable[..., Harness], mongo_server: Callable[[int], MongoecoServer]
) -> None:
    server = mongo_server(0)
    run = harness(backend(server.url))
    await run.warm(range(10))
    records = await run.during(server.stop, 10)
    assert any(not r.stored for r in records)
    assert run.backend.stats.errors > 0
    mongo_server(server.port)  # in memory: it comes back empty
    run.acknowledged.clear()
    await run.until_recovered()
    await run.warm(range(100, 105))
    await run.verify()


async def test_paused(
    harness: Callable[..., Harness], mongo_server: Callable[[int], MongoecoServer]
) -> None:
    server = mongo_server(0)
    run = harness(backend(server.url))
    await run.warm(range(10))
    try:
        records = await run.during(lambda: os.kill(server.process.pid, signal.SIGSTOP), 10)
        assert any(not r.stored for r in records)
        assert run.backend.stats.storage_timeouts >= 1
    finally:
        os.kill(server.process.pid, signal.SIGCONT)
    await run.until_recovered()
    await run.verify()
