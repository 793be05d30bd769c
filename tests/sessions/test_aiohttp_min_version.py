"""The lowest aiohttp that acc-session-aiohttp declares really works.

A fresh venv gets that exact aiohttp (the bound is read from the package's pyproject, so
raising it moves this test along), the packages from this checkout, and the test
plugins; then the seam tests and the cached-response tests run there.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import venv
from pathlib import Path

import pytest

if sys.version_info >= (3, 11):
    import tomllib
else:  # the suite runs on 3.11+; tomli is tomllib's backport
    tomllib = pytest.importorskip("tomli")

ROOT = Path(__file__).resolve().parents[2]
PYPROJECT = ROOT / "packages" / "session-aiohttp" / "pyproject.toml"


def declared_aiohttp() -> tuple[str, str]:
    """The lowest and the excluded upper aiohttp versions the package declares."""
    dependencies = tomllib.loads(PYPROJECT.read_text())["project"]["dependencies"]
    (spec,) = (d for d in dependencies if re.match(r"aiohttp\b", d))
    lowest = re.search(r">=\s*([\d.]+)", spec)
    upper = re.search(r"<\s*([\d.]+)", spec)
    assert lowest, f"no lower bound in {spec!r}"
    assert upper, f"no upper bound in {spec!r}"
    return lowest.group(1), upper.group(1)


def test_the_bounds_are_declared() -> None:
    lowest, upper = declared_aiohttp()
    assert tuple(map(int, lowest.split("."))) < tuple(map(int, upper.split(".")))
    assert upper == "4"  # below the next major


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_seams_and_responses_on_the_lowest_declared_aiohttp(tmp_path: Path) -> None:
    lowest, _upper = declared_aiohttp()
    env_dir = tmp_path / "venv"
    venv.EnvBuilder(with_pip=True).create(env_dir)
    python = str(env_dir / "bin" / "python")
    environment = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "VIRTUAL"))}
    environment["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    subprocess.run(
        [
            python,
            "-m",
            "pip",
            "install",
            "--quiet",
            f"aiohttp=={lowest}",
            "pytest>=8",
            "pytest-asyncio>=0.24",
            "pytest-timeout>=2.3",
            "hypothesis>=6.100",
            str(ROOT / "packages" / "core"),
            str(ROOT / "packages" / "session-aiohttp"),
            str(ROOT / "packages" / "backend-sqlite"),
            str(ROOT / "packages" / "backend-filesystem"),
        ],
        check=True,
        timeout=600,
        env=environment,
    )
    version = subprocess.run(
        [python, "-c", "import aiohttp; print(aiohttp.__version__)"],
        check=True,
        capture_output=True,
        text=True,
        env=environment,
    ).stdout.strip()
    padded = (lowest + ".0.0").split(".")[:3]
    assert version.split(".")[:3] == padded
    run = subprocess.run(
        [
            python,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            "tests/sessions/test_aiohttp_seams.py",
            "tests/sessions/test_response.py",
        ],
        capture_output=True,
        text=True,
        timeout=600,
        env=environment,
        cwd=ROOT,
    )
    assert run.returncode == 0, run.stdout[-5000:] + run.stderr[-3000:]
    assert re.search(r"\d+ passed", run.stdout)
    assert sys.executable != python
