"""Measure the peak RSS one large response costs a process: run as a script, prints JSON.

    python rss_probe.py MODE SIZE [--chunked] [--redis URL] [--folder DIR]

The origin runs in a child process (its memory is not counted). The probe opens its
client (and cache), makes one small request to warm everything up, then records its
RSS, resets the kernel's high-water mark (``/proc/self/clear_refs``) and fetches SIZE
bytes; the figure is the high-water mark above that start, in bytes. Modes:

* ``plain-read`` / ``plain-stream``: aiohttp alone, ``read()`` or ``iter_chunked``;
* ``acc-read-<backend>``: through ``CachedSession`` with ``max_body_size=None`` (the
  body is stored), then ``read()``; the probe checks the entry was written;
* ``acc-stream-<backend>``: through ``CachedSession`` with the default
  ``max_body_size``, ``iter_chunked``; the probe checks nothing was stored.

``<backend>`` is ``memory``, ``sqlite`` or ``redis``.
"""

from __future__ import annotations

import asyncio
import json
import multiprocessing
import sys
import tempfile
from typing import Any

_BLOCK = bytes(range(256)) * 256  # 64 KiB


def _serve(size: int, chunked: bool, ready: Any) -> None:
    from aiohttp import web

    async def big(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse()
        if chunked:
            response.enable_chunked_encoding()
        else:
            response.content_length = size
        await response.prepare(request)
        sent = 0
        while sent < size:
            block = _BLOCK[: size - sent]
            await response.write(block)
            sent += len(block)
        await response.write_eof()
        return response

    async def main() -> None:
        app = web.Application()
        app.router.add_get("/big", big)
        runner = web.AppRunner(app)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        ready.send(runner.addresses[0][1])
        await asyncio.Event().wait()

    asyncio.run(main())


def _status(field: str) -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(field):
                return int(line.split()[1]) * 1024
    raise RuntimeError(f"no {field} in /proc/self/status")


def _reset_peak() -> None:
    """Set the kernel's high-water mark of this process's RSS (VmHWM) to its RSS now."""
    with open("/proc/self/clear_refs", "w") as clear:
        clear.write("5")


def _backend(kind: str, folder: str, redis_url: str | None, **options: Any) -> Any:
    if kind == "memory":
        from acc.core import CacheBackend

        return CacheBackend(**options)
    if kind == "sqlite":
        from acc.backends.sqlite import SQLiteBackend

        return SQLiteBackend(f"{folder}/cache.sqlite", **options)
    from acc.backends.redis import RedisBackend

    return RedisBackend("rss-probe", url=redis_url, **options)


async def probe(
    mode: str, size: int, port: int, folder: str, redis_url: str | None
) -> dict[str, Any]:
    import aiohttp

    url = f"http://127.0.0.1:{port}/big"
    backend = None
    if mode.startswith("acc-"):
        from acc.sessions.aiohttp import CachedSession

        _acc, how, kind = mode.split("-")
        options: dict[str, Any] = {"storage_budget": None}  # a slow machine must not skip it
        if how == "read":
            options["max_body_size"] = None
        backend = _backend(kind, folder, redis_url, **options)
        await backend.clear()
        session: Any = CachedSession(cache=backend)
    else:
        how = mode.split("-")[1]
        session = aiohttp.ClientSession()
    async with session:
        async with session.get(url.replace("/big", "/missing")) as warm:
            await warm.read()
        start = _status("VmRSS:")
        _reset_peak()
        received = 0
        async with session.get(url) as response:
            if how == "read":
                received = len(await response.read())
            else:
                async for chunk in response.content.iter_chunked(65536):
                    received += len(chunk)
        peak = _status("VmHWM:")
        result: dict[str, Any] = {"mode": mode, "received": received, "peak": peak - start}
        if backend is not None:
            result["writes"] = backend.stats.writes
            result["too_large"] = backend.stats.too_large
            await backend.clear()
    return result


def main() -> None:
    mode, size = sys.argv[1], int(sys.argv[2])
    chunked = "--chunked" in sys.argv
    redis_url = sys.argv[sys.argv.index("--redis") + 1] if "--redis" in sys.argv else None
    receiver, sender = multiprocessing.Pipe(duplex=False)
    origin = multiprocessing.get_context("spawn").Process(
        target=_serve, args=(size, chunked, sender), daemon=True
    )
    origin.start()
    try:
        if not receiver.poll(60):
            raise RuntimeError("the origin did not start")
        port = receiver.recv()
        with tempfile.TemporaryDirectory() as folder:
            result = asyncio.run(probe(mode, size, port, folder, redis_url))
    finally:
        origin.kill()
        origin.join(10)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
