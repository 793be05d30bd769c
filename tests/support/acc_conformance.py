"""The HTTP caching test suite (http-tests/cache-tests) run against acc.

The suite (npm ``http-cache-tests``, pinned in ``tests/conformance/package.json``) is a
Node.js client and an origin server; the client sends each test's requests to a cache
and checks what comes back. Here the cache is acc: :func:`start_proxy` serves a small
proxy whose every request goes through a :class:`~acc.sessions.aiohttp.CachedSession`
to the suite's origin. :func:`run_suite` starts the origin, the proxy and the client,
and :func:`grade` reads the results the way cache-tests.fyi does.

Run it by hand (after ``npm ci`` in ``tests/conformance``)::

    PYTHONPATH=tests/support hatch run python -m acc_conformance            # as a user writes it
    PYTHONPATH=tests/support hatch run python -m acc_conformance --id freshness-none

Rules this module keeps:

1. The proxy forwards what the client sent (minus hop-by-hop fields, RFC 9110 §7.6.1)
   and answers what the session answered, hit or miss, without following redirects; it
   holds no caching rule of its own. aiohttp's default request headers are not added.
2. Grading is cache-tests.fyi's (``lib/display.mjs``): a test whose dependency did not
   pass is a dependency failure; a setup failure is not a failure of the cache;
   ``optimal`` tests fail softly; ``check`` tests are not graded.
3. The private-cache set is the graded tests a browser (a private cache) is held to:
   every ``required`` and ``optimal`` test not marked ``browser_skip``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import sys
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from aiohttp import ClientError, TCPConnector, web
from multidict import CIMultiDict

from acc.core import CacheBackend
from acc.sessions.aiohttp import CachedSession
from acc.sessions.aiohttp.exchange import body_decoded

__all__ = [
    "CONFORMANCE_DIR",
    "PASSING",
    "SuiteRun",
    "grade",
    "npm_install",
    "private_cache_tests",
    "run_suite",
    "start_proxy",
]

CONFORMANCE_DIR = Path(__file__).resolve().parents[1] / "conformance"
"""Where the suite's ``package.json``, lockfile and Node.js scripts live."""

_HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-connection",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
        "host",
        "content-length",
    }
)

_CODING = frozenset({"content-encoding"})

PASSING = frozenset({"pass", "yes"})
"""The grades that count as passed (rule 2)."""


def _forwarded(headers: Any, *, drop: frozenset[str] = frozenset()) -> CIMultiDict[str]:
    named = {
        name.strip().lower()
        for value in headers.getall("Connection", ())
        for name in value.split(",")
    }
    skip = _HOP_BY_HOP | named | drop
    return CIMultiDict((k, v) for k, v in headers.items() if k.lower() not in skip)


def _proxy_app(origin: str, session: CachedSession) -> web.Application:
    async def handle(request: web.Request) -> web.StreamResponse:
        target = origin.rstrip("/") + request.path_qs
        body = await request.read() if request.body_exists else None
        try:
            async with session.request(
                request.method,
                target,
                headers=_forwarded(request.headers),
                data=body,
                allow_redirects=False,
                skip_auto_headers=("User-Agent", "Accept", "Accept-Encoding", "Content-Type"),
            ) as answer:
                payload = await answer.read()
                # When aiohttp decoded the body, the coding no longer describes it.
                decoded = answer.headers.get("Content-Encoding") and body_decoded(
                    answer.headers, True
                )
                headers = _forwarded(answer.headers, drop=_CODING if decoded else frozenset())
                status, reason = answer.status, answer.reason
        except (ClientError, OSError, asyncio.TimeoutError) as exc:
            # The origin could not be reached or sent what aiohttp cannot read.
            return web.Response(status=502, text=f"{type(exc).__name__}: {exc}")
        if status in (204, 304) or request.method == "HEAD":
            payload = b""
        return web.Response(status=status, reason=reason, headers=headers, body=payload or None)

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handle)
    return app


@asynccontextmanager
async def start_proxy(origin: str, cache: CacheBackend) -> AsyncIterator[str]:
    """Serve a proxy to ``origin`` through ``cache`` on 127.0.0.1; yield its base URL."""
    # A new connection per request: a few tests make the origin send a Content-Length
    # that disagrees with the body, which would poison a reused connection.
    connector = TCPConnector(force_close=True)
    async with CachedSession(cache=cache, connector=connector) as session:
        runner = web.AppRunner(_proxy_app(origin, session), access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = runner.addresses[0][1]
        try:
            yield f"http://127.0.0.1:{port}"
        finally:
            await runner.cleanup()


def npm_install(npm: str) -> None:
    """Install the pinned suite into ``tests/conformance/node_modules`` (``npm ci``)."""
    import subprocess

    marker = CONFORMANCE_DIR / "node_modules" / "http-cache-tests" / "package.json"
    if marker.exists():
        return
    subprocess.run(
        [npm, "ci", "--no-audit", "--no-fund", "--loglevel=error"],
        cwd=CONFORMANCE_DIR,
        check=True,
        timeout=300,
    )


@asynccontextmanager
async def _origin(node: str) -> AsyncIterator[str]:
    process = await asyncio.create_subprocess_exec(
        node,
        "origin.mjs",
        cwd=CONFORMANCE_DIR,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL,
    )
    try:
        assert process.stdout is not None
        line = await asyncio.wait_for(process.stdout.readline(), 60)
        if not line.startswith(b"listening "):
            raise RuntimeError(f"the cache-tests origin did not start: {line!r}")
        port = int(line.split()[1])

        async def drain() -> None:  # the origin logs warnings; never let the pipe fill
            assert process.stdout is not None
            while await process.stdout.read(65536):
                pass

        drainer = asyncio.ensure_future(drain())
        try:
            yield f"http://127.0.0.1:{port}"
        finally:
            drainer.cancel()
    finally:
        if process.returncode is None:
            process.kill()
        await process.wait()


@asynccontextmanager
async def _client(
    node: str, base: str, test_id: str | None
) -> AsyncIterator[asyncio.subprocess.Process]:
    args = [node, "run.mjs", base] + ([test_id] if test_id else [])
    process = await asyncio.create_subprocess_exec(
        *args,
        cwd=CONFORMANCE_DIR,
        stdout=None if test_id else asyncio.subprocess.PIPE,
        stderr=None if test_id else asyncio.subprocess.PIPE,
    )
    try:
        yield process
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()


class SuiteRun:
    """The outcome of one run: every test's metadata, raw result and grade."""

    def __init__(self, tests: list[dict[str, Any]], results: Mapping[str, Any]) -> None:
        self.tests = {test["id"]: test for test in tests}
        self.results = dict(results)
        self.grades = grade(tests, results)

    def private_cache(self) -> dict[str, str]:
        """The grades of the private-cache set (rule 3), by test id."""
        return {t: self.grades[t] for t in private_cache_tests(self.tests.values())}

    def passed(self) -> list[str]:
        """The private-cache tests passed."""
        return sorted(t for t, g in self.private_cache().items() if g in PASSING)

    def failures(self) -> dict[str, tuple[str, str]]:
        """The private-cache tests not passed: id -> (grade, message)."""
        out = {}
        for test_id, grade_ in sorted(self.private_cache().items()):
            if grade_ not in PASSING:
                raw = self.results.get(test_id)
                message = raw[1] if isinstance(raw, list) and len(raw) > 1 else ""
                out[test_id] = (grade_, str(message))
        return out

    def summary(self) -> str:
        """A readable report: the count, then every test not passed."""
        graded = self.private_cache()
        lines = [f"passed {len(self.passed())} of {len(graded)} private-cache tests"]
        lines.extend(
            f"  {grade_:16} {self.tests[test_id]['kind']:8} {test_id}: {message}"
            for test_id, (grade_, message) in self.failures().items()
        )
        return "\n".join(lines)


def private_cache_tests(tests: Any) -> list[str]:
    """The ids of the graded tests a private cache is held to (rule 3)."""
    return [t["id"] for t in tests if t["kind"] != "check" and not t["browser_skip"]]


def grade(tests: list[dict[str, Any]], results: Mapping[str, Any]) -> dict[str, str]:
    """Grade every test as cache-tests.fyi does (rule 2)."""
    by_id = {test["id"]: test for test in tests}
    grades: dict[str, str] = {}

    def one(test_id: str) -> str:
        if test_id in grades:
            return grades[test_id]
        test = by_id[test_id]
        result = results.get(test_id)
        if result is None:
            value = "untested"
        elif any(one(dep) not in PASSING for dep in test["depends_on"]):
            value = "dependency_fail"
        elif isinstance(result, list) and result[0] == "Setup":
            value = "retry" if result[1] == "retry" else "setup_fail"
        elif result is True:
            value = "yes" if test["kind"] == "check" else "pass"
        elif test["kind"] == "required":
            value = "fail"
        elif test["kind"] == "optimal":
            value = "optional_fail"
        else:
            value = "no"
        grades[test_id] = value
        return value

    for test_id in by_id:
        one(test_id)
    return grades


async def run_suite(
    cache_factory: Callable[[], CacheBackend],
    *,
    node: str,
    timeout: float = 600,
    test_id: str | None = None,
) -> SuiteRun:
    """Run the suite through a proxy over a fresh cache; raise on a harness failure."""
    async with _origin(node) as origin, start_proxy(origin, cache_factory()) as proxy:
        async with _client(node, proxy, test_id) as client:
            stdout, stderr = await asyncio.wait_for(client.communicate(), timeout)
        if client.returncode != 0:
            raise RuntimeError(
                f"the cache-tests client failed ({client.returncode}): {(stderr or b'').decode()}"
            )
        if test_id:
            return SuiteRun([], {})
        document = json.loads(stdout)
        return SuiteRun(document["tests"], document["results"])


def _main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m acc_conformance", description=__doc__)
    parser.add_argument("--id", help="run one test and show its exchange")
    parser.add_argument(
        "--options",
        default="{}",
        help='CacheBackend options besides cache_control=True, as JSON: {"expire_after": 0}',
    )
    parser.add_argument("--json", action="store_true", help="print every grade as JSON")
    args = parser.parse_args(argv)
    node = shutil.which("node")
    npm = shutil.which("npm")
    if node is None or npm is None:
        print("node and npm are needed", file=sys.stderr)
        return 2
    npm_install(npm)
    options = {"cache_control": True, **json.loads(args.options)}
    run = asyncio.run(run_suite(lambda: CacheBackend(**options), node=node, test_id=args.id))
    if args.id:
        return 0
    if args.json:
        print(json.dumps(run.grades, indent=1, sort_keys=True))
    print(run.summary())
    return 0


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    raise SystemExit(_main())
