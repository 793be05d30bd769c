"""Write-behind through the client bindings: closing a session or client writes the queue.

A real SQLite file and the real origin: the entry a session's response left queued is in
the file once the session closed, for a backend it closes (``autoclose=True``) and for
one it leaves open (``autoclose=False``), so a second backend on the same file hits it.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from acc.backends.sqlite import SQLiteBackend
from acc.sessions.aiohttp import CachedSession
from acc.sessions.httpx import CachedClient


async def _get_aiohttp(backend: SQLiteBackend, url: str) -> bool:
    async with CachedSession(cache=backend) as session:
        response = await session.get(url)
        await response.read()
        return bool(response.from_cache)


async def _get_httpx(backend: SQLiteBackend, url: str) -> bool:
    async with CachedClient(cache=backend) as client:
        response = await client.get(url)
        return bool(response.extensions["acc"]["from_cache"])


@pytest.mark.parametrize("get", [_get_aiohttp, _get_httpx], ids=["aiohttp", "httpx"])
@pytest.mark.parametrize("autoclose", [True, False], ids=["autoclose", "left-open"])
async def test_closing_the_client_writes_what_its_responses_queued(
    origin, tmp_path: Path, get, autoclose: bool
) -> None:
    path = tmp_path / "shared.sqlite"
    url = origin("/json")
    first = SQLiteBackend(path, autoclose=autoclose)
    assert await get(first, url) is False
    assert first.stats.writes == 1  # written by the close, not later
    second = SQLiteBackend(path)
    assert await get(second, url) is True
    assert origin.hits["/json"] == 1
    await first.close()
