"""Run the workloads for every subject, several rounds, and keep the medians.

Rounds are interleaved (round 1 of every subject, then round 2, ...), so a burst of
noise on a shared machine lands on all subjects rather than on one.
"""

from __future__ import annotations

import asyncio
import json
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import attrs

from benchmarks.origin import Origin
from benchmarks.subjects import (
    ACC_NEAR,
    BACKENDS,
    CLIENTS,
    NO_BACKEND,
    REMOTE_BACKENDS,
    UNCACHED,
    backend_unavailable,
    client_unavailable,
)
from benchmarks.worker import worker_arguments
from benchmarks.workloads import FULL, PREPARE, SHORT, WORKLOADS, run_workload

__all__ = ["Options", "SuiteResult", "run_suite"]

Subject = tuple[str, str, str]
"""``(workload, client, backend)``."""


@attrs.frozen
class Options:
    """What to run.

    Attributes:
        rounds: Runs of each measurement; the report gives their medians.
        short: Tiny sizes, to check that the suite works (never to compare speed).
        clients: Client libraries to include (unavailable ones are skipped, with why).
        backends: Backends to include (unavailable ones are skipped, with why).
        workloads: Workloads to run.
        isolate: Run each measurement in a fresh interpreter (peak RSS is then its own).
    """

    rounds: int = 3
    short: bool = False
    clients: Sequence[str] = CLIENTS
    backends: Sequence[str] = BACKENDS
    workloads: Sequence[str] = tuple(WORKLOADS)
    isolate: bool = True


@attrs.frozen
class SuiteResult:
    """Medians per subject, every round's figures, and what was skipped and why."""

    options: Options
    medians: dict[Subject, dict[str, float]]
    runs: dict[Subject, list[dict[str, Any]]]
    skipped: dict[str, str]


def _plan(options: Options, clients: list[str], backends: list[str]) -> list[Subject]:
    plan: list[Subject] = []
    for workload in options.workloads:
        for backend in backends:
            if workload == "cold_start" and backend == "memory":
                continue  # a memory cache starts empty: there is nothing to open
            plan.extend(
                (workload, c, backend)
                for c in clients
                if c not in UNCACHED and (c != ACC_NEAR or backend in REMOTE_BACKENDS)
            )
        plan.extend((workload, c, NO_BACKEND) for c in clients if c in UNCACHED)
    return plan


def _measure(subject: Subject, origin: str, options: Options, workdir: Path) -> dict[str, Any]:
    workload, client, backend = subject
    sizes = SHORT if options.short else FULL
    if not options.isolate:
        return asyncio.run(run_workload(workload, client, backend, origin, sizes, workdir))
    arguments = worker_arguments(workload, client, backend, origin, sizes, workdir)
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks.worker", arguments],
        capture_output=True,
        text=True,
        timeout=1800,
        cwd=Path(__file__).resolve().parent.parent,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"{subject} failed:\n{done.stderr}")
    summary: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return summary


def _medians(runs: list[dict[str, Any]]) -> dict[str, float]:
    return {
        name: float(statistics.median(run[name] for run in runs))
        for name in runs[0]
        if isinstance(runs[0][name], (int, float))
    }


def run_suite(options: Options, log: Callable[[str], None] = print) -> SuiteResult:
    """Run every measurement ``options.rounds`` times and return the medians."""
    skipped: dict[str, str] = {}
    clients = []
    for client in options.clients:
        if (why := client_unavailable(client)) is None:
            clients.append(client)
        else:
            skipped[client] = why
    backends = []
    for backend in options.backends:
        if (why := backend_unavailable(backend)) is None:
            backends.append(backend)
        else:
            skipped[backend] = why
    for name, why in skipped.items():
        log(f"skipping {name}: {why}")
    plan = _plan(options, clients, backends)
    runs: dict[Subject, list[dict[str, Any]]] = {subject: [] for subject in plan}
    with Origin() as origin, tempfile.TemporaryDirectory(prefix="acc-bench-") as tmp:
        workdir = Path(tmp)
        for workload, client, backend in plan:
            if workload in PREPARE and client not in UNCACHED:
                log(f"preparing {workload} for {client}/{backend}")
                _measure((f"prepare:{workload}", client, backend), origin.url, options, workdir)
        for round_number in range(1, options.rounds + 1):
            for subject in plan:
                summary = _measure(subject, origin.url, options, workdir)
                runs[subject].append(summary)
                log(
                    f"round {round_number}/{options.rounds} {'/'.join(subject)}: "
                    f"{summary['ops_per_s']:,.0f} ops/s, p50 {summary['p50_us']:,.1f} µs, "
                    f"p99 {summary['p99_us']:,.1f} µs"
                )
    medians = {subject: _medians(figures) for subject, figures in runs.items()}
    return SuiteResult(options, medians, runs, skipped)
