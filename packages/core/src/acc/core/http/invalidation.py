"""Invalidation by unsafe methods (RFC 9111 §4.4).

Rules this module keeps:

1. A request whose method is not known to be safe and whose response is not an error (a
   status below 400) invalidates the stored responses for its target URI (RFC 9111 §4.4:
   "a request with an unsafe method", and an unknown method must be taken as unsafe).
   The safe methods are GET, HEAD, OPTIONS and TRACE (RFC 9110 §9.2.1), and the
   extensions registered as safe: PROPFIND, REPORT, SEARCH (WebDAV) and QUERY. So
   POST, PUT, PATCH and DELETE invalidate, and so does ``M-SEARCH`` or any other
   extension method.
2. It also invalidates those for the URIs in ``Location`` and ``Content-Location``,
   resolved against the target, but only when they share its origin (scheme, host and
   port), so that a response cannot be used to evict another site's entries.
3. Unreadable values are skipped, never raised.
"""

from __future__ import annotations

from typing import Final
from urllib.parse import urljoin, urlsplit

from acc.core.models import HeaderPairs, find_header

__all__ = ["SAFE_METHODS", "UNSAFE_METHODS", "invalidated_urls", "is_unsafe_method"]

SAFE_METHODS: Final = frozenset(
    {"GET", "HEAD", "OPTIONS", "TRACE", "PROPFIND", "REPORT", "SEARCH", "QUERY"}
)
"""Methods known to be safe; every other method invalidates (rule 1)."""

UNSAFE_METHODS: Final = frozenset({"POST", "PUT", "PATCH", "DELETE"})
"""The unsafe methods RFC 9110 defines; extension methods not in :data:`SAFE_METHODS` are
unsafe too (rule 1)."""


def is_unsafe_method(method: str) -> bool:
    """Whether a successful ``method`` request invalidates stored responses (rule 1).

    Method names are case-sensitive (RFC 9110 §9.1), but acc compares them in upper case,
    as it keys them, so ``get`` is GET here too.
    """
    return method.upper() not in SAFE_METHODS


def _origin(url: str) -> tuple[str, str, int | None]:
    parts = urlsplit(url)
    try:
        port = parts.port
    except ValueError:
        port = None
    scheme = parts.scheme.lower()
    if port is None:
        port = {"http": 80, "https": 443}.get(scheme)
    return scheme, (parts.hostname or "").lower(), port


def invalidated_urls(request_url: str, status: int, headers: HeaderPairs) -> tuple[str, ...]:
    """The URLs whose entries an unsafe request's response invalidates (rules 1-3).

    Args:
        request_url: The absolute URL the unsafe request was sent to.
        status: The response status; an error (400 and above) invalidates nothing.
        headers: The response headers, for ``Location`` and ``Content-Location``.
    """
    if status >= 400:
        return ()
    urls = [request_url]
    origin = _origin(request_url)
    for name in ("location", "content-location"):
        value = find_header(headers, name)
        if not value:
            continue
        try:
            target = urljoin(request_url, value.strip())
        except ValueError:
            continue
        if _origin(target) == origin and target not in urls:
            urls.append(target)
    return tuple(urls)
