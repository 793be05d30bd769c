"""The PyMongo client the stores of a cache share: :class:`MongoDBConnection`.

acc builds the client from a URL (with short timeouts, so an unreachable server costs
little per request) or takes the user's. It is created without I/O; PyMongo connects,
and resolves ``mongodb+srv`` names, on first use. A client acc built is closed with the
last store using it; a client the user passed in is never closed by acc.
"""

from __future__ import annotations

import asyncio
import logging
import re
import warnings
from collections.abc import Mapping
from typing import Any
from urllib.parse import unquote

from pymongo import AsyncMongoClient
from pymongo.driver_info import DriverInfo
from pymongo.errors import ConfigurationError, InvalidName, OperationFailure, PyMongoError

from acc.backends.mongo._version import __version__
from acc.core.errors import BackendError, ConfigError
from acc.core.storage.sharing import SharedConnection

__all__ = ["DEFAULT_CLIENT_OPTIONS", "DEFAULT_URL", "TTL_INDEX_NAME", "MongoDBConnection"]

logger = logging.getLogger("acc.backends.mongo")

DEFAULT_URL = "mongodb://localhost:27017"
"""The server used when neither a URL nor a client is given."""

DEFAULT_CLIENT_OPTIONS: Mapping[str, Any] = {"serverSelectionTimeoutMS": 1000}
"""PyMongo options acc sets unless the URL or ``client_options`` set them.

PyMongo waits up to 30 s for a server by default; a cache that cannot reach its server
should give up quickly and let the request go to the network, so acc waits 1 s. The
connect timeout is left alone: PyMongo's monitor also uses it as the timeout of its
heartbeats, and a short one would make a busy server look down.
"""

TTL_INDEX_NAME = "acc_expires_at"
"""The name of the TTL index acc creates on ``expires_at`` in each collection."""

# OperationFailure codes of an index that exists on expires_at with other options.
_INDEX_CONFLICTS = frozenset({85, 86})


def _check_client_options(options: object) -> dict[str, Any]:
    if options is None:
        return {}
    if not isinstance(options, Mapping) or not all(isinstance(k, str) for k in options):
        raise ConfigError(
            "client_options", f"expected a mapping of PyMongo option names, not {options!r}"
        )
    return dict(options)


class MongoDBConnection(SharedConnection):
    """One PyMongo client, shared by the stores of a cache.

    Args:
        url: A ``mongodb://`` or ``mongodb+srv://`` connection string; its options
            (``replicaSet``, ``tls``, ``authSource``, ...) go to PyMongo as they are.
            Without a URL or a client, ``mongodb://localhost:27017``.
        client: A client to use instead: a ``pymongo.AsyncMongoClient`` (or any object
            with the same async API). acc never closes it: its owner does.
        client_options: Keyword arguments for ``AsyncMongoClient`` (only with ``url``);
            they win over the URL's. acc sets ``serverSelectionTimeoutMS`` to 1000
            unless the URL or these options set it.

    Raises:
        ConfigError: An invalid URL or PyMongo option, or both a URL and a client.
    """

    def __init__(
        self,
        url: str | None = None,
        *,
        client: Any = None,
        client_options: Mapping[str, Any] | None = None,
    ) -> None:
        options = _check_client_options(client_options)
        if client is not None:
            if url is not None:
                raise ConfigError("client", "give a url or a client, not both")
            if options:
                raise ConfigError("client_options", "only used with a url; configure the client")
            if not callable(getattr(client, "get_database", None)):
                raise ConfigError(
                    "client", f"expected a pymongo AsyncMongoClient, not {type(client).__name__}"
                )
            self.client: Any = client
            self.owns_client = False
            self._address = f"user's {type(client).__name__}"
        else:
            url = DEFAULT_URL if url is None else url
            self.client = self._build_client(url, options)
            self.owns_client = True
            self._address = _redact(url.partition("?")[0])
        self._indexed: set[tuple[str, str]] = set()
        self._index_lock: asyncio.Lock | None = None
        self._users = 0
        self._closed = False

    @staticmethod
    def _build_client(url: str, options: dict[str, Any]) -> AsyncMongoClient[Any]:
        if not isinstance(url, str) or not url.lower().startswith(("mongodb://", "mongodb+srv://")):
            raise ConfigError("url", f"expected a mongodb:// or mongodb+srv:// URL, not {url!r}")
        given = {name.lower() for name in options}
        given.update(
            unquote(pair.partition("=")[0]).strip().lower()
            for pair in re.split("[&;]", url.partition("?")[2])
        )
        for name, value in DEFAULT_CLIENT_OPTIONS.items():
            if name.lower() not in given:
                options[name] = value
        options.setdefault("driver", DriverInfo("acc", __version__))
        # PyMongo only warns about an unknown option or a value it cannot use, then
        # ignores it; a misspelt timeout would silently become 30 s. Make it an error.
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            try:
                client: AsyncMongoClient[Any] = AsyncMongoClient(url, **options)
            except (ConfigurationError, InvalidName, TypeError, ValueError) as exc:
                raise ConfigError("url", f"{_redact(url)}: {exc}") from None
        problems = [str(w.message) for w in caught if issubclass(w.category, UserWarning)]
        for other in caught:
            if not issubclass(other.category, UserWarning):
                warnings.warn_explicit(other.message, other.category, other.filename, other.lineno)
        if problems:
            raise ConfigError("url", f"{_redact(url)}: {'; '.join(problems)}")
        return client

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.address!r})"

    @property
    def address(self) -> str:
        """Where the client connects, for messages: the URL without credentials or options."""
        return self._address

    def collection(self, db_name: str, collection_name: str) -> Any:
        """The collection of a store (no I/O)."""
        return self.client.get_database(db_name).get_collection(collection_name)

    async def ensure_ttl_index(self, collection: Any) -> None:
        """Create the TTL index of ``collection`` once per connection.

        ``createIndexes`` with an existing, identical index is a no-op on the server, so
        this is safe with other processes doing the same. An index on ``expires_at``
        that exists with other options is left alone, with a warning: reads filter
        expired entries anyway, so the cache works, but the server will not delete
        them by itself.
        """
        name = (collection.database.name, collection.name)
        if name in self._indexed:
            return
        if self._index_lock is None:
            self._index_lock = asyncio.Lock()
        async with self._index_lock:
            if name in self._indexed:
                return
            try:
                await collection.create_index(
                    "expires_at", expireAfterSeconds=0, name=TTL_INDEX_NAME
                )
            except OperationFailure as exc:
                if exc.code not in _INDEX_CONFLICTS:
                    raise
                logger.warning(
                    "acc: %s.%s already has an index on expires_at with other options (%s); "
                    "expired entries are hidden but the server will not delete them",
                    *name,
                    exc,
                )
            self._indexed.add(name)

    async def close(self) -> None:
        """Close the client if acc built it; a user's client is left open. Idempotent."""
        if self._closed:
            return
        self._closed = True
        if self.owns_client:
            try:
                await self.client.close()
            except PyMongoError as exc:
                raise BackendError(f"closing {self!r} failed: {exc}") from exc


def _redact(url: str) -> str:
    """``url`` without its password, for messages."""
    return re.sub(r"(://[^:/@]*:)[^@/]*@", r"\1***@", url)
