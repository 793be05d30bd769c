"""Fuzzing the core with hypothesis (issue 12): the codec, the HTTP header parsers, the key
builder, and hostile stored entries. Nothing a server sends or storage holds may raise
anything but the documented errors, or make a request fail.

Every property runs in two profiles (tests/support/acc_fuzz.py): quick here, and long
with ``pytest -m fuzz_long``.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import string
from datetime import datetime, timedelta, timezone
from typing import Any

from acc_fuzz import fuzz_pair
from hypothesis import strategies as st

from acc.core import CacheBackend, CachedResponse, CacheRequest
from acc.core.codec import Codec, DecodeError
from acc.core.flow.entries import unservable
from acc.core.http.cachecontrol import (
    DELTA_SECONDS_CAP,
    INVALID,
    Directives,
    etags_match,
    parse_cache_control,
    parse_delta_seconds,
    parse_http_date,
    vary_names,
)
from acc.core.http.freshness import current_age, header_expires, heuristic_lifetime, initial_age
from acc.core.keys import CacheRequest as KeyRequest
from acc.core.keys import KeySettings, create_key, normalize_url, redact_url
from acc.core.models import RedirectHop

UTC = timezone.utc
HEX32 = re.compile(r"[0-9a-f]{32}")
CODECS = (Codec(), Codec("s3cret"), Codec(["new", "old"]))

# -- strategies ---------------------------------------------------------------------------------

TEXT = st.text(max_size=30)  # any code point, lone surrogates included
HEADER_NAMES = st.sampled_from(
    [
        "Cache-Control",
        "Expires",
        "Date",
        "Age",
        "Vary",
        "ETag",
        "Last-Modified",
        "Pragma",
        "Set-Cookie",
        "Location",
        "Content-Location",
        "Content-Length",
        "Content-Type",
        "Link",
    ]
) | st.text(min_size=1, max_size=12)
DIRECTIVE_WORDS = st.sampled_from(
    [
        "max-age",
        "s-maxage",
        "no-cache",
        "no-store",
        "must-revalidate",
        "immutable",
        "private",
        "public",
        "max-stale",
        "min-fresh",
        "only-if-cached",
        "stale-while-revalidate",
        "stale-if-error",
        "=",
        ",",
        '"',
        "\\",
        " ",
        "0",
        "-1",
        "99999999999999999999999",
        "1e3",
        "٣",  # a non-ASCII digit
    ]
)
CACHE_CONTROL = st.lists(DIRECTIVE_WORDS | TEXT, max_size=10).map("".join)
HTTP_DATES = (
    st.sampled_from(
        [
            "Wed, 21 Oct 2015 07:28:00 GMT",
            "Sunday, 06-Nov-94 08:49:37 GMT",
            "Sun Nov  6 08:49:37 1994",
            "Mon, 01 Jan 0001 00:00:00 GMT",
            "Fri, 31 Dec 9999 23:59:59 GMT",
            "Fri, 31 Dec 9999 23:59:59 +2359",
            "Thu, 01 Jan 1970 00:00:00 -2359",
            "0",
            "-1",
            "",
            "Wed, 32 Oct 2015 07:28:00 GMT",
            "Wed, 21 Oct 2015 25:61:61 GMT",
        ]
    )
    | TEXT
)
HEADER_VALUES = CACHE_CONTROL | HTTP_DATES | TEXT
HEADERS = st.lists(st.tuples(HEADER_NAMES, HEADER_VALUES), max_size=8).map(tuple)
MOMENTS = st.datetimes(
    min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30), timezones=st.just(UTC)
)
NOW = datetime(2024, 5, 17, 12, 0, tzinfo=UTC)
URLS = (
    st.sampled_from(
        [
            "https://example.com/x",
            "http://[",
            "http://[::1]:8080/a",
            "http://a:99999/",
            "http://user:pw@example.com/?api_key=1",
            "https://example.com/?a=1&a=2&api_key=k#f",
            "/relative?x=1",
            "",
            "javascript:alert(1)",
            "http://xn--/",
            "https://exa mple.com/",
        ]
    )
    | st.text(max_size=40)
    | st.builds(
        lambda host, path, query: f"https://{host}/{path}?{query}",
        st.text(string.ascii_letters + string.digits + ".-_~[]:%@", max_size=12),
        TEXT,
        TEXT,
    )
)


def _responses(urls: st.SearchStrategy[str] = URLS) -> st.SearchStrategy[CachedResponse]:
    hops = st.builds(
        RedirectHop,
        status=st.integers(-1, 1100),
        reason=TEXT,
        url=urls,
        method=TEXT,
        headers=HEADERS,
    )
    return st.builds(
        CachedResponse,
        status=st.integers(-1, 1100),
        reason=TEXT,
        url=urls,
        method=st.sampled_from(["GET", "HEAD", "POST", "get", ""]) | TEXT,
        headers=HEADERS,
        request_headers=HEADERS,
        body=st.binary(max_size=256),
        created_at=MOMENTS,
        expires=st.none() | MOMENTS,
        history=st.lists(hops, max_size=2),
    )


RESPONSES = _responses()


# -- the codec: arbitrary bytes, truncations, bit flips ------------------------------------------


def check_arbitrary_bytes(data: bytes, key: str) -> None:
    for codec in CODECS:
        for decode in (codec.decode, codec.decode_record):
            with contextlib.suppress(DecodeError):
                decode(data, key=key)


test_codec_arbitrary_bytes, test_codec_arbitrary_bytes_long = fuzz_pair(
    check_arbitrary_bytes, data=st.binary(max_size=400), key=TEXT
)


def check_damaged_entries(response: CachedResponse, key: str, damage: st.DataObject) -> None:
    """A truncation, an extension, or a burst of up to 32 changed bits: always a miss.

    (A CRC-32 detects every burst error of up to 32 bits; an HMAC detects everything.)
    """
    for codec in CODECS:
        data = codec.encode(response, key=key)
        assert codec.decode(data, key=key) == response
        cut = damage.draw(st.integers(0, len(data) - 1), label="truncated to")
        damaged = [data[:cut], data + damage.draw(st.binary(min_size=1, max_size=8))]
        start = damage.draw(st.integers(0, len(data) - 1), label="burst at")
        width = min(4, len(data) - start)
        mask = damage.draw(st.binary(min_size=width, max_size=width).filter(any), label="mask")
        burst = bytearray(data)
        for offset, bits in enumerate(mask):
            burst[start + offset] ^= bits
        damaged.append(bytes(burst))
        for bad in damaged:
            try:
                codec.decode(bad, key=key)
            except DecodeError:
                continue
            raise AssertionError(f"a damaged entry decoded ({len(bad)} of {len(data)} bytes)")


test_codec_damaged_entries, test_codec_damaged_entries_long = fuzz_pair(
    check_damaged_entries, response=RESPONSES, key=TEXT, damage=st.data()
)


def check_records(payload: bytes, key: str, other: str, flip: int) -> None:
    for codec in CODECS:
        data = codec.encode_record(payload, key=key)
        assert codec.decode_record(data, key=key) == payload
        flipped = bytearray(data)
        flipped[flip % len(data)] ^= 1 << (flip % 8)
        for bad, under in ((bytes(flipped), key), (data[:-1], key), (data, other)):
            if under == key and bad == data:
                continue
            try:
                codec.decode_record(bad, key=under)
            except DecodeError:
                continue
            assert under == key == other, "a damaged or moved record decoded"


test_codec_records, test_codec_records_long = fuzz_pair(
    check_records, payload=st.binary(max_size=100), key=TEXT, other=TEXT, flip=st.integers(0)
)


# -- the HTTP header parsers ---------------------------------------------------------------------


def check_cache_control(lines: list[str]) -> None:
    directives = parse_cache_control(lines)
    assert isinstance(directives, Directives)
    for name, _value in directives.items:
        assert name == name.lower()
        assert name
    for seconds in (
        directives.max_age,
        directives.min_fresh,
        directives.max_stale,
        directives.stale_while_revalidate,
        directives.stale_if_error,
    ):
        assert seconds is None or INVALID <= seconds <= DELTA_SECONDS_CAP
    for flag in (
        directives.no_store,
        directives.no_cache,
        directives.must_revalidate,
        directives.immutable,
        directives.only_if_cached,
    ):
        assert isinstance(flag, bool)


test_parse_cache_control, test_parse_cache_control_long = fuzz_pair(
    check_cache_control, lines=st.lists(CACHE_CONTROL, max_size=3)
)


def check_dates_and_deltas(text: str, other: str) -> None:
    moment = parse_http_date(text)
    assert moment is None or moment.utcoffset() == timedelta(0)
    seconds = parse_delta_seconds(text)
    assert seconds == INVALID or 0 <= seconds <= DELTA_SECONDS_CAP
    for weak in (True, False):
        assert isinstance(etags_match(text, other, weak=weak), bool)


test_parse_dates_and_deltas, test_parse_dates_and_deltas_long = fuzz_pair(
    check_dates_and_deltas, text=HTTP_DATES | CACHE_CONTROL, other=TEXT
)


def check_vary(headers: tuple[tuple[str, str], ...]) -> None:
    names = vary_names(headers)
    assert names == ("*",) or (list(names) == sorted(set(names)))
    assert all(name == name.lower() for name in names)


test_parse_vary, test_parse_vary_long = fuzz_pair(check_vary, headers=HEADERS)


def check_freshness(
    headers: tuple[tuple[str, str], ...], received: datetime, later: timedelta, status: int
) -> None:
    directives = parse_cache_control(v for n, v in headers if n.lower() == "cache-control")
    age = initial_age(headers, received)
    assert age >= timedelta(0)
    try:
        now = received + later
    except OverflowError:
        now = received
    assert current_age(headers, received, now) >= age
    expires = header_expires(headers, directives, status, received)
    assert expires is None or expires.tzinfo is not None
    lifetime = heuristic_lifetime(headers, status, received)
    assert lifetime is None or timedelta(0) < lifetime <= timedelta(days=1)


test_freshness, test_freshness_long = fuzz_pair(
    check_freshness,
    headers=HEADERS,
    received=MOMENTS,
    later=st.timedeltas(min_value=timedelta(0), max_value=timedelta(days=3650)),
    status=st.integers(100, 599),
)


# -- the key builder ------------------------------------------------------------------------------

JSONISH = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | TEXT,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(TEXT, inner, max_size=3),
    max_leaves=10,
)
BODIES = st.one_of(
    st.tuples(st.just("none"), st.none()),
    st.tuples(st.just("bytes"), st.binary(max_size=64)),
    st.tuples(st.just("form"), st.lists(st.tuples(TEXT, TEXT), max_size=4).map(tuple)),
    st.tuples(st.just("json"), JSONISH),
)
KEY_SETTINGS = st.builds(
    KeySettings,
    ignored_params=st.frozensets(st.sampled_from(["api_key", "token", "X-Api-Key", "Cookie"])),
    include_headers=st.booleans(),
    credential_params=st.frozensets(st.sampled_from(["api_key", "sig"])),
)


def check_keys(
    method: str,
    url: str,
    headers: tuple[tuple[str, str], ...],
    body: tuple[str, Any],
    credentials: tuple[str, ...],
    settings: KeySettings,
) -> None:
    request = KeyRequest(method, url, headers, body[0], body[1], credentials)
    try:
        key = create_key(request, settings)
    except ValueError:
        # Only a URL that does not parse is refused (a client never sends one).
        try:
            normalize_url(url)
        except ValueError:
            return
        raise
    assert HEX32.fullmatch(key)
    assert create_key(request, settings) == key  # deterministic
    # Another value of a credential header is always another key.
    other = KeyRequest(method, url, (*headers, ("Authorization", "x-other")), *body, credentials)
    if "Cookie" not in settings.ignored_params and not any(
        name.lower() == "authorization" for name, _ in headers
    ):
        assert create_key(other, settings) != key
    redacted = redact_url(url, settings.ignored_params | settings.credential_params)
    assert isinstance(redacted, str)


test_keys, test_keys_long = fuzz_pair(
    check_keys,
    method=st.sampled_from(["GET", "get", "POST", "HEAD"]) | TEXT,
    url=URLS,
    headers=HEADERS,
    body=BODIES,
    credentials=st.lists(st.sampled_from(["auth:Basic x", "cookie:a=1"]) | TEXT, max_size=2).map(
        tuple
    ),
    settings=KEY_SETTINGS,
)


# -- hostile stored entries -----------------------------------------------------------------------

BACKEND_OPTIONS = st.fixed_dictionaries(
    {
        "cache_control": st.booleans(),
        "stale_if_error": st.sampled_from([False, True, 60]),
        "stale_while_revalidate": st.sampled_from([False, True, 60]),
        "secret_key": st.sampled_from([None, "s3cret"]),
        "store_cookies": st.booleans(),
    }
)


async def _fetch_over(stored: bytes, options: dict[str, Any], request_headers: Any) -> None:
    backend = CacheBackend(clock=lambda: NOW, **options)
    request = CacheRequest("GET", "https://example.com/x", headers=request_headers)
    key = backend.create_key(request)
    await backend.responses.write(key, stored)
    sent: list[CacheRequest] = []

    async def send(request: CacheRequest) -> CachedResponse:
        sent.append(request)
        return CachedResponse(200, "OK", request.url, "GET", body=b"fresh", created_at=NOW)

    try:
        result = await backend.fetch(request, send)
        if result.from_cache:
            # Whatever is served from storage could be served by every binding.
            assert unservable(result.response) is None
            assert not sent or result.revalidated or result.stale
        else:
            assert result.response.body == b"fresh"
        # Something that could not be decoded or served was counted and is gone.
        assert backend.stats.errors in (0, 1)
    finally:
        await backend.close()
        await asyncio.sleep(0)  # let a background refresh notice the close


def check_hostile_entries(
    response: CachedResponse,
    options: dict[str, Any],
    request_headers: tuple[tuple[str, str], ...],
) -> None:
    for codec_key in (None, "s3cret"):
        # Written validly, with or without the reader's key: only its contents are hostile.
        backend = CacheBackend(secret_key=codec_key)
        request = CacheRequest("GET", "https://example.com/x", headers=request_headers)
        key = backend.create_key(request)
        stored = backend.codec.encode(response, key=key)
        asyncio.run(_fetch_over(stored, options, request_headers))


test_hostile_entries, test_hostile_entries_long = fuzz_pair(
    check_hostile_entries, response=RESPONSES, options=BACKEND_OPTIONS, request_headers=HEADERS
)


def check_hostile_bytes(data: bytes, options: dict[str, Any]) -> None:
    asyncio.run(_fetch_over(data, options, ()))


test_hostile_bytes, test_hostile_bytes_long = fuzz_pair(
    check_hostile_bytes, data=st.binary(max_size=300), options=BACKEND_OPTIONS
)
