"""Real Redis servers for the tests: one node, a three-node cluster, throwaway servers.

* ``redis_url`` (session): ``ACC_REDIS_URL`` when set (docker-compose), else a
  ``redis-server`` started here on a free 127.0.0.1 port, persistence off, in a temp
  folder. Tests that share it use unique cache names, so a shared server is never
  flushed and other users' keys are never touched.
* ``redis_cluster_url`` (session): ``ACC_REDIS_CLUSTER_URL`` when set, else three
  ``redis-server --cluster-enabled yes`` nodes joined with ``redis-cli --cluster create``;
  the URL is ``redis+cluster://127.0.0.1:PORT`` (one node: the client discovers the rest).
* ``redis_server_factory`` (function): starts dedicated servers that a test may stop and
  restart (outage tests) or bind to a unix socket; they are stopped after the test.

Without a ``redis-server`` binary these fixtures skip with the install hint, except under
``ACC_REQUIRE_SERVICES=1`` (CI), where a missing server fails the run.

The machine may also run a system Redis on 6379: nothing here uses it unless
``ACC_REDIS_URL`` says so, because tests that flush or stop a server must own it.
"""

from __future__ import annotations

import os
import random
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

__all__ = [
    "RedisServer",
    "free_port",
    "redis_cluster_url",
    "redis_server_binary",
    "redis_server_factory",
    "redis_url",
    "start_redis_cluster",
]

INSTALL_HINT = "install it with: apt install redis-server (or brew install redis)"
_START_TIMEOUT = 15.0


def _unavailable(reason: str) -> None:
    """Skip, or fail when CI requires the real services."""
    if os.environ.get("ACC_REQUIRE_SERVICES") == "1":
        pytest.fail(f"ACC_REQUIRE_SERVICES=1 but {reason}", pytrace=False)
    pytest.skip(reason)


def redis_server_binary() -> str:
    """The path of ``redis-server`` (skips or fails the test when there is none)."""
    found = shutil.which("redis-server")
    if found is None:
        _unavailable(f"no redis-server on PATH; {INSTALL_HINT}")
        raise AssertionError("unreachable")  # pytest.skip/fail raise
    return found


def _bindable(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def free_port(*, cluster: bool = False) -> int:
    """A TCP port that was free a moment ago (``--port 0`` would disable TCP instead).

    A cluster node also listens on its port + 10000 (the cluster bus), so for a node the
    port is drawn below 55536, with both ports free.
    """
    if not cluster:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
            probe.bind(("127.0.0.1", 0))
            port: int = probe.getsockname()[1]
        return port
    for _attempt in range(200):
        port = random.randrange(20_000, 32_000)  # bus ports 30000-42000
        if _bindable(port) and _bindable(port + 10_000):
            return port
    raise RuntimeError("no free pair of ports for a cluster node")


def _ping(port: int | None, unixsocket: Path | None) -> bool:
    """Whether a server answers PING, over a raw socket (no client library involved)."""
    try:
        if unixsocket is not None:
            conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            conn.settimeout(0.5)
            conn.connect(str(unixsocket))
        else:
            assert port is not None
            conn = socket.create_connection(("127.0.0.1", port), timeout=0.5)
        with conn:
            conn.sendall(b"PING\r\n")
            return conn.recv(64).startswith(b"+PONG")
    except OSError:
        return False


class RedisServer:
    """A ``redis-server`` process this test run owns: start, stop, restart.

    Args:
        folder: Its working folder (config, log, unix socket, cluster state).
        port: The TCP port on 127.0.0.1 (a free one by default); ``None`` with
            ``unixsocket`` listens on the socket only.
        unixsocket: Also (or only) listen on this unix socket.
        cluster: Start as a cluster node (``cluster-enabled yes``).
        extra: More ``redis-server`` arguments, after the defaults (so they win):
            ``["--appendonly", "yes"]`` for a server whose data survives a restart.
    """

    def __init__(
        self,
        folder: Path,
        *,
        port: int | None = -1,
        unixsocket: Path | None = None,
        cluster: bool = False,
        extra: tuple[str, ...] = (),
    ) -> None:
        self.extra = extra
        self.folder = folder
        self.folder.mkdir(parents=True, exist_ok=True)
        self.port = free_port(cluster=cluster) if port == -1 else port
        self.unixsocket = unixsocket
        self.cluster = cluster
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """``redis://127.0.0.1:PORT/0``, or ``unix://...`` for a socket-only server."""
        if self.port is None:
            return f"unix://{self.unixsocket}?db=0"
        return f"redis://127.0.0.1:{self.port}/0"

    @property
    def unix_url(self) -> str:
        """The ``unix://`` URL of the server's socket."""
        assert self.unixsocket is not None, "the server has no unix socket"
        return f"unix://{self.unixsocket}?db=0"

    def _arguments(self) -> list[str]:
        args = [
            redis_server_binary(),
            "--bind",
            "127.0.0.1",
            "--port",
            str(self.port or 0),
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(self.folder),
            "--logfile",
            str(self.folder / "redis.log"),
            "--daemonize",
            "no",
        ]
        if self.unixsocket is not None:
            args += ["--unixsocket", str(self.unixsocket), "--unixsocketperm", "700"]
        if self.cluster:
            args += [
                "--cluster-enabled",
                "yes",
                "--cluster-config-file",
                str(self.folder / "nodes.conf"),
                "--cluster-node-timeout",
                "5000",
            ]
        return args + list(self.extra)

    def start(self) -> RedisServer:
        """Start the server and wait until it answers PING."""
        assert self.process is None, "already running"
        self.process = subprocess.Popen(
            self._arguments(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        deadline = time.monotonic() + _START_TIMEOUT
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                break
            if _ping(self.port, self.unixsocket if not self.port else None):
                return self
            time.sleep(0.02)
        log = self.folder / "redis.log"
        self.stop()
        detail = log.read_text(errors="replace")[-2000:] if log.exists() else ""
        raise RuntimeError(f"redis-server did not start (port {self.port}):\n{detail}")

    def stop(self) -> None:
        """Stop the server (SIGTERM, then SIGKILL); its port is released. Idempotent."""
        process, self.process = self.process, None
        if process is None:
            return
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)

    def restart(self) -> None:
        """Start again on the same port (and socket) after :meth:`stop`."""
        self.stop()
        self.start()

    @property
    def running(self) -> bool:
        """Whether the process is alive."""
        return self.process is not None and self.process.poll() is None


def _start_with_retries(make: Callable[[], RedisServer]) -> RedisServer:
    """Start a server on a free port, trying again if another process took the port."""
    last: Exception | None = None
    for _attempt in range(5):
        try:
            return make().start()
        except RuntimeError as exc:
            last = exc
    _unavailable(f"redis-server cannot be started: {last}")
    raise AssertionError("unreachable")


def _cluster_ok(port: int) -> bool:
    """Whether a node reports ``cluster_state:ok`` (raw socket, like :func:`_ping`)."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1) as conn:
            conn.sendall(b"CLUSTER INFO\r\n")
            return b"cluster_state:ok" in conn.recv(4096)
    except OSError:
        return False


def start_redis_cluster(folder: Path) -> list[RedisServer]:
    """Start three cluster nodes and join them, primaries only, with ``redis-cli``.

    Returns:
        The nodes; the caller stops them.
    """
    cli = shutil.which("redis-cli")
    if cli is None:
        _unavailable(f"no redis-cli on PATH; {INSTALL_HINT}")
        raise AssertionError("unreachable")
    nodes: list[RedisServer] = []
    try:
        for index in range(3):
            node_folder = folder / f"node{index}"

            def make(node_folder: Path = node_folder) -> RedisServer:
                return RedisServer(node_folder, cluster=True)

            nodes.append(_start_with_retries(make))
        addresses = [f"127.0.0.1:{node.port}" for node in nodes]
        created = subprocess.run(
            [cli, "--cluster", "create", *addresses, "--cluster-replicas", "0", "--cluster-yes"],
            capture_output=True,
            timeout=60,
            check=False,
        )
        if created.returncode != 0:
            raise RuntimeError(
                f"redis-cli --cluster create failed: {created.stdout.decode()[-2000:]}"
                f"{created.stderr.decode()[-2000:]}"
            )
        deadline = time.monotonic() + 60
        while not all(_cluster_ok(node.port or 0) for node in nodes):
            if time.monotonic() > deadline:
                raise RuntimeError("the Redis cluster never reached cluster_state:ok")
            time.sleep(0.1)
    except BaseException:
        for node in nodes:
            node.stop()
        raise
    return nodes


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The URL of a single Redis server (``ACC_REDIS_URL``, or one started here)."""
    configured = os.environ.get("ACC_REDIS_URL")
    if configured:
        yield configured
        return
    redis_server_binary()
    folder = tmp_path_factory.mktemp("redis")
    server = _start_with_retries(lambda: RedisServer(folder))
    try:
        yield server.url
    finally:
        server.stop()


@pytest.fixture(scope="session")
def redis_cluster_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """``redis+cluster://`` URL of a three-node cluster (``ACC_REDIS_CLUSTER_URL`` or ours)."""
    configured = os.environ.get("ACC_REDIS_CLUSTER_URL")
    if configured:
        yield configured
        return
    redis_server_binary()
    nodes: list[RedisServer] = []
    failures: list[str] = []
    for _attempt in range(3):  # ports taken meanwhile, a slow machine: try afresh
        try:
            nodes = start_redis_cluster(tmp_path_factory.mktemp("redis-cluster"))
            break
        except RuntimeError as exc:
            failures.append(str(exc))
    if not nodes:
        _unavailable(f"a Redis cluster cannot be started: {failures}")
    try:
        yield f"redis+cluster://127.0.0.1:{nodes[0].port}"
    finally:
        for node in nodes:
            node.stop()


@pytest.fixture
def redis_server_factory(tmp_path: Path) -> Iterator[Callable[..., RedisServer]]:
    """Start dedicated servers for one test: ``start(unixsocket=False, extra=())``.

    A dedicated server may be stopped and restarted by the test (outage tests); every
    server started is stopped afterwards.
    """
    redis_server_binary()
    started: list[RedisServer] = []
    sockets: list[Path] = []

    def start(
        *, unixsocket: bool = False, tcp: bool = True, extra: tuple[str, ...] = ()
    ) -> RedisServer:
        folder = tmp_path / f"redis-{len(started)}"
        sock = None
        if unixsocket:  # a short path: unix socket paths are limited to ~107 bytes
            short = Path(tempfile.mkdtemp(prefix="acc-redis-"))
            sockets.append(short)
            sock = short / "redis.sock"
        server = _start_with_retries(
            lambda: RedisServer(folder, port=-1 if tcp else None, unixsocket=sock, extra=extra)
        )
        started.append(server)
        return server

    try:
        yield start
    finally:
        for server in started:
            server.stop()
        for folder in sockets:
            shutil.rmtree(folder, ignore_errors=True)
