"""The Redis client the stores of one backend share: :class:`RedisConnection`.

It owns (or borrows) one ``redis.asyncio`` client, single node or cluster, and gives the
stores the few primitives they need in a form that is the same for both:

* :meth:`RedisConnection.run` runs one command and turns driver errors into acc's
  (``ConnectionError``/``TimeoutError``/cluster-down -> :class:`BackendUnavailable`,
  anything else -> :class:`BackendError`), so the façade can fail open;
* :meth:`RedisConnection.call` runs one single-key command through the automatic
  pipeline (:mod:`acc.backends.redis.pipelining`): the commands of many tasks in one
  loop iteration share a round trip;
* :meth:`RedisConnection.batch` sends commands in one round trip (a pipeline; on a
  cluster, one round trip per node, in parallel), with multi-key commands split so that
  no command spans two hash slots;
* :meth:`RedisConnection.transaction` runs commands in one ``MULTI``/``EXEC`` (on a
  cluster, commands of one hash slot), for what must change or be read together;
* :meth:`RedisConnection.scan` iterates over the keys matching a pattern on every
  primary (``SCAN``, never ``KEYS``).

Defaults are chosen for a cache, which must cost little when the server is gone: short
socket timeouts and a single quick retry after a connection error (redis-py's own default
retries ten times with backoff, which would make every request wait during an outage). A
command that timed out is never retried, so ``socket_timeout`` is what one command may
take, whatever ``retries`` says. redis-py reconnects on the next command, so nothing is
needed to recover when the server returns.
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import AsyncIterator, Awaitable, Iterable, Iterator, Mapping, Sequence
from contextlib import asynccontextmanager, contextmanager
from typing import Any, TypeAlias
from urllib.parse import urlsplit

from redis import exceptions as redis_errors
from redis.asyncio import BlockingConnectionPool, Connection, Redis
from redis.asyncio import cluster as redis_cluster
from redis.asyncio import connection as redis_connection
from redis.asyncio.cluster import RedisCluster
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff
from redis.crc import key_slot

from acc.backends.redis.pipelining import AutoPipeline
from acc.core.errors import BackendError, BackendUnavailable, ConfigError
from acc.core.storage.sharing import SharedConnection

__all__ = [
    "DEFAULT_MAX_CONNECTIONS",
    "DEFAULT_RETRIES",
    "DEFAULT_SOCKET_CONNECT_TIMEOUT",
    "DEFAULT_SOCKET_TIMEOUT",
    "RedisClient",
    "RedisConnection",
    "check_url",
    "redact_url",
    "split_cluster_url",
]

RedisClient: TypeAlias = Redis | RedisCluster
"""Either kind of redis-py asyncio client."""

DEFAULT_SOCKET_TIMEOUT = 5.0
"""Seconds a command may take (a 2 MiB value on a slow link included)."""
DEFAULT_SOCKET_CONNECT_TIMEOUT = 1.0
"""Seconds to wait for a connection: an unreachable server costs at most this per request."""
DEFAULT_RETRIES = 1
"""Quick retries of a command on a connection error: one hides a server restart."""

DEFAULT_MAX_CONNECTIONS = 100
"""Connections per server (per node of a cluster); more concurrent commands wait a turn."""

_SCHEMES = frozenset({"redis", "rediss", "unix"})
_CLUSTER_SCHEMES = {"redis+cluster": "redis", "rediss+cluster": "rediss"}
_BATCH = 500  # keys per UNLINK/MGET command: big enough to amortise, small enough to not block
_UNAVAILABLE: tuple[type[BaseException], ...] = (
    redis_errors.ConnectionError,
    redis_errors.TimeoutError,
    redis_errors.ClusterDownError,
    redis_errors.TryAgainError,
    redis_errors.RedisClusterException,  # "cannot connect to any node" and the like
    asyncio.TimeoutError,
    OSError,
)
# redis-py runs MULTI/EXEC in a cluster pipeline from 6.2 on (its transaction strategy).
_CLUSTER_TRANSACTIONS = hasattr(redis_cluster, "TransactionStrategy")
_TRANSLATED: tuple[type[BaseException], ...] = (*_UNAVAILABLE, redis_errors.RedisError)


def _number(name: str, value: object, *, allow_none: bool = True, upper: float = 3600) -> Any:
    if value is None and allow_none:
        return None
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, float))
        or value != value
        or not 0 < value <= upper
    ):
        raise ConfigError(
            name, f"expected a number of seconds above 0, at most {upper:g}, not {value!r}"
        )
    return float(value)


_OWN_ARGUMENTS = frozenset({"socket_timeout", "socket_connect_timeout", "retry"})


def _check_driver_options(
    options: Mapping[str, Any], client_class: type[Redis] | type[RedisCluster]
) -> None:
    """Refuse ``connection_options`` the client would reject only when it connects.

    redis-py hands most keyword arguments to each connection as it opens, so a misspelt
    one would fail every command (and the cache would fail open, silently) rather than
    the constructor; checking the names against the signatures reports it at once.

    Raises:
        TypeError: An option the redis-py client does not take.
        ConfigError: An option acc sets with its own argument, or ``decode_responses``.
    """
    known: set[str] = {"connection_class", "timeout"}
    # A connection takes its base class's options too (parser_class, health_check_interval).
    base = getattr(redis_connection, "AbstractConnection", Connection)
    for target in (client_class, BlockingConnectionPool, Connection, base):
        known.update(inspect.signature(target).parameters)
    for name in options:
        if name in _OWN_ARGUMENTS:
            argument = "retries" if name == "retry" else name
            raise ConfigError(
                "connection_options", f"set {name} with the {argument}= argument instead"
            )
        if name not in known or name in ("self", "kwargs"):
            raise TypeError(f"connection_options: redis-py's client takes no option {name!r}")
    if options.get("decode_responses"):
        raise ConfigError("connection_options", "decode_responses=True: entries are bytes")


def split_cluster_url(url: str) -> tuple[str, bool]:
    """``redis+cluster://h:p`` -> (``redis://h:p``, True); other URLs are kept."""
    scheme, sep, rest = url.partition("://")
    plain = _CLUSTER_SCHEMES.get(scheme.lower())
    if sep and plain is not None:
        return f"{plain}://{rest}", True
    return url, False


def check_url(url: object) -> str:
    """Validate a Redis URL (any of the accepted schemes).

    Raises:
        ConfigError: Not a string, or an unknown scheme, or no host / no socket path.
    """
    if not isinstance(url, str) or not url:
        raise ConfigError("url", f"expected a redis:// URL, not {url!r}")
    plain, _cluster = split_cluster_url(url)
    parts = urlsplit(plain)
    scheme = parts.scheme.lower()
    if scheme not in _SCHEMES:
        raise ConfigError(
            "url",
            f"{url!r}: expected redis://, rediss://, unix://, redis+cluster:// or "
            "rediss+cluster://",
        )
    if parts.fragment:
        raise ConfigError("url", f"{url!r}: a backend URL has no #fragment")
    if scheme == "unix" and not parts.path:
        raise ConfigError("url", f"{url!r}: a unix:// URL needs the socket path")
    if scheme != "unix" and not parts.hostname:
        raise ConfigError("url", f"{url!r}: the URL has no host")
    return url


def redact_url(url: str) -> str:
    """``url`` with its password replaced by ``***``, for messages and ``repr``."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    user = parts.username or ""
    host = parts.netloc.rpartition("@")[2]
    return parts._replace(netloc=f"{user}:***@{host}").geturl()


class RedisConnection(SharedConnection):
    """One redis-py asyncio client shared by the stores of a backend.

    Args:
        url: ``redis://[user:password@]host[:port][/db]``, ``rediss://...`` (TLS),
            ``unix:///path/to/socket[?db=N]``, or ``redis+cluster://host:port`` /
            ``rediss+cluster://...`` for a cluster (any one node; the rest is discovered).
            Options redis-py reads from a query string (``?health_check_interval=30``)
            are passed to it. Default: ``redis://localhost:6379/0``.
        client: A ``redis.asyncio.Redis`` or ``RedisCluster`` the caller owns; acc uses
            it but never closes it. It must not decode responses (values are bytes).
        cluster: Use ``RedisCluster`` with ``url`` (the same as a ``+cluster`` scheme).
        socket_timeout: Seconds a command may take (a command that times out is not
            retried); also what a command waits at most for a free pooled connection.
        socket_connect_timeout: Seconds to wait for a connection.
        retries: Quick retries of a command after a connection error (0 for none); a
            timeout is never retried.
        connection_options: More keyword arguments for the redis-py client
            (``ssl_ca_certs``, ``max_connections``, ``client_name``, ...).
        auto_pipeline: Send the single-key commands of the stores (reads, writes,
            deletes) that tasks issue in the same loop iteration together, in one round
            trip (see :mod:`acc.backends.redis.pipelining`). Default on; turn it off to
            give every command its own pooled connection (for example when a few very
            large values must not hold up the small ones queued behind them).

    Raises:
        ConfigError: An invalid value, or a client together with connection options.
    """

    def __init__(
        self,
        url: str | None = None,
        *,
        client: RedisClient | None = None,
        cluster: bool | None = None,
        socket_timeout: float | None = DEFAULT_SOCKET_TIMEOUT,
        socket_connect_timeout: float | None = DEFAULT_SOCKET_CONNECT_TIMEOUT,
        retries: int = DEFAULT_RETRIES,
        connection_options: Mapping[str, Any] | None = None,
        auto_pipeline: bool = True,
    ) -> None:
        if cluster is not None and not isinstance(cluster, bool):
            raise ConfigError("cluster", f"expected True or False, not {cluster!r}")
        if not isinstance(auto_pipeline, bool):
            raise ConfigError("auto_pipeline", f"expected True or False, not {auto_pipeline!r}")
        socket_timeout = _number("socket_timeout", socket_timeout)
        socket_connect_timeout = _number("socket_connect_timeout", socket_connect_timeout)
        if isinstance(retries, bool) or not isinstance(retries, int) or not 0 <= retries <= 10:
            raise ConfigError("retries", f"expected an integer from 0 to 10, not {retries!r}")
        if connection_options is not None and not (
            isinstance(connection_options, Mapping)
            and all(isinstance(name, str) for name in connection_options)
        ):
            raise ConfigError(
                "connection_options",
                f"expected a dict of keyword arguments, not {connection_options!r}",
            )
        self.owned = client is None
        """Whether acc created the client (and so closes it)."""
        if client is not None:
            self.client: RedisClient = self._borrow(client, url, cluster, connection_options)
            self.url = None
        else:
            self.url = check_url(url or "redis://localhost:6379/0")
            self.client = self._create(
                self.url,
                cluster,
                dict(connection_options or {}),
                socket_timeout=socket_timeout,
                socket_connect_timeout=socket_connect_timeout,
                retries=retries,
            )
        self.is_cluster = isinstance(self.client, RedisCluster)
        """Whether the client is a ``RedisCluster``."""
        self._users = 0
        self._closed = False
        self._initialized = False
        self._init_lock: asyncio.Lock | None = None
        self._limit: asyncio.Semaphore | None = None
        self.pipeline: AutoPipeline | None = AutoPipeline(self) if auto_pipeline else None
        """The automatic pipeline of single-key commands, or ``None`` when it is off."""

    @staticmethod
    def _borrow(
        client: object, url: str | None, cluster: bool | None, options: object
    ) -> RedisClient:
        if not isinstance(client, (Redis, RedisCluster)):
            raise ConfigError(
                "client",
                f"expected a redis.asyncio.Redis or RedisCluster, not {type(client).__name__}",
            )
        if url is not None or options:
            raise ConfigError("client", "give either a client or a URL and options, not both")
        if cluster is not None and cluster != isinstance(client, RedisCluster):
            raise ConfigError("cluster", f"cluster={cluster} contradicts the client given")
        if client.get_connection_kwargs().get("decode_responses"):
            raise ConfigError(
                "client",
                "the client decodes responses; entries are bytes: use decode_responses=False",
            )
        return client

    @staticmethod
    def _create(
        url: str,
        cluster: bool | None,
        options: dict[str, Any],
        *,
        socket_timeout: float | None,
        socket_connect_timeout: float | None,
        retries: int,
    ) -> RedisClient:
        plain, cluster_scheme = split_cluster_url(url)
        if cluster is False and cluster_scheme:
            raise ConfigError("cluster", f"cluster=False contradicts the URL {url!r}")
        as_cluster = cluster_scheme or bool(cluster)
        _check_driver_options(options, RedisCluster if as_cluster else Redis)
        options.setdefault("socket_timeout", socket_timeout)
        options.setdefault("socket_connect_timeout", socket_connect_timeout)
        # Retried: a connection error (a restarted server), not a timeout: a command that
        # timed out is not sent again, so socket_timeout bounds what a command may take.
        options.setdefault(
            "retry",
            Retry(
                ExponentialBackoff(cap=0.05, base=0.002),
                retries,
                supported_errors=(redis_errors.ConnectionError,),
            ),
        )
        parts = urlsplit(plain)
        try:
            if as_cluster:
                if parts.scheme == "unix":
                    raise ConfigError(
                        "cluster", "a Redis cluster is not reached over a unix socket"
                    )
                db = parts.path.strip("/")
                if db not in ("", "0"):
                    raise ConfigError("url", f"{url!r}: a Redis cluster has only database 0")
                return RedisCluster.from_url(plain, **options)
            # A blocking pool makes a burst of requests wait for a free connection;
            # the default pool raises MaxConnectionsError instead, which would count as
            # an outage and send the requests to the network.
            options.setdefault("max_connections", DEFAULT_MAX_CONNECTIONS)
            options.setdefault("timeout", socket_timeout)
            return Redis.from_pool(BlockingConnectionPool.from_url(plain, **options))
        except (
            ValueError,
            TypeError,
            redis_errors.RedisError,
            redis_errors.RedisClusterException,
        ) as exc:
            if isinstance(exc, ConfigError):
                raise
            raise ConfigError("url", f"{url!r}: {exc}") from exc

    def __repr__(self) -> str:
        if self.url is None:
            return f"{type(self).__name__}(client={type(self.client).__name__})"
        return f"{type(self).__name__}({redact_url(self.url)!r})"

    async def close(self) -> None:
        """Close the client if acc created it (a borrowed one is left open). Idempotent."""
        if self._closed:
            return
        self._closed = True
        if self.pipeline is not None:
            await self.pipeline.close()
        if self.owned:
            try:
                await self.client.aclose()
            except Exception as exc:  # closing a broken connection must not fail close()
                raise BackendError(f"closing {self!r} failed: {exc!r}") from exc

    # -- commands -------------------------------------------------------------------------------

    @contextmanager
    def errors(self, operation: str) -> Iterator[None]:
        """Translate driver errors raised inside the block into acc's exceptions."""
        try:
            yield
        except BackendError:
            raise
        except _TRANSLATED as exc:
            raise self.translate(operation, exc) from exc

    def translate(self, operation: str, error: BaseException) -> BackendError:
        """The acc exception for a driver's ``error`` in ``operation`` (a new one each time).

        Unreachable, timed out or cluster down: :class:`BackendUnavailable`; anything
        else (an error reply, a cancelled batch): :class:`BackendError`.
        """
        cause = error.__cause__
        if isinstance(error, BackendError) and isinstance(cause, _TRANSLATED):
            error = cause  # translated for another operation: name this one
        kind = BackendUnavailable if isinstance(error, _UNAVAILABLE) else BackendError
        if isinstance(error, BackendError):
            message = str(error)
            kind = type(error)
        else:
            message = f"{self!r}: {operation} failed: {error!r}"
        translated = kind(message)
        translated.__cause__ = error
        return translated

    async def run(self, operation: str, *command: Any) -> Any:
        """Run one command; driver errors become :class:`BackendError` (or Unavailable)."""
        if not self.is_cluster:  # the hit path: no extra awaits
            with self.errors(operation):
                return await self.client.execute_command(*command)
        async with self._cluster_turn(operation):
            return await self.client.execute_command(*command)

    def call(self, operation: str, *command: Any) -> Awaitable[Any]:
        """Run one single-key command, automatically pipelined when ``auto_pipeline`` is on.

        With it, the command joins those other tasks issue in the same loop iteration
        (see :mod:`acc.backends.redis.pipelining`); without it, this is :meth:`run`.
        Errors are the same either way.
        """
        if self.pipeline is None:
            return self.run(operation, *command)
        return self.pipeline.call(operation, *command)

    async def replies(self, operation: str, commands: Sequence[Sequence[Any]]) -> list[Any]:
        """Run ``commands`` in one pipeline; an error reply is returned, not raised.

        The pipeline as a whole failing (no server) raises as :meth:`batch` does.
        """
        if not self.is_cluster:
            with self.errors(operation):
                async with self.client.pipeline(transaction=False) as pipe:
                    for command in commands:
                        pipe.execute_command(*command)
                    return list(await pipe.execute(raise_on_error=False))
        async with self._cluster_turn(operation), self.client.pipeline() as pipe:
            for command in commands:
                pipe.execute_command(*command)
            return list(await pipe.execute(raise_on_error=False))

    async def batch(self, operation: str, commands: Sequence[Sequence[Any]]) -> list[Any]:
        """Run ``commands`` in one pipeline (no transaction) and return their replies.

        On a cluster redis-py sends the commands of each node together, the nodes in
        parallel; every command must touch one hash slot (see :meth:`by_slot`).
        """
        if not commands:
            return []
        if len(commands) == 1:
            return [await self.run(operation, *commands[0])]
        if not self.is_cluster:
            with self.errors(operation):
                async with self.client.pipeline(transaction=False) as pipe:
                    for command in commands:
                        pipe.execute_command(*command)
                    return list(await pipe.execute())
        async with self._cluster_turn(operation), self.client.pipeline() as pipe:
            for command in commands:
                pipe.execute_command(*command)
            return list(await pipe.execute())

    @property
    def transactions(self) -> bool:
        """Whether :meth:`transaction` works here.

        Always on one server; on a cluster, with redis-py 6.2 or later (earlier versions
        refuse ``MULTI`` in a cluster pipeline).
        """
        return not self.is_cluster or _CLUSTER_TRANSACTIONS

    async def transaction(self, operation: str, commands: Sequence[Sequence[Any]]) -> list[Any]:
        """Run ``commands`` in one ``MULTI``/``EXEC`` and return their replies.

        No other client's command runs between them, so the reads among them see one
        state of the database and the writes land together. On a cluster every command
        must touch the same hash slot (a hash tag). An error reply to one command raises
        after the others ran: Redis does not roll back.
        """
        if not self.is_cluster:
            with self.errors(operation):
                async with self.client.pipeline(transaction=True) as pipe:
                    for command in commands:
                        pipe.execute_command(*command)
                    return list(await pipe.execute())
        async with self._cluster_turn(operation), self.client.pipeline(transaction=True) as pipe:
            for command in commands:
                pipe.execute_command(*command)
            return list(await pipe.execute())

    @asynccontextmanager
    async def _cluster_turn(self, operation: str) -> AsyncIterator[None]:
        """Prepare a cluster client for a command, and keep within its connection limit.

        redis-py's cluster client discovers the nodes on first use; tasks that race
        that discovery can be handed a connection it is about to replace, so it is done
        once, up front, under a lock. Its pools also raise ``MaxConnectionsError`` rather
        than wait when a node's ``max_connections`` are busy, so commands queue here for
        a turn instead (a burst of requests must wait, not count as an outage).
        """
        with self.errors(operation):
            if self._limit is None:
                limit = getattr(self.client, "max_connections", None)
                if not isinstance(limit, int) or limit <= 0:
                    limit = 100
                self._limit = asyncio.Semaphore(limit)
                self._init_lock = asyncio.Lock()
            if not self._initialized:
                assert self._init_lock is not None
                async with self._init_lock:
                    if not self._initialized:
                        assert isinstance(self.client, RedisCluster)
                        await self.client.initialize()
                        self._initialized = True
            async with self._limit:
                yield

    async def server_time_ms(self, operation: str) -> float:
        """The server's clock (``TIME``) in epoch milliseconds; on a cluster, the earliest."""
        reply = await self.run(operation, "TIME")
        clocks = reply.values() if isinstance(reply, dict) else [reply]
        return min(int(seconds) * 1000 + int(micros) / 1000 for seconds, micros in clocks)

    def by_slot(self, keys: Iterable[bytes]) -> list[list[bytes]]:
        """Split keys into groups a multi-key command may take, at most 500 per group.

        A single node takes any keys together; a cluster needs each command's keys in
        one hash slot. Grouping by slot (rather than forcing one slot with a hash tag per
        namespace) keeps the entries of one cache spread over the whole cluster.
        """
        groups: dict[int, list[bytes]] = {}
        for key in keys:
            slot = key_slot(key) if self.is_cluster else 0
            groups.setdefault(slot, []).append(key)
        return [
            group[start : start + _BATCH]
            for group in groups.values()
            for start in range(0, len(group), _BATCH)
        ]

    async def scan(
        self, operation: str, match: bytes, count: int = 1000
    ) -> AsyncIterator[list[bytes]]:
        """Yield pages of the keys matching ``match``, from every primary of a cluster.

        ``SCAN`` may return a key twice (while the server rehashes); callers dedupe.
        """
        if self.is_cluster:
            assert isinstance(self.client, RedisCluster)
            async with self._cluster_turn(operation):  # the nodes are known after this
                pass
            nodes: list[Any] = list(self.client.get_primaries())
        else:
            nodes = [None]
        for node in nodes:
            cursor = 0
            while True:
                reply: Any
                if node is None:
                    with self.errors(operation):
                        reply = await self.client.scan(cursor, match=match, count=count)
                    cursor, keys = reply
                else:
                    async with self._cluster_turn(operation):
                        reply = await self.client.scan(
                            cursor, match=match, count=count, target_nodes=node
                        )
                    cursors, keys = reply  # a cluster answers {node name: cursor}, keys
                    cursor = cursors[node.name]
                if keys:
                    yield [bytes(key) for key in keys]
                if not cursor:
                    break
