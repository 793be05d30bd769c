"""RFC 9111 fixes through CachedSession against a real origin on 127.0.0.1.

Each test mirrors one in ``tests/core/test_rfc9111_fixes.py`` (the pure policy). The
origin here sends exactly the header lines a test names, several lines of one field
included, which the shared origin of ``tests/conftest.py`` cannot. Time moves through
the cache's clock, never by sleeping.
"""

from __future__ import annotations

import asyncio
import gzip
from collections import Counter
from collections.abc import AsyncIterator, Callable
from datetime import datetime, timedelta, timezone
from email.utils import format_datetime
from typing import Any

import pytest
from aiohttp import web
from multidict import CIMultiDict
from yarl import URL

from acc.core import CacheBackend
from acc.sessions.aiohttp import CachedSession


class Clock:
    """The cache's clock: the real time plus an offset the test moves forward."""

    def __init__(self) -> None:
        self.offset = timedelta(0)

    def __call__(self) -> datetime:
        return datetime.now(timezone.utc) + self.offset

    def advance(self, seconds: float) -> None:
        self.offset += timedelta(seconds=seconds)


class Origin:
    """An origin that answers ``/r/{name}?h=Name:Value&h=...`` with exactly those lines.

    ``status`` sets the status; ``body=gzip`` sends a gzip-compressed body. A request
    whose ``If-None-Match`` equals the ``ETag`` line gets a 304 with the same lines.
    """

    def __init__(self, url: URL) -> None:
        self.url = url
        self.hits: Counter[str] = Counter()

    def __call__(self, name: str, *lines: tuple[str, str], **params: str) -> str:
        query = [("h", f"{n}:{v}") for n, v in lines] + list(params.items())
        return str(self.url.with_path(f"/r/{name}").with_query(query))


def _app(ref: list[Origin]) -> web.Application:
    async def handle(request: web.Request) -> web.Response:
        origin = ref[0]
        origin.hits[request.path] += 1
        headers: CIMultiDict[str] = CIMultiDict()
        for line in request.query.getall("h", []):
            name, _, value = line.partition(":")
            headers.add(name, value)
        etag = headers.get("ETag")
        if etag is not None and request.headers.get("If-None-Match") == etag:
            return web.Response(status=304, headers=headers)
        body = f"{request.path} #{origin.hits[request.path]}".encode()
        if request.query.get("body") == "gzip":
            body = gzip.compress(body)
        status = int(request.query.get("status", "200"))
        return web.Response(status=status, headers=headers, body=body)

    app = web.Application()
    app.router.add_route("*", "/r/{name}", handle)
    return app


@pytest.fixture
async def origin() -> AsyncIterator[Origin]:
    ref: list[Origin] = []
    runner = web.AppRunner(_app(ref))
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    ref.append(Origin(URL(f"http://127.0.0.1:{port}")))
    yield ref[0]
    await runner.cleanup()


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def rfc(make_backend: Callable[..., CacheBackend], clock: Clock) -> Callable[..., CachedSession]:
    """A session over ``CacheBackend(cache_control=True)`` and nothing else (plus the clock)."""

    def session(**options: Any) -> CachedSession:
        return CachedSession(cache=make_backend(cache_control=True, clock=clock, **options))

    return session


def now_date() -> str:
    return format_datetime(datetime.now(timezone.utc), usegmt=True)


async def get_twice(session: CachedSession, url: str, **kwargs: Any) -> tuple[Any, Any]:
    first = await session.get(url, **kwargs)
    await first.read()
    second = await session.get(url, **kwargs)
    await second.read()
    return first, second


# -- defaults with cache_control=True ----------------------------------------------------------


async def test_a_response_without_freshness_is_not_reused(origin, rfc):
    async with rfc() as session:
        _, second = await get_twice(session, origin("none"))
        assert second.from_cache is False
        # With a validator it is kept, stale, and revalidated on every use.
        _, again = await get_twice(session, origin("etag", ("ETag", '"v1"')))
        assert again.from_cache is True
        assert again.revalidated is True
    assert origin.hits["/r/none"] == 2
    assert origin.hits["/r/etag"] == 2


async def test_expire_after_given_is_still_the_fallback(origin, make_backend):
    cache = make_backend(cache_control=True, expire_after=3600)
    async with CachedSession(cache=cache) as session:
        _, second = await get_twice(session, origin("fallback"))
        assert second.from_cache is True


@pytest.mark.parametrize(("status", "reused"), [(404, True), (500, True), (206, False)])
async def test_statuses_with_explicit_freshness_are_cached_by_rfc_rules(
    origin, rfc, status, reused
):
    async with rfc() as session:
        url = origin("status", ("Cache-Control", "max-age=600"), status=str(status))
        first, second = await get_twice(session, url)
        assert first.status == second.status == status
        assert second.from_cache is reused


async def test_a_500_without_explicit_freshness_is_not_stored(origin, rfc):
    async with rfc() as session:
        url = origin("error", ("ETag", '"e"'), status="500")
        _, second = await get_twice(session, url)
        assert second.from_cache is False
    assert origin.hits["/r/error"] == 2


# -- Expires must be a valid HTTP-date ---------------------------------------------------------


@pytest.mark.parametrize(
    "lines",
    [
        (("Expires", "Thu, 18 Aug 2050 02:01:18 UTC"),),
        (("Expires", "Thu, 18 Aug 50 02:01:18 GMT"),),
        (("Expires", "Thu 18 Aug 2050 02:01:18 GMT"),),
        (("Expires", "Thu, 18-Aug-2050 02:01:18 GMT"),),
        (("Expires", "Thu, 18 Aug 2050 2:01:18 GMT"),),
        (
            ("Expires", "Thu, 18 Aug 2050 02:01:18 GMT"),
            ("Expires", "Thu, 18 Aug 2050 02:01:19 GMT"),
        ),
    ],
)
async def test_an_invalid_expires_counts_as_expired(origin, rfc, lines):
    async with rfc() as session:
        _, second = await get_twice(session, origin("expires", *lines))
        assert second.from_cache is False


async def test_a_valid_expires_is_fresh(origin, rfc):
    async with rfc() as session:
        url = origin("valid", ("Expires", "Thu, 18 Aug 2050 02:01:18 GMT"))
        _, second = await get_twice(session, url)
        assert second.from_cache is True


# -- Age ---------------------------------------------------------------------------------------


async def test_a_hit_carries_a_generated_age(origin, rfc, clock):
    async with rfc() as session:
        url = origin("age-gen", ("Cache-Control", "max-age=600"), ("Date", now_date()))
        first = await session.get(url)
        assert "Age" not in first.headers
        clock.advance(100)
        hit = await session.get(url)
        assert hit.from_cache is True
        assert 100 <= int(hit.headers["Age"]) <= 110
        assert hit.headers.getall("Age") == [hit.headers["Age"]]


async def test_a_stored_age_is_updated_on_a_hit(origin, rfc, clock):
    async with rfc() as session:
        url = origin("age-update", ("Cache-Control", "max-age=600"), ("Age", "30"))
        await session.get(url)
        clock.advance(100)
        hit = await session.get(url)
        assert hit.from_cache is True
        assert 130 <= int(hit.headers["Age"]) <= 140


@pytest.mark.parametrize(
    "lines", [(("Age", "7200, 0"),), (("Age", "7200"), ("Age", "0")), (("Age", "abc"),)]
)
async def test_an_age_list_is_read_by_its_first_member(origin, rfc, lines):
    async with rfc() as session:
        url = origin("age-list", ("Cache-Control", "max-age=3600"), ("Date", now_date()), *lines)
        _, second = await get_twice(session, url)
        assert second.from_cache is False


async def test_an_age_list_starting_young_is_fresh(origin, rfc):
    async with rfc() as session:
        url = origin("age-young", ("Cache-Control", "max-age=3600"), ("Age", "0, 7200"))
        _, second = await get_twice(session, url)
        assert second.from_cache is True


# -- Content-Encoding --------------------------------------------------------------------------


async def test_an_unknown_coding_keeps_its_label(origin, rfc):
    async with rfc() as session:
        url = origin("coding", ("Cache-Control", "max-age=600"), ("Content-Encoding", "x-custom"))
        first, hit = await get_twice(session, url)
        assert hit.from_cache is True
        assert hit.headers["Content-Encoding"] == "x-custom"
        assert await hit.read() == await first.read()


async def test_an_undecoded_gzip_body_keeps_its_label(origin, make_backend):
    async with CachedSession(
        cache=make_backend(cache_control=True), auto_decompress=False
    ) as session:
        url = origin(
            "raw", ("Cache-Control", "max-age=600"), ("Content-Encoding", "gzip"), body="gzip"
        )
        _, hit = await get_twice(session, url)
        assert hit.from_cache is True
        assert hit.headers["Content-Encoding"] == "gzip"
        assert gzip.decompress(await hit.read()) == b"/r/raw #1"


async def test_a_decoded_gzip_body_loses_its_label(origin, rfc):
    async with rfc() as session:
        url = origin(
            "decoded", ("Cache-Control", "max-age=600"), ("Content-Encoding", "gzip"), body="gzip"
        )
        _, hit = await get_twice(session, url)
        assert hit.from_cache is True
        assert "Content-Encoding" not in hit.headers
        assert await hit.read() == b"/r/decoded #1"


# -- methods not known to be safe invalidate ---------------------------------------------------


@pytest.mark.parametrize("method", ["M-SEARCH", "POST"])
async def test_an_unknown_method_invalidates_like_post(origin, rfc, method):
    async with rfc() as session:
        url = origin("target", ("Cache-Control", "max-age=600"))
        _, hit = await get_twice(session, url)
        assert hit.from_cache is True
        async with session.request(method, url) as answer:
            assert answer.status == 200
        after = await session.get(url)
        assert after.from_cache is False
    assert origin.hits["/r/target"] == 3


async def test_a_failed_unknown_method_invalidates_nothing(origin, rfc):
    async with rfc() as session:
        url = origin("kept", ("Cache-Control", "max-age=600"))
        await get_twice(session, url)
        async with session.request("M-SEARCH", url + "&status=500") as answer:
            assert answer.status == 500
        assert (await session.get(url)).from_cache is True


# -- stale-while-revalidate and unknown request directives -------------------------------------


async def test_stale_while_revalidate_ignores_unknown_request_directives(origin, rfc, clock):
    headers = {"Cache-Control": "nothing-to-see-here", "Pragma": "foo"}
    async with rfc() as session:
        url = origin("swr", ("Cache-Control", "max-age=10, stale-while-revalidate=600"))
        await session.get(url, headers=headers)
        clock.advance(60)
        stale = await session.get(url, headers=headers)
        assert stale.from_cache is True
        assert await stale.read() == b"/r/swr #1"
        await asyncio.gather(*session.pending_refreshes)
    assert origin.hits["/r/swr"] == 2


# -- max-stale finds entries without validators ------------------------------------------------


async def test_max_stale_can_use_an_entry_without_validators(origin, rfc, clock):
    async with rfc() as session:
        url = origin("stale", ("Cache-Control", "max-age=10"))
        await session.get(url)
        clock.advance(3600)
        accepted = await session.get(url, headers={"Cache-Control": "max-stale=7200"})
        assert accepted.from_cache is True
        refused = await session.get(url)
        assert refused.from_cache is False
    assert origin.hits["/r/stale"] == 2


# -- beyond the browsers -----------------------------------------------------------------------


async def test_must_understand_with_an_unknown_status_is_not_stored(origin, rfc):
    async with rfc() as session:
        url = origin("mu", ("Cache-Control", "max-age=600, must-understand"), status="599")
        _, second = await get_twice(session, url)
        assert second.from_cache is False
        known = origin("mu-ok", ("Cache-Control", "max-age=600, must-understand, no-store"))
        _, hit = await get_twice(session, known)
        assert hit.from_cache is True


async def test_vary_normalises_list_whitespace_and_language_case(origin, rfc):
    async with rfc() as session:
        url = origin("vary", ("Cache-Control", "max-age=600"), ("Vary", "Foo, Accept-Language"))
        await session.get(url, headers={"Foo": "1,2", "Accept-Language": "en, de"})
        same = await session.get(url, headers={"Foo": " 1, 2 ", "Accept-Language": "EN ,De"})
        assert same.from_cache is True
        other = await session.get(url, headers={"Foo": "1,2", "Accept-Language": "de, en"})
        assert other.from_cache is False


async def test_a_range_request_is_answered_from_a_stored_complete_response(origin, rfc):
    async with rfc() as session:
        url = origin("range", ("Cache-Control", "max-age=600"))
        whole = await session.get(url)
        assert await whole.read() == b"/r/range #1"
        part = await session.get(url, headers={"Range": "bytes=3-7"})
        assert part.from_cache is True
        assert part.status == 206
        assert part.headers["Content-Range"] == "bytes 3-7/11"
        assert await part.read() == b"range"
        again = await session.get(url)
        assert again.status == 200
        assert await again.read() == b"/r/range #1"
    assert origin.hits["/r/range"] == 1


# -- the httpx binding keeps the label of a body httpx does not decode -------------------------


async def test_httpx_keeps_the_label_of_a_coding_it_does_not_decode(origin, make_backend):
    from acc.sessions.httpx import CachedClient

    async with CachedClient(cache=make_backend(cache_control=True)) as client:
        url = origin("hx", ("Cache-Control", "max-age=600"), ("Content-Encoding", "x-custom"))
        first = await client.get(url)
        hit = await client.get(url)
        assert hit.extensions["acc"]["from_cache"] is True
        assert hit.headers["Content-Encoding"] == "x-custom"
        assert hit.content == first.content == b"/r/hx #1"
        gz = origin(
            "hx-gzip", ("Cache-Control", "max-age=600"), ("Content-Encoding", "gzip"), body="gzip"
        )
        await client.get(gz)
        decoded = await client.get(gz)
        assert decoded.extensions["acc"]["from_cache"] is True
        assert "Content-Encoding" not in decoded.headers
        assert decoded.content == b"/r/hx-gzip #1"
