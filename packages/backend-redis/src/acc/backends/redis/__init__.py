"""acc.backends.redis: a Redis store for acc, on redis-py's asyncio client.

:class:`RedisBackend` is the cache (``CacheBackend`` options plus the server, and an
optional cross-process fetch lock); :class:`RedisCache` is one store, a key prefix,
behind the ``BaseCache`` port; :class:`RedisConnection` is the client its stores share.
The package registers the ``redis``, ``rediss``, ``unix``, ``redis+cluster`` and
``rediss+cluster`` URL schemes: ``CacheBackend.from_url("redis://localhost:6379/0")``.
"""

from acc.backends.redis._version import __version__
from acc.backends.redis.backend import DEFAULT_LOCK_TIMEOUT, RedisBackend
from acc.backends.redis.cache import RedisCache
from acc.backends.redis.connection import RedisConnection

__all__ = [
    "DEFAULT_LOCK_TIMEOUT",
    "RedisBackend",
    "RedisCache",
    "RedisConnection",
    "__version__",
]
