"""acc.backends.sqlite: a persistent SQLite store for acc, on aiosqlite.

:class:`SQLiteBackend` is the cache (``CacheBackend`` options plus the database file);
:class:`SQLiteCache` is one store, a table, behind the ``BaseCache`` port.
The package registers the ``sqlite`` URL scheme: ``CacheBackend.from_url("sqlite:///c.db")``.
"""

from acc.backends.sqlite._version import __version__
from acc.backends.sqlite.backend import SQLiteBackend, sqlite_path
from acc.backends.sqlite.cache import SQLiteCache, SQLiteConnection

__all__ = ["SQLiteBackend", "SQLiteCache", "SQLiteConnection", "__version__", "sqlite_path"]
