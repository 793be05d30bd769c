"""Run mongoeco's MongoDB wire-protocol server until stdin closes.

Executed by a Python >= 3.13 interpreter that has ``mongoeco[wire]`` (the test env runs
an older Python, so the fixture in ``acc_services.mongo`` starts this script in its own
process)::

    python3.13 mongoeco_server.py [HOST [PORT]]

It serves an in-memory engine on HOST (default 127.0.0.1) at PORT (default: one the OS
picks), then
prints one line, ``READY <port>``, and flushes it. It stops when its standard input is
closed, so it never outlives the test run that started it, even if that run is killed.
This file must not import anything of acc or of the test suite.
"""

from __future__ import annotations

import asyncio
import importlib
import sys


async def _serve(host: str, port: int) -> None:
    # Imported by name: mongoeco is not installed where the test suite is type-checked.
    engines = importlib.import_module("mongoeco.engines.memory")
    wire = importlib.import_module("mongoeco.wire")

    engine = engines.MemoryEngine()
    async with wire.AsyncMongoEcoProxyServer(engine=engine, host=host, port=port) as server:
        print(f"READY {server.address.port}", flush=True)
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(None, sys.stdin.read)  # returns at end of input


def main() -> None:
    """Serve on the host (and port) given as arguments until stdin closes."""
    host = sys.argv[1] if len(sys.argv) > 1 else "127.0.0.1"
    port = int(sys.argv[2]) if len(sys.argv) > 2 else 0
    asyncio.run(_serve(host, port))


if __name__ == "__main__":
    main()
