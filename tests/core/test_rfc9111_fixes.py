"""RFC 9111 rules the public cache-tests suite found acc breaking, each pinned on the pure policy.

One test (or a few) per fix, no I/O, time passed in. The same behaviours are checked
against a real origin in ``tests/sessions/test_rfc9111_fixes.py``.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from email.utils import format_datetime
from typing import Any

import pytest

from acc.core import DO_NOT_CACHE, NEVER_EXPIRE, CacheBackend
from acc.core.flow.entries import entry_from_head
from acc.core.flow.exchange import ResponseHead
from acc.core.http.cachecontrol import INVALID, age_value, parse_cache_control, parse_http_date
from acc.core.http.freshness import STALE_RETENTION, age_header, explicit_lifetime, header_expires
from acc.core.http.policy import (
    UNSET,
    Fetch,
    RequestOptions,
    Revalidate,
    StaleWhileRevalidate,
    StoreDecision,
    UseCached,
    decide_error,
    decide_lookup,
    decide_store,
    entry_storage_expiry,
    is_unsafe_method,
    merge_not_modified,
    served_entry,
)
from acc.core.http.ranges import byte_range
from acc.core.http.vary import variant_key
from acc.core.models import CachedResponse
from acc.core.settings import CacheSettings

NOW = datetime(2024, 5, 17, 12, 0, tzinfo=timezone.utc)
URL = "https://api.example.com/v1/items"
RFC = CacheSettings.build(cache_control=True)
PLAIN = CacheSettings.build()
Headers = tuple[tuple[str, str], ...]


def http_date(moment: datetime) -> str:
    return format_datetime(moment, usegmt=True)


def store(
    *headers: tuple[str, str],
    settings: CacheSettings = RFC,
    status: int = 200,
    expire_after: Any = UNSET,
    request_headers: Headers = (),
) -> StoreDecision:
    return decide_store(
        method="GET",
        url=URL,
        status=status,
        options=RequestOptions(expire_after=expire_after),
        settings=settings,
        now=NOW,
        headers=tuple(headers),
        request_headers=request_headers,
    )


def entry(
    *headers: tuple[str, str],
    created: datetime = NOW - timedelta(seconds=60),
    expires: datetime | None = NOW - timedelta(seconds=10),
    status: int = 200,
) -> CachedResponse:
    return CachedResponse(
        status, "OK", URL, "GET", headers=headers, body=b"x", created_at=created, expires=expires
    )


def lookup(e: CachedResponse | None, *request_headers: tuple[str, str]) -> Any:
    return decide_lookup(e, RequestOptions(), NOW, settings=RFC, request_headers=request_headers)


# -- defaults with cache_control=True: no fallback freshness, RFC-decided statuses ----------


def test_unset_options_keep_their_old_meaning_without_cache_control() -> None:
    assert (PLAIN.expire_after, PLAIN.expire_after_set) == (NEVER_EXPIRE, False)
    assert (PLAIN.allowed_codes, PLAIN.allowed_codes_set) == (frozenset({200}), False)
    decision = store(settings=PLAIN)
    assert decision == StoreDecision(True, None)  # fresh until deleted, as before
    assert store(settings=PLAIN, status=404).store is False


def test_no_freshness_information_is_not_fresh_forever() -> None:
    # RFC 9111 §4.2: no explicit or heuristic lifetime means stale; without a validator
    # there is nothing to keep.
    decision = store()
    assert (decision.store, decision.reason) == (
        False,
        "stale on arrival, with no validator or stale window",
    )


def test_no_freshness_but_a_validator_is_stored_stale_to_be_revalidated() -> None:
    decision = store(("ETag", '"v1"'))
    assert decision.store is True
    assert decision.expires == NOW


def test_a_given_expire_after_is_the_fallback_again() -> None:
    assert store(settings=CacheSettings.build(cache_control=True, expire_after=60)) == (
        StoreDecision(
            True,
            NOW + timedelta(seconds=60),
            storage_expires=NOW + timedelta(seconds=60) + STALE_RETENTION,
        )
    )
    explicit_never = CacheSettings.build(cache_control=True, expire_after=NEVER_EXPIRE)
    assert store(settings=explicit_never) == StoreDecision(True, None)
    assert store(expire_after=30).expires == NOW + timedelta(seconds=30)  # per request
    assert (
        store(settings=CacheSettings.build(cache_control=True, expire_after=DO_NOT_CACHE)).store
        is False
    )
    # The response's own freshness still comes first.
    assert store(("Cache-Control", "max-age=5"), expire_after=30).expires == NOW + timedelta(
        seconds=5
    )


@pytest.mark.parametrize("status", [200, 203, 204, 300, 301, 308, 404, 405, 410, 414, 501])
def test_heuristically_cacheable_statuses_are_stored_by_default(status: int) -> None:
    assert store(("Cache-Control", "max-age=60"), status=status).store is True
    modified = ("Last-Modified", http_date(NOW - timedelta(days=10)))
    assert store(modified, ("Date", http_date(NOW)), status=status).store is True


@pytest.mark.parametrize("status", [201, 302, 303, 307, 400, 403, 500, 502, 503, 504, 599])
def test_other_final_statuses_need_explicit_freshness(status: int) -> None:
    assert store(("Cache-Control", "max-age=60"), status=status).store is True
    assert store(("Expires", http_date(NOW + timedelta(hours=1))), status=status).store is True
    refused = store(("ETag", '"v"'), status=status)
    assert refused.store is False
    assert "not heuristically cacheable" in refused.reason


@pytest.mark.parametrize("status", [206, 304])
def test_partial_content_and_not_modified_are_never_stored(status: int) -> None:
    # RFC 9111 §3.3: acc does not combine partial content, so a 206 must not be stored.
    assert store(("Cache-Control", "max-age=60"), status=status).store is False


def test_allowed_codes_given_replace_the_rfc_rule() -> None:
    only_200 = CacheSettings.build(cache_control=True, allowed_codes=(200,))
    assert store(("Cache-Control", "max-age=60"), status=404, settings=only_200).store is False
    wide = CacheSettings.build(cache_control=True, allowed_codes=(500,))
    assert store(("ETag", '"v"'), status=500, settings=wide).store is True


def test_backend_defaults_follow_the_mode() -> None:
    rfc = CacheBackend(cache_control=True).settings
    assert not rfc.expire_after_set
    assert not rfc.allowed_codes_set
    given = CacheBackend(
        cache_control=True, expire_after=NEVER_EXPIRE, allowed_codes=[200]
    ).settings
    assert given.expire_after_set
    assert given.allowed_codes_set


# -- Expires must be a valid HTTP-date (RFC 9111 §5.3, RFC 9110 §5.6.7) ----------------------


@pytest.mark.parametrize(
    "value",
    [
        "Thu, 18 Aug 2050 02:01:18 UTC",
        "Thu, 18 Aug 2050 02:01:18 AEST",
        "Thu, 18 Aug 2050 02:01:18 +0000",
        "Thu, 18 Aug 50 02:01:18 GMT",
        "Thu 18 Aug 2050 02:01:18 GMT",
        "Thu, 18  Aug  2050 02:01:18 GMT",
        "Thu, 18-Aug-2050 02:01:18 GMT",
        "Thu, 18 Aug 2050 02.01.18 GMT",
        "Thu, 18 Aug 2050 2:01:18 GMT",
        "Thu, 8 Aug 2050 02:01:18 GMT",
        "2050-08-18T02:01:18Z",
    ],
)
def test_invalid_http_dates_are_unreadable_and_expires_means_expired(value: str) -> None:
    assert parse_http_date(value) is None
    headers = (("Expires", value), ("Date", http_date(NOW)))
    assert explicit_lifetime(headers, parse_cache_control(()), NOW) == timedelta(0)
    assert store(*headers).store is False  # already stale, no validator


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("Thu, 18 Aug 2050 02:01:18 GMT", datetime(2050, 8, 18, 2, 1, 18, tzinfo=timezone.utc)),
        ("Thursday, 18-Aug-50 02:01:18 GMT", datetime(2050, 8, 18, 2, 1, 18, tzinfo=timezone.utc)),
        ("Thu Aug  8 02:01:18 2050", datetime(2050, 8, 8, 2, 1, 18, tzinfo=timezone.utc)),
        ("Thu Aug 18 02:01:18 2050", datetime(2050, 8, 18, 2, 1, 18, tzinfo=timezone.utc)),
        ("THU, 18 AUG 2050 02:01:18 gmt", datetime(2050, 8, 18, 2, 1, 18, tzinfo=timezone.utc)),
    ],
)
def test_the_three_http_date_formats_are_read(value: str, expected: datetime) -> None:
    assert parse_http_date(value) == expected


def test_two_digit_rfc850_years_never_lie_more_than_50_years_ahead() -> None:
    received = datetime(2024, 1, 1, tzinfo=timezone.utc)
    assert parse_http_date("Sunday, 06-Nov-94 08:49:37 GMT", reference=received) == datetime(
        1994, 11, 6, 8, 49, 37, tzinfo=timezone.utc
    )
    assert parse_http_date("Friday, 01-Jan-60 00:00:00 GMT", reference=received) == datetime(
        2060, 1, 1, tzinfo=timezone.utc
    )
    assert parse_http_date("Monday, 01-Jan-80 00:00:00 GMT", reference=received).year == 1980  # type: ignore[union-attr]


def test_two_expires_lines_mean_expired() -> None:
    later = http_date(NOW + timedelta(hours=1))
    headers = (("Expires", later), ("Expires", later), ("Date", http_date(NOW)))
    assert explicit_lifetime(headers, parse_cache_control(()), NOW) == timedelta(0)
    assert store(*headers).store is False


def test_a_valid_expires_still_gives_freshness() -> None:
    headers = (("Expires", http_date(NOW + timedelta(hours=1))), ("Date", http_date(NOW)))
    assert store(*headers).expires == NOW + timedelta(hours=1)


# -- Age: first member of a list; invalid means stale; generated on hits ----------------------


@pytest.mark.parametrize(
    ("lines", "seconds"),
    [
        (("7200, 0",), 7200),
        (("7200,0",), 7200),
        (("0,7200",), 0),
        (("7200", "0"), 7200),
        (("30",), 30),
        (("abc",), INVALID),
        (("-7200",), INVALID),
        (("7200.0",), INVALID),
        (("7200;foo=bar",), INVALID),
    ],
)
def test_age_is_read_by_its_first_member(lines: tuple[str, ...], seconds: int) -> None:
    assert age_value(tuple(("Age", line) for line in lines)) == seconds


def test_an_age_list_is_not_ignored() -> None:
    headers = (("Date", http_date(NOW)), ("Cache-Control", "max-age=3600"), ("Age", "7200, 0"))
    assert header_expires(
        headers, parse_cache_control(["max-age=3600"]), 200, NOW
    ) == NOW - timedelta(hours=1)
    assert store(*headers).store is False  # older than its lifetime, no validator


def test_an_unreadable_age_makes_the_response_stale() -> None:
    headers = (("Cache-Control", "max-age=3600"), ("Age", "abc"), ("ETag", '"v"'))
    assert store(*headers).expires == NOW


def test_a_hit_carries_its_current_age() -> None:
    stored = entry(("Cache-Control", "max-age=600"), expires=NOW + timedelta(minutes=9))
    served = served_entry(stored, NOW, RFC)
    assert [v for n, v in served.headers if n == "Age"] == ["60"]
    assert served.body == stored.body
    assert served.expires == stored.expires


def test_a_stored_age_is_updated_not_repeated() -> None:
    stored = entry(
        ("Age", "30"), ("Cache-Control", "max-age=600"), expires=NOW + timedelta(minutes=9)
    )
    served = served_entry(stored, NOW, RFC)
    assert [v for n, v in served.headers if n.lower() == "age"] == ["90"]
    assert age_header((("age", "5"), ("AGE", "6")), NOW, NOW + timedelta(seconds=3)) == (
        ("Age", "8"),
    )


def test_without_cache_control_a_hit_is_served_as_stored() -> None:
    stored = entry(("Age", "30"))
    assert served_entry(stored, NOW, PLAIN) is stored


# -- Content-Encoding is dropped only when the body really was decoded -------------------------


def _head(decoded: bool) -> ResponseHead:
    return ResponseHead(
        status=200,
        reason="OK",
        url=URL,
        method="GET",
        headers=(("Content-Encoding", "gzip"), ("Content-Length", "99"), ("ETag", '"v"')),
        body_decoded=decoded,
    )


def test_an_undecoded_body_keeps_its_content_encoding() -> None:
    kept = entry_from_head(
        _head(False), b"\x1f\x8b...", created_at=NOW, expires=None, redacted_params=frozenset()
    )
    assert ("Content-Encoding", "gzip") in kept.headers
    assert ("Content-Length", "5") in kept.headers


def test_a_decoded_body_loses_its_content_encoding() -> None:
    decoded = entry_from_head(
        _head(True), b"plain", created_at=NOW, expires=None, redacted_params=frozenset()
    )
    assert all(n.lower() != "content-encoding" for n, _ in decoded.headers)


def test_a_304_never_relabels_the_stored_body() -> None:
    stored = entry(
        ("Content-Encoding", "x-custom"),
        ("Content-MD5", "A"),
        ("Content-Range", "r"),
        ("ETag", '"v"'),
    )
    headers = (
        ("Content-Encoding", "other"),
        ("Content-MD5", "B"),
        ("Content-Range", "s"),
        ("X", "1"),
    )
    merged = merge_not_modified(stored, headers, StoreDecision(True, NOW), NOW)
    assert ("Content-Encoding", "x-custom") in merged.headers
    assert ("Content-MD5", "A") in merged.headers
    assert ("Content-Range", "r") in merged.headers
    assert ("X", "1") in merged.headers


# -- methods not known to be safe invalidate (RFC 9111 §4.4) ----------------------------------


@pytest.mark.parametrize("method", ["POST", "PUT", "PATCH", "DELETE", "M-SEARCH", "PURGE", "lock"])
def test_methods_not_known_to_be_safe_invalidate(method: str) -> None:
    assert is_unsafe_method(method)


@pytest.mark.parametrize("method", ["GET", "HEAD", "OPTIONS", "TRACE", "QUERY", "PROPFIND"])
def test_safe_methods_do_not_invalidate(method: str) -> None:
    assert not is_unsafe_method(method)


# -- stale-while-revalidate ignores request directives it does not know (RFC 9111 §5.2.3) ------


def test_an_unknown_request_directive_does_not_disable_stale_while_revalidate() -> None:
    stale = entry(("Cache-Control", "max-age=50, stale-while-revalidate=60"), ("ETag", '"v"'))
    assert isinstance(lookup(stale), StaleWhileRevalidate)
    assert isinstance(lookup(stale, ("Cache-Control", "nothing-to-see-here")), StaleWhileRevalidate)
    assert isinstance(lookup(stale, ("Pragma", "foo")), StaleWhileRevalidate)


@pytest.mark.parametrize("directive", ["max-age=5", "min-fresh=1", "no-cache", "max-stale=1"])
def test_a_request_asking_for_fresher_gets_no_stale_while_revalidate(directive: str) -> None:
    stale = entry(("Cache-Control", "max-age=50, stale-while-revalidate=60"), ("ETag", '"v"'))
    assert isinstance(lookup(stale, ("Cache-Control", directive)), Revalidate)


# -- entries without validators stay for a request's max-stale (RFC 9111 §5.2.1.2) -------------


def test_an_entry_without_validators_is_kept_for_max_stale() -> None:
    decision = store(("Cache-Control", "max-age=60"))
    assert decision.storage_expires == NOW + timedelta(seconds=60) + STALE_RETENTION
    kept = entry(
        ("Cache-Control", "max-age=60"),
        created=NOW - timedelta(hours=2),
        expires=NOW - timedelta(hours=1),
    )
    assert entry_storage_expiry(kept, RFC) == kept.expires + STALE_RETENTION  # type: ignore[operator]
    assert lookup(kept, ("Cache-Control", "max-stale=7200")) == UseCached(kept)
    assert isinstance(lookup(kept), Fetch)


@pytest.mark.parametrize("directive", ["max-age=60, must-revalidate", "max-age=60, no-cache"])
def test_no_retention_where_max_stale_may_not_serve(directive: str) -> None:
    decision = store(("Cache-Control", directive))
    assert decision.store is False or decision.storage_expires == decision.expires


def test_no_retention_without_cache_control() -> None:
    decision = store(settings=CacheSettings.build(expire_after=60))
    assert decision.storage_expires == NOW + timedelta(seconds=60)


def test_stale_if_error_never_serves_a_no_cache_entry() -> None:
    settings = CacheSettings.build(cache_control=True, stale_if_error=True)
    no_cache = entry(("Cache-Control", "no-cache"), ("ETag", '"v"'))
    assert decide_error(no_cache, status=503, settings=settings, now=NOW) is None
    plain = entry(("ETag", '"v"'))
    assert decide_error(plain, status=503, settings=settings, now=NOW) is not None


# -- beyond the browsers: must-understand, public, Vary normalisation -------------------------


def test_must_understand_stores_only_statuses_acc_knows_and_then_overrides_no_store() -> None:
    assert store(("Cache-Control", "max-age=60, must-understand"), status=599).store is False
    assert store(("Cache-Control", "max-age=60, must-understand, no-store")).store is True
    assert store(("Cache-Control", "max-age=60, no-store")).store is False


def test_public_makes_any_final_status_heuristically_cacheable() -> None:
    modified = ("Last-Modified", http_date(NOW - timedelta(days=10)))
    assert store(modified, ("Cache-Control", "public"), status=599).store is True
    assert store(modified, status=599).store is False


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("1,2", " 1, 2 "),
        ("1, 2", "1,2"),
        ("en, de", " en ,   de"),
    ],
)
def test_vary_ignores_list_whitespace(a: str, b: str) -> None:
    assert variant_key("k", ("foo",), (("Foo", a),)) == variant_key("k", ("foo",), (("Foo", b),))


def test_vary_ignores_case_where_values_are_case_insensitive() -> None:
    names = ("accept-language",)
    assert variant_key("k", names, (("Accept-Language", "en, de"),)) == variant_key(
        "k", names, (("Accept-Language", "eN, De"),)
    )
    assert variant_key("k", ("foo",), (("Foo", "a"),)) != variant_key(
        "k", ("foo",), (("Foo", "A"),)
    )


def test_vary_keeps_member_order() -> None:
    names = ("accept-language",)
    assert variant_key("k", names, (("Accept-Language", "en, de"),)) != variant_key(
        "k", names, (("Accept-Language", "de, en"),)
    )


# -- a byte range out of a stored complete response (RFC 9110 §14) -----------------------------


@pytest.mark.parametrize(
    ("value", "selected"),
    [
        ("bytes=0-1", (0, 1)),
        ("bytes=1-", (1, 10)),
        ("bytes=-1", (10, 10)),
        ("bytes=-50", (0, 10)),
        ("bytes=5-500", (5, 10)),
        ("BYTES = 2 - 3", (2, 3)),
        ("bytes=11-", None),
        ("bytes=3-2", None),
        ("bytes=-0", None),
        ("bytes=0-1,3-4", None),
        ("items=0-1", None),
        ("bytes=a-b", None),
    ],
)
def test_one_byte_range_is_read(value: str, selected: tuple[int, int] | None) -> None:
    assert byte_range(value, 11) == selected


def test_a_range_request_gets_its_part_of_a_stored_200() -> None:
    whole = CachedResponse(
        200,
        "OK",
        URL,
        "GET",
        headers=(("Content-Length", "11"), ("ETag", '"v"')),
        body=b"01234567890",
    )
    part = served_entry(whole, NOW, RFC, request_headers=(("Range", "bytes=0-1"),))
    assert (part.status, part.reason, part.body) == (206, "Partial Content", b"01")
    assert ("Content-Range", "bytes 0-1/11") in part.headers
    assert ("Content-Length", "2") in part.headers
    assert ("ETag", '"v"') in part.headers


@pytest.mark.parametrize(
    ("method", "status", "headers", "settings"),
    [
        ("HEAD", 200, (("Range", "bytes=0-1"),), RFC),
        ("GET", 404, (("Range", "bytes=0-1"),), RFC),
        ("GET", 200, (("Range", "bytes=0-1"), ("If-Range", '"v"')), RFC),
        ("GET", 200, (("Range", "bytes=50-"),), RFC),
        ("GET", 200, (("Range", "bytes=0-1"),), PLAIN),
    ],
)
def test_otherwise_the_whole_response_answers(
    method: str, status: int, headers: Headers, settings: CacheSettings
) -> None:
    whole = CachedResponse(status, "OK", URL, "GET", body=b"01234567890")
    served = served_entry(whole, NOW, settings, method=method, request_headers=headers)
    assert (served.status, served.body) == (status, b"01234567890")
