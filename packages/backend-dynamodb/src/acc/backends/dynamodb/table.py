"""The table: its layout, and checking or creating it before first use.

acc's items, in a table whose only key is the partition key ``key``::

    key        S   partition key: "<cache_name>:<store>:<cache key>" (no sort key)
    namespace  S   "<cache_name>:<store>", or "<cache_name>:<store>#" for chunk items
    value      B   the entry's bytes (absent on the manifest of a split entry)
    expires_at N   epoch seconds, to the millisecond: the table's TTL attribute

A table acc did not create is checked, never altered: a key schema other than this one
is refused with an error naming what was found. With ``create_table`` a missing table
is created (on-demand billing) and its TTL turned on; a TTL already set on another
attribute is left alone, with a warning, since reads filter expired items anyway.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Mapping
from typing import Any

from botocore.exceptions import ClientError  # type: ignore[import-untyped]

from acc.core.errors import BackendError, BackendUnavailable

__all__ = [
    "DEFAULT_TABLE",
    "MissingTable",
    "KEY",
    "NAMESPACE",
    "TTL_ATTRIBUTE",
    "check_schema",
    "error_code",
    "prepare_table",
]

logger = logging.getLogger("acc.backends.dynamodb")

DEFAULT_TABLE = "acc-cache"
"""The table used when none is named."""

KEY = "key"
"""The partition key attribute (type S)."""

NAMESPACE = "namespace"
"""The attribute naming an item's cache and store, for listing them."""

TTL_ATTRIBUTE = "expires_at"
"""The expiry attribute (type N, epoch seconds): the table's TTL attribute."""

_READY_TIMEOUT = 120.0  # seconds to wait for a table acc just created


def error_code(exc: BaseException) -> str:
    """The AWS error code of a ``ClientError`` (``""`` for other exceptions)."""
    if isinstance(exc, ClientError):
        return str(exc.response.get("Error", {}).get("Code", ""))
    return ""


class MissingTable(BackendError):
    """The table does not exist, and ``create_table`` is off."""


async def prepare_table(
    client: Any,
    table_name: str,
    *,
    create: bool,
    namespace_index: str | None,
    where: str,
    hint: str = "",
) -> None:
    """Check the table's key schema, creating the table first when ``create`` allows it.

    Args:
        client: An open DynamoDB client.
        table_name: The table.
        create: Create a missing table and turn on its TTL.
        namespace_index: The global secondary index on ``namespace`` that must exist
            (and is created with the table), or ``None``.
        where: Who is asking, for error messages.
        hint: Added to the message of a missing table.

    Raises:
        MissingTable: The table is missing and ``create`` is false.
        BackendError: The table's keys or index are not acc's.
        BackendUnavailable: A created table does not become active in time.
        ClientError, BotoCoreError: Other driver errors, for the caller to wrap.
    """
    try:
        table = (await client.describe_table(TableName=table_name))["Table"]
    except ClientError as exc:
        if error_code(exc) != "ResourceNotFoundException":
            raise
        if not create:
            raise MissingTable(
                f"{where}: the table {table_name!r} does not exist; create it with the "
                f"partition key {KEY!r} (type S) and no sort key, or pass create_table=True"
                f"{hint}"
            ) from None
        table = await _create(client, table_name, namespace_index, where)
    check_schema(table, namespace_index, where)
    if create:
        await _enable_ttl(client, table_name)


async def _create(
    client: Any, table_name: str, namespace_index: str | None, where: str
) -> Mapping[str, Any]:
    attributes = [{"AttributeName": KEY, "AttributeType": "S"}]
    options: dict[str, Any] = {}
    if namespace_index is not None:
        attributes.append({"AttributeName": NAMESPACE, "AttributeType": "S"})
        options["GlobalSecondaryIndexes"] = [
            {
                "IndexName": namespace_index,
                "KeySchema": [{"AttributeName": NAMESPACE, "KeyType": "HASH"}],
                "Projection": {"ProjectionType": "INCLUDE", "NonKeyAttributes": [TTL_ATTRIBUTE]},
            }
        ]
    try:
        await client.create_table(
            TableName=table_name,
            AttributeDefinitions=attributes,
            KeySchema=[{"AttributeName": KEY, "KeyType": "HASH"}],
            BillingMode="PAY_PER_REQUEST",
            **options,
        )
        logger.info("acc: created the DynamoDB table %r", table_name)
    except ClientError as exc:
        if error_code(exc) != "ResourceInUseException":  # another process was first
            raise
    deadline = time.monotonic() + _READY_TIMEOUT
    delay = 0.05
    while True:
        table: Mapping[str, Any] = (await client.describe_table(TableName=table_name))["Table"]
        indexes = table.get("GlobalSecondaryIndexes", [])
        if table.get("TableStatus") == "ACTIVE" and all(
            index.get("IndexStatus", "ACTIVE") == "ACTIVE" for index in indexes
        ):
            return table
        if time.monotonic() > deadline:
            raise BackendUnavailable(
                f"{where}: the table {table_name!r} is still not active after "
                f"{_READY_TIMEOUT:.0f} s"
            )
        await asyncio.sleep(delay)
        delay = min(delay * 2, 2.0)


def check_schema(table: Mapping[str, Any], namespace_index: str | None, where: str) -> None:
    """Refuse a table whose keys are not acc's, naming what was found and what is needed.

    Raises:
        BackendError: Another partition key, key type, a sort key, or a missing or
            different namespace index.
    """
    name = table.get("TableName")
    schema = [(k.get("AttributeName"), k.get("KeyType")) for k in table.get("KeySchema", [])]
    types = {
        a.get("AttributeName"): a.get("AttributeType")
        for a in table.get("AttributeDefinitions", [])
    }
    if schema != [(KEY, "HASH")] or types.get(KEY) != "S":
        found = ", ".join(f"{attr} ({kind}, type {types.get(attr)})" for attr, kind in schema)
        raise BackendError(
            f"{where}: the table {name!r} has the key schema [{found}]; acc needs a "
            f"partition key {KEY!r} of type S and no sort key (use another table_name, "
            "or create_table=True with a new name)"
        )
    if namespace_index is None:
        return
    for index in table.get("GlobalSecondaryIndexes", []):
        if index.get("IndexName") != namespace_index:
            continue
        keys = [(k.get("AttributeName"), k.get("KeyType")) for k in index.get("KeySchema", [])]
        projection = index.get("Projection", {})
        projected = projection.get("ProjectionType") == "ALL" or (
            projection.get("ProjectionType") == "INCLUDE"
            and TTL_ATTRIBUTE in projection.get("NonKeyAttributes", [])
        )
        if keys == [(NAMESPACE, "HASH")] and types.get(NAMESPACE) == "S" and projected:
            return
        raise BackendError(
            f"{where}: the index {namespace_index!r} must have the partition key "
            f"{NAMESPACE!r} (type S), no sort key, and project {TTL_ATTRIBUTE!r}"
        )
    raise BackendError(
        f"{where}: the table {name!r} has no global secondary index {namespace_index!r}; "
        f"add it (partition key {NAMESPACE!r}, type S, projecting {TTL_ATTRIBUTE!r}) or "
        "pass namespace_index=None to scan instead"
    )


async def _enable_ttl(client: Any, table_name: str) -> None:
    """Turn on native expiry; a failure is logged, since reads filter expired items anyway."""
    try:
        found = await client.describe_time_to_live(TableName=table_name)
        description = found.get("TimeToLiveDescription", {})
        status = description.get("TimeToLiveStatus")
        attribute = description.get("AttributeName")
        if status in ("ENABLED", "ENABLING") and attribute == TTL_ATTRIBUTE:
            return
        if status in ("ENABLED", "ENABLING"):
            logger.warning(
                "acc: the DynamoDB table %r expires items by %r, not %r: expired cache "
                "entries stay stored (hidden from reads) until deleted",
                table_name,
                attribute,
                TTL_ATTRIBUTE,
            )
            return
        await client.update_time_to_live(
            TableName=table_name,
            TimeToLiveSpecification={"Enabled": True, "AttributeName": TTL_ATTRIBUTE},
        )
    except ClientError as exc:
        logger.warning(
            "acc: cannot turn on TTL for the DynamoDB table %r (%s): expired entries "
            "stay stored (hidden from reads) until deleted",
            table_name,
            exc,
        )
