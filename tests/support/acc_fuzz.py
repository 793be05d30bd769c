"""Fuzz tests in two profiles: quick in every run, long behind the ``fuzz_long`` marker.

``quick, long = fuzz_pair(check, data=st.binary())`` turns a plain property function
into two hypothesis tests over the same strategies: ``quick`` runs
:data:`QUICK_EXAMPLES` examples in the normal suite, ``long`` runs
:data:`LONG_EXAMPLES` and is marked ``fuzz_long`` (so it runs only with
``pytest -m fuzz_long``; see ``tests/conftest.py``). Assign both to ``test_*`` names.

``ACC_FUZZ_LONG_EXAMPLES=100000 pytest -m fuzz_long`` runs the long profile longer (or
shorter).
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable
from typing import Any, Final

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

__all__ = ["LONG_EXAMPLES", "QUICK_EXAMPLES", "fuzz_pair"]

QUICK_EXAMPLES: Final = 150
LONG_EXAMPLES: Final = int(os.environ.get("ACC_FUZZ_LONG_EXAMPLES", "20000"))

_QUIET: Final = [HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much]
"""Slow examples are no failure: fuzz tests make no wall-clock assertions. Nor is heavy
filtering: the strategies make mostly hostile input on purpose, and a check of what the
core lets through (``assume(unservable(entry) is None)``) rejects much of it, more or
less from one random run to the next (the health check failed a quick run once)."""


def _copy(check: Callable[..., None]) -> Callable[..., None]:
    @functools.wraps(check)
    def test(**kwargs: Any) -> None:
        check(**kwargs)

    return test


def fuzz_pair(
    check: Callable[..., None], **strategies: st.SearchStrategy[Any]
) -> tuple[Callable[..., None], Callable[..., None]]:
    """The quick and the long hypothesis test of ``check`` over ``strategies``."""
    profiles = []
    for examples in (QUICK_EXAMPLES, LONG_EXAMPLES):
        profile = settings(max_examples=examples, deadline=None, suppress_health_check=_QUIET)
        profiles.append(profile(given(**strategies)(_copy(check))))
    quick, long = profiles
    # The long profile runs for minutes: beyond the suite's per-test timeout (pytest-timeout's
    # SIGALRM would land anywhere, even in hypothesis's gc callback, as an unraisable error).
    return quick, pytest.mark.timeout(0)(pytest.mark.fuzz_long(long))
