"""One measurement in a fresh process: ``python -m benchmarks.worker '<json arguments>'``.

Each (workload, client, backend, round) runs in its own interpreter so that peak RSS is
that run's own, and nothing one subject leaves behind (caches, threads, a warm heap)
flatters or burdens the next. The summary is printed as one JSON line on stdout.
"""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path

import attrs

from benchmarks.workloads import Sizes, run_workload


def main(argv: list[str]) -> None:
    arguments = json.loads(argv[0])
    summary = asyncio.run(
        run_workload(
            arguments["workload"],
            arguments["client"],
            arguments["backend"],
            arguments["origin"],
            Sizes(**arguments["sizes"]),
            Path(arguments["workdir"]),
        )
    )
    print(json.dumps(summary))


def worker_arguments(
    workload: str, client: str, backend: str, origin: str, sizes: Sizes, workdir: Path
) -> str:
    """The JSON argument :func:`main` reads."""
    return json.dumps(
        {
            "workload": workload,
            "client": client,
            "backend": backend,
            "origin": origin,
            "sizes": attrs.asdict(sizes),
            "workdir": str(workdir),
        }
    )


if __name__ == "__main__":
    main(sys.argv[1:])
