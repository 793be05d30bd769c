"""What a cache holds, counted and filtered: the data of ``acc stats``, ``urls``, ``prune``.

Pure functions over :class:`~acc.core.models.StoredEntry` values (what
:meth:`acc.core.CacheBackend.entries` yields): no I/O, the time passed in.

Definitions the commands and their documentation share:

* **stale**: past its freshness (``expires``); still kept when it can be revalidated or
  served stale, so a stale entry is not yet a dead one;
* **expired**: past the time storage keeps it (past freshness, and past the
  revalidation and stale windows): ``acc prune`` always removes these, as
  ``CacheBackend.delete(expired=True)`` does.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from datetime import datetime
from fnmatch import fnmatchcase
from typing import Any
from urllib.parse import urlsplit

import attrs

from acc.core.keys import REDACTED, normalize_url, redact_headers
from acc.core.models import CachedResponse, StoredEntry

__all__ = ["Filter", "Inventory", "describe", "plan_prune", "public_headers"]


def _host(url: str) -> str:
    parts = urlsplit(url)
    return (parts.hostname or "") + (f":{parts.port}" if parts.port else "")


def _type(entry: CachedResponse) -> str:
    value = entry.header("Content-Type")
    return value.split(";")[0].strip().lower() if value else "(none)"


@attrs.define
class Inventory:
    """Counts over the entries of a cache."""

    entries: int = 0
    bytes: int = 0
    body_bytes: int = 0
    stale: int = 0
    expired: int = 0
    oldest: datetime | None = None
    newest: datetime | None = None
    by_host: Counter[str] = attrs.field(factory=Counter)
    by_status: Counter[str] = attrs.field(factory=Counter)
    by_type: Counter[str] = attrs.field(factory=Counter)
    bytes_by_host: Counter[str] = attrs.field(factory=Counter)
    bytes_by_status: Counter[str] = attrs.field(factory=Counter)
    bytes_by_type: Counter[str] = attrs.field(factory=Counter)

    def add(self, stored: StoredEntry, now: datetime) -> None:
        """Count one entry."""
        entry = stored.entry
        self.entries += 1
        self.bytes += stored.size
        self.body_bytes += len(entry.body)
        self.stale += entry.is_expired(now)
        self.expired += stored.expired
        created = entry.created_at
        if self.oldest is None or created < self.oldest:
            self.oldest = created
        if self.newest is None or created > self.newest:
            self.newest = created
        for counts, sizes, label in (
            (self.by_host, self.bytes_by_host, _host(entry.url)),
            (self.by_status, self.bytes_by_status, str(entry.status)),
            (self.by_type, self.bytes_by_type, _type(entry)),
        ):
            counts[label] += 1
            sizes[label] += stored.size

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""

        def groups(counts: Counter[str], sizes: Counter[str]) -> list[dict[str, Any]]:
            return [
                {"name": name, "entries": count, "bytes": sizes[name]}
                for name, count in counts.most_common()
            ]

        return {
            "entries": self.entries,
            "bytes": self.bytes,
            "body_bytes": self.body_bytes,
            "stale": self.stale,
            "expired": self.expired,
            "oldest": None if self.oldest is None else self.oldest.isoformat(),
            "newest": None if self.newest is None else self.newest.isoformat(),
            "by_host": groups(self.by_host, self.bytes_by_host),
            "by_status": groups(self.by_status, self.bytes_by_status),
            "by_content_type": groups(self.by_type, self.bytes_by_type),
        }


@attrs.frozen
class Filter:
    """Which entries a listing or a removal selects (every given test must pass)."""

    urls: frozenset[str] = frozenset()
    host: str | None = None
    glob: str | None = None
    statuses: frozenset[int] = frozenset()
    method: str | None = None
    stale: bool = False
    expired: bool = False

    @classmethod
    def build(
        cls,
        *,
        urls: Iterable[str] = (),
        host: str | None = None,
        glob: str | None = None,
        statuses: Iterable[int] = (),
        method: str | None = None,
        stale: bool = False,
        expired: bool = False,
    ) -> Filter:
        """A filter; URLs are compared in their normal form."""
        return cls(
            urls=frozenset(normalize_url(u) for u in urls),
            host=host.lower() if host else None,
            glob=glob,
            statuses=frozenset(statuses),
            method=method.upper() if method else None,
            stale=stale,
            expired=expired,
        )

    def __call__(self, stored: StoredEntry, now: datetime) -> bool:
        """Whether ``stored`` is selected."""
        entry = stored.entry
        if self.urls and normalize_url(entry.url) not in self.urls:
            return False
        if self.host is not None:
            host = (urlsplit(entry.url).hostname or "").lower()
            if host != self.host and _host(entry.url).lower() != self.host:
                return False
        if self.glob is not None and not fnmatchcase(entry.url, self.glob):
            return False
        if self.statuses and entry.status not in self.statuses:
            return False
        if self.method is not None and entry.method != self.method:
            return False
        if self.stale and not entry.is_expired(now):
            return False
        return not self.expired or stored.expired


def public_headers(entry: CachedResponse) -> dict[str, list[list[str]]]:
    """The response and request headers, with every credential redacted.

    Request headers are stored redacted already; they are redacted again here, and the
    value of each ``Set-Cookie`` (a session's credential) is hidden, its name kept.
    """
    response = []
    for name, value in entry.headers:
        if name.lower() == "set-cookie":
            cookie = value.split("=", 1)[0].strip()
            value = f"{cookie}={REDACTED}"
        response.append([name, value])
    return {
        "response": response,
        "request": [[n, v] for n, v in redact_headers(entry.request_headers, frozenset())],
    }


def describe(stored: StoredEntry, now: datetime) -> dict[str, Any]:
    """One entry's metadata, JSON-ready, without its body or any credential."""
    entry = stored.entry
    return {
        "url": entry.url,
        "method": entry.method,
        "status": entry.status,
        "reason": entry.reason,
        "key": stored.key,
        "size": stored.size,
        "body_bytes": len(entry.body),
        "content_type": _type(entry),
        "created_at": entry.created_at.isoformat(),
        "age": round((now - entry.created_at).total_seconds(), 3),
        "expires": None if entry.expires is None else entry.expires.isoformat(),
        "stale": entry.is_expired(now),
        "expired": stored.expired,
        "validators": {"etag": entry.etag, "last_modified": entry.last_modified},
        "redirects": [hop.url for hop in entry.history],
    }


@attrs.frozen
class PrunePlan:
    """What ``acc prune`` removes, and why."""

    keys: tuple[str, ...]
    bytes: int
    expired: int
    older: int
    over_budget: int
    kept: int
    kept_bytes: int


def plan_prune(
    entries: Sequence[StoredEntry],
    *,
    now: datetime,
    older_than: float | None = None,
    max_bytes: int | None = None,
) -> PrunePlan:
    """Choose the entries to remove (expired, too old, then the oldest over budget).

    Expired ones first; then those stored more than ``older_than`` seconds ago; then
    the oldest of the rest until what remains fits in ``max_bytes``.
    """
    doomed: list[StoredEntry] = []
    expired = older = over = 0
    kept: list[StoredEntry] = []
    for stored in entries:
        if stored.expired:
            expired += 1
            doomed.append(stored)
        elif (
            older_than is not None and (now - stored.entry.created_at).total_seconds() > older_than
        ):
            older += 1
            doomed.append(stored)
        else:
            kept.append(stored)
    total = sum(s.size for s in kept)
    if max_bytes is not None and total > max_bytes:
        kept.sort(key=lambda s: s.entry.created_at)
        remaining: list[StoredEntry] = []
        for index, stored in enumerate(kept):
            if total <= max_bytes:
                remaining.extend(kept[index:])
                break
            doomed.append(stored)
            total -= stored.size
            over += 1
        kept = remaining
    return PrunePlan(
        keys=tuple(s.key for s in doomed),
        bytes=sum(s.size for s in doomed),
        expired=expired,
        older=older,
        over_budget=over,
        kept=len(kept),
        kept_bytes=sum(s.size for s in kept),
    )
