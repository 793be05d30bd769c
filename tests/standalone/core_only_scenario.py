"""acc-core + acc-backend-sqlite alone is a cache: run inside a venv that has nothing else.

``tests/standalone/test_core_only.py`` builds a virtual environment with only those two
packages (and their declared dependencies), then runs this script with it. The script
starts an origin over the standard library's ``http.server`` on 127.0.0.1 and drives
``CacheBackend.fetch`` with a ``send`` over ``urllib``: miss, hit, expiry, per-URL expiry,
revalidation through ``send``, stats, coalescing. It also runs the "any client" page's
standard-library example as written. It prints ``core-only: ok`` when every check held.
"""

from __future__ import annotations

import asyncio
import importlib.util
import re
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections import Counter
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

for client in ("aiohttp", "httpx"):
    assert importlib.util.find_spec(client) is None, f"{client} must not be installed here"

from acc.backends.sqlite import SQLiteBackend  # noqa: E402
from acc.core import CachedResponse, CacheRequest  # noqa: E402

HITS: Counter[str] = Counter()
SENT: list[CacheRequest] = []


class Handler(BaseHTTPRequestHandler):
    """``/slow`` answers after a pause; every path has the ETag ``"v1"`` and honours it."""

    def do_GET(self) -> None:
        HITS[self.path] += 1
        if self.path.startswith("/slow"):
            time.sleep(0.5)
        if self.headers.get("If-None-Match") == '"v1"':
            self.send_response(304)
            self.send_header("ETag", '"v1"')
            self.end_headers()
            return
        body = f'{{"path": "{self.path}", "n": {HITS[self.path]}}}'.encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("ETag", '"v1"')
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        """Keep the test's output quiet."""


def _blocking_send(request: CacheRequest) -> CachedResponse:
    SENT.append(request)
    http_request = urllib.request.Request(
        request.url, method=request.method, headers=dict(request.headers)
    )
    try:
        with urllib.request.urlopen(http_request, timeout=60) as answer:
            status, headers, body = answer.status, answer.headers, answer.read()
    except urllib.error.HTTPError as error:
        status, headers, body = error.code, error.headers, error.read()
    pairs = tuple(headers.items())
    return CachedResponse(status, "", request.url, request.method, pairs, body=body)


async def send(request: CacheRequest) -> CachedResponse:
    return await asyncio.to_thread(_blocking_send, request)


class Clock:
    def __init__(self) -> None:
        self.now = datetime.now(timezone.utc)

    def __call__(self) -> datetime:
        return self.now


async def scenario(base: str, folder: Path) -> None:
    clock = Clock()
    backend = SQLiteBackend(
        str(folder / "cache.sqlite"),
        expire_after=60,
        urls_expire_after={"*/short/*": 5},
        clock=clock,
    )
    async with backend:
        item = CacheRequest("GET", f"{base}/items/1")
        first = await backend.fetch(item, send)
        second = await backend.fetch(item, send)
        assert (first.from_cache, first.stored, second.from_cache) == (False, True, True)
        assert second.response.body == first.response.body
        assert HITS["/items/1"] == 1

        # Expiry: 61 s later the entry is stale; it has an ETag, so send revalidates it.
        clock.now += timedelta(seconds=61)
        revalidated = await backend.fetch(item, send)
        assert dict(SENT[-1].headers)["If-None-Match"] == '"v1"'
        assert (revalidated.from_cache, revalidated.revalidated) == (True, True)
        assert revalidated.response.body == first.response.body
        assert HITS["/items/1"] == 2

        # urls_expire_after: 5 s for /short/, so 6 s later it goes back to the origin.
        short = CacheRequest("GET", f"{base}/short/1")
        await backend.fetch(short, send)
        clock.now += timedelta(seconds=6)
        again = await backend.fetch(short, send)
        assert again.revalidated
        assert HITS["/short/1"] == 2
        assert (await backend.fetch(item, send)).from_cache  # still fresh after the 304

        # expire_after=0 for one request: not stored.
        never = await backend.fetch(CacheRequest("GET", f"{base}/never"), send, expire_after=0)
        assert never.stored is False
        assert await backend.has_url(f"{base}/never") is False

        # Twenty concurrent identical fetches: one send.
        slow = CacheRequest("GET", f"{base}/slow/1")
        results = await asyncio.gather(*(backend.fetch(slow, send) for _ in range(20)))
        assert HITS["/slow/1"] == 1, HITS
        assert sum(r.from_cache for r in results) == 19

        stats = backend.stats
        # misses: items, short, never, slow; writes: items and short twice (each 304 rewrites), slow
        assert (stats.misses, stats.revalidations, stats.writes) == (4, 2, 5), stats
        assert stats.not_stored == 1, stats
        assert stats.hits == 2 + 1 + 19 + 1, stats


async def docs_example(text: str, page: str, url: str) -> None:
    """Run the page's first ``python`` block (the standard-library example) as written."""
    block = re.search(r"```python\n(.*?)```", text, re.S)
    assert block is not None, f"no python block in {page}"
    namespace: dict[str, Any] = {"__name__": "any_client_example"}
    exec(compile(block.group(1), page, "exec"), namespace)
    await namespace["main"](url)


def main() -> None:
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        with tempfile.TemporaryDirectory() as folder:
            asyncio.run(scenario(base, Path(folder)))
        page = Path(sys.argv[1])
        asyncio.run(docs_example(page.read_text(encoding="utf-8"), str(page), f"{base}/items/docs"))
    finally:
        server.shutdown()
    print("core-only: ok")


if __name__ == "__main__":
    main()
