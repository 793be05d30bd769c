"""``python -m benchmarks``: run the suite and write benchmarks/results/.

Examples::

    hatch run bench:run                      # the full suite, 3 rounds
    hatch run bench:run --rounds 5
    hatch run bench:run --short --rounds 1   # seconds: checks that it works
    hatch run bench:run --backends sqlite --workloads sequential_hits concurrent_hits

A ``--short`` run is a check, not a measurement: it writes its report to a new temporary
folder (printed), never over the committed results, unless ``--out`` names a folder.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

from benchmarks.report import write_report
from benchmarks.subjects import BACKENDS, CLIENTS
from benchmarks.suite import Options, run_suite
from benchmarks.workloads import WORKLOADS

RESULTS = Path(__file__).resolve().parent / "results"


def parse(argv: list[str]) -> tuple[Options, Path]:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--rounds", type=int, default=3, help="runs per measurement (default 3)")
    parser.add_argument("--short", action="store_true", help="tiny sizes: a check, not a benchmark")
    parser.add_argument("--clients", nargs="+", choices=CLIENTS, default=list(CLIENTS))
    parser.add_argument("--backends", nargs="+", choices=BACKENDS, default=list(BACKENDS))
    parser.add_argument("--workloads", nargs="+", choices=list(WORKLOADS), default=list(WORKLOADS))
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
    out: Path | None = args.out
    if out is None:
        out = Path(tempfile.mkdtemp(prefix="acc-bench-short-")) if args.short else RESULTS
    options = Options(
        rounds=args.rounds,
        short=args.short,
        clients=tuple(args.clients),
        backends=tuple(args.backends),
        workloads=tuple(args.workloads),
        isolate=not args.in_process,
    )
    return options, out


def main(argv: list[str]) -> None:
    options, out = parse(argv)
    result = run_suite(options)
    for kind, path in write_report(result, out).items():
        print(f"wrote {kind}: {path}")


if __name__ == "__main__":
    main(sys.argv[1:])
