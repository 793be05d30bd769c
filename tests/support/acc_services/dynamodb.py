"""A real DynamoDB endpoint for the tests: DynamoDB Local, or moto's standalone server.

``dynamodb_url`` (session-scoped) is ``ACC_DYNAMODB_URL`` when it is set (the
docker-compose ``dynamodb-local`` service), otherwise the URL of moto's standalone server
(``python -m moto.server``) started as a subprocess on 127.0.0.1 and a free port: a real
HTTP server speaking DynamoDB's JSON protocol, reached by aioboto3 over TCP (moto's
in-process decorators are not used). It runs in its own process, not in a thread of the
pytest process, so that the tests and the server never compete for one interpreter.
Without moto the tests skip with the install hint, or fail under
``ACC_REQUIRE_SERVICES=1``.

The URL names the table ``acc-tests`` and gives ``region``, ``endpoint_url`` and generous
client timeouts (:data:`TEST_TIMEOUTS`: the backend's defaults of 1 s to connect and 3 s
to answer are meant for production, and a loaded CI machine can exceed them against a
local server). Tests keep apart by cache name (:func:`unique_name`) or by table. Dummy
credentials are set in the environment, and ``AWS_EC2_METADATA_DISABLED`` so that
botocore never waits for the EC2 metadata address when it looks for credentials.

moto never deletes expired items and accepts requests real DynamoDB refuses (26-item
batches, 1-character table names): the backend keeps to DynamoDB's rules regardless, and
tests assert the expiry filtering themselves.
"""

from __future__ import annotations

import copy
import importlib.util
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, NoReturn
from urllib.parse import parse_qs, urlsplit

import pytest

__all__ = [
    "TEST_TIMEOUTS",
    "Call",
    "MotoServer",
    "aws_environment",
    "calls_to",
    "dynamodb_client",
    "dynamodb_options",
    "dynamodb_url",
    "record_calls",
    "start_moto_server",
    "unique_name",
    "with_test_timeouts",
]

TABLE = "acc-tests"
REGION = "us-east-1"
START_TIMEOUT = 60.0
"""Seconds moto's server may take to answer its first request (imports on a busy machine)."""
TEST_TIMEOUTS = {"connect_timeout": "10", "read_timeout": "30"}
"""Client timeouts of the test URL: generous, so that a loaded machine is slow, not failing."""
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
    """The ``region``, ``endpoint_url`` and timeouts of a test URL, as keyword arguments."""
    query = parse_qs(urlsplit(url).query)
    options: dict[str, Any] = {
        name: query[name][0] for name in ("region", "endpoint_url") if name in query
    }
    for name in TEST_TIMEOUTS:
        if name in query:
            options[name] = float(query[name][0])
    return options


def with_test_timeouts(url: str) -> str:
    """``url`` with the generous :data:`TEST_TIMEOUTS` added where it sets none."""
    query = parse_qs(urlsplit(url).query)
    extra = "&".join(f"{k}={v}" for k, v in TEST_TIMEOUTS.items() if k not in query)
    if not extra:
        return url
    return f"{url}{'&' if '?' in url else '?'}{extra}"


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


class MotoServer:
    """moto's standalone server, run as a subprocess on 127.0.0.1.

    Args:
        log: The file its output goes to (a werkzeug line per request), shown when it
            fails to start.
    """

    def __init__(self, log: Path) -> None:
        self.log = log
        self.port = 0
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def endpoint(self) -> str:
        """The ``http://127.0.0.1:PORT`` address of the server."""
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        """Start the server and wait until it answers HTTP.

        A port is chosen free, then bound by the child: another process may take it in
        between, so a child that exits at once is tried again on another port.

        Raises:
            RuntimeError: It did not answer within :data:`START_TIMEOUT` seconds, or
                exited (the message ends with its output).
        """
        for _attempt in range(3):
            self.port = _free_port()
            with self.log.open("ab") as out:
                self.process = subprocess.Popen(
                    [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(self.port)],
                    stdin=subprocess.DEVNULL,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                )
            if self._wait_ready():
                return
            if self.process.poll() is None:  # alive but silent for START_TIMEOUT: give up
                self.stop()
                break
        raise RuntimeError(f"moto's server did not start; its output:\n{self._log_tail()}")

    def _wait_ready(self) -> bool:
        """Whether the server answers HTTP before :data:`START_TIMEOUT` (False if it exits)."""
        assert self.process is not None
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                return False
            try:
                with urllib.request.urlopen(f"{self.endpoint}/moto-api/", timeout=5):
                    return True
            except urllib.error.HTTPError:  # an HTTP answer of any status: it is up
                return True
            except OSError:
                time.sleep(0.1)
        return False

    def _log_tail(self) -> str:
        try:
            return self.log.read_text(errors="replace")[-4000:]
        except OSError as exc:
            return f"(no log: {exc})"

    def stop(self) -> None:
        """Stop the server (SIGTERM, then SIGKILL); idempotent."""
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=15)


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


def start_moto_server() -> tuple[MotoServer, str]:
    """Start moto's standalone server in a subprocess on 127.0.0.1 and a free port.

    Returns:
        The server (stop it with ``server.stop()``) and its ``http://`` endpoint.

    Skips the test when moto is missing or does not start, or fails it under
    ``ACC_REQUIRE_SERVICES=1``.
    """
    if importlib.util.find_spec("moto") is None or importlib.util.find_spec("flask") is None:
        _unavailable("moto's server cannot be imported (moto[server] is not installed)")
    folder = Path(tempfile.mkdtemp(prefix="acc-moto-"))
    server = MotoServer(folder / "moto.log")
    try:
        server.start()
    except (OSError, RuntimeError) as exc:  # any failure to start is "no server"
        _unavailable(f"moto's server did not start ({exc})")
    return server, server.endpoint


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
        yield with_test_timeouts(configured)
        return
    server, endpoint = start_moto_server()
    try:
        yield with_test_timeouts(f"dynamodb://{TABLE}?region={REGION}&endpoint_url={endpoint}")
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
