"""Expiration values (acc.core.expiration): what expire_after accepts and what it means."""

from __future__ import annotations

import math
from datetime import datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from acc.core import DO_NOT_CACHE, NEVER_EXPIRE, AccError, ConfigError
from acc.core.expiration import URLExpirations, expires_at, validate_expiration

NOW = datetime(2024, 5, 17, 12, 30, 15, 123456, tzinfo=timezone.utc)


# -- validate_expiration + expires_at: what is accepted ------------------------------------


def test_constants() -> None:
    assert NEVER_EXPIRE == -1
    assert DO_NOT_CACHE == 0


@pytest.mark.parametrize(
    ("value", "delta"),
    [
        (1, timedelta(seconds=1)),
        (60, timedelta(minutes=1)),
        (86400, timedelta(days=1)),
        (0.5, timedelta(milliseconds=500)),
        (1.25, timedelta(seconds=1, milliseconds=250)),
        (timedelta(hours=2), timedelta(hours=2)),
        (timedelta(microseconds=1), timedelta(microseconds=1)),
    ],
)
def test_relative_expirations(value: object, delta: timedelta) -> None:
    validated = validate_expiration(value, "expire_after")
    assert validated == value
    result = expires_at(validated, NOW)
    assert result == NOW + delta
    assert result is not None
    assert result.utcoffset() == timedelta(0)


@pytest.mark.parametrize("value", [NEVER_EXPIRE, None])
def test_never_expire(value: object) -> None:
    validated = validate_expiration(value, "expire_after")
    assert validated == NEVER_EXPIRE
    assert expires_at(validated, NOW) is None


def test_do_not_cache_expires_now() -> None:
    validated = validate_expiration(DO_NOT_CACHE, "expire_after")
    assert validated == 0
    assert expires_at(validated, NOW) == NOW


def test_aware_datetime_is_absolute_and_converted_to_utc() -> None:
    ist = timezone(timedelta(hours=5, minutes=30))
    moment = datetime(2030, 1, 1, 12, 0, tzinfo=ist)
    result = expires_at(validate_expiration(moment, "expire_after"), NOW)
    # Correct to the minute (a half-hour offset is where sloppy conversion shows).
    assert result == datetime(2030, 1, 1, 6, 30, tzinfo=timezone.utc)
    assert result is not None
    assert result.utcoffset() == timedelta(0)
    assert (result.hour, result.minute) == (6, 30)
    # Absolute: it does not depend on "now".
    assert expires_at(moment, NOW + timedelta(days=3)) == result


def test_naive_datetime_is_utc() -> None:
    naive = datetime(2030, 6, 1, 8, 15, 30)
    aware = naive.replace(tzinfo=timezone.utc)
    validated = validate_expiration(naive, "expire_after")
    assert isinstance(validated, datetime)
    assert validated.tzinfo is not None
    result = expires_at(validated, NOW)
    assert result == aware
    assert result is not None
    assert result.timestamp() == aware.timestamp()


def test_expiry_past_the_last_datetime_is_never() -> None:
    # Valid values whose moment cannot be represented must not crash a store decision.
    assert expires_at(validate_expiration(timedelta.max, "expire_after"), NOW) is None
    assert expires_at(validate_expiration(10**12, "expire_after"), NOW) is None
    assert expires_at(validate_expiration(1e300, "expire_after"), NOW) is None


@given(st.floats(min_value=0, max_value=10**9, allow_nan=False, allow_infinity=False))
def test_any_non_negative_seconds_are_relative(seconds: float) -> None:
    validated = validate_expiration(seconds, "expire_after")
    assert expires_at(validated, NOW) == NOW + timedelta(seconds=seconds)


# -- validate_expiration: what is rejected --------------------------------------------------


@pytest.mark.parametrize(
    "value",
    [
        True,
        False,
        -2,
        -100,
        -0.5,
        -1.5,
        math.nan,
        math.inf,
        -math.inf,
        "60",
        "1h",
        b"60",
        [60],
        {"seconds": 60},
        object(),
        timedelta(seconds=-1),
        timedelta(days=-1),
    ],
    ids=repr,
)
def test_invalid_expirations_raise_config_error(value: object) -> None:
    with pytest.raises(ConfigError) as info:
        validate_expiration(value, "expire_after")
    exc = info.value
    assert isinstance(exc, ValueError)
    assert isinstance(exc, AccError)
    assert exc.argument == "expire_after"
    assert str(exc).startswith("expire_after")


def test_error_message_names_the_argument_given() -> None:
    with pytest.raises(ValueError, match=r"^my_option: "):
        validate_expiration(-5, "my_option")


# -- URLExpirations -------------------------------------------------------------------------


def test_no_rules_no_match() -> None:
    rules = URLExpirations.from_mapping(None, "urls_expire_after")
    assert rules.match("https://example.com/") == (False, None)
    assert URLExpirations.from_mapping({}, "urls_expire_after").match("https://x/") == (False, None)


def test_no_matching_pattern() -> None:
    rules = URLExpirations.from_mapping({"example.com/api": 60}, "urls_expire_after")
    assert rules.match("https://other.org/api") == (False, None)
    assert rules.match("https://www.example.com/api") == (False, None)
    assert rules.match("https://example.com/ap") == (False, None)


def test_first_match_wins_in_given_order() -> None:
    url = "https://example.com/api/users"
    specific_first = URLExpirations.from_mapping(
        {"example.com/api": 60, "example.com": 10}, "urls_expire_after"
    )
    general_first = URLExpirations.from_mapping(
        {"example.com": 10, "example.com/api": 60}, "urls_expire_after"
    )
    assert specific_first.match(url) == (True, 60)
    assert general_first.match(url) == (True, 10)
    assert specific_first.match("https://example.com/static/x.css") == (True, 10)


@pytest.mark.parametrize(
    "pattern", ["example.com/api", "https://example.com/api", "http://example.com/api"]
)
@pytest.mark.parametrize(
    "url", ["https://example.com/api/x", "http://example.com/api/x", "example.com/api/x"]
)
def test_scheme_is_ignored_in_pattern_and_url(pattern: str, url: str) -> None:
    rules = URLExpirations.from_mapping({pattern: 30}, "urls_expire_after")
    assert rules.match(url) == (True, 30)


def test_prefix_semantics() -> None:
    rules = URLExpirations.from_mapping({"example.com/api/v1": 5}, "urls_expire_after")
    assert rules.match("https://example.com/api/v1") == (True, 5)
    assert rules.match("https://example.com/api/v1/users/3?x=1") == (True, 5)
    assert rules.match("https://example.com/api/v2/users") == (False, None)
    # A prefix of the pattern is not enough.
    assert rules.match("https://example.com/api") == (False, None)


def test_star_glob() -> None:
    rules = URLExpirations.from_mapping(
        {"*.example.com/images": 3600, "example.com/*/details": 60}, "urls_expire_after"
    )
    assert rules.match("https://cdn.example.com/images/a.png") == (True, 3600)
    assert rules.match("https://a.b.example.com/images/") == (True, 3600)
    # '*' crosses '/'.
    assert rules.match("https://example.com/users/42/details") == (True, 60)
    assert rules.match("https://example.com/users/42/summary") == (False, None)
    assert rules.match("https://cdn.example.org/images/a.png") == (False, None)


def test_rule_values_are_validated_and_normalised() -> None:
    moment = datetime(2031, 1, 1, 0, 0)
    rules = URLExpirations.from_mapping(
        {"a.com": None, "b.com": timedelta(minutes=5), "c.com": moment, "d.com": DO_NOT_CACHE},
        "urls_expire_after",
    )
    assert rules.match("https://a.com/") == (True, NEVER_EXPIRE)
    assert rules.match("https://b.com/") == (True, timedelta(minutes=5))
    matched, value = rules.match("https://c.com/")
    assert matched
    assert value == moment.replace(tzinfo=timezone.utc)
    assert rules.match("https://d.com/") == (True, DO_NOT_CACHE)


def test_invalid_rules_raise_config_error_naming_the_argument() -> None:
    with pytest.raises(ConfigError, match=r"^urls_expire_after\['a.com'\]"):
        URLExpirations.from_mapping({"a.com": -5}, "urls_expire_after")
    with pytest.raises(ConfigError, match=r"^urls_expire_after"):
        URLExpirations.from_mapping({"": 5}, "urls_expire_after")
    with pytest.raises(ConfigError, match=r"^urls_expire_after"):
        URLExpirations.from_mapping([("a.com", 5)], "urls_expire_after")  # type: ignore[arg-type]
