"""Invalidation by unsafe methods (RFC 9111 §4.4).

Rules this module keeps:

1. A request whose method is unsafe (POST, PUT, PATCH, DELETE: RFC 9110 §9.2.1) and
   whose response is not an error (a status below 400) invalidates the stored responses
   for its target URI (RFC 9111 §4.4).
2. It also invalidates those for the URIs in ``Location`` and ``Content-Location``,
   resolved against the target, but only when they share its origin (scheme, host and
   port), so that a response cannot be used to evict another site's entries.
3. Unreadable values are skipped, never raised.
"""

from __future__ import annotations

from typing import Final
from urllib.parse import urljoin, urlsplit

from acc.core.models import HeaderPairs, find_header

__all__ = ["UNSAFE_METHODS", "invalidated_urls", "is_unsafe_method"]

UNSAFE_METHODS: Final = frozenset({"POST", "PUT", "PATCH", "DELETE"})
"""Methods whose success invalidates stored responses for their target (rule 1)."""


def is_unsafe_method(method: str) -> bool:
    """Whether a successful ``method`` request invalidates stored responses (rule 1)."""
    return method.upper() in UNSAFE_METHODS


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
