"""From what the flow answered to the :class:`httpx.Response` a transport returns.

Rules this module keeps:

1. Every response carries its cache metadata in ``response.extensions["acc"]``, a plain
   dict: ``from_cache``, ``revalidated``, ``stale``, ``is_expired``, ``cache_key``,
   ``created_at``, ``expires`` and ``stored`` (see :func:`metadata`).
2. A response the cache did not store is the inner transport's own, untouched and still
   streaming; only ``extensions["acc"]`` is added.
3. A response served from an entry, or whose body the flow read to store it, is a new
   response over the stored (decoded) bytes with the entry's headers, which have no
   ``Content-Encoding`` and a ``Content-Length`` equal to the body's length, so httpx
   decodes nothing twice. It is built over a :class:`httpx.ByteStream` (not ``content=``),
   so it is unread like a live response: ``aread``, ``aiter_bytes``, ``aiter_raw``,
   ``json()`` and ``client.stream(...)`` all work on it.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import httpx

from acc.core.flow.outcome import Outcome
from acc.core.models import CachedResponse
from acc.sessions.httpx.request import header_bytes

__all__ = ["EXTENSION", "metadata", "response_for"]

EXTENSION = "acc"
"""The name of the request and response extension acc uses."""


def metadata(
    outcome: Outcome[httpx.Response], entry: CachedResponse | None, now: datetime
) -> dict[str, Any]:
    """The ``extensions["acc"]`` dict of a response (rule 1), as the aiohttp binding says it.

    ``created_at`` and ``expires`` are the entry's (aware UTC datetimes; ``expires`` is
    ``None`` for never). A response without an entry (not stored) was created ``now``
    and never expires.
    """
    if entry is None:
        created_at, expires, is_expired = now, None, False
    else:
        created_at, expires, is_expired = entry.created_at, entry.expires, entry.is_expired(now)
    return {
        "from_cache": outcome.from_cache,
        "revalidated": outcome.revalidated,
        "stale": outcome.stale,
        "is_expired": is_expired,
        "cache_key": outcome.cache_key,
        "created_at": created_at,
        "expires": expires,
        "stored": outcome.stored,
    }


def _over_entry(
    entry: CachedResponse,
    body: bytes,
    request: httpx.Request,
    extensions: dict[str, Any],
) -> httpx.Response:
    """A response over ``body`` with the entry's status and headers (rule 3)."""
    return httpx.Response(
        entry.status,
        headers=header_bytes(entry.headers),
        stream=httpx.ByteStream(body),
        request=request,
        extensions=extensions,
    )


def response_for(
    outcome: Outcome[httpx.Response], request: httpx.Request, now: datetime
) -> httpx.Response:
    """The response a transport returns for what the flow answered, at ``now``."""
    live = outcome.live
    entry = outcome.entry
    if live is not None:
        if outcome.body is None:  # not stored: the live response as it came (rule 2)
            live.extensions[EXTENSION] = metadata(outcome, None, now)
            return live
        assert entry is not None
        extensions = {**live.extensions, EXTENSION: metadata(outcome, entry, now)}
        return _over_entry(entry, outcome.body, request, extensions)
    assert entry is not None
    extensions = {
        "http_version": b"HTTP/1.1",
        "reason_phrase": entry.reason.encode("ascii", "replace"),
        EXTENSION: metadata(outcome, entry, now),
    }
    return _over_entry(entry, entry.body, request, extensions)
