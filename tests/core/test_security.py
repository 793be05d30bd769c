"""Security regressions of issue 12 in the core (pure: no sockets, no files).

Each test names the item of issue 12 it guards, and fails if that protection is removed.
"""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from acc.core import CacheBackend, CachedResponse
from acc.core.codec import Codec, DecodeError
from acc.core.flow.entries import entry_from_head
from acc.core.flow.exchange import ResponseHead
from acc.core.keys import CREDENTIAL_HEADERS, REDACTED
from acc.core.models import RedirectHop

NOW = datetime(2024, 5, 17, 12, 0, tzinfo=timezone.utc)


# -- item 5: redaction reaches every stored URL and URL-bearing header -------------------------


def test_entries_redact_urls_in_hops_and_url_bearing_headers() -> None:
    secret = "s3cr3t-value"
    head = ResponseHead(
        status=200,
        reason="OK",
        url=f"https://api.example/items?api_key={secret}&page=2",
        method="GET",
        headers=(
            ("Content-Location", f"/items?page=2&api_key={secret}"),
            ("Link", f'<https://api.example/items?page=3&api_key={secret}>; rel="next"'),
            ("Location", f"http://[bad?api_key={secret}"),  # unparseable: dropped whole
            ("X-Other", "kept"),
        ),
        request_headers=(("X-Api-Key", secret), ("Accept", "*/*")),
        history=(
            RedirectHop(
                302,
                "Found",
                f"https://user:pw@api.example/start?api_key={secret}",
                "GET",
                (("Location", f"https://user:pw@api.example/items?api_key={secret}&page=2"),),
            ),
        ),
    )
    entry = entry_from_head(
        head,
        b"body",
        created_at=NOW,
        expires=None,
        redacted_params=frozenset({"api_key"}),
        redacted_headers=CREDENTIAL_HEADERS,
    )
    assert secret not in repr(entry)
    assert "pw" not in repr(entry)
    headers = dict(entry.headers)
    assert headers["Content-Location"] == f"/items?page=2&api_key={REDACTED}"
    assert f"api_key={REDACTED}" in headers["Link"] and headers["Link"].endswith('rel="next"')
    assert headers["Location"] == REDACTED
    assert headers["X-Other"] == "kept"
    [hop] = entry.history
    assert hop.url == f"https://api.example/start?api_key={REDACTED}"
    assert dict(hop.headers)["Location"] == f"https://api.example/items?api_key={REDACTED}&page=2"


# -- item 3: aliases and vary records are bound to the key they answer for ---------------------


def _entry(url: str, body: bytes) -> CachedResponse:
    return CachedResponse(200, "OK", url, "GET", body=body, created_at=NOW)


@pytest.mark.parametrize("secret_key", [None, "s3cret"], ids=["unsigned", "signed"])
async def test_aliases_answer_only_for_their_own_key(secret_key: str | None) -> None:
    backend = CacheBackend(secret_key=secret_key)
    assert await backend.write_entry("key-a", _entry("https://a/", b"A"), aliases=["alias-a"])
    assert (await backend.read_entry("alias-a") or _entry("", b"")).body == b"A"
    genuine = await backend.redirects.read("alias-a")
    assert genuine is not None
    # A genuine record moved to another key, or a bare key as older versions wrote it.
    for forged in (genuine, b"key-a"):
        await backend.redirects.write("key-b", forged)
        errors = backend.stats.errors
        assert await backend.read_entry("key-b") is None
        assert backend.stats.errors == errors + 1
        assert await backend.redirects.contains("key-b") is False  # deleted


async def test_a_forged_alias_cannot_be_signed_without_the_key() -> None:
    backend = CacheBackend(secret_key="s3cret")
    await backend.write_entry("key-a", _entry("https://a/", b"A"))
    attacker = Codec("guessed")
    await backend.redirects.write("key-b", attacker.encode_record(b"key-a", key="key-b"))
    assert await backend.read_entry("key-b") is None
    unsigned = Codec()
    await backend.redirects.write("key-b", unsigned.encode_record(b"key-a", key="key-b"))
    assert await backend.read_entry("key-b") is None
    assert backend.stats.errors == 2


async def test_vary_records_answer_only_for_their_own_key() -> None:
    backend = CacheBackend(cache_control=True, secret_key="s3cret")
    varying = CachedResponse(
        200, "OK", "https://a/", "GET", headers=(("Vary", "Accept"),), body=b"A", created_at=NOW
    )
    headers = (("Accept", "text/html"),)
    assert await backend.write_entry("key-a", varying, request_headers=headers)
    assert await backend.read_entry("key-a", request_headers=headers) is not None
    record = await backend.redirects.read("key-a")
    assert record is not None
    await backend.redirects.write("key-b", record)
    assert await backend.read_entry("key-b", request_headers=headers) is None
    assert backend.stats.errors == 1
    # A vary record that does not verify is no lead for invalidation either.
    await backend.redirects.write("key-c", record)
    await backend.invalidate(["key-c"])
    assert await backend.read_entry("key-a", request_headers=headers) is not None


def test_records_fail_on_any_flipped_bit_truncation_or_other_key() -> None:
    for codec in (Codec(), Codec("s3cret")):
        data = codec.encode_record(b"target-key", key="alias")
        assert codec.decode_record(data, key="alias") == b"target-key"
        with pytest.raises(DecodeError):
            codec.decode_record(data, key="other")
        for index in range(len(data)):
            with pytest.raises(DecodeError):
                codec.decode_record(data[:index], key="alias")
            flipped = bytearray(data)
            flipped[index] ^= 0x04
            with pytest.raises(DecodeError):
                codec.decode_record(bytes(flipped), key="alias")
