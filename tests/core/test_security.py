"""Security regressions of issue 12 in the core (pure: no sockets, no files).

Each test names the item of issue 12 it guards, and fails if that protection is removed.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from datetime import datetime, timezone
from typing import Any

import pytest

from acc.core import BaseCache, CacheBackend, CachedResponse, CacheRequest
from acc.core.codec import Codec, DecodeError
from acc.core.flow.entries import entry_from_head, unservable
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
    assert f"api_key={REDACTED}" in headers["Link"]
    assert headers["Link"].endswith('rel="next"')
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


# -- item 2: whatever storage holds, a request never fails because of it ------------------------


class AnythingCache(BaseCache):
    """A store that hands back whatever was put in it, bytes or not (as SQLite may)."""

    def __init__(self) -> None:
        super().__init__()
        self.data: dict[str, Any] = {}

    def put(self, key: str, value: object) -> None:
        self.data[key] = value

    async def read(self, key: str) -> bytes | None:
        return self.data.get(key)

    async def write(self, key: str, value: bytes, *, expires_at: float | None = None) -> None:
        self.data[key] = value

    async def delete(self, key: str) -> None:
        self.data.pop(key, None)

    async def keys(self) -> AsyncIterator[str]:
        for key in list(self.data):
            yield key

    async def clear(self) -> None:
        self.data.clear()


def _hostile_entries() -> list[tuple[str, CachedResponse]]:
    def make(**fields: Any) -> CachedResponse:
        values: dict[str, Any] = {
            "status": 200,
            "reason": "OK",
            "url": "https://example.com/x",
            "method": "GET",
            "created_at": NOW,
        }
        values.update(fields)
        return CachedResponse(**values)

    return [
        ("bracket-url", make(url="http://[")),
        ("bad-port", make(url="http://example.com:99999/")),
        ("not-http", make(url="javascript:alert(1)")),
        ("relative-url", make(url="/x")),
        ("space-in-url", make(url="http://exa mple.com/")),
        ("userinfo", make(url="http://user:pw@example.com/")),
        ("bad-punycode", make(url="http://xn--/")),
        ("status-0", make(status=0)),
        ("status-1000", make(status=1000)),
        ("method", make(method="GET /x HTTP/1.1\r\n")),
        ("surrogate-header", make(headers=(("X-Bad", "\ud800"),))),
        ("surrogate-request-header", make(request_headers=(("X-Bad", "\udbff"),))),
        (
            "hostile-hop",
            make(history=(RedirectHop(302, "Found", "http://[", "GET", ()),)),
        ),
    ]


HOSTILE = _hostile_entries()


@pytest.mark.parametrize(("name", "entry"), HOSTILE, ids=[name for name, _ in HOSTILE])
async def test_an_entry_no_client_could_serve_is_a_miss_deleted_and_counted(
    name: str, entry: CachedResponse, caplog: pytest.LogCaptureFixture
) -> None:
    backend = CacheBackend()
    request = CacheRequest("GET", "https://example.com/x")
    key = backend.create_key(request)
    await backend.responses.write(key, backend.codec.encode(entry, key=key))
    sent: list[CacheRequest] = []

    async def send(request: CacheRequest) -> CachedResponse:
        sent.append(request)
        return CachedResponse(200, "OK", request.url, "GET", body=b"fresh", created_at=NOW)

    with caplog.at_level(logging.WARNING, logger="acc"):
        result = await backend.fetch(request, send)
    assert result.from_cache is False
    assert result.response.body == b"fresh"
    assert len(sent) == 1
    assert backend.stats.errors == 1
    assert len([r for r in caplog.records if "discarding" in r.getMessage()]) == 1
    # The hostile entry was deleted, and the fresh response stored in its place.
    assert (await backend.fetch(request, send)).from_cache is True


@pytest.mark.parametrize(
    "value", [42, 4.5, "text", "ACC\x03", b"", bytearray(b"junk"), None.__class__, ["list"]]
)
async def test_a_stored_value_that_is_not_bytes_is_a_miss_deleted_and_counted(
    value: object,
) -> None:
    responses = AnythingCache()
    backend = CacheBackend(responses=responses)
    key = backend.url_key("https://example.com/x")
    responses.put(key, value)
    assert await backend.read_entry(key) is None
    assert backend.stats.errors == 1
    assert await responses.contains(key) is False


async def test_a_redirect_record_that_is_not_bytes_is_a_miss_deleted_and_counted() -> None:
    redirects = AnythingCache()
    backend = CacheBackend(redirects=redirects)
    redirects.put("alias", 12345)
    assert await backend.read_entry("alias") is None
    assert backend.stats.errors == 1
    assert await redirects.contains("alias") is False


async def test_a_response_no_client_could_serve_is_not_stored() -> None:
    # What the flow stores passes the same check, so it can always be served back.
    backend = CacheBackend()

    async def send(request: CacheRequest) -> CachedResponse:
        return CachedResponse(999 + 1, "??", request.url, "GET", body=b"odd", created_at=NOW)

    request = CacheRequest("GET", "https://example.com/odd")
    result = await backend.fetch(request, send)
    assert result.stored is False
    assert result.response.body == b"odd"
    assert backend.stats.errors == 0


def test_unservable_accepts_what_clients_produce() -> None:
    for url in (
        "https://example.com/",
        "http://127.0.0.1:8080/a/b?c=d&e=%20#frag",
        "http://[::1]:8080/x",
        "https://xn--bcher-kva.de/caf%C3%A9",
        "https://example.com/café?q=日本",  # a core-only user's own text
    ):
        ok = CachedResponse(200, "OK", url, "GET", headers=(("X", "caf\udce9"),), created_at=NOW)
        assert unservable(ok) is None, url


# -- item 1: Set-Cookie is not stored by default -----------------------------------------------


def _with_cookies(request: CacheRequest) -> CachedResponse:
    return CachedResponse(
        200,
        "OK",
        request.url,
        "GET",
        headers=(("Set-Cookie", "sid=alice"), ("Content-Type", "text/plain")),
        body=b"page",
        created_at=NOW,
        history=(
            RedirectHop(302, "Found", "https://example.com/login", "GET", (("Set-Cookie", "a=1"),)),
        ),
    )


async def test_set_cookie_is_served_to_its_caller_but_not_stored() -> None:
    backend = CacheBackend()

    async def send(request: CacheRequest) -> CachedResponse:
        return _with_cookies(request)

    request = CacheRequest("GET", "https://example.com/page")
    miss = await backend.fetch(request, send)
    assert miss.stored
    assert miss.response.cookies == ("sid=alice",)
    hit = await backend.fetch(request, send)
    assert hit.from_cache
    assert hit.response.cookies == ()
    assert hit.response.history[0].headers == ()
    assert hit.response.body == b"page"
    raw = b"".join([value async for _key, value in backend.responses.items()])
    assert b"sid=alice" not in raw
    assert b"a=1" not in raw


async def test_store_cookies_keeps_them_and_a_default_cache_drops_them_on_read() -> None:
    keeping = CacheBackend(store_cookies=True)

    async def send(request: CacheRequest) -> CachedResponse:
        return _with_cookies(request)

    request = CacheRequest("GET", "https://example.com/page")
    await keeping.fetch(request, send)
    hit = await keeping.fetch(request, send)
    assert hit.from_cache
    assert hit.response.cookies == ("sid=alice",)
    assert hit.response.history[0].headers == (("Set-Cookie", "a=1"),)
    # A default cache reading the same store (another process, say) never serves them.
    default = CacheBackend(responses=keeping.responses, redirects=keeping.redirects)
    shared = await default.fetch(request, send)
    assert shared.from_cache
    assert shared.response.cookies == ()
    assert shared.response.history[0].headers == ()


async def test_debug_lines_redact_credential_params(caplog: pytest.LogCaptureFixture) -> None:
    backend = CacheBackend(credential_params=["api_key"])

    async def send(request: CacheRequest) -> CachedResponse:
        return CachedResponse(200, "OK", request.url, "GET", body=b"x", created_at=NOW)

    with caplog.at_level(logging.DEBUG, logger="acc"):
        await backend.fetch(CacheRequest("GET", "https://example.com/?api_key=k-secret"), send)
    assert caplog.records
    assert all("k-secret" not in record.getMessage() for record in caplog.records)
    assert all("k-secret" not in str(getattr(r, "acc_url", "")) for r in caplog.records)
