"""What is particular to the aiohttp session: its response objects and argument shapes.

The caching behaviour every binding shares (misses and hits, expiration, the per-request
options, revalidation, Vary, stale entries, invalidation, credentials, coalescing,
fail-open) is tested once for every binding and backend in tests/scenarios. Here stays
what only the aiohttp session has: ``CachedClientResponse`` and its attributes,
``params``/``data``/``json``/``FormData`` bodies, ``base_url``, session ``auth``, the
cookie jar, ``disabled()``, and its keyword options.
"""

from __future__ import annotations

import aiohttp
import pytest
from aiohttp import ClientResponse

from acc.core import CacheBackend, ConfigError
from acc.sessions.aiohttp import CachedClientResponse, CachedSession


async def test_default_cache_is_memory_and_autoclosed(origin):
    session = CachedSession()
    backend = session.cache
    assert type(backend) is CacheBackend
    await session.get(origin("/json"))
    await session.close()
    assert backend.closed


async def test_misspelt_options_raise(origin):
    with pytest.raises(TypeError, match="expire_afer"):
        CacheBackend(expire_afer=10)  # type: ignore[call-arg]
    with pytest.raises(TypeError):
        CachedSession(cach=CacheBackend())
    async with CachedSession() as session:
        with pytest.raises(TypeError, match="expire_afer"):
            await session.get(origin("/json"), expire_afer=10)
    with pytest.raises(ConfigError, match=r"^cache"):
        CachedSession(cache=42)  # type: ignore[arg-type]


async def test_hits_are_cached_responses_and_misses_live_ones(origin, make_backend):
    async with CachedSession(cache=make_backend(cache_control=True, expire_after=3600)) as session:
        miss = await session.get(origin("/json"))
        assert isinstance(miss, ClientResponse)
        # stale is on every response, but missing from the CacheAwareResponse protocol.
        assert (miss.from_cache, miss.is_expired, miss.stale) == (False, False, False)  # type: ignore[attr-defined]
        hit = await session.get(origin("/json"))
        assert isinstance(hit, CachedClientResponse)
        assert (hit.from_cache, hit.is_expired, hit.stale) == (True, False, False)
        # Ten seconds old, fresh for one: served stale, and is_expired says so.
        url = origin.http("swr", cc="max-age=1, stale-while-revalidate=60", age="10")
        await session.get(url)
        stale = await session.get(url)
        assert isinstance(stale, CachedClientResponse)
        assert (stale.from_cache, stale.is_expired, stale.stale) == (True, True, True)


async def test_argument_shapes_of_bodies_and_a_cached_error_status(origin, make_backend):
    backend = make_backend(allowed_codes=(200, 404), allowed_methods=("GET", "POST"))
    async with CachedSession(cache=backend) as session:
        await session.get(origin("/status/404"))
        cached_404 = await session.get(origin("/status/404"))
        assert cached_404.from_cache
        assert cached_404.status == 404
        assert not cached_404.ok
        with pytest.raises(aiohttp.ClientResponseError) as info:
            cached_404.raise_for_status()
        assert info.value.status == 404
        await session.post(origin("/echo"), json={"a": "1"})
        assert (await session.post(origin("/echo"), json={"a": "1"})).from_cache
        form = await session.post(origin("/echo"), data={"a": "1"})
        assert form.from_cache is False  # a form body and a JSON body are different requests
        formdata = aiohttp.FormData({"a": "1"})
        assert (await session.post(origin("/echo"), data=formdata)).from_cache is True
        assert (await session.post(origin("/echo"), data=b"raw")).from_cache is False


async def test_sessions_with_different_base_urls_do_not_collide(origin, make_backend):
    backend = make_backend(autoclose=False)
    async with (
        CachedSession(base_url=origin("/t/a/"), cache=backend) as a,
        CachedSession(base_url=origin("/t/b/"), cache=backend) as b,
    ):
        assert (await (await a.get("json")).json())["tenant"] == "a"
        assert (await (await b.get("json")).json())["tenant"] == "b"
        hit_a, hit_b = await a.get("json"), await b.get("json")
        assert hit_a.from_cache
        assert hit_b.from_cache
        assert (await hit_a.json())["tenant"] == "a"
        assert (await hit_b.json())["tenant"] == "b"


@pytest.mark.filterwarnings("ignore:.*(BasicAuth|auth).*:DeprecationWarning")
async def test_session_auth_keys_entries_per_user(origin, make_backend):
    backend = make_backend(autoclose=False)
    async with CachedSession(cache=backend, auth=aiohttp.BasicAuth("eve", "pw1")) as eve:
        await eve.get(origin("/echo"))
    async with CachedSession(cache=backend, auth=aiohttp.BasicAuth("mallory", "pw2")) as mal:
        assert (await mal.get(origin("/echo"))).from_cache is False
    async with CachedSession(cache=backend, auth=aiohttp.BasicAuth("eve", "pw1")) as eve:
        assert (await eve.get(origin("/echo"))).from_cache is True


@pytest.mark.filterwarnings("ignore:.*(BasicAuth|auth).*:DeprecationWarning")
async def test_a_hit_redacts_credentials_in_its_request_info(origin, make_backend):
    async with CachedSession(cache=make_backend()) as session:
        secret = {"Authorization": "Bearer alice-secret"}
        await session.get(origin("/json"), headers=secret)
        again = await session.get(origin("/json"), headers=secret)
        assert again.from_cache
        assert again.request_info.headers["Authorization"] == "REDACTED"
        await session.get(origin("/text"), auth=aiohttp.BasicAuth("carol", "pw-carol"))
        basic = await session.get(origin("/text"), auth=aiohttp.BasicAuth("carol", "pw-carol"))
        assert basic.from_cache
        assert "pw-carol" not in str(basic.request_info.headers)


async def _stored_bytes(backend: CacheBackend) -> bytes:
    await backend.flush()  # entries are written just after their responses
    return b"".join([value async for _key, value in backend.responses.items()])


async def test_ignored_params_share_entries_and_are_redacted(origin, make_backend):
    backend = make_backend(ignored_params=["api_key"])
    async with CachedSession(cache=backend) as session:
        await session.get(origin("/text"), params={"q": "x", "api_key": "k-one"})
        hit = await session.get(origin("/text"), params={"api_key": "k-two", "q": "x"})
        assert hit.from_cache
        assert hit.url.query["api_key"] == "REDACTED"
        assert hit.url.query["q"] == "x"
        assert b"k-one" not in await _stored_bytes(backend)


async def test_disabled_bypasses_and_recovers_after_exception(origin, make_backend):
    async with CachedSession(cache=make_backend()) as session:
        await session.get(origin("/json"))
        seen_inside = []

        async def fail_while_disabled() -> None:
            async with session.disabled():
                seen_inside.append((await session.get(origin("/json"))).from_cache)
                raise RuntimeError("boom")

        with pytest.raises(RuntimeError, match="boom"):
            await fail_while_disabled()
        assert seen_inside == [False]
        assert (await session.get(origin("/json"))).from_cache is True
    assert origin.hits["/json"] == 2


async def test_only_if_cached_inside_disabled_never_uses_the_network(origin, make_backend):
    async with CachedSession(cache=make_backend()) as session, session.disabled():
        disabled = await session.get(origin("/json"), only_if_cached=True)
    assert disabled.status == 504
    assert origin.total == 0


async def test_cookie_jar_cookies_separate_entries(origin, make_backend):
    backend = make_backend(autoclose=False)
    jar_a = aiohttp.CookieJar(unsafe=True)
    jar_a.update_cookies({"session": "alice"}, origin.url)
    jar_b = aiohttp.CookieJar(unsafe=True)
    jar_b.update_cookies({"session": "bob"}, origin.url)
    async with CachedSession(cache=backend, cookie_jar=jar_a) as alice:
        await alice.get(origin("/text"))
        assert (await alice.get(origin("/text"))).from_cache
    async with CachedSession(cache=backend, cookie_jar=jar_b) as bob:
        assert (await bob.get(origin("/text"))).from_cache is False
    async with CachedSession(cache=backend) as anonymous:
        assert (await anonymous.get(origin("/text"))).from_cache is False
    shared = make_backend(ignored_params=["Cookie"], autoclose=False)  # the explicit opt-out
    async with CachedSession(cache=shared, cookie_jar=jar_a) as alice:
        await alice.get(origin("/text"))
    async with CachedSession(cache=shared, cookie_jar=jar_b) as bob:
        assert (await bob.get(origin("/text"))).from_cache is True
