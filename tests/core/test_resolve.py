"""resolve_cache: the one reading of a binding's ``cache`` argument."""

from __future__ import annotations

import pytest

from acc.core import CacheBackend, ConfigError
from acc.core.resolve import resolve_cache


async def test_none_is_a_new_memory_cache_each_time():
    first, second = resolve_cache(None), resolve_cache(None)
    assert type(first) is CacheBackend
    assert first is not second
    await first.close()
    await second.close()


async def test_a_backend_is_used_as_it_is():
    backend = CacheBackend(expire_after=60)
    assert resolve_cache(backend) is backend
    await backend.close()


async def test_a_url_is_resolved_by_scheme():
    backend = resolve_cache("memory://named?expire_after=60")
    assert backend.cache_name == "named"
    assert backend.settings.expire_after == 60
    await backend.close()


@pytest.mark.parametrize("bad", [1, b"memory://", object()])
def test_anything_else_is_a_config_error_naming_the_argument(bad):
    with pytest.raises(ConfigError, match=r"^cache"):
        resolve_cache(bad)
