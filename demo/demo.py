"""The README's demo: ``hatch run demo [PATH]``, the same demo as ``acc demo [PATH]``.

The demo itself lives in the acc-cli package (:mod:`acc.cli.demo`), so the command and
this script cannot drift apart.
"""

from __future__ import annotations

import sys

from acc.cli.demo import run

if __name__ == "__main__":
    run(sys.argv[1] if len(sys.argv) > 1 else None)
