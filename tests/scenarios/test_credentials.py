"""Credentials: one user is never served another's response, and none is stored in clear."""

from __future__ import annotations

import base64

import pytest

from acc.core import CacheBackend

# aiohttp 3.14 deprecates its auth= argument; the aiohttp driver still passes it, since
# users do.
pytestmark = pytest.mark.filterwarnings("ignore:.*(BasicAuth|auth).*:DeprecationWarning")


async def _stored_bytes(backend: CacheBackend) -> bytes:
    await backend.flush()  # entries are written just after their responses
    return b"".join([value async for _key, value in backend.responses.items()])


async def test_credentials_never_share_entries_nor_get_stored(origin, client_factory):
    client = client_factory()
    alice = await client.get(origin("/json"), headers={"Authorization": "Bearer alice-secret"})
    bob = await client.get(origin("/json"), headers={"Authorization": "Bearer bob-secret"})
    assert not bob.from_cache
    assert alice.cache_key != bob.cache_key
    basic_a = await client.get(origin("/json"), auth=("carol", "pw-carol"))
    basic_b = await client.get(origin("/json"), auth=("dave", "pw-dave"))
    assert not basic_b.from_cache
    assert basic_a.cache_key != basic_b.cache_key
    again = await client.get(origin("/json"), headers={"Authorization": "Bearer alice-secret"})
    assert again.from_cache
    assert again.cache_key == alice.cache_key
    assert again.body == alice.body
    basic_again = await client.get(origin("/json"), auth=("carol", "pw-carol"))
    assert basic_again.from_cache
    assert basic_again.body == basic_a.body
    cookie = await client.get(origin("/json"), headers={"Cookie": "session=xyz-secret"})
    assert not cookie.from_cache
    stored = await _stored_bytes(client.cache)
    for secret in (b"alice-secret", b"bob-secret", b"pw-carol", b"pw-dave", b"xyz-secret"):
        assert secret not in stored
    assert base64.b64encode(b"carol:pw-carol") not in stored
    assert origin.hits["/json"] == 5


async def test_anonymous_and_authenticated_requests_never_share(origin, client_factory):
    client = client_factory()
    token = {"Authorization": "Bearer token-1"}
    authenticated = await client.get(origin("/json"), headers=token)
    anonymous = await client.get(origin("/json"))
    assert anonymous.from_cache is False
    assert anonymous.cache_key != authenticated.cache_key
    assert anonymous.json()["count"] == 2
    assert (await client.get(origin("/json"))).json()["count"] == 2  # its own entry
    assert (await client.get(origin("/json"), headers=token)).json()["count"] == 1
    # The other way round: an anonymous entry is not served to an authenticated request.
    await client.get(origin("/text"))
    other = await client.get(origin("/text"), headers={"Authorization": "Basic x"})
    assert other.from_cache is False
    assert (await client.get(origin("/text"), auth=("erin", "pw"))).from_cache is False
    assert origin.hits["/json"] == 2
    assert origin.hits["/text"] == 3
