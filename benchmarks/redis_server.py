"""A dedicated ``redis-server`` for the scale workload: started here, owned here, stopped here.

The scale workload fills Redis with up to a million entries and flushes it between runs,
so it never uses a shared server: it starts its own on a free 127.0.0.1 port, with
persistence off, a ``maxmemory`` that holds a million 1.5 KB entries several times over,
and ``noeviction``, so a full server fails the fill loudly instead of quietly evicting.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import tempfile
import time

__all__ = ["DedicatedRedis", "redis_server_unavailable"]

_MAXMEMORY = "6gb"
_START_TIMEOUT = 15.0


def redis_server_unavailable() -> str | None:
    """Why a dedicated Redis cannot run here, or ``None`` when it can."""
    if shutil.which("redis-server") is None:
        return "no redis-server on PATH (apt install redis-server)"
    try:
        module = __import__("acc.backends.redis", fromlist=["RedisBackend"])
    except ImportError:
        return "acc.backends.redis is not installed"
    if not hasattr(module, "RedisBackend"):
        return "acc.backends.redis has no RedisBackend"
    return None


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


def _answers(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5) as conn:
            conn.sendall(b"PING\r\n")
            return conn.recv(64).startswith(b"+PONG")
    except OSError:
        return False


class DedicatedRedis:
    """``with DedicatedRedis() as server: server.url`` (database 0 of a server of our own)."""

    def __init__(self) -> None:
        self.port = 0
        self._process: subprocess.Popen[bytes] | None = None
        self._folder: tempfile.TemporaryDirectory[str] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def __enter__(self) -> DedicatedRedis:
        self._folder = tempfile.TemporaryDirectory(prefix="acc-bench-redis-")
        for _attempt in range(5):
            self.port = _free_port()
            self._process = subprocess.Popen(
                [
                    "redis-server",
                    "--port",
                    str(self.port),
                    "--bind",
                    "127.0.0.1",
                    "--save",
                    "",
                    "--appendonly",
                    "no",
                    "--maxmemory",
                    _MAXMEMORY,
                    "--maxmemory-policy",
                    "noeviction",
                    "--dir",
                    self._folder.name,
                ],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            deadline = time.monotonic() + _START_TIMEOUT
            while time.monotonic() < deadline and self._process.poll() is None:
                if _answers(self.port):
                    return self
                time.sleep(0.05)
            self._stop()  # the port was taken meanwhile, or the server failed: try again
        raise RuntimeError("could not start a dedicated redis-server")

    def _stop(self) -> None:
        if self._process is not None:
            self._process.terminate()
            try:
                self._process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait(timeout=10)
            self._process = None

    def __exit__(self, *exc_info: object) -> None:
        self._stop()
        if self._folder is not None:
            self._folder.cleanup()
            self._folder = None
