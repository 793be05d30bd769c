"""Counters that tell how the cache is doing."""

from __future__ import annotations

import attrs

__all__ = ["CacheStats"]


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
    """

    hits: int = 0
    misses: int = 0
    writes: int = 0
    errors: int = 0
    revalidations: int = 0

    def reset(self) -> None:
        """Set every counter back to zero."""
        self.hits = self.misses = self.writes = self.errors = self.revalidations = 0

    def as_dict(self) -> dict[str, int]:
        """The counters as a plain dict."""
        return attrs.asdict(self)
