"""The acc benchmark suite: see benchmarks/README.md."""
