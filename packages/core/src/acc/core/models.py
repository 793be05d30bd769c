"""The stored response: what acc keeps of an HTTP exchange, independent of any client.

:class:`CachedResponse` is a plain, frozen value. It knows nothing of aiohttp; the session
adapter turns a live response into one on a miss and one back into a response object on a
hit. Headers are kept as the ordered list of pairs the server sent (duplicates such as
``Set-Cookie`` included), so nothing is lost and nothing is parsed until it is needed.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable
from datetime import datetime, timezone

import attrs

__all__ = ["CachedResponse", "HeaderPairs", "RedirectHop", "StoredEntry", "find_header", "utcnow"]

HeaderPairs = tuple[tuple[str, str], ...]
"""Headers as ordered ``(name, value)`` pairs, names in the case the server sent."""


def utcnow() -> datetime:
    """Return the current time as an aware UTC datetime."""
    return datetime.now(timezone.utc)


def _to_header_pairs(value: Iterable[tuple[str, str]]) -> HeaderPairs:
    if type(value) is tuple:  # already pairs of str (what the flow builds): kept as it is
        for pair in value:
            if type(pair) is not tuple or len(pair) != 2:
                break
            name, val = pair
            if type(name) is not str or type(val) is not str:
                break
        else:
            return value
    return tuple((str(name), str(val)) for name, val in value)


def find_header(headers: HeaderPairs, name: str) -> str | None:
    """Return the first value of header ``name`` (case-insensitive), or ``None``."""
    wanted = name.lower()
    for key, value in headers:
        if key.lower() == wanted:
            return value
    return None


@attrs.frozen(slots=True)
class RedirectHop:
    """One response of a redirect chain, kept without its body."""

    status: int
    reason: str
    url: str
    method: str
    headers: HeaderPairs = attrs.field(default=(), converter=_to_header_pairs)


def _to_hops(value: Iterable[RedirectHop]) -> tuple[RedirectHop, ...]:
    return tuple(value)


@attrs.frozen(slots=True)
class CachedResponse:
    """A response as acc stores it.

    Attributes:
        status: The HTTP status code.
        reason: The reason phrase the server sent.
        url: The final absolute URL (after redirects), with ignored parameters redacted.
        method: The request method, upper case.
        headers: Response headers as ordered pairs. The body is stored decoded, so
            ``Content-Encoding`` is absent and ``Content-Length`` matches ``body``.
        request_headers: The request's headers with credentials redacted.
        body: The decoded body bytes.
        created_at: When the response was received, as an aware UTC datetime.
        expires: When it stops being fresh (aware UTC), or ``None`` for never.
        history: The redirect responses that led here, oldest first.
    """

    status: int
    reason: str
    url: str
    method: str
    headers: HeaderPairs = attrs.field(default=(), converter=_to_header_pairs)
    request_headers: HeaderPairs = attrs.field(default=(), converter=_to_header_pairs)
    body: bytes = b""
    created_at: datetime = attrs.field(factory=utcnow)
    expires: datetime | None = attrs.field(default=None)
    history: tuple[RedirectHop, ...] = attrs.field(default=(), converter=_to_hops)

    @created_at.validator
    def _check_created_at(self, _attribute: attrs.Attribute[datetime], value: datetime) -> None:
        if value.tzinfo is None:
            raise ValueError("created_at must be timezone-aware")

    @expires.validator
    def _check_expires(self, _attribute: attrs.Attribute[datetime | None], value: object) -> None:
        if isinstance(value, datetime) and value.tzinfo is None:
            raise ValueError("expires must be timezone-aware")

    def header(self, name: str) -> str | None:
        """Return the first value of response header ``name`` (case-insensitive)."""
        return find_header(self.headers, name)

    @functools.cached_property
    def cookies(self) -> tuple[str, ...]:
        """The raw ``Set-Cookie`` header values, in order."""
        # Read on every hit of an entry the façade may reuse many times (storage.memo):
        # found once per instance (attrs gives the cache a slot of its own).
        return tuple([v for k, v in self.headers if len(k) == 10 and k.lower() == "set-cookie"])

    @property
    def etag(self) -> str | None:
        """The ``ETag`` validator, if the response has one."""
        return self.header("ETag")

    @property
    def last_modified(self) -> str | None:
        """The ``Last-Modified`` validator, if the response has one."""
        return self.header("Last-Modified")

    @property
    def has_validators(self) -> bool:
        """Whether the response can be revalidated with a conditional request."""
        return self.etag is not None or self.last_modified is not None

    def is_expired(self, now: datetime | None = None) -> bool:
        """Whether the response is past ``expires`` at ``now`` (default: the current time)."""
        if self.expires is None:
            return False
        return (now or utcnow()) >= self.expires


@attrs.frozen(slots=True)
class StoredEntry:
    """An entry as it lies in storage, for tools that list, measure or move entries.

    Attributes:
        key: The key it is stored under (a variant key for a response with ``Vary``).
        entry: The decoded entry.
        size: The bytes it takes in storage (encoded, signature included).
        expired: Whether storage need not keep it any more: past its freshness and past
            the time it is kept for revalidation or stale use (what
            ``CacheBackend.delete(expired=True)`` removes).
    """

    key: str
    entry: CachedResponse
    size: int
    expired: bool = False
