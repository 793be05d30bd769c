"""RedisBackend and RedisCache beyond the conformance kit, on real servers.

Layout and native expiry are checked with the server's own commands (GET, PTTL,
PEXPIRETIME, SCAN); round trips are counted with a client-side connection class that
counts what is sent on the wire; options and URLs are checked without I/O.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Callable
from datetime import timedelta
from typing import Any, ClassVar

import pytest
from acc_services.redis import RedisServer
from redis.asyncio import Redis
from redis.asyncio.cluster import RedisCluster
from redis.asyncio.connection import (
    Connection,
    DefaultParser,
    SSLConnection,
    UnixDomainSocketConnection,
)

from acc.backends.redis import RedisBackend, RedisCache, RedisConnection
from acc.core import BackendError, CacheBackend, CachedResponse, ConfigError
from acc.core.models import utcnow


def unique(prefix: str = "t") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


class CountingConnection(Connection):
    """A real connection that counts the packets of commands it sends (round trips)."""

    sent: ClassVar[list[int]] = []

    async def send_packed_command(self, command: Any, check_health: bool = True) -> None:
        type(self).sent.append(1)
        await super().send_packed_command(command, check_health)


@pytest.fixture
async def raw(redis_url: str) -> AsyncIterator[Redis]:
    """A plain redis-py client, to look at what the backend wrote."""
    client = Redis.from_url(redis_url)
    yield client
    await client.aclose()


@pytest.fixture
async def backend(redis_url: str) -> AsyncIterator[RedisBackend]:
    cache = RedisBackend(unique("backend"), url=redis_url)
    yield cache
    await cache.clear()
    await cache.close()


# -- layout and native expiry ------------------------------------------------------------


async def test_one_redis_key_per_entry_under_name_store_key(
    backend: RedisBackend, raw: Redis
) -> None:
    await backend.responses.write("abc", b"value")
    await backend.redirects.write("alias", b"abc")
    name = backend.cache_name
    assert await raw.get(f"{name}:responses:abc") == b"value"
    assert await raw.get(f"{name}:redirects:alias") == b"abc"
    assert sorted(await raw.keys(f"{name}:*")) == [
        f"{name}:redirects:alias".encode(),
        f"{name}:responses:abc".encode(),
    ]


async def test_expiry_is_set_natively_with_the_value(backend: RedisBackend, raw: Redis) -> None:
    expires_at = time.time() + 100
    await backend.responses.write("k", b"v", expires_at=expires_at)
    key = f"{backend.cache_name}:responses:k"
    assert await raw.pexpiretime(key) == round(expires_at * 1000)
    assert 98_000 < await raw.pttl(key) <= 100_000


async def test_no_expiry_means_no_ttl_and_a_rewrite_drops_an_old_ttl(
    backend: RedisBackend, raw: Redis
) -> None:
    key = f"{backend.cache_name}:responses:k"
    await backend.responses.write("k", b"v", expires_at=time.time() + 100)
    await backend.responses.write("k", b"w", expires_at=None)
    assert await raw.pttl(key) == -1
    assert await raw.get(key) == b"w"


async def test_a_write_already_expired_removes_the_old_value(
    backend: RedisBackend, raw: Redis
) -> None:
    await backend.responses.write("k", b"old")
    await backend.responses.write("k", b"new", expires_at=time.time() - 5)
    assert await raw.exists(f"{backend.cache_name}:responses:k") == 0


async def test_an_expiry_that_is_not_a_number_is_refused(backend: RedisBackend) -> None:
    with pytest.raises(ConfigError, match="expires_at"):
        await backend.responses.write("k", b"v", expires_at=float("nan"))


async def test_the_facade_passes_the_entry_expiry_to_redis(redis_url: str, raw: Redis) -> None:
    async with RedisBackend(unique(), url=redis_url) as cache:
        entry = CachedResponse(
            status=200,
            reason="OK",
            url="http://example.invalid/",
            method="GET",
            body=b"x",
            expires=utcnow() + timedelta(seconds=60),
        )
        assert await cache.write_entry("key", entry)
        assert 55_000 < await raw.pttl(f"{cache.cache_name}:responses:key") <= 60_000
        await cache.clear()


# -- scoping: two caches in one database ------------------------------------------------


async def test_caches_with_different_names_in_one_database_never_touch(
    redis_url: str, raw: Redis
) -> None:
    first = RedisBackend(unique("a"), url=redis_url)
    second = RedisBackend(first.cache_name + "b", url=redis_url)  # a name sharing a prefix
    try:
        await first.responses.write("k", b"1")
        await second.responses.write("k", b"2")
        await raw.set(f"{first.cache_name}-unrelated", b"keep")  # not acc's at all
        assert await first.responses.size() == 1
        assert [k async for k in second.responses.keys()] == ["k"]  # noqa: SIM118
        await first.clear()
        assert await second.responses.read("k") == b"2"
        assert await raw.get(f"{first.cache_name}-unrelated") == b"keep"
    finally:
        await raw.delete(f"{first.cache_name}-unrelated")
        await second.clear()
        await first.close()
        await second.close()


@pytest.mark.parametrize("name", ["", "a:b", 3, None, "a\x00b"])
def test_invalid_cache_names_are_refused(name: object) -> None:
    with pytest.raises(ConfigError, match="cache_name"):
        RedisBackend(name, url="redis://127.0.0.1:1/0")  # type: ignore[arg-type]


@pytest.mark.parametrize("store", ["", "lock", "a:b", "x" * 65])
def test_invalid_store_names_are_refused(store: str) -> None:
    with pytest.raises(ConfigError, match="store"):
        RedisCache("c", store, url="redis://127.0.0.1:1/0")


async def test_clear_uses_scan_and_unlink_never_keys_or_del(
    redis_server_factory: Callable[..., RedisServer],
) -> None:
    server = redis_server_factory()
    async with RedisBackend("stats", url=server.url) as cache, Redis.from_url(server.url) as raw:
        for i in range(1200):
            await cache.responses.write(f"k{i}", b"v")
        await raw.config_resetstat()
        await cache.clear()
        stats = await raw.info("commandstats")
        assert await cache.responses.size() == 0
    assert "cmdstat_scan" in stats
    assert stats["cmdstat_unlink"]["calls"] >= 3  # batches of at most 500 keys
    assert "cmdstat_keys" not in stats
    assert "cmdstat_del" not in stats


# -- round trips ---------------------------------------------------------------------------


async def test_read_many_is_one_round_trip_even_across_batches(redis_url: str) -> None:
    connection = RedisConnection(
        redis_url, connection_options={"connection_class": CountingConnection}
    )
    store = RedisCache(unique(), "responses", connection=connection)
    try:
        keys = [f"k{i}" for i in range(1200)]
        await store.bulk_delete(keys)  # warms the connection (its handshake is sent now)
        for key in keys[::2]:  # on the auto-pipeline's own connection
            await store.write(key, key.encode())
        await store.read_many(keys[:1])  # warms a pooled connection again
        CountingConnection.sent.clear()
        values = await store.read_many(keys)
        assert len(CountingConnection.sent) == 1  # three MGETs of <=500 keys, one pipeline
        assert values == [key.encode() if i % 2 == 0 else None for i, key in enumerate(keys)]
        CountingConnection.sent.clear()
        await store.bulk_delete(keys)
        assert len(CountingConnection.sent) == 1
        assert await store.read_many(keys[:3]) == [None, None, None]
    finally:
        await store.clear()
        await store.close()


async def test_read_many_uses_mget_not_get(
    redis_server_factory: Callable[..., RedisServer],
) -> None:
    server = redis_server_factory()
    async with RedisBackend("mget", url=server.url) as cache, Redis.from_url(server.url) as raw:
        for i in range(10):
            await cache.responses.write(f"k{i}", b"v")
        await raw.config_resetstat()
        assert await cache.responses.read_many([f"k{i}" for i in range(10)]) == [b"v"] * 10
        stats = await raw.info("commandstats")
    assert stats["cmdstat_mget"]["calls"] == 1
    assert "cmdstat_get" not in stats


async def test_delete_expired_removes_only_past_deadlines(backend: RedisBackend) -> None:
    now = time.time()
    await backend.responses.write("soon", b"1", expires_at=now + 50)
    await backend.responses.write("later", b"2", expires_at=now + 500)
    await backend.responses.write("never", b"3")
    assert await backend.responses.delete_expired(now + 100) == 1
    assert sorted([k async for k in backend.responses.keys()]) == ["later", "never"]  # noqa: SIM118


# -- clients: owned and borrowed -------------------------------------------------------------


async def _client_names(raw: Redis) -> list[str]:
    return [str(entry.get("name", "")) for entry in await raw.client_list()]


async def _wait_until_gone(raw: Redis, name: str) -> bool:
    for _ in range(100):
        if name not in await _client_names(raw):
            return True
        await asyncio.sleep(0.02)
    return False


async def test_a_client_acc_created_is_closed_with_the_backend(redis_url: str, raw: Redis) -> None:
    name = unique("owned")
    cache = RedisBackend(name, url=redis_url, connection_options={"client_name": name})
    await cache.responses.write("k", b"v")
    assert name in await _client_names(raw)
    await cache.clear()
    await cache.close()
    assert await _wait_until_gone(raw, name)
    with pytest.raises(BackendError):
        await cache.responses.read("k")


async def test_a_client_the_user_owns_is_never_closed(redis_url: str) -> None:
    client = Redis.from_url(redis_url)
    try:
        cache = RedisBackend(unique(), client=client)
        assert cache.client is client
        assert not cache.connection.owned
        await cache.responses.write("k", b"v")
        await cache.clear()
        await cache.close()
        assert await client.ping() is True
        store = RedisCache(unique(), "responses", client=client)
        await store.write("k", b"v")
        assert await store.read("k") == b"v"
        await store.clear()
        await store.close()
        assert await client.ping() is True
    finally:
        await client.aclose()


def test_a_client_that_decodes_responses_is_refused() -> None:
    client = Redis(host="127.0.0.1", port=1, decode_responses=True)
    with pytest.raises(ConfigError, match="client"):
        RedisBackend("c", client=client)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"client": object()},
        {"client": Redis(host="127.0.0.1", port=1), "url": "redis://127.0.0.1:1/0"},
        {"client": Redis(host="127.0.0.1", port=1), "cluster": True},
    ],
)
def test_bad_client_arguments_are_config_errors(kwargs: dict[str, Any]) -> None:
    with pytest.raises(ConfigError) as caught:
        RedisBackend("c", **kwargs)
    assert caught.value.argument in ("client", "cluster")


# -- options -------------------------------------------------------------------------------


def test_unknown_keyword_raises_type_error() -> None:
    with pytest.raises(TypeError, match="lock_timout"):
        RedisBackend("c", lock_timout=3)


@pytest.mark.parametrize("store", ["responses", "redirects"])
def test_stores_cannot_be_replaced(store: str) -> None:
    options: dict[str, Any] = {store: RedisCache("c", "x", url="redis://127.0.0.1:1/0")}
    with pytest.raises(TypeError, match=store):
        RedisBackend("c", **options)


@pytest.mark.parametrize(
    ("argument", "value"),
    [
        ("lock", "yes"),
        ("lock_timeout", 0),
        ("lock_timeout", -1),
        ("lock_timeout", True),
        ("socket_timeout", 0),
        ("socket_timeout", "5"),
        ("socket_connect_timeout", float("nan")),
        ("retries", -1),
        ("retries", 1.5),
        ("cluster", "yes"),
        ("connection_options", ["ssl"]),
        ("url", "http://127.0.0.1/"),
        ("url", "redis://"),
        ("url", "unix://"),
        ("url", 6379),
        ("expire_after", "soon"),
    ],
)
def test_invalid_values_raise_config_error_naming_the_argument(
    argument: str, value: object
) -> None:
    options: dict[str, Any] = {argument: value}
    with pytest.raises(ConfigError) as caught:
        RedisBackend("c", **options)
    assert caught.value.argument == argument


def test_connection_options_are_checked_when_the_backend_is_built() -> None:
    with pytest.raises(TypeError, match="ssl_ca_cert"):
        RedisBackend("c", connection_options={"ssl_ca_cert": "/etc/ca.pem"})
    with pytest.raises(ConfigError) as caught:
        RedisBackend("c", connection_options={"socket_timeout": 3})
    assert caught.value.argument == "connection_options"
    with pytest.raises(ConfigError, match="decode_responses"):
        RedisBackend("c", connection_options={"decode_responses": True})
    cache = RedisBackend("c", connection_options={"ssl_ca_certs": None, "client_name": "x"})
    assert _single(cache).connection_pool.connection_kwargs["client_name"] == "x"
    # Options of the connection's base class are the connection's too.
    parser = DefaultParser
    cache = RedisBackend("c", connection_options={"parser_class": parser})
    assert _single(cache).connection_pool.connection_kwargs["parser_class"] is parser


def test_cluster_cannot_use_a_unix_socket_or_another_database() -> None:
    with pytest.raises(ConfigError, match="cluster"):
        RedisBackend("c", url="unix:///tmp/redis.sock", cluster=True)
    with pytest.raises(ConfigError, match="database 0"):
        RedisBackend("c", url="redis+cluster://127.0.0.1:7000/3")
    with pytest.raises(ConfigError, match="cluster"):
        RedisBackend("c", url="redis+cluster://127.0.0.1:7000", cluster=False)


def test_defaults_keep_an_outage_cheap() -> None:
    cache = RedisBackend("c")
    kwargs = cache.client.get_connection_kwargs()
    assert kwargs["host"] == "localhost"
    assert kwargs["port"] == 6379
    assert kwargs["socket_connect_timeout"] == 1.0
    assert kwargs["socket_timeout"] == 5.0
    retry = kwargs["retry"]
    assert retry is not None
    assert retry.get_retries() == 1  # redis-py's default retries ten times


def _single(cache: CacheBackend) -> Redis:
    assert isinstance(cache, RedisBackend)
    assert isinstance(cache.client, Redis)
    return cache.client


# -- URLs ----------------------------------------------------------------------------------


def test_from_url_splits_backend_options_from_driver_options() -> None:
    cache = CacheBackend.from_url(
        "rediss://user:s3cret@cache.example.invalid:6380/2"
        "?cache_name=web&expire_after=60&lock=true&lock_timeout=2.5"
        "&ssl_cert_reqs=none&health_check_interval=30&socket_timeout=3"
    )
    assert isinstance(cache, RedisBackend)
    assert cache.cache_name == "web"
    assert cache.lock is True
    assert cache.lock_timeout == 2.5
    assert cache.settings.expire_after is not None
    pool = _single(cache).connection_pool
    kwargs = pool.connection_kwargs
    assert pool.connection_class is SSLConnection
    assert (kwargs["host"], kwargs["port"], kwargs["db"]) == ("cache.example.invalid", 6380, 2)
    assert (kwargs["username"], kwargs["password"]) == ("user", "s3cret")
    assert kwargs["ssl_cert_reqs"] == "none"
    assert kwargs["health_check_interval"] == 30
    assert kwargs["socket_timeout"] == 3.0
    assert "s3cret" not in repr(cache)
    assert "***" in repr(cache)


def test_keyword_options_override_the_query() -> None:
    cache = RedisBackend.from_url("redis://127.0.0.1:1/0?cache_name=a&lock=true", lock=False)
    assert cache.cache_name == "a"
    assert cache.lock is False


def test_unknown_query_option_raises_type_error() -> None:
    with pytest.raises(TypeError, match="expire_afterr"):
        CacheBackend.from_url("redis://127.0.0.1:1/0?expire_afterr=60")


@pytest.mark.parametrize("option", ["url=redis://x", "client=x", "responses=x"])
def test_options_that_cannot_come_from_a_query(option: str) -> None:
    with pytest.raises(TypeError):
        RedisBackend.from_url(f"redis://127.0.0.1:1/0?{option}")


def test_bad_query_value_names_the_option() -> None:
    with pytest.raises(ConfigError) as caught:
        CacheBackend.from_url("redis://127.0.0.1:1/0?lock=maybe")
    assert caught.value.argument == "lock"


def test_redis_from_url_refuses_other_schemes() -> None:
    with pytest.raises(ConfigError, match="url"):
        RedisBackend.from_url("sqlite:///x.db")


def test_cluster_urls_and_option_choose_a_cluster_client() -> None:
    for url in ("redis+cluster://127.0.0.1:7000", "redis://127.0.0.1:7000/0?cluster=true"):
        cache = CacheBackend.from_url(url)
        assert isinstance(cache, RedisBackend)
        assert isinstance(cache.client, RedisCluster)
        assert cache.connection.is_cluster
    assert isinstance(RedisBackend("c", url="redis://127.0.0.1:1").client, Redis)


async def test_unix_socket_url(redis_server_factory: Callable[..., RedisServer]) -> None:
    server = redis_server_factory(unixsocket=True, tcp=False)
    async with CacheBackend.from_url(f"{server.unix_url}&cache_name=sock") as cache:
        assert isinstance(cache, RedisBackend)
        assert _single(cache).connection_pool.connection_class is UnixDomainSocketConnection
        await cache.responses.write("k", b"over a socket")
        assert await cache.responses.read("k") == b"over a socket"
        assert cache.stats.errors == 0
    async with Redis(unix_socket_path=str(server.unixsocket)) as raw:
        assert await raw.get("sock:responses:k") == b"over a socket"


# -- the cross-process fetch lock, seen from one process with two backends -------------------


async def test_fetch_lock_layout_token_and_release(redis_url: str, raw: Redis) -> None:
    async with RedisBackend(unique("lock"), url=redis_url, lock=True, lock_timeout=5) as cache:
        lock_key = f"{cache.cache_name}:lock:the-key"
        async with cache.fetch_lock("the-key") as waited:
            assert waited is False
            token = await raw.get(lock_key)
            assert token is not None
            assert len(token) == 32
            assert 0 < await raw.pttl(lock_key) <= 5000
        assert await raw.exists(lock_key) == 0


async def test_fetch_lock_is_released_only_by_its_owner(redis_url: str, raw: Redis) -> None:
    async with RedisBackend(unique("lock"), url=redis_url, lock=True) as cache:
        lock_key = f"{cache.cache_name}:lock:k"
        async with cache.fetch_lock("k"):
            # The lock expired and another process took it meanwhile.
            await raw.set(lock_key, b"someone-else")
        assert await raw.get(lock_key) == b"someone-else"
        await raw.delete(lock_key)


async def test_a_waiter_looks_again_when_the_holder_releases(redis_url: str) -> None:
    name = unique("lock")
    async with (
        RedisBackend(name, url=redis_url, lock=True) as first,
        RedisBackend(name, url=redis_url, lock=True) as second,
    ):
        order: list[str] = []

        async def holder() -> None:
            async with first.fetch_lock("k") as waited:
                assert waited is False
                order.append("holder in")
                await asyncio.sleep(0.3)
                order.append("holder out")

        async def waiter() -> bool:
            await asyncio.sleep(0.05)
            async with second.fetch_lock("k") as waited:
                order.append("waiter in")
                return waited

        _, waited = await asyncio.gather(holder(), waiter())
    assert waited is True
    assert order == ["holder in", "holder out", "waiter in"]


async def test_a_waiter_fetches_anyway_after_lock_timeout(redis_url: str, raw: Redis) -> None:
    async with RedisBackend(unique("lock"), url=redis_url, lock=True, lock_timeout=0.2) as cache:
        lock_key = f"{cache.cache_name}:lock:k"
        await raw.set(lock_key, b"a-stuck-process")  # no expiry: never released
        async with cache.fetch_lock("k") as waited:
            assert waited is True
        assert await raw.get(lock_key) == b"a-stuck-process"  # not ours to delete
        await raw.delete(lock_key)


async def test_without_lock_option_fetch_lock_does_nothing(
    backend: RedisBackend, raw: Redis
) -> None:
    async with backend.fetch_lock("k") as waited:
        assert waited is False
        assert await raw.exists(f"{backend.cache_name}:lock:k") == 0


async def test_the_lock_holder_looks_again_if_the_entry_appeared_meanwhile(
    redis_url: str, raw: Redis
) -> None:
    async with RedisBackend(unique("lock"), url=redis_url, lock=True) as cache:
        # Another process fetched, stored and released between our lookup and our lock.
        await cache.responses.write("k", b"entry")
        async with cache.fetch_lock("k") as waited:
            assert waited is True
            assert await raw.exists(f"{cache.cache_name}:lock:k") == 1  # held all the same
        await cache.redirects.write("alias", b"k")  # an alias counts too
        async with cache.fetch_lock("alias") as waited:
            assert waited is True
        async with cache.fetch_lock("absent") as waited:
            assert waited is False
        await cache.clear()
