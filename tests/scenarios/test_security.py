"""Security regressions of issue 12, for every binding and backend, against a real origin.

Each test names the item of issue 12 it guards, and fails if that protection is removed.
"""

from __future__ import annotations

from acc.core import CacheBackend, CachedResponse


async def _stored_bytes(backend: CacheBackend) -> bytes:
    """Everything both stores hold, keys included (once the queued writes are written)."""
    await backend.flush()
    chunks: list[bytes] = []
    for store in (backend.responses, backend.redirects):
        async for key, value in store.items():
            chunks += [key.encode(), value]
    return b"\n".join(chunks)


# -- item 6: custom credential headers and parameters are isolated and secret -----------------


async def test_api_key_headers_isolate_users_and_are_never_stored(origin, client_factory):
    client = client_factory()
    alice = await client.get(origin("/text"), headers={"X-Api-Key": "alice-key-1"})
    bob = await client.get(origin("/text"), headers={"X-Api-Key": "bob-key-2"})
    anonymous = await client.get(origin("/text"))
    other_header = await client.get(origin("/text"), headers={"X-Auth-Token": "carol-token-3"})
    assert not bob.from_cache
    assert not anonymous.from_cache
    assert not other_header.from_cache
    assert len({alice.cache_key, bob.cache_key, anonymous.cache_key, other_header.cache_key}) == 4
    again = await client.get(origin("/text"), headers={"X-Api-Key": "alice-key-1"})
    assert again.from_cache
    assert again.cache_key == alice.cache_key
    assert origin.hits["/text"] == 4
    stored = await _stored_bytes(client.cache)
    for secret in (b"alice-key-1", b"bob-key-2", b"carol-token-3"):
        assert secret not in stored


async def test_credential_headers_and_params_extend_the_list(origin, client_factory):
    client = client_factory(credential_headers=["X-Tenant-Secret"], credential_params=["api_key"])
    one = await client.get(origin("/text"), headers={"X-Tenant-Secret": "tenant-one"})
    two = await client.get(origin("/text"), headers={"X-Tenant-Secret": "tenant-two"})
    assert not two.from_cache
    assert one.cache_key != two.cache_key
    alice = await client.get(origin("/text?page=1&api_key=alice-param"))
    bob = await client.get(origin("/text?page=1&api_key=bob-param"))
    anonymous = await client.get(origin("/text?page=1"))
    assert not bob.from_cache
    assert not anonymous.from_cache
    assert len({alice.cache_key, bob.cache_key, anonymous.cache_key}) == 3
    again = await client.get(origin("/text?api_key=alice-param&page=1"))
    assert again.from_cache
    assert again.cache_key == alice.cache_key
    assert origin.hits["/text"] == 5
    stored = await _stored_bytes(client.cache)
    for secret in (b"tenant-one", b"tenant-two", b"alice-param", b"bob-param"):
        assert secret not in stored


# -- item 5: a redacted parameter never survives in a redirect hop or a URL-bearing header ------


async def test_redacted_params_leave_hops_and_url_headers(origin, client_factory):
    # httpx follows redirects above the cache: storing 302s makes it keep the hop too.
    for params in ({"ignored_params": ["api_key"]}, {"credential_params": ["api_key"]}):
        client = client_factory(allowed_codes=(200, 302), **params)
        first = await client.get(origin("/relay?hops=2&api_key=hop-secret-5&page=1"))
        assert first.body == b"relayed"
        assert len(first.history) == 2
        stored = await _stored_bytes(client.cache)
        assert b"relayed" in stored  # the final response is stored ...
        assert b"hop-secret-5" not in stored  # ... with no trace of the key
        assert b"api_key=REDACTED" in stored
        await client.close()


# -- item 3: an alias or vary record answers only for the key it was written for ---------------


async def test_forged_or_moved_alias_never_serves_another_url(origin, client_factory):
    client = client_factory(secret_key="s3cret")
    backend = client.cache
    first = await client.get(origin("/json?id=1"))
    target_url = origin("/json?id=2")
    victim_key = backend.url_key(target_url)
    # The attack of the issue: an alias in clear pointing B's key at A's signed entry ...
    await backend.redirects.write(victim_key, first.cache_key.encode())
    forged = await client.get(target_url)
    assert forged.from_cache is False
    assert forged.json()["query"] == {"id": "2"}
    assert forged.cache_key == victim_key
    assert backend.stats.errors == 1
    # ... and a genuine alias record, written for another key, moved onto B's key.
    await backend.flush()  # B's entry, fetched just now, is written: then deleted
    await backend.responses.delete(victim_key)
    genuine = backend.codec.encode_record(first.cache_key.encode(), key="another-key")
    await backend.redirects.write(victim_key, genuine)
    moved = await client.get(target_url)
    assert moved.from_cache is False
    assert moved.json()["query"] == {"id": "2"}
    assert backend.stats.errors == 2
    assert origin.hits["/json"] == 3


# -- item 2: an entry no client could serve is a miss, deleted, never an error ------------------


async def test_a_hostile_entry_is_a_miss_in_every_binding(origin, client_factory):
    client = client_factory()
    backend = client.cache
    url = origin("/json?id=7")
    key = backend.url_key(url)
    hostile = CachedResponse(200, "OK", "http://[", "GET", body=b"{}", created_at=backend.now())
    await backend.responses.write(key, backend.codec.encode(hostile, key=key))
    first = await client.get(url)
    assert first.from_cache is False
    assert first.json()["query"] == {"id": "7"}
    assert backend.stats.errors == 1
    second = await client.get(url)  # the hostile entry was replaced by the fresh one
    assert second.from_cache is True
    assert origin.hits["/json"] == 1


# -- item 1: one request's Set-Cookie never reaches another session ----------------------------


class _User:
    """One user's own client (own cookie jar) over a shared backend, for either binding."""

    def __init__(self, binding: str, cache: CacheBackend) -> None:
        self.binding = binding
        if binding == "aiohttp":
            import aiohttp

            from acc.sessions.aiohttp import CachedSession

            # The origin is an IP address: aiohttp's jar takes its cookies only when unsafe.
            self.session = CachedSession(cache=cache, cookie_jar=aiohttp.CookieJar(unsafe=True))
        else:
            from acc.sessions.httpx import CachedClient

            self.client = CachedClient(cache=cache, follow_redirects=True)

    async def get(self, url: str) -> tuple[bool, list[str]]:
        """``(from_cache, Set-Cookie values the response shows)``."""
        if self.binding == "aiohttp":
            async with self.session.get(url) as response:
                await response.read()
                return response.from_cache, response.headers.getall("Set-Cookie", [])
        answer = await self.client.get(url)
        await answer.aread()
        return answer.extensions["acc"]["from_cache"], answer.headers.get_list("set-cookie")

    def cookies(self) -> dict[str, str]:
        if self.binding == "aiohttp":
            return {cookie.key: cookie.value for cookie in self.session.cookie_jar}
        return dict(self.client.cookies.items())

    async def close(self) -> None:
        if self.binding == "aiohttp":
            await self.session.close()
        else:
            await self.client.aclose()


async def test_set_cookie_is_never_replayed_into_another_session(origin, binding, make_backend):
    backend = make_backend(autoclose=False)
    alice, bob = _User(binding, backend), _User(binding, backend)
    try:
        from_cache, set_cookie = await alice.get(origin("/cookie"))
        assert from_cache is False
        assert set_cookie  # Alice's own response keeps her cookie ...
        assert alice.cookies().get("flavour") == "oatmeal"
        from_cache, set_cookie = await bob.get(origin("/cookie"))
        assert from_cache is True  # ... Bob gets the cached page ...
        assert set_cookie == []  # ... without the cookie, which never reaches his jar.
        assert "flavour" not in bob.cookies()
        stored = await _stored_bytes(backend)
        assert b"oatmeal" not in stored
    finally:
        await alice.close()
        await bob.close()


async def test_store_cookies_restores_cookies_of_every_hop(origin, binding, make_backend):
    # The opt-in behaviour of aiohttp-client-cache, for single-user scripts: a cached
    # login redirect restores the cookie its 302 set. (httpx follows redirects above the
    # cache, so there the 302 is an entry of its own, and must be an allowed status.)
    backend = make_backend(store_cookies=True, allowed_codes=(200, 302), autoclose=False)
    first, second = _User(binding, backend), _User(binding, backend)
    try:
        assert (await first.get(origin("/login")))[0] is False
        assert first.cookies().get("session") == "user-a-session"
        from_cache, _set_cookie = await second.get(origin("/login"))
        assert second.cookies().get("session") == "user-a-session"
        if binding == "aiohttp":
            assert from_cache is True  # one entry for the whole chain, hops included
        assert origin.hits["/login"] == 1
        # And a final response's own cookie.
        await first.get(origin("/cookie"))
        assert (await second.get(origin("/cookie")))[0] is True
        assert second.cookies().get("flavour") == "oatmeal"
    finally:
        await first.close()
        await second.close()
