"""Reading caching headers (acc.core.http.cachecontrol): directives, dates, entity tags, Vary."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from acc.core.http.cachecontrol import (
    DELTA_SECONDS_CAP,
    INVALID,
    NO_DIRECTIVES,
    etags_match,
    parse_cache_control,
    parse_delta_seconds,
    parse_http_date,
    vary_names,
)


def test_names_are_case_insensitive_and_values_read() -> None:
    d = parse_cache_control(["Max-Age=60, NO-CACHE", "Must-Revalidate"])
    assert d.max_age == 60
    assert d.no_cache
    assert d.must_revalidate
    assert not d.no_store


def test_quoted_values_are_unquoted_and_commas_inside_quotes_kept() -> None:
    d = parse_cache_control(['no-cache="Set-Cookie, X-A", max-age="30", x="a\\"b"'])
    assert d.value("no-cache") == "Set-Cookie, X-A"
    assert d.max_age == 30
    assert d.value("x") == 'a"b'


def test_first_occurrence_wins() -> None:
    assert parse_cache_control(["max-age=10", "max-age=99"]).max_age == 10


@pytest.mark.parametrize("raw", ["abc", "-1", "1.5", "", " ", "١٢"])
def test_invalid_delta_seconds(raw: str) -> None:
    assert parse_delta_seconds(raw) == INVALID
    assert parse_cache_control([f"max-age={raw}"]).max_age == INVALID


def test_delta_seconds_are_capped() -> None:
    assert parse_delta_seconds("99999999999999999999") == DELTA_SECONDS_CAP
    assert parse_delta_seconds(" 42 ") == 42


def test_absent_directives() -> None:
    d = parse_cache_control([])
    assert d is NO_DIRECTIVES
    assert d.max_age is None
    assert d.max_stale is None
    assert d.min_fresh is None
    assert parse_cache_control([" , ,"]) is NO_DIRECTIVES


def test_max_stale_without_value_accepts_any_staleness() -> None:
    assert parse_cache_control(["max-stale"]).max_stale == DELTA_SECONDS_CAP
    assert parse_cache_control(["max-stale=5"]).max_stale == 5
    assert parse_cache_control(["max-stale=soon"]).max_stale == 0


def test_rfc5861_directives() -> None:
    d = parse_cache_control(["stale-while-revalidate=30, stale-if-error=600"])
    assert (d.stale_while_revalidate, d.stale_if_error) == (30, 600)
    bad = parse_cache_control(["stale-while-revalidate=x, stale-if-error"])
    assert (bad.stale_while_revalidate, bad.stale_if_error) == (None, None)


@pytest.mark.parametrize(
    "text",
    ["Sun, 06 Nov 1994 08:49:37 GMT", "Sunday, 06-Nov-94 08:49:37 GMT", "Sun Nov  6 08:49:37 1994"],
)
def test_http_dates_in_all_three_formats(text: str) -> None:
    assert parse_http_date(text) == datetime(1994, 11, 6, 8, 49, 37, tzinfo=timezone.utc)


@pytest.mark.parametrize(
    "text", [None, "", "0", "-1", "yesterday", "Sun, 99 Nov 1994 08:49:37 GMT"]
)
def test_unreadable_dates_are_none(text: str | None) -> None:
    assert parse_http_date(text) is None


@pytest.mark.parametrize(
    ("a", "b", "weak", "strong"),
    [
        ('"1"', '"1"', True, True),
        ('W/"1"', '"1"', True, False),
        ('W/"1"', 'W/"1"', True, False),
        ('"1"', '"2"', False, False),
        ('W/"1"', 'W/"2"', False, False),
    ],
)
def test_etag_comparison(a: str, b: str, weak: bool, strong: bool) -> None:
    # RFC 9110 §8.8.3.2's table.
    assert etags_match(a, b, weak=True) is weak
    assert etags_match(a, b, weak=False) is strong


def test_vary_names() -> None:
    assert vary_names((("Vary", "Accept, accept-language"), ("vary", "ACCEPT"))) == (
        "accept",
        "accept-language",
    )
    assert vary_names((("Vary", "Accept, *"),)) == ("*",)
    assert vary_names(()) == ()
