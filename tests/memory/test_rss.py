"""Memory is bounded (issue 12, item 8): what a 200 MiB response costs, next to aiohttp.

Each figure is the peak RSS above start of a fresh process fetching one 200 MiB response
(``rss_probe.py``; the origin runs in a process of its own):

* fetched through the cache, stored (``max_body_size=None``) and read by the caller, it
  costs at most 1.5 times what aiohttp's own ``read()`` costs;
* above ``max_body_size`` it costs no more than aiohttp streaming it (a declared
  ``Content-Length`` is decided before reading); a chunked one costs at most
  ``max_body_size`` more (kept while the caller reads it, then given up).

The margins are in MiB, not in time, so a loaded machine does not change the outcome.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.slow

PROBE = Path(__file__).with_name("rss_probe.py")
SIZE = 200 * 1024 * 1024
MiB = 1024 * 1024
STREAM_MARGIN = 8 * MiB  # allocator noise around a streamed body
DEFAULT_MAX_BODY_SIZE = 16 * MiB


def measure(mode: str, *, chunked: bool = False, redis_url: str | None = None) -> dict[str, Any]:
    command = [sys.executable, str(PROBE), mode, str(SIZE)]
    if chunked:
        command.append("--chunked")
    if redis_url is not None:
        command += ["--redis", redis_url]
    done = subprocess.run(command, capture_output=True, text=True, timeout=600, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["received"] == SIZE
    return result


@pytest.fixture(scope="module")
def plain() -> dict[str, int]:
    """aiohttp's own figures: ``read()`` and streaming."""
    return {
        "read": measure("plain-read")["peak"],
        "stream": measure("plain-stream")["peak"],
        "stream-chunked": measure("plain-stream", chunked=True)["peak"],
    }


def _redis(request: pytest.FixtureRequest, backend: str) -> str | None:
    return request.getfixturevalue("redis_url") if backend == "redis" else None


@pytest.mark.parametrize("backend", ["memory", "sqlite", "redis"])
def test_a_stored_response_read_by_the_caller_costs_at_most_1_5_times_aiohttp_read(
    plain: dict[str, int], backend: str, request: pytest.FixtureRequest
) -> None:
    result = measure(f"acc-read-{backend}", redis_url=_redis(request, backend))
    assert result["writes"] == 1  # it really was stored
    assert result["peak"] <= 1.5 * plain["read"], (
        f"{backend}: {result['peak'] / MiB:.0f} MiB, aiohttp read(): {plain['read'] / MiB:.0f} MiB"
    )


@pytest.mark.parametrize("backend", ["memory", "sqlite", "redis"])
def test_a_response_above_max_body_size_costs_what_aiohttp_streaming_costs(
    plain: dict[str, int], backend: str, request: pytest.FixtureRequest
) -> None:
    result = measure(f"acc-stream-{backend}", redis_url=_redis(request, backend))
    assert (result["writes"], result["too_large"]) == (0, 1)
    assert result["peak"] <= plain["stream"] + STREAM_MARGIN, (
        f"{backend}: {result['peak'] / MiB:.1f} MiB, "
        f"aiohttp streaming: {plain['stream'] / MiB:.1f} MiB"
    )


def test_a_chunked_response_above_max_body_size_costs_at_most_the_limit_more(
    plain: dict[str, int],
) -> None:
    result = measure("acc-stream-memory", chunked=True)
    assert (result["writes"], result["too_large"]) == (0, 1)
    limit = plain["stream-chunked"] + DEFAULT_MAX_BODY_SIZE + STREAM_MARGIN
    assert result["peak"] <= limit, f"{result['peak'] / MiB:.1f} MiB"
