"""acc.backends.dynamodb: a DynamoDB store for acc, on aioboto3.

:class:`DynamoDBBackend` is the cache (``CacheBackend`` options plus the table and the
client); :class:`DynamoDBCache` is one store, a namespace of the table, behind the
``BaseCache`` port. The package registers the ``dynamodb`` URL scheme:
``CacheBackend.from_url("dynamodb://http-cache?region=eu-west-1")``.
"""

from acc.backends.dynamodb._version import __version__
from acc.backends.dynamodb.backend import DynamoDBBackend
from acc.backends.dynamodb.cache import ITEM_LIMIT, DynamoDBCache
from acc.backends.dynamodb.connection import DynamoDBConnection
from acc.backends.dynamodb.table import DEFAULT_TABLE

__all__ = [
    "DEFAULT_TABLE",
    "ITEM_LIMIT",
    "DynamoDBBackend",
    "DynamoDBCache",
    "DynamoDBConnection",
    "__version__",
]
