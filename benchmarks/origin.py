"""The benchmark origin: an aiohttp server in its own process, counting what it serves.

It runs in a separate process so that serving misses never shares the event loop (or
the GIL) with the client being measured. Workloads ask it, outside the timed part, how
many requests it has served, and a hit workload fails if that number moved.

Routes: ``/json/{n}`` (a 1 KB JSON body, one per ``n`` so there are many URLs),
``/api/<any path>?<any query>`` (the same 1 KB JSON, naming the path and query: the
scale workload's realistic URLs, whatever host they name, see ``benchmarks/scale.py``),
``/big/{n}?size=`` (``size`` bytes, 5 MB by default) and ``/__served`` (the count; not
itself counted).
"""

from __future__ import annotations

import asyncio
import json
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

from aiohttp import web

__all__ = ["JSON_PAD", "Origin", "origin_served"]

JSON_PAD = "x" * 960  # with the rest of the document, about 1 KB of JSON
_BIG_DEFAULT = 5 * 1024 * 1024


def _app(counter: list[int]) -> web.Application:
    async def json_route(request: web.Request) -> web.Response:
        counter[0] += 1
        body = json.dumps({"n": request.match_info["n"], "pad": JSON_PAD})
        return web.Response(text=body, content_type="application/json")

    async def api_route(request: web.Request) -> web.Response:
        counter[0] += 1
        body = json.dumps({"n": request.path_qs, "pad": JSON_PAD})
        return web.Response(text=body, content_type="application/json")

    big_bodies: dict[int, bytes] = {}

    async def big_route(request: web.Request) -> web.Response:
        counter[0] += 1
        size = int(request.query.get("size", _BIG_DEFAULT))
        if size not in big_bodies:
            big_bodies[size] = bytes(range(256)) * (size // 256) + b"\x00" * (size % 256)
        return web.Response(body=big_bodies[size], content_type="application/octet-stream")

    async def served(_request: web.Request) -> web.Response:
        return web.json_response({"served": counter[0]})

    app = web.Application()
    app.router.add_get("/json/{n}", json_route)
    app.router.add_get("/big/{n}", big_route)
    app.router.add_get("/__served", served)
    app.router.add_get("/api/{tail:.*}", api_route)
    return app


async def _serve() -> None:
    """The origin process: bind a free loopback port, print it, serve until killed."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    runner = web.AppRunner(_app([0]), access_log=None)
    await runner.setup()
    await web.SockSite(runner, sock).start()
    print(sock.getsockname()[1], flush=True)
    await asyncio.Event().wait()


class Origin:
    """Start and stop the origin process: ``with Origin() as origin: origin.url``."""

    def __init__(self) -> None:
        self.url = ""
        self._process: subprocess.Popen[str] | None = None

    def __enter__(self) -> Origin:
        self._process = subprocess.Popen(
            [sys.executable, "-m", "benchmarks.origin"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            cwd=Path(__file__).resolve().parent.parent,
        )
        assert self._process.stdout is not None
        port = self._process.stdout.readline().strip()  # "" if the process died
        if not port.isdigit():
            self._process.kill()
            _out, err = self._process.communicate(timeout=10)
            raise RuntimeError(f"the benchmark origin did not start:\n{err}")
        self.url = f"http://127.0.0.1:{port}"
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self._process is not None:
            self._process.terminate()
            self._process.communicate(timeout=10)
            self._process = None


async def origin_served(session: Any, base_url: str) -> int:
    """How many counted requests the origin has served (asked with a plain session)."""
    async with session.get(f"{base_url}/__served") as response:
        data = await response.json()
    return int(data["served"])


if __name__ == "__main__":
    asyncio.run(_serve())
