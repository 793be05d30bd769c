"""The DynamoDB cache backend: :class:`DynamoDBBackend`."""

from __future__ import annotations

from typing import Any
from urllib.parse import unquote, urlsplit

from acc.backends.dynamodb.cache import DynamoDBCache
from acc.backends.dynamodb.connection import DynamoDBConnection
from acc.backends.dynamodb.table import DEFAULT_TABLE
from acc.core.backend import CacheBackend
from acc.core.errors import ConfigError
from acc.core.url_options import OptionsTable, parse_url_options, url_scheme

__all__ = ["URL_OPTIONS", "DynamoDBBackend"]

_OWN_STORES = ("responses", "redirects")

URL_OPTIONS: OptionsTable = {
    "region": str | None,
    "endpoint_url": str | None,
    "create_table": bool,
    "namespace_index": str | None,
    "consistent_reads": bool,
    "connect_timeout": float | None,
    "read_timeout": float | None,
    "max_attempts": int | None,
}
"""The options of :class:`DynamoDBBackend` a URL query may set, besides ``CacheBackend``'s.

The table comes from the URL's host; ``session``, ``resource`` and ``client`` are objects
that only code can pass.
"""


class DynamoDBBackend(CacheBackend):
    """A cache in a DynamoDB table, shared by every process and machine that uses it.

    Both stores (``responses`` and ``redirects``) live in one table, as items whose
    partition key starts with ``"<cache_name>:<store>:"``; several caches may share the
    table. Both stores share one client, created on first use and closed with the
    backend (unless the caller passed it in).

    Coming from aiohttp-client-cache: its first argument named the *table*; here it is
    the namespace inside the table, and the table is ``table_name=``. Upstream's
    ``DynamoDBBackend("my-table", create_if_not_exists=True)`` is
    ``DynamoDBBackend(table_name="my-table", create_table=True)``. When the table does not
    exist and ``create_table`` is off, the first use logs a warning (once) that says so,
    and the cache fails open (or raises, with ``strict=True``).

    Args:
        cache_name: The namespace of this cache in the table (no ``:`` or ``#``).
        table_name: The DynamoDB table (default ``"acc-cache"``).
        region: The AWS region (default: from the environment or the AWS config).
        endpoint_url: Another endpoint, such as DynamoDB Local's.
        create_table: Create the table if it is missing (on-demand billing) and turn on
            its TTL on ``expires_at``; otherwise the table must exist.
        namespace_index: A global secondary index on ``namespace`` for ``size``,
            ``keys`` and ``clear`` (created with the table); ``None`` scans instead.
        consistent_reads: Strongly consistent reads (default ``True``).
        session: An ``aioboto3.Session`` to create the client from.
        resource: A DynamoDB resource the caller owns (acc never closes it).
        client: A DynamoDB client the caller owns (acc never closes it).
        connect_timeout: Seconds to connect (default 1).
        read_timeout: Seconds to wait for a response (default 3).
        max_attempts: Attempts for a throttled request or a server error, the first
            included (default 2); a refused connection or a timeout is not retried.
        policy_kwargs: Every option of :class:`~acc.core.CacheBackend`
            (``expire_after``, ``allowed_codes``, ``secret_key``, ``strict``, ...).

    Raises:
        TypeError: An unknown keyword argument.
        ConfigError: An invalid value; the message names the argument.

    Example:
        >>> DynamoDBBackend("my-app", table_name="http-cache", region="eu-west-1")  # doctest: +SKIP
    """

    def __init__(
        self,
        cache_name: str = "acc-cache",
        *,
        table_name: str = DEFAULT_TABLE,
        region: str | None = None,
        endpoint_url: str | None = None,
        create_table: bool = False,
        namespace_index: str | None = None,
        consistent_reads: bool = True,
        session: Any = None,
        resource: Any = None,
        client: Any = None,
        connect_timeout: float | None = None,
        read_timeout: float | None = None,
        max_attempts: int | None = None,
        **policy_kwargs: Any,
    ) -> None:
        for name in _OWN_STORES:
            if name in policy_kwargs:
                raise TypeError(f"DynamoDBBackend builds its own stores: {name}= is not accepted")
        self.connection = DynamoDBConnection(
            table_name,
            region=region,
            endpoint_url=endpoint_url,
            create_table=create_table,
            namespace_index=namespace_index,
            consistent_reads=consistent_reads,
            session=session,
            resource=resource,
            client=client,
            connect_timeout=connect_timeout,
            read_timeout=read_timeout,
            max_attempts=max_attempts,
        )
        """The client and table both stores share."""
        if cache_name != "acc-cache":  # a name given, perhaps meant as the table
            self.connection.missing_table_hint = (
                f". Note: the first argument of DynamoDBBackend, cache_name={cache_name!r}, "
                f"is a namespace inside the table {table_name!r}, not a table; "
                f"aiohttp-client-cache's DynamoDBBackend({cache_name!r}) named the table, "
                f"which is DynamoDBBackend(table_name={cache_name!r}) in acc"
            )
        super().__init__(
            cache_name,
            responses=DynamoDBCache(self.connection, "responses", cache_name=cache_name),
            redirects=DynamoDBCache(self.connection, "redirects", cache_name=cache_name),
            **policy_kwargs,
        )

    @property
    def table_name(self) -> str:
        """The DynamoDB table."""
        return self.connection.table_name

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.cache_name!r}, table_name={self.table_name!r})"

    @classmethod
    def from_url(cls, url: str, **options: Any) -> DynamoDBBackend:
        """Build a backend from a ``dynamodb://TABLE?option=value...`` URL.

        The host part is the table (``dynamodb://`` alone means ``acc-cache``); every
        other option goes in the query: ``region``, ``endpoint_url``, ``cache_name``,
        ``create_table``, ``expire_after``, ... Keyword ``options`` override the query.

        Raises:
            ConfigError: Not a ``dynamodb:`` URL, a path, port or credentials in it, or
                an invalid value.
            TypeError: An unknown option.
        """
        if url_scheme(url) != "dynamodb":
            raise ConfigError("url", f"expected a dynamodb:// URL, not {url!r}")
        parts = urlsplit(url)
        if parts.fragment:
            raise ConfigError("url", f"{url!r}: a backend URL has no #fragment")
        if "@" in parts.netloc or ":" in parts.netloc or parts.path.strip("/"):
            raise ConfigError(
                "url",
                f"{url!r}: a dynamodb URL names only a table: dynamodb://TABLE?region=...; "
                "credentials come from the environment, the endpoint from ?endpoint_url=",
            )
        kwargs = parse_url_options(parts.query, URL_OPTIONS, owner=cls.__name__)
        kwargs.update(options)
        if parts.netloc:
            kwargs.setdefault("table_name", unquote(parts.netloc))
        return cls(**kwargs)
