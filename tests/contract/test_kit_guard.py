"""The kit itself: its guard against overridden tests, and proof that it can fail.

A conformance kit that passes every adapter proves nothing. Here deliberately broken
adapters are run through it (in a nested pytest session, via ``pytester``) and the kit
must fail exactly the tests that concern the breakage, while passing the rest.
"""

from __future__ import annotations

import textwrap
from collections.abc import Callable

import pytest

from acc.core import BaseCache
from acc.core.testing import BaseCacheContract, expected_failure

pytest_plugins = ["pytester"]

CONTRACT_TEST = "test_read_of_missing_key_returns_none"


def _xfail_marks(function: Callable[..., object]) -> list[pytest.Mark]:
    marks: list[pytest.Mark] = getattr(function, "pytestmark", [])
    return [mark for mark in marks if mark.name == "xfail"]


# -- the guard ----------------------------------------------------------------------------


def test_unmarked_override_of_a_contract_test_raises_type_error() -> None:
    with pytest.raises(TypeError, match=f"Sloppy.{CONTRACT_TEST} overrides a test"):

        class Sloppy(BaseCacheContract):
            async def test_read_of_missing_key_returns_none(self, cache: BaseCache) -> None:
                pass


def test_override_through_a_mixin_raises_type_error() -> None:
    class Mixin:
        async def test_read_of_missing_key_returns_none(self, cache: BaseCache) -> None:
            pass

    with pytest.raises(TypeError, match=CONTRACT_TEST):

        class Sneaky(Mixin, BaseCacheContract):
            pass


def test_override_with_a_non_function_raises_type_error() -> None:
    with pytest.raises(TypeError, match=CONTRACT_TEST):

        class Disabled(BaseCacheContract):
            test_read_of_missing_key_returns_none = None  # type: ignore[assignment]


def test_marked_override_is_accepted_as_a_strict_xfail() -> None:
    class Known(BaseCacheContract):
        @BaseCacheContract.expected_failure("the store cannot do it")
        async def test_read_of_missing_key_returns_none(self, cache: BaseCache) -> None:
            pass

    test = Known.test_read_of_missing_key_returns_none
    [mark] = _xfail_marks(test)
    assert mark.kwargs == {"reason": "the store cannot do it", "strict": True}


def test_marked_override_runs_the_contract_test_not_its_own_body() -> None:
    class Known(BaseCacheContract):
        @expected_failure("the store cannot do it")
        async def test_read_of_missing_key_returns_none(self, cache: BaseCache) -> None:
            pass

    test = Known.test_read_of_missing_key_returns_none
    assert test.__wrapped__ is vars(BaseCacheContract)[CONTRACT_TEST]  # type: ignore[attr-defined]


def test_marking_a_subclass_leaves_the_contract_test_unmarked() -> None:
    class Known(BaseCacheContract):
        @expected_failure("the store cannot do it")
        async def test_read_of_missing_key_returns_none(self, cache: BaseCache) -> None:
            pass

    assert _xfail_marks(Known.test_read_of_missing_key_returns_none)
    assert _xfail_marks(vars(BaseCacheContract)[CONTRACT_TEST]) == []


def test_subclass_of_a_marked_subclass_inherits_the_mark_without_error() -> None:
    class Known(BaseCacheContract):
        @expected_failure("the store cannot do it")
        async def test_read_of_missing_key_returns_none(self, cache: BaseCache) -> None:
            pass

    class Narrower(Known):
        pass

    assert (
        Narrower.test_read_of_missing_key_returns_none
        is Known.test_read_of_missing_key_returns_none
    )


def test_unmarked_override_of_a_marked_override_raises_type_error() -> None:
    class Known(BaseCacheContract):
        @expected_failure("the store cannot do it")
        async def test_read_of_missing_key_returns_none(self, cache: BaseCache) -> None:
            pass

    with pytest.raises(TypeError, match=CONTRACT_TEST):

        class Sloppy(Known):
            async def test_read_of_missing_key_returns_none(self, cache: BaseCache) -> None:
                pass


def test_new_tests_and_hook_fixtures_may_be_added() -> None:
    class Extended(BaseCacheContract):
        @pytest.fixture
        def other_namespace(self) -> None:
            return None

        async def test_something_adapter_specific(self) -> None:
            pass

    assert "test_something_adapter_specific" in vars(Extended)
    assert "other_namespace" in vars(Extended)


@pytest.mark.parametrize("reason", ["", "   "])
def test_expected_failure_needs_a_reason(reason: str) -> None:
    with pytest.raises(TypeError, match="needs a reason"):
        expected_failure(reason)


# -- the kit can fail: broken adapters in a nested pytest session -------------------------

ADAPTERS = '''
import time

import pytest

from acc.core import BaseCache
from acc.core.testing import BaseCacheContract, expected_failure


class DictCache(BaseCache):
    """A small correct adapter: required methods only, plus a closed check everywhere."""

    native_ttl = True

    def __init__(self, data=None, namespace="ns"):
        self._data = {} if data is None else data
        self._ns = namespace + ":"

    def _live(self, key):
        item = self._data.get(self._ns + key)
        if item is None or (item[1] is not None and item[1] <= time.time()):
            return None
        return item[0]

    async def read(self, key):
        self._ensure_open()
        return self._live(key)

    async def write(self, key, value, *, expires_at=None):
        self._ensure_open()
        self._data[self._ns + key] = (bytes(value), expires_at)

    async def delete(self, key):
        self._ensure_open()
        self._data.pop(self._ns + key, None)

    async def keys(self):
        self._ensure_open()
        for full in list(self._data):
            if full.startswith(self._ns) and self._live(full[len(self._ns):]) is not None:
                yield full[len(self._ns):]

    async def clear(self):
        self._ensure_open()
        for full in [k for k in self._data if k.startswith(self._ns)]:
            del self._data[full]

    async def delete_expired(self, now):
        self._ensure_open()
        return None


class Contract(BaseCacheContract):
    adapter = DictCache

    @pytest.fixture
    def storage(self):
        return {}

    @pytest.fixture
    async def cache(self, storage):
        store = self.adapter(storage, "one")
        yield store
        await store.close()

    @pytest.fixture
    async def other_namespace(self, storage):
        store = self.adapter(storage, "two")
        yield store
        await store.close()


class TestDictCache(Contract):
    pass


class NoOpDelete(DictCache):
    async def delete(self, key):
        self._ensure_open()


class TestNoOpDelete(Contract):
    adapter = NoOpDelete


class ThroughText(DictCache):
    async def write(self, key, value, *, expires_at=None):
        text = bytes(value).decode("utf-8", errors="replace")
        await super().write(key, text.encode("utf-8"), expires_at=expires_at)


class TestThroughText(Contract):
    adapter = ThroughText


class ClearsEverything(DictCache):
    async def clear(self):
        self._ensure_open()
        self._data.clear()


class TestClearsEverything(Contract):
    adapter = ClearsEverything


class IgnoresExpiry(DictCache):
    def _live(self, key):
        item = self._data.get(self._ns + key)
        return None if item is None else item[0]


class TestIgnoresExpiry(Contract):
    adapter = IgnoresExpiry


class NeverCloses(DictCache):
    async def close(self):
        pass


class TestNeverCloses(Contract):
    adapter = NeverCloses


class ReadManyUnordered(DictCache):
    async def read_many(self, keys):
        return [await self.read(key) for key in sorted(keys)]


class TestReadManyUnordered(Contract):
    adapter = ReadManyUnordered


class Persistent(DictCache):
    persistent = True


class TestPersistentReopenKeepsData(Contract):
    adapter = Persistent

    @pytest.fixture
    def reopen(self, cache, storage):
        async def reopen():
            await cache.close()
            return Persistent(storage, "one")

        return reopen


class TestPersistentReopenLosesData(Contract):
    adapter = Persistent

    @pytest.fixture
    def reopen(self, cache):
        async def reopen():
            await cache.close()
            return Persistent({}, "one")

        return reopen


class TestMarkedKnownFailure(Contract):
    adapter = NoOpDelete

    @expected_failure("delete is a no-op in this adapter")
    async def test_delete_removes_the_key(self, cache): ...


class TestMarkedButPassing(Contract):
    @expected_failure("claimed broken, but DictCache deletes fine")
    async def test_delete_removes_the_key(self, cache): ...
'''

INI = """
[pytest]
asyncio_mode = auto
asyncio_default_fixture_loop_scope = function
"""


KIT_TESTS = sorted(name for name in vars(BaseCacheContract) if name.startswith("test_"))


def matching(*parts: str) -> list[str]:
    """The kit's tests whose names contain one of ``parts`` (a -k on test names only)."""
    return [name for name in KIT_TESTS if any(part in name for part in parts)]


# The nested sessions do not use hypothesis; its plugin would re-import it for every one.
NESTED_ARGS = ("-p", "no:hypothesispytest")


class Outcomes:
    """Test names (without class) per outcome of a nested run of one test class."""

    def __init__(self, reprec: pytest.HookRecorder) -> None:
        passed, skipped, failed = reprec.listoutcomes()
        self.passed = {r.nodeid.rsplit("::", 1)[-1] for r in passed}
        self.skipped = {r.nodeid.rsplit("::", 1)[-1] for r in skipped if not hasattr(r, "wasxfail")}
        self.xfailed = {r.nodeid.rsplit("::", 1)[-1] for r in skipped if hasattr(r, "wasxfail")}
        self.failed = {r.nodeid.rsplit("::", 1)[-1] for r in failed}


@pytest.fixture
def run_kit(pytester: pytest.Pytester) -> Callable[..., Outcomes]:
    pytester.makeini(INI)
    pytester.makepyfile(test_adapters=textwrap.dedent(ADAPTERS))

    def run(test_class: str, *tests: str) -> Outcomes:
        # Node ids, not -k: -k also matches the temporary directory's name.
        ids = [f"test_adapters.py::{test_class}::{test}" for test in tests]
        reprec = pytester.inline_run(*(ids or [f"test_adapters.py::{test_class}"]), *NESTED_ARGS)
        return Outcomes(reprec)

    return run


def test_correct_adapter_passes_the_whole_kit(run_kit: Callable[..., Outcomes]) -> None:
    outcomes = run_kit("TestDictCache")
    assert outcomes.failed == set()
    assert len(outcomes.passed) >= 60
    assert outcomes.skipped == {
        "test_data_survives_reopen",
        "test_changes_are_seen_through_a_second_handle",
        "test_delete_expired_removes_exactly_the_expired_entries",
        "test_delete_expired_with_nothing_expired_returns_zero",
    }


def test_adapter_whose_delete_does_nothing_fails_the_delete_tests(
    run_kit: Callable[..., Outcomes],
) -> None:
    outcomes = run_kit("TestNoOpDelete", *matching("delete", "read_returns"))
    assert {
        "test_delete_removes_the_key",
        "test_delete_twice_is_idempotent",
        "test_bulk_delete_removes_exactly_the_named_keys",
        "test_bulk_delete_ignores_missing_keys",
        "test_bulk_delete_accepts_a_one_shot_iterator",
        "test_contains_is_false_after_delete",
        "test_size_drops_after_delete",
        "test_keys_does_not_yield_deleted_keys",
    } <= outcomes.failed
    assert "test_read_returns_the_bytes_written" in outcomes.passed
    assert "test_delete_of_missing_key_changes_nothing" in outcomes.passed


def test_adapter_that_mangles_binary_values_fails_the_binary_tests(
    run_kit: Callable[..., Outcomes],
) -> None:
    outcomes = run_kit("TestThroughText", *matching("round_trip", "read_returns"))
    assert outcomes.failed == {
        "test_binary_value_with_nul_bytes_round_trips",
        "test_two_megabyte_value_round_trips",
    }
    assert {
        "test_read_returns_the_bytes_written",
        "test_empty_value_round_trips_as_empty_bytes",
        "test_awkward_keys_round_trip",
    } <= outcomes.passed


def test_adapter_whose_clear_crosses_namespaces_fails_the_namespace_test(
    run_kit: Callable[..., Outcomes],
) -> None:
    outcomes = run_kit("TestClearsEverything", *matching("clear", "namespace"))
    assert outcomes.failed == {"test_clear_leaves_other_namespace_intact"}
    assert "test_clear_removes_every_entry" in outcomes.passed


def test_adapter_with_native_ttl_that_ignores_expiry_fails_the_expiry_tests(
    run_kit: Callable[..., Outcomes],
) -> None:
    outcomes = run_kit("TestIgnoresExpiry", *matching("expir"))
    assert outcomes.failed == {
        "test_entry_past_its_expiry_reads_as_none",
        "test_entry_reads_as_none_once_its_expiry_passes",
        "test_contains_is_false_for_expired_entry",
        "test_read_many_returns_none_for_expired_entry",
        "test_overwrite_with_past_expiry_hides_entry",
        "test_read_parts_of_expired_entry_is_none",
    }
    assert "test_entry_with_future_expiry_is_readable" in outcomes.passed


def test_adapter_that_keeps_working_after_close_fails_the_close_tests(
    run_kit: Callable[..., Outcomes],
) -> None:
    outcomes = run_kit("TestNeverCloses", *matching("close"))
    assert outcomes.failed == set(matching("close"))
    assert len(outcomes.failed) == 14


def test_adapter_whose_read_many_reorders_fails_the_order_test(
    run_kit: Callable[..., Outcomes],
) -> None:
    outcomes = run_kit("TestReadManyUnordered", *matching("read_many"))
    assert "test_read_many_returns_values_in_order_with_none_for_missing" in outcomes.failed
    assert "test_read_many_of_repeated_key_fills_each_position" in outcomes.passed


def test_persistent_adapter_runs_the_reopen_test(run_kit: Callable[..., Outcomes]) -> None:
    outcomes = run_kit("TestPersistentReopenKeepsData", *matching("reopen"))
    assert outcomes.passed == {"test_data_survives_reopen"}


def test_persistent_adapter_that_loses_data_on_reopen_fails(
    run_kit: Callable[..., Outcomes],
) -> None:
    outcomes = run_kit("TestPersistentReopenLosesData", *matching("reopen"))
    assert outcomes.failed == {"test_data_survives_reopen"}


def test_marked_known_failure_is_reported_as_xfail(run_kit: Callable[..., Outcomes]) -> None:
    outcomes = run_kit("TestMarkedKnownFailure", *matching("test_delete_removes_the_key"))
    assert outcomes.xfailed == {"test_delete_removes_the_key"}
    assert outcomes.failed == set()


def test_marked_test_that_passes_fails_the_run(run_kit: Callable[..., Outcomes]) -> None:
    # strict=True: a fixed adapter must drop its mark, or the kit reports XPASS(strict).
    outcomes = run_kit("TestMarkedButPassing", *matching("test_delete_removes_the_key"))
    assert outcomes.failed == {"test_delete_removes_the_key"}


def test_unmarked_override_in_a_test_module_is_a_collection_error(
    pytester: pytest.Pytester,
) -> None:
    pytester.makeini(INI)
    pytester.makepyfile(
        test_sloppy="""
        from acc.core.testing import BaseCacheContract

        class TestSloppy(BaseCacheContract):
            async def test_delete_removes_the_key(self, cache):
                pass
        """
    )
    result = pytester.runpytest_inprocess(*NESTED_ARGS)
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*TypeError: TestSloppy.test_delete_removes_the_key overrides*"])
