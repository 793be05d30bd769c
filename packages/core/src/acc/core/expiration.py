"""Expiration values: what users may pass as ``expire_after`` and what each means.

An expiration is one of:

* ``NEVER_EXPIRE`` (``-1``) or ``None``: fresh until deleted;
* ``DO_NOT_CACHE`` (``0``): never stored;
* a positive number of seconds (``int`` or ``float``) or a positive ``timedelta``:
  relative to the moment the response is received;
* a ``datetime``: an absolute moment; a naive one is taken as UTC.

Values are checked once, when settings are built (:func:`validate_expiration`), and turned
into a moment by :func:`expires_at` with the current time passed in, never read here.
``urls_expire_after`` maps glob patterns to expirations; :class:`URLExpirations` matches a
URL against them, first match wins.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import datetime, timedelta, timezone
from fnmatch import translate
from typing import Final

import attrs

from acc.core.errors import ConfigError

__all__ = [
    "DO_NOT_CACHE",
    "NEVER_EXPIRE",
    "ExpirationTime",
    "URLExpirations",
    "expires_at",
    "validate_expiration",
]

NEVER_EXPIRE: Final = -1
"""Keep a response fresh until it is deleted."""

DO_NOT_CACHE: Final = 0
"""Never store a response."""

ExpirationTime = int | float | timedelta | datetime | None
"""Anything accepted as an expiration: see the module docstring."""


def validate_expiration(value: object, argument: str) -> ExpirationTime:
    """Check an expiration value and return it normalised.

    Args:
        value: What the user passed.
        argument: The argument's name, for the error message.

    Returns:
        ``NEVER_EXPIRE`` for ``None`` or ``-1``; otherwise the value, with a naive
        ``datetime`` made aware as UTC.

    Raises:
        ConfigError: The value is not an expiration.
    """
    if value is None or (type(value) is int and value == NEVER_EXPIRE):
        return NEVER_EXPIRE
    if isinstance(value, bool):
        raise ConfigError(argument, f"expected seconds, a timedelta or a datetime, not {value!r}")
    if isinstance(value, (int, float)):
        if value != value or value in (float("inf"), float("-inf")):
            raise ConfigError(argument, f"must be a finite number of seconds, not {value!r}")
        if value < 0:
            raise ConfigError(argument, f"must be >= 0 seconds or NEVER_EXPIRE (-1), not {value!r}")
        return value
    if isinstance(value, timedelta):
        if value < timedelta(0):
            raise ConfigError(argument, f"must not be a negative timedelta, not {value!r}")
        return value
    if isinstance(value, datetime):
        return value if value.tzinfo is not None else value.replace(tzinfo=timezone.utc)
    raise ConfigError(
        argument,
        f"expected seconds, a timedelta, a datetime, NEVER_EXPIRE or DO_NOT_CACHE, "
        f"not {type(value).__name__} {value!r}",
    )


def expires_at(value: ExpirationTime, now: datetime) -> datetime | None:
    """Turn a validated expiration into the moment a response stops being fresh.

    Args:
        value: A value returned by :func:`validate_expiration`.
        now: The current time, aware.

    Returns:
        ``None`` for never (or for a moment past the last representable datetime);
        otherwise an aware UTC datetime. ``DO_NOT_CACHE`` gives ``now``: already
        expired, so callers treat it as "do not store".
    """
    if value is None or (type(value) is int and value == NEVER_EXPIRE):
        return None
    if isinstance(value, datetime):
        return value.astimezone(timezone.utc)
    try:
        if isinstance(value, timedelta):
            return now + value
        return now + timedelta(seconds=value)
    except OverflowError:
        # Later than any datetime (timedelta.max, 1e12 seconds): that is never.
        return None


def _strip_scheme(url: str) -> str:
    _scheme, sep, rest = url.partition("://")
    return rest if sep else url


@attrs.frozen
class URLExpirations:
    """Glob patterns mapped to expirations, matched against URLs without their scheme.

    A pattern matches a URL that starts with it, so ``"api.example.com/v1"`` covers
    everything below ``/v1``; ``*`` matches any run of characters (``/`` included). The
    first pattern, in the order given, that matches wins.
    """

    rules: tuple[tuple[re.Pattern[str], str, ExpirationTime], ...] = ()

    @classmethod
    def from_mapping(cls, mapping: Mapping[str, object] | None, argument: str) -> URLExpirations:
        """Validate ``urls_expire_after`` and compile its patterns once."""
        if mapping is None:
            return cls()
        if not isinstance(mapping, Mapping):
            raise ConfigError(
                argument, f"expected a mapping of glob pattern to expiration, not {mapping!r}"
            )
        rules = []
        for pattern, value in mapping.items():
            if not isinstance(pattern, str) or not pattern:
                raise ConfigError(argument, f"patterns must be non-empty strings, not {pattern!r}")
            glob = _strip_scheme(pattern).rstrip("*") + "*"
            rules.append(
                (
                    re.compile(translate(glob), re.DOTALL),
                    pattern,
                    validate_expiration(value, f"{argument}[{pattern!r}]"),
                )
            )
        return cls(tuple(rules))

    def match(self, url: str) -> tuple[bool, ExpirationTime]:
        """Return ``(True, expiration)`` for the first matching pattern, else ``(False, None)``."""
        if not self.rules:
            return False, None
        target = _strip_scheme(url)
        for regex, _pattern, value in self.rules:
            if regex.match(target):
                return True, value
        return False, None
