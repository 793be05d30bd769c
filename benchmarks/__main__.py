"""``python -m benchmarks``: run the suite and write benchmarks/results/.

Examples::

    hatch run bench:run                      # the full suite, 3 rounds
    hatch run bench:run --rounds 5
    hatch run bench:run --short --rounds 1   # seconds: checks that it works
    hatch run bench:run --backends sqlite --workloads sequential_hits concurrent_hits
    hatch run bench:run --workloads scale --scale 10000 100000   # the scale workload only

The scale workload (``benchmarks/scale.py``) fills each backend to 10k, 100k and 1M
entries (1k and 5k with ``--short``; ``--scale N [N ...]`` to choose) and measures hits,
stored misses and maintenance at each size.

A ``--short`` run is a check, not a measurement: it writes its report to a new temporary
folder (printed), never over the committed results, unless ``--out`` names a folder.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

from benchmarks.report import write_report
from benchmarks.scale import FULL_SCALE, SCALE_BACKENDS, SHORT_SCALE
from benchmarks.subjects import BACKENDS, CLIENTS
from benchmarks.suite import Options, run_suite
from benchmarks.workloads import WORKLOADS

RESULTS = Path(__file__).resolve().parent / "results"
SCALE = "scale"


def parse(argv: list[str]) -> tuple[Options, Path]:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--rounds", type=int, default=3, help="runs per measurement (default 3)")
    parser.add_argument("--short", action="store_true", help="tiny sizes: a check, not a benchmark")
    parser.add_argument("--clients", nargs="+", choices=CLIENTS, default=list(CLIENTS))
    parser.add_argument("--backends", nargs="+", choices=BACKENDS, default=list(BACKENDS))
    parser.add_argument(
        "--workloads",
        nargs="+",
        choices=[*WORKLOADS, SCALE],
        default=[*WORKLOADS, SCALE],
        help="default: all of them, the scale workload last",
    )
    parser.add_argument(
        "--scale",
        nargs="+",
        type=int,
        default=None,
        metavar="N",
        help=f"entry counts for the scale workload (default {' '.join(map(str, FULL_SCALE))}; "
        f"with --short {' '.join(map(str, SHORT_SCALE))})",
    )
    parser.add_argument(
        "--in-process", action="store_true", help="run every measurement in this process"
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=None,
        help=f"default {RESULTS} (with --short: a new temporary folder)",
    )
    args = parser.parse_args(argv)
    if args.rounds < 1:
        parser.error("--rounds must be at least 1")
    if args.scale is not None and any(n < 10 for n in args.scale):
        parser.error("--scale: every entry count must be at least 10")
    scale: tuple[int, ...] = ()
    if SCALE in args.workloads:
        scale = tuple(args.scale or (SHORT_SCALE if args.short else FULL_SCALE))
    out: Path | None = args.out
    if out is None:
        out = Path(tempfile.mkdtemp(prefix="acc-bench-short-")) if args.short else RESULTS
    options = Options(
        rounds=args.rounds,
        short=args.short,
        clients=tuple(args.clients),
        backends=tuple(args.backends),
        workloads=tuple(w for w in args.workloads if w != SCALE),
        isolate=not args.in_process,
        scale=scale,
        scale_backends=tuple(b for b in args.backends if b in SCALE_BACKENDS),
    )
    return options, out


def main(argv: list[str]) -> None:
    options, out = parse(argv)
    result = run_suite(options)
    for kind, path in write_report(result, out).items():
        print(f"wrote {kind}: {path}")


if __name__ == "__main__":
    main(sys.argv[1:])
