"""Counters that tell how the cache is doing."""

from __future__ import annotations

import attrs

__all__ = ["CacheStats"]

_STATES = frozenset({"breaker_open"})


@attrs.define(slots=True)
class CacheStats:
    """What a backend counted since it was created (or since :meth:`reset`).

    Attributes:
        hits: Responses served from the cache (revalidated ones included).
        misses: Cacheable requests that went to the network.
        writes: Entries stored.
        errors: Storage failures and unreadable entries (corrupt, tampered, unknown
            version), each of which was treated as a miss.
        revalidations: Conditional requests answered ``304 Not Modified``.
        stale: Hits served stale (stale-while-revalidate, stale-if-error, a request's
            ``max-stale``); counted in ``hits`` too.
        not_stored: Responses from the network the cache decided not to keep (the
            DEBUG log line says why); counted in ``misses`` too.
        bypassed: Requests the cache left alone (a method not in ``allowed_methods``,
            a body that cannot be keyed, a disabled session).
        gateway_timeouts: ``only_if_cached`` requests answered ``504``.
        invalidations: Successful unsafe requests that invalidated their target's
            entries (RFC 9111 §4.4).
        bytes_read: Bytes of entries read from storage (hits, and entries found but not
            used alike).
        bytes_written: Bytes of entries written to storage.
        evictions: Entries a bounded store dropped to stay within its bounds (stores
            that report it: ``MemoryCache``; others evict on their own and leave it 0).
        storage_timeouts: Storage operations cut short because the request's storage
            budget was spent (counted in ``errors`` too).
        storage_skipped: Storage operations skipped because the circuit breaker was open.
        breaker_trips: Times the circuit breaker opened.
        too_large: Responses not stored because their body was above ``max_body_size``
            (counted in ``not_stored`` too).
        breaker_open: Whether the circuit breaker is open (or half-open, probing) now:
            a state, not a counter, so :meth:`reset` leaves it alone.
    """

    hits: int = 0
    misses: int = 0
    writes: int = 0
    errors: int = 0
    revalidations: int = 0
    stale: int = 0
    not_stored: int = 0
    bypassed: int = 0
    gateway_timeouts: int = 0
    invalidations: int = 0
    bytes_read: int = 0
    bytes_written: int = 0
    evictions: int = 0
    storage_timeouts: int = 0
    storage_skipped: int = 0
    breaker_trips: int = 0
    too_large: int = 0
    breaker_open: bool = False

    def reset(self) -> None:
        """Set every counter back to zero (``breaker_open``, a state, stays as it is)."""
        for field in attrs.fields(CacheStats):
            if field.name not in _STATES:
                setattr(self, field.name, 0)

    def as_dict(self) -> dict[str, int]:
        """The counters as a plain dict."""
        return attrs.asdict(self)
