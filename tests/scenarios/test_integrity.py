"""Entries that were corrupted, tampered with, moved, or signed with a retired key."""

from __future__ import annotations

from acc.core import CacheBackend


async def _share_stores(backend: CacheBackend, source: CacheBackend) -> None:
    """Point ``backend`` at the stores of ``source`` (closing its own first)."""
    await backend.responses.close()
    await backend.redirects.close()
    backend.responses, backend.redirects = source.responses, source.redirects


async def test_corrupted_and_tampered_entries_read_as_misses(origin, client_factory):
    client = client_factory(secret_key="s3cret")
    backend = client.cache
    first = await client.get(origin("/json"))
    key = first.cache_key
    await backend.flush()  # written behind the response: wait, then spoil it
    await backend.responses.write(key, b"\x00garbage\xff")
    assert (await client.get(origin("/json"))).from_cache is False
    assert backend.stats.errors == 1
    await backend.flush()
    stored = await backend.responses.read(key)
    tampered = stored[:-3] + b"XYZ"
    await backend.responses.write(key, tampered)
    assert (await client.get(origin("/json"))).from_cache is False
    assert backend.stats.errors == 2
    hit = await client.get(origin("/json"))
    assert hit.from_cache is True
    assert hit.json()["count"] == 3
    assert origin.hits["/json"] == 3


async def test_key_rotation_reads_entries_signed_with_old_key(origin, client_factory):
    old = client_factory(secret_key="old-key", autoclose=False)
    await old.get(origin("/json"))
    await old.cache.flush()
    rotated = client_factory(secret_key=["new-key", "old-key"], autoclose=False)
    await _share_stores(rotated.cache, old.cache)
    assert (await rotated.get(origin("/json"))).from_cache is True
    only_new = client_factory(secret_key="new-key", autoclose=False)
    await _share_stores(only_new.cache, old.cache)
    assert (await only_new.get(origin("/json"))).from_cache is False
    assert only_new.cache.stats.errors == 1
    assert origin.hits["/json"] == 2


async def test_signed_entry_copied_to_another_key_reads_as_miss(origin, client_factory):
    client = client_factory(secret_key="k")
    backend = client.cache
    one = await client.get(origin("/json?id=1"))
    two = await client.get(origin("/json?id=2"))
    await backend.flush()
    entry_one = await backend.responses.read(one.cache_key)
    await backend.responses.write(two.cache_key, entry_one)
    swapped = await client.get(origin("/json?id=2"))
    assert swapped.from_cache is False
    assert swapped.json()["query"] == {"id": "2"}
    assert backend.stats.errors == 1
