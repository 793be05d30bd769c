"""The SQLite cache backend: :class:`SQLiteBackend`."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from acc.backends.sqlite.cache import (
    DEFAULT_BUSY_TIMEOUT,
    MEMORY,
    SQLiteCache,
    SQLiteConnection,
)
from acc.core.backend import CacheBackend
from acc.core.errors import ConfigError
from acc.core.url_options import OptionsTable, local_path_url, parse_url_options

__all__ = ["URL_OPTIONS", "SQLiteBackend", "SQLiteCache", "sqlite_path"]

_OWN_STORES = ("responses", "redirects")

URL_OPTIONS: OptionsTable = {
    "busy_timeout": float,
    "fast_save": bool,
    "max_entries": int | None,
    "max_bytes": int | None,
}
"""The options of :class:`SQLiteBackend` a URL query may set, besides ``CacheBackend``'s."""


def sqlite_path(name: str | os.PathLike[str]) -> Path:
    """Turn a cache name into the database file it means.

    ``~`` is expanded, a name without a suffix gets ``.sqlite``, and a relative path is
    made absolute (against the current directory, now). ``":memory:"`` is kept as it is.

    Raises:
        ConfigError: ``name`` is not a non-empty path.
    """
    try:
        text = os.fspath(name)
    except TypeError:
        raise ConfigError("cache_name", f"expected a path or ':memory:', not {name!r}") from None
    if not isinstance(text, str) or not text.strip():
        raise ConfigError("cache_name", f"expected a path or ':memory:', not {name!r}")
    if "\x00" in text:
        raise ConfigError("cache_name", f"a path cannot contain a NUL character: {name!r}")
    if text == MEMORY:
        return Path(MEMORY)
    path = Path(text).expanduser()
    if not path.suffix:
        path = path.with_name(path.name + ".sqlite")
    return path.absolute()


class SQLiteBackend(CacheBackend):
    """A cache in a SQLite database file: ``responses`` and ``redirects`` tables.

    Both tables live in one file and share one connection (one worker thread), opened
    on first use. Several backends, in one process or many, may use the same file.

    Args:
        cache_name: The database file: ``~`` is expanded, a name without a suffix gets
            ``.sqlite``, missing parent folders are created when it is first opened. What
            acc creates only its owner may read: the file (and SQLite's ``-wal`` and
            ``-shm`` files) ``0600``, the folders ``0700``.
            ``":memory:"`` keeps the cache in memory, for as long as the backend is open.
        busy_timeout: Seconds a statement waits for another connection's lock (default
            5), then fails (and the request goes on without storage). It is waited for
            on the event loop, never in the worker thread the stores share, so one
            statement's wait never holds up another's; and a request waits at most its
            ``storage_budget`` in all.
        fast_save: ``PRAGMA synchronous = OFF``: faster writes, but a power failure (not
            a crash of the process) may lose the latest entries.
        max_entries: Keep at most about this many responses: past it, expired entries
            are evicted first, then the oldest written (default ``None``: no bound).
        max_bytes: Keep the database within about this many bytes on disk, its
            write-ahead log included (see :meth:`disk_usage`), evicting as for
            ``max_entries``; a response larger than this is not stored (default
            ``None``: no bound).
        policy_kwargs: Every option of :class:`~acc.core.CacheBackend`
            (``expire_after``, ``allowed_codes``, ``secret_key``, ...).

    Raises:
        TypeError: An unknown keyword argument.
        ConfigError: An invalid value; the message names the argument.

    Example:
        >>> backend = SQLiteBackend("~/.cache/my-app", expire_after=3600)  # doctest: +SKIP
    """

    def __init__(
        self,
        cache_name: str | os.PathLike[str] = "acc-cache",
        *,
        busy_timeout: float = DEFAULT_BUSY_TIMEOUT,
        fast_save: bool = False,
        max_entries: int | None = None,
        max_bytes: int | None = None,
        **policy_kwargs: Any,
    ) -> None:
        for name in _OWN_STORES:
            if name in policy_kwargs:
                raise TypeError(f"SQLiteBackend builds its own stores: {name}= is not accepted")
        self.db_path: Path = sqlite_path(cache_name)
        """The database file (``Path(":memory:")`` for an in-memory cache)."""
        self.connection = SQLiteConnection(
            str(self.db_path), busy_timeout=busy_timeout, fast_save=fast_save
        )
        self.store = SQLiteCache(
            self.connection, "responses", max_entries=max_entries, max_bytes=max_bytes
        )
        """The ``responses`` table (``responses`` may be a near cache in front of it)."""
        super().__init__(
            os.fspath(cache_name),
            responses=self.store,
            redirects=SQLiteCache(self.connection, "redirects"),
            **policy_kwargs,
        )

    async def used_bytes(self) -> int:
        """Bytes the entries take: the database's pages in use plus its WAL file.

        See :meth:`SQLiteCache.disk_usage`; this is the figure ``max_bytes`` bounds (free
        pages not counted). :meth:`disk_usage` is what the files take on disk.
        """
        self._check_open()
        return await self.store.disk_usage()

    @property
    def in_memory(self) -> bool:
        """Whether the cache lives in memory rather than in a file."""
        return self.connection.in_memory

    def __repr__(self) -> str:
        return f"{type(self).__name__}({str(self.db_path)!r})"

    async def compact(self) -> bool:
        """``VACUUM`` the file once (both tables live in it) and truncate its log."""
        self._check_open()
        return await self.responses.compact()

    async def disk_usage(self) -> int:
        """Bytes the cache takes on disk: the database file, its WAL and its index.

        ``0`` for an in-memory cache. Both stores are tables of the one file.
        """
        self._check_open()
        return self.connection.disk_usage()

    async def vacuum(self) -> None:
        """Give the room of deleted entries back to the file system.

        Runs ``VACUUM`` and then checkpoints and truncates the write-ahead log (see
        :meth:`SQLiteConnection.vacuum`). It rewrites the whole database, so it takes a
        while on a large cache; run it after large deletions
        (``await backend.delete(expired=True)``), not on every request.

        Raises:
            BackendError: The backend is closed, or SQLite failed.
        """
        self._check_open()
        await self.connection.vacuum()

    @classmethod
    def from_url(cls, url: str, **options: Any) -> SQLiteBackend:
        """Build a backend from a ``sqlite:`` URL.

        * ``sqlite:///relative/cache.db``: a path relative to the current directory;
        * ``sqlite:////absolute/cache.db``: an absolute path (four slashes);
        * ``sqlite:///~/cache.db``: in the home folder;
        * ``sqlite://`` or ``sqlite:///:memory:``: in memory.

        Options may follow as a query (``?expire_after=3600&busy_timeout=10``): those of
        :data:`URL_OPTIONS` and ``CacheBackend``'s, converted to the types they declare;
        keyword ``options`` override them.

        Raises:
            ConfigError: Not a ``sqlite:`` URL, a host in it, or an invalid value.
            TypeError: An unknown option.
        """
        path, query = local_path_url(
            url, "sqlite", "sqlite:///relative.db, sqlite:////absolute/path.db or sqlite://"
        )
        kwargs = parse_url_options(query, URL_OPTIONS, skip=("cache_name",), owner=cls.__name__)
        kwargs.update(options)
        kwargs.setdefault("cache_name", path or MEMORY)
        return cls(**kwargs)
