"""Answering a byte-range request from a stored complete response (RFC 9110 §14).

acc never stores partial content (``206``), but a stored complete response holds every
byte a ``Range`` request can ask for, so a hit can answer it as the origin would.

Rules this module keeps:

1. Only a ``GET`` with one ``Range: bytes=...`` range (``first-last``, ``first-`` or
   ``-suffix``, RFC 9110 §14.1.2) on a stored ``200`` gets a ``206``. Anything else (no
   or another unit, several ranges, an unreadable or unsatisfiable range, an
   ``If-Range``) is answered with the whole stored response: a server MAY ignore
   ``Range`` (RFC 9110 §14.2), and a whole response is always correct.
2. The ``206`` carries the stored headers, ``Content-Range: bytes first-last/length``
   and the ``Content-Length`` of the part (RFC 9110 §15.3.7).
"""

from __future__ import annotations

import re
from typing import Final

import attrs

from acc.core.models import CachedResponse, HeaderPairs, find_header

__all__ = ["byte_range", "ranged_entry"]

_RANGE: Final = re.compile(r"bytes[ \t]*=[ \t]*(\d*)[ \t]*-[ \t]*(\d*)", re.IGNORECASE | re.ASCII)


def byte_range(value: str, length: int) -> tuple[int, int] | None:
    """The ``(first, last)`` bytes a one-range ``Range`` value selects, or ``None`` (rule 1)."""
    match = _RANGE.fullmatch(value.strip())
    if match is None:
        return None
    first_text, last_text = match.groups()
    if not first_text:
        if not last_text or int(last_text) == 0:
            return None
        return max(length - int(last_text), 0), length - 1
    first = int(first_text)
    last = int(last_text) if last_text else length - 1
    if first > last or first >= length:
        return None
    return first, min(last, length - 1)


def ranged_entry(
    entry: CachedResponse, method: str, request_headers: HeaderPairs
) -> CachedResponse:
    """``entry`` as the answer to a request with ``request_headers`` (rules 1 and 2)."""
    if method.upper() != "GET" or entry.status != 200:
        return entry
    value = find_header(request_headers, "range")
    if value is None or find_header(request_headers, "if-range") is not None:
        return entry
    length = len(entry.body)
    selected = byte_range(value, length)
    if selected is None:
        return entry
    first, last = selected
    headers = [
        (n, v) for n, v in entry.headers if n.lower() not in ("content-length", "content-range")
    ]
    headers.append(("Content-Range", f"bytes {first}-{last}/{length}"))
    headers.append(("Content-Length", str(last - first + 1)))
    return attrs.evolve(
        entry,
        status=206,
        reason="Partial Content",
        headers=tuple(headers),
        body=entry.body[first : last + 1],
    )
