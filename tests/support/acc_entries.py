"""Entries the large-body tests store: one response, its body given (``large_entry``).

The tests of every store's ``read_parts``/``write_parts`` (the codec, SQLite, the file
store, Redis, MongoDB, DynamoDB) store the same response around bodies of their own
sizes; equality of decoded entries is what they compare, so the entry is fixed here.
"""

from __future__ import annotations

from datetime import datetime, timezone

from acc.core import CachedResponse

__all__ = ["large_entry"]


def large_entry(body: bytes) -> CachedResponse:
    """A 200 response of ``body`` (``application/octet-stream``), at a fixed time."""
    return CachedResponse(
        status=200,
        reason="OK",
        url="https://example.com/big",
        method="GET",
        headers=(("Content-Type", "application/octet-stream"),),
        body=body,
        created_at=datetime(2030, 1, 1, tzinfo=timezone.utc),
    )
