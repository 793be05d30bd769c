"""DynamoDBCache's items: large entries, expiry, batches, pages, projections.

Against a real endpoint over HTTP. The calls a store makes are observed through
botocore's event system (part of the real driver); a few tests also use it to make a
batch answer "unprocessed", as DynamoDB does when it throttles, which moto never does.
"""

from __future__ import annotations

import asyncio
import math
import random
import time
import zlib
from collections.abc import AsyncIterator
from typing import Any

import pytest
from acc_entries import large_entry
from acc_services.dynamodb import (
    calls_to,
    dynamodb_client,
    dynamodb_options,
    record_calls,
    unique_name,
)

from acc.backends.dynamodb import ITEM_LIMIT, DynamoDBBackend, DynamoDBCache
from acc.backends.dynamodb import connection as connection_module
from acc.core import BackendUnavailable
from acc.core.codec import Codec

TWO_MB = random.Random(7).randbytes(2 * 1024 * 1024)  # incompressible


@pytest.fixture
async def store(dynamodb_url: str) -> AsyncIterator[DynamoDBCache]:
    cache = DynamoDBCache(
        "acc-tests",
        "responses",
        cache_name=unique_name("items"),
        create_table=True,
        **dynamodb_options(dynamodb_url),
    )
    await cache.contains("warm-up")  # open the client and check the table first
    yield cache
    await cache.close()


async def _client(store: DynamoDBCache) -> Any:
    return await store.connection.client()


async def _raw_items(store: DynamoDBCache, namespace: str) -> list[dict[str, Any]]:
    """Every item stored under ``namespace``, expired or not, read without the store."""
    client = await _client(store)
    items: list[dict[str, Any]] = []
    start: dict[str, Any] | None = None
    while True:
        extra = {"ExclusiveStartKey": start} if start else {}
        page = await client.scan(
            TableName=store.table_name,
            FilterExpression="#ns = :ns",
            ExpressionAttributeNames={"#ns": "namespace"},
            ExpressionAttributeValues={":ns": {"S": namespace}},
            ConsistentRead=True,
            **extra,
        )
        items.extend(page["Items"])
        start = page.get("LastEvaluatedKey")
        if not start:
            return items


async def _raw_item(store: DynamoDBCache, key: str) -> dict[str, Any] | None:
    client = await _client(store)
    response = await client.get_item(
        TableName=store.table_name,
        Key={"key": {"S": f"{store.namespace}:{key}"}},
        ConsistentRead=True,
    )
    item: dict[str, Any] | None = response.get("Item")
    return item


# -- layout -------------------------------------------------------------------------------


async def test_an_entry_is_one_item_keyed_by_namespace_and_key(store: DynamoDBCache) -> None:
    expires_at = time.time() + 3600.0004
    await store.write("k", b"value", expires_at=expires_at)
    item = await _raw_item(store, "k")
    assert item is not None
    assert item["key"] == {"S": f"{store.cache_name}:responses:k"}
    assert item["namespace"] == {"S": f"{store.cache_name}:responses"}
    assert item["value"] == {"B": b"value"}
    stored = float(item["expires_at"]["N"])  # a Number: what DynamoDB's TTL reads
    assert expires_at <= stored < expires_at + 0.001  # rounded up, to the millisecond


async def test_an_entry_without_expiry_has_no_ttl_attribute(store: DynamoDBCache) -> None:
    await store.write("k", b"v", expires_at=5.0)
    await store.write("k", b"v", expires_at=None)
    item = await _raw_item(store, "k")
    assert item is not None
    assert "expires_at" not in item


# -- expiry: DynamoDB deletes late, so the store filters --------------------------------


async def test_expired_items_stay_stored_but_are_never_served(store: DynamoDBCache) -> None:
    await store.write("dead", b"old", expires_at=time.time() - 5)
    await store.write("live", b"new", expires_at=time.time() + 3600)
    assert await _raw_item(store, "dead") is not None  # still in the table, as in DynamoDB
    assert await store.read("dead") is None
    assert await store.contains("dead") is False
    assert await store.read_many(["dead", "live"]) == [None, b"new"]
    assert [key async for key in store.keys()] == ["live"]  # noqa: SIM118 - async iterator
    assert await store.size() == 1
    assert [pair async for pair in store.items()] == [("live", b"new")]


async def test_delete_expired_removes_entries_and_their_chunks(store: DynamoDBCache) -> None:
    now = time.time()
    await store.write("small", b"x", expires_at=now - 10)
    await store.write("large", TWO_MB, expires_at=now - 10)
    await store.write("keep", TWO_MB, expires_at=now + 3600)
    kept_chunks = len(await _raw_items(store, store.chunk_namespace)) // 2
    assert await store.delete_expired(now) == 2  # chunks are not counted as entries
    assert [item["key"]["S"] for item in await _raw_items(store, store.namespace)] == [
        f"{store.namespace}:keep"
    ]
    assert len(await _raw_items(store, store.chunk_namespace)) == kept_chunks
    assert await store.read("keep") == TWO_MB


# -- the 400 KB item limit ----------------------------------------------------------------


async def test_a_large_compressible_entry_is_stored_compressed_in_one_item(
    store: DynamoDBCache,
) -> None:
    value = b"a highly repetitive response body " * 40_000  # 1.4 MB, shrinks to a few KB
    await store.write("k", value)
    item = await _raw_item(store, "k")
    assert item is not None
    assert item["codec"] == {"S": "zlib"}
    assert len(item["value"]["B"]) < ITEM_LIMIT
    assert zlib.decompress(item["value"]["B"]) == value
    assert await _raw_items(store, store.chunk_namespace) == []
    assert await store.read("k") == value


async def test_a_small_entry_is_stored_as_it_is(store: DynamoDBCache) -> None:
    value = b"compressible " * 1000  # small enough: compressing it would only cost time
    await store.write("k", value)
    item = await _raw_item(store, "k")
    assert item is not None
    assert "codec" not in item
    assert item["value"] == {"B": value}


async def test_a_two_megabyte_incompressible_entry_is_split_and_read_back_whole(
    store: DynamoDBCache,
) -> None:
    await store.write("big", TWO_MB, expires_at=time.time() + 3600)
    manifest = await _raw_item(store, "big")
    assert manifest is not None
    assert "value" not in manifest
    parts = int(manifest["parts"]["N"])
    chunks = await _raw_items(store, store.chunk_namespace)
    assert len(chunks) == parts
    assert (
        math.ceil(len(TWO_MB) / ITEM_LIMIT) <= parts <= math.ceil(len(TWO_MB) / (ITEM_LIMIT - 4096))
    )
    write_id = manifest["write_id"]["S"]
    assert sorted(c["key"]["S"] for c in chunks) == sorted(
        f"{store.chunk_namespace}{write_id}:{i}" for i in range(parts)
    )
    assert all(c["expires_at"] == manifest["expires_at"] for c in chunks)
    assert await store.read("big") == TWO_MB
    assert await store.read_many(["big", "missing", "big"]) == [TWO_MB, None, TWO_MB]
    assert await store.size() == 1  # chunks are not entries
    assert [key async for key in store.keys()] == ["big"]  # noqa: SIM118 - async iterator


async def test_chunks_are_written_before_the_manifest_that_commits_them(
    store: DynamoDBCache,
) -> None:
    calls = record_calls(await _client(store))
    await store.write("big", TWO_MB)
    operations = [operation for operation, _ in calls]
    assert operations[-1] == "PutItem"
    assert set(operations[:-1]) == {"BatchWriteItem"}
    for params in calls_to(calls, "BatchWriteItem"):
        (requests,) = params["RequestItems"].values()
        assert len(requests) <= 25


async def test_overwriting_a_split_entry_removes_the_old_chunks(store: DynamoDBCache) -> None:
    await store.write("big", TWO_MB)
    first = await _raw_item(store, "big")
    replacement = random.Random(8).randbytes(len(TWO_MB))
    await store.write("big", replacement)
    second = await _raw_item(store, "big")
    assert first is not None
    assert second is not None
    assert first["write_id"] != second["write_id"]
    chunks = await _raw_items(store, store.chunk_namespace)
    assert {c["key"]["S"].rsplit(":", 1)[0] for c in chunks} == {
        f"{store.chunk_namespace}{second['write_id']['S']}"
    }
    assert await store.read("big") == replacement
    await store.write("big", b"small now")
    assert await _raw_items(store, store.chunk_namespace) == []
    assert await store.read("big") == b"small now"


@pytest.mark.parametrize("how", ["delete", "bulk_delete", "clear"])
async def test_deleting_a_split_entry_removes_its_chunks(store: DynamoDBCache, how: str) -> None:
    await store.write("big", TWO_MB)
    await store.write("other", b"x")
    if how == "delete":
        await store.delete("big")
    elif how == "bulk_delete":
        await store.bulk_delete(["big", "other"])
    else:
        await store.clear()
    assert await _raw_items(store, store.chunk_namespace) == []
    assert await store.read("big") is None


async def test_clear_removes_chunks_orphaned_by_an_interrupted_write(store: DynamoDBCache) -> None:
    client = await _client(store)
    await client.put_item(
        TableName=store.table_name,
        Item={
            "key": {"S": f"{store.chunk_namespace}deadbeef:0"},
            "namespace": {"S": store.chunk_namespace},
            "value": {"B": b"left behind"},
        },
    )
    await store.clear()
    assert await _raw_items(store, store.chunk_namespace) == []


@pytest.mark.parametrize("how", ["read", "read_parts"])
async def test_a_reader_never_mixes_chunks_of_two_writes(
    store: DynamoDBCache, dynamodb_url: str, how: str
) -> None:
    """A write lands between a reader's manifest read and its chunk read.

    The reader's chunks are gone by then (the writer deleted them), so it reads the
    manifest again and returns the new value whole, never old and new chunks mixed.
    """
    replacement = random.Random(9).randbytes(len(TWO_MB))
    writer = DynamoDBCache(
        "acc-tests",
        "responses",
        cache_name=store.cache_name,
        **dynamodb_options(dynamodb_url),
    )
    await store.write("big", TWO_MB)
    interleaved: list[bool] = []

    async def overwrite_first(**_: Any) -> None:
        if not interleaved:
            interleaved.append(True)
            await writer.write("big", replacement)

    client = await _client(store)
    client.meta.events.register("before-call.dynamodb.BatchGetItem", overwrite_first)
    try:
        if how == "read":
            assert await store.read("big") == replacement
        else:
            parts = await store.read_parts("big", lambda prefix: 1000)
            assert parts is not None
            assert [len(part) for part in parts] == [1000, len(replacement) - 1000]
            assert b"".join(parts) == replacement
    finally:
        client.meta.events.unregister("before-call.dynamodb.BatchGetItem", overwrite_first)
        await writer.close()
    assert interleaved == [True]


async def test_a_damaged_split_entry_reads_as_a_miss(store: DynamoDBCache) -> None:
    await store.write("big", TWO_MB)
    manifest = await _raw_item(store, "big")
    assert manifest is not None
    client = await _client(store)
    manifest["length"] = {"N": "12"}  # tampered with: the chunks do not add up
    await client.put_item(TableName=store.table_name, Item=manifest)
    assert await store.read("big") is None
    calls = record_calls(client)
    manifest["parts"] = {"N": str(10**9)}  # would be ten million batch reads
    await client.put_item(TableName=store.table_name, Item=manifest)
    assert await store.read("big") is None
    assert calls_to(calls, "BatchGetItem") == []


# -- reading a large entry in parts: the body is the one copy ----------------------------

COMPRESSIBLE = bytes(range(256)) * (8 * 1024)  # 2 MiB that zlib shrinks to a few KB
HALF_RANDOM = random.Random(11).randbytes(1024 * 1024) + bytes(1024 * 1024)  # ~1 MiB zipped


@pytest.mark.parametrize(
    ("body", "compressed", "chunked"),
    [(COMPRESSIBLE, True, False), (TWO_MB, False, True), (HALF_RANDOM, True, True)],
    ids=["compressed", "split", "compressed-and-split"],
)
async def test_read_parts_gives_the_body_as_a_part_of_its_own(
    store: DynamoDBCache, body: bytes, compressed: bool, chunked: bool
) -> None:
    codec = Codec()
    head, encoded_body = codec.encode_parts(large_entry(body), key="k")
    await store.write_parts("k", (head, encoded_body))
    item = await _raw_item(store, "k")
    assert item is not None
    assert ("codec" in item) == compressed
    assert ("value" not in item) == chunked
    parts = await store.read_parts("k", codec.head_size)
    assert parts is not None
    assert [type(part) for part in parts] == [bytes, bytes]
    assert [len(part) for part in parts] == [len(head), len(body)]
    assert parts == (head, body)
    decoded = codec.decode_parts(parts, key="k")
    assert decoded.body is parts[-1]  # the body the inflate or the join made, not a slice
    assert decoded == large_entry(body)
    value = head + body
    assert await store.read("k") == value
    assert await store.read_many(["k", "missing"]) == [value, None]
    assert [pair async for pair in store.items()] == [("k", value)]


async def test_an_entry_written_whole_is_cut_too(store: DynamoDBCache) -> None:
    """What :meth:`write` stored, as every version did, reads in two parts as well."""
    codec = Codec()
    data = codec.encode(large_entry(TWO_MB), key="k")
    await store.write("k", data)
    parts = await store.read_parts("k", codec.head_size)
    assert parts is not None
    assert len(parts) == 2
    assert parts[-1] == TWO_MB
    assert codec.decode_parts(parts, key="k").body is parts[-1]


async def test_the_backend_reads_a_large_response_with_its_body_as_a_part(
    dynamodb_url: str,
) -> None:
    backend = DynamoDBBackend(
        unique_name("parts"),
        table_name="acc-tests",
        create_table=True,
        **dynamodb_options(dynamodb_url),
    )
    try:
        await backend.write_entry("k", large_entry(TWO_MB))
        assert await backend.read_entry("k") == large_entry(TWO_MB)
        (key,) = [key async for key in backend.responses.keys()]  # noqa: SIM118
        parts = await backend.responses.read_parts(key, backend.codec.head_size)
        assert parts is not None
        assert parts[-1] == TWO_MB
        assert backend.codec.decode_parts(parts, key=key).body is parts[-1]
    finally:
        await backend.close()


async def test_a_small_item_comes_back_whole_whatever_the_splitter(store: DynamoDBCache) -> None:
    await store.write("k", b"small value")
    assert await store.read_parts("k", lambda prefix: 3) == (b"small value",)
    assert await store.read_parts("k") == (b"small value",)


@pytest.mark.parametrize(
    "payload",
    [b"not zlib at all", zlib.compress(COMPRESSIBLE)[:-100], zlib.compress(COMPRESSIBLE)[:50]],
    ids=["garbage", "truncated", "a-few-bytes"],
)
async def test_a_compressed_payload_that_does_not_inflate_reads_as_a_miss(
    store: DynamoDBCache, payload: bytes
) -> None:
    client = await _client(store)
    await client.put_item(
        TableName=store.table_name,
        Item={
            "key": {"S": f"{store.namespace}:k"},
            "namespace": {"S": store.namespace},
            "value": {"B": payload},
            "codec": {"S": "zlib"},
        },
    )
    assert await store.read("k") is None
    assert await store.read_parts("k") is None
    assert await store.read_parts("k", lambda prefix: 10) is None
    assert await store.read_parts("k", lambda prefix: 10**9) is None


# -- batches ------------------------------------------------------------------------------


async def test_bulk_delete_sends_batches_of_at_most_25(store: DynamoDBCache) -> None:
    keys = [f"k{i}" for i in range(60)]
    for key in keys:
        await store.write(key, b"v")
    calls = record_calls(await _client(store))
    await store.bulk_delete([*keys, *keys[:5], "never-written"])  # duplicates are sent once
    writes = calls_to(calls, "BatchWriteItem")
    sizes = [len(next(iter(params["RequestItems"].values()))) for params in writes]
    assert sizes == [25, 25, 11]
    assert [operation for operation, _ in calls].count("BatchGetItem") == 1  # finds manifests
    assert await store.size() == 0


async def test_read_many_sends_batches_of_at_most_100_and_keeps_input_order(
    store: DynamoDBCache,
) -> None:
    keys = [f"k{i}" for i in range(250)]
    for key in keys[::2]:
        await store.write(key, key.encode())
    calls = record_calls(await _client(store))
    wanted = list(reversed(keys))
    values = await store.read_many(wanted)
    assert values == [k.encode() if int(k[1:]) % 2 == 0 else None for k in wanted]
    batches = calls_to(calls, "BatchGetItem")
    assert [len(next(iter(p["RequestItems"].values()))["Keys"]) for p in batches] == [
        100,
        100,
        50,
    ]
    assert all(next(iter(p["RequestItems"].values()))["ConsistentRead"] for p in batches)


def _answer_unprocessed(client: Any, operation: str, times: int) -> list[int]:
    """Make the next ``times`` answers to ``operation`` give part of the batch back.

    DynamoDB answers a throttled batch with ``UnprocessedItems``/``UnprocessedKeys``;
    moto never does, so the answer is edited on its way back (through botocore's
    ``after-call`` event). Re-sending deletes and reads is harmless, so the store's
    retry is observable without losing anything.
    """
    returned: list[int] = []

    def edit(parsed: dict[str, Any], model: Any, **_: Any) -> None:
        if len(returned) >= times:
            return
        request = edit.params  # type: ignore[attr-defined]
        (table, entries) = next(iter(request["RequestItems"].items()))
        if operation == "BatchWriteItem":
            parsed["UnprocessedItems"] = {table: entries[-5:]}
            returned.append(len(entries[-5:]))
        else:
            keys = entries["Keys"][-5:]
            parsed["UnprocessedKeys"] = {table: {"Keys": keys}}
            withheld = {key["key"]["S"] for key in keys}
            parsed["Responses"][table] = [
                item for item in parsed["Responses"][table] if item["key"]["S"] not in withheld
            ]
            returned.append(len(keys))

    def keep(params: dict[str, Any], **_: Any) -> None:
        edit.params = params  # type: ignore[attr-defined]

    client.meta.events.register(f"before-parameter-build.dynamodb.{operation}", keep)
    client.meta.events.register(f"after-call.dynamodb.{operation}", edit)
    return returned


async def test_unprocessed_deletes_are_sent_again(store: DynamoDBCache) -> None:
    keys = [f"k{i}" for i in range(30)]
    for key in keys:
        await store.write(key, b"v")
    client = await _client(store)
    returned = _answer_unprocessed(client, "BatchWriteItem", times=2)
    calls = record_calls(client)
    await store.bulk_delete(keys)
    sizes = [len(next(iter(p["RequestItems"].values()))) for p in calls_to(calls, "BatchWriteItem")]
    assert returned == [5, 5]
    assert sizes == [25, 5, 5, 5]  # 5 of the first batch come back twice; then the last 5
    assert await store.size() == 0


async def test_unprocessed_keys_are_read_again_and_order_is_kept(store: DynamoDBCache) -> None:
    keys = [f"k{i}" for i in range(20)]
    for key in keys:
        await store.write(key, key.encode())
    client = await _client(store)
    returned = _answer_unprocessed(client, "BatchGetItem", times=1)
    assert await store.read_many(keys) == [key.encode() for key in keys]
    assert returned == [5]


async def test_a_batch_throttled_for_good_is_backend_unavailable(
    store: DynamoDBCache, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(connection_module, "_BATCH_ATTEMPTS", 2)
    for key in ("a", "b"):
        await store.write(key, b"v")
    client = await _client(store)
    _answer_unprocessed(client, "BatchWriteItem", times=1000)
    with pytest.raises(BackendUnavailable, match="unprocessed after 2 attempts"):
        await store.bulk_delete(["a", "b"])


# -- reads that read little ---------------------------------------------------------------


async def test_contains_reads_only_the_key_and_the_expiry(store: DynamoDBCache) -> None:
    await store.write("k", b"x" * 100_000)
    client = await _client(store)
    answers: list[dict[str, Any]] = []
    client.meta.events.register(
        "after-call.dynamodb.GetItem", lambda parsed, **_: answers.append(parsed)
    )
    calls = record_calls(client)
    assert await store.contains("k") is True
    assert await store.contains("missing") is False
    (params, _) = calls_to(calls, "GetItem")
    assert params["ProjectionExpression"] == "#k, #e"
    assert set(answers[0]["Item"]) == {"key"}  # no value came over the wire


async def test_size_and_keys_page_through_the_namespace(dynamodb_url: str) -> None:
    # A table of its own: a scan pages through the whole table, other tests' items too.
    store = DynamoDBCache(
        unique_name("paged"),
        "responses",
        create_table=True,
        **dynamodb_options(dynamodb_url),
    )
    neighbour = DynamoDBCache(store.connection, "redirects")
    try:
        for i in range(7):
            await store.write(f"k{i}", b"v")
            await neighbour.write(f"n{i}", b"v")
        store.page_size = 3
        calls = record_calls(await _client(store))
        assert await store.size() == 7
        assert sorted([key async for key in store.keys()]) == [f"k{i}" for i in range(7)]  # noqa: SIM118
        scans = calls_to(calls, "Scan")
        assert len(scans) >= 2 * 5  # 14 items in the table, 3 a page: 5 pages per listing
        assert all(scan["ConsistentRead"] is True and scan["Limit"] == 3 for scan in scans)
        assert all(":ns0" in scan["ExpressionAttributeValues"] for scan in scans)
    finally:
        await neighbour.close()
        await store.close()
        async with dynamodb_client(dynamodb_url) as raw:
            await raw.delete_table(TableName=store.table_name)


async def test_with_a_namespace_index_listing_queries_it_instead_of_scanning(
    dynamodb_url: str,
) -> None:
    store = DynamoDBCache(
        "acc-tests-indexed",
        "responses",
        cache_name=unique_name("indexed"),
        create_table=True,
        namespace_index="namespace-index",
        **dynamodb_options(dynamodb_url),
    )
    try:
        await store.write("a", b"1")
        await store.write("big", TWO_MB)
        calls = record_calls(await _client(store))
        assert await store.size() == 2
        assert sorted([key async for key in store.keys()]) == ["a", "big"]  # noqa: SIM118
        await store.clear()
        assert await store.size() == 0
        operations = {operation for operation, _ in calls}
        assert "Scan" not in operations
        queries = calls_to(calls, "Query")
        assert queries
        assert all(query["IndexName"] == "namespace-index" for query in queries)
    finally:
        await store.close()


async def test_many_concurrent_split_writes_of_one_key_leave_one_whole_value(
    store: DynamoDBCache,
) -> None:
    values = [random.Random(i).randbytes(600_000) for i in range(4)]
    await asyncio.gather(*(store.write("k", value) for value in values))
    assert await store.read("k") in values
    manifest = await _raw_item(store, "k")
    assert manifest is not None
    chunks = await _raw_items(store, store.chunk_namespace)
    assert {c["key"]["S"].rsplit(":", 1)[0] for c in chunks} == {
        f"{store.chunk_namespace}{manifest['write_id']['S']}"
    }  # the losers' chunks were removed by the writers that replaced them
