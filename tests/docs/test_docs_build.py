"""The documentation builds with Sphinx, warnings treated as errors."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

DOCS = Path(__file__).resolve().parents[2] / "docs"


@pytest.mark.slow
def test_sphinx_build_succeeds_without_warnings(tmp_path: Path) -> None:
    pytest.importorskip("sphinx")
    pytest.importorskip("myst_parser")
    result = subprocess.run(
        [sys.executable, "-m", "sphinx", "-W", "--keep-going", "-b", "html", DOCS, tmp_path],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-8000:]
    assert (tmp_path / "index.html").is_file()
    # furo: code blocks and tables scroll instead of being cut at a fixed page width.
    assert "furo.css" in (tmp_path / "index.html").read_text(encoding="utf-8")


def test_the_index_starts_with_the_install_line() -> None:
    lines = [line for line in (DOCS / "index.md").read_text(encoding="utf-8").splitlines() if line]
    assert lines[0] == "# acc"
    assert lines[1] == "```console"
    assert lines[2].startswith("$ pip install acc-session-aiohttp")
