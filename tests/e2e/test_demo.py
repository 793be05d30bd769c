"""The README's first command works: the demo runs, caches, revalidates and expires."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_demo_runs_and_shows_hits_revalidation_and_expiry(tmp_path):
    db = tmp_path / "demo.sqlite"
    result = subprocess.run(
        [sys.executable, str(ROOT / "demo" / "demo.py"), str(db)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert len(re.findall(r"^1 .* miss ", out, re.M)) == 6
    assert len(re.findall(r"^2 .* hit ", out, re.M)) == 6
    assert "the API saw 6 requests" in out
    assert "entries:    6" in out
    assert "revalidated=True" in out
    assert "after 1.1 s -> from_cache=True, revalidated=True" in out
    # Every write has landed when the stats are printed (6 misses, 2 revalidations).
    assert "'writes': 8," in out
    assert db.exists()
