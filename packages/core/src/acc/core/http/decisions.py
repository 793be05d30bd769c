"""The decisions of the cache policy: small frozen values the session adapter acts on.

:mod:`acc.core.http.policy` returns them; the adapter dispatches on their type. They hold
what the adapter needs to perform the decision's I/O and nothing else, so each can be
compared in a test (RFC 9111 §4 describes the steps they stand for: use a stored
response, §4.2; validate it, §4.3; or forward the request).
"""

from __future__ import annotations

from datetime import datetime
from typing import Final

import attrs

from acc.core.errors import ConfigError
from acc.core.expiration import ExpirationTime, validate_expiration
from acc.core.models import CachedResponse, HeaderPairs

__all__ = [
    "DEFAULT_OPTIONS",
    "UNSET",
    "Fetch",
    "GatewayTimeout",
    "LookupDecision",
    "RequestOptions",
    "Revalidate",
    "StaleIfError",
    "StaleWhileRevalidate",
    "StoreDecision",
    "UseCached",
]


class _Unset:
    """The type of :data:`UNSET`."""

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

    @classmethod
    def build(
        cls,
        *,
        expire_after: object = UNSET,
        refresh: object = False,
        force_refresh: object = False,
        only_if_cached: object = False,
    ) -> RequestOptions:
        """Check options a caller passed and return them; ``ConfigError`` names a bad one.

        Most requests pass none: they get one shared value, checked once (this runs on
        every cache hit).
        """
        if (
            expire_after is UNSET
            and refresh is False
            and force_refresh is False
            and only_if_cached is False
        ):
            return DEFAULT_OPTIONS
        for name, flag in (
            ("refresh", refresh),
            ("force_refresh", force_refresh),
            ("only_if_cached", only_if_cached),
        ):
            if not isinstance(flag, bool):
                raise ConfigError(name, f"expected True or False, not {flag!r}")
        if not isinstance(expire_after, _Unset):
            expire_after = validate_expiration(expire_after, "expire_after")
        return cls(
            expire_after=expire_after,
            refresh=refresh,  # type: ignore[arg-type]
            force_refresh=force_refresh,  # type: ignore[arg-type]
            only_if_cached=only_if_cached,  # type: ignore[arg-type]
        )


DEFAULT_OPTIONS: Final = RequestOptions()
"""The options of a request that passes none."""


@attrs.frozen(slots=True)
class UseCached:
    """Return the stored entry as it is."""

    entry: CachedResponse


@attrs.frozen(slots=True)
class StaleWhileRevalidate:
    """Return the stale entry now, and refresh it in the background (RFC 5861 §3).

    ``headers`` are the conditional headers of the refresh; empty means a plain fetch.
    """

    entry: CachedResponse
    headers: HeaderPairs


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


@attrs.frozen(slots=True)
class StaleIfError:
    """Answer a failed fetch with the stored entry (RFC 5861 §4)."""

    entry: CachedResponse


LookupDecision = UseCached | StaleWhileRevalidate | Revalidate | Fetch | GatewayTimeout


def _same_as_expires(decision: StoreDecision) -> datetime | None:
    return decision.expires


@attrs.frozen(slots=True)
class StoreDecision:
    """Whether to store a response, until when it is fresh, and until when to keep it.

    Attributes:
        store: Whether to write the entry.
        expires: When it stops being fresh; ``None`` for never.
        reason: Why not, when ``store`` is false.
        storage_expires: Until when storage keeps it (``None``: until deleted); never
            before ``expires``, later when it may be revalidated or served stale.
    """

    store: bool
    expires: datetime | None = None
    reason: str = ""
    storage_expires: datetime | None = attrs.field(
        default=attrs.Factory(_same_as_expires, takes_self=True)
    )

    @property
    def storage_expires_at(self) -> float | None:
        """The epoch second given to the store as the entry's native expiry."""
        return None if self.storage_expires is None else self.storage_expires.timestamp()
