"""acc-core + acc-backend-sqlite, installed alone in a fresh venv, is a working cache.

The venv gets ``packages/core`` and ``packages/backend-sqlite`` from this checkout and
their declared dependencies from the package index, and nothing else (no aiohttp, no
httpx): this proves the dependency lists are complete and that the core needs no client.
"""

from __future__ import annotations

import os
import subprocess
import sys
import venv
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_core_and_sqlite_alone_are_a_cache(tmp_path: Path) -> None:
    env_dir = tmp_path / "venv"
    venv.EnvBuilder(with_pip=True).create(env_dir)
    python = env_dir / ("Scripts" if os.name == "nt" else "bin") / "python"
    environment = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "VIRTUAL"))}
    environment["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    subprocess.run(
        [
            str(python),
            "-m",
            "pip",
            "install",
            "--quiet",
            str(ROOT / "packages" / "core"),
            str(ROOT / "packages" / "backend-sqlite"),
        ],
        check=True,
        timeout=600,
        env=environment,
    )
    installed = subprocess.run(
        [str(python), "-m", "pip", "list", "--format=freeze"],
        check=True,
        capture_output=True,
        text=True,
        env=environment,
    ).stdout.lower()
    for wanted in ("acc-core", "acc-backend-sqlite"):
        assert wanted in installed
    for unwanted in ("aiohttp", "httpx"):
        assert unwanted not in installed
    done = subprocess.run(
        [
            str(python),
            str(ROOT / "tests" / "standalone" / "core_only_scenario.py"),
            str(ROOT / "docs" / "any-client.md"),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        env=environment,
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.strip().endswith("core-only: ok"), done.stdout
    assert sys.executable != str(python)
