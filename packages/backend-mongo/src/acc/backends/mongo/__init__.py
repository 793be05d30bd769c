"""acc.backends.mongo: a MongoDB store for acc, on PyMongo's native async API.

:class:`MongoDBBackend` is the cache (``CacheBackend`` options plus the server and the
database); :class:`MongoDBCache` is one store, a collection, behind the ``BaseCache``
port. The package registers the ``mongodb`` and ``mongodb+srv`` URL schemes:
``CacheBackend.from_url("mongodb://localhost:27017/http-cache")``.
"""

from acc.backends.mongo._version import __version__
from acc.backends.mongo.backend import MongoDBBackend
from acc.backends.mongo.cache import MAX_DOCUMENT_SIZE, MongoDBCache
from acc.backends.mongo.connection import TTL_INDEX_NAME, MongoDBConnection

__all__ = [
    "MAX_DOCUMENT_SIZE",
    "TTL_INDEX_NAME",
    "MongoDBBackend",
    "MongoDBCache",
    "MongoDBConnection",
    "__version__",
]
