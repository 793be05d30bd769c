"""Variants (acc.core.http.vary) and how the façade stores, finds and deletes them."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from acc.core import CacheBackend, ConfigError, MemoryCache
from acc.core.http.freshness import REVALIDATION_RETENTION
from acc.core.http.vary import (
    VaryRecord,
    decode_vary_record,
    encode_vary_record,
    variant_key,
    varying_headers,
)
from acc.core.models import CachedResponse, utcnow
from acc.core.settings import CacheSettings

JSON = (("Accept", "application/json"),)
HTML = (("Accept", "text/html"),)


def entry(*headers: tuple[str, str], body: bytes = b"x", expires: Any = None) -> CachedResponse:
    return CachedResponse(
        200, "OK", "https://example.com/r", "GET", headers=headers, body=body, expires=expires
    )


def test_variant_keys_differ_by_the_varying_values_only() -> None:
    names = ("accept",)
    assert variant_key("k", names, JSON) != variant_key("k", names, HTML)
    assert variant_key("k", names, JSON) == variant_key(
        "k", names, (("accept", "application/json"),)
    )
    # Whitespace is normalised and field lines combined (RFC 9111 §4.1).
    assert variant_key("k", ("a",), (("A", "x,  y"),)) == variant_key("k", ("a",), (("a", "x, y"),))
    assert variant_key("k", ("a",), (("A", "x"), ("A", "y"))) == variant_key(
        "k", ("a",), (("a", "x, y"),)
    )
    # Absent is not the same as empty.
    assert variant_key("k", names, ()) != variant_key("k", names, (("Accept", ""),))
    assert variant_key("k", names, (*JSON, ("Other", "1"))) == variant_key("k", names, JSON)


def test_accept_encoding_does_not_vary_and_star_is_kept() -> None:
    assert varying_headers((("Vary", "Accept-Encoding, Accept"),)) == ("accept",)
    assert varying_headers((("Vary", "accept-encoding"),)) == ()
    assert varying_headers((("Vary", "*"),)) == ("*",)


def test_vary_record_round_trip_and_aliases() -> None:
    record = VaryRecord(names=("accept",), variants=("k:vary:1",))
    assert decode_vary_record(encode_vary_record(record)) == record
    assert decode_vary_record(b"some-other-key") is None  # a redirect alias
    assert decode_vary_record(encode_vary_record(record)[:-3]) == VaryRecord(names=())


async def test_variants_are_stored_apart_and_found_by_request_headers() -> None:
    backend = CacheBackend(cache_control=True)
    vary = ("Vary", "Accept")
    assert await backend.write_entry("k", entry(vary, body=b"json"), request_headers=JSON)
    assert await backend.write_entry("k", entry(vary, body=b"html"), request_headers=HTML)
    found_json = await backend.read_entry("k", request_headers=JSON)
    found_html = await backend.read_entry("k", request_headers=HTML)
    assert found_json is not None
    assert found_json.body == b"json"
    assert found_html is not None
    assert found_html.body == b"html"
    assert await backend.read_entry("k", request_headers=()) is None
    assert await backend.responses.contains("k") is False  # only variants
    stored = await backend.redirects.read("k") or b""
    record = decode_vary_record(backend.codec.decode_record(stored, key="k"))
    assert record is not None
    assert len(record.variants) == 2


async def test_a_plain_hit_reads_the_store_once() -> None:
    class CountingCache(MemoryCache):
        reads = 0

        async def read(self, key: str) -> bytes | None:
            type(self).reads += 1
            return await super().read(key)

    backend = CacheBackend(cache_control=True, responses=CountingCache(), redirects=CountingCache())
    await backend.write_entry("plain", entry())
    CountingCache.reads = 0
    assert await backend.read_entry("plain") is not None
    assert CountingCache.reads == 1


async def test_vary_is_ignored_without_cache_control() -> None:
    backend = CacheBackend()
    await backend.write_entry("k", entry(("Vary", "Accept")), request_headers=JSON)
    assert await backend.responses.contains("k") is True
    assert await backend.read_entry("k", request_headers=HTML) is not None


async def test_invalidate_and_delete_remove_every_variant() -> None:
    for remove in ("invalidate", "delete"):
        backend = CacheBackend(cache_control=True)
        for headers in (JSON, HTML):
            await backend.write_entry("k", entry(("Vary", "Accept")), request_headers=headers)
        await backend.write_entry("other", entry())
        if remove == "invalidate":
            await backend.invalidate(["k"])
        else:
            assert await backend.delete("k") == 2
        assert await backend.read_entry("k", request_headers=JSON) is None
        assert await backend.read_entry("k", request_headers=HTML) is None
        assert await backend.responses.size() == 1
        assert await backend.redirects.size() == 0


async def test_invalidate_follows_a_redirect_alias() -> None:
    backend = CacheBackend()
    await backend.write_entry("start", entry(), aliases=["final"])
    await backend.invalidate(["final"])
    assert await backend.responses.size() == 0
    assert await backend.redirects.size() == 0


async def test_storage_keeps_an_entry_with_validators_past_its_expiry() -> None:
    now = utcnow()
    backend = CacheBackend()
    stale_etag = entry(("ETag", '"e"'), expires=now - timedelta(seconds=1))
    stale_plain = entry(expires=now - timedelta(seconds=1))
    await backend.write_entry("etag", stale_etag)
    await backend.write_entry("plain", stale_plain)
    # The plain one is past its storage expiry at once; the one with a validator stays.
    assert await backend.read_entry("plain") is None
    assert await backend.read_entry("etag") == stale_etag
    assert await backend.delete(expired=True) == 0
    old = entry(("ETag", '"e"'), expires=now - REVALIDATION_RETENTION - timedelta(seconds=5))
    await backend.write_entry("old", old)
    assert await backend.read_entry("old") is None


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (False, False),
        (None, False),
        (0, False),
        (True, True),
        (30, 30.0),
        (1.5, 1.5),
        (timedelta(minutes=1), 60.0),
    ],
)
@pytest.mark.parametrize("argument", ["stale_if_error", "stale_while_revalidate"])
def test_stale_window_settings(argument: str, value: Any, expected: Any) -> None:
    settings = CacheSettings.build(**{argument: value})
    assert getattr(settings, argument) == expected
    assert type(getattr(settings, argument)) is type(expected)


@pytest.mark.parametrize(
    "value", [-1, float("nan"), float("inf"), timedelta(seconds=-1), "60", [60]]
)
@pytest.mark.parametrize("argument", ["stale_if_error", "stale_while_revalidate"])
def test_invalid_stale_windows_raise_config_error(argument: str, value: Any) -> None:
    with pytest.raises(ConfigError) as info:
        CacheBackend(**{argument: value})
    assert info.value.argument == argument


def test_cache_control_is_accepted() -> None:
    assert CacheBackend(cache_control=True).settings.cache_control is True
