"""A real MongoDB wire-protocol server for the tests: the ``mongodb_url`` fixture.

``ACC_MONGODB_URL`` is used when it is set (a real ``mongod``, such as docker-compose's
``mongo`` service). Otherwise the fixture runs mongoeco's wire server
(``mongoeco.wire.AsyncMongoEcoProxyServer`` over an in-memory engine) in a separate
process, and the tests reach it with the real PyMongo driver over TCP, exactly as they
would reach ``mongod``.

mongoeco needs Python >= 3.13, which the test environment may not run, so the server
gets its own interpreter and virtual environment:

* the interpreter is ``$ACC_PYTHON313``, else ``python3.13`` or ``python3.14`` on the
  PATH, else the newest ``~/.pyenv/versions/3.13*`` or ``3.14*``;
* the virtual environment lives in ``$ACC_MONGOECO_VENV``, else
  ``$XDG_CACHE_HOME/acc-tests/mongoeco-py3.X`` (``~/.cache/...``), so it is built once
  (``pip install "mongoeco[wire]"``) and reused by later runs; a broken one is rebuilt.

Building it ahead of time (as CI does) keeps the first test fast::

    python -c "import acc_services.mongo as m; print(m.prepare_mongoeco())"

When no interpreter is found or the install fails, the tests that need the server skip
with the reason, except with ``ACC_REQUIRE_SERVICES=1`` (CI), where they fail.
"""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import NoReturn
from urllib.parse import urlsplit, urlunsplit

import pytest

__all__ = [
    "ServiceUnavailable",
    "database_url",
    "find_python313",
    "mongodb_database",
    "mongodb_url",
    "prepare_mongoeco",
    "with_test_timeouts",
]

SERVER_SCRIPT = Path(__file__).with_name("mongoeco_server.py")
MONGOECO_REQUIREMENT = "mongoeco[wire]"
_INSTALL_TIMEOUT = 600.0
_START_TIMEOUT = 60.0
_SELECTION_TIMEOUT_MS = 30_000  # the test URL's serverSelectionTimeoutMS: see with_test_timeouts
_INSTALL_HINT = (
    "install Python 3.13 (for example `pyenv install 3.13`) or set ACC_PYTHON313 to a "
    "Python >= 3.13, or set ACC_MONGODB_URL to a running MongoDB "
    "(docker compose up -d mongo; ACC_MONGODB_URL=mongodb://localhost:27017)"
)


class ServiceUnavailable(RuntimeError):
    """The server cannot be started here; the message says why and what would help."""


def _is_python313(executable: str) -> bool:
    try:
        result = subprocess.run(
            [executable, "-c", "import sys; print(sys.version_info >= (3, 13))"],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return False
    return result.returncode == 0 and result.stdout.strip() == "True"


def find_python313() -> str | None:
    """A Python >= 3.13 interpreter to run mongoeco, or ``None``."""
    candidates: list[str] = []
    if os.environ.get("ACC_PYTHON313"):
        candidates.append(os.environ["ACC_PYTHON313"])
    for name in ("python3.13", "python3.14"):
        found = shutil.which(name)
        if found:
            candidates.append(found)
    pyenv = Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv")) / "versions"
    for pattern in ("3.13*", "3.14*"):
        candidates.extend(sorted(glob.glob(str(pyenv / pattern / "bin" / "python")), reverse=True))
    return next((candidate for candidate in candidates if _is_python313(candidate)), None)


def _venv_python(venv: Path) -> Path:
    return venv / ("Scripts/python.exe" if os.name == "nt" else "bin/python")


def _has_mongoeco(python: Path) -> bool:
    if not python.exists():
        return False
    try:
        result = subprocess.run(
            [str(python), "-c", "import mongoeco.wire, mongoeco.engines.memory"],
            capture_output=True,
            timeout=60,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return False
    return result.returncode == 0


def _venv_dir(interpreter: str) -> Path:
    if os.environ.get("ACC_MONGOECO_VENV"):
        return Path(os.environ["ACC_MONGOECO_VENV"]).expanduser()
    version = subprocess.run(
        [interpreter, "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    ).stdout.strip()
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return cache / "acc-tests" / f"mongoeco-py{version}"


@contextlib.contextmanager
def _exclusive(lock_file: Path) -> Iterator[None]:
    """Hold a file lock, so two test runs never build the same venv at once."""
    lock_file.parent.mkdir(parents=True, exist_ok=True)
    with lock_file.open("a") as handle:
        try:
            import fcntl
        except ImportError:  # Windows: no concurrent runs assumed
            yield
            return
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _run(command: list[str], what: str) -> None:
    try:
        result = subprocess.run(
            command, capture_output=True, text=True, timeout=_INSTALL_TIMEOUT, check=False
        )
    except (OSError, subprocess.SubprocessError) as exc:
        raise ServiceUnavailable(f"{what} failed: {exc}") from exc
    if result.returncode != 0:
        tail = (result.stderr or result.stdout).strip().splitlines()[-5:]
        raise ServiceUnavailable(f"{what} failed: " + " | ".join(tail))


def prepare_mongoeco() -> Path:
    """Return a Python that can run the mongoeco server, building its venv if needed.

    Raises:
        ServiceUnavailable: No Python >= 3.13, or the venv cannot be built.
    """
    interpreter = find_python313()
    if interpreter is None:
        raise ServiceUnavailable(
            f"mongoeco needs Python >= 3.13 and none was found; {_INSTALL_HINT}"
        )
    venv = _venv_dir(interpreter)
    python = _venv_python(venv)
    if _has_mongoeco(python):
        return python
    with _exclusive(venv.with_name(venv.name + ".lock")):
        if _has_mongoeco(python):  # another run built it while this one waited
            return python
        shutil.rmtree(venv, ignore_errors=True)
        _run([interpreter, "-m", "venv", str(venv)], f"creating the venv {venv}")
        _run(
            [str(python), "-m", "pip", "install", "--quiet", MONGOECO_REQUIREMENT],
            f"pip install {MONGOECO_REQUIREMENT!r} into {venv}",
        )
        if not _has_mongoeco(python):
            raise ServiceUnavailable(
                f"{MONGOECO_REQUIREMENT} was installed in {venv} but fails to import"
            )
    return python


class MongoecoServer:
    """A mongoeco wire server in a child process, stopped by closing its stdin."""

    def __init__(self, python: Path, log: Path, port: int = 0) -> None:
        self._log = log.open("ab")
        self.process = subprocess.Popen(
            [str(python), str(SERVER_SCRIPT), "127.0.0.1", str(port)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._log,
        )
        self.port = self._wait_ready(log)
        self.url = with_test_timeouts(f"mongodb://127.0.0.1:{self.port}/?directConnection=true")

    def _wait_ready(self, log: Path) -> int:
        line: list[bytes] = []  # (the log is appended to: a restarted server keeps it)
        assert self.process.stdout is not None
        stdout = self.process.stdout
        reader = threading.Thread(target=lambda: line.append(stdout.readline()), daemon=True)
        reader.start()
        reader.join(_START_TIMEOUT)
        text = line[0].decode(errors="replace").strip() if line else ""
        if not text.startswith("READY "):
            self.stop()
            errors = log.read_text(errors="replace").strip().splitlines()[-5:]
            raise ServiceUnavailable(
                f"the mongoeco server did not start (said {text!r}): " + " | ".join(errors)
            )
        return int(text.split()[1])

    def stop(self) -> None:
        """Stop the server (end of its input, then a kill if it lingers)."""
        if self.process.stdin is not None:
            with contextlib.suppress(OSError):
                self.process.stdin.close()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=10)
        if self.process.stdout is not None:
            self.process.stdout.close()
        self._log.close()


def with_test_timeouts(url: str) -> str:
    """``url`` with a generous ``serverSelectionTimeoutMS`` unless it sets one.

    The backend's default (1 s, meant for production: a request should not wait long for
    a cache) can pass on a loaded CI machine before a local server has answered; the
    tests' server is never down unless a test stops it, so they wait longer.
    """
    if "serverselectiontimeoutms=" in url.lower():
        return url
    return f"{url}{'&' if '?' in url else '?'}serverSelectionTimeoutMS={_SELECTION_TIMEOUT_MS}"


def _unavailable(reason: str) -> NoReturn:
    if os.environ.get("ACC_REQUIRE_SERVICES") == "1":
        pytest.fail(f"MongoDB is required (ACC_REQUIRE_SERVICES=1) but: {reason}", pytrace=False)
    pytest.skip(f"no MongoDB server: {reason}")


@pytest.fixture(scope="session")
def mongodb_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The ``mongodb://`` URL of a real server for this test session.

    ``ACC_MONGODB_URL`` when set; otherwise a mongoeco wire server started in its own
    process for the session (see the module's docstring). Tests share the server, so
    each uses its own database (or clears what it uses).
    """
    configured = os.environ.get("ACC_MONGODB_URL")
    if configured:
        yield with_test_timeouts(configured)
        return
    try:
        python = prepare_mongoeco()
        server = MongoecoServer(python, tmp_path_factory.mktemp("mongoeco") / "server.log")
    except (ServiceUnavailable, OSError, subprocess.SubprocessError) as exc:
        _unavailable(str(exc))
    try:
        yield server.url
    finally:
        server.stop()


def database_url(url: str, database: str) -> str:
    """``url`` with its path set to ``database`` (its options kept)."""
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, f"/{database}", parts.query, ""))


@pytest.fixture
def mongodb_database(mongodb_url: str) -> Iterator[str]:
    """A database name no other test uses, dropped after the test.

    The server is shared by the session (and, with ``ACC_MONGODB_URL``, maybe by
    people), so each test works in a database of its own.
    """
    from pymongo import MongoClient

    name = f"acc-test-{uuid.uuid4().hex[:12]}"
    yield name
    client: MongoClient[dict[str, object]] = MongoClient(mongodb_url, serverSelectionTimeoutMS=5000)
    try:
        client.drop_database(name)
    finally:
        client.close()


if __name__ == "__main__":  # pragma: no cover - a helper for CI images
    print(prepare_mongoeco())
    sys.exit(0)
