"""MongoDBBackend and MongoDBCache construction: URLs, options, errors. No server needed.

PyMongo builds a client without I/O (it connects, and resolves ``mongodb+srv`` names, on
first use), so everything here is checked on the objects acc builds.
"""

from __future__ import annotations

from typing import Any

import pytest
from pymongo import AsyncMongoClient

from acc.backends.mongo import MongoDBBackend, MongoDBCache, MongoDBConnection
from acc.core import CacheBackend, ConfigError
from acc.core.registry import resolve_backend_class


@pytest.mark.parametrize("scheme", ["mongodb", "mongodb+srv"])
def test_both_schemes_resolve_to_the_mongodb_backend(scheme: str) -> None:
    assert resolve_backend_class(scheme) is MongoDBBackend


async def test_url_path_names_the_database_and_query_mixes_acc_and_pymongo_options() -> None:
    backend = CacheBackend.from_url(
        "mongodb://h1:27018,h2:27019/http-cache?replicaSet=rs0&expire_after=60"
        "&allowed_codes=200,203&readPreference=secondaryPreferred"
    )
    assert isinstance(backend, MongoDBBackend)
    assert backend.cache_name == "http-cache"
    assert backend.database.name == "http-cache"
    assert backend.settings.expire_after == 60
    assert backend.settings.allowed_codes == frozenset({200, 203})
    options = backend.client.options
    assert options.replica_set_name == "rs0"
    assert options.read_preference.mongos_mode == "secondaryPreferred"
    assert {backend.responses.collection.name, backend.redirects.collection.name} == {
        "responses",
        "redirects",
    }
    await backend.close()


async def test_url_without_a_path_uses_the_default_database() -> None:
    backend = MongoDBBackend.from_url("mongodb://localhost:27017/?expire_after=5")
    assert backend.cache_name == "acc-cache"
    assert backend.responses.db_name == "acc-cache"
    await backend.close()


async def test_srv_url_is_accepted_without_resolving_it_at_construction() -> None:
    # .invalid never resolves: building the backend must not try to.
    backend = CacheBackend.from_url("mongodb+srv://cluster0.example.invalid/app?tls=true")
    assert isinstance(backend, MongoDBBackend)
    assert backend.cache_name == "app"
    assert "mongodb+srv://cluster0.example.invalid" in repr(backend)
    await backend.close()


async def test_keyword_options_win_over_the_url() -> None:
    backend = MongoDBBackend.from_url(
        "mongodb://localhost/from-url?expire_after=60", cache_name="from-kwargs", expire_after=5
    )
    assert backend.cache_name == "from-kwargs"
    assert backend.settings.expire_after == 5
    await backend.close()


def test_an_option_neither_acc_nor_pymongo_knows_is_a_type_error() -> None:
    with pytest.raises(TypeError, match="expire_aftr"):
        MongoDBBackend.from_url("mongodb://localhost/db?expire_aftr=60")


def test_a_misspelt_pymongo_option_is_a_type_error_not_a_warning() -> None:
    # PyMongo alone would warn and fall back to its 30 s default.
    with pytest.raises(TypeError, match="serverSelectionTimeout"):
        MongoDBBackend.from_url("mongodb://localhost/db?serverSelectionTimeout=500")


def test_an_invalid_pymongo_value_is_a_config_error_naming_the_url() -> None:
    with pytest.raises(ConfigError) as caught:
        MongoDBBackend.from_url("mongodb://localhost/db?serverSelectionTimeoutMS=soon")
    assert caught.value.argument == "url"
    assert "serverselectiontimeoutms" in str(caught.value).lower()


def test_an_invalid_acc_value_is_a_config_error_naming_the_option() -> None:
    with pytest.raises(ConfigError) as caught:
        MongoDBBackend.from_url("mongodb://localhost/db?expire_after=soon")
    assert caught.value.argument == "expire_after"


@pytest.mark.parametrize(
    "url", ["redis://localhost/0", "sqlite:///x.db", "mongodb://localhost/db#frag"]
)
def test_from_url_refuses_other_urls(url: str) -> None:
    with pytest.raises(ConfigError) as caught:
        MongoDBBackend.from_url(url)
    assert caught.value.argument == "url"


@pytest.mark.parametrize(
    "url", ["mongodb://", "mongodb://localhost:notaport/db", "mongodb+srv://h1,h2/db"]
)
def test_malformed_mongodb_urls_are_config_errors(url: str) -> None:
    with pytest.raises(ConfigError) as caught:
        MongoDBBackend(url=url)
    assert caught.value.argument == "url"


def test_a_password_never_appears_in_messages_or_repr() -> None:
    with pytest.raises(ConfigError) as caught:
        MongoDBBackend(url="mongodb://alice:s3cret@localhost/db?connectTimeoutMS=x")
    assert "s3cret" not in str(caught.value)
    connection = MongoDBConnection("mongodb://alice:s3cret@localhost/db")
    assert "s3cret" not in repr(connection)
    assert "alice" in repr(connection)


@pytest.mark.parametrize("name", ["", "with.dot", "with space", "dollar$", "a/b", "x" * 64, 7])
def test_invalid_database_names_are_config_errors(name: Any) -> None:
    with pytest.raises(ConfigError) as caught:
        MongoDBBackend(name)
    assert caught.value.argument == "cache_name"


@pytest.mark.parametrize("name", ["", ".hidden", "system.users", "a$b", "x" * 121, None])
def test_invalid_collection_names_are_config_errors(name: Any) -> None:
    with pytest.raises(ConfigError) as caught:
        MongoDBCache("db", name)
    assert caught.value.argument == "collection_name"


def test_unknown_keyword_is_a_type_error() -> None:
    with pytest.raises(TypeError, match="expire_aftr"):
        MongoDBBackend("db", expire_aftr=5)


@pytest.mark.parametrize("name", ["responses", "redirects"])
def test_stores_cannot_be_replaced(name: str) -> None:
    stores: dict[str, Any] = {name: MongoDBCache()}
    with pytest.raises(TypeError, match=name):
        MongoDBBackend("db", **stores)


async def test_a_url_and_a_client_together_are_refused() -> None:
    client: AsyncMongoClient[Any] = AsyncMongoClient("mongodb://localhost")
    with pytest.raises(ConfigError) as caught:
        MongoDBBackend(url="mongodb://localhost", client=client)
    assert caught.value.argument == "client"
    with pytest.raises(ConfigError) as caught:
        MongoDBBackend(client=client, client_options={"appname": "x"})
    assert caught.value.argument == "client_options"
    await client.close()


@pytest.mark.parametrize("client", ["mongodb://localhost", object()])
def test_a_client_must_be_a_client(client: object) -> None:
    with pytest.raises(ConfigError) as caught:
        MongoDBBackend(client=client)
    assert caught.value.argument == "client"


@pytest.mark.parametrize("options", [["appname"], {1: 2}, "appname=x"])
def test_client_options_must_be_a_mapping_of_names(options: Any) -> None:
    with pytest.raises(ConfigError) as caught:
        MongoDBBackend(client_options=options)
    assert caught.value.argument == "client_options"


def test_a_shared_connection_excludes_per_store_options() -> None:
    connection = MongoDBConnection()
    with pytest.raises(ConfigError) as caught:
        MongoDBCache("db", connection=connection, url="mongodb://localhost")
    assert caught.value.argument == "url"
    with pytest.raises(ConfigError) as caught:
        MongoDBCache("db", connection="mongodb://localhost")  # type: ignore[arg-type]
    assert caught.value.argument == "connection"


async def test_short_server_selection_timeout_by_default() -> None:
    backend = MongoDBBackend()
    assert backend.client.options.server_selection_timeout == 1.0
    assert backend.client.options.pool_options.connect_timeout == 20.0  # PyMongo's
    await backend.close()


async def test_url_and_client_options_set_the_timeouts_over_acc_defaults() -> None:
    from_url = MongoDBBackend(url="mongodb://localhost/?serverSelectionTimeoutMS=5000")
    from_options = MongoDBBackend(client_options={"serverSelectionTimeoutMS": 250})
    both = MongoDBBackend(
        url="mongodb://localhost/?serverselectiontimeoutms=5000",
        client_options={"serverSelectionTimeoutMS": 300},
    )
    assert from_url.client.options.server_selection_timeout == 5.0
    assert from_options.client.options.server_selection_timeout == 0.25
    assert both.client.options.server_selection_timeout == 0.3
    for backend in (from_url, from_options, both):
        await backend.close()


async def test_the_driver_reports_acc_to_the_server() -> None:
    backend = MongoDBBackend()
    driver = backend.client.options.pool_options.metadata["driver"]
    assert driver["name"].endswith("|acc")  # in the handshake, so server logs name acc
    await backend.close()


async def test_close_is_idempotent_and_later_use_raises() -> None:
    from acc.core import BackendError

    backend = MongoDBBackend()
    await backend.close()
    await backend.close()
    assert backend.connection.closed
    with pytest.raises(BackendError):
        await backend.responses.read("k")
