"""Moving entries between caches: acc's JSON Lines records and HAR 1.2.

Two formats, for two jobs:

* **JSON Lines** (acc's own, lossless): one JSON object per line. The first is a header
  (``{"format": "acc-export", "version": 1, ...}``); then ``entry`` records (the key and
  every field of a :class:`~acc.core.CachedResponse`, the body in base64), ``alias``
  records (a redirect alias: a key and the key it points at) and ``vary`` records (the
  headers a key's responses vary on, and its variant keys). Imported into any backend
  with the same key settings, the same requests are hits.
* **HAR 1.2** (the HTTP Archive format of browsers' developer tools): one document whose
  ``log.entries`` are request/response pairs. An export opens in a HAR viewer; acc's
  own facts (the key, the expiry) ride in ``_acc`` fields, which HAR allows. An import
  keys each request as a client would, so a HAR recorded in a browser seeds a cache.

Rules this module keeps:

1. Records are plain JSON values; :func:`entry_to_json` and :func:`entry_from_json` are
   the one mapping of an entry to JSON, structured by cattrs, so a malformed record is a
   :class:`~acc.core.ConfigError` naming what is wrong, never a half-built entry.
2. Writing is raw: an imported entry is stored as it was (its key, its expiry), encoded
   and signed by the target's codec, with the storage expiry the target's settings give
   it; the policy's store decision is not asked again, except that a HAR entry whose
   method or status the target does not cache is skipped (a browser records everything).
3. :func:`apply_records` writes one batch: entries first, then the aliases and vary
   records that lead to them, so a batch applied whole never leaves an alias pointing
   at an entry not yet written. What a batch is, and stopping between batches, is the
   caller's (the ``acc`` command applies each batch whole, even on Ctrl-C).
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import AsyncIterator, Iterable, Mapping
from datetime import datetime, timezone
from typing import Any, Final
from urllib.parse import parse_qsl, urljoin, urlsplit

import attrs
import cattrs

from acc.core._version import __version__
from acc.core.backend import CacheBackend
from acc.core.codec import DecodeError
from acc.core.errors import ConfigError
from acc.core.expiration import NEVER_EXPIRE, ExpirationTime, expires_at
from acc.core.http.policy import entry_storage_expiry
from acc.core.http.vary import VaryRecord, decode_vary_record, encode_vary_record
from acc.core.keys import CacheRequest, redact_headers
from acc.core.models import CachedResponse, RedirectHop

__all__ = [
    "EXPORT_FORMAT",
    "EXPORT_VERSION",
    "ImportCounts",
    "apply_records",
    "entry_from_json",
    "entry_to_json",
    "export_header",
    "export_records",
    "har_creator",
    "har_entry",
    "har_records",
    "read_header",
]

EXPORT_FORMAT: Final = "acc-export"
EXPORT_VERSION: Final = 1
HAR_VERSION: Final = "1.2"

_converter = cattrs.Converter()
_converter.register_unstructure_hook(datetime, lambda value: value.isoformat())
_converter.register_unstructure_hook(bytes, lambda value: base64.b64encode(value).decode("ascii"))


def _structure_datetime(value: Any, _type: type) -> datetime:
    if not isinstance(value, str):
        raise TypeError(f"expected an ISO 8601 date, not {value!r}")
    moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment


def _structure_bytes(value: Any, _type: type) -> bytes:
    if not isinstance(value, str):
        raise TypeError(f"expected base64 text, not {type(value).__name__}")
    return base64.b64decode(value.encode("ascii"), validate=True)


def _structure_str(value: Any, _type: type) -> str:
    if not isinstance(value, str):
        raise TypeError(f"expected a string, not {value!r}")
    return value


def _structure_int(value: Any, _type: type) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"expected an integer, not {value!r}")
    return value


_converter.register_structure_hook(datetime, _structure_datetime)
_converter.register_structure_hook(bytes, _structure_bytes)
_converter.register_structure_hook(str, _structure_str)
_converter.register_structure_hook(int, _structure_int)


def entry_to_json(entry: CachedResponse) -> dict[str, Any]:
    """``entry`` as a JSON-ready dict: every field, dates in ISO 8601, the body in base64."""
    data: dict[str, Any] = _converter.unstructure(entry)
    return data


def entry_from_json(data: object) -> CachedResponse:
    """The entry a dict of :func:`entry_to_json` describes.

    Raises:
        ConfigError: ``data`` is not such a dict (the message says what is wrong).
    """
    try:
        return _converter.structure(data, CachedResponse)
    except (cattrs.BaseValidationError, TypeError, ValueError, binascii.Error) as exc:
        details = (
            "; ".join(cattrs.transform_error(exc))
            if isinstance(exc, cattrs.BaseValidationError)
            else str(exc)
        )
        raise ConfigError("entry", f"not a valid acc entry: {details}") from exc


# -- JSON Lines --------------------------------------------------------------------------------


def export_header(backend: CacheBackend) -> dict[str, Any]:
    """The first record of a JSON Lines export."""
    return {
        "format": EXPORT_FORMAT,
        "version": EXPORT_VERSION,
        "acc_core": __version__,
        "cache": repr(backend),
        "exported_at": backend.now().isoformat(),
    }


def read_header(record: Mapping[str, Any]) -> None:
    """Check the first record of a JSON Lines import.

    Raises:
        ConfigError: It is not an acc export of a version this build reads.
    """
    if record.get("format") != EXPORT_FORMAT:
        raise ConfigError("input", "not an acc export (its first line has no format: acc-export)")
    if record.get("version") != EXPORT_VERSION:
        raise ConfigError(
            "input",
            f"acc export version {record.get('version')!r}; this build reads {EXPORT_VERSION}",
        )


async def export_records(
    backend: CacheBackend, *, include_expired: bool = False
) -> AsyncIterator[dict[str, Any]]:
    """The records of every entry, then of every alias and vary record, of ``backend``.

    Entries storage need not keep any more are left out unless ``include_expired``;
    unreadable ones always are.
    """
    async for stored in backend.entries():
        if stored.expired and not include_expired:
            continue
        yield {"type": "entry", "key": stored.key, "entry": entry_to_json(stored.entry)}
    async for key, value in backend.redirects.items():
        try:  # aliases and vary records are codec records bound to their key
            payload = backend.codec.decode_record(value, key=key)
        except DecodeError:
            continue  # unreadable (corrupt, moved, forged): not exported, like entries
        record = decode_vary_record(payload)
        if record is None:
            yield {"type": "alias", "key": key, "target": payload.decode("utf-8", "replace")}
        else:
            yield {
                "type": "vary",
                "key": key,
                "names": list(record.names),
                "variants": list(record.variants),
            }


@attrs.define
class ImportCounts:
    """What an import did, record by record."""

    entries: int = 0
    aliases: int = 0
    skipped: int = 0
    reasons: dict[str, int] = attrs.field(factory=dict)

    def skip(self, why: str) -> None:
        """Count a record left out, and why."""
        self.skipped += 1
        self.reasons[why] = self.reasons.get(why, 0) + 1

    def add(self, other: ImportCounts) -> None:
        """Add the counts of another batch."""
        self.entries += other.entries
        self.aliases += other.aliases
        self.skipped += other.skipped
        for why, count in other.reasons.items():
            self.reasons[why] = self.reasons.get(why, 0) + count


def _text(record: Mapping[str, Any], name: str) -> str:
    value = record.get(name)
    if not isinstance(value, str) or not value:
        raise ConfigError(
            "input", f"a {record.get('type')} record needs a non-empty string {name!r}"
        )
    return value


async def apply_records(
    backend: CacheBackend, records: Iterable[Mapping[str, Any]]
) -> ImportCounts:
    """Write one batch of JSON Lines records into ``backend`` (rules 2 and 3).

    Raises:
        ConfigError: A malformed record (nothing of the batch is written then).
        BackendError: Storage failed.
    """
    entries: list[tuple[str, CachedResponse]] = []
    links: list[tuple[str, bytes]] = []
    counts = ImportCounts()
    for record in records:
        kind = record.get("type")
        if kind == "entry":
            entries.append((_text(record, "key"), entry_from_json(record.get("entry"))))
        elif kind == "alias":
            links.append((_text(record, "key"), _text(record, "target").encode("utf-8")))
        elif kind == "vary":
            names, variants = record.get("names"), record.get("variants")
            if not isinstance(names, list) or not isinstance(variants, list):
                raise ConfigError("input", "a vary record needs lists 'names' and 'variants'")
            vary = VaryRecord(names=tuple(map(str, names)), variants=tuple(map(str, variants)))
            links.append((_text(record, "key"), encode_vary_record(vary)))
        else:
            raise ConfigError("input", f"unknown record type {kind!r}")
    await _write(backend, entries, counts)
    for key, value in links:
        stored = backend.codec.encode_record(value, key=key)
        await backend.redirects.write(key, stored, expires_at=None)
        counts.aliases += 1
    return counts


async def _write(
    backend: CacheBackend, entries: Iterable[tuple[str, CachedResponse]], counts: ImportCounts
) -> None:
    now = backend.now()
    for key, entry in entries:
        keep = entry_storage_expiry(entry, backend.settings)
        if keep is not None and keep <= now:
            counts.skip("expired")
            continue
        data = backend.codec.encode(entry, key=key)
        await backend.responses.write(
            key, data, expires_at=None if keep is None else keep.timestamp()
        )
        counts.entries += 1


# -- HAR 1.2 -----------------------------------------------------------------------------------

_TEXT_TYPES: Final = ("text/", "application/json", "application/xml", "application/javascript")


def har_creator() -> dict[str, str]:
    """The ``log.creator`` of an export."""
    return {"name": "acc", "version": __version__}


def _pairs(headers: Iterable[tuple[str, str]]) -> list[dict[str, str]]:
    return [{"name": name, "value": value} for name, value in headers]


def _content(entry: CachedResponse) -> dict[str, Any]:
    mime = entry.header("Content-Type") or "x-unknown"
    content: dict[str, Any] = {"size": len(entry.body), "mimeType": mime}
    if mime.lower().startswith(_TEXT_TYPES) or "+json" in mime or "+xml" in mime:
        try:
            content["text"] = entry.body.decode("utf-8")
            return content
        except UnicodeDecodeError:
            pass
    content["text"] = base64.b64encode(entry.body).decode("ascii")
    content["encoding"] = "base64"
    return content


def har_entry(key: str, entry: CachedResponse) -> dict[str, Any]:
    """One entry of ``log.entries`` for a stored entry (credentials stay redacted)."""
    query = [
        {"name": n, "value": v}
        for n, v in parse_qsl(urlsplit(entry.url).query, keep_blank_values=True)
    ]
    location = entry.header("Location") or ""
    return {
        "startedDateTime": entry.created_at.isoformat(),
        "time": 0,
        "request": {
            "method": entry.method,
            "url": entry.url,
            "httpVersion": "HTTP/1.1",
            "cookies": [],
            "headers": _pairs(entry.request_headers),
            "queryString": query,
            "headersSize": -1,
            "bodySize": -1,
        },
        "response": {
            "status": entry.status,
            "statusText": entry.reason,
            "httpVersion": "HTTP/1.1",
            "cookies": [],
            "headers": _pairs(entry.headers),
            "content": _content(entry),
            "redirectURL": location,
            "headersSize": -1,
            "bodySize": len(entry.body),
        },
        "cache": {},
        "timings": {"send": 0, "wait": 0, "receive": 0},
        "_acc": {
            "key": key,
            "expires": None if entry.expires is None else entry.expires.isoformat(),
            "history": [_converter.unstructure(hop) for hop in entry.history],
        },
    }


_DROPPED: Final = frozenset({"content-encoding", "content-length", "transfer-encoding"})


def _har_headers(value: object) -> tuple[tuple[str, str], ...]:
    if not isinstance(value, list):
        return ()
    pairs = []
    for item in value:
        if (
            isinstance(item, dict)
            and isinstance(item.get("name"), str)
            and isinstance(item.get("value"), str)
        ):
            name = item["name"]
            if not name.startswith(":"):  # HTTP/2 pseudo-headers
                pairs.append((name, item["value"]))
    return tuple(pairs)


def _har_body(content: object) -> bytes | None:
    if not isinstance(content, dict):
        return None
    text = content.get("text")
    if not isinstance(text, str):
        return b"" if content.get("size") in (0, None) else None
    if content.get("encoding") == "base64":
        try:
            return base64.b64decode(text, validate=True)
        except (binascii.Error, ValueError):
            return None
    return text.encode("utf-8")


async def har_records(
    backend: CacheBackend,
    document: object,
    *,
    expire_after: ExpirationTime = NEVER_EXPIRE,
) -> AsyncIterator[tuple[str, CachedResponse] | tuple[str, str]]:
    """Read a HAR document and yield what to store, keyed as ``backend`` keys requests.

    Yields ``(key, entry)`` for each response to store, then ``(key, target_key)`` for
    each redirect that leads to a stored response (an alias). A HAR entry keeps its
    ``_acc`` key and expiry when it has them (an acc export); otherwise the request is
    keyed by the method, the URL and the recorded headers (credentials included, as
    acc always keys them), and it is fresh for ``expire_after`` from now. Entries
    skipped: no response (status 0), a method or status the backend does not cache, a
    body the HAR did not record; each is yielded as ``("skip", reason)``.

    Raises:
        ConfigError: ``document`` is not a HAR (no ``log.entries`` list).
    """
    log = document.get("log") if isinstance(document, dict) else None
    items = log.get("entries") if isinstance(log, dict) else None
    if not isinstance(items, list):
        raise ConfigError("input", "not a HAR file: no log.entries list")
    settings = backend.settings
    now = backend.now()
    fresh_until = expires_at(expire_after, now)
    keys_by_url: dict[str, str] = {}
    redirects: list[tuple[str, str, str]] = []  # (key, url, location)
    for item in items:
        if not isinstance(item, dict):
            yield ("skip", "not an entry")
            continue
        request, response = item.get("request"), item.get("response")
        if not isinstance(request, dict) or not isinstance(response, dict):
            yield ("skip", "no request or response")
            continue
        method = str(request.get("method", "GET")).upper()
        url = request.get("url")
        status = response.get("status")
        if not isinstance(url, str) or not isinstance(status, int) or status <= 0:
            yield ("skip", "no response")
            continue
        if method not in settings.allowed_methods:
            yield ("skip", f"method {method} not in allowed_methods")
            continue
        request_headers = _har_headers(request.get("headers"))
        own = item.get("_acc") if isinstance(item.get("_acc"), dict) else None
        key = own.get("key") if own is not None and isinstance(own.get("key"), str) else None
        if key is None:
            key = backend.create_key(CacheRequest(method, url, headers=request_headers))
        location = response.get("redirectURL")
        if 300 <= status < 400 and isinstance(location, str) and location:
            redirects.append((key, url, urljoin(url, location)))
            continue
        if status not in settings.allowed_codes:
            yield ("skip", f"status {status} not in allowed_codes")
            continue
        body = _har_body(response.get("content"))
        if body is None:
            yield ("skip", "body not recorded")
            continue
        headers = [
            (n, v) for n, v in _har_headers(response.get("headers")) if n.lower() not in _DROPPED
        ]
        headers.append(("Content-Length", str(len(body))))
        try:
            created = _structure_datetime(item.get("startedDateTime"), datetime)
        except (TypeError, ValueError):
            created = now
        expires = fresh_until
        history: tuple[RedirectHop, ...] = ()
        if own is not None:
            if "expires" in own:
                expires = (
                    None
                    if own["expires"] is None
                    else _structure_datetime(own["expires"], datetime)
                )
            try:
                history = _converter.structure(own.get("history") or [], tuple[RedirectHop, ...])
            except (cattrs.BaseValidationError, TypeError, ValueError):
                history = ()
        entry = CachedResponse(
            status=status,
            reason=str(response.get("statusText") or ""),
            url=url,
            method=method,
            headers=tuple(headers),
            request_headers=redact_headers(request_headers, settings.ignored_params),
            body=body,
            created_at=created,
            expires=expires,
            history=history,
        )
        keys_by_url.setdefault(url, key)
        yield (key, entry)
    for key, _url, location in redirects:
        target, hops = location, 0
        while target not in keys_by_url and hops < 10:
            follow = next((loc for _k, u, loc in redirects if u == target), None)
            if follow is None:
                break
            target, hops = follow, hops + 1
        if target in keys_by_url:
            yield (key, keys_by_url[target])
        else:
            yield ("skip", "a redirect to a response not in the HAR")


async def apply_har_batch(
    backend: CacheBackend, batch: Iterable[tuple[str, CachedResponse] | tuple[str, str]]
) -> ImportCounts:
    """Write one batch of what :func:`har_records` yields (entries before aliases)."""
    counts = ImportCounts()
    entries: list[tuple[str, CachedResponse]] = []
    aliases: list[tuple[str, str]] = []
    for key, value in batch:
        if key == "skip":
            assert isinstance(value, str)
            counts.skip(value)
        elif isinstance(value, CachedResponse):
            entries.append((key, value))
        else:
            aliases.append((key, value))
    await _write(backend, entries, counts)
    for key, target in aliases:
        stored = backend.codec.encode_record(target.encode("utf-8"), key=key)
        await backend.redirects.write(key, stored, expires_at=None)
        counts.aliases += 1
    return counts
