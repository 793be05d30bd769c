"""Fuzzing the bindings' response building (issue 12, item 2): every entry the core lets
through (``acc.core.flow.entries.unservable`` says nothing against it) becomes an aiohttp
and an httpx response without an error, through the bindings' own code.

Quick in the suite, long with ``pytest -m fuzz_long`` (tests/support/acc_fuzz.py).
"""

from __future__ import annotations

import asyncio
import string
from datetime import datetime, timezone

import httpx
import yarl
from acc_fuzz import fuzz_pair
from hypothesis import assume
from hypothesis import strategies as st

from acc.core import CacheBackend, CachedResponse
from acc.core.flow.entries import unservable
from acc.core.flow.outcome import Outcome
from acc.core.models import RedirectHop
from acc.sessions.aiohttp import CachedSession
from acc.sessions.httpx.response import response_for

NOW = datetime(2024, 5, 17, 12, 0, tzinfo=timezone.utc)
TEXT = st.text(max_size=20)
HOST_TEXT = st.text(string.ascii_letters + string.digits + ".-_~:[]%@", min_size=1, max_size=15)
HOSTS = (
    HOST_TEXT
    | st.sampled_from(["example.com", "127.0.0.1", "[::1]", "xn--bcher-kva.de", "xn--ls8h", "a"])
    | st.builds(lambda label: f"xn--{label}", st.text(string.ascii_lowercase + "-0123456789"))
)
URLS = st.builds(
    lambda scheme, host, port, path, query, fragment: (
        f"{scheme}://{host}{port}/{path}{query}{fragment}"
    ),
    st.sampled_from(["http", "https", "HTTP", "ftp"]),
    HOSTS,
    st.sampled_from(["", ":", ":80", ":8080", ":65535", ":0"]) | st.text("0123456789:", max_size=6),
    TEXT,
    st.just("") | TEXT.map(lambda q: f"?{q}"),
    st.just("") | TEXT.map(lambda f: f"#{f}"),
)
HEADER_PAIRS = st.lists(
    st.tuples(
        st.sampled_from(["Set-Cookie", "Content-Type", "Link", "Location", "ETag"]) | TEXT,
        TEXT | st.sampled_from(["a=1; Path=/", "x=; Max-Age=abc; Domain=..", "text/html; q=?"]),
    ),
    max_size=6,
).map(tuple)
ENTRIES = st.builds(
    CachedResponse,
    status=st.integers(100, 999),
    reason=TEXT,
    url=URLS,
    method=st.sampled_from(["GET", "HEAD", "POST"]),
    headers=HEADER_PAIRS,
    request_headers=HEADER_PAIRS,
    body=st.binary(max_size=64),
    created_at=st.just(NOW),
    history=st.lists(
        st.builds(
            RedirectHop,
            status=st.integers(300, 399),
            reason=TEXT,
            url=URLS,
            method=st.just("GET"),
            headers=HEADER_PAIRS,
        ),
        max_size=2,
    ),
)


def check_urls_clients_parse(url: str) -> None:
    entry = CachedResponse(200, "OK", url, "GET", created_at=NOW)
    assume(unservable(entry) is None)
    parsed = yarl.URL(url)
    str(parsed)
    assert parsed.host is not None
    parsed.raw_host  # noqa: B018
    httpx.URL(url)


test_urls_clients_parse, test_urls_clients_parse_long = fuzz_pair(
    check_urls_clients_parse, url=URLS
)


async def _build_both(entry: CachedResponse) -> None:
    outcome: Outcome[httpx.Response] = Outcome(entry=entry, cache_key="k", from_cache=True)
    # aiohttp: the session's own path, cookie restoring included (store_cookies=True).
    async with CachedSession(cache=CacheBackend(store_cookies=True)) as session:
        response = session._response(outcome)  # type: ignore[arg-type]
        for source in (response, *response.history):
            seen = [source.status, source.reason, source.ok, source.url, source.real_url]
            seen += [source.host, source.headers, source.raw_headers, source.cookies]
            assert all(value is not None for value in seen)
            assert source.request_info.url == source.url
        assert await response.read() == entry.body
        async for _chunk in response.content.iter_chunked(8):
            pass
        response.release()
    # httpx: the transport's response, and what httpx's client does with it.
    request = httpx.Request("GET", "https://example.com/x")
    built = response_for(outcome, request, NOW)
    httpx.Cookies().extract_cookies(built)
    assert built.status_code == entry.status
    assert isinstance(built.reason_phrase, str)
    assert len(built.headers.multi_items()) == len(entry.headers)
    assert await built.aread() == entry.body


def check_entries_become_responses(entry: CachedResponse) -> None:
    assume(unservable(entry) is None)
    asyncio.run(_build_both(entry))


test_entries_become_responses, test_entries_become_responses_long = fuzz_pair(
    check_entries_become_responses, entry=ENTRIES
)
