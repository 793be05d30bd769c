"""The MongoDB store: :class:`MongoDBCache`, one collection behind the storage port.

Each store is one collection of the cache's database, holding one document per entry::

    {"_id": key, "value": Binary(entry), "expires_at": Date}   # expires_at absent: never

except that an entry the façade hands over in parts with a body of 1 MiB or more
(:meth:`MongoDBCache.write_parts`) keeps its body in a field of its own::

    {"_id": key, "head": Binary(encoded header), "body": Binary(body), "expires_at": Date}

so that :meth:`MongoDBCache.read_parts` returns the body as the very ``bytes`` object
PyMongo decoded from the reply, the one copy a remote store costs: acc neither joins
head and body to write them nor slices the body out of a larger value to read it.
:meth:`~MongoDBCache.read`, :meth:`~MongoDBCache.read_many` and
:meth:`~MongoDBCache.items` join the two fields, so either form reads as one value, and
documents written before the second form existed read as they always did. Values go
to the driver as ``bytes``, which BSON stores as binary subtype 0 and PyMongo decodes
back to ``bytes``; a document holding neither form reads as a miss.

A TTL index on ``expires_at`` (``expireAfterSeconds=0``) lets the server delete entries
once they expire. Its monitor runs only about once a minute, so reads, counts and key
listings also filter out documents past ``expires_at`` themselves, and
:meth:`MongoDBCache.delete_expired` removes them at once with one indexed
``delete_many``. The index is created lazily, by the first write of each store, and
creating it again is a no-op on the server, so several processes may start at once.

A document is at most 16 MiB, either form. An entry that would not fit is refused: the write logs a
warning, removes any previous entry under the key (it is out of date) and returns, so
the request that produced it is served from the network as usual and later requests
are misses. Driver errors become :class:`~acc.core.BackendUnavailable` (the server
cannot be reached) or :class:`~acc.core.BackendError` (anything else), which the façade
turns into a miss or a skipped write.

Stores share a client through a :class:`~acc.backends.mongo.connection.MongoDBConnection`.
"""

from __future__ import annotations

import contextlib
import logging
import math
import re
import time
from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from typing import Any, ClassVar, NoReturn

from bson.datetime_ms import DatetimeMS
from bson.errors import BSONError
from pymongo.errors import ConnectionFailure, DocumentTooLarge, PyMongoError

from acc.backends.mongo.connection import MongoDBConnection
from acc.core.errors import BackendError, BackendUnavailable, ConfigError, EntryTooLarge
from acc.core.storage import BaseCache, Splitter, join_parts

__all__ = ["MAX_DOCUMENT_SIZE", "MongoDBCache"]

logger = logging.getLogger("acc.backends.mongo")

MAX_DOCUMENT_SIZE = 16 * 1024 * 1024
"""MongoDB's limit on a BSON document, in bytes (``maxBsonObjectSize``)."""

# What the driver raises: its own errors, and bson's (or UTF-8's, for a key holding a
# lone surrogate) for a value it cannot encode.
_DRIVER_ERRORS = (PyMongoError, BSONError, UnicodeEncodeError)
_ITEMS_BATCH = 16  # documents per batch when values are fetched (each may be MiBs)
_BODY_FIELD_FROM = 1024 * 1024  # a last part this large is stored as a "body" field
_VALUE_FIELDS = {"value": True, "head": True, "body": True}  # both forms, one projection
# Database names: no characters MongoDB forbids on any platform, at most 63 bytes.
_BAD_DB_CHARS = re.compile(r'[/\\. "$*<>:|?\x00]')
_COLLECTION = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9_.-]{0,119}\Z")


def _check_db_name(name: object) -> str:
    if (
        not isinstance(name, str)
        or not name
        or len(name.encode("utf-8")) > 63
        or _BAD_DB_CHARS.search(name)
    ):
        raise ConfigError(
            "cache_name",
            'expected a MongoDB database name: 1-63 bytes, none of / \\ . space " $ * < > : | ?'
            f", not {name!r}",
        )
    return name


def _check_collection_name(name: object) -> str:
    if not isinstance(name, str) or not _COLLECTION.match(name) or name.startswith("system."):
        raise ConfigError(
            "collection_name",
            "expected 1-120 letters, digits, '_', '-' or '.', not starting with '.' or "
            f"'system.', not {name!r}",
        )
    return name


def _document_size(key: str, binaries: Mapping[str, int], *, expires: bool) -> int:
    """The BSON size of a document acc stores, in bytes.

    ``binaries`` maps each binary field (``value``, or ``head`` and ``body``) to its
    length. Computed rather than encoded, so an oversized entry is refused without
    copying it: 4 (length) + elements + 1 (terminator), where each element is a type
    byte, the field name and a NUL, then the value (a string: length, UTF-8, NUL;
    binary: length, subtype, bytes; a date: 8 bytes).
    """
    size = 4 + 1
    size += 1 + 4 + 4 + len(key.encode("utf-8", "surrogatepass")) + 1  # "_id": string
    for name, length in binaries.items():
        size += 1 + len(name) + 1 + 4 + 1 + length  # binary
    if expires:
        size += 1 + 11 + 8  # "expires_at": date
    return size


def _exact_bytes(value: bytes) -> bytes:
    """``value`` as ``bytes``: itself when it is (subtype 0), a copy of a ``Binary`` else."""
    return value if type(value) is bytes else bytes(value)


def _parts_of(document: Mapping[str, Any]) -> tuple[bytes, ...] | None:
    """A document's value as parts: ``(value,)`` or ``(head, body)``; ``None`` if damaged.

    The body is the object PyMongo decoded, handed on as it is. A document with neither
    form (edited by hand, or by something else than acc) reads as a miss.
    """
    value = document.get("value")
    if isinstance(value, bytes):
        return (_exact_bytes(value),)
    head, body = document.get("head"), document.get("body")
    if isinstance(head, bytes) and isinstance(body, bytes):
        return (_exact_bytes(head), _exact_bytes(body)) if head else (_exact_bytes(body),)
    logger.warning("acc: unreadable MongoDB document %r: no binary value", document.get("_id"))
    return None


def _value_of(document: Mapping[str, Any]) -> bytes | None:
    """A document's value as one ``bytes`` object (a split one joined)."""
    parts = _parts_of(document)
    return None if parts is None else join_parts(parts)


def _to_date(epoch: float) -> DatetimeMS | None:
    """A UTC epoch second as a BSON date (milliseconds), ``None`` for +infinity.

    ``DatetimeMS`` encodes any 64-bit millisecond count, so dates past year 9999 (which
    ``datetime`` cannot hold) are stored as they are.
    """
    if math.isnan(epoch):
        raise ValueError("expires_at is NaN")
    if epoch == math.inf:
        return None
    millis = math.floor(epoch * 1000) if math.isfinite(epoch) else -(2**63)
    return DatetimeMS(max(-(2**63), min(2**63 - 1, millis)))


def _live(now: DatetimeMS) -> dict[str, Any]:
    """The filter of entries not yet expired at ``now`` (no ``expires_at``: never)."""
    return {"expires_at": {"$not": {"$lte": now}}}


def _now() -> DatetimeMS:
    """The current time as a BSON date, for the expiry filters."""
    return DatetimeMS(math.floor(time.time() * 1000))


class MongoDBCache(BaseCache):
    """A store in one collection of a MongoDB database.

    Args:
        db_name: The database (the cache's name).
        collection_name: The collection: letters, digits, ``_``, ``-`` and ``.``.
        connection: A :class:`MongoDBConnection` to share with other stores (as
            :class:`~acc.backends.mongo.MongoDBBackend` does for its two).
        url: Without ``connection``: the server's connection string.
        client: Without ``connection``: a client to use (never closed by acc).
        client_options: Without ``connection``: ``AsyncMongoClient`` keyword arguments.

    Raises:
        ConfigError: An invalid name or option, or ``connection`` with the others.
    """

    native_ttl: ClassVar[bool] = True
    persistent: ClassVar[bool] = True
    shared_across_processes: ClassVar[bool] = True

    max_document_size: ClassVar[int] = MAX_DOCUMENT_SIZE
    """The largest document a write sends; larger entries are refused."""

    chunk_size: int = 1000
    """Keys per ``$in`` in :meth:`read_many` and :meth:`bulk_delete`: one query for any
    usual batch, and a query document far below 16 MiB whatever the keys."""

    def __init__(
        self,
        db_name: str = "acc-cache",
        collection_name: str = "responses",
        *,
        connection: MongoDBConnection | None = None,
        url: str | None = None,
        client: Any = None,
        client_options: Mapping[str, Any] | None = None,
    ) -> None:
        self.db_name = _check_db_name(db_name)
        self.collection_name = _check_collection_name(collection_name)
        if connection is not None:
            for name, value in (
                ("url", url),
                ("client", client),
                ("client_options", client_options),
            ):
                if value is not None:
                    raise ConfigError(name, "set it on the shared MongoDBConnection instead")
            if not isinstance(connection, MongoDBConnection):
                raise ConfigError(
                    "connection", f"expected a MongoDBConnection, not {type(connection).__name__}"
                )
            shared = connection
        else:
            shared = MongoDBConnection(url, client=client, client_options=client_options)
        shared.acquire()
        self.connection = shared
        self.collection: Any = shared.collection(self.db_name, self.collection_name)
        self.refused_writes = 0
        """How many entries were too large to store."""

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}({self.connection.address}, "
            f"{self.db_name!r}, {self.collection_name!r})"
        )

    # -- plumbing -------------------------------------------------------------------------

    def _failed(self, operation: str, exc: Exception) -> NoReturn:
        """Raise ``exc`` as acc's error: unreachable server or other failure."""
        if self._closed or self.connection.closed:
            raise BackendError(f"{self!r} is closed") from exc
        if isinstance(exc, ConnectionFailure):
            raise BackendUnavailable(f"{self!r}: {operation} failed: {exc}") from exc
        raise BackendError(f"{self!r}: {operation} failed: {exc}") from exc

    def _check_open(self) -> None:
        self._ensure_open()
        if self.connection.closed:
            raise BackendError(f"{self!r} is closed")

    # -- the port -------------------------------------------------------------------------

    async def read(self, key: str) -> bytes | None:
        """Return the value under ``key``, or ``None`` if missing or expired."""
        document = await self._find_one(key)
        return None if document is None else _value_of(document)

    async def read_parts(self, key: str, split: Splitter | None = None) -> tuple[bytes, ...] | None:
        """Return the value under ``key`` in the parts it is stored in, or ``None``.

        A document written by :meth:`write_parts` in two fields gives ``(head, body)``,
        the body being the object PyMongo decoded (``split`` is not needed: the value is
        already cut where its writer cut it); any other gives ``(value,)``, as cutting
        it here would only copy it. One query either way.
        """
        document = await self._find_one(key)
        return None if document is None else _parts_of(document)

    async def _find_one(self, key: str) -> dict[str, Any] | None:
        """The live document under ``key``, its value fields only (either form)."""
        self._check_open()
        try:
            document: dict[str, Any] | None = await self.collection.find_one(
                {"_id": key, **_live(_now())}, projection={**_VALUE_FIELDS, "_id": False}
            )
        except _DRIVER_ERRORS as exc:
            self._failed("read", exc)
        return document

    async def read_many(self, keys: Sequence[str]) -> list[bytes | None]:
        """Return the values of ``keys`` in order: one ``$in`` query per :attr:`chunk_size` keys."""
        self._check_open()
        keys = list(keys)
        unique = list(dict.fromkeys(keys))
        found: dict[str, bytes] = {}
        now = _now()
        try:
            for start in range(0, len(unique), self.chunk_size):
                cursor = self.collection.find(
                    {"_id": {"$in": unique[start : start + self.chunk_size]}, **_live(now)},
                    projection=_VALUE_FIELDS,
                )
                async for document in cursor:
                    value = _value_of(document)
                    if value is not None:
                        found[document["_id"]] = value
        except _DRIVER_ERRORS as exc:
            self._failed("read_many", exc)
        return [found.get(key) for key in keys]

    async def write(self, key: str, value: bytes, *, expires_at: float | None = None) -> None:
        """Store ``value`` under ``key`` (an upsert); refuse it when it is too large.

        An entry whose document would pass :attr:`max_document_size` is not stored: a
        warning is logged, any previous entry under ``key`` is removed (so the key reads
        as a miss rather than as an older response) and :class:`EntryTooLarge` is raised,
        which the façade counts as "not stored", not as a failure.
        """
        self._check_open()
        await self._replace(key, {"value": bytes(value)}, expires_at)

    async def write_parts(
        self, key: str, parts: Sequence[bytes], *, expires_at: float | None = None
    ) -> None:
        """Store the concatenation of ``parts``; a large last part as a field of its own.

        When the last part (the body) is 1 MiB or more, the document holds the parts
        before it, joined, as ``head`` and the body as ``body``: the body goes to the
        driver as it is, never joined with the head into one more copy, and
        :meth:`read_parts` returns it as a part of its own. A smaller value is stored
        by :meth:`write`. The size limit and its refusal are :meth:`write`'s.
        """
        self._check_open()
        if not parts or len(parts[-1]) < _BODY_FIELD_FROM:
            await super().write_parts(key, parts, expires_at=expires_at)
            return
        head = parts[0] if len(parts) == 2 else b"".join(parts[:-1])
        await self._replace(key, {"head": bytes(head), "body": bytes(parts[-1])}, expires_at)

    async def _replace(self, key: str, fields: dict[str, bytes], expires_at: float | None) -> None:
        """Upsert the document of ``key`` with the binary ``fields``, or refuse it."""
        expires = None if expires_at is None else _to_date(expires_at)
        lengths = {name: len(value) for name, value in fields.items()}
        size = _document_size(key, lengths, expires=expires is not None)
        if size > self.max_document_size:
            await self._refuse(key, f"its document would be {size} bytes")
        # ``bytes`` is BSON binary subtype 0: the driver encodes it without a Binary copy.
        document: dict[str, Any] = {"_id": key, **fields}
        if expires is not None:
            document["expires_at"] = expires
        try:
            await self.connection.ensure_ttl_index(self.collection)
            await self.collection.replace_one({"_id": key}, document, upsert=True)
        except DocumentTooLarge as exc:  # a server or driver with a lower limit
            await self._refuse(key, str(exc))
        except _DRIVER_ERRORS as exc:
            self._failed("write", exc)

    async def _refuse(self, key: str, why: str) -> NoReturn:
        self.refused_writes += 1
        logger.warning(
            "acc: not caching %s in %s.%s: %s, over MongoDB's %d-byte document limit",
            key,
            self.db_name,
            self.collection_name,
            why,
            self.max_document_size,
        )
        await self.delete(key)
        raise EntryTooLarge(f"{key} is over MongoDB's document limit: {why}")

    async def delete(self, key: str) -> None:
        """Remove ``key`` (a missing key is not an error)."""
        self._check_open()
        try:
            await self.collection.delete_one({"_id": key})
        except _DRIVER_ERRORS as exc:
            self._failed("delete", exc)

    async def bulk_delete(self, keys: Iterable[str]) -> None:
        """Remove many keys: one ``delete_many`` with ``$in`` per :attr:`chunk_size` keys."""
        self._check_open()
        unique = list(dict.fromkeys(keys))
        try:
            for start in range(0, len(unique), self.chunk_size):
                await self.collection.delete_many(
                    {"_id": {"$in": unique[start : start + self.chunk_size]}}
                )
        except _DRIVER_ERRORS as exc:
            self._failed("bulk_delete", exc)

    async def contains(self, key: str) -> bool:
        """Whether ``key`` holds a live value (the value is not fetched)."""
        self._check_open()
        try:
            document = await self.collection.find_one(
                {"_id": key, **_live(_now())}, projection={"_id": True}
            )
        except _DRIVER_ERRORS as exc:
            self._failed("contains", exc)
        return document is not None

    async def size(self) -> int:
        """The number of live entries (``count_documents``; expired ones are not counted)."""
        self._check_open()
        try:
            count: int = await self.collection.count_documents(_live(_now()))
        except _DRIVER_ERRORS as exc:
            self._failed("size", exc)
        return count

    async def keys(self) -> AsyncIterator[str]:
        """Iterate over the live keys, in key order, through one cursor."""
        async for document in self._documents("keys", {"_id": True}, batch_size=0):
            yield document["_id"]

    async def items(self) -> AsyncIterator[tuple[str, bytes]]:
        """Iterate over live ``(key, value)`` pairs in key order, a few at a time."""
        projection = {"_id": True, **_VALUE_FIELDS}
        async for document in self._documents("items", projection, batch_size=_ITEMS_BATCH):
            value = _value_of(document)
            if value is not None:
                yield document["_id"], value

    async def _documents(
        self, operation: str, projection: dict[str, bool], *, batch_size: int
    ) -> AsyncIterator[dict[str, Any]]:
        self._check_open()
        cursor = self.collection.find(
            _live(_now()), projection=projection, sort=[("_id", 1)], batch_size=batch_size
        )
        try:
            while True:
                try:
                    document = await anext(cursor)
                except StopAsyncIteration:
                    return
                except _DRIVER_ERRORS as exc:
                    self._failed(operation, exc)
                yield document
        finally:
            # A cursor that cannot be closed dies with its connection or times out.
            with contextlib.suppress(*_DRIVER_ERRORS):
                await cursor.close()

    async def delete_expired(self, now: float) -> int:
        """Remove the entries past ``expires_at`` at ``now``: one indexed ``delete_many``."""
        self._check_open()
        cutoff = _to_date(now)
        if cutoff is None:  # now = +inf: everything with an expiry is past it
            query: dict[str, Any] = {"expires_at": {"$exists": True}}
        else:
            query = {"expires_at": {"$lte": cutoff}}
        try:
            result = await self.collection.delete_many(query)
        except _DRIVER_ERRORS as exc:
            self._failed("delete_expired", exc)
        return int(result.deleted_count)

    async def clear(self) -> None:
        """Delete every document of the collection; the collection and its indexes stay."""
        self._check_open()
        try:
            await self.collection.delete_many({})
        except _DRIVER_ERRORS as exc:
            self._failed("clear", exc)

    async def close(self) -> None:
        """Release the shared client (closed with its last store, if acc owns it)."""
        if self._closed:
            return
        self._closed = True
        await self.connection.release()
