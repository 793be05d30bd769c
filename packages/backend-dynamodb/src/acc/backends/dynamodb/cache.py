"""The DynamoDB store: :class:`DynamoDBCache`, one namespace of a shared table.

Every entry is one item whose partition key is ``"<cache_name>:<store>:<key>"``, so the
hot path (read, write, delete) is a single-item request spread over all partitions,
and several caches and both stores of each share one table. ``size``, ``keys`` and
``clear`` find a namespace's items through the ``namespace`` attribute: a filtered,
paginated scan, or a query of a global secondary index when one is configured.

DynamoDB deletes items past their TTL only eventually (often within minutes, up to
days), so every read checks ``expires_at`` itself.

Items are limited to 400 KB. A larger entry is compressed with zlib when that is
enough; otherwise it is split: its chunks are written first, under keys that include a
fresh write id, then a *manifest* item that names the write id and the number of
chunks replaces the entry. A reader follows the manifest it read, so it never mixes
chunks of two writes, and the chunks of the manifest that was replaced are deleted
afterwards. Chunks carry the entry's ``expires_at`` and the namespace
``"<cache_name>:<store>#"``: native expiry and :meth:`DynamoDBCache.clear` remove the
few a crash may orphan.

A large value costs one copy on its way out whatever acc does: the decompression, or
the join of its chunks. :meth:`DynamoDBCache.read_parts` makes that one step produce the
body as a ``bytes`` object of its own, never sliced out of a larger value: a compressed
payload is inflated up to where the reader's splitter says the body begins (the head),
then the rest in one call (the body); an uncompressed split entry's body is one join of
the chunks after that point, of which only the one holding it is cut (through a
``memoryview``, not a slice). A small item that is stored as it is comes back whole.
"""

from __future__ import annotations

import asyncio
import logging
import math
import re
import secrets
import time
import zlib
from collections.abc import AsyncIterator, Iterable, Sequence
from typing import Any, ClassVar

from acc.backends.dynamodb.connection import DynamoDBConnection
from acc.backends.dynamodb.table import DEFAULT_TABLE, KEY, NAMESPACE, TTL_ATTRIBUTE
from acc.core.errors import BackendError, ConfigError
from acc.core.storage import SPLIT_PROBE, BaseCache, Splitter, join_parts

__all__ = ["DynamoDBCache"]

logger = logging.getLogger("acc.backends.dynamodb")

ITEM_LIMIT = 400_000
"""DynamoDB's item limit, 400 KB, counted low (names and values of all attributes together)."""

_SLACK = 2048  # room for the other attributes' names and values
_BATCH_WRITE = 25  # BatchWriteItem's limit
_BATCH_GET = 100  # BatchGetItem's limit
_MAX_PARTS = 10_000  # about 4 GB: far beyond any response worth caching
_INFLATE_FEED = 16 * 1024  # compressed bytes fed at a time while a head is inflated
_NAMES = {
    "#k": KEY,
    "#ns": NAMESPACE,
    "#v": "value",
    "#e": TTL_ATTRIBUTE,
    "#w": "write_id",
    "#p": "parts",
}
_PLACEHOLDER = re.compile(r"#\w+")
_EXPRESSIONS = ("FilterExpression", "KeyConditionExpression", "ProjectionExpression")
_LIVE = "(attribute_not_exists(#e) OR #e > :now)"
_FORBIDDEN = (":", "#")  # the separators of partition keys


def _check_name(argument: str, value: object) -> str:
    if (
        not isinstance(value, str)
        or not 1 <= len(value) <= 255
        or any(char in value for char in _FORBIDDEN)
    ):
        raise ConfigError(argument, f"expected 1-255 characters without ':' or '#', not {value!r}")
    return value


def _number(value: float) -> str:
    """``expires_at`` as DynamoDB stores it: epoch seconds, rounded up to the millisecond."""
    return f"{math.ceil(value * 1000) / 1000:.3f}"


def _names_in(*expressions: str) -> dict[str, str]:
    """The ``ExpressionAttributeNames`` the expressions use (DynamoDB refuses unused ones)."""
    return {
        name: _NAMES[name]
        for expression in expressions
        for name in _PLACEHOLDER.findall(expression)
    }


def _is_manifest(item: dict[str, Any] | None, now: float) -> bool:
    """Whether ``item`` is the live manifest of a split entry (its chunks may have moved)."""
    return item is not None and "value" not in item and not _expired(item, now)


def _compressed(item: dict[str, Any]) -> bool:
    return bool(item.get("codec", {}).get("S") == "zlib")


def _exact_bytes(value: bytes) -> bytes:
    """``value`` as ``bytes``: itself when it is, a copy of a bytes-like value else."""
    return value if type(value) is bytes else bytes(value)


def _leading(pieces: Sequence[bytes], size: int) -> bytes:
    """The first ``size`` bytes of the concatenation of ``pieces`` (all of it if shorter)."""
    prefix = b""
    for piece in pieces:
        if len(prefix) >= size:
            break
        prefix += piece[: size - len(prefix)]
    return prefix


def _cut(pieces: Sequence[bytes], split: Splitter | None) -> tuple[bytes, ...]:
    """An uncompressed payload as ``(head, body)`` where ``split`` says, else whole.

    The body is one join of the pieces from the cut on (the piece holding the cut is
    read through a ``memoryview``), the single copy a join of the chunks costs anyway.
    One piece (an item stored as it is) is returned whole: cutting it would copy it.
    """
    if split is None or len(pieces) == 1:
        return (join_parts(pieces),)
    offset = split(_leading(pieces, SPLIT_PROBE))
    if not 0 < offset < sum(map(len, pieces)):
        return (b"".join(pieces),)
    index = 0
    while offset >= len(pieces[index]):  # the piece holding the first byte of the body
        offset -= len(pieces[index])
        index += 1
    head = b"".join([*pieces[:index], pieces[index][:offset]])
    body = b"".join([memoryview(pieces[index])[offset:], *pieces[index + 1 :]])
    return (head, body)


def _inflate_up_to(inflater: Any, pieces: Sequence[bytes], size: int) -> tuple[bytes, int, int]:
    """Inflate the first ``size`` bytes of a compressed payload held in ``pieces``.

    The input goes in :data:`_INFLATE_FEED` bytes at a time, so that what the inflater
    keeps of it when ``size`` is reached (its ``unconsumed_tail``, a copy) stays small.

    Returns:
        The bytes inflated (fewer than ``size`` if the stream ended first), and where
        the input not consumed yet begins: a piece's index and an offset into it.
    """
    inflated: list[bytes] = []
    got = 0
    for index, piece in enumerate(pieces):
        view = memoryview(piece)
        position = 0
        while position < len(view):
            if got >= size or inflater.eof:
                return b"".join(inflated), index, position
            feed = view[position : position + _INFLATE_FEED]
            output = inflater.decompress(feed, size - got)
            inflated.append(output)
            got += len(output)
            position += len(feed) - len(inflater.unconsumed_tail)
    return b"".join(inflated), len(pieces), 0


def _inflate(pieces: Sequence[bytes], split: Splitter | None) -> tuple[bytes, ...]:
    """A zlib payload inflated as ``(head, body)`` where ``split`` says, else whole.

    The splitter is shown the first :data:`SPLIT_PROBE` bytes, inflated by an inflater
    of their own; a second one inflates the head up to the offset, then everything
    after it in one call, so that the body is the very ``bytes`` object zlib returns.

    Raises:
        zlib.error: The payload is not a whole zlib stream.
    """
    if split is None:
        return (zlib.decompress(join_parts(pieces)),)
    offset = split(_inflate_up_to(zlib.decompressobj(), pieces, SPLIT_PROBE)[0])
    if offset < 1:
        return (zlib.decompress(join_parts(pieces)),)
    inflater = zlib.decompressobj()
    head, index, position = _inflate_up_to(inflater, pieces, offset)
    rest: list[bytes | memoryview] = []  # the input not consumed yet
    if index < len(pieces):
        rest = [memoryview(pieces[index])[position:], *pieces[index + 1 :]]
    body = inflater.decompress(rest[0] if len(rest) == 1 else b"".join(rest))
    if not inflater.eof:  # output held back in the inflater, or a stream cut short
        body += inflater.flush()
        if not inflater.eof:
            raise zlib.error("incomplete or truncated stream")
    return (head, body) if body else (head,)


def _expired(item: dict[str, Any], now: float) -> bool:
    stamp = item.get(TTL_ATTRIBUTE)
    if stamp is None:
        return False
    try:
        return float(stamp["N"]) <= now
    except (KeyError, TypeError, ValueError):
        return True  # a damaged item reads as a miss


class DynamoDBCache(BaseCache):
    """A store in a DynamoDB table: the items of one namespace, ``<cache_name>:<store>``.

    Args:
        table: The table name, or a :class:`DynamoDBConnection` to share with other
            stores (as :class:`DynamoDBBackend` does for its two).
        store: The store's name within the cache (``"responses"``, ``"redirects"``).
        cache_name: The cache's name: with ``store``, the namespace of the items.
        connection_options: With a table name, the options of
            :class:`DynamoDBConnection` (``region``, ``endpoint_url``,
            ``create_table``, ...).

    Raises:
        ConfigError: An invalid name or option; ``cache_name`` and ``store`` may not
            contain ``:`` or ``#``, which separate the parts of partition keys.
        TypeError: An unknown option.
    """

    native_ttl: ClassVar[bool] = True
    persistent: ClassVar[bool] = True
    shared_across_processes: ClassVar[bool] = True

    page_size: int | None = None
    """Items per scan or query page (``None``: DynamoDB's 1 MB pages)."""

    def __init__(
        self,
        table: str | DynamoDBConnection = DEFAULT_TABLE,
        store: str = "responses",
        *,
        cache_name: str = "acc-cache",
        **connection_options: Any,
    ) -> None:
        self.cache_name = _check_name("cache_name", cache_name)
        self.store = _check_name("store", store)
        if isinstance(table, DynamoDBConnection):
            for name in connection_options:
                raise ConfigError(name, "set it on the shared DynamoDBConnection instead")
            shared = table
        else:
            shared = DynamoDBConnection(table, **connection_options)
        shared.acquire()
        self.connection = shared
        self.namespace = f"{cache_name}:{store}"
        """The value of the ``namespace`` attribute of this store's entries."""
        self.chunk_namespace = f"{self.namespace}#"
        """The value of the ``namespace`` attribute of this store's chunk items."""
        self._prefix = f"{self.namespace}:"
        self._inline_limit = ITEM_LIMIT - _SLACK - 2 * len(self.namespace.encode())

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}({self.connection.table_name!r}, namespace={self.namespace!r})"
        )

    @property
    def table_name(self) -> str:
        """The DynamoDB table."""
        return self.connection.table_name

    # -- keys and items -------------------------------------------------------------------

    def _pk(self, key: str) -> dict[str, Any]:
        return {KEY: {"S": self._prefix + key}}

    def _chunk_pk(self, write_id: str, index: int) -> dict[str, Any]:
        return {KEY: {"S": f"{self.chunk_namespace}{write_id}:{index}"}}

    def _chunk_keys(self, item: dict[str, Any]) -> list[dict[str, Any]]:
        """The keys of the chunks a manifest item names (none for a plain item)."""
        try:
            write_id = item["write_id"]["S"]
            parts = int(item["parts"]["N"])
        except (KeyError, TypeError, ValueError):
            return []
        if not 0 < parts <= _MAX_PARTS:  # a damaged manifest must not send a million reads
            return []
        return [self._chunk_pk(write_id, index) for index in range(parts)]

    def _base(self, namespace: str, expires_at: float | None) -> dict[str, Any]:
        item: dict[str, Any] = {NAMESPACE: {"S": namespace}}
        if expires_at is not None and math.isfinite(expires_at):
            item[TTL_ATTRIBUTE] = {"N": _number(expires_at)}
        return item

    async def _value_of(self, item: dict[str, Any] | None, now: float) -> bytes | None:
        """The bytes an item holds (following a manifest), or ``None``."""
        parts = await self._parts_of(item, now, None)
        return None if parts is None else join_parts(parts)

    async def _parts_of(
        self, item: dict[str, Any] | None, now: float, split: Splitter | None
    ) -> tuple[bytes, ...] | None:
        """The value an item holds (following a manifest), cut where ``split`` says.

        ``None`` when missing, expired, replaced meanwhile or unreadable (damaged items
        and payloads that do not inflate read as a miss).
        """
        if item is None or _expired(item, now):
            return None
        try:
            if "value" in item:
                pieces = [_exact_bytes(item["value"]["B"])]
            else:
                chunks = await self._chunks_of(item)
                if chunks is None:
                    return None
                pieces = chunks
            return _inflate(pieces, split) if _compressed(item) else _cut(pieces, split)
        except (KeyError, TypeError, ValueError, zlib.error) as exc:
            logger.warning("acc: unreadable DynamoDB item %r: %r", item.get(KEY), exc)
            return None

    async def _chunks_of(self, manifest: dict[str, Any]) -> list[bytes] | None:
        """A split entry's chunks, in order; ``None`` when any is gone (replaced meanwhile)."""
        keys = self._chunk_keys(manifest)
        if not keys:
            raise KeyError("parts")
        found = await self._batch_get("read", keys, projection="#k, #v")
        chunks: list[bytes] = []
        for key in keys:
            chunk = found.get(key[KEY]["S"])
            if chunk is None:
                return None
            chunks.append(_exact_bytes(chunk["value"]["B"]))
        if sum(map(len, chunks)) != int(manifest["length"]["N"]):
            raise KeyError("length")
        return chunks

    # -- batches --------------------------------------------------------------------------

    async def _batch_get(
        self, operation: str, keys: Sequence[dict[str, Any]], *, projection: str | None = None
    ) -> dict[str, dict[str, Any]]:
        """BatchGetItem in groups of 100, resending unprocessed keys with backoff."""
        table = self.connection.table_name
        found: dict[str, dict[str, Any]] = {}
        extra: dict[str, Any] = {"ConsistentRead": self.connection.consistent_reads}
        if projection is not None:
            extra["ProjectionExpression"] = projection
            extra["ExpressionAttributeNames"] = _names_in(projection)
        for start in range(0, len(keys), _BATCH_GET):
            pending: list[dict[str, Any]] = list(keys[start : start + _BATCH_GET])
            attempt = 0
            while pending:
                response = await self.connection.call(
                    operation, "batch_get_item", RequestItems={table: {"Keys": pending, **extra}}
                )
                for item in response.get("Responses", {}).get(table, []):
                    found[item[KEY]["S"]] = item
                pending = response.get("UnprocessedKeys", {}).get(table, {}).get("Keys", [])
                if pending:
                    await self.connection.backoff(attempt, operation, len(pending))
                    attempt += 1
        return found

    async def _batch_write(self, operation: str, requests: Sequence[dict[str, Any]]) -> None:
        """BatchWriteItem in groups of 25, resending unprocessed items with backoff."""
        table = self.connection.table_name
        for start in range(0, len(requests), _BATCH_WRITE):
            pending: list[dict[str, Any]] = list(requests[start : start + _BATCH_WRITE])
            attempt = 0
            while pending:
                response = await self.connection.call(
                    operation, "batch_write_item", RequestItems={table: pending}
                )
                pending = response.get("UnprocessedItems", {}).get(table, [])
                if pending:
                    await self.connection.backoff(attempt, operation, len(pending))
                    attempt += 1

    async def _delete_keys(self, operation: str, keys: Iterable[dict[str, Any]]) -> None:
        unique = {key[KEY]["S"]: key for key in keys}
        await self._batch_write(operation, [{"DeleteRequest": {"Key": k}} for k in unique.values()])

    async def _drop_chunks_of(self, old: dict[str, Any] | None, keep: str | None = None) -> None:
        """Delete the chunks of a replaced or deleted manifest; failures only orphan them."""
        if not old or "write_id" not in old or old["write_id"].get("S") == keep:
            return
        try:
            await self._delete_keys("delete chunks", self._chunk_keys(old))
        except BackendError as exc:
            logger.warning("acc: left chunks of %r behind (%s)", old.get(KEY), exc)

    # -- the port -------------------------------------------------------------------------

    async def read(self, key: str) -> bytes | None:
        """Return the value under ``key``, or ``None`` if missing or expired."""
        parts = await self.read_parts(key)
        return None if parts is None else join_parts(parts)

    async def read_parts(self, key: str, split: Splitter | None = None) -> tuple[bytes, ...] | None:
        """Return the value under ``key``, a compressed or split one cut where ``split`` says.

        The body comes out of the one step that copies it anyway: the decompression of
        a compressed payload, the join of an uncompressed split entry's chunks (see the
        module's docstring). An item stored as it is comes back whole, in one part.
        """
        self._ensure_open()
        for _attempt in range(2):  # a split entry replaced mid-read is read again, once
            response = await self.connection.call(
                "read",
                "get_item",
                Key=self._pk(key),
                ConsistentRead=self.connection.consistent_reads,
            )
            item, now = response.get("Item"), time.time()
            parts = await self._parts_of(item, now, split)
            if parts is not None or not _is_manifest(item, now):
                return parts
        return None

    async def read_many(self, keys: Sequence[str]) -> list[bytes | None]:
        """Return the values of ``keys`` in order: BatchGetItem, 100 keys a request."""
        self._ensure_open()
        keys = list(keys)
        unique = list(dict.fromkeys(keys))
        found = await self._batch_get("read_many", [self._pk(key) for key in unique])
        now = time.time()
        values: dict[str, bytes | None] = {}
        for key in unique:
            item = found.get(self._prefix + key)
            value = await self._value_of(item, now)
            if value is None and _is_manifest(item, now):
                value = await self.read(key)  # a split entry replaced meanwhile
            values[key] = value
        return [values[key] for key in keys]

    async def write(self, key: str, value: bytes, *, expires_at: float | None = None) -> None:
        """Store ``value`` under ``key``: one item, compressed or split when too large."""
        self._ensure_open()
        payload = bytes(value)
        item = self._base(self.namespace, expires_at)
        item[KEY] = self._pk(key)[KEY]
        limit = self._inline_limit - len(item[KEY]["S"].encode())
        if len(payload) > limit:
            # zlib releases the GIL: a thread keeps the event loop free meanwhile.
            packed = await asyncio.to_thread(zlib.compress, payload, 6)
            if len(packed) < len(payload):
                payload = packed
                item["codec"] = {"S": "zlib"}
        write_id = None
        if len(payload) <= limit:
            item["value"] = {"B": payload}
        else:
            write_id = secrets.token_hex(8)
            chunk_size = self._inline_limit - 64
            parts = math.ceil(len(payload) / chunk_size)
            chunks = []
            for index in range(parts):
                chunk = self._base(self.chunk_namespace, expires_at)
                chunk.update(self._chunk_pk(write_id, index))
                chunk["value"] = {"B": payload[index * chunk_size : (index + 1) * chunk_size]}
                chunks.append({"PutRequest": {"Item": chunk}})
            await self._batch_write("write", chunks)  # chunks first: the manifest is the commit
            item["write_id"] = {"S": write_id}
            item["parts"] = {"N": str(parts)}
            item["length"] = {"N": str(len(payload))}
        response = await self.connection.call(
            "write", "put_item", Item=item, ReturnValues="ALL_OLD"
        )
        await self._drop_chunks_of(response.get("Attributes"), keep=write_id)

    async def delete(self, key: str) -> None:
        """Remove ``key`` (and its chunks); a missing key is not an error."""
        self._ensure_open()
        response = await self.connection.call(
            "delete", "delete_item", Key=self._pk(key), ReturnValues="ALL_OLD"
        )
        await self._drop_chunks_of(response.get("Attributes"))

    async def bulk_delete(self, keys: Iterable[str]) -> None:
        """Remove many keys: BatchWriteItem, 25 deletes a request.

        The split entries among them are found first (a BatchGetItem of the keys'
        manifest attributes only), so that their chunks go too.
        """
        self._ensure_open()
        entries = [self._pk(key) for key in dict.fromkeys(keys)]
        if not entries:
            return
        found = await self._batch_get("bulk_delete", entries, projection="#k, #w, #p")
        chunks = [chunk for item in found.values() for chunk in self._chunk_keys(item)]
        await self._delete_keys("bulk_delete", [*entries, *chunks])

    async def contains(self, key: str) -> bool:
        """Whether ``key`` holds a live value (only the key and expiry are read)."""
        self._ensure_open()
        response = await self.connection.call(
            "contains",
            "get_item",
            Key=self._pk(key),
            ConsistentRead=self.connection.consistent_reads,
            ProjectionExpression="#k, #e",
            ExpressionAttributeNames={"#k": KEY, "#e": TTL_ATTRIBUTE},
        )
        item = response.get("Item")
        return item is not None and not _expired(item, time.time())

    # -- the namespace as a whole ---------------------------------------------------------

    async def _pages(
        self,
        operation: str,
        namespaces: Sequence[str],
        condition: str | None,
        values: dict[str, Any],
        **extra: Any,
    ) -> AsyncIterator[dict[str, Any]]:
        """The pages of a scan (or index query) of ``namespaces``, filtered by ``condition``.

        Without an index: one Scan, filtered to the namespaces, strongly consistent.
        With ``namespace_index``: one Query of the index per namespace (eventually
        consistent, as every index read is).
        """
        index = self.connection.namespace_index
        if self.page_size is not None:
            extra["Limit"] = self.page_size
        requests: list[dict[str, Any]] = []
        if index is None:
            marks = {f":ns{i}": {"S": ns} for i, ns in enumerate(namespaces)}
            scope = f"#ns IN ({', '.join(marks)})"
            requests.append(
                {
                    "method": "scan",
                    "FilterExpression": f"{scope} AND {condition}" if condition else scope,
                    "ExpressionAttributeValues": {**values, **marks},
                    "ConsistentRead": self.connection.consistent_reads,
                }
            )
        else:
            for ns in namespaces:
                request: dict[str, Any] = {
                    "method": "query",
                    "IndexName": index,
                    "KeyConditionExpression": "#ns = :ns",
                    "ExpressionAttributeValues": {**values, ":ns": {"S": ns}},
                }
                if condition:
                    request["FilterExpression"] = condition
                requests.append(request)
        for request in requests:
            method = request.pop("method")
            merged = {**request, **extra}
            request["ExpressionAttributeNames"] = _names_in(
                *(merged[name] for name in _EXPRESSIONS if name in merged)
            )
            start: dict[str, Any] | None = None
            while True:
                if start is not None:
                    request["ExclusiveStartKey"] = start
                page = await self.connection.call(operation, method, **request, **extra)
                yield page
                start = page.get("LastEvaluatedKey")
                if not start:
                    break

    def _live_pages(self, operation: str, **extra: Any) -> AsyncIterator[dict[str, Any]]:
        return self._pages(
            operation, [self.namespace], _LIVE, {":now": {"N": _number(time.time())}}, **extra
        )

    async def size(self) -> int:
        """The number of live entries (a paginated count; chunks are not entries)."""
        self._ensure_open()
        total = 0
        async for page in self._live_pages("size", Select="COUNT"):
            total += int(page.get("Count", 0))
        return total

    async def keys(self) -> AsyncIterator[str]:
        """Iterate over the live keys, a page at a time (in no particular order)."""
        self._ensure_open()
        cut = len(self._prefix)
        async for page in self._live_pages("keys", ProjectionExpression="#k"):
            for item in page.get("Items", []):
                yield item[KEY]["S"][cut:]

    async def items(self) -> AsyncIterator[tuple[str, bytes]]:
        """Iterate over live ``(key, value)`` pairs: each page of keys is one batch read."""
        self._ensure_open()
        cut = len(self._prefix)
        async for page in self._live_pages("items", ProjectionExpression="#k"):
            keys = [item[KEY]["S"][cut:] for item in page.get("Items", [])]
            for key, value in zip(keys, await self.read_many(keys), strict=True):
                if value is not None:
                    yield key, value

    async def delete_expired(self, now: float) -> int:
        """Remove the entries (and chunks) due at or before ``now``; count the entries.

        DynamoDB's own TTL does this eventually and for free; this is for when the space
        or the listing should be exact now.
        """
        self._ensure_open()
        doomed: list[dict[str, Any]] = []
        count = 0
        async for page in self._pages(
            "delete_expired",
            [self.namespace, self.chunk_namespace],
            "#e <= :now",
            {":now": {"N": _number(now)}},
            ProjectionExpression="#k, #ns",
        ):
            for item in page.get("Items", []):
                doomed.append({KEY: item[KEY]})
                count += item.get(NAMESPACE, {}).get("S") == self.namespace
        await self._delete_keys("delete_expired", doomed)
        return count

    async def clear(self) -> None:
        """Remove every entry and chunk of this namespace, and nothing else in the table."""
        self._ensure_open()
        async for page in self._pages(
            "clear", [self.namespace, self.chunk_namespace], None, {}, ProjectionExpression="#k"
        ):
            await self._delete_keys("clear", [{KEY: item[KEY]} for item in page.get("Items", [])])

    async def close(self) -> None:
        """Release the shared connection (closed with its last store). Idempotent."""
        if self._closed:
            return
        self._closed = True
        await self.connection.release()
