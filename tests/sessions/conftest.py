"""Session fixtures: every session test runs once per first-party embedded backend."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from acc.core import CacheBackend

BackendFactory = Callable[..., CacheBackend]


@pytest.fixture(params=["memory", "sqlite", "filesystem"])
async def make_backend(
    request: pytest.FixtureRequest, tmp_path: Path
) -> AsyncIterator[BackendFactory]:
    """A factory of backends of one kind; every backend it made is closed afterwards."""
    made: list[CacheBackend] = []

    def factory(**options: Any) -> CacheBackend:
        if request.param == "memory":
            backend = CacheBackend(**options)
        elif request.param == "filesystem":
            from acc.backends.filesystem import FileBackend

            backend = FileBackend(tmp_path / f"files-{len(made)}", **options)
        else:
            from acc.backends.sqlite import SQLiteBackend

            backend = SQLiteBackend(str(tmp_path / f"cache-{len(made)}.sqlite"), **options)
        made.append(backend)
        return backend

    yield factory
    for backend in made:
        await backend.close()
