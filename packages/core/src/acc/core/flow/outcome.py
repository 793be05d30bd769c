"""What a request through the cache ends with: :class:`Outcome` and :class:`CacheResult`.

:class:`Outcome` is what the flow hands a client binding: either an entry (a hit, a
revalidated or stale entry, a made-up 504) or the binding's own live response (the
network answered), or both (a live response whose body was read and stored).
:class:`CacheResult` is the public, client-independent form that
:meth:`acc.core.CacheBackend.fetch` returns.
"""

from __future__ import annotations

from typing import Generic

import attrs

from acc.core.flow.exchange import LiveT
from acc.core.models import CachedResponse

__all__ = ["CacheResult", "Outcome"]


@attrs.define(slots=True)
class Outcome(Generic[LiveT]):
    """How the flow answered one request.

    Built on every request, hits included, so it is a plain slotted class (a frozen one
    costs a microsecond more to build); the flow never changes one after building it.

    Attributes:
        entry: The entry that answers the request: served from the cache, made up (a
            504), or just stored from ``live``. ``None`` when ``live`` was not stored.
        live: The binding's response when the network answered this request.
        body: The body of ``live`` when the flow read it (to store it).
        cache_key: The request's key, or ``None`` when the cache was not consulted.
        from_cache: Whether ``entry`` was served from the cache (revalidated or stale
            ones included).
        revalidated: Whether a ``304 Not Modified`` just confirmed the entry.
        stale: Whether the entry was served stale (stale-while-revalidate,
            stale-if-error, or a request ``max-stale``).
        stored: Whether the network's response was written to the cache, or queued to
            be written behind the response (``write_behind``).
    """

    entry: CachedResponse | None = None
    live: LiveT | None = None
    body: bytes | None = None
    cache_key: str | None = None
    from_cache: bool = False
    revalidated: bool = False
    stale: bool = False
    stored: bool = False


@attrs.frozen(slots=True)
class CacheResult:
    """The answer of :meth:`acc.core.CacheBackend.fetch`.

    Attributes:
        response: The response: from the cache, or the one ``send`` returned.
        from_cache: Whether it was served from the cache (revalidated and stale ones too).
        revalidated: Whether a ``304 Not Modified`` just confirmed the stored response.
        stale: Whether it was served stale (stale-while-revalidate, stale-if-error, or a
            request ``max-stale``).
        cache_key: The request's key, or ``None`` when the cache was not consulted (a
            method not in ``allowed_methods``).
        stored: Whether the response ``send`` returned was written to the cache, or
            queued to be written right after (``write_behind``, the default): a queued
            entry is served to this process's requests at once, and a queued write that
            then fails is counted in ``stats.errors`` and logged, as an inline one is.
            ``await backend.flush()`` waits until queued entries are written.
    """

    response: CachedResponse
    from_cache: bool
    revalidated: bool = False
    stale: bool = False
    cache_key: str | None = None
    stored: bool = False
