"""The MongoDB cache backend: :class:`MongoDBBackend`."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import unquote, urlsplit, urlunsplit

from pymongo.common import URI_OPTIONS_ALIAS_MAP, URI_OPTIONS_VALIDATOR_MAP

from acc.backends.mongo.cache import MongoDBCache
from acc.backends.mongo.connection import MongoDBConnection
from acc.core.backend import CacheBackend
from acc.core.errors import ConfigError
from acc.core.url_options import parse_url_options, url_scheme

__all__ = ["MongoDBBackend"]

_OWN_STORES = ("responses", "redirects")
_SCHEMES = ("mongodb", "mongodb+srv")
# Connection-string options PyMongo knows (lower case: MongoDB's are case-insensitive).
_PYMONGO_OPTIONS = frozenset(name.lower() for name in URI_OPTIONS_VALIDATOR_MAP) | frozenset(
    name.lower() for name in URI_OPTIONS_ALIAS_MAP
)


class MongoDBBackend(CacheBackend):
    """A cache in a MongoDB database: ``responses`` and ``redirects`` collections.

    Both collections live in the database named by ``cache_name`` and share one PyMongo
    client (its pool of connections). Nothing is sent to the server until the first use.

    Args:
        cache_name: The database.
        url: A ``mongodb://`` or ``mongodb+srv://`` connection string (default
            ``mongodb://localhost:27017``); its options go to PyMongo.
        client: A ``pymongo.AsyncMongoClient`` to use instead of a URL. acc never
            closes it, even with ``autoclose``: its owner does.
        client_options: More ``AsyncMongoClient`` keyword arguments (with ``url``);
            ``serverSelectionTimeoutMS`` defaults to 1000 here (PyMongo: 30000), so an
            unreachable server costs about a second per cache operation.
        policy_kwargs: Every option of :class:`~acc.core.CacheBackend`
            (``expire_after``, ``allowed_codes``, ``secret_key``, ``strict``, ...).

    Raises:
        TypeError: An unknown keyword argument.
        ConfigError: An invalid value; the message names the argument.

    Example:
        >>> backend = MongoDBBackend("http-cache", url="mongodb://db:27017")  # doctest: +SKIP
    """

    responses: MongoDBCache
    redirects: MongoDBCache

    def __init__(
        self,
        cache_name: str = "acc-cache",
        *,
        url: str | None = None,
        client: Any = None,
        client_options: Mapping[str, Any] | None = None,
        **policy_kwargs: Any,
    ) -> None:
        for name in _OWN_STORES:
            if name in policy_kwargs:
                raise TypeError(f"MongoDBBackend builds its own stores: {name}= is not accepted")
        self.connection = MongoDBConnection(url, client=client, client_options=client_options)
        responses = MongoDBCache(cache_name, "responses", connection=self.connection)
        redirects = MongoDBCache(cache_name, "redirects", connection=self.connection)
        super().__init__(cache_name, responses=responses, redirects=redirects, **policy_kwargs)

    @property
    def client(self) -> Any:
        """The PyMongo client (the user's, when one was given)."""
        return self.connection.client

    @property
    def database(self) -> Any:
        """The database holding the two collections."""
        return self.client.get_database(self.cache_name)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.cache_name!r}, {self.connection!r})"

    @classmethod
    def from_url(cls, url: str, **options: Any) -> MongoDBBackend:
        """Build a backend from a ``mongodb://`` or ``mongodb+srv://`` URL.

        ``mongodb://user:pass@host1,host2/http-cache?replicaSet=rs0&expire_after=3600``:
        the path names the database (``cache_name``, default ``acc-cache``; as in any
        MongoDB URL it is also the default ``authSource``). Query options that are
        MongoDB connection-string options stay in the URL for PyMongo; the others are
        acc's (converted to the types the options expect). Keyword ``options`` win.

        Raises:
            ConfigError: Not a MongoDB URL, or an invalid value.
            TypeError: An option neither acc nor PyMongo knows.
        """
        if url_scheme(url) not in _SCHEMES:
            raise ConfigError("url", f"expected a mongodb:// or mongodb+srv:// URL, not {url!r}")
        parts = urlsplit(url)
        if parts.fragment:
            raise ConfigError("url", f"{url!r}: a backend URL has no #fragment")
        database = unquote(parts.path.lstrip("/"))
        # Driver options are kept as written (PyMongo parses them itself); acc's go to
        # parse_url_options, like every backend's. The backend has no URL options of its
        # own: the connection's are PyMongo's.
        driver: list[str] = []
        ours: list[str] = []
        for pair in filter(None, parts.query.split("&")):
            name = unquote(pair.partition("=")[0]).strip().lower()
            (driver if name in _PYMONGO_OPTIONS else ours).append(pair)
        try:
            kwargs = parse_url_options("&".join(ours), skip=("cache_name",), owner=cls.__name__)
        except TypeError as exc:
            raise TypeError(f"{exc} (or a MongoDB connection-string option)") from None
        kwargs.update(options)
        if database:
            kwargs.setdefault("cache_name", database)
        kwargs.setdefault(
            "url", urlunsplit((parts.scheme, parts.netloc, parts.path, "&".join(driver), ""))
        )
        return cls(**kwargs)
