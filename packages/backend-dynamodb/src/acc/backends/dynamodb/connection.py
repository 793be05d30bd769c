"""The DynamoDB client the stores of one cache share, and the table they live in.

A :class:`DynamoDBConnection` owns (or borrows) one aiobotocore client. Opening it is
lazy: constructors do no I/O, and the first operation of any store creates the client
and checks the table, once, under a lock. A failure there is not remembered, so the
next operation tries again: an outage at start-up heals like any other.

Every call goes through :meth:`DynamoDBConnection.call`, which turns the driver's
exceptions into acc's: connection failures, timeouts and throttling become
:class:`~acc.core.BackendUnavailable` (the façade then fails open), anything else
:class:`~acc.core.BackendError`. The defaults are short timeouts, and no retry of a
refused connection or a timeout (only of throttling), because the cache is an
optimisation: a request should not wait for a cache that is down before it goes to the
network. The table itself: :mod:`.table`.
"""

from __future__ import annotations

import asyncio
import copy
import math
import random
import re
from collections.abc import Mapping
from contextlib import AsyncExitStack
from typing import Any

import aioboto3  # type: ignore[import-untyped]
from aiobotocore.config import AioConfig  # type: ignore[import-untyped]
from boto3.dynamodb.transform import ParameterTransformer  # type: ignore[import-untyped]
from boto3.dynamodb.types import TypeDeserializer, TypeSerializer  # type: ignore[import-untyped]
from botocore.exceptions import (  # type: ignore[import-untyped]
    BotoCoreError,
    ClientError,
    ConnectionClosedError,
    HTTPClientError,
    NoCredentialsError,
    NoRegionError,
)
from botocore.exceptions import ConnectionError as BotoConnectionError

from acc.backends.dynamodb.table import (
    DEFAULT_TABLE,
    MissingTable,
    error_code,
    logger,
    prepare_table,
)
from acc.core.errors import BackendError, BackendUnavailable, ConfigError
from acc.core.storage.sharing import SharedConnection

__all__ = [
    "DEFAULT_CONNECT_TIMEOUT",
    "DEFAULT_MAX_ATTEMPTS",
    "DEFAULT_READ_TIMEOUT",
    "DynamoDBConnection",
    "wrap_error",
]


DEFAULT_CONNECT_TIMEOUT = 1.0
"""Seconds to wait for a TCP (and TLS) connection to DynamoDB."""

DEFAULT_READ_TIMEOUT = 3.0
"""Seconds to wait for a response; a 400 KB chunk comes back well within it."""

DEFAULT_MAX_ATTEMPTS = 2
"""Attempts for a throttled request or a server error, the first included."""


_TABLE_NAME = re.compile(r"[A-Za-z0-9_.-]{3,255}\Z")
_REGION = re.compile(r"[a-z0-9-]{1,64}\Z")
_POOL_CONNECTIONS = 50  # botocore's 10 would queue a busy session's cache lookups
_TRANSFORMER = ParameterTransformer()
_TO_NATIVE = TypeDeserializer().deserialize
_TO_TYPED = TypeSerializer().serialize
_DRIVER_ERRORS = (BotoCoreError, ClientError, OSError, asyncio.TimeoutError)
_BATCH_METHODS = frozenset({"batch_get_item", "batch_write_item"})
_BATCH_ATTEMPTS = 8
_FIRST_BACKOFF = 0.02
_MAX_BACKOFF = 1.0
_UNAVAILABLE_CODES = frozenset(
    {
        "ProvisionedThroughputExceededException",
        "ThrottlingException",
        "RequestLimitExceeded",
        "InternalServerError",
        "ServiceUnavailable",
    }
)


def wrap_error(operation: str, exc: BaseException, where: str) -> BackendError:
    """Turn a driver exception into :class:`BackendUnavailable` or :class:`BackendError`.

    Unreachable endpoints, timeouts, dropped connections and throttling are outages:
    they pass, and the façade serves from the network meanwhile. Everything else (a
    missing table, denied access, a request DynamoDB rejects) is an error to fix.
    """
    message = f"{where}: {operation} failed: {exc}"
    if isinstance(exc, (BotoConnectionError, HTTPClientError, asyncio.TimeoutError, OSError)):
        return BackendUnavailable(message)
    if error_code(exc) in _UNAVAILABLE_CODES:
        return BackendUnavailable(message)
    if isinstance(exc, NoRegionError):
        return BackendError(f"{where}: no AWS region: pass region= or set AWS_DEFAULT_REGION")
    if isinstance(exc, NoCredentialsError):
        return BackendError(f"{where}: no AWS credentials found ({exc})")
    return BackendError(message)


def _worth_retrying(exc: BaseException) -> bool:
    """Whether sending a failed request again may succeed at once."""
    return isinstance(exc, ConnectionClosedError) or error_code(exc) in _UNAVAILABLE_CODES


def _check_number(name: str, value: object, *, low: float, high: float) -> float:
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, float))
        or not math.isfinite(value)
        or not low < value <= high
    ):
        raise ConfigError(
            name, f"expected a number of seconds above {low} up to {high}, not {value!r}"
        )
    return float(value)


def _check_bool(name: str, value: object) -> bool:
    if not isinstance(value, bool):
        raise ConfigError(name, f"expected True or False, not {value!r}")
    return value


def _check_table_name(name: str, value: object) -> str:
    if not isinstance(value, str) or not _TABLE_NAME.match(value):
        raise ConfigError(
            name,
            f"expected 3-255 letters, digits, '_', '-' or '.' (DynamoDB's rule), not {value!r}",
        )
    return value


class DynamoDBConnection(SharedConnection):
    """One DynamoDB client and one table, shared by the stores of a cache.

    Args:
        table_name: The table (3-255 letters, digits, ``_``, ``-``, ``.``).
        region: The AWS region (default: the session's, from ``AWS_DEFAULT_REGION`` or
            the AWS config file).
        endpoint_url: Another endpoint than AWS's, such as DynamoDB Local
            (``http://localhost:8000``).
        create_table: Create the table when it is missing (on-demand billing) and turn
            on its TTL on ``expires_at``. Otherwise the table must exist.
        namespace_index: The name of a global secondary index on ``namespace``, which
            ``size``, ``keys`` and ``clear`` then query instead of scanning the table.
            ``None`` (the default) scans, with a filter.
        consistent_reads: Strongly consistent reads (the default): a delete or an
            overwrite is seen at once, by every process. ``False`` halves the read cost
            and may serve an entry for up to about a second after it changed.
        session: An ``aioboto3.Session`` to create the client from (credentials,
            profile). acc closes the client it creates, never the session.
        resource: A DynamoDB service resource the caller opened; its client is used and
            never closed by acc.
        client: A DynamoDB client the caller opened; used and never closed by acc.
        connect_timeout: Seconds to connect (default 1).
        read_timeout: Seconds to wait for a response (default 3).
        max_attempts: Attempts for a throttled request or a server error, the first
            included (default 2); a refused connection or a timeout is not retried.

    Raises:
        ConfigError: An invalid value, or an option that a caller-owned ``resource`` or
            ``client`` already decides.
    """

    def __init__(
        self,
        table_name: str = DEFAULT_TABLE,
        *,
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
    ) -> None:
        self.table_name = _check_table_name("table_name", table_name)
        if region is not None and (not isinstance(region, str) or not _REGION.match(region)):
            raise ConfigError(
                "region", f"expected an AWS region such as 'eu-west-1', not {region!r}"
            )
        if endpoint_url is not None and (
            not isinstance(endpoint_url, str)
            or not endpoint_url.startswith(("http://", "https://"))
        ):
            raise ConfigError(
                "endpoint_url", f"expected an http:// or https:// URL, not {endpoint_url!r}"
            )
        self.region = region
        self.endpoint_url = endpoint_url
        self.create_table = _check_bool("create_table", create_table)
        self.consistent_reads = _check_bool("consistent_reads", consistent_reads)
        self.namespace_index = (
            None
            if namespace_index is None
            else _check_table_name("namespace_index", namespace_index)
        )
        self.connect_timeout = _check_number(
            "connect_timeout",
            DEFAULT_CONNECT_TIMEOUT if connect_timeout is None else connect_timeout,
            low=0,
            high=300,
        )
        self.read_timeout = _check_number(
            "read_timeout",
            DEFAULT_READ_TIMEOUT if read_timeout is None else read_timeout,
            low=0,
            high=300,
        )
        attempts = DEFAULT_MAX_ATTEMPTS if max_attempts is None else max_attempts
        if isinstance(attempts, bool) or not isinstance(attempts, int) or not 1 <= attempts <= 10:
            raise ConfigError(
                "max_attempts", f"expected an integer from 1 to 10, not {max_attempts!r}"
            )
        self.max_attempts = attempts if client is None and resource is None else 1
        """Attempts per request (1 with a caller's client: its own retry settings rule)."""
        self._user_client = self._borrowed_client(
            session=session,
            resource=resource,
            client=client,
            owned_by_client={
                "region": region,
                "endpoint_url": endpoint_url,
                "connect_timeout": connect_timeout,
                "read_timeout": read_timeout,
                "max_attempts": max_attempts,
            },
        )
        if session is not None and not isinstance(session, aioboto3.Session):
            raise ConfigError(
                "session", f"expected an aioboto3.Session, not {type(session).__name__}"
            )
        self.session: Any = session
        # A resource's client converts Python values to DynamoDB's typed ones and back
        # (boto3's "high-level interface"); acc speaks the typed form, so it undoes that.
        self._native_values = resource is not None
        self.missing_table_hint = ""
        """Added to the warning and the error about a missing table (set by the backend)."""
        self._warned_missing = False
        self._client: Any = None  # set once the table was checked
        self._created: Any = None  # the client, from its creation on
        self._stack: AsyncExitStack | None = None
        self._lock: asyncio.Lock | None = None
        self._users = 0
        self._closed = False

    @staticmethod
    def _borrowed_client(
        *, session: Any, resource: Any, client: Any, owned_by_client: Mapping[str, object]
    ) -> Any:
        given = [
            name
            for name, value in (("session", session), ("resource", resource), ("client", client))
            if value is not None
        ]
        if len(given) > 1:
            raise ConfigError(
                given[1], f"pass one of session=, resource= or client=, not {' and '.join(given)}"
            )
        if resource is None and client is None:
            return None
        if resource is not None:
            client = getattr(getattr(resource, "meta", None), "client", None)
            if client is None:
                raise ConfigError(
                    "resource",
                    f"expected an aioboto3 DynamoDB resource, not {type(resource).__name__}",
                )
            name = "resource"
        else:
            name = "client"
        if not callable(getattr(client, "get_item", None)):
            raise ConfigError(name, f"expected a DynamoDB {name}, not {type(client).__name__}")
        for option, value in owned_by_client.items():
            if value is not None:
                raise ConfigError(option, f"set it on the {name} you pass instead")
        return client

    def __repr__(self) -> str:
        where = f", endpoint_url={self.endpoint_url!r}" if self.endpoint_url else ""
        return f"{type(self).__name__}({self.table_name!r}{where})"

    @property
    def owns_client(self) -> bool:
        """Whether acc created the client (and so closes it), rather than the caller."""
        return self._user_client is None

    # -- opening --------------------------------------------------------------------------

    async def client(self) -> Any:
        """Return the client, creating it and checking the table on first use.

        Raises:
            BackendUnavailable: DynamoDB cannot be reached.
            BackendError: The connection is closed, or the table is missing or has
                another key schema than acc's.
        """
        client = self._client
        if client is not None:
            return client
        if self._closed:
            raise BackendError(f"{self!r} is closed")
        if self._lock is None:
            self._lock = asyncio.Lock()
        async with self._lock:
            if self._closed:
                raise BackendError(f"{self!r} is closed")
            if self._client is None:
                if self._created is None:
                    self._created = await self._create_client()
                try:
                    await prepare_table(
                        self._created,
                        self.table_name,
                        create=self.create_table,
                        namespace_index=self.namespace_index,
                        where=repr(self),
                        hint=self.missing_table_hint,
                    )
                except MissingTable as exc:
                    if not self._warned_missing:  # once: the check is repeated per call
                        self._warned_missing = True
                        logger.warning("acc: %s", exc)
                    raise
                except _DRIVER_ERRORS as exc:
                    # The client is kept: the next call only checks the table again.
                    raise wrap_error("opening the table", exc, repr(self)) from exc
                self._client = self._created
            return self._client

    async def _create_client(self) -> Any:
        """The caller's client, or a new one (no I/O: it connects on its first call)."""
        if self._user_client is not None:
            return self._user_client
        if self.session is None:
            self.session = aioboto3.Session()
        config = AioConfig(
            connect_timeout=self.connect_timeout,
            read_timeout=self.read_timeout,
            # Retries are acc's (see call): botocore would also retry a refused
            # connection, after up to a second's sleep, on every request of an outage.
            retries={"total_max_attempts": 1, "mode": "standard"},
            max_pool_connections=_POOL_CONNECTIONS,
        )
        stack = AsyncExitStack()
        try:
            client = await stack.enter_async_context(
                self.session.client(
                    "dynamodb",
                    region_name=self.region,
                    endpoint_url=self.endpoint_url,
                    config=config,
                )
            )
        except _DRIVER_ERRORS as exc:
            await stack.aclose()
            raise wrap_error("creating the client", exc, repr(self)) from exc
        self._stack = stack
        return client

    # -- calls ----------------------------------------------------------------------------

    async def call(self, operation: str, method: str, **parameters: Any) -> dict[str, Any]:
        """Call ``client.<method>(**parameters)``, turning driver errors into acc's.

        A throttled request, a server error or a dropped pooled connection is sent again,
        up to ``max_attempts`` in all, after a short jittered pause. A refused connection
        or a timeout is not: the endpoint is down or slow, and the request should go to
        the network now rather than wait for it.

        Args:
            operation: What the store was doing, for the error message (``"read"``).
            method: The client method (``"get_item"``).
            parameters: Its arguments; ``TableName`` is added, except to the batch
                methods, whose requests name their tables in ``RequestItems``.

        Raises:
            BackendUnavailable: An outage (connection, timeout, throttling).
            BackendError: Any other failure, or a closed connection.
        """
        client = self._client
        if client is None:
            client = await self.client()
        if method not in _BATCH_METHODS:
            parameters["TableName"] = self.table_name
        model = None
        if self._native_values:
            model = client.meta.service_model.operation_model(
                client.meta.method_to_api_mapping[method]
            )
            parameters = copy.deepcopy(parameters)
            _TRANSFORMER.transform(parameters, model.input_shape, _TO_NATIVE, "AttributeValue")
        send = getattr(client, method)
        attempt = 1
        while True:
            try:
                result: dict[str, Any] = await send(**parameters)
                break
            except _DRIVER_ERRORS as exc:
                if attempt >= self.max_attempts or not _worth_retrying(exc):
                    raise wrap_error(operation, exc, repr(self)) from exc
                dropped = isinstance(exc, ConnectionClosedError)  # a stale pooled connection
            except RuntimeError as exc:  # a client closed under us: "Session is closed"
                if self._closed:
                    raise BackendError(f"{self!r} is closed") from exc
                raise
            if not dropped:  # throttled: give DynamoDB a moment
                await asyncio.sleep(_FIRST_BACKOFF * 2**attempt * (0.5 + random.random()))
            attempt += 1
        if model is not None:
            _TRANSFORMER.transform(result, model.output_shape, _TO_TYPED, "AttributeValue")
        return result

    async def backoff(self, attempt: int, operation: str, left: int) -> None:
        """Wait before resending the unprocessed part of a batch (throttling).

        Raises:
            BackendUnavailable: After the last attempt, with ``left`` items still unprocessed.
        """
        if attempt >= _BATCH_ATTEMPTS:
            raise BackendUnavailable(
                f"{self!r}: {operation}: {left} items still unprocessed after "
                f"{_BATCH_ATTEMPTS} attempts (throttled)"
            )
        delay = min(_FIRST_BACKOFF * 2**attempt, _MAX_BACKOFF)
        await asyncio.sleep(delay * (0.5 + random.random()))  # jitter spreads the retries

    # -- closing --------------------------------------------------------------------------

    async def close(self) -> None:
        """Close the client acc created (never a caller's). Idempotent."""
        if self._closed:
            return
        self._closed = True
        if self._lock is not None and self._lock.locked():
            async with self._lock:  # let an opening in progress finish first
                pass
        stack, self._stack = self._stack, None
        self._client = self._created = None
        if stack is not None:
            try:
                await stack.aclose()
            except (BotoCoreError, OSError) as exc:
                raise BackendError(f"closing {self!r} failed: {exc}") from exc
