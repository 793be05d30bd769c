"""The conformance kit against ExampleCache, plus the backend's own checks."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable

import pytest

from acc.backends.example import ExampleBackend, ExampleCache
from acc.core import CacheBackend, ConfigError
from acc.core.storage import BaseCache
from acc.core.testing import BaseCacheContract

URL = "example://localhost/contract"  # DRIVER: read it from an environment variable


class TestExampleCache(BaseCacheContract):
    """Every test of the kit, run against ExampleCache."""

    @pytest.fixture
    async def cache(self) -> AsyncIterator[ExampleCache]:
        """The one required fixture: an empty store."""
        store = ExampleCache(URL, "responses")
        await store.clear()  # the kit expects an empty store
        yield store
        await store.close()

    @pytest.fixture
    async def other_namespace(self) -> AsyncIterator[ExampleCache]:
        """Optional: another namespace of the same store (checks that clear() is scoped)."""
        store = ExampleCache(URL, "redirects")
        await store.clear()
        yield store
        await store.close()

    @pytest.fixture
    def reopen(self, cache: ExampleCache) -> Callable[[], Awaitable[BaseCache]]:
        """Optional, for persistent stores: close ``cache`` and open the same location."""

        async def reopen() -> BaseCache:
            await cache.close()
            return ExampleCache(URL, "responses")

        return reopen


def test_found_by_url_scheme() -> None:
    """Needs the package installed (pip install -e .) so that its entry point exists."""
    backend = CacheBackend.from_url("example://localhost/db?expire_after=60")
    assert isinstance(backend, ExampleBackend)
    assert backend.settings.expire_after == 60


def test_unknown_keyword_and_bad_value() -> None:
    """Options are checked at construction."""
    with pytest.raises(TypeError):
        ExampleBackend(URL, expire_aftr=60)
    with pytest.raises(ConfigError, match=r"^expire_after"):
        ExampleBackend(URL, expire_after="soon")
    with pytest.raises(ConfigError, match=r"^pool_size"):
        ExampleBackend(URL, pool_size=0)


def test_url_options_are_typed_and_checked() -> None:
    """The query sets the options of URL_OPTIONS and CacheBackend's; keywords win."""
    backend = ExampleBackend.from_url(f"{URL}?pool_size=4&expire_after=60&allowed_codes=200,404")
    assert backend.pool_size == 4
    assert backend.settings.expire_after == 60
    assert backend.settings.allowed_codes == {200, 404}
    assert ExampleBackend.from_url(f"{URL}?pool_size=4", pool_size=2).pool_size == 2
    with pytest.raises(TypeError, match="pool_sise"):
        ExampleBackend.from_url(f"{URL}?pool_sise=4")
    with pytest.raises(ConfigError, match=r"^pool_size"):
        ExampleBackend.from_url(f"{URL}?pool_size=many")
