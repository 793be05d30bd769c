"""acc.sessions.httpx: a caching :class:`httpx.AsyncBaseTransport` and :class:`httpx.AsyncClient`.

Wrap any transport in :class:`CacheTransport`, or use :class:`CachedClient` where you used
``httpx.AsyncClient``. Per-request options travel in ``extensions={"acc": {...}}``; every
response carries its cache metadata in ``response.extensions["acc"]``.
"""

from acc.sessions.httpx._version import __version__
from acc.sessions.httpx.client import CachedClient
from acc.sessions.httpx.transport import CacheTransport

__all__ = ["CacheTransport", "CachedClient", "__version__"]
