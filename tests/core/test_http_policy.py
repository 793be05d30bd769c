"""HTTP caching rules of the policy (RFC 9111, RFC 5861): one test per rule, time passed in."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from email.utils import format_datetime
from typing import Any

import pytest

from acc.core import DO_NOT_CACHE, NEVER_EXPIRE
from acc.core.http.freshness import REVALIDATION_RETENTION, STALE_RETENTION
from acc.core.http.policy import (
    UNSET,
    Fetch,
    GatewayTimeout,
    RequestOptions,
    Revalidate,
    StaleIfError,
    StaleWhileRevalidate,
    StoreDecision,
    UseCached,
    decide_error,
    decide_lookup,
    decide_store,
    entry_storage_expiry,
    invalidated_urls,
    is_unsafe_method,
    merge_not_modified,
    not_modified_selects,
    refresh_not_modified,
    request_directives,
)
from acc.core.models import CachedResponse
from acc.core.settings import CacheSettings

NOW = datetime(2024, 5, 17, 12, 0, tzinfo=timezone.utc)
URL = "https://api.example.com/v1/items"
CC = CacheSettings.build(cache_control=True)
Headers = tuple[tuple[str, str], ...]


def http_date(moment: datetime) -> str:
    return format_datetime(moment, usegmt=True)


def stored(
    *headers: tuple[str, str],
    expires: datetime | None = NOW + timedelta(minutes=5),
    created: datetime = NOW - timedelta(minutes=1),
) -> CachedResponse:
    return CachedResponse(
        200, "OK", URL, "GET", headers=headers, body=b"x", created_at=created, expires=expires
    )


def lookup(
    entry: CachedResponse | None,
    *request_headers: tuple[str, str],
    settings: CacheSettings = CC,
    **options: Any,
) -> Any:
    return decide_lookup(
        entry,
        RequestOptions(**options),
        NOW,
        settings=settings,
        request_headers=tuple(request_headers),
    )


def store(
    *headers: tuple[str, str],
    settings: CacheSettings = CC,
    request_headers: Headers = (),
    status: int = 200,
    expire_after: Any = UNSET,
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


STALE = NOW - timedelta(seconds=30)

# -- lookup: request directives (rules 3, 4) -------------------------------------------------


def test_fresh_entry_without_request_directives_is_used() -> None:
    entry = stored()
    assert lookup(entry) == UseCached(entry)


def test_request_directives_are_ignored_without_cache_control() -> None:
    entry = stored()
    off = CacheSettings.build()
    assert lookup(entry, ("Cache-Control", "no-cache"), settings=off) == UseCached(entry)
    assert request_directives((("Cache-Control", "no-cache"),), off).no_cache is False


def test_request_no_cache_revalidates_or_fetches() -> None:
    with_etag = stored(("ETag", '"a"'))
    assert lookup(with_etag, ("cache-control", "NO-CACHE")) == Revalidate(
        with_etag, (("If-None-Match", '"a"'),)
    )
    assert lookup(stored(), ("Cache-Control", "no-cache")) == Fetch("refresh")


def test_pragma_no_cache_counts_only_without_cache_control() -> None:
    entry = stored()
    assert lookup(entry, ("Pragma", "no-cache")) == Fetch("refresh")
    assert lookup(entry, ("Pragma", "no-cache"), ("Cache-Control", "max-stale")) == UseCached(entry)


def test_request_max_age_rejects_an_older_entry() -> None:
    entry = stored(("Age", "100"), created=NOW - timedelta(seconds=20))  # 120 s old
    assert lookup(entry, ("Cache-Control", "max-age=200")) == UseCached(entry)
    assert lookup(entry, ("Cache-Control", "max-age=60")) == Fetch("expired")


def test_request_min_fresh_rejects_an_entry_about_to_expire() -> None:
    entry = stored(expires=NOW + timedelta(seconds=30))
    assert lookup(entry, ("Cache-Control", "min-fresh=10")) == UseCached(entry)
    assert lookup(entry, ("Cache-Control", "min-fresh=60")) == Fetch("expired")


def test_request_max_stale_accepts_a_stale_entry() -> None:
    entry = stored(expires=STALE)
    assert lookup(entry, ("Cache-Control", "max-stale=60")) == UseCached(entry)
    assert lookup(entry, ("Cache-Control", "max-stale")) == UseCached(entry)
    assert lookup(entry, ("Cache-Control", "max-stale=10")) == Fetch("expired")


def test_max_stale_never_overrides_must_revalidate_or_no_cache() -> None:
    for directive in ("must-revalidate", "no-cache"):
        entry = stored(("Cache-Control", directive), expires=STALE)
        assert lookup(entry, ("Cache-Control", "max-stale")) == Fetch("expired")


def test_request_only_if_cached() -> None:
    assert lookup(None, ("Cache-Control", "only-if-cached")) == GatewayTimeout()
    fresh = stored()
    assert lookup(fresh, ("Cache-Control", "only-if-cached")) == UseCached(fresh)
    stale = stored(expires=STALE)
    assert lookup(stale, ("Cache-Control", "only-if-cached")) == GatewayTimeout()
    assert lookup(stale, ("Cache-Control", "only-if-cached, max-stale")) == UseCached(stale)
    old = stored(("Age", "500"))
    assert lookup(old, ("Cache-Control", "only-if-cached, max-age=10")) == GatewayTimeout()


def test_immutable_fresh_entry_is_not_revalidated_on_refresh() -> None:
    entry = stored(("Cache-Control", "max-age=600, immutable"), ("ETag", '"i"'))
    assert lookup(entry, refresh=True) == UseCached(entry)
    # Only while fresh, only with cache_control, and not against a request no-cache.
    assert isinstance(
        lookup(stored(("Cache-Control", "immutable"), ("ETag", '"i"'), expires=STALE)), Revalidate
    )
    assert isinstance(lookup(entry, settings=CacheSettings.build(), refresh=True), Revalidate)
    assert isinstance(lookup(entry, ("Cache-Control", "no-cache")), Revalidate)


# -- lookup: stale-while-revalidate (rules 7, 8) ---------------------------------------------


def test_stale_while_revalidate_directive() -> None:
    entry = stored(
        ("Cache-Control", "max-age=1, stale-while-revalidate=60"), ("ETag", '"s"'), expires=STALE
    )
    assert lookup(entry) == StaleWhileRevalidate(entry, (("If-None-Match", '"s"'),))
    too_stale = stored(("Cache-Control", "stale-while-revalidate=10"), expires=STALE)
    assert lookup(too_stale) == Fetch("expired")


def test_stale_while_revalidate_setting_works_without_cache_control() -> None:
    entry = stored(expires=STALE)
    settings = CacheSettings.build(stale_while_revalidate=60)
    assert lookup(entry, settings=settings) == StaleWhileRevalidate(entry, ())
    assert lookup(entry, settings=CacheSettings.build(stale_while_revalidate=True)) == (
        StaleWhileRevalidate(entry, ())
    )
    assert lookup(entry, settings=CacheSettings.build(stale_while_revalidate=10)) == Fetch(
        "expired"
    )


def test_stale_while_revalidate_directive_beats_the_setting() -> None:
    entry = stored(("Cache-Control", "stale-while-revalidate=10"), expires=STALE)
    settings = CacheSettings.build(cache_control=True, stale_while_revalidate=True)
    assert lookup(entry, settings=settings) == Fetch("expired")


@pytest.mark.parametrize("directive", ["must-revalidate", "no-cache"])
def test_stale_while_revalidate_is_forbidden_by(directive: str) -> None:
    entry = stored(("Cache-Control", directive), expires=STALE)
    assert lookup(entry, settings=CacheSettings.build(stale_while_revalidate=True)) == Fetch(
        "expired"
    )


def test_stale_while_revalidate_not_on_refresh_nor_only_if_cached() -> None:
    entry = stored(expires=STALE)
    settings = CacheSettings.build(stale_while_revalidate=True)
    assert lookup(entry, settings=settings, refresh=True) == Fetch("refresh")
    assert lookup(entry, settings=settings, only_if_cached=True) == GatewayTimeout()


# -- store (rules 2, 6, 9) -------------------------------------------------------------------


def test_response_no_store_and_request_no_store_are_not_stored() -> None:
    assert store(("Cache-Control", "no-store, max-age=60")).store is False
    decision = store(
        ("Cache-Control", "max-age=60"), request_headers=(("Cache-Control", "no-store"),)
    )
    assert (decision.store, decision.reason) == (False, "the request says no-store")


def test_private_is_stored() -> None:
    # Kept a day past its freshness: a request's max-stale may still accept it.
    expires = NOW + timedelta(seconds=60)
    assert store(("Cache-Control", "private, max-age=60")) == StoreDecision(
        True, expires, storage_expires=expires + STALE_RETENTION
    )


def test_vary_star_is_not_stored() -> None:
    assert store(("Vary", "Accept, *"), ("Cache-Control", "max-age=60")).store is False


def test_no_cache_is_stored_already_stale_when_it_can_be_revalidated() -> None:
    decision = store(("Cache-Control", "no-cache, max-age=600"), ("ETag", '"n"'))
    assert decision.store is True
    assert decision.expires == NOW
    assert decision.storage_expires == NOW + REVALIDATION_RETENTION
    assert store(("Cache-Control", "no-cache")).store is False  # no validator: useless


def test_stale_on_arrival_is_kept_only_with_a_validator_or_window() -> None:
    assert store(("Expires", "0")).store is False
    assert store(("Expires", "0"), ("Last-Modified", http_date(NOW))).store is True
    kept = store(("Cache-Control", "max-age=0, stale-if-error=60"))
    assert kept == StoreDecision(True, NOW, storage_expires=NOW + timedelta(seconds=60))


def test_must_revalidate_gets_no_stale_window_in_storage() -> None:
    settings = CacheSettings.build(cache_control=True, stale_if_error=60)
    assert store(("Cache-Control", "max-age=0, must-revalidate"), settings=settings).store is False


def test_settings_do_not_cache_is_never_stored_even_with_a_validator() -> None:
    off = CacheSettings.build(expire_after=DO_NOT_CACHE)
    assert store(("ETag", '"e"'), settings=off).store is False


def test_storage_outlives_freshness_with_validators_without_cache_control() -> None:
    settings = CacheSettings.build(expire_after=60)
    decision = store(("ETag", '"e"'), settings=settings)
    assert decision.expires == NOW + timedelta(seconds=60)
    assert decision.storage_expires == NOW + timedelta(seconds=60) + REVALIDATION_RETENTION
    assert decision.storage_expires is not None
    assert decision.storage_expires_at == decision.storage_expires.timestamp()


def test_entry_storage_expiry_matches_the_store_decision() -> None:
    settings = CacheSettings.build(cache_control=True, stale_while_revalidate=30)
    headers = (("Cache-Control", "max-age=60"), ("ETag", '"e"'))
    decision = store(*headers, settings=settings)
    entry = CachedResponse(
        200, "OK", URL, "GET", headers=headers, created_at=NOW, expires=decision.expires
    )
    assert entry_storage_expiry(entry, settings) == decision.storage_expires


# -- precedence (rule 2), table-driven --------------------------------------------------------

LM = http_date(NOW - timedelta(hours=10))  # heuristic: one hour
# (id, request headers, response headers, per-request expire_after, urls, session, expected)
PRECEDENCE: list[tuple[str, Headers, Headers, Any, Any, Any, Any]] = [
    ("session", (), (), UNSET, None, 60, NOW + timedelta(seconds=60)),
    ("urls beat session", (), (), UNSET, {"api.example.com": 30}, 60, NOW + timedelta(seconds=30)),
    ("request beats urls", (), (), 5, {"api.example.com": 30}, 60, NOW + timedelta(seconds=5)),
    (
        "response max-age beats request expire_after",
        (),
        (("Cache-Control", "max-age=600"),),
        5,
        {"api.example.com": 30},
        60,
        NOW + timedelta(seconds=600),
    ),
    (
        "response max-age beats DO_NOT_CACHE",
        (),
        (("Cache-Control", "max-age=600"),),
        DO_NOT_CACHE,
        None,
        DO_NOT_CACHE,
        NOW + timedelta(seconds=600),
    ),
    (
        "response Expires beats session",
        (),
        (("Expires", http_date(NOW + timedelta(hours=2))), ("Date", http_date(NOW))),
        UNSET,
        None,
        60,
        NOW + timedelta(hours=2),
    ),
    (
        "heuristic beats the settings",
        (),
        (("Last-Modified", LM), ("Date", http_date(NOW))),
        5,
        None,
        NEVER_EXPIRE,
        NOW + timedelta(hours=1),
    ),
    (
        "explicit expiry beats heuristic",
        (),
        (("Last-Modified", LM), ("Cache-Control", "max-age=10")),
        UNSET,
        None,
        60,
        NOW + timedelta(seconds=10),
    ),
    (
        "request no-store beats the response",
        (("Cache-Control", "no-store"),),
        (("Cache-Control", "max-age=600"),),
        UNSET,
        None,
        60,
        "not stored",
    ),
    (
        "no headers: settings decide",
        (),
        (("Content-Type", "text/plain"),),
        UNSET,
        None,
        60,
        NOW + timedelta(seconds=60),
    ),
]


@pytest.mark.parametrize(
    ("request_headers", "response_headers", "per_request", "urls", "session", "expected"),
    [row[1:] for row in PRECEDENCE],
    ids=[row[0] for row in PRECEDENCE],
)
@pytest.mark.parametrize("cache_control", [True, False])
def test_precedence(
    request_headers: Headers,
    response_headers: Headers,
    per_request: Any,
    urls: Any,
    session: Any,
    expected: Any,
    cache_control: bool,
) -> None:
    settings = CacheSettings.build(
        cache_control=cache_control, expire_after=session, urls_expire_after=urls
    )
    decision = store(
        *response_headers,
        settings=settings,
        request_headers=request_headers,
        expire_after=per_request,
    )
    if not cache_control:
        # Headers are ignored: the settings' order alone decides.
        settings_only = store(settings=settings, expire_after=per_request)
        assert (decision.store, decision.expires) == (settings_only.store, settings_only.expires)
    elif expected == "not stored":
        assert decision.store is False
    else:
        assert (decision.store, decision.expires) == (True, expected)


def test_request_max_age_beats_the_response_max_age_at_lookup() -> None:
    entry = stored(("Cache-Control", "max-age=3600"), expires=NOW + timedelta(minutes=59))
    assert lookup(entry, ("Cache-Control", "max-age=10")) == Fetch("expired")
    assert lookup(entry) == UseCached(entry)


# -- stale-if-error (rules 7, 8) --------------------------------------------------------------


def error(
    entry: CachedResponse | None,
    status: int | None,
    settings: CacheSettings = CC,
    *req: tuple[str, str],
) -> Any:
    return decide_error(
        entry, status=status, settings=settings, now=NOW, request_headers=tuple(req)
    )


def test_stale_if_error_directive_on_5xx_and_connection_errors() -> None:
    entry = stored(("Cache-Control", "max-age=1, stale-if-error=60"), expires=STALE)
    assert error(entry, 500) == StaleIfError(entry)
    assert error(entry, None) == StaleIfError(entry)
    assert error(entry, 404) is None
    assert error(None, 500) is None


def test_stale_if_error_window_is_bounded() -> None:
    entry = stored(("Cache-Control", "stale-if-error=10"), expires=STALE)
    assert error(entry, 503) is None


def test_stale_if_error_setting_and_request_directive() -> None:
    entry = stored(expires=STALE)
    assert error(entry, 502, CacheSettings.build(stale_if_error=True)) == StaleIfError(entry)
    assert error(entry, 502, CacheSettings.build(stale_if_error=timedelta(seconds=10))) is None
    assert error(entry, 502, CacheSettings.build()) is None
    assert error(entry, 502, CC, ("Cache-Control", "stale-if-error=60")) == StaleIfError(entry)


def test_must_revalidate_forbids_stale_if_error() -> None:
    entry = stored(("Cache-Control", "must-revalidate, stale-if-error=600"), expires=STALE)
    assert error(entry, 500) is None
    assert error(entry, None, CacheSettings.build(stale_if_error=True)) is None


# -- 304 (rule 5) -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("stored_etag", "new_etag", "selects"),
    [
        ('"a"', '"a"', True),
        ('W/"a"', 'W/"a"', True),  # weak validator: weak comparison
        ('"a"', 'W/"a"', True),
        ('W/"a"', '"a"', False),  # a strong validator needs a strong match
        ('"a"', '"b"', False),
    ],
)
def test_not_modified_selects_by_etag(stored_etag: str, new_etag: str, selects: bool) -> None:
    assert not_modified_selects(stored(("ETag", stored_etag)), (("ETag", new_etag),)) is selects


def test_not_modified_without_etag_checks_last_modified() -> None:
    entry = stored(("Last-Modified", "Wed, 21 Oct 2015 07:28:00 GMT"))
    assert not_modified_selects(entry, (("Last-Modified", "Wed, 21 Oct 2015 07:28:00 GMT"),))
    assert not not_modified_selects(entry, (("Last-Modified", "Thu, 22 Oct 2015 07:28:00 GMT"),))
    assert not_modified_selects(entry, ())


def test_refresh_not_modified_recomputes_freshness_from_merged_headers() -> None:
    entry = stored(
        ("Cache-Control", "max-age=60"),
        ("ETag", '"r"'),
        ("Age", "500"),
        ("Date", http_date(NOW - timedelta(hours=1))),
        expires=STALE,
    )
    refreshed, decision = refresh_not_modified(
        entry,
        (("ETag", '"r"'), ("Cache-Control", "max-age=120")),
        url=URL,
        options=RequestOptions(),
        settings=CC,
        now=NOW,
    )
    assert decision.store is True
    # The old Age and Date describe the old response: without them the entry is new.
    assert refreshed.expires == NOW + timedelta(seconds=120)
    assert refreshed.header("Age") is None
    assert refreshed.header("Date") == http_date(NOW)
    assert refreshed.header("Cache-Control") == "max-age=120"
    assert refreshed.created_at == NOW


def test_merge_keeps_the_304_date_when_it_has_one() -> None:
    entry = stored(("Date", http_date(NOW - timedelta(hours=1))))
    merged = merge_not_modified(entry, (("Date", http_date(NOW)),), StoreDecision(True, None), NOW)
    assert [v for n, v in merged.headers if n == "Date"] == [http_date(NOW)]


# -- unsafe methods (rule 10) ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "unsafe"),
    [
        ("post", True),
        ("PUT", True),
        ("PATCH", True),
        ("DELETE", True),
        ("GET", False),
        ("HEAD", False),
        ("OPTIONS", False),
    ],
)
def test_unsafe_methods(method: str, unsafe: bool) -> None:
    assert is_unsafe_method(method) is unsafe


def test_invalidated_urls() -> None:
    headers = (
        ("Location", "/v1/items/7"),
        ("Content-Location", "https://other.example.com/v1/items/7"),
    )
    assert invalidated_urls(URL, 201, headers) == (URL, "https://api.example.com/v1/items/7")
    assert invalidated_urls(URL, 404, headers) == ()
    assert invalidated_urls(URL, 204, (("Location", "https://api.example.com:443/x"),)) == (
        URL,
        "https://api.example.com:443/x",
    )
    assert invalidated_urls(URL, 200, (("Location", "http://api.example.com/x"),)) == (URL,)
