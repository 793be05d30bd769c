"""Age, freshness lifetime and storage retention (acc.core.http.freshness), time passed in."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from email.utils import format_datetime

import pytest

from acc.core.http.cachecontrol import parse_cache_control
from acc.core.http.freshness import (
    HEURISTIC_CAP,
    REVALIDATION_RETENTION,
    current_age,
    header_expires,
    heuristic_lifetime,
    initial_age,
    keep_until,
    within_window,
)

NOW = datetime(2024, 5, 17, 12, 0, tzinfo=timezone.utc)


def date(moment: datetime) -> str:
    return format_datetime(moment, usegmt=True)


def expires_of(*headers: tuple[str, str], status: int = 200) -> datetime | None:
    directives = parse_cache_control(v for n, v in headers if n.lower() == "cache-control")
    return header_expires(tuple(headers), directives, status, NOW)


def test_max_age_beats_expires() -> None:
    assert expires_of(
        ("Cache-Control", "max-age=60"), ("Expires", date(NOW + timedelta(days=1)))
    ) == (NOW + timedelta(seconds=60))


def test_invalid_max_age_is_already_stale() -> None:
    assert expires_of(("Cache-Control", "max-age=soon")) == NOW


def test_expires_is_measured_against_date() -> None:
    # The server's clock is an hour behind ours: Expires - Date is what counts.
    headers = (
        ("Date", date(NOW - timedelta(hours=1))),
        ("Expires", date(NOW - timedelta(minutes=30))),
    )
    # Lifetime 30 min; apparent age 1 h: stale already.
    assert expires_of(*headers) == NOW + timedelta(minutes=30) - timedelta(hours=1)


@pytest.mark.parametrize("value", ["0", "-1", "never", ""])
def test_unparsable_expires_is_already_stale(value: str) -> None:
    assert expires_of(("Expires", value)) == NOW


def test_age_header_shortens_freshness() -> None:
    assert expires_of(("Cache-Control", "max-age=100"), ("Age", "30")) == NOW + timedelta(
        seconds=70
    )


def test_initial_age_is_the_larger_of_age_and_apparent_age() -> None:
    old_date = (("Date", date(NOW - timedelta(seconds=50))),)
    assert initial_age((*old_date, ("Age", "10")), NOW) == timedelta(seconds=50)
    assert initial_age((*old_date, ("Age", "80")), NOW) == timedelta(seconds=80)
    assert initial_age((("Date", date(NOW + timedelta(hours=1))),), NOW) == timedelta(0)
    assert initial_age((("Age", "bogus"), ("Date", "bogus")), NOW) == timedelta(0)


def test_current_age_adds_time_in_cache() -> None:
    headers = (("Age", "10"),)
    assert current_age(headers, NOW, NOW + timedelta(seconds=5)) == timedelta(seconds=15)


def test_heuristic_is_ten_percent_of_last_modified_age() -> None:
    headers = (("Date", date(NOW)), ("Last-Modified", date(NOW - timedelta(hours=5))))
    assert heuristic_lifetime(headers, 200, NOW) == timedelta(minutes=30)
    assert expires_of(*headers) == NOW + timedelta(minutes=30)


def test_heuristic_is_capped_at_one_day() -> None:
    headers = (("Last-Modified", date(NOW - timedelta(days=365))),)
    assert heuristic_lifetime(headers, 200, NOW) == HEURISTIC_CAP


@pytest.mark.parametrize("status", [201, 302, 500])
def test_heuristic_only_for_heuristically_cacheable_statuses(status: int) -> None:
    headers = (("Last-Modified", date(NOW - timedelta(days=1))),)
    assert heuristic_lifetime(headers, status, NOW) is None
    assert heuristic_lifetime(headers, 404, NOW) is not None


def test_heuristic_never_with_an_explicit_expiry() -> None:
    headers = (("Last-Modified", date(NOW - timedelta(days=10))), ("Cache-Control", "max-age=5"))
    assert expires_of(*headers) == NOW + timedelta(seconds=5)


def test_no_freshness_information_is_none() -> None:
    assert expires_of(("Content-Type", "text/plain")) is None
    assert expires_of(("Last-Modified", "garbage")) is None


def test_keep_until_without_validator_or_window_is_the_expiry() -> None:
    expires = NOW + timedelta(minutes=1)
    assert keep_until(expires, NOW, revalidatable=False) == expires
    assert keep_until(None, NOW, revalidatable=True) is None


def test_keep_until_with_a_validator() -> None:
    short = NOW + timedelta(minutes=1)
    assert keep_until(short, NOW, revalidatable=True) == short + REVALIDATION_RETENTION
    long = NOW + timedelta(days=30)
    assert keep_until(long, NOW, revalidatable=True) == long + timedelta(days=30)


def test_keep_until_with_stale_windows() -> None:
    expires = NOW + timedelta(minutes=1)
    assert keep_until(expires, NOW, revalidatable=False, windows=(False, 600.0)) == (
        expires + timedelta(seconds=600)
    )
    assert keep_until(expires, NOW, revalidatable=False, windows=(True,)) is None
    assert keep_until(datetime.max.replace(tzinfo=timezone.utc), NOW, revalidatable=True) is None


def test_within_window() -> None:
    assert within_window(True, timedelta(days=999))
    assert not within_window(False, timedelta(0))
    assert within_window(10.0, timedelta(seconds=10))
    assert not within_window(10.0, timedelta(seconds=10.5))
