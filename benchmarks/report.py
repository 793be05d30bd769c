"""The report: a Markdown table of medians, the issue's targets, and a PNG of the ratios.

Ratios are given per family, each against its own rival and its own plain client: acc
(aiohttp) over aiohttp-client-cache and plain aiohttp; acc-httpx over hishel and plain
httpx.
"""

from __future__ import annotations

import importlib
import json
import os
import platform
import sqlite3
from collections.abc import Callable
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import Any

import attrs

from benchmarks.subjects import (
    ACC,
    ACC015,
    ACC_HTTPX,
    ACC_NEAR,
    HISHEL,
    HISHEL_MEMORY,
    HTTPX,
    NO_BACKEND,
    PLAIN,
)
from benchmarks.suite import Subject, SuiteResult
from benchmarks.workloads import FULL, SHORT, WORKLOADS

__all__ = ["Target", "targets", "write_report"]

_HIT_WORKLOADS = ("sequential_hits", "random_hits", "concurrent_hits", "large_hits")


@attrs.frozen
class Family:
    """acc's binding for one HTTP client, the cache it is compared with, and the plain client.

    ``ours`` is the binding first, then its variants (acc with the near cache).
    """

    name: str
    ours: tuple[str, ...]
    rival: str
    plain: str

    def label(self, client: str) -> str:
        return "plain " + client if client == self.plain else client


FAMILIES = (
    Family("aiohttp", (ACC, ACC_NEAR), ACC015, PLAIN),
    Family("httpx", (ACC_HTTPX,), HISHEL, HTTPX),
)
"""The comparisons the report makes: each family against its own rival and baseline."""

Ratio = tuple[str, str, float | None, float | None]
"""``(workload, backend, ours over the rival, ours over the plain client)``, in ops/s."""


@attrs.frozen
class Target:
    """One target of the issue: what is compared, the value measured, and the bound."""

    name: str
    value: float | None
    bound: float
    at_least: bool

    @property
    def met(self) -> bool | None:
        """Whether the measured value meets the bound (``None``: not measured)."""
        if self.value is None:
            return None
        return self.value >= self.bound if self.at_least else self.value <= self.bound


def _figure(result: SuiteResult, subject: Subject, name: str) -> float | None:
    figures = result.medians.get(subject)
    return None if figures is None else figures.get(name)


def _ratio(numerator: float | None, denominator: float | None) -> float | None:
    if numerator is None or not denominator:
        return None
    return numerator / denominator


def _per_op(result: SuiteResult, subject: Subject) -> float | None:
    seconds, ops = _figure(result, subject, "seconds"), _figure(result, subject, "ops")
    return _ratio(seconds, ops)


def targets(result: SuiteResult) -> list[Target]:
    """The issue's targets, computed from the medians (``None`` where not measured)."""
    found: list[Target] = []
    ops = "ops_per_s"
    for backend, bound in (("memory", 5.0), ("sqlite", 5.0), ("redis", 2.5)):
        found.append(
            Target(
                f"{backend}: hits/s vs aiohttp-client-cache (sequential hits)",
                _ratio(
                    _figure(result, ("sequential_hits", ACC, backend), ops),
                    _figure(result, ("sequential_hits", ACC015, backend), ops),
                ),
                bound,
                at_least=True,
            )
        )
    found.append(
        Target(
            "redis with the near cache: hits/s vs aiohttp-client-cache (sequential hits)",
            _ratio(
                _figure(result, ("sequential_hits", ACC_NEAR, "redis"), ops),
                _figure(result, ("sequential_hits", ACC015, "redis"), ops),
            ),
            10.0,
            at_least=True,
        )
    )
    found.append(
        Target(
            "sqlite: a hit vs a plain aiohttp request (p50 latency, times faster)",
            _ratio(
                _figure(result, ("sequential_hits", PLAIN, NO_BACKEND), "p50_us"),
                _figure(result, ("sequential_hits", ACC, "sqlite"), "p50_us"),
            ),
            3.0,
            at_least=True,
        )
    )
    found.append(
        Target(
            "sqlite: p99 of concurrent hits, aiohttp-client-cache's over acc's",
            _ratio(
                _figure(result, ("concurrent_hits", ACC015, "sqlite"), "p99_us"),
                _figure(result, ("concurrent_hits", ACC, "sqlite"), "p99_us"),
            ),
            10.0,
            at_least=True,
        )
    )
    plain_miss = _per_op(result, ("stored_misses", PLAIN, NO_BACKEND))
    for backend in ("memory", "sqlite"):
        found.append(
            Target(
                f"{backend}: a stored miss over a plain request (time per request)",
                _ratio(_per_op(result, ("stored_misses", ACC, backend)), plain_miss),
                1.5,
                at_least=False,
            )
        )
    found.append(
        Target(
            "sqlite: opening a full cache, first hit over a warm hit",
            _figure(result, ("cold_start", ACC, "sqlite"), "first_over_warm"),
            2.0,
            at_least=False,
        )
    )
    return found


def _versions() -> dict[str, str]:
    versions = {"python": platform.python_version(), "sqlite": sqlite3.sqlite_version}
    for dist in (
        "acc-core",
        "acc-session-aiohttp",
        "acc-session-httpx",
        "aiohttp",
        "aiohttp-client-cache",
        "httpx",
        "hishel",
        "redis",
    ):
        try:
            versions[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            continue
    return versions


def _machine() -> str:
    model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{platform.system()} {platform.machine()}, {os.cpu_count()} CPUs {model}".strip()


def _number(value: float | None, digits: int = 1) -> str:
    return "-" if value is None else f"{value:,.{digits}f}"


def _markdown(result: SuiteResult, found: list[Target], now: datetime) -> str:
    options = result.options
    sizes = SHORT if options.short else FULL
    lines = [
        "# acc benchmark results",
        "",
        f"- Date: {now:%Y-%m-%d %H:%M} UTC",
        f"- Machine: {_machine()}",
        "- Versions: " + ", ".join(f"{k} {v}" for k, v in _versions().items()),
        f"- Medians of {options.rounds} rounds"
        f"{' (SHORT variant: not for comparing)' if options.short else ''}; each measurement "
        f"in {'its own process' if options.isolate else 'this process'}.",
        f"- Sizes: {', '.join(f'{k}={v}' for k, v in attrs.asdict(sizes).items())}",
    ]
    for name, why in result.skipped.items():
        lines.append(f"- Not run: {name} ({why})")
    lines += [
        "",
        "## Targets (issue 5)",
        "",
        "| target | measured | bound | met |",
        "|---|---:|---:|:-:|",
    ]
    for target in found:
        sign = "≥" if target.at_least else "≤"
        met = {True: "yes", False: "**no**", None: "not run"}[target.met]
        lines.append(
            f"| {target.name} | {_number(target.value, 2)}x | {sign} {target.bound:g}x | {met} |"
        )
    lines += [
        "",
        "## Medians",
        "",
        "| workload | client | backend | ops/s | p50 µs | p99 µs | peak RSS MiB | notes |",
        "|---|---|---|---:|---:|---:|---:|---|",
    ]
    for subject, figures in result.medians.items():
        workload, client, backend = subject
        notes = ", ".join(
            f"{k}={_number(v, 2)}"
            for k, v in figures.items()
            if k not in {"ops", "seconds", "ops_per_s", "p50_us", "p99_us", "peak_rss_mb"}
        )
        lines.append(
            f"| {workload} | {client} | {backend} | {_number(figures['ops_per_s'], 0)} | "
            f"{_number(figures['p50_us'])} | {_number(figures['p99_us'])} | "
            f"{_number(figures['peak_rss_mb'])} | {notes} |"
        )
    for family in FAMILIES:
        rows = _ratios(result, family)
        if not rows:
            continue
        ours = family.ours[0]
        lines += ["", f"## Ratios, {family.name}: {ours} over the others (ops/s)", ""]
        if family.rival == HISHEL and any(
            c == HISHEL and b == "memory" for _w, c, b in result.medians
        ):
            lines += [f"hishel's `memory` is {HISHEL_MEMORY}.", ""]
        lines += [
            f"| workload | backend | {ours} / {family.label(family.rival)} "
            f"| {ours} / {family.label(family.plain)} |",
            "|---|---|---:|---:|",
        ]
        for workload, backend, vs_rival, vs_plain in rows:
            lines.append(
                f"| {workload} | {backend} | {_number(vs_rival, 2)} | {_number(vs_plain, 2)} |"
            )
    return "\n".join(lines) + "\n"


def _ratios(result: SuiteResult, family: Family) -> list[Ratio]:
    """``family``'s ratios: each of its subjects over the rival's and the plain client's."""
    rows: list[Ratio] = []
    for workload, client, backend in result.medians:
        if client not in family.ours:
            continue
        mine = _figure(result, (workload, client, backend), "ops_per_s")
        rows.append(
            (
                workload,
                backend if client == family.ours[0] else f"{backend} (near cache)",
                _ratio(mine, _figure(result, (workload, family.rival, backend), "ops_per_s")),
                _ratio(mine, _figure(result, (workload, family.plain, NO_BACKEND), "ops_per_s")),
            )
        )
    return rows


def _chart(result: SuiteResult, path: Path, log: Callable[[str], None]) -> bool:
    try:  # in the bench env only
        matplotlib: Any = importlib.import_module("matplotlib")
        matplotlib.use("Agg")
        plt: Any = importlib.import_module("matplotlib.pyplot")
    except ImportError:
        log("matplotlib is not installed: no chart (use the `bench` hatch env)")
        return False
    panels = [
        (family, [row for row in _ratios(result, family) if row[0] in WORKLOADS])
        for family in FAMILIES
    ]
    panels = [(family, rows) for family, rows in panels if rows]
    if not panels:
        return False
    widest = max(len(rows) for _family, rows in panels)
    figure, all_axes = plt.subplots(
        len(panels), 1, figsize=(max(8, widest * 0.9), 5 * len(panels)), squeeze=False
    )
    width = 0.4
    for (family, rows), axes in zip(panels, all_axes[:, 0], strict=True):
        ours = family.ours[0]
        labels = [f"{workload}\n{backend}" for workload, backend, _r, _p in rows]
        positions = range(len(rows))
        axes.bar(
            [p - width / 2 for p in positions],
            [row[2] or 0 for row in rows],
            width,
            label=f"{ours} / {family.label(family.rival)}",
        )
        axes.bar(
            [p + width / 2 for p in positions],
            [row[3] or 0 for row in rows],
            width,
            label=f"{ours} / {family.label(family.plain)}",
        )
        axes.axhline(1, color="black", linewidth=0.8)
        axes.set_yscale("log")
        axes.set_ylabel(f"ops/s ratio (log; above 1: {ours} is faster)")
        axes.set_xticks(list(positions), labels, rotation=45, ha="right", fontsize=8)
        axes.set_title(
            f"{family.name}: {ours} throughput ratios (medians of {result.options.rounds} rounds)"
        )
        axes.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return True


def write_report(
    result: SuiteResult, out_dir: Path, log: Callable[[str], None] = print
) -> dict[str, Path]:
    """Write ``results.md``, ``results.json`` and (with matplotlib) ``ratios.png``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    now = datetime.now(timezone.utc)
    found = targets(result)
    written = {"markdown": out_dir / "results.md", "json": out_dir / "results.json"}
    written["markdown"].write_text(_markdown(result, found, now), encoding="utf-8")
    data: dict[str, Any] = {
        "date": now.isoformat(),
        "machine": _machine(),
        "versions": _versions(),
        "options": attrs.asdict(result.options),
        "skipped": result.skipped,
        "medians": [
            {"workload": w, "client": c, "backend": b, **figures}
            for (w, c, b), figures in result.medians.items()
        ],
        "targets": [{**attrs.asdict(t), "met": t.met} for t in found],
        "ratios": [
            {
                "family": family.name,
                "workload": workload,
                "backend": backend,
                "vs_rival": vs_rival,
                "vs_plain": vs_plain,
            }
            for family in FAMILIES
            for workload, backend, vs_rival, vs_plain in _ratios(result, family)
        ],
    }
    written["json"].write_text(json.dumps(data, indent=1, default=list), encoding="utf-8")
    chart = out_dir / "ratios.png"
    if _chart(result, chart, log):
        written["chart"] = chart
    return written
