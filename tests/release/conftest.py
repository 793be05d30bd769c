"""Fixtures of the release tests: a fresh copy of the repository, its build, new venvs.

``fresh_clone`` copies what a clone of the repository would hold (the files git tracks,
plus new files it does not ignore, so that uncommitted work is tested too) into a
temporary folder; ``dist`` runs ``python scripts/dist.py build`` there, the command behind
``hatch run dist:build``, and is that clone's ``dist/`` folder. Both are made once per
test session. ``new_venv`` is a brand-new virtual environment, without the test
environment's packages.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import venv
from pathlib import Path

import pytest
from acc_release import BUILD_TIMEOUT, ROOT, Venv, explain, run


def _project_files(root: Path) -> list[str]:
    """What a clone of ``root`` holds once the work in progress is committed."""
    listed = subprocess.run(
        ["git", "-C", str(root), "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    if listed.returncode != 0:
        pytest.fail(f"cannot list the repository's files with git: {listed.stderr}")
    return [name for name in listed.stdout.split("\0") if name]


@pytest.fixture(scope="session")
def fresh_clone(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the repository's files, as a fresh clone has them (no dist/, no caches)."""
    clone = tmp_path_factory.mktemp("clone") / "acc"
    names = _project_files(ROOT)
    for name in names:
        source = ROOT / name
        if source.is_file():  # a tracked file deleted in the work tree is not copied
            target = clone / name
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target)
    assert (clone / "pyproject.toml").is_file()
    assert not (clone / "dist").exists()
    return clone


@pytest.fixture(scope="session")
def dist(fresh_clone: Path) -> Path:
    """``hatch run dist:build``'s command, run in the fresh clone: its ``dist/`` folder."""
    result = run(
        [sys.executable, "scripts/dist.py", "build"], cwd=fresh_clone, timeout=BUILD_TIMEOUT
    )
    assert result.returncode == 0, explain(result)
    return fresh_clone / "dist"


@pytest.fixture
def new_venv(tmp_path: Path) -> Venv:
    """A brand-new virtual environment (with pip), in the test's temporary folder."""
    path = tmp_path / "venv"
    venv.EnvBuilder(with_pip=True, clear=True).create(path)
    created = Venv(path)
    assert created.python.is_file()
    return created
