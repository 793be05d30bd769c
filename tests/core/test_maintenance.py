"""Maintenance costs what it does: expiry without walking the aliases, urls() that streams."""

from __future__ import annotations

import tracemalloc
from collections.abc import AsyncIterator, Iterable
from datetime import datetime, timedelta

import pytest

from acc.core import BaseCache, CacheBackend, CachedResponse, MemoryCache
from acc.core.codec import Codec, DecodeError
from acc.core.models import utcnow

URL = "https://example.com/items"
JSON = (("Accept", "application/json"),)
HTML = (("Accept", "text/html"),)


def make_entry(
    url: str = URL, *, method: str = "GET", headers: tuple[tuple[str, str], ...] = ()
) -> CachedResponse:
    return CachedResponse(
        200,
        "OK",
        url,
        method,
        headers=(("Content-Type", "text/plain"), *headers),
        body=b"hello",
        created_at=utcnow(),
        expires=None,
    )


class CountingStore(MemoryCache):
    """A MemoryCache that counts walks over it and values read from it."""

    def __init__(self) -> None:
        super().__init__()
        self.walks = 0
        self.reads = 0

    async def read(self, key: str) -> bytes | None:
        self.reads += 1
        return await super().read(key)

    async def read_many(self, keys: Iterable[str]) -> list[bytes | None]:
        wanted = list(keys)
        self.reads += len(wanted)
        return await super().read_many(wanted)

    async def keys(self) -> AsyncIterator[str]:
        self.walks += 1
        async for key in super().keys():
            yield key


class NoExpiryStore(MemoryCache):
    """A store that cannot tell which of its values expired (as a plain key-value store)."""

    async def delete_expired(self, now: float) -> None:  # type: ignore[override]
        self._ensure_open()
        return None


async def stored_keys(store: BaseCache) -> set[str]:
    return {key async for key in store.keys()}  # noqa: SIM118 - an async iterator, not a dict


class Clock:
    def __init__(self) -> None:
        self.now = utcnow()

    def __call__(self) -> datetime:
        return self.now


async def test_delete_expired_never_walks_the_redirects_of_a_store_that_expires() -> None:
    clock = Clock()
    soon, later = clock.now + timedelta(hours=1), clock.now + timedelta(hours=3)
    redirects = CountingStore()
    backend = CacheBackend(
        cache_control=True, responses=MemoryCache(), redirects=redirects, clock=clock
    )
    for n in range(200):  # many aliases of entries that stay
        await backend.write_entry(
            f"live-{n}", make_entry(f"{URL}/{n}"), aliases=[f"alias-{n}"], keep_until=later
        )
    await backend.write_entry("short", make_entry(), aliases=["short-alias"], keep_until=soon)
    for headers in (JSON, HTML):  # a vary record and two variants, all expiring soon
        await backend.write_entry(
            "varying",
            make_entry(headers=(("Vary", "Accept"),)),
            request_headers=headers,
            keep_until=soon,
        )
    assert len(await stored_keys(redirects)) == 202
    clock.now += timedelta(hours=2)
    redirects.walks = redirects.reads = 0

    assert await backend.delete(expired=True) == 3  # "short" and both variants

    assert redirects.walks == 0
    assert redirects.reads == 0
    left = await stored_keys(redirects)
    assert "short-alias" not in left  # expired with its entry...
    assert "varying" not in left  # ...as did the vary record with its variants
    assert len(left) == 200
    assert await backend.read_entry("alias-7") is not None


async def test_a_store_that_cannot_tell_what_expired_is_swept() -> None:
    clock = Clock()
    backend = CacheBackend(responses=MemoryCache(), redirects=NoExpiryStore(), clock=clock)
    soon, later = clock.now + timedelta(hours=1), clock.now + timedelta(hours=3)
    await backend.write_entry("short", make_entry(), aliases=["short-alias"], keep_until=soon)
    await backend.write_entry("long", make_entry(), aliases=["long-alias"], keep_until=later)
    clock.now += timedelta(hours=2)
    assert await backend.delete(expired=True) == 1
    # MemoryCache hides its own expired values, so check what the sweep found dangling.
    assert await stored_keys(backend.redirects) == {"long-alias"}


async def test_an_alias_of_a_deleted_entry_is_a_miss_until_swept() -> None:
    redirects = CountingStore()
    backend = CacheBackend(redirects=redirects)
    await backend.write_entry("target", make_entry(), aliases=["a1", "a2"])
    await backend.write_entry("other", make_entry(f"{URL}/other"), aliases=["b1"])
    redirects.walks = 0
    assert await backend.delete("target") == 1
    assert redirects.walks == 0
    assert await backend.read_entry("a1") is None
    assert await backend.delete(expired=True) == 0
    assert await stored_keys(redirects) == {"a1", "a2", "b1"}  # left to expire...
    await backend.sweep_aliases()  # ...or swept
    assert await stored_keys(redirects) == {"b1"}
    assert await backend.read_entry("b1") is not None


@pytest.mark.parametrize("how", ["older_than", "urls"])
async def test_selections_that_walk_the_entries_still_remove_their_aliases(how: str) -> None:
    backend = CacheBackend()
    for n in range(250):  # more than one sweep batch of aliases
        await backend.write_entry(f"k{n}", make_entry(f"{URL}/{n}"), aliases=[f"alias-{n}"])
    if how == "older_than":
        deleted = await backend.delete(older_than=-60)  # created before a minute from now
    else:
        deleted = await backend.delete(urls=[f"{URL}/{n}" for n in range(250)])
    assert deleted == 250
    assert await stored_keys(backend.redirects) == set()


# -- urls() --------------------------------------------------------------------------------------


async def test_urls_yields_each_distinct_url_once() -> None:
    backend = CacheBackend(cache_control=True)
    plain = [f"{URL}/{n}" for n in range(5)]
    for url in plain:
        await backend.write_entry(backend.url_key(url), make_entry(url))
    # The same URLs again: a HEAD, variants, a keyed body; and URLs with no plain GET.
    head = make_entry(plain[0], method="HEAD")
    await backend.write_entry(backend.url_key(plain[0], "HEAD"), head)
    for headers in (JSON, HTML):
        await backend.write_entry(
            backend.url_key(plain[1]),
            make_entry(plain[1], headers=(("Vary", "Accept"),)),
            request_headers=headers,
        )
    await backend.write_entry("a-post-body", make_entry(plain[2], method="POST"))
    await backend.write_entry("head-only-1", make_entry(f"{URL}/head", method="HEAD"))
    await backend.write_entry("head-only-2", make_entry(f"{URL}/head", method="HEAD"))
    await backend.write_entry("redirected", make_entry(f"{URL}/final"))
    await backend.responses.write("corrupt", b"not an entry")
    # An entry moved under the plain key of another URL reads as unreadable: skipped.
    moved = backend.codec.encode(make_entry(f"{URL}/moved"), key="elsewhere")
    await backend.responses.write(backend.url_key(f"{URL}/moved"), moved)
    found = [url async for url in backend.urls()]
    assert sorted(found) == sorted([*plain, f"{URL}/head", f"{URL}/final"])


async def test_urls_keeps_no_set_of_plain_urls() -> None:
    backend = CacheBackend()
    count = 8_000
    for n in range(count):
        url = f"https://api.example.com/v1/items/{n}?page={n % 50}&sort=name"
        await backend.write_entry(backend.url_key(url), make_entry(url))
    tracemalloc.start()
    try:
        start, _ = tracemalloc.get_traced_memory()
        seen = {url async for url in backend.urls()}  # what a set of every URL costs
        _, with_set = tracemalloc.get_traced_memory()
        set_cost = with_set - start
        del seen
        tracemalloc.reset_peak()
        start, _ = tracemalloc.get_traced_memory()
        listed = 0
        async for _url in backend.urls():
            listed += 1
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert listed == count
    assert set_cost > 400_000
    assert peak - start < set_cost / 4


def test_url_of_reads_the_url_and_checks_the_entry() -> None:
    codec, signed = Codec(), Codec("secret")
    data = codec.encode(make_entry(), key="k")
    assert codec.url_of(data, key="k") == URL
    assert signed.url_of(signed.encode(make_entry(), key="k"), key="k") == URL
    flipped = bytearray(data)
    flipped[-1] ^= 1  # a bit of the body: the checksum covers it
    bad = [bytes(flipped), data[:-1], data + b"x", b"ACC", b"", 42]
    for value in bad:
        with pytest.raises(DecodeError):
            codec.url_of(value, key="k")  # type: ignore[arg-type]
    with pytest.raises(DecodeError):
        codec.url_of(data, key="another key")
    with pytest.raises(DecodeError):
        signed.url_of(data, key="k")  # unsigned where a signature is required
    with pytest.raises(DecodeError):
        Codec("other").url_of(signed.encode(make_entry(), key="k"), key="k")
