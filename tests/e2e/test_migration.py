"""Scripts written for aiohttp-client-cache, ported with docs/migration.md's edits only.

Each script below is written the way aiohttp-client-cache 0.15's users write them (its
names, its arguments, its habits: ``datetime.utcnow()``, session-level maintenance, one
``CacheBackend()`` for several sessions, ``session.expire_after = ...``). The test ports
it by applying the rows of the page's "Search and replace" table, read from the page
itself, and nothing else; then it runs the port against the local origin (and the real
Redis and DynamoDB servers of ``acc_services``). A script that needs an edit the page
does not list fails here, and so does a row of the page that stops working.

The scripts take their environment as arguments of ``main`` instead of hard-coding a URL
and a folder, as a test must; nothing else is adapted.
"""

from __future__ import annotations

import re
import textwrap
import warnings
from pathlib import Path
from typing import Any

import pytest

PAGE = Path(__file__).resolve().parents[2] / "docs" / "migration.md"
_ROW = re.compile(r"^\|\s*`(?P<old>[^`]+)`\s*\|\s*`(?P<new>[^`]+)`")


def search_and_replace_rows() -> list[tuple[str, str]]:
    """The ``(found, replacement)`` rows of the page's "Search and replace" table."""
    text = PAGE.read_text(encoding="utf-8")
    section = text.split("## Search and replace", 1)[1].split("\n## ", 1)[0]
    return [(m["old"], m["new"]) for m in map(_ROW.match, section.splitlines()) if m]


def port(script: str) -> str:
    """``script`` with every row of the table applied, in the table's order."""
    for old, new in search_and_replace_rows():
        script = script.replace(old, new)
    return script


async def run(script: str, *args: Any) -> dict[str, Any]:
    """Port ``script``, check no upstream name is left, and await its ``main(*args)``."""
    assert "aiohttp_client_cache" in script
    ported = port(textwrap.dedent(script))
    assert "aiohttp_client_cache" not in ported, ported
    namespace: dict[str, Any] = {"__name__": "ported_script"}
    exec(compile(ported, "<ported script>", "exec"), namespace)
    with warnings.catch_warnings():
        warnings.simplefilter("error", DeprecationWarning)  # the port uses no deprecated name
        await namespace["main"](*args)
    return namespace


def test_the_table_is_found_and_has_the_import_rows() -> None:
    rows = dict(search_and_replace_rows())
    assert rows["from aiohttp_client_cache import FileBackend"] == (
        "from acc.backends.filesystem import FileBackend"
    )
    assert rows["datetime.utcnow()"] == "datetime.now(timezone.utc)"
    assert len(rows) >= 20


# -- a data-provider SDK's cache, on files -----------------------------------------------------

SDK_ON_FILES = """
from datetime import datetime, timedelta

from aiohttp_client_cache import CachedSession
from aiohttp_client_cache import FileBackend


async def main(base_url, folder):
    cache = FileBackend(
        cache_name=str(folder / "http_cache"),
        expire_after=timedelta(hours=1),
        urls_expire_after={"127.0.0.1*/slow": 5},
        allowed_codes=(200, 404),
    )
    async with CachedSession(cache=cache) as session:
        for page in range(3):
            async with session.get(f"{base_url}/json", params={"page": page}) as response:
                assert not response.from_cache
                assert (await response.json())["query"] == {"page": str(page)}
        for page in range(3):
            response = await session.get(f"{base_url}/json", params={"page": page})
            assert response.from_cache
            left = response.expires - datetime.utcnow()
            assert timedelta(minutes=59) < left <= timedelta(hours=1)
        async with session.get(f"{base_url}/missing") as response:
            assert response.status == 404
        assert (await session.get(f"{base_url}/missing")).from_cache

        assert await session.cache.has_url(f"{base_url}/json?page=1")
        await session.cache.delete_url(f"{base_url}/json?page=1")
        assert not await session.cache.has_url(f"{base_url}/json?page=1")
        urls = sorted([url async for url in session.cache.get_urls()])
        assert urls == [
            f"{base_url}/json?page=0", f"{base_url}/json?page=2", f"{base_url}/missing"
        ]
        await session.cache.delete_expired_responses()
        assert await session.cache.responses.size() == 3

    # A later run of the program finds the cache in the same folder.
    async with CachedSession(cache=FileBackend(cache_name=str(folder / "http_cache"))) as session:
        response = await session.get(f"{base_url}/json", params={"page": 2})
        assert response.from_cache
        await session.cache.clear()
        assert await session.cache.responses.size() == 0
"""


async def test_a_data_provider_sdk_cache_on_files(origin, tmp_path: Path) -> None:
    base = origin("/").rstrip("/")
    await run(SDK_ON_FILES, base, tmp_path)
    assert origin.hits["/json"] == 3  # the three first fetches; every other one was a hit


# -- a chat bot's periodic cleanup, in memory --------------------------------------------------

CHAT_BOT = """
from datetime import datetime

from aiohttp_client_cache import CacheBackend
from aiohttp_client_cache import CachedSession


async def handle(session, base_url, text):
    async with session.get(f"{base_url}/json", params={"q": text}) as response:
        return response.from_cache


async def main(base_url, advance):
    cache = CacheBackend()
    async with CachedSession(cache=cache) as session:
        session.expire_after = 60
        assert not await handle(session, base_url, "hello")
        assert await handle(session, base_url, "hello")
        assert await session.has_url(f"{base_url}/json?q=hello")

    # The bot reconnects with a new session on the same cache.
    async with CachedSession(cache=cache) as session:
        assert await handle(session, base_url, "hello")
        session.expire_after = -1
        assert not await handle(session, base_url, "forever")
        advance(120)  # two minutes later, the periodic cleanup
        await session.delete_expired_responses()
        assert not await session.has_url(f"{base_url}/json?q=hello")
        assert await session.has_url(f"{base_url}/json?q=forever")
        await session.delete_url(f"{base_url}/json?q=forever")
        assert not await session.has_url(f"{base_url}/json?q=forever")
        started = datetime.utcnow()
        assert started.year >= 2024
    await cache.close()
"""


async def test_a_chat_bots_periodic_cleanup(origin, monkeypatch: pytest.MonkeyPatch) -> None:
    # The bot's clock: acc reads time through the backend's clock, so the test moves it
    # instead of sleeping two minutes. (The script itself is not changed for this.)
    from datetime import datetime, timedelta, timezone

    from acc.core import backend as facade

    now = [datetime.now(timezone.utc)]
    monkeypatch.setattr(facade, "utcnow", lambda: now[0])

    def advance(seconds: float) -> None:
        now[0] += timedelta(seconds=seconds)

    await run(CHAT_BOT, origin("/").rstrip("/"), advance)
    assert origin.hits["/json"] == 2


# -- the typical change of the page, on SQLite -------------------------------------------------

TYPICAL_SQLITE = """
from aiohttp_client_cache import CachedSession
from aiohttp_client_cache import SQLiteBackend


async def main(url, folder):
    cache = SQLiteBackend(str(folder / "http-cache"), expire_after=3600, allowed_codes=(200, 404))
    async with CachedSession(cache=cache) as session:
        response = await session.get(url, expire_after=60)
        assert not response.from_cache
        response = await session.get(url, expire_after=60)
        assert response.from_cache
    assert (folder / "http-cache.sqlite").is_file()
"""


async def test_the_typical_change_keeps_sqlite(origin, tmp_path: Path) -> None:
    namespace = await run(TYPICAL_SQLITE, origin("/json"), tmp_path)
    assert namespace["SQLiteBackend"].__module__.startswith("acc.backends.sqlite")


# -- Redis, by address -----------------------------------------------------------------------

ON_REDIS = """
import uuid

from aiohttp_client_cache import CachedSession
from aiohttp_client_cache import RedisBackend


async def main(url, redis_url):
    name = f"ported-{uuid.uuid4().hex[:8]}"
    cache = RedisBackend(name, address=redis_url, expire_after=300)
    async with CachedSession(cache=cache) as session:
        assert not (await session.get(url)).from_cache
        assert (await session.get(url)).from_cache
        assert [u async for u in session.cache.get_urls()] == [url]
        await session.cache.clear()
"""


async def test_a_redis_script_by_address(origin, redis_url: str) -> None:
    await run(ON_REDIS, origin("/json"), redis_url)


# -- DynamoDB, the table named by the first argument -------------------------------------------

ON_DYNAMODB = """
from aiohttp_client_cache import CachedSession
from aiohttp_client_cache import DynamoDBBackend


async def main(url, table, region, endpoint_url):
    cache = DynamoDBBackend(cache_name=table, create_if_not_exists=True, region_name=region,
                            endpoint_url=endpoint_url, expire_after=300)
    async with CachedSession(cache=cache) as session:
        assert not (await session.get(url)).from_cache
        assert (await session.get(url)).from_cache
        await session.cache.clear()
"""


async def test_a_dynamodb_script_names_its_table(origin, dynamodb_url: str) -> None:
    from acc_services.dynamodb import dynamodb_client, dynamodb_options, unique_name

    table = unique_name("ported")
    options = dynamodb_options(dynamodb_url)
    await run(ON_DYNAMODB, origin("/json"), table, options["region"], options["endpoint_url"])
    async with dynamodb_client(dynamodb_url) as client:
        described = await client.describe_table(TableName=table)
        assert described["Table"]["TableName"] == table  # the table the script named
        await client.delete_table(TableName=table)
