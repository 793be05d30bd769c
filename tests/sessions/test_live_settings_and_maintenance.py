"""Settings and maintenance on a session or client: where aiohttp-client-cache users look.

Settings are the backend's: ``session.expire_after = 60`` raises ``AttributeError`` naming
``session.cache.expire_after`` (on aiohttp's session and httpx's client alike), and
``session.cache.expire_after = 60`` changes the live backend. aiohttp-client-cache's
session-level maintenance methods are deprecated aliases of the backend's. A backend
closed by a first session says, in a second, why and how to share it.
"""

from __future__ import annotations

import warnings
from datetime import datetime, timedelta, timezone

import pytest

from acc.core import BackendError, CacheBackend
from acc.sessions.aiohttp import CachedSession
from acc.sessions.httpx import CachedClient


async def test_a_setting_assigned_on_the_aiohttp_session_says_where_it_lives(origin) -> None:
    async with CachedSession() as session:
        with pytest.raises(AttributeError, match=r"session\.cache\.expire_after"):
            session.expire_after = -1
        with pytest.raises(AttributeError, match="settings belong to its cache backend"):
            _ = session.allowed_codes  # type: ignore[attr-defined]
        assert getattr(session, "cache_control", "absent") == "absent"
        assert "expire_after" not in vars(session)


async def test_a_setting_assigned_on_the_httpx_client_says_where_it_lives(origin) -> None:
    async with CachedClient() as client:
        with pytest.raises(AttributeError, match=r"\.cache\.expire_after"):
            client.expire_after = -1  # type: ignore[attr-defined]
        with pytest.raises(AttributeError, match="settings belong to its cache backend"):
            _ = client.strict  # type: ignore[attr-defined]


async def test_a_setting_assigned_on_the_backend_applies_to_the_next_request(origin) -> None:
    url = origin("/json")
    async with CachedSession(cache=CacheBackend(expire_after=0)) as session:
        await session.get(url)
        assert not (await session.get(url)).from_cache  # 0: nothing is stored
        session.cache.expire_after = 60
        await session.get(url)
        hit = await session.get(url)
        assert hit.from_cache
        assert hit.expires is not None
    async with CachedClient(cache=CacheBackend(expire_after=0)) as client:
        client.cache.expire_after = 60
        await client.get(url)
        assert (await client.get(url)).extensions["acc"]["from_cache"]


async def test_session_maintenance_methods_are_deprecated_aliases(origin) -> None:
    url = origin("/json")
    now = [datetime.now(timezone.utc)]
    backend = CacheBackend(clock=lambda: now[0])
    async with CachedSession(base_url=origin("/"), cache=backend) as session:
        await session.get("/json")
        with pytest.warns(DeprecationWarning, match=r"session\.cache\.has_url"):
            assert await session.has_url("/json") is True  # relative to base_url
        with pytest.warns(DeprecationWarning, match=r"session\.cache\.delete_url"):
            await session.delete_url(url)
        assert await session.cache.has_url(url) is False
        await session.get("/json", expire_after=60)
        await session.get("/json?other=1")  # never expires
        now[0] += timedelta(seconds=120)
        with pytest.warns(DeprecationWarning, match=r"session\.cache\.delete\(expired=True\)"):
            removed = await session.delete_expired_responses()
        assert removed == 1
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            assert await session.cache.has_url(origin("/json?other=1")) is True


async def test_a_backend_closed_by_one_session_explains_itself_to_the_next(origin) -> None:
    shared = CacheBackend()  # autoclose=True, the default
    async with CachedSession(cache=shared) as first:
        await first.get(origin("/json"))
    async with CachedSession(cache=shared) as second:
        with pytest.raises(BackendError, match=r"autoclose=False") as raised:
            await second.get(origin("/json"))
    assert "autoclose=True, the default" in str(raised.value)
