"""The benchmark suite works: a tiny run of every workload, and the report it writes.

Speed is never checked here (that is what the suite itself is for); only that every
workload runs on every available subject, that hit workloads really are hits, and that
the report has the structure the docs describe.
"""

from __future__ import annotations

import asyncio
import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def _importable_benchmarks(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.syspath_prepend(str(ROOT))  # benchmarks/ is a top-level package of the repo


def test_a_short_run_of_every_workload_and_its_report(tmp_path: Path) -> None:
    from benchmarks.report import write_report
    from benchmarks.subjects import (
        ACC,
        ACC015,
        ACC_HTTPX,
        HISHEL,
        HTTPX,
        NO_BACKEND,
        PLAIN,
        UNCACHED,
    )
    from benchmarks.suite import Options, run_suite
    from benchmarks.workloads import SHORT, WORKLOADS

    # Every client is asked for; aiohttp-client-cache and hishel run where they are
    # installed (the bench env) and are skipped, with the reason, where they are not (the
    # test env). acc-httpx and plain httpx run wherever httpx is (acc-session-httpx
    # brings it into the test env).
    have = {
        ACC015: importlib.util.find_spec("aiohttp_client_cache") is not None,
        HISHEL: importlib.util.find_spec("hishel") is not None,
        ACC_HTTPX: importlib.util.find_spec("httpx") is not None,
        HTTPX: importlib.util.find_spec("httpx") is not None,
    }
    asked = (ACC, ACC015, PLAIN, ACC_HTTPX, HISHEL, HTTPX)
    clients = [c for c in asked if have.get(c, True)]
    options = Options(
        rounds=1,
        short=True,
        clients=asked,
        backends=("memory", "sqlite"),
        isolate=False,
    )
    result = run_suite(options, log=lambda _line: None)
    for client, installed in have.items():
        assert (client in result.skipped) is not installed, client

    expected = set()
    for workload in WORKLOADS:
        for backend in ("memory", "sqlite"):
            if not (workload == "cold_start" and backend == "memory"):
                expected |= {(workload, c, backend) for c in clients if c not in UNCACHED}
        expected |= {(workload, c, NO_BACKEND) for c in clients if c in UNCACHED}
    assert set(result.medians) == expected
    for (workload, client, _backend), figures in result.medians.items():
        assert figures["ops_per_s"] > 0
        assert 0 < figures["p50_us"] <= figures["p99_us"]
        assert figures["peak_rss_mb"] > 0
        if client not in UNCACHED:
            # A cache's hit workloads never reach the origin; its misses all do.
            wanted = SHORT.misses if workload == "stored_misses" else 0
            assert figures["origin_requests"] == wanted, (workload, client)
    ours = [ACC, ACC_HTTPX] if have[ACC_HTTPX] else [ACC]
    for client in ours:
        for backend in ("memory", "sqlite"):
            large = result.medians[("large_hits", client, backend)]
            assert large["hit_peak_alloc_x_body"] > 0
        cold = result.medians[("cold_start", client, "sqlite")]
        assert cold["cold_process_first_us"] > 0
        assert cold["first_hit_us"] > 0
        assert cold["warm_p50_us"] > 0

    written = write_report(result, tmp_path, log=lambda _line: None)
    markdown = written["markdown"].read_text(encoding="utf-8")
    assert "## Targets (issue 17)" in markdown
    assert "## Ratios, aiohttp: acc over the others (ops/s)" in markdown
    assert ("## Ratios, httpx: acc-httpx over the others (ops/s)" in markdown) is have[ACC_HTTPX]
    assert "SHORT variant" in markdown
    for workload, client, backend in expected:
        assert f"| {workload} | {client} | {backend} |" in markdown
    data = json.loads(written["json"].read_text(encoding="utf-8"))
    assert {(m["workload"], m["client"], m["backend"]) for m in data["medians"]} == expected
    assert [t["name"] for t in data["targets"]]
    assert ("chart" in written) is (importlib.util.find_spec("matplotlib") is not None)
    assert {r["family"] for r in data["ratios"]} == (
        {"aiohttp", "httpx"} if have[ACC_HTTPX] else {"aiohttp"}
    )
    if not have[ACC015]:
        assert "Not run: aiohttp-client-cache (aiohttp-client-cache is not installed" in markdown
    if not have[HISHEL]:
        assert "Not run: hishel (hishel is not installed" in markdown


def test_a_hit_workload_fails_when_the_origin_serves_a_request(tmp_path: Path) -> None:
    from aiohttp import ClientSession

    from benchmarks.origin import Origin
    from benchmarks.subjects import ACC
    from benchmarks.workloads import SHORT, Context

    async def leak(origin: str) -> None:
        context = Context(ACC, "memory", origin, SHORT, tmp_path)

        async def through_to_the_origin() -> tuple[float, list[float]]:
            async with ClientSession() as plain, plain.get(f"{origin}/json/leak") as response:
                await response.read()
            return 0.001, [0.001]

        await context.checked(through_to_the_origin)

    with Origin() as origin, pytest.raises(AssertionError, match="served 1 requests"):
        asyncio.run(leak(origin.url))


def test_the_command_runs_measurements_in_their_own_processes(tmp_path: Path) -> None:
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "benchmarks",
            "--short",
            "--rounds",
            "1",
            "--clients",
            "acc",
            "aiohttp",
            "--backends",
            "sqlite",
            "--workloads",
            "sequential_hits",
            "--out",
            str(tmp_path),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "round 1/1 sequential_hits/acc/sqlite" in done.stdout
    markdown = (tmp_path / "results.md").read_text(encoding="utf-8")
    assert "each measurement in its own process" in markdown
    assert "| sequential_hits | acc | sqlite |" in markdown
    assert "| sequential_hits | aiohttp | none |" in markdown


def test_a_short_run_never_writes_over_the_committed_results(tmp_path: Path) -> None:
    from benchmarks.__main__ import RESULTS, parse

    _options, out = parse([])
    assert out == RESULTS
    options, out = parse(["--short", "--rounds", "1"])
    assert options.short
    assert out.is_dir()
    assert out.resolve() != RESULTS.resolve()
    assert RESULTS.resolve() not in out.resolve().parents
    out.rmdir()
    _options, out = parse(["--short", "--out", str(tmp_path)])
    assert out == tmp_path  # an explicit folder is used as given


def test_a_tiny_scale_run_reports_every_figure(tmp_path: Path) -> None:
    from benchmarks.redis_server import redis_server_unavailable
    from benchmarks.report import targets, write_report
    from benchmarks.scale import SCALE_FIELDS
    from benchmarks.suite import Options, run_suite

    backends = ["memory", "sqlite"]
    if redis_server_unavailable() is None:
        backends.append("redis")
    options = Options(
        rounds=1,
        short=True,
        clients=(),
        workloads=(),
        isolate=False,
        scale=(200,),
        scale_backends=tuple(backends),
    )
    result = run_suite(options, log=lambda _line: None)
    assert [row["backend"] for row in result.scale] == backends
    storage_figures = {
        "memory": {"rss_bytes_per_entry"},
        "sqlite": {
            "file_bytes_per_entry",
            "disk_bytes_per_entry",
            "disk_over_entry_bytes",
            "wal_mib_after_fill",
            "wal_mib_after_expiry",
            "disk_mib_after_expiry",
        },
        "redis": {"redis_bytes_per_entry"},
    }
    every_storage_figure = set().union(*storage_figures.values())
    for row in result.scale:
        backend = row["backend"]
        assert set(row) >= set(SCALE_FIELDS), backend
        assert row["entries"] == 200
        for name in SCALE_FIELDS:
            if name in every_storage_figure - storage_figures[backend]:
                assert row[name] is None, (backend, name)
            elif name != "backend":
                assert row[name] is not None, (backend, name)
        # The stored misses, the warm-up of every host and the deletes change the count.
        assert row["urls_count"] > 0
        # Redis drops expired entries by itself; the other stores delete the tenth here.
        assert row["expired_deleted"] == (0 if backend == "redis" else 20), backend

    scale_targets = [t for t in targets(result) if t.group.startswith("at 200 entries")]
    assert scale_targets
    for target in scale_targets:
        ran = any(target.name.startswith(f"{backend}:") for backend in backends)
        assert (target.value is not None) is ran, target.name
    written = write_report(result, tmp_path, log=lambda _line: None)
    markdown = written["markdown"].read_text(encoding="utf-8")
    assert "## Scale" in markdown
    for backend in backends:
        assert f"### {backend}" in markdown
    assert "Load average (1 min):" in markdown
    data = json.loads(written["json"].read_text(encoding="utf-8"))
    assert [row["backend"] for row in data["scale"]] == backends
    assert set(data["load_average"]) == {"start", "end"}
    assert data["cpu"]["cores"] >= 1
    assert ("scale_chart" in written) is (importlib.util.find_spec("matplotlib") is not None)
