"""Every ``acc`` command against a real origin on 127.0.0.1 and a real SQLite cache.

Output, ``--json`` and exit codes are checked; Redis joins in for export and import.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

from click.testing import Result

ONE_LINE_ERROR = re.compile(r"^acc: error: [^\n]+\n$")


def data(result: Result) -> Any:
    assert result.exit_code == 0, result.stderr + result.stdout
    return json.loads(result.stdout)


def one_line_error(result: Result, status: int) -> str:
    assert result.exit_code == status, result.stderr
    assert ONE_LINE_ERROR.match(result.stderr), result.stderr
    return result.stderr


# -- get -----------------------------------------------------------------------------------------


async def test_get_prints_the_body_and_how_the_cache_answered(origin, run_acc) -> None:
    url = origin("/json")
    first = await run_acc("get", url)
    assert first.exit_code == 0, first.stderr
    assert json.loads(first.stdout)["count"] == 1
    assert re.match(r"^200 OK  miss \(stored\)  never expires  GET ", first.stderr)
    second = await run_acc("get", url)
    assert json.loads(second.stdout)["count"] == 1  # from the cache
    assert re.match(r"^200 OK  hit  age \d+ s  never expires", second.stderr)
    assert origin.hits["/json"] == 1


async def test_get_json_options_and_output_file(origin, run_acc, tmp_path: Path) -> None:
    url = origin("/etag")
    miss = data(await run_acc("get", "--json", "--expire-after", "1h", url))
    assert (miss["result"], miss["stored"], miss["status"]) == ("miss", True, 200)
    assert 3590 < miss["expires_in"] <= 3600
    hit = data(await run_acc("get", "--json", url))
    assert hit["result"] == "hit"
    assert hit["age"] >= 0
    assert hit["cache_key"] == miss["cache_key"]
    revalidated = data(await run_acc("get", "--json", "--refresh", url))
    assert revalidated["result"] == "revalidated"
    forced = data(await run_acc("get", "--json", "--force-refresh", url))
    assert forced["result"] == "miss"
    target = tmp_path / "body.json"
    written = await run_acc("get", "-o", str(target), url)
    assert written.exit_code == 0
    assert written.stdout == ""
    assert json.loads(target.read_bytes()) == {"version": 1}
    two = await run_acc("get", "-o", str(target), url, url)
    one_line_error(two, 2)


async def test_get_says_why_a_response_was_not_stored(origin, run_acc) -> None:
    url = origin("/status/404")
    result = await run_acc("get", url)
    assert result.exit_code == 0
    assert "404 Not Found  miss (not stored: status 404 is not in allowed_codes)" in result.stderr
    report = data(await run_acc("get", "--json", url))
    assert (report["stored"], report["why"]) == (
        False,
        "not stored: status 404 is not in allowed_codes",
    )


async def test_get_headers_and_only_if_cached(origin, run_acc) -> None:
    url = origin("/echo")
    report = data(await run_acc("get", "--json", "--only-if-cached", url))
    assert (report["status"], report["result"]) == (504, "504")
    assert origin.hits["/echo"] == 0
    sent = await run_acc("get", "-H", "X-Trace: 42", url)
    assert json.loads(sent.stdout)["headers"]["X-Trace"] == "42"
    one_line_error(await run_acc("get", "-H", "no colon", url), 2)


# -- explain -------------------------------------------------------------------------------------


async def test_explain_no_entry_then_a_fresh_hit(origin, run_acc) -> None:
    url = origin("/json")
    before = data(await run_acc("explain", "--json", url))
    assert (before["decision"], before["reason"]) == ("fetch", "no_entry")
    assert (before["would_store"], before["store_reason"], before["probe_status"]) == (
        True,
        "would_store",
        200,
    )
    assert origin.hits["/json"] == 1  # the probe
    await run_acc("get", url)
    after = data(await run_acc("explain", "--json", url))
    assert (after["decision"], after["reason"]) == ("use", "fresh")
    assert origin.hits["/json"] == 2  # no probe for a hit
    text = await run_acc("explain", url)
    assert "→ serve the stored entry: the stored entry is fresh" in text.stdout
    assert "freshness" in text.stdout
    assert "expire_after" in text.stdout


async def test_explain_reasons_from_the_response(origin, run_acc, cache_url: str) -> None:
    status = data(await run_acc("explain", "--json", origin("/status/500")))
    assert (status["would_store"], status["store_reason"]) == (False, "status_not_allowed")
    no_store = data(
        await run_acc(
            "explain",
            "--json",
            origin.http("nostore", cc="no-store"),
            cache=cache_url + "?cache_control=true",
        )
    )
    assert (no_store["would_store"], no_store["store_reason"]) == (False, "no_store")
    method = data(await run_acc("explain", "--json", "-X", "POST", origin("/echo")))
    assert (method["decision"], method["reason"]) == ("bypass", "method_not_allowed")
    offline = data(await run_acc("explain", "--json", "--offline", origin("/text")))
    assert offline["store_reason"] == "depends_on_response"
    assert origin.hits["/text"] == 0


async def test_explain_stale_entries(origin, run_acc, cache_url: str) -> None:
    # stale_if_error keeps a stale entry without validators in storage for a minute
    # (else storage drops it when it goes stale, and it reads as no entry).
    short = cache_url + "?expire_after=1&stale_if_error=60"
    await run_acc("get", origin("/etag"), cache=short)
    await run_acc("get", origin("/json"), cache=short)
    # A second later both are stale: one has an ETag, the other none.
    await _sleep_past(1.2)
    with_validators = data(
        await run_acc("explain", "--json", "--offline", origin("/etag"), cache=short)
    )
    assert (with_validators["decision"], with_validators["reason"]) == (
        "revalidate",
        "stale_with_validators",
    )
    without = data(await run_acc("explain", "--json", "--offline", origin("/json"), cache=short))
    assert (without["decision"], without["reason"]) == ("fetch", "stale_without_validators")


async def _sleep_past(seconds: float) -> None:
    import asyncio

    await asyncio.sleep(seconds)


# -- stats, urls, show ---------------------------------------------------------------------------


async def _fill(origin, run_acc) -> None:
    for path in ("/json", "/text", "/etag", "/t/a/json", "/download"):
        result = await run_acc("get", origin(path))
        assert result.exit_code == 0, result.stderr


async def test_stats(origin, run_acc) -> None:
    await _fill(origin, run_acc)
    report = data(await run_acc("stats", "--json"))
    assert report["entries"] == 5
    assert report["bytes"] > report["body_bytes"] > 0
    assert (report["stale"], report["expired"]) == (0, 0)
    assert report["oldest"] <= report["newest"]
    host = origin.url.host + ":" + str(origin.url.port)
    assert report["by_host"] == [{"name": host, "entries": 5, "bytes": report["bytes"]}]
    assert report["by_status"][0]["name"] == "200"
    types = {group["name"]: group["entries"] for group in report["by_content_type"]}
    assert types == {"application/json": 3, "text/plain": 1, "text/csv": 1}
    text = await run_acc("stats")
    assert "entries" in text.stdout
    assert "by content type" in text.stdout
    assert "━" not in text.stderr  # no progress bar when not on a terminal


async def test_urls_filters(origin, run_acc) -> None:
    await _fill(origin, run_acc)
    await run_acc("get", origin("/status/200"))
    everything = data(await run_acc("urls", "--json"))
    assert len(everything) == 6
    assert {item["url"] for item in data(await run_acc("urls", "--json", "--glob", "*/t/*"))} == {
        origin("/t/a/json")
    }
    assert data(await run_acc("urls", "--json", "--host", "example.invalid")) == []
    assert len(data(await run_acc("urls", "--json", "--host", origin.url.host))) == 6
    assert len(data(await run_acc("urls", "--json", "--status", "200"))) == 6
    assert data(await run_acc("urls", "--json", "--stale")) == []
    listing = await run_acc("urls")
    assert origin("/t/a/json") in listing.stdout.replace("\n", "").replace("│", "").replace(" ", "")
    assert "6 entries" in listing.stderr


async def test_show_never_shows_a_credential(origin, run_acc, cache_url) -> None:
    url = origin("/cookie")
    # Set-Cookie is stored only with store_cookies=True; show hides its value even then.
    cache = f"{cache_url}?store_cookies=true"
    await run_acc("get", "-H", "Authorization: Bearer s3cret", url, cache=cache)
    shown = data(await run_acc("show", "--json", url, cache=cache))
    assert len(shown) == 1
    headers = shown[0]["headers"]
    assert ["Authorization", "REDACTED"] in headers["request"]
    cookies = [value for name, value in headers["response"] if name.lower() == "set-cookie"]
    assert cookies == ["flavour=REDACTED"]
    text = await run_acc("show", url, cache=cache)
    assert "s3cret" not in text.stdout
    assert "oatmeal" not in text.stdout
    missing = await run_acc("show", origin("/nothing"))
    one_line_error(missing, 1)


# -- rm, prune, vacuum ---------------------------------------------------------------------------


async def test_rm_by_url_glob_and_host(origin, run_acc) -> None:
    await _fill(origin, run_acc)
    dry = data(await run_acc("rm", "--json", "--dry-run", origin("/json")))
    assert (dry["selected"], dry["removed"]) == (1, 0)
    assert data(await run_acc("rm", "--json", origin("/json")))["removed"] == 1
    assert data(await run_acc("rm", "--json", "--glob", "*/t/*"))["removed"] == 1
    assert len(data(await run_acc("urls", "--json"))) == 3
    removed = await run_acc("rm", "--host", origin.url.host)
    assert removed.stdout.startswith("removed 3 entries")
    assert data(await run_acc("urls", "--json")) == []
    one_line_error(await run_acc("rm"), 2)


async def test_prune(origin, run_acc, cache_url: str) -> None:
    await _fill(origin, run_acc)
    nothing = data(await run_acc("prune", "--json"))
    assert (nothing["removed"], nothing["kept"]) == (0, 5)
    total = data(await run_acc("stats", "--json"))["bytes"]
    dry = data(await run_acc("prune", "--json", "--dry-run", "--max-bytes", str(total - 1)))
    assert (dry["selected"], dry["over_budget"], dry["removed"]) == (1, 1, 0)
    assert data(await run_acc("stats", "--json"))["entries"] == 5
    budget = data(await run_acc("prune", "--json", "--max-bytes", str(total // 2)))
    assert budget["removed"] == budget["over_budget"] >= 2
    assert budget["kept_bytes"] <= total // 2
    left = data(await run_acc("urls", "--json"))
    assert origin("/download") in {item["url"] for item in left}  # the newest stay
    await _sleep_past(1.1)
    old = data(await run_acc("prune", "--json", "--older-than", "1s"))
    assert old["older_than"] == len(left) == old["removed"]
    # Expired entries go without options.
    short = cache_url + "?expire_after=1"
    await run_acc("get", origin("/json"), cache=short)
    await _sleep_past(1.2)
    expired = data(await run_acc("prune", "--json"))
    assert (expired["expired"], expired["removed"]) == (1, 1)
    one_line_error(await run_acc("prune", "--max-bytes", "lots"), 2)


async def test_vacuum(origin, run_acc) -> None:
    await _fill(origin, run_acc)
    await run_acc("rm", "--host", origin.url.host)
    report = data(await run_acc("vacuum", "--json"))
    assert report["compacted"] is True
    assert report["bytes_after"] <= report["bytes_before"]
    memory = data(await run_acc("vacuum", "--json", cache="memory://"))
    assert memory["compacted"] is False
    text = await run_acc("vacuum", cache="memory://")
    assert "cannot compact" in text.stdout


# -- errors --------------------------------------------------------------------------------------


async def test_errors_are_one_line_and_a_status(run_acc) -> None:
    unknown = one_line_error(await run_acc("stats", cache="nope://x"), 2)
    assert "installed schemes" in unknown
    assert "sqlite" in unknown
    unreachable = one_line_error(await run_acc("stats", cache="redis://127.0.0.1:1/0"), 1)
    assert "redis" in unreachable.lower()
    one_line_error(await run_acc("get", "not a url"), 2)
    one_line_error(await run_acc("stats", "--bogus"), 2)
    one_line_error(await run_acc("get", "http://127.0.0.1:1/nothing-listens"), 1)
    one_line_error(await run_acc("import", "/no/such/file.jsonl"), 2)


def test_the_console_script_runs() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "acc.cli.main", "--help"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "Default: sqlite:///" in result.stdout
    for command in (
        "get",
        "explain",
        "stats",
        "urls",
        "show",
        "rm",
        "prune",
        "vacuum",
        "export",
        "import",
        "demo",
    ):
        assert re.search(rf"^  {command}\b", result.stdout, re.M), command


async def test_demo(run_acc, tmp_path: Path) -> None:
    result = await run_acc("demo", str(tmp_path / "demo.sqlite"))
    assert result.exit_code == 0, result.stderr
    assert len(re.findall(r"^2 .* hit ", result.stdout, re.M)) == 6
    assert "the API saw 6 requests" in result.stdout


async def test_a_known_scheme_not_installed_names_its_package(run_acc, monkeypatch) -> None:
    from acc.core import registry

    # As on a machine where only acc-core and acc-cli are installed.
    monkeypatch.setattr(registry, "_registered", lambda refresh=False: {})
    monkeypatch.setattr(registry.BackendSpec, "installed", lambda self: self.package == "acc-core")
    result = await run_acc("stats", cache="mongodb://127.0.0.1/acc")
    message = one_line_error(result, 2)
    assert "pip install acc-backend-mongo" in message
