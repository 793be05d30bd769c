"""The cache policy (acc.core.http.policy): pure decisions, time passed in."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

import attrs
import pytest

from acc.core import DO_NOT_CACHE, NEVER_EXPIRE
from acc.core.http.policy import (
    UNSET,
    Fetch,
    GatewayTimeout,
    RequestOptions,
    Revalidate,
    StoreDecision,
    UseCached,
    conditional_headers,
    decide_lookup,
    decide_store,
    is_cacheable_method,
    merge_not_modified,
)
from acc.core.models import CachedResponse
from acc.core.settings import CacheSettings

NOW = datetime(2024, 5, 17, 12, 0, tzinfo=timezone.utc)
ETAG = '"abc"'
LAST_MODIFIED = "Wed, 21 Oct 2015 07:28:00 GMT"


def entry(
    *, expires: datetime | None = None, headers: tuple[tuple[str, str], ...] = ()
) -> CachedResponse:
    return CachedResponse(
        200,
        "OK",
        "https://example.com/",
        "GET",
        headers=headers,
        body=b"body",
        created_at=NOW - timedelta(hours=1),
        expires=expires,
    )


FRESH = entry(expires=NOW + timedelta(minutes=5))
FOREVER = entry(expires=None)
EXPIRED = entry(expires=NOW - timedelta(seconds=1))
EXPIRING_NOW = entry(expires=NOW)  # expires == now counts as expired
EXPIRED_ETAG = entry(expires=NOW - timedelta(seconds=1), headers=(("ETag", ETAG),))
EXPIRED_LM = entry(expires=NOW - timedelta(seconds=1), headers=(("Last-Modified", LAST_MODIFIED),))
FRESH_ETAG = entry(expires=NOW + timedelta(minutes=5), headers=(("etag", ETAG),))
FRESH_BOTH = entry(
    expires=NOW + timedelta(minutes=5),
    headers=(("ETag", ETAG), ("Last-Modified", LAST_MODIFIED)),
)

# -- decide_lookup -----------------------------------------------------------------------------

LOOKUP_TABLE: list[tuple[str, CachedResponse | None, RequestOptions, Any]] = [
    ("no entry", None, RequestOptions(), Fetch("miss")),
    ("no entry, refresh", None, RequestOptions(refresh=True), Fetch("miss")),
    ("fresh", FRESH, RequestOptions(), UseCached(FRESH)),
    ("never expires", FOREVER, RequestOptions(), UseCached(FOREVER)),
    ("fresh with validators", FRESH_ETAG, RequestOptions(), UseCached(FRESH_ETAG)),
    ("expired, no validators", EXPIRED, RequestOptions(), Fetch("expired")),
    ("expires exactly now", EXPIRING_NOW, RequestOptions(), Fetch("expired")),
    (
        "expired with ETag",
        EXPIRED_ETAG,
        RequestOptions(),
        Revalidate(EXPIRED_ETAG, (("If-None-Match", ETAG),)),
    ),
    (
        "expired with Last-Modified",
        EXPIRED_LM,
        RequestOptions(),
        Revalidate(EXPIRED_LM, (("If-Modified-Since", LAST_MODIFIED),)),
    ),
    (
        "refresh, with validators",
        FRESH_BOTH,
        RequestOptions(refresh=True),
        Revalidate(FRESH_BOTH, (("If-None-Match", ETAG), ("If-Modified-Since", LAST_MODIFIED))),
    ),
    ("refresh, without validators", FRESH, RequestOptions(refresh=True), Fetch("refresh")),
    ("force_refresh, fresh", FRESH, RequestOptions(force_refresh=True), Fetch("force_refresh")),
    (
        "force_refresh, validators",
        FRESH_ETAG,
        RequestOptions(force_refresh=True),
        Fetch("force_refresh"),
    ),
    (
        "force_refresh beats refresh",
        EXPIRED_ETAG,
        RequestOptions(force_refresh=True, refresh=True),
        Fetch("force_refresh"),
    ),
    ("only_if_cached, fresh", FRESH, RequestOptions(only_if_cached=True), UseCached(FRESH)),
    ("only_if_cached, forever", FOREVER, RequestOptions(only_if_cached=True), UseCached(FOREVER)),
    ("only_if_cached, none", None, RequestOptions(only_if_cached=True), GatewayTimeout()),
    ("only_if_cached, expired", EXPIRED, RequestOptions(only_if_cached=True), GatewayTimeout()),
    (
        "only_if_cached, expired with validators",
        EXPIRED_ETAG,
        RequestOptions(only_if_cached=True),
        GatewayTimeout(),
    ),
    (
        "only_if_cached never goes to the network, even with refresh",
        FRESH_ETAG,
        RequestOptions(only_if_cached=True, refresh=True),
        UseCached(FRESH_ETAG),
    ),
]


@pytest.mark.parametrize(
    ("stored", "options", "expected"),
    [row[1:] for row in LOOKUP_TABLE],
    ids=[row[0] for row in LOOKUP_TABLE],
)
def test_decide_lookup(
    stored: CachedResponse | None, options: RequestOptions, expected: Any
) -> None:
    decision = decide_lookup(stored, options, NOW)
    assert decision == expected
    assert type(decision) is type(expected)


def test_decide_lookup_uses_the_time_passed_in() -> None:
    assert isinstance(decide_lookup(FRESH, RequestOptions(), NOW), UseCached)
    later = NOW + timedelta(minutes=5)
    assert decide_lookup(FRESH, RequestOptions(), later) == Fetch("expired")


def test_conditional_headers() -> None:
    assert conditional_headers(FRESH) == ()
    assert conditional_headers(FRESH_BOTH) == (
        ("If-None-Match", ETAG),
        ("If-Modified-Since", LAST_MODIFIED),
    )


# -- decide_store: expiration precedence --------------------------------------------------------

URL = "https://api.example.com/v1/items"
IN = timedelta


# (id, request expire_after, urls_expire_after, session expire_after, expected expires)
PRECEDENCE: list[tuple[str, Any, dict[str, Any] | None, Any, datetime | str | None]] = [
    ("session only", UNSET, None, 60, NOW + IN(seconds=60)),
    ("session default never", UNSET, None, NEVER_EXPIRE, None),
    ("session timedelta", UNSET, None, IN(hours=1), NOW + IN(hours=1)),
    ("urls beats session", UNSET, {"api.example.com": 30}, 60, NOW + IN(seconds=30)),
    ("urls never beats session", UNSET, {"api.example.com": NEVER_EXPIRE}, 60, None),
    ("urls no match: session", UNSET, {"other.com": 30}, 60, NOW + IN(seconds=60)),
    (
        "urls first match wins",
        UNSET,
        {"api.example.com/v1": 10, "api.example.com": 20},
        60,
        NOW + IN(seconds=10),
    ),
    ("request beats urls and session", 5, {"api.example.com": 30}, 60, NOW + IN(seconds=5)),
    ("request beats session", IN(minutes=2), None, 60, NOW + IN(minutes=2)),
    ("request None is never", None, {"api.example.com": 30}, 60, None),
    ("request NEVER_EXPIRE is never", NEVER_EXPIRE, {"api.example.com": 30}, 60, None),
    (
        "request absolute datetime",
        NOW + IN(days=1),
        {"api.example.com": 30},
        60,
        NOW + IN(days=1),
    ),
    ("request DO_NOT_CACHE beats all", DO_NOT_CACHE, {"api.example.com": 30}, 60, "not stored"),
    ("urls DO_NOT_CACHE beats session", UNSET, {"api.example.com": DO_NOT_CACHE}, 60, "not stored"),
    ("session DO_NOT_CACHE", UNSET, None, DO_NOT_CACHE, "not stored"),
    ("request overrides DO_NOT_CACHE urls", 5, {"api.example.com": 0}, 0, NOW + IN(seconds=5)),
    ("past datetime is not stored", NOW - IN(seconds=1), None, 60, "not stored"),
]


@pytest.mark.parametrize(
    ("request_expire", "urls_expire_after", "session_expire", "expected"),
    [row[1:] for row in PRECEDENCE],
    ids=[row[0] for row in PRECEDENCE],
)
def test_expiration_precedence(
    request_expire: Any,
    urls_expire_after: dict[str, Any] | None,
    session_expire: Any,
    expected: datetime | str | None,
) -> None:
    settings = CacheSettings.build(expire_after=session_expire, urls_expire_after=urls_expire_after)
    decision = decide_store(
        method="GET",
        url=URL,
        status=200,
        options=RequestOptions(expire_after=request_expire),
        settings=settings,
        now=NOW,
    )
    if expected == "not stored":
        assert decision.store is False
        assert decision.reason
    else:
        assert decision == StoreDecision(True, expected)  # type: ignore[arg-type]
        assert decision.reason == ""


def _store(method: str = "GET", status: int = 200, **settings: Any) -> StoreDecision:
    return decide_store(
        method=method,
        url=URL,
        status=status,
        options=RequestOptions(),
        settings=CacheSettings.build(**settings),
        now=NOW,
    )


@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE", "PATCH"])
def test_disallowed_method_is_not_stored(method: str) -> None:
    decision = _store(method)
    assert decision.store is False
    assert "allowed_methods" in decision.reason
    assert _store(method, allowed_methods=["GET", method]).store is True


@pytest.mark.parametrize("method", ["GET", "get", "HEAD"])
def test_allowed_methods_any_case(method: str) -> None:
    assert _store(method).store is True


@pytest.mark.parametrize("status", [201, 204, 301, 304, 404, 500, 503])
def test_disallowed_status_is_not_stored(status: int) -> None:
    decision = _store(status=status)
    assert decision.store is False
    assert "allowed_codes" in decision.reason
    assert _store(status=status, allowed_codes=[200, status]).store is True


def test_is_cacheable_method() -> None:
    settings = CacheSettings.build(allowed_methods=["GET", "post"])
    assert is_cacheable_method("get", settings)
    assert is_cacheable_method("POST", settings)
    assert not is_cacheable_method("HEAD", settings)


def test_storage_expires_at_matches() -> None:
    decision = _store(expire_after=90)
    assert decision.expires == NOW + timedelta(seconds=90)
    assert decision.storage_expires_at == (NOW + timedelta(seconds=90)).timestamp()
    assert isinstance(decision.storage_expires_at, float)
    never = _store()
    assert never.store is True
    assert never.expires is None
    assert never.storage_expires_at is None


# -- merge_not_modified --------------------------------------------------------------------------


def test_merge_not_modified() -> None:
    stored = CachedResponse(
        200,
        "OK",
        "https://example.com/",
        "GET",
        headers=(
            ("Content-Type", "application/json"),
            ("Content-Length", "13"),
            ("ETag", '"v1"'),
            ("Cache-Control", "max-age=60"),
            ("X-Keep", "stored"),
            ("Set-Cookie", "a=1"),
            ("Set-Cookie", "b=2"),
        ),
        request_headers=(("Accept", "*/*"),),
        body=b'{"ok": true}\n',
        created_at=NOW - timedelta(hours=2),
        expires=NOW - timedelta(minutes=1),
    )
    not_modified = (
        ("ETag", '"v1-refreshed"'),
        ("cache-control", "max-age=120"),
        ("Content-Length", "0"),
        ("Content-Encoding", "gzip"),
        ("Transfer-Encoding", "chunked"),
        ("Set-Cookie", "c=3"),
        ("X-New", "new"),
    )
    decision = StoreDecision(True, NOW + timedelta(minutes=10))
    merged = merge_not_modified(stored, not_modified, decision, NOW)

    headers = dict((n.lower(), v) for n, v in merged.headers if n.lower() != "set-cookie")
    assert headers == {
        "content-type": "application/json",
        "content-length": "13",
        "etag": '"v1-refreshed"',
        "cache-control": "max-age=120",
        "x-keep": "stored",
        "x-new": "new",
    }
    # Every stored header of a name present in the 304 is replaced, duplicates included.
    assert merged.cookies == ("c=3",)
    # Framing headers describe the stored body: never taken from the 304.
    assert merged.header("Content-Length") == "13"
    assert merged.header("Content-Encoding") is None
    assert merged.header("Transfer-Encoding") is None
    assert merged.body == stored.body
    assert merged.created_at == NOW
    assert merged.expires == NOW + timedelta(minutes=10)
    assert merged.is_expired(NOW) is False
    # Everything else stays.
    assert (
        attrs.evolve(
            merged, headers=stored.headers, created_at=stored.created_at, expires=stored.expires
        )
        == stored
    )
    # The stored entry is a value: untouched.
    assert stored.header("ETag") == '"v1"'


def test_merge_not_modified_keeps_content_encoding_of_the_stored_entry() -> None:
    stored = entry(headers=(("Content-Encoding", "identity"), ("Content-Length", "4")))
    merged = merge_not_modified(
        stored,
        (("Content-Encoding", "br"), ("Content-Length", "99")),
        StoreDecision(True, None),
        NOW,
    )
    assert merged.headers == stored.headers
    assert merged.expires is None
    assert merged.created_at == NOW


@pytest.mark.parametrize(
    ("reason", "shareable"),
    [("miss", True), ("expired", True), ("refresh", False), ("force_refresh", False)],
)
def test_only_misses_and_expiries_share_a_fetch(reason: str, shareable: bool) -> None:
    assert Fetch(reason).shareable is shareable
