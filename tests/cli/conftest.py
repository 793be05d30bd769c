"""Running the ``acc`` command in tests.

``run_acc`` invokes the click command in a worker thread (``CliRunner``), so the test's
event loop keeps serving the real origin on 127.0.0.1 meanwhile. Each test gets its own
SQLite file as the default cache (``ACC_CACHE_URL``).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from acc.cli.main import cli

RunAcc = Callable[..., Coroutine[Any, Any, Result]]


@pytest.fixture
def cache_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path.as_posix()}/cache.sqlite"


@pytest.fixture
def run_acc(cache_url: str) -> RunAcc:
    async def run(*args: str, input: str | None = None, cache: str | None = None) -> Result:
        runner = CliRunner()
        env = {"ACC_CACHE_URL": cache or cache_url, "COLUMNS": "200"}
        return await asyncio.to_thread(
            runner.invoke, cli, list(args), input=input, env=env, catch_exceptions=False
        )

    return run
