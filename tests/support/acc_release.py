"""Helpers of the release tests (tests/release): commands outside the test environment.

:func:`run` runs a command with the repository and the test environment kept off its
path; :class:`Venv` is a brand-new virtual environment to install the built packages in.
Installing uses pip as configured on the machine (its index, timeouts, proxy), so that
third-party dependencies (attrs, aiohttp, redis, ...) come from the package index.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
"""The repository."""
INSTALL_TIMEOUT = 900  # seconds: a cold pip cache on a slow network, on a busy machine
BUILD_TIMEOUT = 900


def run(
    command: list[str], *, cwd: Path, timeout: float = INSTALL_TIMEOUT
) -> subprocess.CompletedProcess[str]:
    """Run ``command`` outside the test environment: no PYTHONPATH, no VIRTUAL_ENV."""
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV", "PYTHONSTARTUP")
    }
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    return subprocess.run(
        command,
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def explain(result: subprocess.CompletedProcess[str]) -> str:
    """The command and the end of its output, for an assertion message."""
    return (
        f"$ {' '.join(map(str, result.args))}\n(exit {result.returncode})\n"
        f"{result.stdout[-6000:]}\n{result.stderr[-6000:]}"
    )


class Venv:
    """A new virtual environment: its folder and its interpreter."""

    def __init__(self, path: Path) -> None:
        self.path = path
        bindir = "Scripts" if os.name == "nt" else "bin"
        self.python = path / bindir / ("python.exe" if os.name == "nt" else "python")
        self.bin = path / bindir

    def pip_install(self, *arguments: str, cwd: Path) -> None:
        """``pip install ARGUMENTS`` in this environment; fails the test if pip does."""
        result = run(
            [str(self.python), "-m", "pip", "install", "--retries", "5", *arguments], cwd=cwd
        )
        assert result.returncode == 0, explain(result)

    def distributions(self) -> dict[str, str]:
        """The distributions installed here, name -> version."""
        result = run(
            [
                str(self.python),
                "-c",
                "import importlib.metadata as m, json; print(json.dumps("
                "{d.metadata['Name']: d.version for d in m.distributions()}))",
            ],
            cwd=self.path,
        )
        assert result.returncode == 0, explain(result)
        found: dict[str, str] = json.loads(result.stdout)
        return found
