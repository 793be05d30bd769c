"""Age, freshness lifetime and how long storage keeps an entry.

These are the calculations of RFC 9111 §4.2, done once, when a response is stored: the
moment it stops being fresh becomes ``CachedResponse.expires``, so a hit compares two
datetimes and parses nothing.

Rules this module keeps:

1. The freshness lifetime is, first match wins (RFC 9111 §4.2.1): the response's
   ``max-age`` (an invalid value means already stale); ``Expires`` minus ``Date`` (an
   ``Expires`` that is not a valid HTTP-date, such as ``0`` or a date in another zone,
   means already stale, RFC 9111 §5.3, and so do two ``Expires`` field lines, RFC 9111
   §4.2.1); otherwise a heuristic lifetime. ``s-maxage`` is for shared caches and is
   ignored: acc is a private cache.
2. Heuristic freshness (RFC 9111 §4.2.2) applies only without an explicit expiry, and
   only to a status that is heuristically cacheable (RFC 9110 §15.1) or a response
   marked ``public``: 10% of the time between ``Last-Modified`` and ``Date``, at most
   one day.
3. The age a response arrives with is ``max(apparent_age, Age)``, where the apparent age
   is how far ``Date`` lies before the moment the response was received (RFC 9111
   §4.2.3); a missing or unreadable ``Date`` is taken as that moment (RFC 9110 §6.6.1).
   ``Age`` is read by its first member (RFC 9111 §5.1). The entry expires at
   ``received + lifetime - age``. An ``Age`` whose first member is not delta-seconds
   leaves the age unknown, and such a response is taken as already stale: RFC 9111
   §4.2.1 encourages treating invalid freshness information so, and it is the side that
   never serves a response older than its lifetime allows.
4. Storage keeps an entry past its freshness when it may still be used: with a validator
   (``ETag``/``Last-Modified``) it can be revalidated, so it is kept for
   :data:`REVALIDATION_RETENTION` past its expiry, or as long again as its lifetime when
   that is longer; inside a stale window (RFC 5861) it is kept to the end of the window,
   and an unbounded window keeps it until deleted; an entry a request's ``max-stale``
   may still accept (RFC 9111 §5.2.1.2) is kept for :data:`STALE_RETENTION`. Never
   shorter than its freshness.
5. A response served from the cache carries ``Age``: its current age, replacing the one
   it was stored with (RFC 9111 §4, §5.1).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Final

from acc.core.http.cachecontrol import (
    INVALID,
    Directives,
    age_value,
    header_values,
    parse_http_date,
)
from acc.core.models import HeaderPairs, find_header

__all__ = [
    "HEURISTIC_CAP",
    "HEURISTIC_FRACTION",
    "HEURISTIC_STATUSES",
    "REVALIDATION_RETENTION",
    "STALE_RETENTION",
    "StaleWindow",
    "age_header",
    "current_age",
    "explicit_lifetime",
    "header_expires",
    "heuristic_lifetime",
    "initial_age",
    "keep_until",
    "within_window",
]

HEURISTIC_STATUSES: Final = frozenset({200, 203, 204, 206, 300, 301, 308, 404, 405, 410, 414, 501})
"""Statuses whose responses are heuristically cacheable (RFC 9110 §15.1)."""

HEURISTIC_FRACTION: Final = 0.1
"""The share of a response's age since ``Last-Modified`` it stays fresh (rule 2)."""

HEURISTIC_CAP: Final = timedelta(days=1)
"""The longest heuristic freshness lifetime (rule 2)."""

REVALIDATION_RETENTION: Final = timedelta(days=7)
"""How long past its expiry storage keeps an entry that has a validator (rule 4)."""

STALE_RETENTION: Final = timedelta(days=1)
"""How long past its expiry storage keeps an entry only a request's ``max-stale`` can use
(rule 4): a request asking for a staler response finds none."""

StaleWindow = bool | float
"""A stale window: ``False`` for none, ``True`` for any staleness, else seconds."""

_ZERO: Final = timedelta(0)


def _date(headers: HeaderPairs, received: datetime) -> datetime:
    return parse_http_date(find_header(headers, "date"), reference=received) or received


def initial_age(headers: HeaderPairs, received: datetime) -> timedelta:
    """The age a response had when it was received (rule 3); an unreadable ``Age`` counts 0."""
    apparent = max(_ZERO, received - _date(headers, received))
    seconds = age_value(headers)
    stated = timedelta(seconds=seconds) if seconds is not None and seconds != INVALID else _ZERO
    return max(apparent, stated)


def current_age(headers: HeaderPairs, received: datetime, now: datetime) -> timedelta:
    """The age of a stored response at ``now``: its initial age plus time in the cache."""
    return initial_age(headers, received) + max(_ZERO, now - received)


def age_header(headers: HeaderPairs, received: datetime, now: datetime) -> HeaderPairs:
    """``headers`` as a response served from the cache at ``now`` carries them (rule 5).

    Every ``Age`` line goes; one ``Age`` with the current age, in whole seconds, is added.
    """
    age = int(current_age(headers, received, now).total_seconds())
    kept = tuple((n, v) for n, v in headers if n.lower() != "age")
    return (*kept, ("Age", str(age)))


def explicit_lifetime(
    headers: HeaderPairs, directives: Directives, received: datetime
) -> timedelta | None:
    """The freshness lifetime the response states, ``None`` when it states none (rule 1)."""
    max_age = directives.max_age
    if max_age is not None:
        return _ZERO if max_age == INVALID else timedelta(seconds=max_age)
    expires = header_values(headers, "expires")
    if not expires:
        return None
    moment = parse_http_date(expires[0], reference=received) if len(expires) == 1 else None
    if moment is None:
        return _ZERO
    return max(_ZERO, moment - _date(headers, received))


def heuristic_lifetime(
    headers: HeaderPairs, status: int, received: datetime, *, public: bool = False
) -> timedelta | None:
    """A heuristic freshness lifetime from ``Last-Modified`` (rule 2), or ``None``.

    ``public``: the response says ``Cache-Control: public``, which makes any final status
    heuristically cacheable (RFC 9111 §4.2.2).
    """
    if status not in HEURISTIC_STATUSES and not (public and status >= 200):
        return None
    modified = parse_http_date(find_header(headers, "last-modified"), reference=received)
    if modified is None:
        return None
    since = _date(headers, received) - modified
    if since <= _ZERO:
        return None
    return min(since * HEURISTIC_FRACTION, HEURISTIC_CAP)


def header_expires(
    headers: HeaderPairs, directives: Directives, status: int, received: datetime
) -> datetime | None:
    """When a response stops being fresh by its own headers (rules 1-3), or ``None``.

    ``None`` means the headers say nothing about freshness, so the settings decide. An
    unreadable ``Age`` makes a response that has a lifetime already stale (rule 3).
    """
    lifetime = explicit_lifetime(headers, directives, received)
    if lifetime is None:
        lifetime = heuristic_lifetime(headers, status, received, public=directives.public)
        if lifetime is None:
            return None
    if age_value(headers) == INVALID:
        return received
    try:
        return received + lifetime - initial_age(headers, received)
    except OverflowError:
        return None


def within_window(window: StaleWindow, staleness: timedelta) -> bool:
    """Whether ``staleness`` lies inside a stale window."""
    if window is True:
        return True
    if window is False:
        return False
    return staleness <= timedelta(seconds=window)


def keep_until(
    expires: datetime | None,
    received: datetime,
    *,
    revalidatable: bool,
    windows: Iterable[StaleWindow] = (),
    max_stale: bool = False,
) -> datetime | None:
    """Until when storage keeps an entry that is fresh until ``expires`` (rule 4).

    Args:
        expires: When the entry stops being fresh; ``None`` for never.
        received: When it was received.
        revalidatable: It has a validator.
        windows: The stale windows that apply to it.
        max_stale: A request's ``max-stale`` may accept it once stale.

    Returns:
        ``None`` for until deleted; otherwise a moment never before ``expires``.
    """
    if expires is None:
        return None
    latest = expires
    try:
        if revalidatable:
            latest = max(latest, expires + max(expires - received, REVALIDATION_RETENTION))
        if max_stale:
            latest = max(latest, expires + STALE_RETENTION)
        for window in windows:
            if window is True:
                return None
            if window is not False:
                latest = max(latest, expires + timedelta(seconds=window))
    except OverflowError:
        return None
    return latest
