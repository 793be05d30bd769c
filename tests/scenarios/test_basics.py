"""Misses and hits, the backend's lifecycle, what is stored, redirects, ignored params."""

from __future__ import annotations

import json
from urllib.parse import parse_qsl, urlsplit

from acc.core import CacheBackend


async def _share_stores(backend: CacheBackend, source: CacheBackend) -> None:
    """Point ``backend`` at the stores of ``source`` (closing its own first)."""
    await backend.responses.close()
    await backend.redirects.close()
    backend.responses, backend.redirects = source.responses, source.redirects


async def _stored_bytes(backend: CacheBackend) -> bytes:
    await backend.flush()  # entries are written just after their responses
    return b"".join([value async for _key, value in backend.responses.items()])


async def test_miss_then_hit(origin, client_factory):
    client = client_factory()
    first = await client.get(origin("/json"))
    assert first.status == 200
    assert (first.from_cache, first.revalidated, first.stale) == (False, False, False)
    assert first.json() == {"path": "/json", "query": {}, "count": 1}
    assert first.cache_key is not None
    second = await client.get(origin("/json"))
    assert second.status == 200
    assert second.from_cache is True
    assert second.body == first.body
    assert second.cache_key == first.cache_key
    assert second.created_at == first.created_at
    assert second.expires is None
    assert (second.stale, second.revalidated) == (False, False)
    assert second.headers["Content-Type"].startswith("application/json")
    assert origin.hits["/json"] == 1
    await client.cache.flush()  # the entry was served from the write-behind queue
    stats = client.cache.stats
    assert (stats.hits, stats.misses, stats.writes, stats.errors) == (1, 1, 1, 0)


async def test_autoclose(origin, make_backend, make_client):
    kept = make_backend(autoclose=False)
    first = make_client(kept)
    await first.get(origin("/json"))
    await first.close()
    assert not kept.closed
    second = make_client(kept)
    assert (await second.get(origin("/json"))).from_cache
    await second.close()
    assert not kept.closed
    closed = make_backend()  # autoclose=True is the default
    third = make_client(closed)
    await third.get(origin("/text"))
    await third.close()
    assert closed.closed
    assert origin.hits["/json"] == 1


async def test_allowed_codes_and_methods(origin, client_factory):
    client = client_factory()
    assert (await client.get(origin("/status/404"))).status == 404
    assert (await client.get(origin("/status/404"))).from_cache is False
    await client.post(origin("/echo"), json={"a": 1})
    assert (await client.post(origin("/echo"), json={"a": 1})).from_cache is False
    assert client.cache.stats.not_stored == 2  # the 404s
    assert client.cache.stats.bypassed == 2  # POST is not an allowed method
    assert client.cache.stats.writes == 0

    wider = client_factory(allowed_codes=(200, 404), allowed_methods=("GET", "POST"))
    await wider.get(origin("/status/404"))
    cached_404 = await wider.get(origin("/status/404"))
    assert (cached_404.status, cached_404.from_cache, cached_404.body) == (404, True, b"status")
    first = await wider.post(origin("/echo"), json={"a": "1"})
    posted = await wider.post(origin("/echo"), json={"a": "1"})
    assert posted.from_cache is True
    assert posted.body == first.body
    assert json.loads(posted.json()["body"]) == {"a": "1"}
    assert (await wider.post(origin("/echo"), json={"a": "2"})).from_cache is False
    assert (await wider.post(origin("/echo"), content=b"raw")).from_cache is False
    raw = await wider.post(origin("/echo"), content=b"raw")
    assert raw.from_cache is True
    assert raw.json()["body"] == "raw"
    assert origin.hits["/status/404"] == 3
    assert origin.hits["/echo"] == 5


async def test_filter_fn_sync_and_async(origin, client_factory):
    async def only_small(response):
        return len(response.body) < 100

    client = client_factory(filter_fn=only_small)
    await client.get(origin("/big?size=1024"))
    assert (await client.get(origin("/big?size=1024"))).from_cache is False
    await client.get(origin("/text"))
    assert (await client.get(origin("/text"))).from_cache is True
    assert client.cache.stats.not_stored == 2

    writer = client_factory(autoclose=False)
    await writer.get(origin("/text"))
    # filter_fn is also applied on read: a stricter reader treats the entry as a miss.
    reader = client_factory(filter_fn=lambda response: response.status != 200)
    await _share_stores(reader.cache, writer.cache)
    assert (await reader.get(origin("/text"))).from_cache is False
    assert (await writer.get(origin("/text"))).from_cache is True
    assert origin.hits["/text"] == 3


async def test_redirect_target_is_aliased(origin, client_factory):
    client = client_factory()
    first = await client.get(origin("/redirect"))
    assert first.status == 200
    assert first.history == (302,)
    assert first.json()["query"] == {"from": "redirect"}
    again = await client.get(origin("/redirect"))
    assert again.from_cache
    assert again.history == (302,)
    assert again.body == first.body
    direct = await client.get(origin("/json?from=redirect"))
    assert direct.from_cache
    assert direct.body == first.body
    assert origin.hits["/json"] == 1
    if client.caches_redirect_chains:
        assert origin.hits["/redirect"] == 1  # one entry, aliased, answers the whole chain
    else:
        # The client follows redirects above the cache (httpx): each hop is a request of
        # its own, and a 302 is not in allowed_codes (docs/httpx.md).
        assert origin.hits["/redirect"] == 2


async def test_ignored_params_share_entries_and_are_redacted(origin, client_factory):
    client = client_factory(ignored_params=["api_key"])
    first = await client.get(origin("/text?q=x&api_key=k-one"))
    assert first.body == "héllo wörld".encode()
    hit = await client.get(origin("/text?api_key=k-two&q=x"))
    assert hit.from_cache
    assert hit.cache_key == first.cache_key
    # The hit shows the stored URL, redacted (aiohttp), or the request's own (httpx):
    # never the first caller's key.
    assert dict(parse_qsl(urlsplit(hit.url).query)) in (
        {"q": "x", "api_key": "REDACTED"},
        {"q": "x", "api_key": "k-two"},
    )
    assert b"k-one" not in await _stored_bytes(client.cache)
    assert origin.hits["/text"] == 1
