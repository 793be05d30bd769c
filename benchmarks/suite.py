"""Run the workloads for every subject, several rounds, and keep the medians.

Rounds are interleaved (round 1 of every subject, then round 2, ...), so a burst of
noise on a shared machine lands on all subjects rather than on one.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import attrs

from benchmarks.origin import Origin
from benchmarks.redis_server import DedicatedRedis, redis_server_unavailable
from benchmarks.scale import SCALE_BACKENDS, iter_plan, run_scale, scale_arguments, scale_sizes
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
        scale: Entry counts for the scale workload (``benchmarks/scale.py``); empty: not run.
        scale_backends: The backends the scale workload fills.
    """

    rounds: int = 3
    short: bool = False
    clients: Sequence[str] = CLIENTS
    backends: Sequence[str] = BACKENDS
    workloads: Sequence[str] = tuple(WORKLOADS)
    isolate: bool = True
    scale: Sequence[int] = ()
    scale_backends: Sequence[str] = SCALE_BACKENDS


@attrs.frozen
class SuiteResult:
    """Medians per subject, every round's figures, the scale runs, and what was skipped.

    ``load`` is the one-minute load average when the run started and when it ended.
    """

    options: Options
    medians: dict[Subject, dict[str, float]]
    runs: dict[Subject, list[dict[str, Any]]]
    skipped: dict[str, str]
    scale: list[dict[str, Any]] = attrs.field(factory=list)
    load: tuple[float, float] = (0.0, 0.0)


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


def _in_a_process(module: str, arguments: str, timeout: float, what: str) -> dict[str, Any]:
    """Run ``python -m module arguments`` in a fresh interpreter: the JSON of its last line."""
    done = subprocess.run(
        [sys.executable, "-m", module, arguments],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=Path(__file__).resolve().parent.parent,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"{what} failed:\n{done.stderr}")
    figures: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return figures


def _measure(subject: Subject, origin: str, options: Options, workdir: Path) -> dict[str, Any]:
    workload, client, backend = subject
    sizes = SHORT if options.short else FULL
    if not options.isolate:
        return asyncio.run(run_workload(workload, client, backend, origin, sizes, workdir))
    arguments = worker_arguments(workload, client, backend, origin, sizes, workdir)
    return _in_a_process("benchmarks.worker", arguments, 1800, str(subject))


def _measure_scale(
    backend: str, entries: int, origin: str, options: Options, workdir: Path, redis_url: str | None
) -> dict[str, Any]:
    sizes = scale_sizes(options.short, options.rounds)
    if not options.isolate:
        return asyncio.run(run_scale(backend, entries, origin, sizes, workdir, redis_url))
    arguments = scale_arguments(backend, entries, origin, sizes, workdir, redis_url)
    return _in_a_process("benchmarks.scale", arguments, 3600, f"scale {backend}/{entries}")


def _run_scale(
    options: Options,
    origin: str,
    workdir: Path,
    skipped: dict[str, str],
    log: Callable[[str], None],
) -> list[dict[str, Any]]:
    """Fill each backend to each size in :attr:`Options.scale` and measure it."""
    backends = list(options.scale_backends)
    if "redis" in backends and (why := redis_server_unavailable()) is not None:
        backends.remove("redis")
        skipped["scale/redis"] = why
        log(f"skipping scale/redis: {why}")
    found = []
    with contextlib.ExitStack() as stack:
        redis_url = stack.enter_context(DedicatedRedis()).url if "redis" in backends else None
        for backend, entries in iter_plan(tuple(options.scale), tuple(backends)):
            figures = _measure_scale(backend, entries, origin, options, workdir, redis_url)
            found.append(figures)
            log(
                f"scale {backend}/{entries:,}: filled at {figures['fill_per_s']:,.0f}/s, "
                f"hit p50 {figures['hit_p50_us']:,.1f} µs, "
                f"delete_url {figures['delete_url_p50_ms']:,.2f} ms, "
                f"delete(expired) {figures['delete_expired_ms']:,.1f} ms"
            )
    return found


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
    load_start = os.getloadavg()[0]
    plan = _plan(options, clients, backends)
    runs: dict[Subject, list[dict[str, Any]]] = {subject: [] for subject in plan}
    scale: list[dict[str, Any]] = []
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
        if options.scale:
            scale = _run_scale(options, origin.url, workdir, skipped, log)
    medians = {subject: _medians(figures) for subject, figures in runs.items()}
    load = (load_start, os.getloadavg()[0])
    return SuiteResult(options, medians, runs, skipped, scale, load)
