"""CachedSession against a real origin: misses, hits, options and the cache attributes."""

from __future__ import annotations

import asyncio
import time
from contextlib import asynccontextmanager
from datetime import datetime, timedelta, timezone
from typing import Any

import aiohttp
import pytest

from acc.core import (
    DO_NOT_CACHE,
    NEVER_EXPIRE,
    BackendUnavailable,
    CacheBackend,
    CachedResponse,
    ConfigError,
)
from acc.sessions.aiohttp import CachedClientResponse, CachedSession


async def test_miss_then_hit(origin, make_backend):
    async with CachedSession(cache=make_backend()) as session:
        async with session.get(origin("/json")) as first:
            assert first.from_cache is False
            first_body = await first.json()
        async with session.get(origin("/json")) as second:
            assert isinstance(second, CachedClientResponse)
            assert second.from_cache is True
            assert await second.json() == first_body
            assert second.cache_key == first.cache_key
            assert second.created_at == first.created_at
            assert second.expires is None
            assert second.is_expired is False
            assert second.revalidated is False
    assert origin.hits["/json"] == 1
    assert session.cache.stats.hits == 1
    assert session.cache.stats.misses == 1
    assert session.cache.stats.writes == 1


async def test_default_cache_is_memory_and_autoclosed(origin):
    session = CachedSession()
    backend = session.cache
    assert type(backend) is CacheBackend
    await session.get(origin("/json"))
    await session.close()
    assert backend.closed


async def test_autoclose_false_keeps_backend_open(origin, make_backend):
    backend = make_backend(autoclose=False)
    async with CachedSession(cache=backend) as session:
        await session.get(origin("/json"))
    assert not backend.closed
    async with CachedSession(cache=backend) as session:
        assert (await session.get(origin("/json"))).from_cache


@pytest.mark.slow
@pytest.mark.parametrize(
    "expire_after",
    [1, 1.0, timedelta(seconds=1)],
    ids=["int", "float", "timedelta"],
)
async def test_relative_expiration_with_real_time(origin, make_backend, expire_after):
    async with CachedSession(cache=make_backend(expire_after=expire_after)) as session:
        await session.get(origin("/json"))
        assert (await session.get(origin("/json"))).from_cache
        await asyncio.sleep(1.2)
        again = await session.get(origin("/json"))
        assert again.from_cache is False
    assert origin.hits["/json"] == 2


@pytest.mark.slow
@pytest.mark.parametrize("aware", [True, False], ids=["aware", "naive-utc"])
async def test_absolute_datetime_expiration(origin, make_backend, aware):
    moment = datetime.now(timezone.utc) + timedelta(seconds=1)
    value = moment if aware else moment.replace(tzinfo=None)
    async with CachedSession(cache=make_backend(expire_after=value)) as session:
        first = await session.get(origin("/json"))
        assert first.expires is not None
        assert abs((first.expires - moment).total_seconds()) < 0.001
        assert (await session.get(origin("/json"))).from_cache
        await asyncio.sleep(1.2)
        assert (await session.get(origin("/json"))).from_cache is False


async def test_aware_datetime_in_another_zone_is_correct_to_the_minute(origin, make_backend):
    zone = timezone(timedelta(hours=-5))
    moment = datetime.now(zone) + timedelta(hours=3)
    async with CachedSession(cache=make_backend(expire_after=moment)) as session:
        await session.get(origin("/json"))
        hit = await session.get(origin("/json"))
    assert hit.from_cache
    assert hit.expires is not None
    assert hit.expires.tzinfo is not None
    assert abs((hit.expires - moment).total_seconds()) < 60
    assert abs((hit.expires - datetime.now(timezone.utc)).total_seconds() - 3 * 3600) < 60


async def test_never_expire_and_do_not_cache(origin, make_backend):
    async with CachedSession(cache=make_backend(expire_after=NEVER_EXPIRE)) as session:
        await session.get(origin("/json"))
        hit = await session.get(origin("/json"))
        assert hit.from_cache
        assert hit.expires is None
    async with CachedSession(cache=make_backend(expire_after=DO_NOT_CACHE)) as session:
        await session.get(origin("/json"))
        assert (await session.get(origin("/json"))).from_cache is False
        assert session.cache.stats.writes == 0


async def test_per_request_expire_after_beats_url_patterns_and_session(origin, make_backend):
    backend = make_backend(
        expire_after=3600,
        urls_expire_after={"127.0.0.1:*/json": DO_NOT_CACHE, "127.0.0.1": 60},
    )
    async with CachedSession(cache=backend) as session:
        await session.get(origin("/json"))
        assert (await session.get(origin("/json"))).from_cache is False  # pattern: do not cache
        await session.get(origin("/text"))  # second pattern: 60 s
        text_hit = await session.get(origin("/text"))
        assert text_hit.from_cache
        assert text_hit.expires is not None
        assert 50 < (text_hit.expires - datetime.now(timezone.utc)).total_seconds() <= 60
        await session.get(origin("/json"), expire_after=120)  # request beats patterns
        json_hit = await session.get(origin("/json"))
        assert json_hit.from_cache
        assert json_hit.expires is not None
        assert 110 < (json_hit.expires - datetime.now(timezone.utc)).total_seconds() <= 120


async def test_invalid_per_request_expire_after_raises_config_error(origin, make_backend):
    async with CachedSession(cache=make_backend()) as session:
        with pytest.raises(ConfigError, match=r"^expire_after"):
            await session.get(origin("/json"), expire_after="soon")


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


async def test_allowed_codes_and_methods(origin, make_backend):
    async with CachedSession(cache=make_backend()) as session:
        await session.get(origin("/status/404"))
        assert (await session.get(origin("/status/404"))).from_cache is False
        await session.post(origin("/echo"), json={"a": 1})
        assert (await session.post(origin("/echo"), json={"a": 1})).from_cache is False
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


async def test_filter_fn_sync_and_async(origin, make_backend):
    async def only_small(response):
        return len(response.body) < 100

    backend = make_backend(filter_fn=only_small)
    async with CachedSession(cache=backend) as session:
        await session.get(origin("/big?size=1024"))
        assert (await session.get(origin("/big?size=1024"))).from_cache is False
        await session.get(origin("/text"))
        assert (await session.get(origin("/text"))).from_cache is True
    rejecting = make_backend(autoclose=False)
    async with CachedSession(cache=rejecting) as session:
        await session.get(origin("/text"))
    # filter_fn is also applied on read: a stricter reader treats the entry as a miss
    reader = make_backend(filter_fn=lambda response: response.status != 200)
    reader.responses, reader.redirects = rejecting.responses, rejecting.redirects
    async with CachedSession(cache=reader) as session:
        assert (await session.get(origin("/text"))).from_cache is False


async def test_redirect_target_is_aliased(origin, make_backend):
    async with CachedSession(cache=make_backend()) as session:
        first = await session.get(origin("/redirect"))
        assert first.status == 200
        assert len(first.history) == 1
        again = await session.get(origin("/redirect"))
        assert again.from_cache
        assert again.history[0].status == 302
        direct = await session.get(origin("/json?from=redirect"))
        assert direct.from_cache
        assert await direct.json() == await first.json()
    assert origin.hits["/redirect"] == 1
    assert origin.hits["/json"] == 1


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


async def _stored_bytes(backend: CacheBackend) -> bytes:
    return b"".join([value async for _key, value in backend.responses.items()])


@pytest.mark.filterwarnings("ignore:.*(BasicAuth|auth).*:DeprecationWarning")
async def test_credentials_never_share_entries_nor_get_stored(origin, make_backend):
    backend = make_backend()
    async with CachedSession(cache=backend) as session:
        alice = await session.get(origin("/json"), headers={"Authorization": "Bearer alice-secret"})
        bob = await session.get(origin("/json"), headers={"Authorization": "Bearer bob-secret"})
        assert not bob.from_cache
        assert alice.cache_key != bob.cache_key
        basic_a = await session.get(origin("/json"), auth=aiohttp.BasicAuth("carol", "pw-carol"))
        basic_b = await session.get(origin("/json"), auth=aiohttp.BasicAuth("dave", "pw-dave"))
        assert not basic_b.from_cache
        assert basic_a.cache_key != basic_b.cache_key
        again = await session.get(origin("/json"), headers={"Authorization": "Bearer alice-secret"})
        assert again.from_cache
        assert again.cache_key == alice.cache_key
        assert again.request_info.headers["Authorization"] == "REDACTED"
        cookie = await session.get(origin("/json"), headers={"Cookie": "session=xyz-secret"})
        assert not cookie.from_cache
        stored = await _stored_bytes(backend)
    for secret in (b"alice-secret", b"bob-secret", b"pw-carol", b"xyz-secret"):
        assert secret not in stored
    assert aiohttp.BasicAuth("carol", "pw-carol").encode().encode() not in stored
    assert origin.hits["/json"] == 5


@pytest.mark.filterwarnings("ignore:.*(BasicAuth|auth).*:DeprecationWarning")
async def test_session_auth_keys_entries_per_user(origin, make_backend):
    backend = make_backend(autoclose=False)
    async with CachedSession(cache=backend, auth=aiohttp.BasicAuth("eve", "pw1")) as eve:
        await eve.get(origin("/echo"))
    async with CachedSession(cache=backend, auth=aiohttp.BasicAuth("mallory", "pw2")) as mal:
        assert (await mal.get(origin("/echo"))).from_cache is False
    async with CachedSession(cache=backend, auth=aiohttp.BasicAuth("eve", "pw1")) as eve:
        assert (await eve.get(origin("/echo"))).from_cache is True


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


async def test_refresh_revalidates_with_etag(origin, make_backend):
    async with CachedSession(cache=make_backend()) as session:
        first = await session.get(origin("/etag"))
        revalidated = await session.get(origin("/etag"), refresh=True)
        assert revalidated.from_cache
        assert revalidated.revalidated
        assert revalidated.status == 200
        assert await revalidated.json() == await first.json()
        assert revalidated.headers["X-Checked"] == "yes"  # headers of the 304 merged
        assert revalidated.created_at > first.created_at
        conditional = origin.requests[-1]
        assert conditional.headers["If-None-Match"] == '"v1"'
        origin.etag_version = 2
        changed = await session.get(origin("/etag"), refresh=True)
        assert changed.from_cache is False
        assert await changed.json() == {"version": 2}
        assert (await (await session.get(origin("/etag"))).json()) == {"version": 2}
        assert session.cache.stats.revalidations == 1


async def test_refresh_with_last_modified_and_without_validators(origin, make_backend):
    async with CachedSession(cache=make_backend()) as session:
        await session.get(origin("/last-modified"))
        checked = await session.get(origin("/last-modified"), refresh=True)
        assert checked.revalidated
        assert await checked.text() == "dated"
        assert origin.requests[-1].headers["If-Modified-Since"] == "Wed, 21 Oct 2015 07:28:00 GMT"
        await session.get(origin("/json"))
        refetched = await session.get(origin("/json"), refresh=True)
        assert refetched.from_cache is False
        assert (await refetched.json())["count"] == 2


async def test_force_refresh_fetches_and_stores(origin, make_backend):
    async with CachedSession(cache=make_backend()) as session:
        await session.get(origin("/json"))
        forced = await session.get(origin("/json"), force_refresh=True)
        assert forced.from_cache is False
        assert (await forced.json())["count"] == 2
        hit = await session.get(origin("/json"))
        assert hit.from_cache
        assert (await hit.json())["count"] == 2


async def test_only_if_cached(origin, make_backend):
    async with CachedSession(cache=make_backend()) as session:
        miss = await session.get(origin("/json"), only_if_cached=True)
        assert miss.status == 504
        assert miss.from_cache is False
        assert origin.total == 0
        await session.get(origin("/json"))
        hit = await session.get(origin("/json"), only_if_cached=True)
        assert hit.status == 200
        assert hit.from_cache


async def test_concurrent_identical_gets_make_one_origin_request(origin, make_backend):
    async with CachedSession(cache=make_backend()) as session:
        responses = await asyncio.gather(
            *(session.get(origin("/slow?delay=0.3")) for _ in range(20))
        )
        bodies = [await r.json() for r in responses]
    assert origin.hits["/slow"] == 1
    assert all(body == {"count": 1} for body in bodies)
    assert sum(1 for r in responses if r.from_cache) == 19


async def test_uncacheable_concurrent_posts_are_not_serialised(origin, make_backend):
    delay = 0.4
    async with CachedSession(cache=make_backend()) as session:
        started = time.perf_counter()
        responses = await asyncio.gather(
            *(session.post(origin(f"/slow-post?delay={delay}")) for _ in range(5))
        )
        elapsed = time.perf_counter() - started
    assert origin.hits["/slow-post"] == 5
    assert all(r.status == 200 for r in responses)
    assert elapsed < delay * 2.5, f"5 concurrent POSTs took {elapsed:.2f}s, as if serialised"


async def test_force_refresh_requests_are_not_serialised(origin, make_backend):
    delay = 0.4
    async with CachedSession(cache=make_backend()) as session:
        started = time.perf_counter()
        await asyncio.gather(
            *(session.get(origin(f"/slow?delay={delay}"), force_refresh=True) for _ in range(4))
        )
        elapsed = time.perf_counter() - started
    assert origin.hits["/slow"] == 4
    assert elapsed < delay * 2.5


def test_coalescing_works_across_event_loops():
    """One backend used from two successive event loops coalesces in each."""
    from aiohttp import web

    backend = CacheBackend(autoclose=False)

    async def run_once(round_number: int) -> tuple[int, int]:
        hits = 0

        async def slow(request):
            nonlocal hits
            hits += 1
            await asyncio.sleep(0.2)
            return web.json_response({"round": round_number})

        app = web.Application()
        app.router.add_get("/slow", slow)
        runner = web.AppRunner(app)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = runner.addresses[0][1]
        try:
            async with CachedSession(cache=backend) as session:
                url = f"http://127.0.0.1:{port}/slow"
                responses = await asyncio.gather(*(session.get(url) for _ in range(10)))
                return hits, sum(r.status == 200 for r in responses)
        finally:
            await runner.cleanup()

    assert asyncio.run(run_once(1)) == (1, 10)
    assert asyncio.run(run_once(2)) == (1, 10)
    asyncio.run(backend.close())


async def test_backend_outage_fails_open_and_strict_raises(origin, caplog):
    from acc.core import BaseCache

    class Broken(BaseCache):
        async def read(self, key):
            raise ConnectionError("storage is down")

        async def write(self, key, value, *, expires_at=None):
            raise ConnectionError("storage is down")

        async def delete(self, key):
            raise ConnectionError("storage is down")

        async def keys(self):
            for _ in ():
                yield ""  # never reached: makes this an async generator
            raise ConnectionError("storage is down")

        async def clear(self):
            raise ConnectionError("storage is down")

    backend = CacheBackend(responses=Broken(), redirects=Broken())
    async with CachedSession(cache=backend) as session:
        with caplog.at_level("WARNING", logger="acc"):
            first = await session.get(origin("/json"))
            second = await session.get(origin("/json"))
        assert first.status == second.status == 200
        assert (await second.json())["count"] == 2
    assert backend.stats.errors >= 3
    assert sum("failed" in r.getMessage() for r in caplog.records) == 1
    strict = CacheBackend(responses=Broken(), redirects=Broken(), strict=True)
    async with CachedSession(cache=strict) as session:
        with pytest.raises(BackendUnavailable):
            await session.get(origin("/json"))


async def test_corrupted_and_tampered_entries_read_as_misses(origin, make_backend):
    backend = make_backend(secret_key="s3cret")
    async with CachedSession(cache=backend) as session:
        first = await session.get(origin("/json"))
        key = first.cache_key
        await backend.responses.write(key, b"\x00garbage\xff")
        assert (await session.get(origin("/json"))).from_cache is False
        assert backend.stats.errors == 1
        stored = await backend.responses.read(key)
        tampered = stored[:-3] + b"XYZ"
        await backend.responses.write(key, tampered)
        assert (await session.get(origin("/json"))).from_cache is False
        assert backend.stats.errors == 2
        assert (await session.get(origin("/json"))).from_cache is True
    assert origin.hits["/json"] == 3


async def test_key_rotation_reads_entries_signed_with_old_key(origin, make_backend):
    old = make_backend(secret_key="old-key", autoclose=False)
    async with CachedSession(cache=old) as session:
        await session.get(origin("/json"))
    rotated = make_backend(secret_key=["new-key", "old-key"])
    rotated.responses, rotated.redirects = old.responses, old.redirects
    async with CachedSession(cache=rotated) as session:
        assert (await session.get(origin("/json"))).from_cache is True
    only_new = make_backend(secret_key="new-key")
    only_new.responses, only_new.redirects = old.responses, old.redirects
    async with CachedSession(cache=only_new) as session:
        assert (await session.get(origin("/json"))).from_cache is False


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


async def test_only_if_cached_never_uses_the_network(origin, make_backend):
    async with CachedSession(cache=make_backend()) as session:
        async with session.disabled():
            disabled = await session.get(origin("/json"), only_if_cached=True)
        not_allowed = await session.post(origin("/echo"), only_if_cached=True)
    assert disabled.status == 504
    assert not_allowed.status == 504
    assert origin.total == 0


async def test_signed_entry_copied_to_another_key_reads_as_miss(origin, make_backend):
    backend = make_backend(secret_key="k")
    async with CachedSession(cache=backend) as session:
        one = await session.get(origin("/json?id=1"))
        two = await session.get(origin("/json?id=2"))
        entry_one = await backend.responses.read(one.cache_key)
        await backend.responses.write(two.cache_key, entry_one)
        swapped = await session.get(origin("/json?id=2"))
        assert swapped.from_cache is False
        assert (await swapped.json())["query"] == {"id": "2"}
        assert backend.stats.errors == 1


async def test_a_lone_miss_reads_the_store_once_and_a_late_joiner_twice(origin):
    from acc.core import MemoryCache

    class CountingCache(MemoryCache):
        reads = 0

        async def read(self, key: str) -> bytes | None:
            CountingCache.reads += 1
            return await super().read(key)

    backend = CacheBackend(responses=CountingCache())
    async with CachedSession(cache=backend) as session:
        await session.get(origin("/json?n=1"))
        assert CountingCache.reads == 1  # nothing finished meanwhile: no second look
        before = backend.inflight.completions
        CountingCache.reads = 0
        original_read = CountingCache.read

        async def read_while_another_finishes(self: CountingCache, key: str) -> bytes | None:
            backend.inflight.done("another-key")  # a fetch finishes during the lookup...
            return await original_read(self, key)

        CountingCache.read = read_while_another_finishes  # type: ignore[method-assign]
        await session.get(origin("/json?n=2"))
        assert backend.inflight.completions > before
        assert CountingCache.reads == 2  # ...so the new leader looks again before fetching


class _OtherProcessFetched(CacheBackend):
    """A backend whose cross-process lock reports that another process fetched meanwhile.

    Entering the lock stores the entry (as that other process would have) and yields True.
    """

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self.locked: list[str] = []
        self.prepared: CachedResponse | None = None

    @asynccontextmanager
    async def fetch_lock(self, key):
        self.locked.append(key)
        if self.prepared is not None:
            await self.write_entry(key, self.prepared)
            yield True
        else:
            yield False


async def test_fetch_lock_wraps_each_leader_fetch_and_a_wait_means_look_again(origin):
    backend = _OtherProcessFetched(autoclose=False)
    async with CachedSession(cache=backend) as session:
        first = await session.get(origin("/json"))
        assert first.from_cache is False
        assert backend.locked == [first.cache_key]
        assert first.cache_key is not None
        entry = await backend.read_entry(first.cache_key)
        await backend.clear()
        backend.prepared = entry
        second = await session.get(origin("/json"))
        assert second.from_cache is True  # found after the lock said "another process fetched"
        assert backend.locked == [first.cache_key, first.cache_key]
        third = await session.get(origin("/json"))  # a plain hit takes no lock
        assert third.from_cache is True
    assert origin.hits["/json"] == 1
    assert len(backend.locked) == 2
    await backend.close()
