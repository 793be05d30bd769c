"""CacheBackend.explain: what the flow would do for a request now, and why.

Each test stores what a real request would store (through ``fetch`` with a fake ``send``),
moves the clock, and checks the decision and its reason codes, and that the decision is
the one ``fetch`` then makes.
"""

from __future__ import annotations

from typing import Any

import pytest

from acc.core import CacheBackend, CachedResponse, CacheRequest
from acc.core.http.explain import LOOKUP_REASONS, STORE_REASONS
from tests.core.test_flow import Clock

URL = "https://api.example.com/items/1"


def response(request: CacheRequest, status: int = 200, **headers: str) -> CachedResponse:
    return CachedResponse(
        status=status,
        reason="OK",
        url=request.url,
        method=request.method,
        headers=tuple(headers.items()),
        body=b"hello",
    )


def sender(status: int = 200, **headers: str):
    sent: list[CacheRequest] = []

    async def send(request: CacheRequest) -> CachedResponse:
        sent.append(request)
        return response(request, status, **headers)

    send.sent = sent  # type: ignore[attr-defined]
    return send


def get(url: str = URL, **headers: str) -> CacheRequest:
    return CacheRequest(
        "GET", url, headers=tuple((k.replace("_", "-"), v) for k, v in headers.items())
    )


async def test_no_entry() -> None:
    backend = CacheBackend()
    explanation = await backend.explain(get())
    assert (explanation.decision, explanation.reason) == ("fetch", "no_entry")
    assert explanation.step("entry").code == "no_entry"  # type: ignore[union-attr]
    # Without a probe, the store step says what the response must be.
    assert explanation.would_store is None
    assert explanation.store_reason == "depends_on_response"
    assert "allowed_codes (200)" in explanation.step("store").text  # type: ignore[union-attr]
    key = explanation.step("key")
    assert key is not None
    assert key.code == "default"
    assert dict(explanation.key_inputs)["url"] == URL
    assert explanation.key == backend.create_key(get())


async def test_no_entry_with_a_probe_that_would_be_stored() -> None:
    backend = CacheBackend(expire_after=60)
    probe = sender()
    explanation = await backend.explain(get(), probe=probe)
    assert (explanation.would_store, explanation.store_reason) == (True, "would_store")
    assert explanation.probe_status == 200
    assert len(probe.sent) == 1
    assert not await backend.has_url(URL)  # the probe's answer is never stored
    assert backend.stats.as_dict() == {name: 0 for name in backend.stats.as_dict()}


async def test_fresh_hit() -> None:
    clock = Clock()
    backend = CacheBackend(expire_after=60, clock=clock)
    await backend.fetch(get(), sender())
    clock.advance(10)
    probe = sender()
    explanation = await backend.explain(get(), probe=probe)
    assert (explanation.decision, explanation.reason) == ("use", "fresh")
    assert explanation.store_reason == "not_needed"
    assert probe.sent == []  # no network for a hit
    freshness = explanation.step("freshness")
    assert freshness is not None
    assert freshness.code == "expire_after"
    assert "fresh for 50 s more" in freshness.text
    assert (await backend.fetch(get(), sender())).from_cache


async def test_stale_with_validators() -> None:
    clock = Clock()
    backend = CacheBackend(expire_after=60, clock=clock)
    await backend.fetch(get(), sender(ETag='"v1"'))
    clock.advance(61)
    explanation = await backend.explain(get())
    assert (explanation.decision, explanation.reason) == ("revalidate", "stale_with_validators")
    assert "stale for 1 s" in explanation.step("freshness").text  # type: ignore[union-attr]
    assert "has validators" in explanation.step("freshness").text  # type: ignore[union-attr]


async def test_stale_without_validators() -> None:
    clock = Clock()
    backend = CacheBackend(expire_after=60, clock=clock)
    await backend.fetch(get(), sender())
    clock.advance(61)
    explanation = await backend.explain(get())
    assert (explanation.decision, explanation.reason) == ("fetch", "stale_without_validators")
    assert "no validator" in explanation.step("freshness").text  # type: ignore[union-attr]


async def test_expired_by_urls_expire_after() -> None:
    clock = Clock()
    backend = CacheBackend(expire_after=3600, urls_expire_after={"*/items/": 5}, clock=clock)
    await backend.fetch(get(), sender())
    clock.advance(6)
    explanation = await backend.explain(get())
    assert explanation.reason == "stale_without_validators"
    freshness = explanation.step("freshness")
    assert freshness is not None
    assert freshness.code == "urls_expire_after"
    assert "urls_expire_after['*/items/'] (5 s)" in freshness.source


async def test_response_no_store() -> None:
    backend = CacheBackend(cache_control=True)
    probe = sender(200, **{"Cache-Control": "no-store"})
    explanation = await backend.explain(get(), probe=probe)
    assert explanation.reason == "no_entry"
    assert (explanation.would_store, explanation.store_reason) == (False, "no_store")
    assert "no-store" in explanation.summary
    # It is what fetch then does.
    assert not (await backend.fetch(get(), probe)).stored


async def test_request_no_store_is_known_without_a_probe() -> None:
    backend = CacheBackend(cache_control=True)
    explanation = await backend.explain(get(Cache_Control="no-store"))
    assert (explanation.would_store, explanation.store_reason) == (False, "request_no_store")


async def test_status_not_allowed() -> None:
    backend = CacheBackend()
    probe = sender(404)
    explanation = await backend.explain(get(), probe=probe)
    assert (explanation.would_store, explanation.store_reason) == (False, "status_not_allowed")
    assert explanation.step("store").source == "allowed_codes"  # type: ignore[union-attr]
    assert explanation.probe_status == 404


async def test_method_not_allowed() -> None:
    backend = CacheBackend()
    explanation = await backend.explain(CacheRequest("POST", URL, body_kind="bytes", body=b"x"))
    assert (explanation.decision, explanation.reason) == ("bypass", "method_not_allowed")
    assert (explanation.would_store, explanation.store_reason) == (False, "method_not_allowed")
    assert explanation.key is None


async def test_filter_fn_refuses_the_stored_entry() -> None:
    allow = {"on": True}
    backend = CacheBackend(filter_fn=lambda r: allow["on"])
    await backend.fetch(get(), sender())
    allow["on"] = False
    explanation = await backend.explain(get(), probe=sender())
    assert explanation.step("entry").code == "found"  # type: ignore[union-attr]
    assert explanation.reason == "filter_refused"
    assert explanation.decision == "fetch"
    assert (explanation.would_store, explanation.store_reason) == (False, "filter_refused")


async def test_async_filter_fn_is_awaited() -> None:
    async def refuse(response: CachedResponse) -> bool:
        return False

    backend = CacheBackend(filter_fn=refuse)
    explanation = await backend.explain(get(), probe=sender())
    assert explanation.store_reason == "filter_refused"


async def test_vary_mismatch() -> None:
    backend = CacheBackend(cache_control=True)
    varying = sender(200, **{"Vary": "Accept", "Cache-Control": "max-age=60"})
    await backend.fetch(get(Accept="application/json"), varying)
    hit = await backend.explain(get(Accept="application/json"))
    assert (hit.decision, hit.reason) == ("use", "fresh")
    assert "variant for vary: accept" in hit.step("entry").text.lower()  # type: ignore[union-attr]
    miss = await backend.explain(get(Accept="text/html"))
    assert (miss.decision, miss.reason) == ("fetch", "vary_mismatch")
    entry_step = miss.step("entry")
    assert entry_step is not None
    assert "accept=text/html" in entry_step.text.lower()
    assert "1 stored variant" in entry_step.text
    assert not (await backend.fetch(get(Accept="text/html"), varying)).from_cache


async def test_freshness_from_response_headers_with_cache_control() -> None:
    backend = CacheBackend(cache_control=True, expire_after=5)
    await backend.fetch(get(), sender(200, **{"Cache-Control": "max-age=600"}))
    explanation = await backend.explain(get())
    freshness = explanation.step("freshness")
    assert freshness is not None
    assert freshness.code == "cache_control"
    assert "max-age=600" in freshness.text


async def test_a_per_request_expiry_is_flagged_as_not_from_the_settings() -> None:
    backend = CacheBackend(expire_after=60)
    await backend.fetch(get(), sender(), expire_after=3600)
    explanation = await backend.explain(get())
    assert "would give another expiry" in explanation.step("freshness").text  # type: ignore[union-attr]
    told = await backend.explain(get(), expire_after=3600)
    assert "another expiry" not in told.step("freshness").text  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("options", "reason", "decision"),
    [
        ({"refresh": True}, "refresh", "fetch"),
        ({"force_refresh": True}, "force_refresh", "fetch"),
        ({"only_if_cached": True}, "fresh", "use"),
    ],
)
async def test_request_options(options: Any, reason: str, decision: str) -> None:
    backend = CacheBackend()
    await backend.fetch(get(), sender())
    explanation = await backend.explain(get(), **options)
    assert (explanation.reason, explanation.decision) == (reason, decision)


async def test_only_if_cached_without_an_entry_is_a_504() -> None:
    explanation = await CacheBackend().explain(get(), only_if_cached=True)
    assert (explanation.reason, explanation.decision) == ("only_if_cached", "504")
    assert explanation.store_reason == "not_needed"


async def test_a_redirect_alias_finds_the_entry() -> None:
    backend = CacheBackend()
    stored = response(get(URL + "/final"))
    await backend.write_entry(
        backend.url_key(URL + "/final"), stored, aliases=[backend.url_key(URL)]
    )
    explanation = await backend.explain(get())
    assert explanation.reason == "fresh"
    assert "through a redirect alias" in explanation.step("entry").text  # type: ignore[union-attr]


async def test_an_unreadable_entry_is_reported_not_deleted() -> None:
    backend = CacheBackend()
    key = backend.create_key(get())
    await backend.responses.write(key, b"garbage")
    explanation = await backend.explain(get())
    assert explanation.reason == "no_entry"
    assert "cannot be read" in explanation.step("entry").text  # type: ignore[union-attr]
    assert await backend.responses.read(key) == b"garbage"
    assert backend.stats.errors == 0


async def test_credentials_are_named_never_shown() -> None:
    backend = CacheBackend()
    explanation = await backend.explain(get(Authorization="Bearer s3cret"))
    inputs = dict(explanation.key_inputs)
    assert inputs["credentials"] == "a hash of Authorization"
    assert "s3cret" not in repr(explanation.as_dict())


async def test_every_code_is_documented_and_as_dict_is_json_ready() -> None:
    import json

    backend = CacheBackend()
    await backend.fetch(get(), sender())
    explanation = await backend.explain(get())
    data = json.loads(json.dumps(explanation.as_dict()))
    assert data["reason"] in LOOKUP_REASONS
    assert data["store_reason"] in STORE_REASONS
    assert [s["name"] for s in data["steps"]] == [
        "request",
        "key",
        "entry",
        "freshness",
        "lookup",
        "store",
    ]
