"""The cache policy: pure functions that decide, given facts, what the adapter does.

Theory of operation: the session adapter asks :func:`decide_lookup` what to do with a
request and the entry found for it (if any), performs the decision's I/O (return the
entry, send a conditional request, fetch, answer 504), and asks :func:`decide_store`
what to keep of the response it got. Each decision is a small frozen value; the adapter
dispatches on its type.

Rules this module keeps:

1. Nothing here performs I/O, reads the clock or knows the HTTP client. The current time
   is an argument, so every rule is testable without sleeping.
2. The expiration of a response comes from the first of these that is set: the
   request's ``expire_after``, the first ``urls_expire_after`` pattern matching the URL,
   the session's ``expire_after``.
3. ``force_refresh`` ignores the stored entry; ``refresh`` revalidates it when it has a
   validator (``ETag``, ``Last-Modified``) and fetches anew when it has none;
   ``only_if_cached`` never goes to the network: without a fresh entry the answer is 504.
4. A stale entry with a validator is revalidated, not thrown away; a ``304 Not
   Modified`` refreshes it with the new headers and a new expiration (RFC 9111 §4.3.4).
5. A response is stored only if its method and status are allowed and its expiration is
   in the future (``DO_NOT_CACHE`` is an expiration already past).
"""

from __future__ import annotations

from datetime import datetime
from typing import Final

import attrs

from acc.core.expiration import ExpirationTime, expires_at
from acc.core.models import CachedResponse, HeaderPairs
from acc.core.settings import CacheSettings

__all__ = [
    "UNSET",
    "Bypass",
    "Fetch",
    "GatewayTimeout",
    "LookupDecision",
    "RequestOptions",
    "Revalidate",
    "StoreDecision",
    "UseCached",
    "conditional_headers",
    "decide_lookup",
    "decide_store",
    "is_cacheable_method",
    "merge_not_modified",
]


class _Unset:
    __slots__ = ()

    def __repr__(self) -> str:
        return "UNSET"


UNSET: Final = _Unset()
"""Marks a per-request option that was not given (``None`` is a valid expiration)."""


@attrs.frozen(slots=True)
class RequestOptions:
    """The per-request cache options a caller may pass alongside a request."""

    expire_after: ExpirationTime | _Unset = UNSET
    refresh: bool = False
    force_refresh: bool = False
    only_if_cached: bool = False


@attrs.frozen(slots=True)
class Bypass:
    """Go to the network and store nothing: the request is not one the cache handles."""

    reason: str


@attrs.frozen(slots=True)
class UseCached:
    """Return the stored entry as it is."""

    entry: CachedResponse


@attrs.frozen(slots=True)
class Revalidate:
    """Send the request with these conditional headers; a 304 means the entry is valid."""

    entry: CachedResponse
    headers: HeaderPairs


@attrs.frozen(slots=True)
class Fetch:
    """Fetch from the network, then ask :func:`decide_store` what to keep."""

    reason: str

    @property
    def shareable(self) -> bool:
        """Whether a response another task stores meanwhile answers this request too.

        True for a miss or an expired entry; false when the caller asked for a new
        response (``refresh``, ``force_refresh``), which only its own fetch can give.
        """
        return self.reason in ("miss", "expired")


@attrs.frozen(slots=True)
class GatewayTimeout:
    """Answer ``504 Gateway Timeout`` without touching the network (``only_if_cached``)."""


LookupDecision = UseCached | Revalidate | Fetch | GatewayTimeout


@attrs.frozen(slots=True)
class StoreDecision:
    """Whether to store a response, and until when it is fresh.

    Attributes:
        store: Whether to write the entry.
        expires: When it stops being fresh; ``None`` for never.
        reason: Why not, when ``store`` is false.
    """

    store: bool
    expires: datetime | None = None
    reason: str = ""

    @property
    def storage_expires_at(self) -> float | None:
        """The epoch second given to the store as the entry's native expiry."""
        return None if self.expires is None else self.expires.timestamp()


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


def decide_lookup(
    entry: CachedResponse | None, options: RequestOptions, now: datetime
) -> LookupDecision:
    """Decide what to do with a cacheable request, given the entry stored for it.

    Args:
        entry: The decoded entry under the request's key, or ``None``.
        options: The request's cache options.
        now: The current time, aware.
    """
    if options.only_if_cached:
        if entry is not None and not entry.is_expired(now):
            return UseCached(entry)
        return GatewayTimeout()
    if options.force_refresh:
        return Fetch("force_refresh")
    if entry is None:
        return Fetch("miss")
    if options.refresh or entry.is_expired(now):
        if entry.has_validators:
            return Revalidate(entry, conditional_headers(entry))
        return Fetch("refresh" if options.refresh else "expired")
    return UseCached(entry)


def response_expiration(
    url: str, options: RequestOptions, settings: CacheSettings
) -> ExpirationTime:
    """The expiration that applies to a response for ``url`` (rule 2)."""
    if not isinstance(options.expire_after, _Unset):
        return options.expire_after
    matched, value = settings.urls_expire_after.match(url)
    if matched:
        return value
    return settings.expire_after


def decide_store(
    *,
    method: str,
    url: str,
    status: int,
    options: RequestOptions,
    settings: CacheSettings,
    now: datetime,
) -> StoreDecision:
    """Decide whether and until when to keep a response fetched from the network."""
    if method.upper() not in settings.allowed_methods:
        return StoreDecision(False, reason=f"method {method} is not in allowed_methods")
    if status not in settings.allowed_codes:
        return StoreDecision(False, reason=f"status {status} is not in allowed_codes")
    expires = expires_at(response_expiration(url, options, settings), now)
    if expires is not None and expires <= now:
        return StoreDecision(False, reason="expires immediately")
    return StoreDecision(True, expires)


_NOT_UPDATED: Final = frozenset({"content-length", "content-encoding", "transfer-encoding"})


def merge_not_modified(
    entry: CachedResponse, headers: HeaderPairs, decision: StoreDecision, now: datetime
) -> CachedResponse:
    """Refresh a stored entry with the headers of a ``304 Not Modified`` (RFC 9111 §4.3.4).

    Each header present in the 304 replaces every stored header of that name, except
    the framing headers, which describe the stored body and stay as they are.
    """
    updated = {name.lower() for name, _ in headers} - _NOT_UPDATED
    kept = [(n, v) for n, v in entry.headers if n.lower() not in updated]
    kept.extend((n, v) for n, v in headers if n.lower() in updated)
    return attrs.evolve(entry, headers=tuple(kept), created_at=now, expires=decision.expires)
