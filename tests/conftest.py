"""Fixtures shared by the whole test tree.

``origin`` is a real aiohttp server on 127.0.0.1 (a free port chosen by the OS) that the
session tests talk to over real connections. It counts the requests it receives per
path, so a test can assert that a hit never reached the network.

Long profiles (fault, fuzz and soak tests have a quick profile in the suite and a long
one behind a marker): a test marked with one of :data:`LONG_MARKERS` is left out of a run
(deselected, not skipped) unless the run's ``-m`` expression names its marker, as in
``pytest -m fuzz_long``.
"""

from __future__ import annotations

import asyncio
import gzip
import json
from collections import Counter
from collections.abc import AsyncIterator

import pytest
from aiohttp import web
from yarl import URL

# The real servers (Redis, MongoDB, DynamoDB) and their fixtures: tests/support/acc_services.
pytest_plugins = ["acc_services.redis", "acc_services.mongo", "acc_services.dynamodb"]

LONG_MARKERS = ("fuzz_long",)
"""Markers of long profiles, run only when ``-m`` names them (see the module docstring)."""


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Leave out the long profiles that the ``-m`` expression does not name."""
    wanted = config.getoption("markexpr", "") or ""
    left_out = [m for m in LONG_MARKERS if m not in wanted]
    if not left_out:
        return
    kept: list[pytest.Item] = []
    deselected: list[pytest.Item] = []
    for item in items:
        (deselected if any(item.get_closest_marker(m) for m in left_out) else kept).append(item)
    if deselected:
        config.hook.pytest_deselected(items=deselected)
        items[:] = kept


_BLOCK = bytes(range(256)) * 256 + bytes(range(1, 256))  # 65,791 bytes: chunks differ


def pattern(size: int, start: int = 0) -> bytes:
    """Bytes ``start`` to ``start + size`` of the body ``/stream`` sends (any offsets)."""
    offset = start % len(_BLOCK)
    repeats = (offset + size) // len(_BLOCK) + 1
    return (
        (_BLOCK * repeats)[offset : offset + size]
        if repeats > 1
        else _BLOCK[offset : offset + size]
    )


class Origin:
    """A running test origin: its base URL and what it has seen."""

    def __init__(self, url: URL) -> None:
        self.url = url
        self.hits: Counter[str] = Counter()
        self.requests: list[web.Request] = []
        self.bodies: list[bytes] = []
        self.etag_version = 1
        # /http/{name} routes: a status forced per name (e.g. 500 to test stale-if-error),
        # and every (path, status) answered, to tell a 304 from a full response.
        self.force_status: dict[str, int] = {}
        self.answered: list[tuple[str, int]] = []
        # /gate holds every request until a test opens it: concurrency tests count the
        # requests that arrived while it was shut instead of timing them.
        self.gate = asyncio.Event()

    def __call__(self, path: str) -> str:
        return str(
            self.url.with_path(path.split("?")[0]).with_query(
                path.split("?", 1)[1] if "?" in path else None
            )
        )

    @staticmethod
    def pattern(size: int, start: int = 0) -> bytes:
        """What ``/stream?size=...`` sends (see :func:`pattern`)."""
        return pattern(size, start)

    def stream(self, size: int, **params: str | int) -> str:
        """The URL of ``/stream`` sending ``size`` bytes (see the route for ``params``)."""
        query = {"size": str(size), **{k: str(v) for k, v in params.items()}}
        return str(self.url.with_path("/stream").with_query(query))

    @property
    def total(self) -> int:
        return sum(self.hits.values())

    def http(self, name: str, **params: str) -> str:
        """The URL of ``/http/{name}`` sending the headers ``params`` name (see the route)."""
        return str(self.url.with_path(f"/http/{name}").with_query(params))


def _app(origin_ref: list[Origin]) -> web.Application:
    routes = web.RouteTableDef()

    def seen(request: web.Request) -> Origin:
        origin = origin_ref[0]
        origin.hits[request.path] += 1
        origin.requests.append(request)
        return origin

    @routes.route("*", "/json")
    async def json_handler(request: web.Request) -> web.Response:
        origin = seen(request)
        return web.json_response(
            {"path": request.path, "query": dict(request.query), "count": origin.hits[request.path]}
        )

    @routes.route("*", "/echo")
    async def echo(request: web.Request) -> web.Response:
        origin = seen(request)
        body = await request.read()
        origin.bodies.append(body)
        return web.json_response(
            {
                "method": request.method,
                "query": sorted(request.query.items()),
                "headers": dict(request.headers),
                "body": body.decode("utf-8", "replace"),
                "count": origin.hits[request.path],
            }
        )

    @routes.get("/t/{tenant}/json")
    async def tenant(request: web.Request) -> web.Response:
        seen(request)
        return web.json_response({"tenant": request.match_info["tenant"]})

    @routes.get("/slow")
    async def slow(request: web.Request) -> web.Response:
        origin = seen(request)
        await asyncio.sleep(float(request.query.get("delay", "0.3")))
        return web.json_response({"count": origin.hits[request.path]})

    @routes.post("/slow-post")
    async def slow_post(request: web.Request) -> web.Response:
        origin = seen(request)
        await asyncio.sleep(float(request.query.get("delay", "0.3")))
        return web.json_response({"count": origin.hits[request.path]})

    @routes.route("*", "/gate")
    async def gate(request: web.Request) -> web.Response:
        """Answer once ``origin.gate`` is open, with the count when the request arrived."""
        origin = seen(request)
        count = origin.hits[request.path]
        await origin.gate.wait()
        return web.json_response({"method": request.method, "count": count})

    @routes.get("/etag")
    async def etag(request: web.Request) -> web.Response:
        origin = seen(request)
        tag = f'"v{origin.etag_version}"'
        if request.headers.get("If-None-Match") == tag:
            return web.Response(status=304, headers={"ETag": tag, "X-Checked": "yes"})
        return web.json_response({"version": origin.etag_version}, headers={"ETag": tag})

    @routes.get("/last-modified")
    async def last_modified(request: web.Request) -> web.Response:
        seen(request)
        stamp = "Wed, 21 Oct 2015 07:28:00 GMT"
        if request.headers.get("If-Modified-Since") == stamp:
            return web.Response(status=304, headers={"Last-Modified": stamp})
        return web.Response(text="dated", headers={"Last-Modified": stamp})

    @routes.get("/redirect")
    async def redirect(request: web.Request) -> web.Response:
        seen(request)
        raise web.HTTPFound("/json?from=redirect")

    @routes.get("/relay")
    async def relay(request: web.Request) -> web.Response:
        """Redirect ``hops`` times, passing the query on (an API key included), then answer
        with the query in ``Content-Location`` and ``Link``, as APIs that echo them do."""
        seen(request)
        query = dict(request.query)
        hops = int(query.pop("hops", "0"))
        rest = "&".join(f"{name}={value}" for name, value in query.items())
        if hops > 0:
            raise web.HTTPFound(f"/relay?hops={hops - 1}&{rest}")
        return web.Response(
            text="relayed",
            headers={
                "Content-Location": f"/relay?{rest}",
                "Link": f'<{request.url.origin()}/relay?page=2&{rest}>; rel="next"',
            },
        )

    @routes.get("/gzip")
    async def gzipped(request: web.Request) -> web.Response:
        seen(request)
        payload = json.dumps({"compressed": True, "pad": "x" * 2000}).encode()
        body = gzip.compress(payload)
        return web.Response(
            body=body,
            headers={"Content-Encoding": "gzip", "Content-Type": "application/json"},
        )

    @routes.get("/cookie")
    async def cookie(request: web.Request) -> web.Response:
        seen(request)
        response = web.Response(text="cookie set")
        response.set_cookie("flavour", "oatmeal")
        return response

    @routes.get("/login")
    async def login(request: web.Request) -> web.Response:
        """A login redirect: the 302 sets the session cookie, the page it leads to none."""
        seen(request)
        response = web.HTTPFound("/text")
        response.set_cookie("session", "user-a-session")
        raise response

    @routes.get("/links")
    async def links(request: web.Request) -> web.Response:
        seen(request)
        return web.Response(
            text="paged",
            headers={"Link": '<http://example.invalid/page2>; rel="next"'},
        )

    @routes.get("/download")
    async def download(request: web.Request) -> web.Response:
        seen(request)
        return web.Response(
            body=b"a,b\n1,2\n",
            headers={"Content-Disposition": 'attachment; filename="data.csv"'},
            content_type="text/csv",
        )

    @routes.get("/text")
    async def text(request: web.Request) -> web.Response:
        seen(request)
        return web.Response(text="héllo wörld", content_type="text/plain", charset="utf-8")

    @routes.get("/big")
    async def big(request: web.Request) -> web.Response:
        seen(request)
        size = int(request.query.get("size", str(1024 * 1024)))
        return web.Response(body=bytes(range(256)) * (size // 256))

    @routes.get("/stream")
    async def stream(request: web.Request) -> web.StreamResponse:
        """``size`` bytes of :func:`pattern` in ``chunk``-byte writes.

        ``cl=0`` sends no Content-Length (chunked); ``gzip=1`` sends the body gzipped
        (with the compressed length unless ``cl=0``); ``gate=1`` sends the first chunk,
        then waits for ``origin.gate`` before sending the rest.
        """
        origin = seen(request)
        query = request.query
        size = int(query.get("size", "1024"))
        chunk = int(query.get("chunk", "65536"))
        response = web.StreamResponse(headers={"Content-Type": "application/octet-stream"})
        if query.get("gzip") == "1":
            body = gzip.compress(pattern(size), compresslevel=1)
            response.headers["Content-Encoding"] = "gzip"
            if query.get("cl", "1") == "1":
                response.content_length = len(body)
            await response.prepare(request)
            await response.write(body)
            await response.write_eof()
            return response
        if query.get("cl", "1") == "1":
            response.content_length = size
        else:
            response.enable_chunked_encoding()
        await response.prepare(request)
        for index, start in enumerate(range(0, size, chunk)):
            if index == 1 and query.get("gate") == "1":
                await origin.gate.wait()
            await response.write(pattern(min(chunk, size - start), start))
        await response.write_eof()
        return response

    @routes.get("/broken-stream")
    async def broken_stream(request: web.Request) -> web.StreamResponse:
        """A chunked body cut off after its first chunk (the connection is closed)."""
        seen(request)
        response = web.StreamResponse()
        response.enable_chunked_encoding()
        await response.prepare(request)
        await response.write(b"x" * 4096)
        assert request.transport is not None
        request.transport.close()
        return response

    @routes.get("/status/{code}")
    async def status(request: web.Request) -> web.Response:
        seen(request)
        return web.Response(status=int(request.match_info["code"]), text="status")

    @routes.get("/response-headers")
    async def response_headers(request: web.Request) -> web.Response:
        """Like httpbin's: every query parameter becomes a response header (for the docs)."""
        origin = seen(request)
        headers = dict(request.query)
        return web.json_response({**headers, "count": origin.hits[request.path]}, headers=headers)

    @routes.route("*", "/http/{name}")
    async def http_semantics(request: web.Request) -> web.Response:
        """Headers chosen by query parameters, for the HTTP caching tests.

        ``cc`` -> Cache-Control, ``expires`` -> Expires, ``etag`` -> ETag (a matching
        If-None-Match, compared weakly, gets a 304), ``lm`` -> Last-Modified (an equal
        If-Modified-Since gets a 304), ``date`` -> Date, ``age`` -> Age, ``vary`` -> Vary,
        ``location`` -> Location, ``status`` -> the status. The body echoes the count
        and the request's Accept header. ``origin.force_status[name]`` overrides all.
        """
        origin = seen(request)
        name = request.match_info["name"]
        query = request.query
        headers = {
            header: query[param]
            for param, header in (
                ("cc", "Cache-Control"),
                ("expires", "Expires"),
                ("etag", "ETag"),
                ("lm", "Last-Modified"),
                ("date", "Date"),
                ("age", "Age"),
                ("vary", "Vary"),
                ("location", "Location"),
            )
            if param in query
        }
        forced = origin.force_status.get(name)
        if forced is not None:
            origin.answered.append((request.path, forced))
            return web.Response(status=forced, text="forced")
        tag = query.get("etag")
        match = request.headers.get("If-None-Match")
        # A 304 is sent now: it carries the query's headers but its own Date and no Age.
        fresh = {k: v for k, v in headers.items() if k not in ("Date", "Age")}
        if (
            tag is not None
            and match is not None
            and match.removeprefix("W/") == tag.removeprefix("W/")
        ):
            origin.answered.append((request.path, 304))
            return web.Response(status=304, headers=fresh)
        since = request.headers.get("If-Modified-Since")
        if "lm" in query and since is not None and since == query["lm"] and match is None:
            origin.answered.append((request.path, 304))
            return web.Response(status=304, headers=fresh)
        status = int(query.get("status", "200"))
        origin.answered.append((request.path, status))
        return web.json_response(
            {
                "name": name,
                "count": origin.hits[request.path],
                "accept": request.headers.get("Accept"),
            },
            status=status,
            headers=headers,
        )

    app = web.Application()
    app.add_routes(routes)
    return app


@pytest.fixture
async def origin() -> AsyncIterator[Origin]:
    """A real aiohttp origin on 127.0.0.1, started for one test."""
    ref: list[Origin] = []
    runner = web.AppRunner(_app(ref))
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    ref.append(Origin(URL(f"http://127.0.0.1:{port}")))
    try:
        yield ref[0]
    finally:
        ref[0].gate.set()  # no request left waiting at the gate holds up the shutdown
        await runner.cleanup()
