"""What a client binding's ``cache`` argument means: :func:`resolve_cache`.

Every binding (the aiohttp session, the httpx transport and client) accepts the same
``cache`` argument, so they share one reading of it here rather than each keeping a copy
that could drift: ``None`` is a new in-memory cache, a string is a backend URL resolved by
scheme (:meth:`~acc.core.CacheBackend.from_url`), and a backend is used as it is.
"""

from __future__ import annotations

from acc.core.backend import CacheBackend
from acc.core.errors import ConfigError

__all__ = ["resolve_cache"]


def resolve_cache(cache: CacheBackend | str | None) -> CacheBackend:
    """Return the backend a binding should use for its ``cache`` argument.

    Raises:
        ConfigError: ``cache`` is none of the three accepted kinds, or a URL whose
            scheme no installed backend handles.
    """
    if cache is None:
        return CacheBackend()
    if isinstance(cache, CacheBackend):
        return cache
    if isinstance(cache, str):
        return CacheBackend.from_url(cache)
    raise ConfigError("cache", f"expected a CacheBackend, a URL string or None, not {cache!r}")
