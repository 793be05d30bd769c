"""The built packages install into brand-new virtual environments, and work there.

As a user does from a clone: ``hatch run dist:build`` (the ``dist`` fixture, on a fresh
copy of the repository), then ``pip install --find-links dist ...`` in a new venv. The
acc packages come from ``dist/``; their third-party dependencies from the package index.
Each environment then runs a small program against a real server, outside the test
environment and away from the repository's sources, and reports what it saw as JSON.
"""

from __future__ import annotations

import json
import re
import shutil
import uuid
from pathlib import Path
from typing import Any

import pytest
from acc_release import Venv, explain, run

pytestmark = pytest.mark.slow


def _version(dist: Path) -> str:
    (wheel,) = dist.glob("acc_core-*.whl")
    return wheel.name.split("-")[1]


def _run_program(venv: Venv, program: str, *arguments: str, cwd: Path) -> dict[str, Any]:
    script = cwd / "program.py"
    script.write_text(program, encoding="utf-8")
    result = run([str(venv.python), str(script), *arguments], cwd=cwd, timeout=300)
    assert result.returncode == 0, explain(result)
    report: dict[str, Any] = json.loads(result.stdout.strip().splitlines()[-1])
    return report


CORE_AND_REDIS = """
import asyncio, importlib.util, json, sys

import acc.core
from acc.backends.redis import RedisBackend
from acc.core import CacheBackend
from acc.core.registry import installed_schemes


async def main(url: str, cache_name: str) -> None:
    backend = CacheBackend.from_url(url, cache_name=cache_name)
    await backend.responses.write("key", b"stored in redis", expires_at=None)
    value = await backend.responses.read("key")
    size = await backend.responses.size()
    await backend.clear()
    await backend.close()
    print(json.dumps({
        "backend": type(backend).__name__,
        "is_redis": isinstance(backend, RedisBackend),
        "value": value.decode(),
        "size": size,
        "schemes": installed_schemes(),
        "core_file": acc.core.__file__,
        "aiohttp_installed": importlib.util.find_spec("aiohttp") is not None,
    }))


asyncio.run(main(sys.argv[1], sys.argv[2]))
"""


def test_core_and_redis_install_from_dist_and_work(
    dist: Path, new_venv: Venv, redis_url: str, tmp_path: Path
) -> None:
    new_venv.pip_install("--find-links", str(dist), "acc-core", "acc-backend-redis", cwd=tmp_path)
    installed = new_venv.distributions()
    version = _version(dist)
    assert installed["acc-core"] == installed["acc-backend-redis"] == version
    assert "acc-session-aiohttp" not in installed

    report = _run_program(
        new_venv, CORE_AND_REDIS, redis_url, f"release-{uuid.uuid4().hex[:8]}", cwd=tmp_path
    )
    assert report["is_redis"] is True
    assert report["value"] == "stored in redis"
    assert report["size"] == 1
    assert {"memory", "redis", "rediss", "unix"} <= set(report["schemes"])
    assert str(report["core_file"]).startswith(str(new_venv.path))  # not the repository's
    assert report["aiohttp_installed"] is False  # acc-core + a backend need no HTTP client


SESSION_AND_SQLITE = """
import asyncio, json

from aiohttp import web

import acc.sessions.aiohttp
from acc.sessions.aiohttp import CachedSession


async def main() -> None:
    served = 0

    async def item(request: web.Request) -> web.Response:
        nonlocal served
        served += 1
        return web.json_response({"served": served})

    app = web.Application()
    app.router.add_get("/item", item)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    url = f"http://127.0.0.1:{runner.addresses[0][1]}/item"
    seen = []
    try:
        for _session in range(3):  # each session opens the database file anew
            async with CachedSession(cache="sqlite:///http-cache.sqlite") as session:
                async with session.get(url) as response:
                    seen.append([response.from_cache, (await response.json())["served"]])
    finally:
        await runner.cleanup()
    print(json.dumps({
        "seen": seen,
        "served": served,
        "session_file": acc.sessions.aiohttp.__file__,
    }))


asyncio.run(main())
"""


def test_session_and_sqlite_install_from_dist_and_work(
    dist: Path, new_venv: Venv, tmp_path: Path
) -> None:
    new_venv.pip_install(
        "--find-links", str(dist), "acc-session-aiohttp", "acc-backend-sqlite", cwd=tmp_path
    )
    installed = new_venv.distributions()
    version = _version(dist)
    assert installed["acc-core"] == version  # brought in by the others, from dist/
    assert installed["acc-session-aiohttp"] == installed["acc-backend-sqlite"] == version

    report = _run_program(new_venv, SESSION_AND_SQLITE, cwd=tmp_path)
    assert report["seen"] == [[False, 1], [True, 1], [True, 1]]
    assert report["served"] == 1  # the origin saw one request; the rest came from the file
    assert (tmp_path / "http-cache.sqlite").is_file()
    assert str(report["session_file"]).startswith(str(new_venv.path))


SQLITE_ONLY = """
import asyncio, json

from acc.backends.sqlite import SQLiteBackend
from acc.core import CacheBackend


async def main() -> None:
    backend = CacheBackend.from_url("sqlite:///store.sqlite")
    await backend.responses.write("key", b"value", expires_at=None)
    await backend.close()
    again = SQLiteBackend("store.sqlite")
    value = await again.responses.read("key")
    await again.close()
    print(json.dumps({"backend": type(backend).__name__, "value": value.decode()}))


asyncio.run(main())
"""


def test_package_folders_install_together_without_the_registry(
    fresh_clone: Path, new_venv: Venv, tmp_path: Path
) -> None:
    """The documented one-liner: acc-core is named, so pip never looks for it elsewhere."""
    new_venv.pip_install("./packages/core", "./packages/backend-sqlite", cwd=fresh_clone)
    installed = new_venv.distributions()
    assert {"acc-core", "acc-backend-sqlite"} <= set(installed)
    report = _run_program(new_venv, SQLITE_ONLY, cwd=tmp_path)
    assert report == {"backend": "SQLiteBackend", "value": "value"}


def test_the_backend_template_passes_its_kit_ruff_and_mypy_untouched(
    dist: Path, fresh_clone: Path, new_venv: Venv, tmp_path: Path
) -> None:
    """As docs/writing-a-backend.md says: copy, install with its extras, run the checks."""
    package = tmp_path / "acc-backend-example"
    shutil.copytree(fresh_clone / "templates" / "backend", package)
    new_venv.pip_install("--find-links", str(dist), "-e", ".[testing,lint]", cwd=package)

    tests = run([str(new_venv.python), "-m", "pytest", "-q", "-p", "no:cacheprovider"], cwd=package)
    assert tests.returncode == 0, explain(tests)
    summary = tests.stdout.strip().splitlines()[-1]
    passed = re.search(r"(\d+) passed", summary)
    assert passed is not None, summary
    assert int(passed.group(1)) >= 20, summary  # the kit ran
    assert "failed" not in summary, summary
    assert "error" not in summary, summary

    for command in (
        ["ruff", "check", "."],
        ["ruff", "format", "--check", "."],
        ["mypy", "--strict"],
    ):
        result = run([str(new_venv.bin / command[0]), *command[1:]], cwd=package)
        assert result.returncode == 0, explain(result)
    assert "Success: no issues found" in result.stdout
