"""A real DynamoDB endpoint for the tests: DynamoDB Local, or moto's standalone server.

``dynamodb_url`` (session-scoped) is ``ACC_DYNAMODB_URL`` when it is set (the
docker-compose ``dynamodb-local`` service), otherwise the URL of a
``moto.server.ThreadedMotoServer`` started on 127.0.0.1 on a free port: a real HTTP
server speaking DynamoDB's JSON protocol, reached by aioboto3 over TCP (moto's
in-process decorators are not used). Without moto the tests skip with the install hint,
or fail under ``ACC_REQUIRE_SERVICES=1``.

The URL names the table ``acc-tests`` and gives ``region`` and ``endpoint_url``; tests
keep apart by cache name (:func:`unique_name`) or by table. Dummy credentials are set
in the environment, and ``AWS_EC2_METADATA_DISABLED`` so that botocore never waits for
the EC2 metadata address when it looks for credentials.

moto never deletes expired items and accepts requests real DynamoDB refuses (26-item
batches, 1-character table names): the backend keeps to DynamoDB's rules regardless, and
tests assert the expiry filtering themselves.
"""

from __future__ import annotations

import copy
import importlib
import os
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from typing import Any, NoReturn
from urllib.parse import parse_qs, urlsplit

import pytest

__all__ = [
    "Call",
    "aws_environment",
    "calls_to",
    "dynamodb_client",
    "dynamodb_options",
    "dynamodb_url",
    "record_calls",
    "start_moto_server",
    "unique_name",
]

TABLE = "acc-tests"
REGION = "us-east-1"
_HINT = "pip install 'moto[server,dynamodb]' (or set ACC_DYNAMODB_URL to a DynamoDB Local URL)"
_ENVIRONMENT = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": REGION,
    "AWS_EC2_METADATA_DISABLED": "true",
}


def _unavailable(reason: str) -> NoReturn:
    if os.environ.get("ACC_REQUIRE_SERVICES") == "1":
        pytest.fail(f"ACC_REQUIRE_SERVICES=1 but {reason}", pytrace=False)
    pytest.skip(f"{reason}; {_HINT}")


def unique_name(prefix: str = "t") -> str:
    """A fresh name (a cache name or a table name: 3+ characters, DynamoDB's alphabet)."""
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


def dynamodb_options(url: str) -> dict[str, Any]:
    """The ``region`` and ``endpoint_url`` of a test URL, as backend keyword arguments."""
    query = parse_qs(urlsplit(url).query)
    return {name: query[name][0] for name in ("region", "endpoint_url") if name in query}


@asynccontextmanager
async def dynamodb_client(url: str) -> AsyncIterator[Any]:
    """A plain aioboto3 client for the test URL's endpoint, for tests' own requests."""
    import aioboto3  # type: ignore[import-untyped]

    options = dynamodb_options(url)
    async with aioboto3.Session().client(
        "dynamodb",
        region_name=options.get("region", REGION),
        endpoint_url=options.get("endpoint_url"),
    ) as client:
        yield client


def start_moto_server() -> tuple[Any, str]:
    """Start a ``ThreadedMotoServer`` on 127.0.0.1 and a free port.

    Returns:
        The server (stop it with ``server.stop()``) and its ``http://`` endpoint.

    Skips the test when moto is missing or does not start, or fails it under
    ``ACC_REQUIRE_SERVICES=1``.
    """
    try:
        moto_server = importlib.import_module("moto.server")
    except ImportError as exc:
        _unavailable(f"moto's server cannot be imported ({exc})")
    server = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    try:
        server.start()
        host, port = server.get_host_and_port()
    except Exception as exc:  # any failure to start is "no server", reported below
        _unavailable(f"moto's server did not start ({exc!r})")
    return server, f"http://{host}:{port}"


@pytest.fixture(scope="session")
def aws_environment() -> None:
    """Dummy AWS credentials and region, and no EC2 metadata probing, unless already set.

    Tests whose endpoint is down on purpose need it too: without credentials botocore
    fails before it even tries to connect.
    """
    for name, value in _ENVIRONMENT.items():
        os.environ.setdefault(name, value)


@pytest.fixture(scope="session")
def dynamodb_url(aws_environment: None) -> Iterator[str]:
    """A ``dynamodb://`` URL of a running endpoint, for the whole test session."""
    configured = os.environ.get("ACC_DYNAMODB_URL")
    if configured:
        yield configured
        return
    server, endpoint = start_moto_server()
    try:
        yield f"dynamodb://{TABLE}?region={REGION}&endpoint_url={endpoint}"
    finally:
        server.stop()


Call = tuple[str, dict[str, Any]]
"""An API call a client made: the operation's name (``"GetItem"``) and its parameters."""


def record_calls(client: Any) -> list[Call]:
    """Record every DynamoDB call ``client`` makes from now on, through botocore's events.

    The event system is part of the real driver (it is how botocore itself injects
    parameters and signs requests), so counting calls here changes nothing about them.
    """
    calls: list[Call] = []

    def record(params: dict[str, Any], model: Any, **_: Any) -> None:
        calls.append((model.name, copy.deepcopy(params)))

    client.meta.events.register("before-parameter-build.dynamodb", record)
    return calls


def calls_to(calls: list[Call], operation: str) -> list[dict[str, Any]]:
    """The parameters of the recorded calls of one operation, in order."""
    return [params for name, params in calls if name == operation]
