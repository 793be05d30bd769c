"""The table and the client: creation, TTL, key-schema checks, ownership, outages.

Against a real endpoint (moto's standalone server or DynamoDB Local, over HTTP). Tests
that need a table of their own create it under a fresh name.
"""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import AsyncIterator
from typing import Any

import aioboto3  # type: ignore[import-untyped]
import pytest
from acc_services.dynamodb import (
    dynamodb_client,
    dynamodb_options,
    record_calls,
    start_moto_server,
    unique_name,
)

from acc.backends.dynamodb import DynamoDBBackend, DynamoDBCache
from acc.core import BackendError, BackendUnavailable


@pytest.fixture
async def raw(dynamodb_url: str) -> AsyncIterator[Any]:
    """A plain client of the test endpoint, for the tests' own requests."""
    async with dynamodb_client(dynamodb_url) as client:
        yield client


async def _create(raw: Any, name: str, keys: list[tuple[str, str, str]], **extra: Any) -> None:
    """Create a table with ``keys`` as (attribute, type, HASH or RANGE)."""
    await raw.create_table(
        TableName=name,
        AttributeDefinitions=[{"AttributeName": a, "AttributeType": t} for a, t, _ in keys],
        KeySchema=[{"AttributeName": a, "KeyType": k} for a, _, k in keys],
        BillingMode="PAY_PER_REQUEST",
        **extra,
    )


def _http_sessions_open(client: Any) -> bool:
    """Whether a client's aiohttp sessions are open: aiobotocore clears them on close.

    (A private attribute: a closed aiobotocore client still answers, reopening its HTTP
    session, so closing cannot be observed through calls.)
    """
    return bool(client._endpoint.http_session._sessions)


# -- creating and checking the table -------------------------------------------------------


async def test_create_table_makes_an_on_demand_table_with_ttl_on_expires_at(
    dynamodb_url: str, raw: Any
) -> None:
    name = unique_name("created")
    backend = DynamoDBBackend(table_name=name, create_table=True, **dynamodb_options(dynamodb_url))
    try:
        await backend.responses.write("k", b"v")
        table = (await raw.describe_table(TableName=name))["Table"]
        assert table["KeySchema"] == [{"AttributeName": "key", "KeyType": "HASH"}]
        assert {"AttributeName": "key", "AttributeType": "S"} in table["AttributeDefinitions"]
        assert table["BillingModeSummary"]["BillingMode"] == "PAY_PER_REQUEST"
        assert not table.get("GlobalSecondaryIndexes")
        ttl = (await raw.describe_time_to_live(TableName=name))["TimeToLiveDescription"]
        assert ttl["TimeToLiveStatus"] in ("ENABLED", "ENABLING")
        assert ttl["AttributeName"] == "expires_at"
        assert await backend.responses.read("k") == b"v"
    finally:
        await backend.close()
        await raw.delete_table(TableName=name)


async def test_create_table_with_a_namespace_index_creates_the_index(
    dynamodb_url: str, raw: Any
) -> None:
    name = unique_name("indexed")
    backend = DynamoDBBackend(
        table_name=name,
        create_table=True,
        namespace_index="ns-index",
        **dynamodb_options(dynamodb_url),
    )
    try:
        await backend.responses.write("k", b"v")
        (index,) = (await raw.describe_table(TableName=name))["Table"]["GlobalSecondaryIndexes"]
        assert index["IndexName"] == "ns-index"
        assert index["KeySchema"] == [{"AttributeName": "namespace", "KeyType": "HASH"}]
        assert index["Projection"]["ProjectionType"] == "INCLUDE"
        assert "expires_at" in index["Projection"]["NonKeyAttributes"]
        assert await backend.responses.size() == 1
    finally:
        await backend.close()
        await raw.delete_table(TableName=name)


async def test_an_existing_table_is_used_without_creating_or_touching_ttl(
    dynamodb_url: str, raw: Any
) -> None:
    """Without create_table acc needs only DescribeTable on top of the data calls."""
    name = unique_name("existing")
    await _create(raw, name, [("key", "S", "HASH")])
    calls = record_calls(raw)
    backend = DynamoDBBackend(table_name=name, client=raw)
    try:
        await backend.responses.write("k", b"v")
        assert await backend.responses.read("k") == b"v"
        assert [operation for operation, _ in calls] == ["DescribeTable", "PutItem", "GetItem"]
    finally:
        await backend.close()
        await raw.delete_table(TableName=name)


async def test_a_missing_table_is_a_clear_error_unless_create_table(dynamodb_url: str) -> None:
    name = unique_name("missing")
    store = DynamoDBCache(name, "responses", **dynamodb_options(dynamodb_url))
    try:
        with pytest.raises(BackendError) as error:
            await store.read("k")
        assert not isinstance(error.value, BackendUnavailable)
        assert f"{name!r} does not exist" in str(error.value)
        assert "create_table=True" in str(error.value)
    finally:
        await store.close()


@pytest.mark.parametrize(
    ("keys", "found"),
    [
        ([("id", "S", "HASH")], "id (HASH, type S)"),
        ([("key", "N", "HASH")], "key (HASH, type N)"),
        ([("key", "S", "HASH"), ("sort", "S", "RANGE")], "sort (RANGE, type S)"),
    ],
    ids=["other-name", "number-key", "sort-key"],
)
async def test_a_table_with_another_key_schema_is_refused_with_what_was_found(
    dynamodb_url: str, raw: Any, keys: list[tuple[str, str, str]], found: str
) -> None:
    name = unique_name("wrong")
    await _create(raw, name, keys)
    for create_table in (False, True):  # create_table never "fixes" someone else's table
        store = DynamoDBCache(
            name, "responses", create_table=create_table, **dynamodb_options(dynamodb_url)
        )
        try:
            with pytest.raises(BackendError) as error:
                await store.write("k", b"v")
            message = str(error.value)
            assert "key schema" in message
            assert found in message
            assert "partition key 'key' of type S and no sort key" in message
        finally:
            await store.close()
    scan = await raw.scan(TableName=name)
    assert scan["Items"] == []  # nothing was written to it
    await raw.delete_table(TableName=name)


async def test_a_configured_index_that_the_table_lacks_is_refused(
    dynamodb_url: str, raw: Any
) -> None:
    name = unique_name("no-index")
    await _create(raw, name, [("key", "S", "HASH")])
    store = DynamoDBCache(
        name, "responses", namespace_index="ns-index", **dynamodb_options(dynamodb_url)
    )
    try:
        with pytest.raises(BackendError, match="no global secondary index 'ns-index'"):
            await store.size()
    finally:
        await store.close()
        await raw.delete_table(TableName=name)


async def test_the_facade_fails_open_on_a_schema_error_and_strict_raises(
    dynamodb_url: str, raw: Any, origin: Any
) -> None:
    from acc.sessions.aiohttp import CachedSession

    name = unique_name("wrong")
    await _create(raw, name, [("id", "S", "HASH")])
    options = dynamodb_options(dynamodb_url)
    try:
        async with CachedSession(cache=DynamoDBBackend(table_name=name, **options)) as session:
            for _ in range(2):
                response = await session.get(origin("/json"))
                assert response.status == 200
                assert not response.from_cache
                await session.cache.flush()  # the queued write fails before the next request
            assert session.cache.stats.errors >= 2
        assert origin.hits["/json"] == 2
        strict = DynamoDBBackend(table_name=name, strict=True, **options)
        async with CachedSession(cache=strict) as session:
            with pytest.raises(BackendUnavailable, match="key schema"):
                await session.get(origin("/json"))
    finally:
        await raw.delete_table(TableName=name)


async def test_ttl_already_on_another_attribute_is_left_alone_with_a_warning(
    dynamodb_url: str, raw: Any, caplog: pytest.LogCaptureFixture
) -> None:
    name = unique_name("ttl")
    await _create(raw, name, [("key", "S", "HASH")])
    await raw.update_time_to_live(
        TableName=name, TimeToLiveSpecification={"Enabled": True, "AttributeName": "gone_at"}
    )
    backend = DynamoDBBackend(table_name=name, create_table=True, **dynamodb_options(dynamodb_url))
    try:
        with caplog.at_level(logging.WARNING, logger="acc.backends.dynamodb"):
            await backend.responses.write("k", b"v")
        assert "'gone_at', not 'expires_at'" in caplog.text
        ttl = (await raw.describe_time_to_live(TableName=name))["TimeToLiveDescription"]
        assert ttl["AttributeName"] == "gone_at"
        assert await backend.responses.read("k") == b"v"
    finally:
        await backend.close()
        await raw.delete_table(TableName=name)


# -- one client, and whose it is ----------------------------------------------------------


async def test_both_stores_share_one_client_opened_once(dynamodb_url: str) -> None:
    backend = DynamoDBBackend.from_url(dynamodb_url, cache_name=unique_name(), create_table=True)
    try:
        first = await backend.connection.client()
        calls = record_calls(first)
        await backend.responses.write("a", b"1")
        await backend.redirects.write("b", b"2")
        assert await backend.responses.read("a") == b"1"
        assert await backend.redirects.read("b") == b"2"
        assert await backend.connection.client() is first
        # No second DescribeTable: the table was checked once, when the client opened.
        assert [operation for operation, _ in calls] == ["PutItem", "PutItem", "GetItem", "GetItem"]
    finally:
        await backend.close()
    assert not _http_sessions_open(first)  # acc's own client is closed with the backend


async def test_a_callers_resource_is_used_and_never_closed(dynamodb_url: str) -> None:
    options = dynamodb_options(dynamodb_url)
    async with aioboto3.Session().resource(
        "dynamodb", region_name=options["region"], endpoint_url=options.get("endpoint_url")
    ) as resource:
        backend = DynamoDBBackend(
            unique_name(), table_name="acc-tests", resource=resource, create_table=True
        )
        assert backend.connection.owns_client is False
        await backend.responses.write("k", b"v")
        assert await backend.connection.client() is resource.meta.client
        await backend.close()
        assert _http_sessions_open(resource.meta.client)
        table = await resource.Table("acc-tests")
        assert await table.table_status == "ACTIVE"  # still usable by its owner


async def test_a_callers_client_is_used_and_never_closed(dynamodb_url: str, raw: Any) -> None:
    backend = DynamoDBBackend(unique_name(), table_name="acc-tests", client=raw, create_table=True)
    await backend.responses.write("k", b"v")
    await backend.close()
    assert _http_sessions_open(raw)
    assert (await raw.describe_table(TableName="acc-tests"))["Table"]["TableName"] == "acc-tests"


async def test_a_callers_session_makes_the_client_which_acc_closes(dynamodb_url: str) -> None:
    options = dynamodb_options(dynamodb_url)
    session = aioboto3.Session(
        aws_access_key_id="session-key",
        aws_secret_access_key="session-secret",
        region_name=options["region"],
    )
    backend = DynamoDBBackend(
        unique_name(),
        table_name="acc-tests",
        create_table=True,
        session=session,
        endpoint_url=options.get("endpoint_url"),
        connect_timeout=options.get("connect_timeout"),
        read_timeout=options.get("read_timeout"),
    )
    client = await backend.connection.client()
    credentials = await client._request_signer._credentials.get_frozen_credentials()
    assert credentials.access_key == "session-key"  # the session's, not the environment's
    await backend.responses.write("k", b"v")
    await backend.close()
    assert not _http_sessions_open(client)
    async with session.client("dynamodb", endpoint_url=options.get("endpoint_url")) as again:
        assert (await again.describe_table(TableName="acc-tests"))["Table"]


# -- outages ------------------------------------------------------------------------------


def _closed_port() -> int:
    """A local port nothing listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


async def test_an_unreachable_endpoint_is_backend_unavailable_for_every_operation(
    aws_environment: None,
) -> None:
    store = DynamoDBCache(
        "acc-tests",
        "responses",
        region="us-east-1",
        endpoint_url=f"http://127.0.0.1:{_closed_port()}",
        max_attempts=1,
    )
    try:
        with pytest.raises(BackendUnavailable, match="opening the table"):
            await store.read("k")
        with pytest.raises(BackendUnavailable):
            await store.write("k", b"v")
        with pytest.raises(BackendUnavailable):
            await store.size()
    finally:
        await store.close()


async def test_an_outage_after_opening_is_backend_unavailable(aws_environment: None) -> None:
    """The endpoint goes away after the table was checked: calls, not opening, fail.

    A second moto server of its own, stopped in the middle of the test: a real outage.
    """
    server, endpoint = start_moto_server()
    store = DynamoDBCache(
        unique_name("outage"),
        "responses",
        region="us-east-1",
        endpoint_url=endpoint,
        create_table=True,
        max_attempts=1,
        connect_timeout=10,  # generous: the server is up until stopped (then it refuses)
        read_timeout=30,
    )
    try:
        await store.write("k", b"v")
        assert await store.read("k") == b"v"
        server.stop()
        with pytest.raises(BackendUnavailable):
            await store.read("k")
        with pytest.raises(BackendUnavailable):
            await store.write("k", b"w")
    finally:
        await store.close()


def test_the_test_server_is_a_process_of_its_own_stopped_with_the_test() -> None:
    """moto runs beside the tests, not in a thread of theirs, and leaves nothing behind."""
    server, endpoint = start_moto_server()
    process = server.process
    try:
        assert process is not None
        assert process.pid != os.getpid()
        assert process.poll() is None
        assert endpoint == f"http://127.0.0.1:{server.port}"
        with socket.create_connection(("127.0.0.1", server.port), timeout=10):
            pass
    finally:
        server.stop()
    assert process.poll() is not None
    server.stop()  # idempotent


# -- coming from aiohttp-client-cache ---------------------------------------------------------


async def test_an_upstream_style_table_name_gets_a_warning_that_says_how(
    dynamodb_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    # aiohttp-client-cache's DynamoDBBackend("my-table") names the table; in acc the first
    # argument is a namespace, so the table acc looks for is another one, missing here.
    missing = unique_name("missing")
    backend = DynamoDBBackend("my-table", table_name=missing, **dynamodb_options(dynamodb_url))
    try:
        with caplog.at_level(logging.WARNING, logger="acc.backends.dynamodb"):
            assert await backend.read_entry("k") is None  # fails open
            assert await backend.read_entry("k") is None
        warnings = [r for r in caplog.records if r.name == "acc.backends.dynamodb"]
        assert len(warnings) == 1  # once, not per request
        message = warnings[0].getMessage()
        assert f"the table {missing!r} does not exist" in message
        assert "create_table=True" in message
        assert "cache_name='my-table', is a namespace inside the table" in message
        assert "DynamoDBBackend(table_name='my-table')" in message
        assert backend.stats.errors == 2
        strict = DynamoDBBackend(
            "my-table", table_name=missing, strict=True, **dynamodb_options(dynamodb_url)
        )
        with pytest.raises(BackendUnavailable, match=r"table_name='my-table'"):
            await strict.read_entry("k")
        await strict.close()
    finally:
        await backend.close()


async def test_the_upstream_meaning_is_table_name(dynamodb_url: str, raw: Any) -> None:
    name = unique_name("upstream")
    # Upstream: DynamoDBBackend(name, create_if_not_exists=True).
    backend = DynamoDBBackend(table_name=name, create_table=True, **dynamodb_options(dynamodb_url))
    try:
        await backend.responses.write("k", b"v")
        assert backend.table_name == name
        assert (await raw.describe_table(TableName=name))["Table"]["TableName"] == name
    finally:
        await backend.close()
        await raw.delete_table(TableName=name)
