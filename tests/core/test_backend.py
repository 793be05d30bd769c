"""The façade (acc.core.backend.CacheBackend) over in-memory stores, and SingleFlight."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from datetime import datetime, timedelta, timezone
from typing import Any

import attrs
import pytest

from acc.core import (
    BackendError,
    BackendUnavailable,
    BaseCache,
    CacheBackend,
    CachedResponse,
    CacheRequest,
    ConfigError,
    EntryTooLarge,
    MemoryCache,
)
from acc.core.flow.coalesce import SingleFlight
from acc.core.models import utcnow

URL = "https://example.com/items"


def make_entry(
    url: str = URL,
    *,
    method: str = "GET",
    body: bytes = b"hello",
    created_at: datetime | None = None,
    expires: datetime | None = None,
) -> CachedResponse:
    return CachedResponse(
        200,
        "OK",
        url,
        method,
        headers=(("Content-Type", "text/plain"), ("Content-Length", str(len(body)))),
        body=body,
        created_at=created_at or utcnow(),
        expires=expires,
    )


class DictCache(BaseCache):
    """A plain store without native expiry, which records what it is asked."""

    def __init__(self) -> None:
        self.data: dict[str, bytes] = {}
        self.expiries: dict[str, float | None] = {}
        self.close_calls = 0

    async def read(self, key: str) -> bytes | None:
        self._ensure_open()
        return self.data.get(key)

    async def write(self, key: str, value: bytes, *, expires_at: float | None = None) -> None:
        self._ensure_open()
        self.data[key] = value
        self.expiries[key] = expires_at

    async def delete(self, key: str) -> None:
        self._ensure_open()
        self.data.pop(key, None)

    async def keys(self) -> AsyncIterator[str]:
        self._ensure_open()
        for key in list(self.data):
            yield key

    async def clear(self) -> None:
        self._ensure_open()
        self.data.clear()

    async def close(self) -> None:
        self.close_calls += 1
        await super().close()


class BrokenCache(BaseCache):
    """A store whose server is down: every read and write raises ConnectionError."""

    def __init__(self) -> None:
        self.broken = True
        self.data: dict[str, bytes] = {}

    def _maybe_fail(self) -> None:
        if self.broken:
            raise ConnectionError("connection refused")

    async def read(self, key: str) -> bytes | None:
        self._maybe_fail()
        return self.data.get(key)

    async def write(self, key: str, value: bytes, *, expires_at: float | None = None) -> None:
        self._maybe_fail()
        self.data[key] = value

    async def delete(self, key: str) -> None:
        self._maybe_fail()
        self.data.pop(key, None)

    async def keys(self) -> AsyncIterator[str]:
        self._maybe_fail()
        for key in list(self.data):
            yield key

    async def clear(self) -> None:
        self._maybe_fail()
        self.data.clear()


def acc_warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [
        r.getMessage() for r in caplog.records if r.name == "acc" and r.levelno == logging.WARNING
    ]


@pytest.fixture
def caplog_acc(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    caplog.set_level(logging.WARNING, logger="acc")
    return caplog


# -- reading and writing -----------------------------------------------------------------------


async def test_save_then_get() -> None:
    backend = CacheBackend()
    entry = make_entry()
    assert await backend.write_entry("k1", entry) is True
    assert await backend.read_entry("k1") == entry
    assert await backend.read_entry("other") is None
    assert backend.stats.writes == 1
    assert backend.stats.errors == 0


async def test_save_passes_the_entry_expiry_to_the_store() -> None:
    responses, redirects = DictCache(), DictCache()
    backend = CacheBackend(responses=responses, redirects=redirects)
    expires = datetime(2031, 1, 1, tzinfo=timezone.utc)
    await backend.write_entry("k1", make_entry(expires=expires), aliases=["a1"])
    await backend.write_entry("k2", make_entry())
    assert responses.expiries == {"k1": expires.timestamp(), "k2": None}
    assert redirects.expiries == {"a1": expires.timestamp()}


async def test_redirect_alias_get() -> None:
    backend = CacheBackend()
    entry = make_entry("https://example.com/final")
    assert await backend.write_entry("final", entry, aliases=["start", "middle", "final"])
    assert await backend.read_entry("start") == entry
    assert await backend.read_entry("middle") == entry
    assert await backend.read_entry("final") == entry
    # The key itself is never an alias of itself.
    assert await backend.redirects.contains("final") is False
    # An alias is a record naming the key, bound to the alias's own key (issue 12, item 3).
    stored = await backend.redirects.read("start")
    assert stored is not None
    assert backend.codec.decode_record(stored, key="start") == b"final"


async def test_corrupted_entry_is_a_miss_deleted_counted_and_logged(
    caplog_acc: pytest.LogCaptureFixture,
) -> None:
    backend = CacheBackend()
    await backend.responses.write("k1", b"\x00garbage, not an entry")
    assert await backend.read_entry("k1") is None
    assert await backend.responses.read("k1") is None  # deleted
    assert backend.stats.errors == 1
    warnings = acc_warnings(caplog_acc)
    assert len(warnings) == 1
    assert "k1" in warnings[0]
    # Deleted, so a second read is a plain miss: not counted, not logged again.
    assert await backend.read_entry("k1") is None
    assert backend.stats.errors == 1
    assert len(acc_warnings(caplog_acc)) == 1


async def test_truncated_entry_is_a_miss() -> None:
    backend = CacheBackend()
    await backend.write_entry("k1", make_entry(body=b"x" * 100))
    data = await backend.responses.read("k1")
    assert data is not None
    await backend.responses.write("k1", data[:-10])
    assert await backend.read_entry("k1") is None
    assert backend.stats.errors == 1


async def test_tampered_signed_entry_is_a_miss(caplog_acc: pytest.LogCaptureFixture) -> None:
    backend = CacheBackend(secret_key="s3cret")
    await backend.write_entry("k1", make_entry(body=b"pay me 10"))
    data = bytearray(await backend.responses.read("k1") or b"")
    data[-1] ^= 0x01  # "pay me 11"
    await backend.responses.write("k1", bytes(data))
    assert await backend.read_entry("k1") is None
    assert await backend.responses.read("k1") is None
    assert backend.stats.errors == 1
    assert any("signature" in message for message in acc_warnings(caplog_acc))


async def test_unsigned_entry_is_a_miss_for_a_signing_backend() -> None:
    stores: dict[str, Any] = {"responses": MemoryCache(), "redirects": MemoryCache()}
    await CacheBackend(**stores).write_entry("k1", make_entry())
    signing = CacheBackend(secret_key="s3cret", **stores)
    assert await signing.read_entry("k1") is None
    assert signing.stats.errors == 1


async def test_key_rotation_reads_old_entries() -> None:
    stores: dict[str, Any] = {"responses": MemoryCache(), "redirects": MemoryCache()}
    old = CacheBackend(secret_key="old", **stores)
    entry = make_entry()
    await old.write_entry("k1", entry, aliases=["alias"])
    rotated = CacheBackend(secret_key=["new", "old"], **stores)
    assert await rotated.read_entry("k1") == entry
    assert await rotated.read_entry("alias") == entry
    # New writes are signed with the new key only.
    await rotated.write_entry("k2", entry)
    assert await CacheBackend(secret_key="new", **stores).read_entry("k2") == entry
    assert await old.read_entry("k2") is None
    assert old.stats.errors == 1


# -- filter_fn ---------------------------------------------------------------------------------


def sync_filter(response: CachedResponse) -> bool:
    return b"secret" not in response.body


async def async_filter(response: CachedResponse) -> bool:
    await asyncio.sleep(0)
    return b"secret" not in response.body


def _sender(body: bytes) -> Any:
    async def send(request: CacheRequest) -> CachedResponse:
        return CachedResponse(status=200, reason="OK", url=request.url, method="GET", body=body)

    return send


@pytest.mark.parametrize("filter_fn", [sync_filter, async_filter], ids=["sync", "async"])
async def test_filter_fn_on_write(filter_fn: object) -> None:
    backend = CacheBackend(filter_fn=filter_fn)  # type: ignore[arg-type]
    bad = await backend.fetch(CacheRequest("GET", "https://example.com/bad"), _sender(b"secret"))
    assert bad.stored is False
    assert bad.response.body == b"secret"
    assert await backend.responses.size() == 0
    good = await backend.fetch(CacheRequest("GET", "https://example.com/ok"), _sender(b"public"))
    assert good.stored is True
    assert await backend.responses.size() == 1
    assert backend.stats.writes == 1
    assert backend.stats.not_stored == 1


@pytest.mark.parametrize("filter_fn", [sync_filter, async_filter], ids=["sync", "async"])
async def test_filter_fn_on_read(filter_fn: object) -> None:
    stores: dict[str, Any] = {"responses": MemoryCache(), "redirects": MemoryCache()}
    unfiltered = CacheBackend(**stores)
    for name, body in (("bad", b"secret stuff"), ("good", b"public")):
        await unfiltered.fetch(CacheRequest("GET", f"https://example.com/{name}"), _sender(body))
    filtered = CacheBackend(filter_fn=filter_fn, **stores)  # type: ignore[arg-type]
    bad = await filtered.fetch(CacheRequest("GET", "https://example.com/bad"), _sender(b"new"))
    assert (bad.from_cache, bad.response.body) == (False, b"new")  # refused entry: a miss
    good = await filtered.fetch(CacheRequest("GET", "https://example.com/good"), _sender(b"x"))
    assert (good.from_cache, good.response.body) == (True, b"public")
    assert filtered.stats.errors == 0  # a filtered entry is a miss, not an error


async def test_read_entry_and_write_entry_are_raw_store_operations() -> None:
    # They are not the cache: no filter_fn, no expire_after, no allowed_codes (fetch has those).
    backend = CacheBackend(filter_fn=sync_filter, expire_after=0, allowed_codes=(200,))
    entry = attrs.evolve(make_entry(body=b"top secret"), status=404)
    assert await backend.write_entry("raw", entry) is True
    assert await backend.read_entry("raw") == entry
    assert backend.stats.hits == backend.stats.misses == 0


async def test_get_response_and_save_response_are_deprecated_aliases() -> None:
    backend = CacheBackend()
    entry = make_entry()
    with pytest.warns(DeprecationWarning, match="write_entry"):
        assert await backend.save_response("k", entry) is True
    with pytest.warns(DeprecationWarning, match="read_entry"):
        assert await backend.get_response("k") == entry


# -- delete --------------------------------------------------------------------------------------


async def fill(backend: CacheBackend) -> None:
    for name in ("a", "b", "c"):
        await backend.write_entry(
            name, make_entry(f"https://example.com/{name}"), aliases=[f"{name}-alias"]
        )


async def stored_keys(store: BaseCache) -> set[str]:
    return {key async for key in store.keys()}  # noqa: SIM118 - an async iterator, not a dict


@pytest.mark.parametrize("store", [MemoryCache, DictCache])
async def test_delete_keys(store: type[BaseCache]) -> None:
    backend = CacheBackend(responses=store(), redirects=store())
    await fill(backend)
    assert await backend.delete("a", "b", "missing") == 2
    assert await stored_keys(backend.responses) == {"c"}
    # Deleting by key never walks the aliases: the ones left behind read as misses...
    assert await stored_keys(backend.redirects) == {"a-alias", "b-alias", "c-alias"}
    assert await backend.read_entry("a-alias") is None
    assert await backend.read_entry("c-alias") is not None
    assert await backend.delete() == 0
    assert await stored_keys(backend.responses) == {"c"}
    # ... until they expire with the entry they were written for, or a sweep removes them.
    assert await backend.delete(expired=True) == 0
    await backend.sweep_aliases()
    assert await stored_keys(backend.redirects) == {"c-alias"}


async def test_delete_expired_from_a_store_without_native_expiry() -> None:
    # The store keeps everything: the façade decodes entries to find the expired ones.
    backend = CacheBackend(responses=DictCache(), redirects=DictCache())
    now = utcnow()
    past = now - timedelta(seconds=5)
    for name, expires in (
        ("old1", past),
        ("old2", past),
        ("fresh", now + timedelta(hours=1)),
        ("forever", None),
    ):
        await backend.write_entry(
            name,
            make_entry(f"https://example.com/{name}", expires=expires),
            aliases=[f"{name}-alias"],
        )
    assert await stored_keys(backend.responses) == {"old1", "old2", "fresh", "forever"}
    assert await backend.delete(expired=True) == 2
    assert await stored_keys(backend.responses) == {"fresh", "forever"}
    assert await stored_keys(backend.redirects) == {"fresh-alias", "forever-alias"}
    assert await backend.delete(expired=True) == 0
    assert await stored_keys(backend.responses) == {"fresh", "forever"}


async def test_delete_expired_with_a_real_short_ttl() -> None:
    # The point here is the store's own expiry (MemoryCache has native TTL): an entry
    # fresh when written is dropped once its moment passes, and delete(expired=True)
    # counts it; its alias expires with it.
    backend = CacheBackend()
    soon = utcnow() + timedelta(seconds=0.05)
    later = utcnow() + timedelta(hours=1)
    await backend.write_entry("short", make_entry(expires=soon), aliases=["short-alias"])
    await backend.write_entry("long", make_entry(expires=later), aliases=["long-alias"])
    assert await backend.read_entry("short-alias") is not None
    await asyncio.sleep(0.1)
    assert await backend.delete(expired=True) == 1
    assert await stored_keys(backend.responses) == {"long"}
    assert await stored_keys(backend.redirects) == {"long-alias"}
    assert await backend.read_entry("short-alias") is None
    assert await backend.read_entry("long-alias") is not None


@pytest.mark.parametrize("store", [MemoryCache, DictCache])
@pytest.mark.parametrize("older_than", [timedelta(hours=1), 3600, 3600.0])
async def test_delete_older_than(store: type[BaseCache], older_than: timedelta | float) -> None:
    backend = CacheBackend(responses=store(), redirects=store())
    now = utcnow()
    for name, age in (
        ("ancient", timedelta(days=3)),
        ("old", timedelta(hours=2)),
        ("recent", timedelta(minutes=5)),
        ("new", timedelta(0)),
    ):
        await backend.write_entry(
            name,
            make_entry(f"https://example.com/{name}", created_at=now - age),
            aliases=[f"{name}-alias"],
        )
    assert await backend.delete(older_than=older_than) == 2
    assert await stored_keys(backend.responses) == {"recent", "new"}
    assert await stored_keys(backend.redirects) == {"recent-alias", "new-alias"}


async def test_delete_rejects_bad_arguments() -> None:
    backend = CacheBackend()
    with pytest.raises(ConfigError, match=r"^older_than"):
        await backend.delete(older_than="1h")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match=r"^urls"):
        await backend.delete(urls=URL)


@pytest.mark.parametrize("store", [MemoryCache, DictCache])
async def test_delete_urls(store: type[BaseCache]) -> None:
    backend = CacheBackend(responses=store(), redirects=store())
    other = "https://example.com/other"
    entries = {
        "get": make_entry(URL),
        "head": make_entry(URL, method="HEAD"),
        "variant": make_entry(URL, body=b"for another user"),
        "query": make_entry(f"{URL}?page=2"),
        "other": make_entry(other),
    }
    for name, entry in entries.items():
        await backend.write_entry(name, entry, aliases=[f"{name}-alias"])
    # Matched after normalisation: host case, default port, fragment do not matter.
    assert await backend.delete(urls=["HTTPS://Example.com:443/items#top"]) == 3
    assert await stored_keys(backend.responses) == {"query", "other"}
    assert await stored_keys(backend.redirects) == {"query-alias", "other-alias"}
    assert await backend.delete(urls=[f"{URL}?page=2", other, "https://nowhere.example/"]) == 2
    assert await stored_keys(backend.responses) == set()
    assert await stored_keys(backend.redirects) == set()


async def test_delete_urls_with_ignored_params() -> None:
    # Stored URLs have ignored parameters redacted; the URL a user passes has the value.
    backend = CacheBackend(ignored_params=["token"])
    await backend.write_entry("k1", make_entry("https://example.com/p?a=1&token=REDACTED"))
    await backend.write_entry("k2", make_entry("https://example.com/p?a=2&token=REDACTED"))
    assert await backend.delete(urls=["https://example.com/p?token=abc&a=1"]) == 1
    assert await stored_keys(backend.responses) == {"k2"}


async def test_delete_url_and_has_url() -> None:
    backend = CacheBackend()
    key = backend.url_key(URL)
    assert key == backend.create_key(CacheRequest("GET", URL))
    assert await backend.has_url(URL) is False
    await backend.write_entry(key, make_entry())
    await backend.write_entry(backend.url_key(URL, "HEAD"), make_entry(method="HEAD"))
    assert await backend.has_url(URL) is True
    assert await backend.has_url("https://EXAMPLE.com/items#x") is True  # normalised
    assert await backend.has_url("https://example.com/elsewhere") is False
    await backend.delete_url(URL)
    assert await backend.has_url(URL) is False
    assert await backend.has_url(URL, "HEAD") is True
    await backend.delete_url(URL, "HEAD")
    assert await backend.has_url(URL, "HEAD") is False
    assert await backend.responses.size() == 0


async def test_delete_url_of_a_redirected_url() -> None:
    backend = CacheBackend()
    start, final = "https://example.com/start", "https://example.com/final"
    await backend.write_entry(
        backend.url_key(final), make_entry(final), aliases=[backend.url_key(start)]
    )
    assert await backend.has_url(start) is True
    await backend.delete_url(start)
    assert await backend.has_url(start) is False
    assert await backend.read_entry(backend.url_key(start)) is None
    assert await backend.has_url(final) is True


async def test_urls_are_distinct_and_skip_unreadable_entries() -> None:
    backend = CacheBackend()
    await backend.write_entry("1", make_entry(URL))
    await backend.write_entry("2", make_entry(URL, method="HEAD"))
    await backend.write_entry("3", make_entry("https://example.com/other"))
    await backend.responses.write("4", b"garbage")
    urls = [url async for url in backend.urls()]
    assert sorted(urls) == [URL, "https://example.com/other"]


async def test_clear() -> None:
    backend = CacheBackend()
    await fill(backend)
    assert await backend.responses.size() == 3
    await backend.clear()
    assert await backend.responses.size() == 0
    assert await backend.redirects.size() == 0
    assert await backend.read_entry("a-alias") is None


# -- close -----------------------------------------------------------------------------------------


async def test_close_is_idempotent_and_closes_both_stores() -> None:
    responses, redirects = DictCache(), DictCache()
    backend = CacheBackend(responses=responses, redirects=redirects)
    was_closed = backend.closed
    await backend.close()
    await backend.close()
    assert (was_closed, backend.closed) == (False, True)
    assert (responses.close_calls, redirects.close_calls) == (1, 1)
    assert responses.closed
    assert redirects.closed


async def test_async_context_manager_closes() -> None:
    async with CacheBackend() as backend:
        await backend.write_entry("k", make_entry())
    assert backend.closed is True
    assert backend.responses.closed is True


async def test_use_after_close_raises_backend_error() -> None:
    backend = CacheBackend()
    await backend.write_entry("k", make_entry())
    await backend.close()
    with pytest.raises(BackendError):
        await backend.read_entry("k")
    with pytest.raises(BackendError):
        await backend.write_entry("k", make_entry())
    with pytest.raises(BackendError):
        await backend.delete("k")
    with pytest.raises(BackendError):
        await backend.clear()
    with pytest.raises(BackendError):
        await backend.has_url(URL)
    with pytest.raises(BackendError):
        await backend.delete_url(URL)
    with pytest.raises(BackendError):
        [url async for url in backend.urls()]
    with pytest.raises(BackendError):
        await backend.responses.read("k")


# -- failing storage: fail open, or strict ---------------------------------------------------


async def test_fail_open(caplog_acc: pytest.LogCaptureFixture) -> None:
    backend = CacheBackend(responses=BrokenCache(), redirects=BrokenCache())
    assert await backend.read_entry("k") is None
    assert backend.stats.errors == 1
    assert await backend.write_entry("k", make_entry()) is False
    assert backend.stats.errors == 2
    assert await backend.read_entry("k") is None
    assert backend.stats.errors == 3
    assert backend.stats.writes == 0
    warnings = acc_warnings(caplog_acc)
    assert len(warnings) == 1  # once per outage, not once per failure
    assert "ConnectionError" in warnings[0]


async def test_warning_once_per_outage_after_a_recovered_read(
    caplog_acc: pytest.LogCaptureFixture,
) -> None:
    responses = BrokenCache()
    backend = CacheBackend(responses=responses, redirects=MemoryCache())
    assert await backend.read_entry("k") is None
    assert await backend.read_entry("k") is None
    assert len(acc_warnings(caplog_acc)) == 1
    responses.broken = False
    assert await backend.write_entry("k", make_entry()) is True
    assert await backend.read_entry("k") is not None
    recovered = acc_warnings(caplog_acc)
    assert len(recovered) == 2
    assert "working again" in recovered[1]
    responses.broken = True
    assert await backend.read_entry("k") is None
    assert await backend.read_entry("k") is None
    assert len(acc_warnings(caplog_acc)) == 3  # a new outage is reported again
    assert backend.stats.errors == 4


async def test_warning_once_per_outage_after_a_recovered_write(
    caplog_acc: pytest.LogCaptureFixture,
) -> None:
    responses = BrokenCache()
    backend = CacheBackend(responses=responses, redirects=MemoryCache())
    assert await backend.write_entry("k", make_entry()) is False
    assert await backend.write_entry("k", make_entry()) is False
    assert len(acc_warnings(caplog_acc)) == 1
    responses.broken = False
    assert await backend.write_entry("k", make_entry()) is True
    responses.broken = True
    assert await backend.write_entry("k", make_entry()) is False
    messages = acc_warnings(caplog_acc)
    assert len(messages) == 3
    assert "working again" in messages[1]
    assert "failed" in messages[2]


async def test_strict_raises_backend_unavailable(caplog_acc: pytest.LogCaptureFixture) -> None:
    backend = CacheBackend(responses=BrokenCache(), redirects=BrokenCache(), strict=True)
    with pytest.raises(BackendUnavailable) as read_error:
        await backend.read_entry("k")
    assert isinstance(read_error.value.__cause__, ConnectionError)
    with pytest.raises(BackendUnavailable):
        await backend.write_entry("k", make_entry())
    assert isinstance(read_error.value, BackendError)
    assert backend.stats.errors == 2
    assert acc_warnings(caplog_acc) == []


# -- SingleFlight --------------------------------------------------------------------------------


async def test_single_flight_leader_and_followers() -> None:
    flight = SingleFlight()
    assert flight.join("k") is None  # leader
    follower = flight.join("k")
    assert follower is not None
    assert flight.join("k") is follower  # every follower waits on the same future
    assert flight.join("other") is None  # other keys are independent
    assert len(flight) == 2
    assert not follower.done()

    woken: list[str] = []

    async def wait(name: str) -> None:
        await follower
        woken.append(name)

    tasks = [asyncio.create_task(wait(name)) for name in ("f1", "f2")]
    await asyncio.sleep(0)
    assert woken == []
    flight.done("k")
    await asyncio.gather(*tasks)
    assert sorted(woken) == ["f1", "f2"]
    assert follower.done()
    assert len(flight) == 1
    # Once done, the next caller leads a new fetch.
    assert flight.join("k") is None
    flight.done("k")
    flight.done("k")  # a second done is harmless
    flight.done("never-joined")
    assert len(flight) == 1


def test_single_flight_future_from_another_loop_is_not_reused() -> None:
    flight = SingleFlight()
    loops: list[asyncio.AbstractEventLoop] = []

    async def first_run() -> None:
        loops.append(asyncio.get_running_loop())
        assert flight.join("k") is None
        # The leader's loop ends without calling done(): its future is left behind.

    async def second_run() -> asyncio.Future[None] | None:
        loops.append(asyncio.get_running_loop())
        leader = flight.join("k")
        follower = flight.join("k")
        assert follower is not None
        assert follower.get_loop() is asyncio.get_running_loop()
        flight.done("k")
        await follower
        return leader

    asyncio.run(first_run())
    assert asyncio.run(second_run()) is None  # led anew, not stuck on the old future
    assert loops[0] is not loops[1]
    assert len(flight) == 0


async def test_backend_has_a_single_flight() -> None:
    backend = CacheBackend()
    assert isinstance(backend.inflight, SingleFlight)
    assert backend.inflight is not CacheBackend().inflight


class SmallStore(MemoryCache):
    """A store that holds values of at most 100 bytes, as a real store has a limit."""

    async def write(self, key: str, value: bytes, *, expires_at: float | None = None) -> None:
        if len(value) > 100:
            await self.delete(key)
            raise EntryTooLarge(f"{len(value)} bytes is over 100")
        await super().write(key, value, expires_at=expires_at)


@pytest.mark.parametrize("strict", [False, True])
async def test_an_entry_too_large_for_the_store_is_not_stored_nor_a_failure(
    strict: bool, caplog_acc: pytest.LogCaptureFixture
) -> None:
    backend = CacheBackend(responses=SmallStore(), strict=strict)
    assert await backend.write_entry("k", make_entry()) is False
    assert await backend.read_entry("k") is None
    assert backend.stats.writes == 0
    assert backend.stats.errors == 0
    assert not caplog_acc.records  # the store says why; the façade reports no outage


class CountingCache(DictCache):
    """A DictCache that counts reads, including those a walk over its items makes."""

    def __init__(self) -> None:
        super().__init__()
        self.reads = 0

    async def read(self, key: str) -> bytes | None:
        self.reads += 1
        return await super().read(key)

    async def keys(self) -> AsyncIterator[str]:
        self.reads += 1  # a walk over the store: costs as much as reading it all
        async for key in super().keys():
            yield key


async def test_delete_url_does_not_walk_the_aliases() -> None:
    redirects = CountingCache()
    backend = CacheBackend(responses=DictCache(), redirects=redirects)
    target = backend.url_key("https://example.com/target")
    for n in range(1000):
        alias = backend.url_key(f"https://example.com/from/{n}")
        await backend.write_entry(alias + "-entry", make_entry(f"https://example.com/{n}"))
        await redirects.write(alias, backend.codec.encode_record(target.encode(), key=alias))
    await backend.write_entry(target, make_entry("https://example.com/target"))
    redirects.reads = 0
    await backend.delete_url("https://example.com/target")
    assert redirects.reads <= 2  # the key's own alias or vary record, not 1,000 aliases
    assert await backend.read_entry(target) is None
    assert await backend.read_entry(backend.url_key("https://example.com/from/7")) is None
