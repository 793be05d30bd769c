"""DynamoDBBackend's options and URLs: parsed, validated, refused with a clear error.

None of these tests needs a server: construction does no I/O, so every mistake here is
caught before the first request.
"""

from __future__ import annotations

import math
from typing import Any

import aioboto3  # type: ignore[import-untyped]
import pytest

from acc.backends.dynamodb import DEFAULT_TABLE, DynamoDBBackend, DynamoDBCache, DynamoDBConnection
from acc.core import BackendError, CacheBackend, ConfigError


def test_url_names_the_table_and_carries_every_option() -> None:
    backend = CacheBackend.from_url(
        "dynamodb://http-cache.v2?region=eu-west-1&endpoint_url=http://127.0.0.1:8000"
        "&cache_name=my-app&create_table=true&namespace_index=by-namespace"
        "&consistent_reads=false&connect_timeout=0.5&read_timeout=2&max_attempts=3"
        "&expire_after=60"
    )
    assert isinstance(backend, DynamoDBBackend)
    connection = backend.connection
    assert backend.table_name == connection.table_name == "http-cache.v2"
    assert backend.cache_name == "my-app"
    assert connection.region == "eu-west-1"
    assert connection.endpoint_url == "http://127.0.0.1:8000"
    assert connection.create_table is True
    assert connection.namespace_index == "by-namespace"
    assert connection.consistent_reads is False
    assert (connection.connect_timeout, connection.read_timeout) == (0.5, 2.0)
    assert connection.max_attempts == 3
    assert backend.settings.expire_after == 60
    assert isinstance(backend.responses, DynamoDBCache)
    assert backend.responses.namespace == "my-app:responses"
    assert backend.redirects.namespace == "my-app:redirects"  # type: ignore[attr-defined]


def test_defaults_are_short_timeouts_and_one_retry() -> None:
    backend = DynamoDBBackend.from_url("dynamodb://")
    connection = backend.connection
    assert backend.table_name == DEFAULT_TABLE == "acc-cache"
    assert backend.cache_name == "acc-cache"
    assert (connection.connect_timeout, connection.read_timeout, connection.max_attempts) == (
        1.0,
        3.0,
        2,
    )
    assert connection.create_table is False
    assert connection.consistent_reads is True
    assert connection.namespace_index is None
    assert connection.owns_client is True


def test_keyword_options_override_the_query() -> None:
    backend = DynamoDBBackend.from_url(
        "dynamodb://table-a?region=eu-west-1&cache_name=a", region="us-west-2", cache_name="b"
    )
    assert backend.connection.region == "us-west-2"
    assert backend.cache_name == "b"
    assert backend.table_name == "table-a"


def test_table_name_keyword_wins_over_the_url_host() -> None:
    backend = DynamoDBBackend.from_url("dynamodb://from-url", table_name="from-keyword")
    assert backend.table_name == "from-keyword"


def test_unknown_query_option_raises_type_error_listing_known_ones() -> None:
    with pytest.raises(TypeError, match="regoin") as error:
        DynamoDBBackend.from_url("dynamodb://t-1?regoin=eu-west-1")
    assert "region" in str(error.value)


def test_unknown_keyword_raises_type_error() -> None:
    with pytest.raises(TypeError, match="create_tabel"):
        DynamoDBBackend(create_tabel=True)


@pytest.mark.parametrize("name", ["responses", "redirects"])
def test_stores_cannot_be_replaced(name: str) -> None:
    options: dict[str, Any] = {name: DynamoDBCache()}
    with pytest.raises(TypeError, match=name):
        DynamoDBBackend(**options)


@pytest.mark.parametrize("name", ["table_name", "session", "resource", "client"])
def test_objects_and_the_table_cannot_come_from_the_query(name: str) -> None:
    with pytest.raises(TypeError, match=name):
        DynamoDBBackend.from_url(f"dynamodb://t-1?{name}=x")


@pytest.mark.parametrize(
    "url",
    [
        "dynamodb://user:secret@table",
        "dynamodb://table:8000",
        "dynamodb://table/extra",
        "dynamodb://table#fragment",
        "redis://localhost",
    ],
)
def test_malformed_urls_raise_config_error(url: str) -> None:
    with pytest.raises(ConfigError) as error:
        DynamoDBBackend.from_url(url)
    assert error.value.argument == "url"


@pytest.mark.parametrize(
    ("argument", "value"),
    [
        ("table_name", "ab"),  # DynamoDB needs 3 characters; moto would take 1
        ("table_name", "has space"),
        ("table_name", "x" * 256),
        ("cache_name", "with:colon"),
        ("cache_name", "with#hash"),
        ("cache_name", ""),
        ("region", "EU WEST"),
        ("region", 5),
        ("endpoint_url", "localhost:8000"),
        ("create_table", "yes"),
        ("consistent_reads", 1),
        ("namespace_index", "ix"),
        ("connect_timeout", 0),
        ("connect_timeout", -1),
        ("connect_timeout", math.nan),
        ("read_timeout", math.inf),
        ("read_timeout", True),
        ("max_attempts", 0),
        ("max_attempts", 11),
        ("max_attempts", 2.5),
        ("max_attempts", True),
        ("session", object()),
        ("resource", object()),
        ("client", object()),
        ("expire_after", "soon"),
    ],
)
def test_invalid_values_raise_config_error_naming_the_argument(argument: str, value: Any) -> None:
    with pytest.raises(ConfigError) as error:
        DynamoDBBackend(**{argument: value})
    assert error.value.argument == argument
    assert str(error.value).startswith(f"{argument}: ")


@pytest.mark.parametrize(
    ("query", "argument"),
    [
        ("create_table=maybe", "create_table"),
        ("connect_timeout=fast", "connect_timeout"),
        ("max_attempts=2.5", "max_attempts"),
        ("region=Not%20A%20Region", "region"),
    ],
)
def test_invalid_query_values_raise_config_error(query: str, argument: str) -> None:
    with pytest.raises(ConfigError) as error:
        DynamoDBBackend.from_url(f"dynamodb://t-1?{query}")
    assert error.value.argument == argument


def test_only_one_of_session_resource_and_client() -> None:
    with pytest.raises(ConfigError) as error:
        DynamoDBBackend(session=aioboto3.Session(), client=object())
    assert error.value.argument == "client"
    assert "one of session=, resource= or client=" in str(error.value)


@pytest.mark.parametrize(
    "option", ["region", "endpoint_url", "connect_timeout", "read_timeout", "max_attempts"]
)
def test_options_that_a_callers_client_decides_are_refused(option: str) -> None:
    """The caller configured the client; acc must not pretend to reconfigure it."""

    class Client:  # only the shape is checked at construction: nothing is called
        meta = None

        async def get_item(self, **_: Any) -> None: ...

    values: dict[str, Any] = {"region": "eu-west-1", "endpoint_url": "http://x", "max_attempts": 3}
    value = values.get(option, 1.0)
    with pytest.raises(ConfigError) as error:
        DynamoDBBackend(client=Client(), **{option: value})
    assert error.value.argument == option
    assert "set it on the client" in str(error.value)


def test_shared_connection_refuses_its_own_options() -> None:
    shared = DynamoDBConnection("t-1")
    with pytest.raises(ConfigError) as error:
        DynamoDBCache(shared, "responses", region="eu-west-1")
    assert error.value.argument == "region"


def test_store_names_are_checked_like_cache_names() -> None:
    with pytest.raises(ConfigError) as error:
        DynamoDBCache("t-1", "a:b")
    assert error.value.argument == "store"


def test_unknown_store_option_raises_type_error() -> None:
    with pytest.raises(TypeError, match="regon"):
        DynamoDBCache("t-1", "responses", regon="eu-west-1")


async def test_a_never_opened_backend_closes_twice_and_then_refuses_use(
    aws_environment: None,
) -> None:
    """Closing needs no server (nothing was opened); use after close is acc's error."""
    backend = DynamoDBBackend(endpoint_url="http://127.0.0.1:9")  # nothing listens there
    await backend.close()
    await backend.close()
    assert backend.connection.closed
    with pytest.raises(BackendError, match="closed"):
        await backend.connection.client()
    with pytest.raises(BackendError, match="closed"):
        await backend.responses.read("k")
