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

from benchmarks.scale import SCALE_BACKENDS, SCALE_FIELDS
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
    """One target of the issue: what is compared, the value measured, and the bound.

    ``unit`` is ``"x"`` for a ratio, else the unit of an absolute figure (``"ms"``,
    ``"MiB"``). The value is compared as reported, rounded to two decimals, so a ratio
    of 1.004 meets a bound of "at most 1x".
    """

    name: str
    value: float | None
    bound: float
    at_least: bool
    unit: str = "x"
    group: str = ""

    @property
    def met(self) -> bool | None:
        """Whether the measured value meets the bound (``None``: not measured)."""
        if self.value is None:
            return None
        value = round(self.value, 2)
        return value >= self.bound if self.at_least else value <= self.bound


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


def _ops_ratio(
    result: SuiteResult, workload: str, ours: str, theirs: str, backend: str
) -> float | None:
    """acc's ops/s over ``theirs`` (the plain client runs as backend ``none``)."""
    other = NO_BACKEND if theirs in (PLAIN, HTTPX) else backend
    return _ratio(
        _figure(result, (workload, ours, backend), "ops_per_s"),
        _figure(result, (workload, theirs, other), "ops_per_s"),
    )


def _scale_row(result: SuiteResult, backend: str, entries: int | None) -> dict[str, Any] | None:
    for row in result.scale:
        if row["backend"] == backend and row["entries"] == entries:
            return row
    return None


def _scale_targets(result: SuiteResult) -> list[Target]:
    """The targets at the largest size measured, against the smallest for hits."""
    sizes = sorted({row["entries"] for row in result.scale})
    largest = sizes[-1] if sizes else None
    smallest = sizes[0] if sizes else None
    at = f"{largest:,}" if largest else "1,000,000"
    group = f"at {at} entries (issue: 1,000,000)"
    found = []

    def value(backend: str, name: str, entries: int | None = largest) -> float | None:
        row = _scale_row(result, backend, entries)
        figure = None if row is None else row.get(name)
        return None if figure is None else float(figure)

    for backend in ("sqlite", "redis"):
        found.append(
            Target(
                f"{backend}: hit p50 at {at} over hit p50 at {smallest or 10_000:,}",
                _ratio(value(backend, "hit_p50_us"), value(backend, "hit_p50_us", smallest)),
                1.3,
                at_least=False,
                group=group,
            )
        )
    for backend in ("sqlite", "redis"):
        found.append(
            Target(
                f"{backend}: delete_url() (p50)",
                value(backend, "delete_url_p50_ms"),
                5.0,
                at_least=False,
                unit=" ms",
                group=group,
            )
        )
    found += [
        Target(
            "redis: delete(expired=True)",
            value("redis", "delete_expired_ms"),
            50.0,
            at_least=False,
            unit=" ms",
            group=group,
        ),
        Target(
            "sqlite: delete(expired=True), 10 % of the entries expired",
            value("sqlite", "delete_expired_ms"),
            3000.0,
            at_least=False,
            unit=" ms",
            group=group,
        ),
        Target(
            "sqlite: the WAL after delete(expired=True)",
            value("sqlite", "wal_mib_after_expiry"),
            64.0,
            at_least=False,
            unit=" MiB",
            group=group,
        ),
    ]
    for backend in SCALE_BACKENDS:
        found.append(
            Target(
                f"{backend}: urls() over every entry, peak Python memory growth",
                value(backend, "urls_peak_mib"),
                32.0,
                at_least=False,
                unit=" MiB",
                group=group,
            )
        )
    found.append(
        Target(
            "sqlite: file + WAL over the bytes of the stored entries",
            value("sqlite", "disk_over_entry_bytes"),
            1.2,
            at_least=False,
            group=group,
        )
    )
    return found


def targets(result: SuiteResult) -> list[Target]:
    """Issue 17's targets, computed from the medians (``None`` where not measured)."""
    large = "5 MB hits"
    found = [
        Target(
            "memory: 5 MB hits/s over aiohttp-client-cache's",
            _ops_ratio(result, "large_hits", ACC, ACC015, "memory"),
            1.0,
            at_least=True,
            group=large,
        ),
        Target(
            "sqlite: 5 MB hits/s over plain aiohttp's requests/s",
            _ops_ratio(result, "large_hits", ACC, PLAIN, "sqlite"),
            1.5,
            at_least=True,
            group=large,
        ),
        Target(
            "sqlite: 5 MB hits/s over aiohttp-client-cache's",
            _ops_ratio(result, "large_hits", ACC, ACC015, "sqlite"),
            1.0,
            at_least=True,
            group=large,
        ),
    ]
    for backend in ("memory", "sqlite", "redis"):
        found.append(
            Target(
                f"{backend}: peak Python allocation of one 5 MB hit, over the body",
                _figure(result, ("large_hits", ACC, backend), "hit_peak_alloc_x_body"),
                1.0,
                at_least=False,
                group=large,
            )
        )
    redis = "Redis hits"
    found += [
        Target(
            "redis: concurrent hits (50 tasks)/s over plain aiohttp's",
            _ops_ratio(result, "concurrent_hits", ACC, PLAIN, "redis"),
            3.0,
            at_least=True,
            group=redis,
        ),
        Target(
            "redis: concurrent hits (50 tasks)/s over aiohttp-client-cache's",
            _ops_ratio(result, "concurrent_hits", ACC, ACC015, "redis"),
            5.0,
            at_least=True,
            group=redis,
        ),
        Target(
            "redis: sequential hits/s over aiohttp-client-cache's",
            _ops_ratio(result, "sequential_hits", ACC, ACC015, "redis"),
            2.0,
            at_least=True,
            group=redis,
        ),
    ]
    plain_miss = _per_op(result, ("stored_misses", PLAIN, NO_BACKEND))
    for backend, bound in (("memory", 1.15), ("sqlite", 1.15), ("redis", 1.5)):
        found.append(
            Target(
                f"{backend}: time per stored miss over a plain aiohttp request's",
                _ratio(_per_op(result, ("stored_misses", ACC, backend)), plain_miss),
                bound,
                at_least=False,
                group="Stored misses",
            )
        )
    found += _scale_targets(result)
    for backend, bound in (("memory", 9.0), ("sqlite", 15.0)):
        found.append(
            Target(
                f"{backend}: sequential hits/s over aiohttp-client-cache's",
                _ops_ratio(result, "sequential_hits", ACC, ACC015, backend),
                bound,
                at_least=True,
                group="No regression of small hits",
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


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()


def _machine() -> str:
    model = _cpu_model()
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
        f"- Load average (1 min): {result.load[0]:.2f} at the start, "
        f"{result.load[1]:.2f} at the end",
        "- Versions: " + ", ".join(f"{k} {v}" for k, v in _versions().items()),
        f"- Medians of {options.rounds} rounds"
        f"{' (SHORT variant: not for comparing)' if options.short else ''}; each measurement "
        f"in {'its own process' if options.isolate else 'this process'}.",
    ]
    if options.workloads:
        lines.append(f"- Sizes: {', '.join(f'{k}={v}' for k, v in attrs.asdict(sizes).items())}")
    if options.rounds < 3:
        lines.append("- Fewer than 3 rounds: the issue's targets ask for medians of at least 3.")
    if result.scale:
        lines.append(
            f"- Scale workload: {', '.join(f'{n:,}' for n in options.scale)} entries on "
            f"{', '.join(sorted({row['backend'] for row in result.scale}))}"
        )
    for name, why in result.skipped.items():
        lines.append(f"- Not run: {name} ({why})")
    lines += [
        "",
        "## Targets (issue 17)",
        "",
        "| group | target | measured | bound | met |",
        "|---|---|---:|---:|:-:|",
    ]
    for target in found:
        sign = "≥" if target.at_least else "≤"
        met = {True: "yes", False: "**no**", None: "not run"}[target.met]
        lines.append(
            f"| {target.group} | {target.name} | {_number(target.value, 2)}{target.unit} | "
            f"{sign} {target.bound:g}{target.unit} | {met} |"
        )
    if result.medians:
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
    lines += _scale_markdown(result)
    return "\n".join(lines) + "\n"


_SCALE_COLUMNS = (
    ("entries", "entries", 0),
    ("fill_per_s", "fill/s", 0),
    ("hit_p50_us", "hit p50 µs", 1),
    ("hit_p99_us", "hit p99 µs", 1),
    ("miss_store_p50_us", "stored miss p50 µs", 1),
    ("delete_url_p50_ms", "delete_url p50 ms", 2),
    ("delete_expired_ms", "delete(expired) ms", 1),
    ("expired_deleted", "expired deleted", 0),
    ("urls_s", "urls() s", 2),
    ("urls_peak_mib", "urls() peak MiB", 1),
    ("entry_bytes", "entry bytes", 0),
    ("run_s", "whole run s", 0),
)
_SCALE_STORAGE = {
    "memory": (("rss_bytes_per_entry", "RSS bytes/entry", 0),),
    "sqlite": (
        ("file_bytes_per_entry", "file bytes/entry", 0),
        ("disk_bytes_per_entry", "file+WAL bytes/entry", 0),
        ("disk_over_entry_bytes", "file+WAL / entry bytes", 2),
        ("wal_mib_after_fill", "WAL MiB after fill", 1),
        ("wal_mib_after_expiry", "WAL MiB after expiry delete", 1),
    ),
    "redis": (("redis_bytes_per_entry", "used_memory bytes/entry", 0),),
}


def _scale_markdown(result: SuiteResult) -> list[str]:
    """One table per backend: a row per entry count."""
    if not result.scale:
        return []
    lines = [
        "",
        "## Scale",
        "",
        "Each row is one fill of a fresh cache (1 KB JSON bodies, realistic URLs, the last "
        "10 % written expiring 2 s after their write). Hit and stored-miss latencies go "
        "through the aiohttp binding; hit figures and urls() times are medians of "
        f"{result.options.rounds} rounds; delete_url is the median of several deletes; "
        "delete(expired=True) runs once (it cannot be repeated without filling again).",
    ]
    for backend in SCALE_BACKENDS:
        rows = sorted(
            (row for row in result.scale if row["backend"] == backend), key=lambda r: r["entries"]
        )
        if not rows:
            continue
        columns = _SCALE_COLUMNS + _SCALE_STORAGE[backend]
        lines += [
            "",
            f"### {backend}",
            "",
            "| " + " | ".join(title for _name, title, _digits in columns) + " |",
            "|" + "---:|" * len(columns),
        ]
        for row in rows:
            lines.append(
                "| "
                + " | ".join(_number(row.get(name), digits) for name, _title, digits in columns)
                + " |"
            )
    return lines


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


def _pyplot(log: Callable[[str], None]) -> Any:
    try:  # in the bench env only
        matplotlib: Any = importlib.import_module("matplotlib")
        matplotlib.use("Agg")
        return importlib.import_module("matplotlib.pyplot")
    except ImportError:
        log("matplotlib is not installed: no chart (use the `bench` hatch env)")
        return None


_BACKEND_COLORS = {"memory": "tab:blue", "sqlite": "tab:orange", "redis": "tab:red"}


def _scale_chart(result: SuiteResult, path: Path, log: Callable[[str], None]) -> bool:
    """Hit p50/p99, delete_url and delete(expired) against the entry count, per backend."""
    if not result.scale or (plt := _pyplot(log)) is None:
        return False
    panels = (
        (("hit_p50_us", "p50"), ("hit_p99_us", "p99")),
        (("delete_url_p50_ms", "p50"),),
        (("delete_expired_ms", ""),),
        (("urls_peak_mib", ""),),
    )
    titles = (
        "hit latency (µs), through the aiohttp binding",
        "delete_url() (ms)",
        "delete(expired=True), 10 % expired (ms)",
        "urls() over every entry: peak Python memory (MiB)",
    )
    figure, all_axes = plt.subplots(2, 2, figsize=(12, 9))
    for axes, series, title in zip(all_axes.flat, panels, titles, strict=True):
        for backend in SCALE_BACKENDS:
            rows = sorted(
                (r for r in result.scale if r["backend"] == backend), key=lambda r: r["entries"]
            )
            for name, label in series:
                points = [(r["entries"], r[name]) for r in rows if r.get(name) is not None]
                if points:
                    axes.plot(
                        [x for x, _y in points],
                        [max(y, 1e-3) for _x, y in points],
                        marker="o",
                        linestyle="-" if label != "p99" else "--",
                        color=_BACKEND_COLORS[backend],
                        label=f"{backend} {label}".strip(),
                    )
        axes.set_xscale("log")
        axes.set_yscale("log")
        axes.set_xlabel("entries in the cache (log)")
        axes.set_title(title)
        axes.grid(True, which="both", linewidth=0.3)
        axes.legend(fontsize=8)
    figure.suptitle("acc as the cache grows (scale workload)")
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return True


def _chart(result: SuiteResult, path: Path, log: Callable[[str], None]) -> bool:
    if (plt := _pyplot(log)) is None:
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
    """Write ``results.md``, ``results.json`` and (matplotlib) ``ratios.png``, ``scale.png``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    now = datetime.now(timezone.utc)
    found = targets(result)
    written = {"markdown": out_dir / "results.md", "json": out_dir / "results.json"}
    written["markdown"].write_text(_markdown(result, found, now), encoding="utf-8")
    data: dict[str, Any] = {
        "date": now.isoformat(),
        "machine": _machine(),
        "cpu": {"model": _cpu_model(), "cores": os.cpu_count()},
        "load_average": {"start": result.load[0], "end": result.load[1]},
        "scale": [{name: row.get(name) for name in SCALE_FIELDS} for row in result.scale],
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
    if result.medians and _chart(result, chart, log):
        written["chart"] = chart
    scale_chart = out_dir / "scale.png"
    if _scale_chart(result, scale_chart, log):
        written["scale_chart"] = scale_chart
    return written
