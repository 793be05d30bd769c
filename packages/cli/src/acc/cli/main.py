"""The ``acc`` command: see, explain, prune, move and measure any acc cache.

Every command takes the cache by URL (``--cache`` or ``ACC_CACHE_URL``), so it works on
every installed backend; every command that prints data has ``--json``. The commands
only translate: the explanations come from :meth:`acc.core.CacheBackend.explain`, the
entries from :meth:`~acc.core.CacheBackend.entries`, the formats from
:mod:`acc.core.transfer`, the requests from :class:`acc.sessions.aiohttp.CachedSession`.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import AsyncIterator, Callable, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar

import aiohttp
import click
from rich.table import Table
from rich.text import Text

from acc.cli import __version__
from acc.cli.inventory import Filter, Inventory, describe, plan_prune, public_headers
from acc.cli.runtime import (
    CACHE_ENV,
    Failure,
    Interrupted,
    Interrupts,
    atomic_target,
    default_cache_url,
    fail,
    open_cache,
    parse_duration,
    parse_size,
    progress,
    run,
    stderr,
    stdout,
    write_stdout_bytes,
)
from acc.cli.transfer import export_cache, import_cache
from acc.core import AccError, CacheBackend, CachedResponse, CacheRequest
from acc.core.events import CacheEvent
from acc.core.models import StoredEntry
from acc.sessions.aiohttp import CachedSession
from acc.sessions.aiohttp.request import describe_request

__all__ = ["cli", "main"]

_F = TypeVar("_F", bound=Callable[..., Any])

DELETE_BATCH = 200
"""Keys deleted per storage call by ``rm`` and ``prune`` (Ctrl-C waits for one batch)."""


class AccGroup(click.Group):
    """A click group whose errors are one line and a status (see :mod:`acc.cli.runtime`)."""

    def main(self, *args: Any, **kwargs: Any) -> Any:
        """Run the command; report any error in one line and exit with its status."""
        kwargs["standalone_mode"] = False
        try:
            result = super().main(*args, **kwargs)
        except click.exceptions.Exit as exc:
            sys.exit(exc.exit_code)
        except click.UsageError as exc:
            where = f" (see: acc {exc.ctx.info_name} --help)" if exc.ctx and exc.ctx.parent else ""
            _error(f"{exc.format_message()}{where}", 2)
        except click.ClickException as exc:
            _error(exc.format_message(), exc.exit_code)
        except (click.Abort, Interrupted):
            stderr.print("acc: interrupted", highlight=False)
            sys.exit(130)
        except Failure as exc:
            _error(str(exc), exc.status)
        except AccError as exc:
            _error(f"the cache failed: {exc}", 1)
        except aiohttp.ClientError as exc:
            _error(f"the request failed: {exc}", 1)
        except OSError as exc:
            _error(str(exc), 1)
        sys.exit(result if isinstance(result, int) else 0)


def _error(message: str, status: int) -> None:
    line = " ".join(str(message).split())
    stderr.print(f"acc: error: {line}", highlight=False, markup=False, soft_wrap=True)
    sys.exit(status)


def json_option(function: _F) -> _F:
    """The ``--json`` flag every command that prints data has."""
    return click.option("--json", "as_json", is_flag=True, help="Print JSON instead of text.")(
        function
    )


def _print_json(value: Any) -> None:
    click.echo(json.dumps(value, indent=2, ensure_ascii=False, default=str))


def _cache_url(ctx: click.Context) -> str:
    url: str | None = ctx.obj
    return url or default_cache_url()


@click.group(cls=AccGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--cache",
    "cache_url",
    envvar=CACHE_ENV,
    metavar="URL",
    help=(
        "The cache, by URL: sqlite:///path.db, redis://host:6379/0, mongodb://..., "
        f"dynamodb://..., memory:// (env: {CACHE_ENV}). Default: {default_cache_url()}, "
        "a per-user SQLite file in the platform's cache folder."
    ),
)
@click.version_option(__version__, prog_name="acc")
@click.pass_context
def cli(ctx: click.Context, cache_url: str | None) -> None:
    """See, explain, prune, move and measure an acc HTTP cache."""
    ctx.obj = cache_url


def main() -> None:
    """The console script ``acc``."""
    cli.main(prog_name="acc")


# -- shared helpers ------------------------------------------------------------------------------


def _headers(values: Sequence[str]) -> list[tuple[str, str]]:
    pairs = []
    for value in values:
        name, sep, rest = value.partition(":")
        if not sep or not name.strip():
            fail(f"-H {value!r}: expected 'Name: value'")
        pairs.append((name.strip(), rest.strip()))
    return pairs


def _check_url(url: str) -> None:
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        fail(f"{url!r} is not an http:// or https:// URL")


def _seconds(value: float) -> str:
    value = abs(value)
    if value < 120:
        return f"{value:.0f} s"
    if value < 7200:
        return f"{value / 60:.0f} min"
    if value < 172800:
        return f"{value / 3600:.1f} h"
    return f"{value / 86400:.1f} d"


def _bytes(value: int) -> str:
    size = float(value)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{size:,.0f} {unit}" if unit == "B" else f"{size:,.1f} {unit}"
        size /= 1024
    return f"{value} B"


def _expiry(expires: datetime | None, now: datetime) -> str:
    if expires is None:
        return "never expires"
    delta = (expires - now).total_seconds()
    return f"expires in {_seconds(delta)}" if delta > 0 else f"stale for {_seconds(delta)}"


async def _scan(
    backend: CacheBackend, description: str, interrupts: Interrupts
) -> AsyncIterator[StoredEntry]:
    """The entries, with a progress bar on a terminal."""
    total = await backend.responses.size()
    with progress() as bar:
        task = bar.add_task(description, total=total)
        async for stored in backend.entries():
            interrupts.check()
            bar.advance(task)
            yield stored


async def _delete(
    backend: CacheBackend, keys: Sequence[str], description: str, interrupts: Interrupts
) -> int:
    """Delete ``keys`` in batches, each whole even on Ctrl-C; then sweep the aliases."""
    deleted = 0
    with progress() as bar:
        task = bar.add_task(description, total=len(keys))
        for start in range(0, len(keys), DELETE_BATCH):
            batch = keys[start : start + DELETE_BATCH]
            with interrupts.batch():
                deleted += await backend.delete(*batch)
            bar.advance(task, len(batch))
    await backend.sweep_aliases()
    return deleted


# -- get -----------------------------------------------------------------------------------------


def _request_options(
    expire_after: str | None, refresh: bool, force_refresh: bool, only_if_cached: bool
) -> dict[str, Any]:
    options: dict[str, Any] = {
        "refresh": refresh,
        "force_refresh": force_refresh,
        "only_if_cached": only_if_cached,
    }
    if expire_after is not None:
        options["expire_after"] = parse_duration(expire_after, "--expire-after")
    return options


def request_options(function: _F) -> _F:
    """The per-request options of ``get`` and ``explain``."""
    for option in reversed(
        [
            click.option("-X", "--method", default="GET", show_default=True, help="The method."),
            click.option(
                "-H",
                "--header",
                "headers",
                multiple=True,
                metavar="'NAME: VALUE'",
                help="A request header (repeatable).",
            ),
            click.option(
                "--expire-after",
                metavar="DURATION",
                help="Expiration for this response (90, 15m, 2h, 7d).",
            ),
            click.option(
                "--refresh", is_flag=True, help="Revalidate the stored entry before using it."
            ),
            click.option(
                "--force-refresh",
                is_flag=True,
                help="Ignore the stored entry; fetch and store anew.",
            ),
            click.option(
                "--only-if-cached", is_flag=True, help="Never use the network: a miss is a 504."
            ),
        ]
    ):
        function = option(function)
    return function


@cli.command()
@click.argument("urls", nargs=-1, required=True, metavar="URL...")
@request_options
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write the body to FILE instead of standard output (one URL only).",
)
@json_option
@click.pass_context
def get(
    ctx: click.Context,
    urls: tuple[str, ...],
    method: str,
    headers: tuple[str, ...],
    expire_after: str | None,
    refresh: bool,
    force_refresh: bool,
    only_if_cached: bool,
    output: Path | None,
    as_json: bool,
) -> None:
    """Fetch URLs through the cache, like a caching curl.

    For each URL it prints, on standard error, the status, how the cache answered (hit,
    miss, revalidated, stale; whether a miss was stored, and why not), the age and the
    expiry; then the body, on standard output or into -o FILE.
    """
    if output is not None and len(urls) > 1:
        fail("-o/--output takes one URL")
    for url in urls:
        _check_url(url)
    pairs = _headers(headers)
    options = _request_options(expire_after, refresh, force_refresh, only_if_cached)
    url_of_cache = _cache_url(ctx)

    async def go(interrupts: Interrupts) -> list[dict[str, Any]]:
        events: list[CacheEvent] = []
        reports = []
        backend = open_cache(url_of_cache)
        backend.add_listener(events.append)
        async with CachedSession(cache=backend) as session:
            for url in urls:
                events.clear()
                try:
                    response = await session.request(method, url, headers=pairs, **options)
                except aiohttp.ClientConnectionError as exc:
                    raise Failure(f"cannot reach {url}: {exc}", 1) from exc
                body = await response.read()
                reports.append(_get_report(backend, url, method, response, body, events))
                if output is not None:
                    target = atomic_target(output)
                    try:
                        target.write_bytes(body)
                        os.replace(target, output)
                    finally:
                        target.unlink(missing_ok=True)
                if not as_json:
                    _print_get_line(reports[-1])
                    if output is None:
                        write_stdout_bytes(body)
        return reports

    reports = run(go)
    if as_json:
        _print_json(reports if len(reports) > 1 else reports[0])


def _get_report(
    backend: CacheBackend,
    url: str,
    method: str,
    response: Any,
    body: bytes,
    events: list[CacheEvent],
) -> dict[str, Any]:
    now = backend.now()
    decided = next((e for e in events if e.kind not in ("invalidation", "error")), None)
    if response.from_cache:
        result = "revalidated" if response.revalidated else ("stale" if response.stale else "hit")
    elif decided is not None and decided.kind == "gateway_timeout":
        result = "504"
    elif decided is not None and decided.kind == "bypass":
        result = "bypass"
    else:
        result = "miss"
    created = getattr(response, "created_at", None)
    expires = getattr(response, "expires", None)
    stored = decided.stored if decided is not None and decided.kind == "miss" else None
    return {
        "url": url,
        "method": method.upper(),
        "status": response.status,
        "reason": response.reason,
        "result": result,
        "stored": stored,
        "why": decided.reason if decided is not None else "",
        "age": None
        if created is None or not response.from_cache
        else round((now - created).total_seconds(), 3),
        "expires": None if expires is None or stored is False else expires.isoformat(),
        "expires_in": None
        if expires is None or stored is False
        else round((expires - now).total_seconds(), 3),
        "cache_key": response.cache_key,
        "body_bytes": len(body),
        "headers": [[k, v] for k, v in response.headers.items()],
    }


def _print_get_line(report: dict[str, Any]) -> None:
    colour = {"hit": "green", "revalidated": "green", "stale": "yellow"}.get(
        report["result"], "red"
    )
    text = Text()
    text.append(f"{report['status']} {report['reason']}  ", style="bold")
    text.append(report["result"], style=f"bold {colour}")
    if report["result"] == "miss":
        text.append(
            " (stored)"
            if report["stored"]
            else f" (not stored: {report['why'].removeprefix('not stored: ')})"
        )
    if report["age"] is not None:
        text.append(f"  age {_seconds(report['age'])}")
    if report["expires_in"] is not None:
        left = report["expires_in"]
        text.append(
            "  " + (f"expires in {_seconds(left)}" if left > 0 else f"stale for {_seconds(left)}")
        )
    elif (
        report["result"] in ("hit", "miss", "revalidated", "stale")
        and report["stored"] is not False
    ):
        text.append("  never expires")
    text.append(f"  {report['method']} {report['url']}", style="dim")
    stderr.print(text, highlight=False)


# -- explain -------------------------------------------------------------------------------------


@cli.command()
@click.argument("url")
@request_options
@click.option(
    "--offline",
    is_flag=True,
    help="Send nothing: without a probe, whether a response would be stored is told as "
    "what it must be.",
)
@json_option
@click.pass_context
def explain(
    ctx: click.Context,
    url: str,
    method: str,
    headers: tuple[str, ...],
    expire_after: str | None,
    refresh: bool,
    force_refresh: bool,
    only_if_cached: bool,
    offline: bool,
    as_json: bool,
) -> None:
    """Tell what the cache would do for a request now, and why, step by step.

    Nothing is stored or deleted. When the cache would go to the network, the request is
    sent once (unless --offline) to tell whether its response would be stored.
    """
    _check_url(url)
    pairs = _headers(headers)
    options = _request_options(expire_after, refresh, force_refresh, only_if_cached)
    url_of_cache = _cache_url(ctx)

    async def go(interrupts: Interrupts) -> Any:
        async with open_cache(url_of_cache) as backend, aiohttp.ClientSession() as client:
            request = describe_request(client, method, url, headers=pairs)

            async def probe(sent: CacheRequest) -> CachedResponse:
                try:
                    async with client.request(
                        sent.method, sent.url, headers=list(sent.headers)
                    ) as answer:
                        body = await answer.read()
                        return CachedResponse(
                            status=answer.status,
                            reason=answer.reason or "",
                            url=str(answer.url),
                            method=sent.method,
                            headers=tuple(answer.headers.items()),
                            body=body,
                        )
                except aiohttp.ClientConnectionError as exc:
                    raise Failure(f"cannot reach {url}: {exc}", 1) from exc

            return await backend.explain(request, probe=None if offline else probe, **options)

    explanation = run(go)
    if as_json:
        _print_json(explanation.as_dict())
        return
    colour = {"use": "green", "stale-while-revalidate": "yellow", "revalidate": "yellow"}.get(
        explanation.decision, "red"
    )
    title = Text()
    title.append(f"{explanation.method} {explanation.url}\n", style="bold")
    title.append("→ ")
    title.append(explanation.summary, style=colour)
    stdout.print(title, highlight=False)
    table = Table(show_header=True, header_style="bold", expand=False)
    table.add_column("#", justify="right")
    table.add_column("step")
    table.add_column("finding")
    table.add_column("code", style="cyan")
    table.add_column("decided by", style="magenta")
    for number, step in enumerate(explanation.steps, 1):
        table.add_row(str(number), step.name, step.text, step.code, step.source)
    stdout.print(table)


# -- stats, urls, show ---------------------------------------------------------------------------


@cli.command()
@json_option
@click.pass_context
def stats(ctx: click.Context, as_json: bool) -> None:
    """Entries, bytes, stale and expired entries, oldest and newest, by host, status and type."""
    url_of_cache = _cache_url(ctx)

    async def go(interrupts: Interrupts) -> tuple[Inventory, int, str]:
        async with open_cache(url_of_cache) as backend:
            inventory = Inventory()
            now = backend.now()
            async for stored in _scan(backend, "Reading entries", interrupts):
                inventory.add(stored, now)
            return inventory, await backend.redirects.size(), repr(backend)

    inventory, aliases, name = run(go)
    if as_json:
        _print_json({"cache": name, **inventory.as_dict(), "aliases": aliases})
        return
    summary = Table(title=f"acc cache {name}", show_header=False, title_justify="left")
    summary.add_column(style="bold")
    summary.add_column(justify="right")
    summary.add_row("entries", f"{inventory.entries:,}")
    summary.add_row("bytes", f"{_bytes(inventory.bytes)} ({inventory.bytes:,})")
    summary.add_row("body bytes", _bytes(inventory.body_bytes))
    summary.add_row("stale (past freshness)", f"{inventory.stale:,}")
    summary.add_row("expired (prune removes)", f"{inventory.expired:,}")
    summary.add_row("redirect aliases, vary records", f"{aliases:,}")
    summary.add_row(
        "oldest",
        "-" if inventory.oldest is None else inventory.oldest.isoformat(timespec="seconds"),
    )
    summary.add_row(
        "newest",
        "-" if inventory.newest is None else inventory.newest.isoformat(timespec="seconds"),
    )
    stdout.print(summary)
    for title, counts, sizes in (
        ("by host", inventory.by_host, inventory.bytes_by_host),
        ("by status", inventory.by_status, inventory.bytes_by_status),
        ("by content type", inventory.by_type, inventory.bytes_by_type),
    ):
        table = Table(title=title, title_justify="left")
        table.add_column(title.removeprefix("by "))
        table.add_column("entries", justify="right")
        table.add_column("bytes", justify="right")
        for label, count in counts.most_common():
            table.add_row(label, f"{count:,}", _bytes(sizes[label]))
        stdout.print(table)


def selection_options(function: _F) -> _F:
    """The filters of ``urls`` (and, in part, ``rm``)."""
    for option in reversed(
        [
            click.option("--host", help="Only entries of this host (name, or name:port)."),
            click.option("--glob", help="Only entries whose URL matches this glob (* and ?)."),
            click.option(
                "--status",
                "statuses",
                type=int,
                multiple=True,
                help="Only this status (repeatable).",
            ),
            click.option("--stale", is_flag=True, help="Only entries past their freshness."),
            click.option(
                "--expired", is_flag=True, help="Only entries storage need not keep any more."
            ),
        ]
    ):
        function = option(function)
    return function


@cli.command()
@selection_options
@json_option
@click.pass_context
def urls(
    ctx: click.Context,
    host: str | None,
    glob: str | None,
    statuses: tuple[int, ...],
    stale: bool,
    expired: bool,
    as_json: bool,
) -> None:
    """List the stored entries: URL, method, status, size, age and expiry."""
    chosen = Filter.build(host=host, glob=glob, statuses=statuses, stale=stale, expired=expired)
    url_of_cache = _cache_url(ctx)

    async def go(interrupts: Interrupts) -> tuple[list[dict[str, Any]], datetime]:
        async with open_cache(url_of_cache) as backend:
            now = backend.now()
            found = [
                describe(stored, now)
                async for stored in _scan(backend, "Reading entries", interrupts)
                if chosen(stored, now)
            ]
            return sorted(found, key=lambda d: (d["url"], d["method"])), now

    found, now = run(go)
    if as_json:
        _print_json(found)
        return
    table = Table(show_header=True, header_style="bold")
    table.add_column("url", overflow="fold")
    table.add_column("method")
    for column in ("status", "size", "age"):
        table.add_column(column, justify="right")
    table.add_column("expiry")
    for item in found:
        expires = None if item["expires"] is None else datetime.fromisoformat(item["expires"])
        table.add_row(
            item["url"],
            item["method"],
            str(item["status"]),
            _bytes(item["size"]),
            _seconds(item["age"]),
            _expiry(expires, now),
        )
    stdout.print(table)
    stderr.print(f"{len(found):,} entries", highlight=False)


@cli.command()
@click.argument("url")
@click.option("-X", "--method", help="Only entries of this method.")
@json_option
@click.pass_context
def show(ctx: click.Context, url: str, method: str | None, as_json: bool) -> None:
    """Show the stored metadata and headers of a URL's entries (never a credential)."""
    _check_url(url)
    chosen = Filter.build(urls=[url], method=method)
    url_of_cache = _cache_url(ctx)

    async def go(interrupts: Interrupts) -> list[dict[str, Any]]:
        async with open_cache(url_of_cache) as backend:
            now = backend.now()
            return [
                {**describe(stored, now), "headers": public_headers(stored.entry)}
                async for stored in _scan(backend, "Looking", interrupts)
                if chosen(stored, now)
            ]

    found = run(go)
    if not found:
        raise Failure(f"no entry is stored for {url}", 1)
    if as_json:
        _print_json(found)
        return
    for item in found:
        table = Table(
            title=f"{item['method']} {item['url']}", show_header=False, title_justify="left"
        )
        table.add_column(style="bold")
        table.add_column()
        for name in (
            "status",
            "key",
            "size",
            "body_bytes",
            "content_type",
            "created_at",
            "age",
            "expires",
            "stale",
            "expired",
        ):
            table.add_row(name, str(item[name]))
        table.add_row("etag", str(item["validators"]["etag"]))
        table.add_row("last-modified", str(item["validators"]["last_modified"]))
        for hop in item["redirects"]:
            table.add_row("redirected from", hop)
        for name, value in item["headers"]["response"]:
            table.add_row(f"< {name}", value)
        for name, value in item["headers"]["request"]:
            table.add_row(f"> {name}", value)
        stdout.print(table)


# -- rm, prune, vacuum ---------------------------------------------------------------------------


@cli.command()
@click.argument("targets", nargs=-1, metavar="[URL]...")
@click.option("--glob", help="Remove entries whose URL matches this glob.")
@click.option("--host", help="Remove every entry of this host.")
@click.option("--dry-run", is_flag=True, help="Say what would go; remove nothing.")
@json_option
@click.pass_context
def rm(
    ctx: click.Context,
    targets: tuple[str, ...],
    glob: str | None,
    host: str | None,
    dry_run: bool,
    as_json: bool,
) -> None:
    """Remove the entries of URLs (every method and variant), of a glob, or of a host."""
    if not targets and glob is None and host is None:
        fail("give URLs, --glob or --host")
    for url in targets:
        _check_url(url)
    chosen = Filter.build(urls=targets, glob=glob, host=host)
    url_of_cache = _cache_url(ctx)

    async def go(interrupts: Interrupts) -> dict[str, Any]:
        async with open_cache(url_of_cache) as backend:
            now = backend.now()
            doomed = [
                stored
                async for stored in _scan(backend, "Selecting", interrupts)
                if chosen(stored, now)
            ]
            keys = [s.key for s in doomed]
            removed = 0 if dry_run else await _delete(backend, keys, "Removing", interrupts)
            return {
                "removed": removed,
                "selected": len(keys),
                "bytes": sum(s.size for s in doomed),
                "dry_run": dry_run,
                "urls": sorted({s.entry.url for s in doomed}),
            }

    report = run(go)
    if as_json:
        _print_json(report)
    elif dry_run:
        stdout.print(
            f"would remove {report['selected']:,} entries ({_bytes(report['bytes'])})",
            highlight=False,
        )
    else:
        stdout.print(
            f"removed {report['removed']:,} entries ({_bytes(report['bytes'])})", highlight=False
        )


@cli.command()
@click.option(
    "--older-than", metavar="DURATION", help="Also remove entries stored longer ago (15m, 2h, 7d)."
)
@click.option(
    "--max-bytes",
    metavar="SIZE",
    help="Then remove the oldest entries until the rest fit (500k, 10MB, 1GiB).",
)
@click.option("--dry-run", is_flag=True, help="Say what would go; remove nothing.")
@json_option
@click.pass_context
def prune(
    ctx: click.Context,
    older_than: str | None,
    max_bytes: str | None,
    dry_run: bool,
    as_json: bool,
) -> None:
    """Remove expired entries; with options, old ones and the oldest over a byte budget.

    Expired means past the time storage keeps an entry (its freshness, and the time it is
    kept to be revalidated or served stale). Deletion goes in batches; Ctrl-C lets the
    current batch finish, then stops. --dry-run counts the entries it can list: rows a
    store already hides as expired are removed by prune, but not listed.
    """
    age = None if older_than is None else parse_duration(older_than, "--older-than")
    budget = None if max_bytes is None else parse_size(max_bytes, "--max-bytes")
    url_of_cache = _cache_url(ctx)

    async def go(interrupts: Interrupts) -> dict[str, Any]:
        async with open_cache(url_of_cache) as backend:
            native = 0
            if not dry_run:
                # What storage already hides as expired (SQLite, Redis, Mongo rows past
                # their expiry) is not listed; one native sweep removes it.
                with interrupts.batch():
                    native = await backend.delete(expired=True)
            now = backend.now()
            entries = [stored async for stored in _scan(backend, "Scanning", interrupts)]
            plan = plan_prune(entries, now=now, older_than=age, max_bytes=budget)
            removed = native
            if not dry_run and plan.keys:
                removed += await _delete(backend, plan.keys, "Pruning", interrupts)
            return {
                "removed": removed,
                "selected": len(plan.keys) + native,
                "bytes": plan.bytes,
                "expired": plan.expired + native,
                "older_than": plan.older,
                "over_budget": plan.over_budget,
                "kept": plan.kept,
                "kept_bytes": plan.kept_bytes,
                "dry_run": dry_run,
            }

    report = run(go)
    if as_json:
        _print_json(report)
        return
    verb = "would remove" if dry_run else "removed"
    count = report["selected"] if dry_run else report["removed"]
    stdout.print(
        f"{verb} {count:,} entries ({_bytes(report['bytes'])}): {report['expired']:,} expired, "
        f"{report['older_than']:,} older than asked, {report['over_budget']:,} over the byte "
        f"budget; {report['kept']:,} entries ({_bytes(report['kept_bytes'])}) kept",
        highlight=False,
    )


@cli.command()
@json_option
@click.pass_context
def vacuum(ctx: click.Context, as_json: bool) -> None:
    """Give the space of deleted entries back, where the backend can (SQLite: VACUUM)."""
    url_of_cache = _cache_url(ctx)

    def on_disk(backend: CacheBackend) -> int | None:
        path = getattr(backend, "db_path", None)  # file-based backends say where they are
        if not isinstance(path, Path) or not path.exists():
            return None
        files = [path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")]
        return sum(f.stat().st_size for f in files if f.exists())

    async def go(interrupts: Interrupts) -> dict[str, Any]:
        async with open_cache(url_of_cache) as backend:
            await backend.responses.size()  # opens the store
            before = on_disk(backend)
            with interrupts.batch():
                compacted = await backend.compact()
            return {
                "compacted": compacted,
                "bytes_before": before,
                "bytes_after": on_disk(backend),
                "cache": repr(backend),
            }

    report = run(go)
    if as_json:
        _print_json(report)
    elif not report["compacted"]:
        stdout.print(
            f"{report['cache']} cannot compact: its storage manages its own space", highlight=False
        )
    elif report["bytes_before"] is not None:
        stdout.print(
            f"compacted {report['cache']}: "
            f"{_bytes(report['bytes_before'])} -> {_bytes(report['bytes_after'])}",
            highlight=False,
        )
    else:
        stdout.print(f"compacted {report['cache']}", highlight=False)


# -- export, import ------------------------------------------------------------------------------


@cli.command(name="export")
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    help="The file (default: standard output). Written whole or not at all.",
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["jsonl", "har"]),
    help="jsonl (acc's own, lossless) or har (HAR 1.2). "
    "Default: from the file's suffix, else jsonl.",
)
@click.option("--include-expired", is_flag=True, help="Also export entries storage need not keep.")
@json_option
@click.pass_context
def export_command(
    ctx: click.Context, output: Path | None, fmt: str | None, include_expired: bool, as_json: bool
) -> None:
    """Export the cache as JSON Lines (lossless) or HAR 1.2 (for HAR viewers)."""
    if fmt is None:
        fmt = "har" if output is not None and output.suffix.lower() == ".har" else "jsonl"
    url_of_cache = _cache_url(ctx)

    async def go(interrupts: Interrupts) -> dict[str, Any]:
        async with open_cache(url_of_cache) as backend:
            return await export_cache(backend, output, fmt, include_expired, interrupts)

    report = run(go)
    if as_json:
        _print_json(report)
    elif output is not None:
        stderr.print(
            f"exported {report['entries']:,} entries and {report['aliases']:,} aliases "
            f"to {output} ({fmt})",
            highlight=False,
        )


@cli.command(name="import")
@click.argument("source", metavar="FILE")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["jsonl", "har"]),
    help="Default: from the suffix (.har, .jsonl), else from the first line.",
)
@click.option(
    "--expire-after",
    metavar="DURATION",
    help="Freshness of HAR entries that carry no acc expiry (default: never expire).",
)
@click.option(
    "--batch-size",
    type=click.IntRange(1, 100_000),
    default=100,
    show_default=True,
    help="Records written per batch; Ctrl-C lets a batch finish, never half-applies one.",
)
@json_option
@click.pass_context
def import_command(
    ctx: click.Context,
    source: str,
    fmt: str | None,
    expire_after: str | None,
    batch_size: int,
    as_json: bool,
) -> None:
    """Import a JSON Lines export or a HAR file (FILE, or - for standard input)."""
    fresh = None if expire_after is None else parse_duration(expire_after, "--expire-after")
    if source != "-" and not Path(source).is_file():
        fail(f"{source}: no such file")
    url_of_cache = _cache_url(ctx)

    async def go(interrupts: Interrupts) -> dict[str, Any]:
        async with open_cache(url_of_cache) as backend:
            return await import_cache(backend, source, fmt, fresh, batch_size, interrupts)

    report = run(go)
    if as_json:
        _print_json(report)
    else:
        skipped = ", ".join(f"{n} {why}" for why, n in report["skipped_reasons"].items())
        stderr.print(
            f"imported {report['entries']:,} entries and {report['aliases']:,} aliases"
            + (f"; skipped {report['skipped']:,} ({skipped})" if report["skipped"] else ""),
            highlight=False,
        )


# -- demo ----------------------------------------------------------------------------------------


@cli.command()
@click.argument("path", required=False, type=click.Path(dir_okay=False))
def demo(path: str | None) -> None:
    """Run the README demo: a slow local API fetched twice through a SQLite cache."""
    from acc.cli.demo import run as run_demo

    run_demo(path)


if __name__ == "__main__":  # pragma: no cover
    main()
