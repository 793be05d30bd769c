"""Cache settings: every option of :class:`~acc.core.CacheBackend`, checked once.

:class:`CacheSettings` is built from the façade's keyword arguments. Each value is checked
when the backend is constructed and a wrong one raises :class:`ConfigError` naming the
argument, so a mistake shows up where it was made rather than on the first request.

Two options have a default that depends on ``cache_control``: left unset, ``expire_after``
is never-expire without ``cache_control`` and no fallback at all with it (a response
without explicit or heuristic freshness is then stale, RFC 9111 §4.2), and
``allowed_codes`` is ``(200,)`` without ``cache_control`` and RFC 9111's own rule with it
(§3: a heuristically cacheable status, or any final status with explicit freshness).
``expire_after_set`` and ``allowed_codes_set`` record whether the user gave them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from datetime import timedelta
from typing import Any

import attrs

from acc.core.errors import ConfigError
from acc.core.expiration import (
    NEVER_EXPIRE,
    ExpirationTime,
    URLExpirations,
    validate_expiration,
)
from acc.core.http.decisions import UNSET, _Unset
from acc.core.keys import CREDENTIAL_HEADERS, KeySettings

__all__ = [
    "DEFAULT_BREAKER_COOLDOWN",
    "DEFAULT_BREAKER_THRESHOLD",
    "DEFAULT_MAX_BODY_SIZE",
    "DEFAULT_STORAGE_BUDGET",
    "DEFAULT_WRITE_QUEUE",
    "CacheSettings",
    "check_cache_name",
]

DEFAULT_MAX_BODY_SIZE = 16 * 1024 * 1024
"""Bytes of body above which a response streams to the caller and is not stored."""
DEFAULT_STORAGE_BUDGET = 1.0
"""Seconds a request may wait on storage in all before it goes on without it."""
DEFAULT_BREAKER_THRESHOLD = 5
"""Consecutive storage failures (errors or timeouts) that open the circuit breaker."""
DEFAULT_BREAKER_COOLDOWN = 10.0
"""Seconds storage is skipped once the breaker is open, before one request probes it."""

DEFAULT_WRITE_QUEUE = 1000
"""Entries at most waiting to be written behind their responses (``write_behind=True``)."""

_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "QUERY"})


def _names(value: object, argument: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, (str, bytes)) or not isinstance(value, Iterable):
        raise ConfigError(argument, f"expected a list of names, not {value!r}")
    names = tuple(value)
    for name in names:
        if not isinstance(name, str) or not name:
            raise ConfigError(argument, f"names must be non-empty strings, not {name!r}")
    return names


def check_cache_name(value: object) -> str:
    """Check a cache name: a non-empty string a file system, a key prefix or a database takes.

    A NUL byte is refused (no file name, SQLite path or database name may hold one, so
    every request would fail open), and so is text that cannot be written as UTF-8.

    Raises:
        ConfigError: An invalid name, naming ``cache_name``.
    """
    if not isinstance(value, str) or not value:
        raise ConfigError("cache_name", f"expected a non-empty string, not {value!r}")
    if "\x00" in value:
        raise ConfigError("cache_name", f"must not contain a NUL character: {value!r}")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ConfigError("cache_name", f"must be valid Unicode text, not {value!r}") from None
    return value


def _flag(value: object, argument: str) -> bool:
    if not isinstance(value, bool):
        raise ConfigError(argument, f"expected True or False, not {value!r}")
    return value


def _callable(value: object, argument: str) -> Any:
    if value is not None and not callable(value):
        raise ConfigError(argument, f"expected a callable or None, not {value!r}")
    return value


def _codes(value: object) -> frozenset[int]:
    if isinstance(value, (str, bytes)) or not isinstance(value, Iterable):
        raise ConfigError("allowed_codes", f"expected a list of status codes, not {value!r}")
    codes = tuple(value)
    for code in codes:
        if isinstance(code, bool) or not isinstance(code, int) or not 100 <= code <= 599:
            raise ConfigError("allowed_codes", f"{code!r} is not an HTTP status code (100-599)")
    return frozenset(codes)


def _methods(value: object) -> frozenset[str]:
    methods = _names(value, "allowed_methods")
    upper = frozenset(m.upper() for m in methods)
    unknown = upper - _METHODS
    if unknown:
        raise ConfigError("allowed_methods", f"unknown method(s) {sorted(unknown)}")
    return upper


def _secret_key(value: object) -> tuple[str | bytes, ...]:
    if value is None:
        return ()
    keys: Sequence[object] = [value] if isinstance(value, (str, bytes)) else value  # type: ignore[assignment]
    if not isinstance(keys, Sequence) or not keys:
        raise ConfigError("secret_key", "expected a key or a non-empty list of keys")
    for key in keys:
        if not isinstance(key, (str, bytes)) or not key:
            raise ConfigError("secret_key", "keys must be non-empty str or bytes")
    return tuple(keys)  # type: ignore[arg-type]


def _size(value: object, argument: str) -> int | None:
    """Check a size in bytes: ``None`` (no bound) or an ``int`` >= 0."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ConfigError(argument, f"expected a number of bytes >= 0 or None, not {value!r}")
    return value


def _seconds(value: object, argument: str, *, optional: bool) -> float | None:
    """Check a duration: a finite number of seconds above 0 (or ``None`` when optional)."""
    if value is None and optional:
        return None
    if isinstance(value, timedelta):
        value = value.total_seconds()
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, float))
        or value != value
        or not 0 < value < float("inf")
    ):
        expected = "seconds above 0" + (" or None" if optional else "")
        raise ConfigError(argument, f"expected {expected}, not {value!r}")
    return float(value)


def _cooldown(value: object) -> float:
    seconds = _seconds(value, "breaker_cooldown", optional=False)
    assert seconds is not None  # not optional: None raised
    return seconds


def _threshold(value: object) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigError(
            "breaker_threshold", f"expected a number of failures >= 1 or None, not {value!r}"
        )
    return value


def _write_behind(value: object) -> int:
    """Check ``write_behind``: off (``False``, 0), on (``True``), or a queue bound (entries)."""
    if value is True:
        return DEFAULT_WRITE_QUEUE
    if value is False or value is None:
        return 0
    if isinstance(value, int) and value >= 0:
        return value
    raise ConfigError(
        "write_behind", f"expected True, False or a number of entries >= 0, not {value!r}"
    )


def _stale_window(value: object, argument: str) -> bool | float:
    """Check a stale window (RFC 5861): off, any staleness, or a number of seconds.

    ``False``, ``None`` and zero turn it off; ``True`` accepts any staleness; a positive
    number of seconds or ``timedelta`` bounds it.
    """
    if value is None or value is False:
        return False
    if value is True:
        return True
    if isinstance(value, timedelta):
        value = value.total_seconds()
    if isinstance(value, (int, float)):
        if value != value or value in (float("inf"), float("-inf")) or value < 0:
            raise ConfigError(
                argument, f"must be True, False or a finite number of seconds >= 0, not {value!r}"
            )
        return float(value) if value else False
    raise ConfigError(
        argument,
        f"expected True, False, seconds or a timedelta, not {type(value).__name__} {value!r}",
    )


@attrs.frozen(kw_only=True)
class CacheSettings:
    """The validated options of a cache backend. See :class:`~acc.core.CacheBackend`.

    ``stale_if_error`` and ``stale_while_revalidate`` are stale windows: ``False`` (off),
    ``True`` (any staleness) or a number of seconds. ``expire_after_set`` and
    ``allowed_codes_set`` say whether the user gave those two options (see the module
    docstring); unset, they hold the defaults of ``cache_control=False``. ``max_body_size``,
    ``storage_budget`` and ``breaker_threshold`` are ``None`` when unbounded; ``write_behind``
    is the bound of the write-behind queue in entries (0: every write inline).
    """

    cache_name: str = "acc-cache"
    expire_after: ExpirationTime = NEVER_EXPIRE
    expire_after_set: bool = False
    urls_expire_after: URLExpirations = attrs.field(factory=URLExpirations)
    allowed_codes: frozenset[int] = frozenset({200})
    allowed_codes_set: bool = False
    allowed_methods: frozenset[str] = frozenset({"GET", "HEAD"})
    include_headers: bool = False
    match_headers: tuple[str, ...] = ()
    ignored_params: frozenset[str] = frozenset()
    cache_control: bool = False
    filter_fn: Callable[..., Any] | None = None
    key_fn: Callable[..., str] | None = None
    stale_if_error: bool | float = False
    stale_while_revalidate: bool | float = False
    secret_key: tuple[str | bytes, ...] = ()
    store_cookies: bool = False
    autoclose: bool = True
    strict: bool = False
    credential_headers: frozenset[str] = CREDENTIAL_HEADERS
    credential_params: frozenset[str] = frozenset()
    max_body_size: int | None = DEFAULT_MAX_BODY_SIZE
    storage_budget: float | None = DEFAULT_STORAGE_BUDGET
    breaker_threshold: int | None = DEFAULT_BREAKER_THRESHOLD
    breaker_cooldown: float = DEFAULT_BREAKER_COOLDOWN
    write_behind: int = DEFAULT_WRITE_QUEUE
    key_settings: KeySettings = attrs.field(factory=KeySettings)

    @property
    def redacted_params(self) -> frozenset[str]:
        """Query parameters (form fields, JSON keys) whose values are never stored."""
        return self.ignored_params | self.credential_params

    @property
    def redacted_headers(self) -> frozenset[str]:
        """Request headers (lower case) whose values are never stored."""
        return self.credential_headers | {name.lower() for name in self.ignored_params}

    @classmethod
    def build(
        cls,
        *,
        cache_name: object = "acc-cache",
        expire_after: object = UNSET,
        urls_expire_after: object = None,
        allowed_codes: object = None,
        allowed_methods: object = ("GET", "HEAD"),
        include_headers: object = False,
        match_headers: object = None,
        ignored_params: object = (),
        credential_headers: object = (),
        credential_params: object = (),
        cache_control: object = False,
        filter_fn: object = None,
        key_fn: object = None,
        stale_if_error: object = False,
        stale_while_revalidate: object = False,
        secret_key: object = None,
        store_cookies: object = False,
        autoclose: object = True,
        strict: object = False,
        max_body_size: object = DEFAULT_MAX_BODY_SIZE,
        storage_budget: object = DEFAULT_STORAGE_BUDGET,
        breaker_threshold: object = DEFAULT_BREAKER_THRESHOLD,
        breaker_cooldown: object = DEFAULT_BREAKER_COOLDOWN,
        write_behind: object = True,
    ) -> CacheSettings:
        """Check every option and return the settings; ``ConfigError`` on the first bad one."""
        cache_name = check_cache_name(cache_name)
        ignored = frozenset(_names(ignored_params, "ignored_params"))
        include = _flag(include_headers, "include_headers")
        match = _names(match_headers, "match_headers")
        if include and match:
            raise ConfigError(
                "match_headers", "has no effect with include_headers=True (all headers count)"
            )
        expire_after_set = not isinstance(expire_after, _Unset)
        allowed_codes_set = allowed_codes is not None
        secret_headers = CREDENTIAL_HEADERS | {
            name.lower() for name in _names(credential_headers, "credential_headers")
        }
        secret_params = frozenset(_names(credential_params, "credential_params"))
        return cls(
            cache_name=cache_name,
            expire_after=(
                validate_expiration(expire_after, "expire_after")
                if expire_after_set
                else NEVER_EXPIRE
            ),
            expire_after_set=expire_after_set,
            urls_expire_after=URLExpirations.from_mapping(
                urls_expire_after,  # type: ignore[arg-type]
                "urls_expire_after",
            ),
            allowed_codes=_codes(allowed_codes) if allowed_codes_set else frozenset({200}),
            allowed_codes_set=allowed_codes_set,
            allowed_methods=_methods(allowed_methods),
            include_headers=include,
            match_headers=match,
            ignored_params=ignored,
            cache_control=_flag(cache_control, "cache_control"),
            filter_fn=_callable(filter_fn, "filter_fn"),
            key_fn=_callable(key_fn, "key_fn"),
            stale_if_error=_stale_window(stale_if_error, "stale_if_error"),
            stale_while_revalidate=_stale_window(stale_while_revalidate, "stale_while_revalidate"),
            secret_key=_secret_key(secret_key),
            store_cookies=_flag(store_cookies, "store_cookies"),
            autoclose=_flag(autoclose, "autoclose"),
            strict=_flag(strict, "strict"),
            credential_headers=secret_headers,
            credential_params=secret_params,
            max_body_size=_size(max_body_size, "max_body_size"),
            storage_budget=_seconds(storage_budget, "storage_budget", optional=True),
            breaker_threshold=_threshold(breaker_threshold),
            breaker_cooldown=_cooldown(breaker_cooldown),
            write_behind=_write_behind(write_behind),
            key_settings=KeySettings(
                ignored_params=ignored,
                include_headers=include,
                match_headers=match,
                credential_headers=secret_headers,
                credential_params=secret_params,
            ),
        )
