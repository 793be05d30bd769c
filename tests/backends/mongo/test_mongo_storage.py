"""MongoDBCache and MongoDBBackend against a real MongoDB wire-protocol server.

What the conformance kit cannot see: the documents and indexes on the server, the
commands the driver sends (through PyMongo's own command monitoring), the size limit,
user-owned clients and an unreachable server.

mongoeco removes an expired document as soon as it is read when a TTL index exists;
mongod removes it within a minute. The expiry tests therefore write expired documents
into a collection that has no TTL index yet (the store creates it on its first write),
so what hides them is the store's own filter, on either server.
"""

from __future__ import annotations

import datetime
import logging
import socket
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, TypeVar

import bson
import pytest
from acc_entries import large_entry
from pymongo import AsyncMongoClient
from pymongo.monitoring import CommandListener, CommandStartedEvent

from acc.backends.mongo import MAX_DOCUMENT_SIZE, TTL_INDEX_NAME, MongoDBBackend, MongoDBCache
from acc.backends.mongo.cache import _document_size
from acc.core import BackendError, BackendUnavailable, EntryTooLarge
from acc.core.codec import Codec

T = TypeVar("T")


class Commands(CommandListener):
    """Records the commands a client sends (PyMongo's monitoring API)."""

    def __init__(self) -> None:
        self.sent: list[CommandStartedEvent] = []

    def started(self, event: CommandStartedEvent) -> None:
        self.sent.append(event)

    def succeeded(self, event: Any) -> None:
        pass

    def failed(self, event: Any) -> None:
        pass

    def named(self, name: str) -> list[Any]:
        return [event.command for event in self.sent if event.command_name == name]

    def clear(self) -> None:
        self.sent.clear()


@pytest.fixture
def commands() -> Commands:
    return Commands()


@pytest.fixture
async def store(
    mongodb_url: str, mongodb_database: str, commands: Commands
) -> AsyncIterator[MongoDBCache]:
    cache = MongoDBCache(
        mongodb_database,
        "responses",
        url=mongodb_url,
        client_options={"event_listeners": [commands]},
    )
    yield cache
    await cache.close()


@pytest.fixture
async def client(mongodb_url: str) -> AsyncIterator[AsyncMongoClient[Any]]:
    """A client of the test's own, to look at the server behind acc's back."""
    client: AsyncMongoClient[Any] = AsyncMongoClient(mongodb_url)
    yield client
    await client.close()


async def _collect(iterator: AsyncIterator[T]) -> list[T]:
    return [item async for item in iterator]


def _past(seconds: float = 100) -> datetime.datetime:
    return datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(seconds=seconds)


async def _indexes(client: AsyncMongoClient[Any], db: str, collection: str) -> dict[str, Any]:
    cursor = await client[db][collection].list_indexes()
    return {index["name"]: index async for index in cursor}


# -- documents and indexes -------------------------------------------------------------


async def test_documents_have_the_documented_shape(
    store: MongoDBCache, client: AsyncMongoClient[Any], mongodb_database: str
) -> None:
    expires_at = 4_102_444_800.123456  # 2100-01-01, with a fraction below a millisecond
    await store.write("timed", b"\x00body", expires_at=expires_at)
    await store.write("forever", b"other")
    collection = client[mongodb_database]["responses"]
    timed = await collection.find_one({"_id": "timed"})
    forever = await collection.find_one({"_id": "forever"})
    assert timed is not None
    assert forever is not None
    assert set(timed) == {"_id", "value", "expires_at"}
    assert timed["value"] == b"\x00body"
    assert timed["expires_at"] == datetime.datetime(2100, 1, 1, 0, 0, 0, 123000)
    assert set(forever) == {"_id", "value"}  # no expiry: no field, ignored by the TTL index


async def test_ttl_index_is_created_by_the_first_write_with_expire_after_zero(
    store: MongoDBCache, client: AsyncMongoClient[Any], mongodb_database: str
) -> None:
    await store.read("k")
    assert TTL_INDEX_NAME not in await _indexes(client, mongodb_database, "responses")
    await store.write("k", b"v")
    index = (await _indexes(client, mongodb_database, "responses"))[TTL_INDEX_NAME]
    assert dict(index["key"]) == {"expires_at": 1}
    assert index["expireAfterSeconds"] == 0


async def test_ttl_index_is_created_once_per_store_however_many_writes(
    store: MongoDBCache, commands: Commands
) -> None:
    for i in range(20):
        await store.write(f"k{i}", b"v", expires_at=time.time() + 60)
    assert len(commands.named("createIndexes")) == 1
    assert len(commands.named("update")) == 20


async def test_an_existing_index_with_other_options_is_tolerated_with_a_warning(
    store: MongoDBCache,
    client: AsyncMongoClient[Any],
    mongodb_database: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    await client[mongodb_database]["responses"].create_index(
        "expires_at", name=TTL_INDEX_NAME, expireAfterSeconds=3600
    )
    with caplog.at_level(logging.WARNING, logger="acc"):
        await store.write("k", b"v")
    assert await store.read("k") == b"v"
    assert any("expires_at" in record.getMessage() for record in caplog.records)


async def test_write_is_one_upsert(store: MongoDBCache, commands: Commands) -> None:
    await store.write("k", b"first")
    commands.clear()
    await store.write("k", b"second")
    (update,) = commands.named("update")
    (statement,) = update["updates"]
    assert statement["upsert"] is True
    assert statement["q"] == {"_id": "k"}
    assert await store.read("k") == b"second"


# -- expiry: the store's own filter ------------------------------------------------------


async def test_expired_documents_are_hidden_by_the_store_before_the_server_removes_them(
    store: MongoDBCache, client: AsyncMongoClient[Any], mongodb_database: str
) -> None:
    collection = client[mongodb_database]["responses"]  # no TTL index yet: nothing removes
    await collection.insert_many(
        [
            {"_id": "dead", "value": b"old", "expires_at": _past()},
            {"_id": "live", "value": b"new", "expires_at": _past(-3600)},
            {"_id": "forever", "value": b"kept"},
        ]
    )
    assert await collection.count_documents({}) == 3
    assert await store.read("dead") is None
    assert await store.contains("dead") is False
    assert await store.read_many(["dead", "live", "forever"]) == [None, b"new", b"kept"]
    assert await store.size() == 2
    assert sorted(await _collect(store.keys())) == ["forever", "live"]
    assert sorted(dict([item async for item in store.items()])) == ["forever", "live"]
    assert await collection.count_documents({"_id": "dead"}) == 1  # hidden, not deleted


async def test_delete_expired_is_one_delete_on_expires_at(
    store: MongoDBCache, client: AsyncMongoClient[Any], mongodb_database: str, commands: Commands
) -> None:
    collection = client[mongodb_database]["responses"]
    await collection.insert_many(
        [
            {"_id": "a", "value": b"1", "expires_at": _past(200)},
            {"_id": "b", "value": b"2", "expires_at": _past(100)},
            {"_id": "c", "value": b"3"},
        ]
    )
    commands.clear()
    assert await store.delete_expired(time.time()) == 2
    (delete,) = commands.named("delete")
    assert list(delete["deletes"][0]["q"]) == ["expires_at"]
    assert [document["_id"] async for document in collection.find()] == ["c"]


# -- batches --------------------------------------------------------------------------


async def test_read_many_is_one_query_in_the_callers_order(
    store: MongoDBCache, commands: Commands
) -> None:
    for key in ("a", "b", "c"):
        await store.write(key, key.encode())
    commands.clear()
    assert await store.read_many(["c", "x", "a", "c", "b"]) == [b"c", None, b"a", b"c", b"b"]
    (find,) = commands.named("find")
    assert sorted(find["filter"]["_id"]["$in"]) == ["a", "b", "c", "x"]


async def test_bulk_delete_sends_one_delete_per_chunk(
    store: MongoDBCache, client: AsyncMongoClient[Any], mongodb_database: str, commands: Commands
) -> None:
    store.chunk_size = 10  # 1000 by default; mongoeco is slow with big $in lists
    keys = [f"key-{i:03d}" for i in range(30)]
    collection = client[mongodb_database]["responses"]
    await collection.insert_many([{"_id": key, "value": b"v"} for key in keys])
    commands.clear()
    await store.bulk_delete(iter(keys[:25] + keys[:5]))  # a one-shot iterator, repeats
    assert len(commands.named("delete")) == 3
    assert sorted(await _collect(store.keys())) == keys[25:]


async def test_read_many_keeps_order_across_chunks(store: MongoDBCache, commands: Commands) -> None:
    store.chunk_size = 10
    keys = [f"key-{i:03d}" for i in range(25)]
    for key in keys[::3]:
        await store.write(key, key.encode())
    commands.clear()
    wanted = list(reversed(keys))
    values = await store.read_many(wanted)
    assert values == [key.encode() if int(key[4:]) % 3 == 0 else None for key in wanted]
    assert len(commands.named("find")) == 3


def test_chunks_are_a_thousand_keys_by_default() -> None:
    assert MongoDBCache.chunk_size == 1000


async def test_clear_deletes_documents_and_keeps_the_collection_and_its_indexes(
    store: MongoDBCache, client: AsyncMongoClient[Any], mongodb_database: str, commands: Commands
) -> None:
    await store.write("k", b"v", expires_at=time.time() + 60)
    commands.clear()
    await store.clear()
    assert commands.named("drop") == []
    assert await client[mongodb_database]["responses"].count_documents({}) == 0
    assert TTL_INDEX_NAME in await _indexes(client, mongodb_database, "responses")


async def test_clear_leaves_other_databases_and_collections(
    mongodb_url: str, mongodb_database: str, client: AsyncMongoClient[Any]
) -> None:
    other_db = f"{mongodb_database}-other"
    mine = MongoDBCache(mongodb_database, "responses", url=mongodb_url)
    theirs = MongoDBCache(other_db, "responses", url=mongodb_url)
    try:
        await client[mongodb_database]["unrelated"].insert_one({"_id": "x"})
        await mine.write("k", b"mine")
        await theirs.write("k", b"theirs")
        await mine.clear()
        assert await theirs.read("k") == b"theirs"
        assert await client[mongodb_database]["unrelated"].count_documents({}) == 1
    finally:
        await mine.close()
        await theirs.close()
        await client.drop_database(other_db)


async def test_abandoned_key_iteration_leaves_the_store_usable(store: MongoDBCache) -> None:
    for i in range(300):
        await store.write(f"k{i:03d}", b"v")
    keys = store.keys()
    first = [await anext(keys) for _ in range(3)]
    await keys.aclose()  # type: ignore[attr-defined]
    assert first == ["k000", "k001", "k002"]
    assert await store.size() == 300


# -- the document size limit ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("key", "size", "expires"),
    [("k", 0, False), ("ünïcødé-键", 1000, True), ("x" * 300, 5, False)],
)
def test_document_size_is_the_size_of_the_bson_the_driver_sends(
    key: str, size: int, expires: bool
) -> None:
    document: dict[str, Any] = {"_id": key, "value": bson.Binary(b"\x01" * size)}
    if expires:
        document["expires_at"] = datetime.datetime(2100, 1, 1)
    assert _document_size(key, {"value": size}, expires=expires) == len(bson.encode(document))


async def test_an_entry_filling_a_whole_document_is_stored(store: MongoDBCache) -> None:
    overhead = _document_size("k", {"value": 0}, expires=True)
    value = bytes(range(256)) * ((MAX_DOCUMENT_SIZE - overhead) // 256)
    value += b"\x00" * (MAX_DOCUMENT_SIZE - overhead - len(value))
    await store.write("k", value, expires_at=time.time() + 60)
    assert await store.read("k") == value
    assert store.refused_writes == 0


async def test_an_entry_one_byte_too_large_is_refused_with_a_warning_and_reads_as_a_miss(
    store: MongoDBCache, commands: Commands, caplog: pytest.LogCaptureFixture
) -> None:
    await store.write("k", b"an older response")
    overhead = _document_size("k", {"value": 0}, expires=True)
    commands.clear()
    with caplog.at_level(logging.WARNING, logger="acc"), pytest.raises(EntryTooLarge):
        await store.write(
            "k", b"\x00" * (MAX_DOCUMENT_SIZE - overhead + 1), expires_at=time.time() + 60
        )
    assert store.refused_writes == 1
    assert commands.named("update") == []  # never sent
    assert await store.read("k") is None  # the older response is gone too
    (record,) = [r for r in caplog.records if "not caching" in r.getMessage()]
    assert record.levelno == logging.WARNING
    assert str(MAX_DOCUMENT_SIZE) in record.getMessage()


# -- large entries: head and body in fields of their own --------------------------------

BODY = bytes(range(256)) * (8 * 1024)  # 2 MiB


@pytest.mark.parametrize(
    ("key", "head", "body", "expires"),
    [("k", 0, 0, False), ("ünïcødé-键", 300, 1 << 20, True), ("x" * 300, 5, 7, False)],
)
def test_document_size_of_a_split_entry_is_the_size_of_its_bson(
    key: str, head: int, body: int, expires: bool
) -> None:
    document: dict[str, Any] = {"_id": key, "head": b"\x01" * head, "body": b"\x02" * body}
    if expires:
        document["expires_at"] = datetime.datetime(2100, 1, 1)
    sizes = {"head": head, "body": body}
    assert _document_size(key, sizes, expires=expires) == len(bson.encode(document))


async def test_a_large_body_written_in_parts_is_a_field_of_its_own(
    store: MongoDBCache, client: AsyncMongoClient[Any], mongodb_database: str
) -> None:
    await store.write("k", b"an older response")
    await store.write_parts("k", (b"he", b"ad", BODY), expires_at=time.time() + 60)
    document = await client[mongodb_database]["responses"].find_one({"_id": "k"})
    assert document is not None
    assert set(document) == {"_id", "head", "body", "expires_at"}  # no "value" left over
    assert document["head"] == b"head"  # the parts before the body, joined
    assert document["body"] == BODY


async def test_a_small_body_written_in_parts_is_stored_as_one_value(
    store: MongoDBCache, client: AsyncMongoClient[Any], mongodb_database: str
) -> None:
    await store.write_parts("k", (b"head", b"x" * (1024 * 1024 - 1)))
    document = await client[mongodb_database]["responses"].find_one({"_id": "k"})
    assert document is not None
    assert set(document) == {"_id", "value"}
    assert await store.read_parts("k", lambda prefix: 4) == (b"head" + b"x" * (1024 * 1024 - 1),)


async def test_read_parts_gives_the_stored_body_as_the_last_part_in_one_query(
    store: MongoDBCache, commands: Commands
) -> None:
    codec = Codec()
    head, body = codec.encode_parts(large_entry(BODY), key="k")
    await store.write_parts("k", (head, body))
    commands.clear()
    parts = await store.read_parts("k", codec.head_size)
    assert len(commands.named("find")) == 1
    assert parts is not None
    assert [type(part) for part in parts] == [bytes, bytes]
    assert [len(part) for part in parts] == [len(head), len(body)]
    assert parts == (head, body)
    decoded = codec.decode_parts(parts, key="k")
    assert decoded.body is parts[-1]  # the body PyMongo decoded, not a slice of it
    assert decoded == large_entry(BODY)


async def test_the_backend_writes_a_large_response_in_two_fields(
    mongodb_url: str, mongodb_database: str, client: AsyncMongoClient[Any]
) -> None:
    backend = MongoDBBackend(mongodb_database, url=mongodb_url)
    try:
        await backend.write_entry("k", large_entry(BODY))
        document = await client[mongodb_database]["responses"].find_one({})
        assert document is not None
        assert document["body"] == BODY
        parts = await backend.responses.read_parts(document["_id"], backend.codec.head_size)
        assert parts is not None
        assert parts[-1] == BODY
        assert backend.codec.decode_parts(parts, key=document["_id"]).body is parts[-1]
        assert await backend.read_entry("k") == large_entry(BODY)
    finally:
        await backend.close()


async def test_every_other_read_of_a_split_entry_gives_the_joined_value(
    store: MongoDBCache,
) -> None:
    await store.write_parts("big", (b"head:", BODY))
    await store.write("small", b"whole")
    joined = b"head:" + BODY
    assert await store.read("big") == joined
    assert await store.read_many(["big", "small", "missing"]) == [joined, b"whole", None]
    assert dict([pair async for pair in store.items()]) == {"big": joined, "small": b"whole"}
    assert await store.contains("big") is True


async def test_documents_of_the_single_value_form_still_read_in_one_part(
    store: MongoDBCache, client: AsyncMongoClient[Any], mongodb_database: str
) -> None:
    collection = client[mongodb_database]["responses"]
    await collection.insert_one({"_id": "old", "value": bson.Binary(b"head:" + BODY)})
    parts = await store.read_parts("old", lambda prefix: 5)
    assert parts is not None
    assert [type(part) for part in parts] == [bytes]
    assert parts[0] == b"head:" + BODY
    assert await store.read("old") == b"head:" + BODY


async def test_a_document_without_a_value_reads_as_a_miss(
    store: MongoDBCache, client: AsyncMongoClient[Any], mongodb_database: str
) -> None:
    collection = client[mongodb_database]["responses"]
    await collection.insert_many(
        [
            {"_id": "nothing"},
            {"_id": "text", "value": "not bytes"},
            {"_id": "headless", "body": BODY},
        ]
    )
    for key in ("nothing", "text", "headless"):
        assert await store.read(key) is None
        assert await store.read_parts(key, lambda prefix: 1) is None
    assert await store.read_many(["nothing", "text", "headless"]) == [None, None, None]
    assert [pair async for pair in store.items()] == []


async def test_a_split_entry_filling_a_whole_document_is_stored(store: MongoDBCache) -> None:
    head = b"h" * 100
    overhead = _document_size("k", {"head": len(head), "body": 0}, expires=True)
    body = b"\x00" * (MAX_DOCUMENT_SIZE - overhead)
    await store.write_parts("k", (head, body), expires_at=time.time() + 60)
    parts = await store.read_parts("k")
    assert parts is not None
    assert [len(part) for part in parts] == [len(head), len(body)]
    assert store.refused_writes == 0


async def test_a_split_entry_one_byte_too_large_is_refused_and_the_older_one_removed(
    store: MongoDBCache, commands: Commands, caplog: pytest.LogCaptureFixture
) -> None:
    await store.write_parts("k", (b"older head", BODY))
    head = b"h" * 100
    overhead = _document_size("k", {"head": len(head), "body": 0}, expires=True)
    body = b"\x00" * (MAX_DOCUMENT_SIZE - overhead + 1)
    commands.clear()
    with caplog.at_level(logging.WARNING, logger="acc"), pytest.raises(EntryTooLarge):
        await store.write_parts("k", (head, body), expires_at=time.time() + 60)
    assert store.refused_writes == 1
    assert commands.named("update") == []  # never sent
    assert await store.read_parts("k") is None  # the older response is gone too
    assert any("not caching" in record.getMessage() for record in caplog.records)


# -- clients and failures -------------------------------------------------------------------


async def test_a_users_client_is_never_closed_by_acc(
    client: AsyncMongoClient[Any], mongodb_database: str
) -> None:
    backend = MongoDBBackend(mongodb_database, client=client, expire_after=60)
    assert backend.client is client
    assert backend.connection.owns_client is False
    await backend.responses.write("k", b"v")
    await backend.close()
    assert backend.connection.closed
    assert await client[mongodb_database]["responses"].count_documents({}) == 1


async def test_a_client_acc_built_is_closed_with_the_backend(
    mongodb_url: str, mongodb_database: str
) -> None:
    backend = MongoDBBackend(mongodb_database, url=mongodb_url)
    await backend.responses.write("k", b"v")
    client = backend.client
    await backend.close()
    with pytest.raises(Exception, match="after close"):
        await client[mongodb_database]["responses"].find_one({})


async def test_a_closed_users_client_is_a_backend_error_not_an_outage(
    mongodb_url: str, mongodb_database: str
) -> None:
    client: AsyncMongoClient[Any] = AsyncMongoClient(mongodb_url)
    store = MongoDBCache(mongodb_database, client=client)
    await store.write("k", b"v")
    await client.close()
    with pytest.raises(BackendError) as caught:
        await store.read("k")
    assert not isinstance(caught.value, BackendUnavailable)
    await store.close()


@pytest.mark.parametrize("operation", ["read", "write", "delete"])
async def test_a_key_the_driver_cannot_encode_is_a_backend_error(
    store: MongoDBCache, operation: str
) -> None:
    key = "lone-surrogate-\ud800"  # a str, but not valid UTF-8
    calls: dict[str, Callable[[], Awaitable[object]]] = {
        "read": lambda: store.read(key),
        "write": lambda: store.write(key, b"v"),
        "delete": lambda: store.delete(key),
    }
    with pytest.raises(BackendError) as caught:
        await calls[operation]()
    assert not isinstance(caught.value, BackendUnavailable)
    assert await store.size() == 0


def _dead_port() -> int:
    """A port on 127.0.0.1 that nothing listens on (bound, then released)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


@pytest.mark.parametrize(
    "operation",
    [
        lambda s: s.read("k"),
        lambda s: s.write("k", b"v"),
        lambda s: s.read_many(["a", "b"]),
        lambda s: s.size(),
        lambda s: s.clear(),
        lambda s: s.delete_expired(time.time()),
    ],
    ids=["read", "write", "read_many", "size", "clear", "delete_expired"],
)
async def test_an_unreachable_server_is_backend_unavailable(operation: Any) -> None:
    store = MongoDBCache(
        "db",
        url=f"mongodb://127.0.0.1:{_dead_port()}/?directConnection=true",
        client_options={"serverSelectionTimeoutMS": 200},
    )
    try:
        with pytest.raises(BackendUnavailable, match=r"127\.0\.0\.1"):
            await operation(store)
    finally:
        await store.close()


async def test_keys_from_an_unreachable_server_is_backend_unavailable() -> None:
    store = MongoDBCache(
        "db",
        url=f"mongodb://127.0.0.1:{_dead_port()}",
        client_options={"serverSelectionTimeoutMS": 200},
    )
    try:
        with pytest.raises(BackendUnavailable):
            await _collect(store.keys())
    finally:
        await store.close()


async def test_two_backends_on_one_database_see_each_others_writes(
    mongodb_url: str, mongodb_database: str
) -> None:
    first = MongoDBBackend(mongodb_database, url=mongodb_url)
    second = MongoDBBackend(mongodb_database, url=mongodb_url)
    try:
        await first.responses.write("k", b"from first")
        assert await second.responses.read("k") == b"from first"
        await second.clear()
        assert await first.responses.read("k") is None
    finally:
        await first.close()
        await second.close()
