"""The façade's maintenance: deleting, sweeping and listing what a cache holds.

:class:`~acc.core.backend.CacheBackend` delegates its management methods here (``clear``,
``delete``, ``delete_url``, ``has_url``, ``sweep_aliases``, ``entries``, ``urls``,
``compact``); their public signatures and docstrings stay on the façade.

The rule these keep: **maintenance costs what it does**, not what the cache holds.

* Deleting keys (``delete(*keys)``, ``delete_url``) touches those keys, their variants
  and their own alias or vary record; never the whole ``redirects`` store.
* Aliases and vary records are written with the expiry of their entry (see
  ``CacheBackend._write``), so on stores whose ``delete_expired`` answers (native or
  indexed expiry) ``delete(expired=True)`` asks both stores to drop what expired and
  reads nothing else. An alias left behind by a delete by key reads as a miss (its
  target is gone) and goes when its own expiry comes, or with :func:`sweep_aliases`.
* Only a store that cannot tell what expired (``delete_expired`` returns ``None``), and
  the selections that need every entry's metadata (``older_than=``, ``urls=``), walk a
  store: once, streaming, in bounded batches.
* :func:`urls` holds no set of every URL: see its docstring.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from acc.core.codec import DecodeError
from acc.core.errors import ConfigError
from acc.core.http.policy import entry_storage_expiry
from acc.core.http.vary import VaryRecord
from acc.core.keys import CacheRequest, create_key_unmemoised, normalize_url
from acc.core.models import CachedResponse, StoredEntry
from acc.core.settings import CacheSettings

if TYPE_CHECKING:
    from acc.core.backend import CacheBackend

__all__ = [
    "clear",
    "compact",
    "delete",
    "delete_url",
    "entries",
    "has_url",
    "past_storage_expiry",
    "sweep_aliases",
    "urls",
]

SWEEP_BATCH = 100
"""Records looked at per batch (and alias targets per ``read_many``) when sweeping."""


def past_storage_expiry(entry: CachedResponse, settings: CacheSettings, now: datetime) -> bool:
    """Whether storage need not keep ``entry`` any more at ``now``."""
    keep = entry_storage_expiry(entry, settings)
    return keep is not None and keep <= now


async def clear(backend: CacheBackend) -> None:
    """:meth:`CacheBackend.clear <acc.core.backend.CacheBackend.clear>`."""
    backend._check_open()
    await backend.flush()  # queued writes first: what follows sees them
    await backend.responses.clear()
    await backend.redirects.clear()


def _older_than(value: timedelta | float | None) -> timedelta | None:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return timedelta(seconds=value)
    if value is not None and not isinstance(value, timedelta):
        raise ConfigError("older_than", f"expected a timedelta or seconds, not {value!r}")
    return value


async def delete(
    backend: CacheBackend,
    keys: tuple[str, ...],
    *,
    expired: bool,
    older_than: timedelta | float | None,
    urls: Iterable[str] | None,
) -> int:
    """:meth:`CacheBackend.delete <acc.core.backend.CacheBackend.delete>`."""
    backend._check_open()
    await backend.flush()  # queued writes first: what follows sees them
    age = _older_than(older_than)
    if isinstance(urls, str):
        raise ConfigError("urls", "expected a list of URLs, not a single string")
    responses, redirects = backend.responses, backend.redirects
    doomed = set(keys)
    if keys:
        # A key whose response varies leads to its variants through a vary record.
        for key, found in zip(keys, await redirects.read_many(list(keys)), strict=True):
            lead = backend._lead(key, found) if found is not None else None
            if isinstance(lead, VaryRecord):
                doomed.update(lead.variants)
    deleted = 0
    now = backend.now()
    ignored = backend.settings.redacted_params
    wanted_urls = {normalize_url(u, ignored) for u in urls} if urls else set()
    sweep = False  # whether the redirects store must be walked for dangling records
    if expired:
        native = await responses.delete_expired(now.timestamp())
        if native is not None:
            deleted += native
            expired = False
            # Aliases and vary records expire with their entries: the store drops them.
            sweep = await redirects.delete_expired(now.timestamp()) is None
    if expired or age is not None or wanted_urls:
        sweep = True
        cutoff = now - age if age is not None else None
        async for key, data in responses.items():
            try:
                entry = backend.codec.decode(data, key=key)
            except DecodeError:
                doomed.add(key)
                continue
            if (
                (expired and past_storage_expiry(entry, backend.settings, now))
                or (cutoff is not None and entry.created_at < cutoff)
                or (wanted_urls and normalize_url(entry.url, ignored) in wanted_urls)
            ):
                doomed.add(key)
    if doomed:
        present = await responses.read_many(sorted(doomed))
        deleted += sum(1 for value in present if value is not None)
        await responses.bulk_delete(doomed)
    if keys:
        # A key given may itself be an alias (the URL a redirect started from).
        await redirects.bulk_delete(keys)
    if sweep:
        await _delete_dangling_records(backend, doomed)
    return deleted


async def _delete_dangling_records(backend: CacheBackend, doomed: set[str]) -> None:
    """Delete aliases and vary records that lead to no entry any more: one streaming pass.

    An alias is dangling when its target is in ``doomed`` or no longer stored (it was
    deleted by key, or expired); a vary record, when none of its variants is left; a
    record that does not verify leads nowhere. Records are taken ``SWEEP_BATCH`` at a
    time, their targets checked with one ``read_many``, and the dangling ones deleted,
    so memory holds one batch, whatever the size of the store.
    """
    batch: list[tuple[str, tuple[str, ...]]] = []
    async for key, data in backend.redirects.items():
        lead = backend._lead(key, data)
        if isinstance(lead, VaryRecord):
            batch.append((key, lead.variants))
        else:
            batch.append((key, () if lead is None else (lead,)))
        if len(batch) >= SWEEP_BATCH:
            await _delete_dangling_batch(backend, batch, doomed)
            batch = []
    if batch:
        await _delete_dangling_batch(backend, batch, doomed)


async def _delete_dangling_batch(
    backend: CacheBackend, batch: list[tuple[str, tuple[str, ...]]], doomed: set[str]
) -> None:
    unknown = sorted({target for _key, targets in batch for target in targets} - doomed)
    found = await backend.responses.read_many(unknown) if unknown else []
    present = {key for key, value in zip(unknown, found, strict=True) if value is not None}
    dangling = [key for key, targets in batch if not present.intersection(targets)]
    if dangling:
        await backend.redirects.bulk_delete(dangling)


async def sweep_aliases(backend: CacheBackend) -> None:
    """Delete every alias and vary record that leads to no entry: one streaming pass."""
    backend._check_open()
    await backend.flush()  # queued writes first: what follows sees them
    await _delete_dangling_records(backend, set())


async def entries(backend: CacheBackend) -> AsyncIterator[StoredEntry]:
    """The readable entries, decoded, with their keys, sizes and whether they expired."""
    backend._check_open()
    await backend.flush()  # queued writes first: what follows sees them
    now = backend.now()
    async for key, data in backend.responses.items():
        try:
            entry = backend.codec.decode(data, key=key)
        except DecodeError:
            continue
        yield StoredEntry(
            key=key,
            entry=entry,
            size=len(data),
            expired=past_storage_expiry(entry, backend.settings, now),
        )


async def compact(backend: CacheBackend) -> bool:
    """Compact both stores where they can; whether either did."""
    backend._check_open()
    compacted = await backend.responses.compact()
    return await backend.redirects.compact() or compacted


async def delete_url(backend: CacheBackend, url: str, method: str) -> None:
    """Delete the entry of a plain request: its key, variants and own alias only."""
    key = backend.url_key(url, method)
    await delete(backend, (key,), expired=False, older_than=None, urls=None)


async def has_url(backend: CacheBackend, url: str, method: str) -> bool:
    """Whether a plain request for ``url`` has an entry or an alias."""
    backend._check_open()
    await backend.flush()  # queued writes first: what follows sees them
    key = backend.url_key(url, method)
    return await backend.responses.contains(key) or await backend.redirects.contains(key)


def _plain_key(backend: CacheBackend, url: str) -> str | None:
    """The key of a plain GET of ``url``, or ``None`` if none can be made of it."""
    request = CacheRequest("GET", url)
    try:
        key_fn = backend.settings.key_fn
        if key_fn is not None:
            return key_fn(request)
        return create_key_unmemoised(request, backend.settings.key_settings)
    except Exception:  # a stored URL the key function refuses: not a plain entry
        return None


async def _url_under(backend: CacheBackend, key: str) -> str | None:
    """The URL of the readable entry stored under ``key``, if there is one."""
    data = await backend.responses.read(key)
    if data is None:
        return None
    try:
        return backend.codec.url_of(data, key=key)
    except DecodeError:
        return None


async def urls(backend: CacheBackend) -> AsyncIterator[str]:
    """The distinct URLs of the readable entries, streamed.

    Most entries are stored under the key of a plain GET of their URL: such an entry's
    URL is yielded as it is met, and remembered nowhere. Any other entry (a variant, a
    HEAD, a request with a body or extra headers, a redirect's final URL) yields its URL
    only when no readable plain entry of that URL exists (that one yields it), and only
    the first time: those URLs are the only ones kept in a set. Memory so grows with the
    entries that are not plain GETs, not with the cache. Entries are checked (checksum or
    signature) but not built (:meth:`~acc.core.codec.Codec.url_of`).
    """
    backend._check_open()
    await backend.flush()  # queued writes first: what follows sees them
    others: set[str] = set()
    codec = backend.codec
    async for key, data in backend.responses.items():
        try:
            url = codec.url_of(data, key=key)
        except DecodeError:
            continue
        plain = _plain_key(backend, url)
        if plain == key:
            yield url
            continue
        if url in others:
            continue
        if plain is not None and await _url_under(backend, plain) == url:
            continue  # its plain entry yields it, before or after this one
        others.add(url)
        yield url
