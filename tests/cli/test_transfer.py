"""``acc export`` and ``acc import``: SQLite to Redis and back, HAR 1.2 out and in."""

from __future__ import annotations

import asyncio
import base64
import io
import json
import uuid
from pathlib import Path
from typing import Any

import jsonschema  # type: ignore[import-untyped, unused-ignore]
from click.testing import Result

from acc.cli.transfer import _lines, read_lines

PATHS = ("/json", "/text", "/etag", "/download", "/redirect")


def data(result: Result) -> Any:
    assert result.exit_code == 0, result.stderr + result.stdout
    return json.loads(result.stdout)


def redis_cache(redis_url: str) -> str:
    separator = "&" if "?" in redis_url else "?"
    return f"{redis_url}{separator}cache_name=acc-cli-{uuid.uuid4().hex[:8]}"


async def _fill(origin, run_acc, cache: str) -> None:
    for path in PATHS:
        result = await run_acc("get", origin(path), cache=cache)
        assert result.exit_code == 0, result.stderr


async def _all_hits(origin, run_acc, cache: str) -> None:
    before = origin.total
    for path in PATHS:
        report = data(await run_acc("get", "--json", "--only-if-cached", origin(path), cache=cache))
        assert report["result"] == "hit", (path, report)
    assert origin.total == before  # nothing reached the network


async def test_export_from_sqlite_import_into_redis_and_back(
    origin, run_acc, cache_url: str, redis_url: str, tmp_path: Path
) -> None:
    await _fill(origin, run_acc, cache_url)
    exported = tmp_path / "cache.jsonl"
    report = data(await run_acc("export", "--json", "-o", str(exported), cache=cache_url))
    assert (report["entries"], report["aliases"]) == (5, 1)  # /redirect's alias
    lines = exported.read_text().splitlines()
    assert json.loads(lines[0])["format"] == "acc-export"
    assert len(lines) == 1 + 5 + 1
    redis = redis_cache(redis_url)
    imported = data(await run_acc("import", "--json", str(exported), cache=redis))
    assert (imported["entries"], imported["aliases"], imported["skipped"]) == (5, 1, 0)
    await _all_hits(origin, run_acc, redis)
    # And back: Redis to a fresh SQLite file, through standard input and output.
    back = await run_acc("export", cache=redis)
    assert back.exit_code == 0
    other = f"sqlite:///{tmp_path.as_posix()}/other.sqlite"
    again = data(await run_acc("import", "--json", "-", input=back.stdout, cache=other))
    assert (again["entries"], again["aliases"]) == (5, 1)
    await _all_hits(origin, run_acc, other)


# A JSON schema of the HAR 1.2 structure (http://www.softwareishard.com/blog/har-12-spec/):
# every required field, with its type; custom fields (starting with "_") are allowed.
_NAME_VALUE = {
    "type": "object",
    "required": ["name", "value"],
    "properties": {"name": {"type": "string"}, "value": {"type": "string"}},
}
HAR_12 = {
    "type": "object",
    "required": ["log"],
    "properties": {
        "log": {
            "type": "object",
            "required": ["version", "creator", "entries"],
            "properties": {
                "version": {"type": "string", "const": "1.2"},
                "creator": {
                    "type": "object",
                    "required": ["name", "version"],
                    "properties": {"name": {"type": "string"}, "version": {"type": "string"}},
                },
                "pages": {"type": "array"},
                "entries": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "required": [
                            "startedDateTime",
                            "time",
                            "request",
                            "response",
                            "cache",
                            "timings",
                        ],
                        "properties": {
                            "startedDateTime": {
                                "type": "string",
                                "pattern": (
                                    r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?"
                                    r"(Z|[+-]\d\d:\d\d)$"
                                ),
                            },
                            "time": {"type": "number", "minimum": 0},
                            "request": {
                                "type": "object",
                                "required": [
                                    "method",
                                    "url",
                                    "httpVersion",
                                    "cookies",
                                    "headers",
                                    "queryString",
                                    "headersSize",
                                    "bodySize",
                                ],
                                "properties": {
                                    "method": {"type": "string"},
                                    "url": {"type": "string"},
                                    "httpVersion": {"type": "string"},
                                    "cookies": {"type": "array"},
                                    "headers": {"type": "array", "items": _NAME_VALUE},
                                    "queryString": {"type": "array", "items": _NAME_VALUE},
                                    "headersSize": {"type": "integer"},
                                    "bodySize": {"type": "integer"},
                                },
                            },
                            "response": {
                                "type": "object",
                                "required": [
                                    "status",
                                    "statusText",
                                    "httpVersion",
                                    "cookies",
                                    "headers",
                                    "content",
                                    "redirectURL",
                                    "headersSize",
                                    "bodySize",
                                ],
                                "properties": {
                                    "status": {"type": "integer"},
                                    "statusText": {"type": "string"},
                                    "httpVersion": {"type": "string"},
                                    "cookies": {"type": "array"},
                                    "headers": {"type": "array", "items": _NAME_VALUE},
                                    "content": {
                                        "type": "object",
                                        "required": ["size", "mimeType"],
                                        "properties": {
                                            "size": {"type": "integer"},
                                            "mimeType": {"type": "string"},
                                            "text": {"type": "string"},
                                            "encoding": {"type": "string"},
                                        },
                                    },
                                    "redirectURL": {"type": "string"},
                                    "headersSize": {"type": "integer"},
                                    "bodySize": {"type": "integer"},
                                },
                            },
                            "cache": {"type": "object"},
                            "timings": {
                                "type": "object",
                                "required": ["send", "wait", "receive"],
                                "properties": {
                                    "send": {"type": "number"},
                                    "wait": {"type": "number"},
                                    "receive": {"type": "number"},
                                },
                            },
                        },
                    },
                },
            },
        }
    },
}


async def test_har_export_is_har_12_and_imports_as_hits(
    origin, run_acc, cache_url: str, tmp_path: Path
) -> None:
    await _fill(origin, run_acc, cache_url)
    await run_acc("get", origin("/big?size=1024"), cache=cache_url)  # a binary body
    har = tmp_path / "cache.har"
    report = data(await run_acc("export", "--json", "-o", str(har), cache=cache_url))
    assert report["format"] == "har"
    assert report["entries"] == 6
    document = json.loads(har.read_text())
    jsonschema.validate(document, HAR_12)
    by_url = {entry["request"]["url"]: entry for entry in document["log"]["entries"]}
    binary = by_url[origin("/big?size=1024")]["response"]["content"]
    assert binary["encoding"] == "base64"
    assert base64.b64decode(binary["text"]) == bytes(range(256)) * 4
    assert by_url[origin("/text")]["response"]["content"]["text"] == "héllo wörld"
    other = f"sqlite:///{tmp_path.as_posix()}/from-har.sqlite"
    imported = data(await run_acc("import", "--json", str(har), cache=other))
    assert imported["entries"] == 6
    await _all_hits(origin, run_acc, other)


def _browser_entry(url: str, status: int, body: str | None, **extra: Any) -> dict[str, Any]:
    content: dict[str, Any] = {"size": len(body or "x"), "mimeType": "application/json"}
    if body is not None:
        content["text"] = body
    return {
        "startedDateTime": "2024-05-01T10:00:00.000Z",
        "time": 12.5,
        "request": {
            "method": "GET",
            "url": url,
            "httpVersion": "HTTP/2",
            "cookies": [],
            "headers": [{"name": ":authority", "value": "x"}, {"name": "Accept", "value": "*/*"}],
            "queryString": [],
            "headersSize": -1,
            "bodySize": 0,
        },
        "response": {
            "status": status,
            "statusText": "",
            "httpVersion": "HTTP/2",
            "cookies": [],
            "headers": [
                {"name": "content-type", "value": "application/json"},
                {"name": "content-encoding", "value": "br"},
            ],
            "content": content,
            "redirectURL": extra.get("location", ""),
            "headersSize": -1,
            "bodySize": -1,
        },
        "cache": {},
        "timings": {"send": 1, "wait": 10, "receive": 1.5},
    }


async def test_a_browser_har_seeds_a_cache(origin, run_acc, tmp_path: Path) -> None:
    har = {
        "log": {
            "version": "1.2",
            "creator": {"name": "Firefox", "version": "125"},
            "entries": [
                _browser_entry(origin("/json"), 200, '{"seeded": true}'),
                _browser_entry(origin("/old"), 302, "", location="/json"),
                _browser_entry(origin("/blocked"), 0, None),
                _browser_entry(origin("/missing-body"), 200, None),
                _browser_entry(origin("/status/500"), 500, "oops"),
            ],
        }
    }
    path = tmp_path / "browser.har"
    path.write_text(json.dumps(har))
    report = data(await run_acc("import", "--json", "--expire-after", "1h", str(path)))
    assert (report["entries"], report["aliases"]) == (1, 1)
    assert report["skipped_reasons"] == {
        "no response": 1,
        "body not recorded": 1,
        "status 500 not in allowed_codes": 1,
    }
    hit = await run_acc("get", "--only-if-cached", origin("/json"))
    assert json.loads(hit.stdout) == {"seeded": True}
    assert " hit " in hit.stderr
    assert "expires in" in hit.stderr
    redirected = await run_acc("get", "--only-if-cached", origin("/old"))
    assert json.loads(redirected.stdout) == {"seeded": True}
    assert origin.total == 0


async def test_a_malformed_import_is_one_line(run_acc, tmp_path: Path) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text(
        '{"format": "acc-export", "version": 1}\n'
        '{"type": "entry", "key": "k", "entry": {"status": "x"}}\n'
    )
    result = await run_acc("import", str(bad))
    assert result.exit_code == 2
    assert result.stderr.startswith("acc: error: the last batch: entry: not a valid acc entry")
    assert result.stderr.count("\n") == 1
    foreign = tmp_path / "foreign.jsonl"
    foreign.write_text('{"hello": 1}\n')
    assert (await run_acc("import", "--format", "jsonl", str(foreign))).exit_code == 2


async def test_the_read_queue_holds_the_reader_back_and_loses_no_line() -> None:
    # The reader thread queues at most 1,000 lines ahead of the writes: when the queue
    # is full it waits for room, and every line still arrives, once and in order.
    loop = asyncio.get_running_loop()
    lines = [f"line {number}\n" for number in range(2500)]
    queue = read_lines(io.StringIO("".join(lines)), loop)
    while not queue.full():  # noqa: ASYNC110 - polling the queue the thread fills
        await asyncio.sleep(0.01)
    await asyncio.sleep(0.05)  # it cannot add more meanwhile
    assert queue.qsize() == queue.maxsize == 1000
    received = [line async for _number, line in _lines(queue)]
    assert received == lines
