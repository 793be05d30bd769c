"""DynamoDB faults, on a moto server process this test owns (see ``acc_faults``).

* stopped in the middle of a run and restarted on the same port (moto keeps everything
  in memory, the table included, which the test creates again as it would still exist
  on DynamoDB: the cache must recover);
* paused (``SIGSTOP``), then resumed: what it acknowledged before must be whole.

The client's timeouts are 30 s, so only the storage budget keeps requests from waiting.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Iterator

import pytest
from acc_faults import BOUNDS, SLOW_STORAGE, Harness
from acc_services.dynamodb import REGION, dynamodb_client
from acc_services.redis import free_port

from acc.backends.dynamodb import DynamoDBBackend
from acc.backends.dynamodb.table import prepare_table

TABLE = "acc-faults"

pytestmark = pytest.mark.slow  # servers stopped, paused and restarted


class MotoServer:
    """``moto_server`` in a process of its own, on a fixed port."""

    def __init__(self, port: int) -> None:
        binary = shutil.which("moto_server")
        if binary is None:
            if os.environ.get("ACC_REQUIRE_SERVICES") == "1":
                pytest.fail("ACC_REQUIRE_SERVICES=1 but there is no moto_server", pytrace=False)
            pytest.skip("no moto_server on PATH: pip install 'moto[server,dynamodb]'")
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self.process = subprocess.Popen(
            [binary, "-H", "127.0.0.1", "-p", str(port)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                return
            except OSError:
                time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"moto_server did not start on port {port}")

    def stop(self) -> None:
        if self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGCONT)
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)


@pytest.fixture
def moto(aws_environment: None) -> Iterator[Callable[[int], MotoServer]]:
    started: list[MotoServer] = []

    def start(port: int = 0) -> MotoServer:
        server = MotoServer(port or free_port())
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


def backend(server: MotoServer) -> DynamoDBBackend:
    return DynamoDBBackend(
        "faults",
        table_name=TABLE,
        region=REGION,
        endpoint_url=server.url,
        create_table=True,
        connect_timeout=SLOW_STORAGE,
        read_timeout=SLOW_STORAGE,
        **BOUNDS,
    )


async def test_stopped_mid_run_and_restarted(
    harness: Callable[..., Harness], moto: Callable[[int], MotoServer]
) -> None:
    server = moto(0)
    run = harness(backend(server))
    await run.warm(range(10))
    records = await run.during(server.stop, 10)
    assert any(not r.stored for r in records)
    assert run.backend.stats.errors > 0
    server = moto(server.port)
    url = f"dynamodb://{TABLE}?region={REGION}&endpoint_url={server.url}"
    async with dynamodb_client(url) as client:
        await prepare_table(client, TABLE, create=True, namespace_index=None, where="the test")
    run.acknowledged.clear()  # moto kept them in memory only
    await run.until_recovered()
    await run.warm(range(100, 105))
    await run.verify()


async def test_paused(harness: Callable[..., Harness], moto: Callable[[int], MotoServer]) -> None:
    server = moto(0)
    run = harness(backend(server))
    await run.warm(range(10))
    try:
        records = await run.during(lambda: os.kill(server.process.pid, signal.SIGSTOP), 10)
        assert any(not r.stored for r in records)
        assert run.backend.stats.storage_timeouts >= 1
    finally:
        os.kill(server.process.pid, signal.SIGCONT)
    await run.until_recovered()
    await run.verify()
