"""The cache policy: pure functions that decide, given facts, what the adapter does.

Theory of operation: the session adapter asks :func:`decide_lookup` what to do with a
request and the entry found for it (if any), performs the decision's I/O (return the
entry; return it and refresh it in the background; send a conditional request; fetch;
answer 504), and asks :func:`decide_store` what to keep of the response it got, or
:func:`decide_error` whether a failed fetch may be answered with the stored entry. Each
decision is a small frozen value; the adapter dispatches on its type.

Rules this module keeps:

1. Nothing here performs I/O, reads the clock or knows the HTTP client. The current time
   is an argument, so every rule is testable without sleeping.
2. Precedence of freshness: request ``Cache-Control`` > the response's ``Cache-Control``
   and ``Expires`` (heuristic freshness counting as the response's own) > the request's
   ``expire_after`` > the first matching ``urls_expire_after`` pattern > the session's
   ``expire_after``. Headers count only with ``cache_control=True``; otherwise the
   settings alone decide. With ``cache_control=True`` the settings are a fallback only
   when the user gave one: without it, a response with neither explicit nor heuristic
   freshness is stale on arrival (RFC 9111 §4.2), kept only to be revalidated. Response
   freshness is computed once, at store time, into ``expires`` (RFC 9111 §4.2; see
   :mod:`acc.core.http.freshness`); request directives are applied at lookup (RFC 9111
   §5.2.1).
3. ``force_refresh`` ignores the stored entry; ``refresh`` and a request ``no-cache``
   (or ``Pragma: no-cache`` without ``Cache-Control``, RFC 9111 §5.4) revalidate it when
   it has a validator and fetch anew when it has none (RFC 9111 §5.2.1.4), except that a
   fresh ``immutable`` entry is used as it is on ``refresh`` (RFC 8246 §2).
   ``only_if_cached`` (or the request directive) never goes to the network: without a
   usable entry the answer is 504 (RFC 9111 §5.2.1.7).
4. A request ``max-age`` rejects an entry older than it, ``min-fresh`` one fresh for less
   than it, and ``max-stale`` accepts an entry stale by at most it (RFC 9111 §5.2.1.1-3).
5. A stale entry with a validator is revalidated, not thrown away (RFC 9111 §4.3.1); a
   ``304 Not Modified`` that selects it (RFC 9111 §4.3.4, weak ETag comparison as RFC
   9110 §8.8.3.2 allows) refreshes it with the new headers and a new freshness.
6. A response ``no-store`` or a request ``no-store`` is not stored (RFC 9111 §5.2.1.5,
   §5.2.2.5); ``no-cache`` is stored already stale, so every use revalidates it (RFC 9111
   §5.2.2.4); ``private`` is stored (acc is a private cache, §5.2.2.7); ``Vary: *`` is
   never stored, since it can never be served (RFC 9111 §4.1).
7. Stale-while-revalidate (RFC 5861 §3): within the window (the response directive with
   ``cache_control=True``, else the setting), a stale entry is served at once and
   refreshed in the background, unless the request asks for a fresher response
   (``no-cache``, ``max-age``, ``min-fresh``, a ``max-stale`` the entry is past); request
   directives acc does not know are
   ignored (RFC 9111 §5.2.3). Stale-if-error (RFC 5861 §4): within its window (the
   response directive, then the request directive, with ``cache_control=True``; else the
   setting), a 5xx answer or a failed connection is answered with the stored entry.
8. Serving stale is never allowed for an entry marked ``must-revalidate`` (RFC 9111
   §5.2.2.2) or ``no-cache`` (§5.2.2.4: never used without validation), whichever way
   it would be served (``max-stale``, stale-while-revalidate, stale-if-error).
9. A response is stored only if its method and status are allowed and it can still be
   used: fresh, or revalidatable, or inside a stale window. A settings expiration of
   ``DO_NOT_CACHE`` or in the past is never stored. With ``cache_control=True`` and no
   ``allowed_codes`` given, RFC 9111 §3 decides the status: a heuristically cacheable
   one (RFC 9110 §15.1), or any final status when the response has explicit freshness
   (``max-age``, ``Expires``) or says ``public`` or ``private``; never ``206`` (acc does
   not combine partial content, §3.3) nor ``304``. ``must-understand`` (§5.2.2.3)
   stores a response only with a status whose rules acc implements, and then
   overrides ``no-store``.
10. A method not known to be safe (RFC 9110 §9.2.1: anything but GET, HEAD, OPTIONS,
    TRACE and the registered safe extensions), answered with a non-error status,
    invalidates the entries of its target URL, and of ``Location``/``Content-Location``
    when they share its origin (RFC 9111 §4.4).
11. With ``cache_control=True``, an entry served without validation carries ``Age``,
    its current age (RFC 9111 §4, §5.1), and a ``GET`` with one byte ``Range`` is
    answered from a stored ``200`` with the ``206`` the origin would send (RFC 9110
    §14; see :mod:`acc.core.http.ranges`).
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from email.utils import format_datetime
from typing import Final

import attrs

from acc.core.expiration import ExpirationTime, expires_at
from acc.core.http.cachecontrol import (
    NO_DIRECTIVES,
    Directives,
    etags_match,
    header_values,
    parse_cache_control,
)
from acc.core.http.decisions import (
    UNSET,
    Fetch,
    GatewayTimeout,
    LookupDecision,
    RequestOptions,
    Revalidate,
    StaleIfError,
    StaleWhileRevalidate,
    StoreDecision,
    UseCached,
    _Unset,
)
from acc.core.http.freshness import (
    HEURISTIC_STATUSES,
    StaleWindow,
    age_header,
    current_age,
    header_expires,
    keep_until,
    within_window,
)
from acc.core.http.invalidation import (
    SAFE_METHODS,
    UNSAFE_METHODS,
    invalidated_urls,
    is_unsafe_method,
)
from acc.core.http.ranges import ranged_entry
from acc.core.http.vary import varying_headers
from acc.core.models import CachedResponse, HeaderPairs, find_header
from acc.core.settings import CacheSettings

_DEFAULT_SETTINGS: Final = CacheSettings()

__all__ = [
    "SAFE_METHODS",
    "UNDERSTOOD_STATUSES",
    "UNSAFE_METHODS",
    "UNSET",
    "Fetch",
    "GatewayTimeout",
    "LookupDecision",
    "RequestOptions",
    "Revalidate",
    "StaleIfError",
    "StaleWhileRevalidate",
    "StoreDecision",
    "UseCached",
    "conditional_headers",
    "decide_error",
    "decide_lookup",
    "decide_store",
    "entry_storage_expiry",
    "invalidated_urls",
    "is_cacheable_method",
    "is_unsafe_method",
    "merge_not_modified",
    "not_modified_selects",
    "refresh_not_modified",
    "request_directives",
    "served_entry",
]

UNDERSTOOD_STATUSES: Final = frozenset(
    {200, 201, 202, 203, 204, 205, 300, 301, 302, 303, 305, 307, 308}
    | set(range(400, 418))
    | {421, 422, 426, 500, 501, 502, 503, 504, 505}
)
"""Statuses whose caching rules acc implements (rule 9, ``must-understand``): the final
statuses of RFC 9110 §15, less ``206`` (partial content is never stored) and ``304``."""

_NEVER_STORED: Final = frozenset({206, 304})


def is_cacheable_method(method: str, settings: CacheSettings) -> bool:
    """Whether requests with ``method`` are looked up and stored at all."""
    return method.upper() in settings.allowed_methods


def conditional_headers(entry: CachedResponse) -> HeaderPairs:
    """The validators to send when revalidating ``entry`` (RFC 9110 §13.1)."""
    headers: list[tuple[str, str]] = []
    if entry.etag is not None:
        headers.append(("If-None-Match", entry.etag))
    if entry.last_modified is not None:
        headers.append(("If-Modified-Since", entry.last_modified))
    return tuple(headers)


def request_directives(headers: HeaderPairs, settings: CacheSettings) -> Directives:
    """The request's caching directives; none unless ``cache_control`` (rules 2, 3)."""
    if not settings.cache_control or not headers:
        return NO_DIRECTIVES
    values = header_values(headers, "cache-control")
    if values:
        return parse_cache_control(values)
    if any("no-cache" in value.lower() for value in header_values(headers, "pragma")):
        return Directives((("no-cache", None),))
    return NO_DIRECTIVES


def _entry_directives(entry: CachedResponse) -> Directives:
    return parse_cache_control(header_values(entry.headers, "cache-control"))


def _revalidate_or_fetch(entry: CachedResponse, reason: str) -> Revalidate | Fetch:
    if entry.has_validators:
        return Revalidate(entry, conditional_headers(entry))
    return Fetch(reason)


def _satisfies_request(entry: CachedResponse, request: Directives, now: datetime) -> bool:
    """Whether a fresh entry meets the request's ``max-age`` and ``min-fresh`` (rule 4)."""
    max_age = request.max_age
    if max_age is not None:
        age = current_age(entry.headers, entry.created_at, now)
        if age > timedelta(seconds=max(max_age, 0)):
            return False
    min_fresh = request.min_fresh
    return (
        min_fresh is None
        or entry.expires is None
        or entry.expires - now >= timedelta(seconds=max(min_fresh, 0))
    )


def _max_stale_allows(request: Directives, staleness: timedelta, stored: Directives) -> bool:
    max_stale = request.max_stale
    if max_stale is None or stored.must_revalidate or stored.no_cache:
        return False
    return staleness <= timedelta(seconds=max_stale)


def _window(directive: int | None, setting: StaleWindow, settings: CacheSettings) -> StaleWindow:
    if settings.cache_control and directive is not None:
        return float(directive)
    return setting


def _only_if_cached(
    entry: CachedResponse | None, request: Directives, now: datetime
) -> UseCached | GatewayTimeout:
    if entry is None:
        return GatewayTimeout()
    if not entry.is_expired(now):
        if request is NO_DIRECTIVES or _satisfies_request(entry, request, now):
            return UseCached(entry)
        return GatewayTimeout()
    assert entry.expires is not None
    if request.max_stale is not None and _max_stale_allows(
        request, now - entry.expires, _entry_directives(entry)
    ):
        return UseCached(entry)
    return GatewayTimeout()


def decide_lookup(
    entry: CachedResponse | None,
    options: RequestOptions,
    now: datetime,
    *,
    settings: CacheSettings = _DEFAULT_SETTINGS,
    request_headers: HeaderPairs = (),
) -> LookupDecision:
    """Decide what to do with a cacheable request, given the entry stored for it.

    A fresh entry with ``cache_control=False`` (or without request directives) is
    decided without parsing a header.

    Args:
        entry: The decoded entry under the request's key, or ``None``.
        options: The request's cache options.
        now: The current time, aware.
        settings: The cache's settings (the defaults when not given).
        request_headers: The headers the request is sent with.
    """
    request = request_directives(request_headers, settings)
    plain = request is NO_DIRECTIVES  # the common case: no directive to look up
    if options.only_if_cached or (not plain and request.only_if_cached):
        return _only_if_cached(entry, request, now)
    if options.force_refresh:
        return Fetch("force_refresh")
    if entry is None:
        return Fetch("miss")
    reload = options.refresh or (not plain and request.no_cache)
    if not entry.is_expired(now):
        if not reload:
            if plain or _satisfies_request(entry, request, now):
                return UseCached(entry)
            return _revalidate_or_fetch(entry, "expired")
        if not request.no_cache and settings.cache_control and _entry_directives(entry).immutable:
            return UseCached(entry)
        return _revalidate_or_fetch(entry, "refresh")
    if reload:
        return _revalidate_or_fetch(entry, "refresh")
    if not settings.cache_control and settings.stale_while_revalidate is False:
        return _revalidate_or_fetch(entry, "expired")
    assert entry.expires is not None
    staleness = now - entry.expires
    stored = _entry_directives(entry)
    if _max_stale_allows(request, staleness, stored):
        return UseCached(entry)
    window = _window(stored.stale_while_revalidate, settings.stale_while_revalidate, settings)
    wants_fresher = not plain and (
        request.max_age is not None
        or request.min_fresh is not None
        or request.max_stale is not None  # it said how stale it accepts, and this is staler
    )
    if (
        not (stored.must_revalidate or stored.no_cache)
        and not wants_fresher
        and within_window(window, staleness)
    ):
        return StaleWhileRevalidate(entry, conditional_headers(entry))
    return _revalidate_or_fetch(entry, "expired")


def response_expiration(
    url: str, options: RequestOptions, settings: CacheSettings
) -> ExpirationTime | _Unset:
    """The expiration the settings give a response for ``url`` (the last three of rule 2).

    ``UNSET`` when none applies: with ``cache_control=True`` and no ``expire_after``
    given, the settings have nothing to say.
    """
    if not isinstance(options.expire_after, _Unset):
        return options.expire_after
    matched, value = settings.urls_expire_after.match(url)
    if matched:
        return value
    if settings.cache_control and not settings.expire_after_set:
        return UNSET
    return settings.expire_after


def _has_validators(headers: HeaderPairs) -> bool:
    return (
        find_header(headers, "etag") is not None
        or find_header(headers, "last-modified") is not None
    )


def _stale_windows(stored: Directives, settings: CacheSettings) -> tuple[StaleWindow, StaleWindow]:
    return (
        _window(stored.stale_while_revalidate, settings.stale_while_revalidate, settings),
        _window(stored.stale_if_error, settings.stale_if_error, settings),
    )


def _max_stale_may_use(stored: Directives, settings: CacheSettings, fresh_on_arrival: bool) -> bool:
    """Whether a request's ``max-stale`` may accept the entry once stale (rules 4, 8)."""
    return (
        settings.cache_control
        and fresh_on_arrival
        and not (stored.must_revalidate or stored.no_cache)
    )


def entry_storage_expiry(entry: CachedResponse, settings: CacheSettings) -> datetime | None:
    """Until when storage keeps ``entry`` (see :func:`acc.core.http.freshness.keep_until`)."""
    if entry.expires is None:
        return None
    stored = NO_DIRECTIVES
    if settings.cache_control:
        stored = _entry_directives(entry)
    if stored.must_revalidate:
        windows: tuple[StaleWindow, ...] = ()
    else:
        windows = _stale_windows(stored, settings)
    return keep_until(
        entry.expires,
        entry.created_at,
        revalidatable=entry.has_validators,
        windows=windows,
        max_stale=_max_stale_may_use(stored, settings, entry.expires > entry.created_at),
    )


def _status_refusal(
    status: int, stored: Directives, headers: HeaderPairs, settings: CacheSettings
) -> str | None:
    """Why ``status`` is not stored (rule 9), or ``None`` when it may be."""
    if settings.allowed_codes_set or not settings.cache_control:
        if status in settings.allowed_codes:
            return None
        return f"status {status} is not in allowed_codes"
    if status < 200 or status in _NEVER_STORED:
        return f"status {status} is never stored"
    if (
        status in HEURISTIC_STATUSES
        or stored.max_age is not None
        or stored.public
        or stored.private
        or header_values(headers, "expires")
    ):
        return None
    return f"status {status} is not heuristically cacheable and has no explicit freshness"


def decide_store(
    *,
    method: str,
    url: str,
    status: int,
    options: RequestOptions,
    settings: CacheSettings,
    now: datetime,
    headers: HeaderPairs = (),
    request_headers: HeaderPairs = (),
) -> StoreDecision:
    """Decide whether, until when (fresh) and how long (storage) to keep a response.

    Args:
        method: The request method.
        url: The response's URL, matched against ``urls_expire_after``.
        status: The response status.
        options: The request's cache options.
        settings: The cache's settings.
        now: The moment the response was received.
        headers: The response headers (read for validators; and, with
            ``cache_control=True``, for freshness).
        request_headers: The request headers (read with ``cache_control=True``).
    """
    if method.upper() not in settings.allowed_methods:
        return StoreDecision(False, reason=f"method {method} is not in allowed_methods")
    stored = NO_DIRECTIVES
    expires: datetime | None = None
    from_headers = False
    if not settings.cache_control:
        refusal = _status_refusal(status, stored, headers, settings)
        if refusal is not None:
            return StoreDecision(False, reason=refusal)
    else:
        if request_directives(request_headers, settings).no_store:
            return StoreDecision(False, reason="the request says no-store")
        stored = parse_cache_control(header_values(headers, "cache-control"))
        if stored.must_understand:
            if status not in UNDERSTOOD_STATUSES:
                return StoreDecision(
                    False, reason=f"must-understand, and acc has no rules for status {status}"
                )
        elif stored.no_store:
            return StoreDecision(False, reason="the response says no-store")
        refusal = _status_refusal(status, stored, headers, settings)
        if refusal is not None:
            return StoreDecision(False, reason=refusal)
        if varying_headers(headers) == ("*",):
            return StoreDecision(False, reason="the response says Vary: *")
        if stored.no_cache:
            expires, from_headers = now, True
        else:
            expires = header_expires(headers, stored, status, now)
            from_headers = expires is not None
    if not from_headers:
        expiration = response_expiration(url, options, settings)
        if isinstance(expiration, _Unset):
            expires = now  # no freshness at all: stale, kept only to be revalidated
        else:
            expires = expires_at(expiration, now)
            if expires is not None and expires <= now:
                return StoreDecision(False, reason="expires immediately")
    windows = () if stored.must_revalidate else _stale_windows(stored, settings)
    keep = keep_until(
        expires,
        now,
        revalidatable=_has_validators(headers),
        windows=windows,
        max_stale=_max_stale_may_use(stored, settings, expires is not None and expires > now),
    )
    if keep is not None and keep <= now:
        return StoreDecision(False, reason="stale on arrival, with no validator or stale window")
    return StoreDecision(True, expires, storage_expires=keep)


def decide_error(
    entry: CachedResponse | None,
    *,
    status: int | None,
    settings: CacheSettings,
    now: datetime,
    request_headers: HeaderPairs = (),
) -> StaleIfError | None:
    """Whether a failed fetch is answered with the stored entry (rules 7 and 8).

    Args:
        entry: The entry the request found, or ``None``.
        status: The status the origin answered, or ``None`` when the connection failed.
        settings: The cache's settings.
        now: The current time.
        request_headers: The request headers (their ``stale-if-error`` directive counts
            with ``cache_control=True``).

    Returns:
        ``StaleIfError(entry)``, or ``None`` to hand the failure to the caller.
    """
    if entry is None or (status is not None and status < 500):
        return None
    if not settings.cache_control and settings.stale_if_error is False:
        return None
    stored = _entry_directives(entry)
    if stored.must_revalidate or stored.no_cache:
        return None
    directive = stored.stale_if_error
    if directive is None:
        directive = request_directives(request_headers, settings).stale_if_error
    window = _window(directive, settings.stale_if_error, settings)
    staleness = timedelta(0) if entry.expires is None else max(timedelta(0), now - entry.expires)
    return StaleIfError(entry) if within_window(window, staleness) else None


def not_modified_selects(entry: CachedResponse, headers: HeaderPairs) -> bool:
    """Whether a ``304`` with ``headers`` confirms ``entry`` (RFC 9111 §4.3.4).

    An entity tag in the 304 must match the stored one: strongly when it is strong,
    weakly when it is weak (RFC 9110 §8.8.3.2). Without one, a ``Last-Modified`` that
    differs from the stored one rules the entry out; otherwise the 304 is taken as
    answering the conditions that were sent from this entry.
    """
    etag = find_header(headers, "etag")
    if etag is not None and entry.etag is not None:
        weak = etag.strip().startswith("W/")
        return etags_match(etag, entry.etag, weak=weak)
    modified = find_header(headers, "last-modified")
    if modified is not None and entry.last_modified is not None:
        return modified.strip() == entry.last_modified.strip()
    return etag is None or entry.etag is None


_NOT_UPDATED: Final = frozenset(
    {
        "content-length",
        "content-encoding",
        "transfer-encoding",
        "content-md5",
        "content-range",
    }
)
"""Fields a 304 never updates: they describe the stored body, which the 304 does not
replace (RFC 9111 §3.2: "header fields that the cache's stored response depends upon")."""


def merge_not_modified(
    entry: CachedResponse, headers: HeaderPairs, decision: StoreDecision, now: datetime
) -> CachedResponse:
    """Refresh a stored entry with the headers of a ``304 Not Modified`` (RFC 9111 §4.3.4).

    Each header present in the 304 replaces every stored header of that name, except
    the fields that describe the stored body (framing, coding, digest, range), which
    stay as they are. The
    stored ``Age`` described the old response, so it goes unless the 304 has one; a 304
    without ``Date`` is dated ``now`` (RFC 9110 §6.6.1), or the old ``Date`` would make
    the refreshed entry look old.
    """
    updated = {name.lower() for name, _ in headers} - _NOT_UPDATED
    kept = [(n, v) for n, v in entry.headers if n.lower() not in updated and n.lower() != "age"]
    if "date" not in updated and any(n.lower() == "date" for n, _ in entry.headers):
        kept = [(n, v) for n, v in kept if n.lower() != "date"]
        kept.append(("Date", format_datetime(now.astimezone(timezone.utc), usegmt=True)))
    kept.extend((n, v) for n, v in headers if n.lower() in updated)
    return attrs.evolve(entry, headers=tuple(kept), created_at=now, expires=decision.expires)


def refresh_not_modified(
    entry: CachedResponse,
    headers: HeaderPairs,
    *,
    url: str,
    options: RequestOptions,
    settings: CacheSettings,
    now: datetime,
    request_headers: HeaderPairs = (),
) -> tuple[CachedResponse, StoreDecision]:
    """Merge a 304 into ``entry`` and work out its new freshness by the precedence (rule 5).

    Returns:
        The refreshed entry, and whether (and how long) to store it.
    """
    merged = merge_not_modified(entry, headers, StoreDecision(True, entry.expires), now)
    decision = decide_store(
        method=entry.method,
        url=url,
        status=entry.status,
        options=options,
        settings=settings,
        now=now,
        headers=merged.headers,
        request_headers=request_headers,
    )
    expires = decision.expires if decision.store else now
    return attrs.evolve(merged, expires=expires), decision


def served_entry(
    entry: CachedResponse,
    now: datetime,
    settings: CacheSettings,
    *,
    method: str = "GET",
    request_headers: HeaderPairs = (),
    validated: bool = False,
) -> CachedResponse:
    """``entry`` as it is served to a request at ``now`` (rule 11).

    With ``cache_control=True``: an entry used without validation carries its current
    ``Age``, replacing the stored one (RFC 9111 §4, §5.1); a one-range ``GET`` is given
    its part of a stored ``200`` (RFC 9110 §14.2). Otherwise it is served as stored.
    """
    if not settings.cache_control:
        return entry
    if not validated:
        entry = attrs.evolve(entry, headers=age_header(entry.headers, entry.created_at, now))
    return ranged_entry(entry, method, request_headers) if request_headers else entry
