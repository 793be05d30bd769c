"""Settings changed on a live backend: one documented way, checked, never ignored.

aiohttp-client-cache's guides assign settings at run time (``cache.expire_after = 60``);
acc supports exactly that, through the attribute of the setting's name, checked as the
constructor checks its keyword. A backend's namespace cannot change, and a closed backend
says why it is closed and how to share one.
"""

from __future__ import annotations

from typing import Any

import attrs
import pytest

from acc.core import BackendError, CacheBackend, CachedResponse, CacheRequest, ConfigError
from acc.core.resolve import SETTING_NAMES
from acc.core.settings import CacheSettings

URL = "https://example.com/items"


def _sender(body: bytes = b"body", status: int = 200) -> Any:
    sent: list[CacheRequest] = []

    async def send(request: CacheRequest) -> CachedResponse:
        sent.append(request)
        return CachedResponse(
            status=status, reason="OK", url=request.url, method=request.method, body=body
        )

    send.sent = sent  # type: ignore[attr-defined]
    return send


async def test_assigning_a_setting_changes_what_the_next_request_does() -> None:
    backend = CacheBackend()
    send = _sender()
    assert (await backend.fetch(CacheRequest("GET", URL), send)).stored is True
    backend.expire_after = 0  # DO_NOT_CACHE, as aiohttp-client-cache's 0 means
    assert backend.settings.expire_after == 0
    assert backend.expire_after == 0
    other = await backend.fetch(CacheRequest("GET", URL + "/2"), send)
    assert other.stored is False
    backend.allowed_codes = (200, 404)
    assert backend.allowed_codes == frozenset({200, 404})
    backend.expire_after = 60
    missing = await backend.fetch(CacheRequest("GET", URL + "/404"), _sender(status=404))
    assert missing.stored is True
    assert missing.response.expires is not None


async def test_an_invalid_value_raises_and_changes_nothing() -> None:
    backend = CacheBackend(expire_after=30, allowed_codes=(200,))
    before = backend.settings
    with pytest.raises(ConfigError) as raised:
        backend.allowed_codes = [200, 999]
    assert raised.value.argument == "allowed_codes"
    with pytest.raises(ConfigError, match="expire_after"):
        backend.expire_after = "soon"
    assert backend.settings is before


def test_every_setting_but_the_namespace_is_an_assignable_attribute() -> None:
    backend = CacheBackend()
    changeable = [name for name in SETTING_NAMES if name != "cache_name"]
    assert "expire_after" in changeable
    assert "strict" in changeable
    assert "key_settings" not in SETTING_NAMES
    given = {"expire_after_set", "allowed_codes_set"}  # assigning a value gives it
    for name in changeable:
        setattr(backend, name, getattr(backend, name))  # the value read is accepted back
        assert attrs.evolve(backend.settings, expire_after_set=False, allowed_codes_set=False) == (
            CacheBackend().settings
        )
    fields = {f.name for f in CacheSettings.__attrs_attrs__}
    assert set(SETTING_NAMES) == fields - {"key_settings"} - given


@pytest.mark.parametrize("change", [{"strict": True}, {"stale_if_error": 60}])
def test_changing_another_setting_leaves_unset_options_unset(change: dict[str, Any]) -> None:
    # With cache_control=True, an expire_after or allowed_codes never given means "no
    # fallback" and "RFC 9111 decides"; another change must not turn them into values.
    backend = CacheBackend(cache_control=True)
    backend.change_settings(**change)
    assert backend.settings.expire_after_set is False
    assert backend.settings.allowed_codes_set is False
    backend.expire_after = 60
    given = backend.settings
    assert given.expire_after_set is True
    assert given.allowed_codes_set is False


def test_urls_expire_after_can_be_replaced() -> None:
    backend = CacheBackend(urls_expire_after={"example.com/a": 5})
    backend.urls_expire_after = {"example.com/b": 10}
    assert backend.settings.urls_expire_after.match("https://example.com/b/1") == (True, 10)
    assert backend.settings.urls_expire_after.match("https://example.com/a/1") == (False, None)
    backend.expire_after = 3  # another change keeps the patterns
    assert backend.settings.urls_expire_after.match("https://example.com/b/1") == (True, 10)


def test_settings_checked_together_change_together() -> None:
    backend = CacheBackend(match_headers=["Accept"])
    with pytest.raises(ConfigError, match="match_headers"):
        backend.include_headers = True
    backend.change_settings(include_headers=True, match_headers=None)
    assert backend.include_headers is True
    assert backend.match_headers == ()


def test_the_namespace_cannot_change() -> None:
    backend = CacheBackend("mine")
    with pytest.raises(AttributeError, match="cache_name cannot change on a live backend"):
        backend.cache_name = "other"
    with pytest.raises(TypeError, match="cache_name"):
        backend.change_settings(cache_name="other")
    assert backend.cache_name == "mine"


def test_change_settings_refuses_unknown_names() -> None:
    backend = CacheBackend()
    with pytest.raises(TypeError, match="expire_afer"):
        backend.change_settings(expire_afer=3)


async def test_a_new_secret_key_signs_and_verifies_from_then_on() -> None:
    backend = CacheBackend()
    await backend.fetch(CacheRequest("GET", URL), _sender(b"unsigned"))
    backend.secret_key = "s3cret"
    assert backend.codec.signed
    # The unsigned entry is not trusted any more: a miss, then a signed entry.
    again = await backend.fetch(CacheRequest("GET", URL), _sender(b"signed"))
    assert (again.from_cache, again.response.body) == (False, b"signed")
    hit = await backend.fetch(CacheRequest("GET", URL), _sender(b"never sent"))
    assert (hit.from_cache, hit.response.body) == (True, b"signed")


async def test_a_closed_backend_says_why_and_how_to_share_one() -> None:
    backend = CacheBackend()
    await backend.close()
    with pytest.raises(BackendError) as raised:
        await backend.fetch(CacheRequest("GET", URL), _sender())
    message = str(raised.value)
    assert "is closed" in message
    assert "autoclose=True, the default" in message
    assert "autoclose=False" in message


def test_every_setting_the_constructor_checks_has_an_attribute() -> None:
    import inspect

    from acc.core.backend import _SETTING_NAMES, _Setting

    built = set(inspect.signature(CacheSettings.build).parameters)
    assert set(_SETTING_NAMES) == built & set(SETTING_NAMES)
    for name in _SETTING_NAMES:
        if name != "cache_name":
            assert isinstance(vars(CacheBackend)[name], _Setting), name
