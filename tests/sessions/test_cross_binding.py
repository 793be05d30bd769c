"""One store, two clients: what aiohttp's CachedSession stores, httpx's CachedClient hits.

DESIGN §3: "A response stored through one binding is a hit for the other (same keys, same
entries)". Each scenario stores through one binding and reads through the other, both
ways, on one in-memory backend shared by the two clients, and on one SQLite file opened
by a backend per client (so the entry really goes through storage). The real origin on
127.0.0.1 answers; the second request must not reach it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from acc.core import CacheBackend
from acc.sessions.aiohttp import CachedSession
from acc.sessions.httpx import CachedClient


class Stores:
    """Backends for the two bindings over one store."""

    def __init__(self, kind: str, tmp_path: Path) -> None:
        self.kind = kind
        self.path = tmp_path / "shared.sqlite"
        self.made: list[CacheBackend] = []
        self._memory: CacheBackend | None = None

    def backend(self, **options: Any) -> CacheBackend:
        """The store again: the same memory backend, or a new backend on the same file."""
        if self.kind == "memory":
            if self._memory is None:
                self._memory = CacheBackend(autoclose=False, **options)
                self.made.append(self._memory)
            return self._memory
        from acc.backends.sqlite import SQLiteBackend

        backend = SQLiteBackend(str(self.path), autoclose=False, **options)
        self.made.append(backend)
        return backend


@pytest.fixture(params=["memory", "sqlite"])
async def stores(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Stores]:
    made = Stores(request.param, tmp_path)
    yield made
    for backend in made.made:
        await backend.close()


class Result:
    """What a binding's response says, in the same terms for both."""

    def __init__(self, status: int, body: bytes, headers: dict[str, str], **acc: Any) -> None:
        self.status = status
        self.body = body
        self.headers = headers
        self.from_cache: bool = acc["from_cache"]
        self.cache_key: str | None = acc["cache_key"]
        self.revalidated: bool = acc["revalidated"]


Fetch = Callable[..., Awaitable[Result]]


async def via_aiohttp(
    stores: Stores, method: str, url: str, options: dict[str, Any] | None = None, **kwargs: Any
) -> Result:
    cookies = kwargs.pop("client_cookies", None)
    backend = stores.backend(**(options or {}))
    async with CachedSession(cache=backend, cookies=cookies) as session:
        refresh = kwargs.pop("refresh", False)
        async with session.request(method, url, refresh=refresh, **kwargs) as response:
            body = await response.read()
            return Result(
                response.status,
                body,
                {name.lower(): value for name, value in response.headers.items()},
                from_cache=response.from_cache,
                cache_key=response.cache_key,
                revalidated=response.revalidated,
            )


async def via_httpx(
    stores: Stores, method: str, url: str, options: dict[str, Any] | None = None, **kwargs: Any
) -> Result:
    cookies = kwargs.pop("client_cookies", None)
    refresh = kwargs.pop("refresh", False)
    if "data" in kwargs and not isinstance(kwargs["data"], dict):
        kwargs["content"] = kwargs.pop("data")
    backend = stores.backend(**(options or {}))
    async with CachedClient(cache=backend, cookies=cookies) as client:
        response = await client.request(
            method, url, extensions={"acc": {"refresh": refresh}}, **kwargs
        )
        return Result(
            response.status_code,
            response.content,
            {name.lower(): value for name, value in response.headers.items()},
            **response.extensions["acc"],
        )


BOTH_WAYS = pytest.mark.parametrize(
    ("store", "read"),
    [(via_aiohttp, via_httpx), (via_httpx, via_aiohttp)],
    ids=["aiohttp-then-httpx", "httpx-then-aiohttp"],
)


@BOTH_WAYS
async def test_a_get_stored_by_one_binding_is_a_hit_for_the_other(origin, stores, store, read):
    url = origin("/json?b=2&a=1")
    first = await store(stores, "GET", url)
    second = await read(stores, "GET", url)
    assert (first.from_cache, second.from_cache) == (False, True)
    assert second.cache_key == first.cache_key
    assert second.body == first.body
    assert second.status == 200
    assert second.headers["content-type"] == "application/json; charset=utf-8"
    assert origin.hits["/json"] == 1


@BOTH_WAYS
async def test_a_gzip_body_is_stored_decoded_for_both(origin, stores, store, read):
    first = await store(stores, "GET", origin("/gzip"))
    second = await read(stores, "GET", origin("/gzip"))
    assert second.from_cache is True
    assert second.cache_key == first.cache_key
    assert second.body == first.body
    assert second.body.startswith(b'{"compressed": true')
    assert "content-encoding" not in second.headers
    assert second.headers["content-length"] == str(len(second.body))
    assert origin.hits["/gzip"] == 1


@BOTH_WAYS
async def test_the_same_credentials_share_entries_and_others_do_not(origin, stores, store, read):
    url = origin("/json")
    alice = {"Authorization": "Bearer alice"}
    stored = await store(stores, "GET", url, headers=alice)
    same = await read(stores, "GET", url, headers=alice)
    other = await read(stores, "GET", url, headers={"Authorization": "Bearer bob"})
    assert same.from_cache is True
    assert same.cache_key == stored.cache_key
    assert other.from_cache is False
    jar = await store(stores, "GET", url, client_cookies={"session": "s1"})
    jar_hit = await read(stores, "GET", url, client_cookies={"session": "s1"})
    jar_other = await read(stores, "GET", url, client_cookies={"session": "s2"})
    assert jar_hit.from_cache is True
    assert jar_hit.cache_key == jar.cache_key
    assert jar_other.from_cache is False
    assert len({stored.cache_key, other.cache_key, jar.cache_key, jar_other.cache_key}) == 4
    assert origin.hits["/json"] == 4


@BOTH_WAYS
async def test_json_and_form_bodies_share_entries(origin, stores, store, read):
    posts = {"allowed_methods": ("GET", "POST")}
    url = origin("/echo")
    stored = await store(stores, "POST", url, posts, json={"a": 1, "b": ["x", "y"]})
    same = await read(stores, "POST", url, posts, json={"b": ["x", "y"], "a": 1})
    assert same.from_cache is True
    assert same.cache_key == stored.cache_key
    form = await store(stores, "POST", url, posts, data={"a": "1", "b": "2"})
    same_form = await read(stores, "POST", url, posts, data={"b": "2", "a": "1"})
    assert same_form.from_cache is True
    assert same_form.cache_key == form.cache_key != stored.cache_key
    assert origin.hits["/echo"] == 2


@BOTH_WAYS
async def test_an_entry_stored_by_one_is_revalidated_by_the_other(origin, stores, store, read):
    first = await store(stores, "GET", origin("/etag"))
    checked = await read(stores, "GET", origin("/etag"), refresh=True)
    assert (checked.from_cache, checked.revalidated) == (True, True)
    assert checked.body == first.body
    assert checked.headers["x-checked"] == "yes"
    assert origin.requests[-1].headers["If-None-Match"] == '"v1"'
    assert origin.hits["/etag"] == 2


async def test_a_redirect_chain_stored_by_aiohttp_answers_its_first_url_for_httpx(origin, stores):
    # aiohttp follows redirects itself and stores the final response with an alias from
    # each URL of the chain; httpx's transport sees the first URL, and the alias answers.
    stored = await via_aiohttp(stores, "GET", origin("/redirect"))
    hit = await via_httpx(stores, "GET", origin("/redirect"))
    assert (hit.status, hit.from_cache, hit.body) == (200, True, stored.body)
    final = await via_httpx(stores, "GET", origin("/json?from=redirect"))
    assert final.from_cache is True
    assert origin.hits["/redirect"] == 1
