"""Settings checks: CacheBackend(...) refuses every bad option at construction."""

from __future__ import annotations

import inspect
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from acc.core import NEVER_EXPIRE, AccError, CacheBackend, ConfigError, MemoryCache
from acc.core.expiration import URLExpirations
from acc.core.keys import CREDENTIAL_HEADERS, KeySettings
from acc.core.settings import CacheSettings

# -- unknown keywords --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "misspelt",
    [
        "expire_afer",
        "expires_after",
        "url_expire_after",
        "urls_expires_after",
        "allowed_code",
        "allowed_method",
        "include_header",
        "match_header",
        "ignored_parameters",
        "ignore_params",
        "cache_controls",
        "filter_func",
        "key_func",
        "stale_on_error",
        "secret",
        "secret_keys",
        "auto_close",
        "strict_mode",
        "backend",
        "serializer",
    ],
)
def test_misspelt_keyword_raises_type_error(misspelt: str) -> None:
    kwargs: dict[str, Any] = {misspelt: 1}
    with pytest.raises(TypeError, match=misspelt):
        CacheBackend(**kwargs)


def test_options_are_keyword_only() -> None:
    with pytest.raises(TypeError):
        CacheBackend("name", 60)  # type: ignore[call-arg]


# -- invalid values ----------------------------------------------------------------------------


class NotAStore:
    async def read(self, key: str) -> bytes | None:
        return None


INVALID: list[tuple[str, Any]] = [
    ("cache_name", ""),
    ("cache_name", None),
    ("cache_name", 123),
    ("cache_name", "acc\x00cache"),
    ("cache_name", "\x00"),
    ("cache_name", "caf\udce9"),
    ("expire_after", -2),
    ("expire_after", True),
    ("expire_after", "1h"),
    ("expire_after", float("nan")),
    ("expire_after", float("inf")),
    ("expire_after", timedelta(seconds=-1)),
    ("near_cache", "yes"),
    ("near_cache", 1),
    ("near_cache", {"max_age": 0}),
    ("near_cache", {"max_agee": 5}),
    ("near_cache", {"max_entries": 1.5}),
    ("stale_if_error", -1),
    ("stale_if_error", "5m"),
    ("stale_if_error", float("nan")),
    ("stale_while_revalidate", -0.5),
    ("stale_while_revalidate", timedelta(seconds=-1)),
    ("stale_while_revalidate", [60]),
    ("urls_expire_after", [("example.com", 60)]),
    ("urls_expire_after", "example.com"),
    ("urls_expire_after", {"example.com": -5}),
    ("urls_expire_after", {"example.com": "soon"}),
    ("urls_expire_after", {"": 60}),
    ("urls_expire_after", {1: 60}),
    ("allowed_codes", 200),
    ("allowed_codes", "200"),
    ("allowed_codes", [200, 99]),
    ("allowed_codes", [600]),
    ("allowed_codes", [200.0]),
    ("allowed_codes", [True]),
    ("allowed_codes", ["200"]),
    ("allowed_methods", "GET"),
    ("allowed_methods", ["GET", "FETCH"]),
    ("allowed_methods", ["GET", ""]),
    ("allowed_methods", [1]),
    ("allowed_methods", 1),
    ("include_headers", "yes"),
    ("include_headers", 1),
    ("include_headers", None),
    ("include_headers", ["Accept"]),
    ("match_headers", "Accept"),
    ("match_headers", b"Accept"),
    ("match_headers", ["Accept", ""]),
    ("match_headers", [1]),
    ("match_headers", True),
    ("ignored_params", "token"),
    ("ignored_params", b"token"),
    ("ignored_params", ["token", None]),
    ("ignored_params", 5),
    ("credential_headers", "X-Api-Key"),
    ("credential_headers", ["X-Secret", ""]),
    ("credential_headers", [1]),
    ("credential_headers", True),
    ("credential_params", "api_key"),
    ("credential_params", ["api_key", None]),
    ("credential_params", b"api_key"),
    ("credential_params", 5),
    ("filter_fn", True),
    ("filter_fn", "lambda r: True"),
    ("filter_fn", 1),
    ("key_fn", "sha256"),
    ("key_fn", 42),
    ("secret_key", ""),
    ("secret_key", []),
    ("secret_key", ["k", ""]),
    ("secret_key", ["k", 1]),
    ("secret_key", 12345),
    ("secret_key", {"k"}),
    ("store_cookies", "yes"),
    ("store_cookies", 1),
    ("store_cookies", None),
    ("autoclose", "yes"),
    ("autoclose", None),
    ("autoclose", 0),
    ("strict", "no"),
    ("strict", 1),
    ("strict", None),
    ("cache_control", "yes"),
    ("cache_control", 1),
    ("responses", {}),
    ("responses", NotAStore()),
    ("responses", MemoryCache),
    ("redirects", {}),
    ("redirects", NotAStore()),
    ("clock", "now"),
    ("clock", 1700000000),
    ("refresh_close_timeout", -1),
    ("refresh_close_timeout", "5"),
    ("refresh_close_timeout", True),
    ("refresh_close_timeout", float("nan")),
    ("write_close_timeout", -1),
    ("write_close_timeout", "5"),
    ("write_close_timeout", True),
    ("write_close_timeout", float("nan")),
    ("write_behind", -1),
    ("write_behind", "yes"),
    ("write_behind", 2.5),
    ("listeners", "print"),
    ("listeners", print),
    ("listeners", [print, "not callable"]),
    ("max_body_size", -1),
    ("max_body_size", 1.5),
    ("max_body_size", "16MiB"),
    ("max_body_size", True),
    ("storage_budget", 0),
    ("storage_budget", -1),
    ("storage_budget", float("nan")),
    ("storage_budget", float("inf")),
    ("storage_budget", "1s"),
    ("storage_budget", True),
    ("breaker_threshold", 0),
    ("breaker_threshold", -3),
    ("breaker_threshold", 2.5),
    ("breaker_threshold", True),
    ("breaker_threshold", "5"),
    ("breaker_cooldown", 0),
    ("breaker_cooldown", None),
    ("breaker_cooldown", float("inf")),
    ("breaker_cooldown", "10"),
    ("breaker_cooldown", False),
]


@pytest.mark.parametrize(("argument", "value"), INVALID, ids=[f"{a}={v!r}" for a, v in INVALID])
def test_invalid_value_raises_config_error_naming_the_argument(argument: str, value: Any) -> None:
    with pytest.raises(ConfigError) as info:
        CacheBackend(**{argument: value})
    exc = info.value
    assert isinstance(exc, ValueError)
    assert isinstance(exc, AccError)
    assert exc.argument.startswith(argument)
    assert str(exc).startswith(argument)


def test_every_option_has_invalid_cases() -> None:
    # Guard: a new option must come with its invalid values above.
    options = set(inspect.signature(CacheBackend.__init__).parameters) - {"self"}
    covered = {argument for argument, _value in INVALID}
    assert options - covered == set()


@pytest.mark.parametrize("argument", ["stale_if_error", "stale_while_revalidate"])
@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (True, True),
        (False, False),
        (None, False),
        (0, False),
        (30, 30),
        (timedelta(minutes=5), 300),
    ],
)
def test_stale_windows_accept_true_seconds_or_off(argument: str, value: Any, expected: Any) -> None:
    settings = CacheBackend(**{argument: value}).settings
    assert getattr(settings, argument) == expected


# -- valid values ------------------------------------------------------------------------------


def test_credential_options_extend_the_defaults_and_reach_the_keys() -> None:
    backend = CacheBackend(credential_headers=["X-Tenant-Secret"], credential_params=["api_key"])
    s = backend.settings
    assert s.credential_headers == CREDENTIAL_HEADERS | {"x-tenant-secret"}
    assert s.credential_params == frozenset({"api_key"})
    assert s.key_settings.credential_headers == s.credential_headers
    assert s.key_settings.credential_params == s.credential_params
    assert s.redacted_params == frozenset({"api_key"})
    assert "x-tenant-secret" in s.redacted_headers


def test_credential_options_in_a_url() -> None:
    backend = CacheBackend.from_url(
        "memory://?credential_headers=X-Tenant-Secret,X-Other&credential_params=api_key"
    )
    assert {"x-tenant-secret", "x-other"} <= backend.settings.credential_headers
    assert backend.settings.credential_params == frozenset({"api_key"})


def test_defaults() -> None:
    backend = CacheBackend()
    s = backend.settings
    assert backend.cache_name == "acc-cache"
    assert s.expire_after == NEVER_EXPIRE
    assert s.urls_expire_after == URLExpirations()
    assert s.allowed_codes == frozenset({200})
    assert s.allowed_methods == frozenset({"GET", "HEAD"})
    assert s.include_headers is False
    assert s.match_headers == ()
    assert s.ignored_params == frozenset()
    assert s.credential_headers == CREDENTIAL_HEADERS
    assert {"authorization", "cookie", "x-api-key", "x-auth-token"} <= s.credential_headers
    assert s.credential_params == frozenset()
    assert s.cache_control is False
    assert s.store_cookies is False
    assert s.stale_if_error is False
    assert s.stale_while_revalidate is False
    assert s.filter_fn is None
    assert s.key_fn is None
    assert s.secret_key == ()
    assert s.autoclose is True
    assert s.strict is False
    assert s.key_settings == KeySettings()
    assert s.max_body_size == 16 * 1024 * 1024
    assert s.storage_budget == 1.0
    assert (s.breaker_threshold, s.breaker_cooldown) == (5, 10.0)
    assert isinstance(backend.responses, MemoryCache)
    assert isinstance(backend.redirects, MemoryCache)
    assert backend.responses is not backend.redirects
    assert backend.codec.signed is False


def test_valid_values_are_normalised() -> None:
    def keep(_response: object) -> bool:
        return True

    responses, redirects = MemoryCache(), MemoryCache()
    backend = CacheBackend(
        "my-cache",
        expire_after=datetime(2030, 1, 1),
        urls_expire_after={"example.com/api": 60},
        allowed_codes=[200, 203, 404],
        allowed_methods=["get", "post"],
        include_headers=False,
        match_headers=["Accept"],
        ignored_params=["token", "X-Api-Key"],
        cache_control=False,
        filter_fn=keep,
        key_fn=lambda request: "k",
        stale_if_error=False,
        stale_while_revalidate=False,
        secret_key=["new", b"old"],
        autoclose=False,
        strict=True,
        responses=responses,
        redirects=redirects,
    )
    s = backend.settings
    assert backend.cache_name == "my-cache"
    assert s.expire_after == datetime(2030, 1, 1, tzinfo=timezone.utc)
    assert s.urls_expire_after.match("https://example.com/api/x") == (True, 60)
    assert s.allowed_codes == frozenset({200, 203, 404})
    assert s.allowed_methods == frozenset({"GET", "POST"})
    assert s.match_headers == ("Accept",)
    assert s.ignored_params == frozenset({"token", "X-Api-Key"})
    assert s.key_settings == KeySettings(
        ignored_params=frozenset({"token", "X-Api-Key"}),
        include_headers=False,
        match_headers=("Accept",),
    )
    assert s.filter_fn is keep
    assert s.secret_key == ("new", b"old")
    assert (s.autoclose, s.strict) == (False, True)
    assert backend.responses is responses
    assert backend.redirects is redirects
    assert backend.codec.signed is True
    assert backend.create_key(object()) == "k"  # type: ignore[arg-type]


def test_bounds_accept_none_for_unbounded_and_normalise_numbers() -> None:
    s = CacheBackend(
        max_body_size=None, storage_budget=None, breaker_threshold=None, breaker_cooldown=1
    ).settings
    assert (s.max_body_size, s.storage_budget, s.breaker_threshold) == (None, None, None)
    assert s.breaker_cooldown == 1.0
    s = CacheBackend(
        max_body_size=0, storage_budget=timedelta(milliseconds=250), breaker_threshold=1
    ).settings
    assert (s.max_body_size, s.storage_budget, s.breaker_threshold) == (0, 0.25, 1)


def test_none_means_empty_for_optional_lists() -> None:
    s = CacheSettings.build(match_headers=None, ignored_params=None, urls_expire_after=None)
    assert s.match_headers == ()
    assert s.ignored_params == frozenset()
    assert s.urls_expire_after.match("https://x/") == (False, None)


@pytest.mark.parametrize("secret_key", ["k", b"k", ("a", "b"), ["a"]])
def test_secret_key_forms(secret_key: Any) -> None:
    assert CacheBackend(secret_key=secret_key).codec.signed is True


def test_match_headers_with_include_headers_is_a_config_error() -> None:
    # include_headers=True keys by every header, so match_headers would silently do nothing.
    with pytest.raises(ConfigError, match=r"^match_headers"):
        CacheBackend(include_headers=True, match_headers=["Accept"])
    assert CacheBackend(include_headers=True).settings.include_headers is True


def test_bounds_can_be_set_in_a_backend_url() -> None:
    url = "memory://?max_body_size=1048576&storage_budget=0.5&breaker_threshold=none&breaker_cooldown=2"
    s = CacheBackend.from_url(url).settings
    assert (s.max_body_size, s.storage_budget, s.breaker_threshold) == (1048576, 0.5, None)
    assert s.breaker_cooldown == 2.0
    with pytest.raises(ConfigError, match="storage_budget"):
        CacheBackend.from_url("memory://?storage_budget=0")
