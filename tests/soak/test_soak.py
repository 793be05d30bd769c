"""Soak: thousands of requests through one cache at high concurrency, every body checked.

``soak.py`` runs in a process of its own (so its peak RSS is its own): three users,
resources revalidated with ``304`` or changed between phases on a clock the run moves,
hits, misses, revalidations and expiries mixed at random (seeded), ``CONCURRENCY``
requests in flight. The quick profile runs in the suite; the long one (10,000 requests
over 1,000 resources at concurrency 100, the figures in ``docs/soak.md``) runs with
``pytest -m soak_long tests/soak``.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

SOAK = Path(__file__).with_name("soak.py")
BACKENDS = ["memory", "sqlite", "redis"]


def soak(backend: str, requests: int, urls: int, concurrency: int, redis_url: str | None) -> Any:
    command = [sys.executable, str(SOAK), backend, str(requests), str(urls), str(concurrency)]
    if redis_url is not None:
        command += ["--redis", redis_url]
    done = subprocess.run(command, capture_output=True, text=True, timeout=1800, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    print(json.dumps(result))  # the figures, in the test's output (-s, or on failure)
    return result


def check(result: dict[str, Any], requests: int) -> None:
    assert result["requests"] == requests
    assert result["errors"] == 0, result["error_samples"]
    assert result["wrong_bodies"] == 0
    assert result["storage_errors"] == 0
    # The mix really was mixed.
    assert result["hits"] > 0
    assert result["misses"] > 0
    assert result["revalidations_304"] > 0
    assert result["expiries"] > 0


@pytest.mark.slow
@pytest.mark.parametrize("backend", BACKENDS)
def test_soak_quick(backend: str, request: pytest.FixtureRequest) -> None:
    redis_url = request.getfixturevalue("redis_url") if backend == "redis" else None
    check(soak(backend, 1_000, 100, 100, redis_url), 1_000)


@pytest.mark.soak_long
@pytest.mark.parametrize("backend", BACKENDS)
def test_soak_long(backend: str, request: pytest.FixtureRequest) -> None:
    redis_url = request.getfixturevalue("redis_url") if backend == "redis" else None
    check(soak(backend, 10_000, 1_000, 100, redis_url), 10_000)
