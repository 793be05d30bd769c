"""acc.core: the client-independent heart of acc.

It holds the cache policy, the stored-response model, the storage port every backend
implements, the entry codec, cache keys, the in-memory store and (in
:mod:`acc.core.testing`) the conformance kit. It imports no HTTP client and no database
driver: those live in the adapter packages.
"""

from acc.core._version import __version__
from acc.core.backend import CacheBackend
from acc.core.errors import (
    AccError,
    BackendError,
    BackendUnavailable,
    ConfigError,
    EntryTooLarge,
)
from acc.core.expiration import DO_NOT_CACHE, NEVER_EXPIRE, ExpirationTime
from acc.core.flow.outcome import CacheResult
from acc.core.keys import CacheRequest
from acc.core.models import CachedResponse, RedirectHop
from acc.core.stats import CacheStats
from acc.core.storage import BaseCache
from acc.core.storage.memory import MemoryCache

__all__ = [
    "DO_NOT_CACHE",
    "NEVER_EXPIRE",
    "AccError",
    "BackendError",
    "BackendUnavailable",
    "BaseCache",
    "CacheBackend",
    "CacheRequest",
    "CacheResult",
    "CacheStats",
    "CachedResponse",
    "ConfigError",
    "EntryTooLarge",
    "ExpirationTime",
    "MemoryCache",
    "RedirectHop",
    "__version__",
]
