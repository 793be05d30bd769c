"""The conformance kit: one pytest class that every storage adapter must pass.

The storage port (:class:`~acc.core.storage.BaseCache`) is small, but everything above
it relies on it being exact: bytes come back byte for byte, a delete is seen at once, a
namespace is sealed, an expired entry is gone, a closed store says so. Writing those
checks once, here, means a third-party adapter is held to the same standard as the
first-party ones, and a bug found in one adapter becomes a test for all of them.

Usage, in an adapter's test suite::

    from acc.core.testing import BaseCacheContract

    class TestMyCache(BaseCacheContract):
        @pytest.fixture
        async def cache(self) -> AsyncIterator[MyCache]:
            store = MyCache(namespace="contract")
            await store.clear()
            yield store
            await store.close()

This is the only module of :mod:`acc.core` that imports pytest; it is imported by test
suites, never by the library itself (install ``acc-core[testing]``).
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import random
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import Any, ClassVar, TypeVar, cast

import pytest

from acc.core.errors import BackendError
from acc.core.storage import SPLIT_PROBE, BaseCache

__all__ = ["BaseCacheContract", "expected_failure"]

_F = TypeVar("_F", bound=Callable[..., Any])
_T = TypeVar("_T")

Reopen = Callable[[], Awaitable[BaseCache]]
"""The type of the ``reopen`` hook: closes the ``cache`` store and opens it again."""

_REASON = "__acc_expected_failure__"  # set on a marked override: the xfail reason
_KIT_MADE = "__acc_contract_wrapper__"  # set on the stand-ins the guard builds

# Expiry tests sleep, so the lifetime is short; the wait leaves room for a store whose
# clock or expiry sweep is a little coarse (Redis expires lazily, to the millisecond).
_SHORT_LIFE = 0.3
_WAIT = 0.5

_BINARY = bytes(range(256)) * 4 + b"\x00\x00"  # every byte value, NULs inside and at the end
_LARGE = random.Random(20240501).randbytes(2 * 1024 * 1024)  # 2 MiB, incompressible
# Keys that trip stores which build keys into patterns, paths or SQL LIKE clauses.
_AWKWARD_KEYS = (
    "plain",
    "with:colon",
    "with/slash",
    "with space",
    " padded ",
    "ünïcødé-键-🗝",
    "glob*?[x]",
    "like%_",
    "quote'\"\\",
    "a",
    "a:b",
    "ab",
)


def expected_failure(reason: str) -> Callable[[_F], _F]:
    """Mark an override of a contract test as a known failure of the adapter.

    The override's body is not run: the contract's own test runs in its place as a strict
    ``xfail``, so the mark cannot weaken the check, and the day the adapter is fixed the
    unexpected pass fails the run and the mark has to go.

    Args:
        reason: Why the adapter fails this test; shown in the pytest report.

    Raises:
        TypeError: If ``reason`` is empty.
    """
    if not isinstance(reason, str) or not reason.strip():
        raise TypeError("expected_failure() needs a reason: say why the adapter fails")

    def mark(test: _F) -> _F:
        setattr(test, _REASON, reason)
        return cast(_F, pytest.mark.xfail(reason=reason, strict=True)(test))

    return mark


def _in_place_of(contract: Callable[..., Awaitable[None]], reason: str) -> Callable[..., Any]:
    """Build a stand-in that runs the contract's ``test`` as a strict xfail.

    A new function is built so that the mark lands on the subclass only; marking
    ``contract`` itself would mark the test for every adapter.
    """

    @functools.wraps(contract)
    async def stand_in(*args: Any, **kwargs: Any) -> None:
        await contract(*args, **kwargs)

    setattr(stand_in, _REASON, reason)
    setattr(stand_in, _KIT_MADE, True)
    return cast(Callable[..., Any], pytest.mark.xfail(reason=reason, strict=True)(stand_in))


async def _collect(iterator: AsyncIterator[_T]) -> list[_T]:
    return [item async for item in iterator]


class _RecordingSplitter:
    """A splitter that cuts at ``at`` and remembers every prefix it was shown."""

    def __init__(self, at: int) -> None:
        self.at = at
        self.shown: list[bytes] = []

    def __call__(self, prefix: bytes) -> int:
        self.shown.append(prefix)
        return self.at


def _assert_parts_of(
    got: tuple[bytes, ...] | None, expected: bytes, splitter: _RecordingSplitter | None = None
) -> None:
    """``read_parts`` gave bytes parts joining to ``expected``, showing a true prefix."""
    assert got is not None, f"read_parts returned None for a {len(expected)}-byte value"
    assert type(got) is tuple, f"read_parts returned {type(got).__name__}, not a tuple"
    assert got, "read_parts returned no parts"
    for part in got:
        assert type(part) is bytes, f"read_parts returned a {type(part).__name__} part"
    _assert_same_bytes(b"".join(got), expected)
    for prefix in splitter.shown if splitter is not None else ():
        assert prefix == expected[:SPLIT_PROBE], "the splitter was shown other bytes"


def _assert_same_bytes(got: bytes | None, expected: bytes) -> None:
    """Compare values without letting pytest print two megabytes of diff."""
    assert got is not None, f"read returned None for a {len(expected)}-byte value"
    assert type(got) is bytes, f"read returned {type(got).__name__}, not bytes"
    if got != expected:
        pairs = zip(got, expected, strict=False)
        first = next((i for i, (a, b) in enumerate(pairs) if a != b), min(len(got), len(expected)))
        pytest.fail(
            f"read returned different bytes: {len(got)} read, {len(expected)} written, "
            f"first difference at offset {first}"
        )


def _skip_unless(capable: bool, reason: str) -> None:
    if not capable:
        pytest.skip(reason)


class BaseCacheContract:
    """The tests every :class:`~acc.core.storage.BaseCache` adapter must pass.

    Subclass it in a class named ``Test...`` and provide one fixture, ``cache``, that
    yields an empty store. Tests that need a capability the store does not declare
    (``native_ttl``, ``persistent``, ``shared_across_processes`` on its class) are
    skipped, with the reason, rather than passed. Three optional fixtures widen the run:

    * ``other_namespace``: a second empty store, in another namespace of the same
      underlying storage as ``cache``; checks that namespaces are sealed.
    * ``reopen``: an async callable that closes ``cache`` and returns a new store on the
      same location (only for ``persistent`` stores); checks data outlives the handle.
    * ``second_handle``: another open store on the same location and namespace (only for
      ``shared_across_processes`` stores); checks changes are seen through both.

    A subclass may not override a contract test: ``__init_subclass__`` raises
    ``TypeError`` when it does, because a silently replaced test would report the adapter
    as conforming when it is not. A known failure is declared instead::

        @expected_failure("the driver truncates values over 1 MiB")
        async def test_two_megabyte_value_round_trips(self, cache): ...

    which runs the contract's test as a strict ``xfail`` (the override's body is ignored).

    Raises:
        TypeError: At class creation, for an unmarked override of a contract test.
    """

    # Lets the kit run under pytest-asyncio's strict mode too; harmless in auto mode.
    pytestmark: ClassVar[list[pytest.MarkDecorator]] = [pytest.mark.asyncio]

    expected_failure = staticmethod(expected_failure)

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        for name, contract in _CONTRACT_TESTS.items():
            # getattr_static follows the MRO, so a mixin placed before the kit is caught too.
            found = inspect.getattr_static(cls, name)
            if found is contract or getattr(found, _KIT_MADE, False):
                continue
            reason = getattr(found, _REASON, None)
            if reason is None:
                raise TypeError(
                    f"{cls.__qualname__}.{name} overrides a test of BaseCacheContract. "
                    "Fix the adapter, or declare the known failure with "
                    "@BaseCacheContract.expected_failure('why') on the override."
                )
            setattr(cls, name, _in_place_of(contract, reason))

    # -- fixtures an adapter's test provides ----------------------------------------------

    @pytest.fixture
    def cache(self) -> BaseCache:
        """An empty store; the one fixture a subclass must define.

        This default exists because pytest has a built-in fixture of the same name that
        would otherwise be injected, and fail every test in confusing ways.
        """
        pytest.fail(f"{type(self).__name__} must define the `cache` fixture", pytrace=False)

    @pytest.fixture
    def other_namespace(self) -> BaseCache:
        """An empty store in another namespace of the same storage as ``cache``."""
        pytest.skip("adapter has no second namespace")

    @pytest.fixture
    def reopen(self, cache: BaseCache) -> Reopen:
        """An async callable that closes ``cache`` and reopens the same location."""
        _skip_unless(type(cache).persistent, f"{type(cache).__name__} is not persistent")
        pytest.skip("adapter's test provides no reopen hook")

    @pytest.fixture
    def second_handle(self, cache: BaseCache) -> BaseCache:
        """Another open store on the location and namespace of ``cache``."""
        _skip_unless(
            type(cache).shared_across_processes,
            f"{type(cache).__name__} is not shared across processes",
        )
        pytest.skip("adapter's test provides no second_handle hook")

    # -- read and write -------------------------------------------------------------------

    async def test_read_of_missing_key_returns_none(self, cache: BaseCache) -> None:
        """A miss is ``None``, never an exception: the core treats both paths alike."""
        assert await cache.read("missing") is None

    async def test_read_returns_the_bytes_written(self, cache: BaseCache) -> None:
        """Storage is bytes in, bytes out: no encoding, no wrapper types."""
        await cache.write("k", b"value")
        _assert_same_bytes(await cache.read("k"), b"value")

    async def test_empty_value_round_trips_as_empty_bytes(self, cache: BaseCache) -> None:
        """An empty value is a hit (an empty body is cacheable), not a miss."""
        await cache.write("k", b"")
        _assert_same_bytes(await cache.read("k"), b"")

    async def test_binary_value_with_nul_bytes_round_trips(self, cache: BaseCache) -> None:
        """Entries are binary; stores that go through text or C strings corrupt them."""
        await cache.write("k", _BINARY)
        _assert_same_bytes(await cache.read("k"), _BINARY)

    async def test_two_megabyte_value_round_trips(self, cache: BaseCache) -> None:
        """Large bodies are cached too; drivers with size limits must chunk or say so."""
        await cache.write("k", _LARGE)
        _assert_same_bytes(await cache.read("k"), _LARGE)

    async def test_write_parts_stores_their_concatenation(self, cache: BaseCache) -> None:
        """Large entries are handed over in parts; the store keeps them as one value."""
        head, body = _BINARY, _LARGE
        await cache.write("k", b"an older value")
        await cache.write_parts("k", (head, body))
        _assert_same_bytes(await cache.read("k"), head + body)
        await cache.write_parts("small", (b"ab", b"", b"cd"))
        _assert_same_bytes(await cache.read("small"), b"abcd")

    # -- read_parts ------------------------------------------------------------------------

    async def test_read_parts_of_missing_key_returns_none(self, cache: BaseCache) -> None:
        """A miss is ``None`` however the value is asked for."""
        assert await cache.read_parts("missing") is None
        assert await cache.read_parts("missing", _RecordingSplitter(10)) is None

    async def test_read_parts_join_to_the_value_written(self, cache: BaseCache) -> None:
        """Any cut asked for gives ``bytes`` parts that join to the value.

        None, inside, at an edge, past the end: whatever the store does with it, and a
        splitter it calls is shown the value's first bytes.
        """
        await cache.write("small", b"value")
        await cache.write("binary", _BINARY)
        await cache.write("large", _LARGE)
        await cache.write("empty", b"")
        for key, value in (("small", b"value"), ("binary", _BINARY), ("large", _LARGE)):
            _assert_parts_of(await cache.read_parts(key), value)
            for at in (0, 1, 100, len(value) - 1, len(value), len(value) + 10, -5):
                splitter = _RecordingSplitter(at)
                _assert_parts_of(await cache.read_parts(key, splitter), value, splitter)
        parts = await cache.read_parts("empty", _RecordingSplitter(1))
        assert parts is not None, "an empty value is a hit"
        assert b"".join(parts) == b""

    async def test_read_parts_of_a_value_written_in_parts(self, cache: BaseCache) -> None:
        """The way the façade stores and reads a large entry: head and body."""
        head, body = _BINARY, _LARGE
        await cache.write_parts("k", (head, body))
        splitter = _RecordingSplitter(len(head))
        _assert_parts_of(await cache.read_parts("k", splitter), head + body, splitter)
        await cache.write("k", b"rewritten whole")
        _assert_parts_of(await cache.read_parts("k", _RecordingSplitter(3)), b"rewritten whole")

    async def test_read_parts_after_delete_is_none(self, cache: BaseCache) -> None:
        """A deleted large value is gone for every way of reading it."""
        await cache.write_parts("k", (_BINARY, _LARGE))
        await cache.delete("k")
        assert await cache.read_parts("k", _RecordingSplitter(len(_BINARY))) is None

    async def test_write_overwrites_previous_value(self, cache: BaseCache) -> None:
        """A refreshed response replaces the old one entirely, with no bytes left over."""
        await cache.write("k", b"a longer first value")
        await cache.write("k", b"short")
        _assert_same_bytes(await cache.read("k"), b"short")

    async def test_keys_with_common_prefixes_are_independent(self, cache: BaseCache) -> None:
        """Stores that match keys by prefix or pattern must not mix up near neighbours."""
        keys = ["a", "a:b", "ab", "a*"]
        for key in keys:
            await cache.write(key, key.encode())
        assert [await cache.read(key) for key in keys] == [key.encode() for key in keys]

    async def test_awkward_keys_round_trip(self, cache: BaseCache) -> None:
        """``key_fn`` may produce any string; it must be stored as given."""
        for key in _AWKWARD_KEYS:
            await cache.write(key, key.encode())
        assert [await cache.read(key) for key in _AWKWARD_KEYS] == [
            key.encode() for key in _AWKWARD_KEYS
        ]

    # -- delete ---------------------------------------------------------------------------

    async def test_delete_removes_the_key(self, cache: BaseCache) -> None:
        """``delete_url`` and invalidation by unsafe methods rely on it."""
        await cache.write("k", b"v")
        await cache.delete("k")
        assert await cache.read("k") is None

    async def test_delete_leaves_other_keys(self, cache: BaseCache) -> None:
        """Deleting one response must not evict another."""
        await cache.write("k", b"v")
        await cache.write("other", b"w")
        await cache.delete("k")
        assert await cache.read("other") == b"w"

    async def test_delete_of_missing_key_changes_nothing(self, cache: BaseCache) -> None:
        """Invalidation deletes keys that may never have been stored."""
        await cache.write("kept", b"v")
        await cache.delete("missing")
        assert await _collect(cache.keys()) == ["kept"]

    async def test_delete_twice_is_idempotent(self, cache: BaseCache) -> None:
        """Two tasks may invalidate the same entry; the second must not fail."""
        await cache.write("k", b"v")
        await cache.delete("k")
        await cache.delete("k")
        assert await cache.read("k") is None

    # -- bulk_delete ----------------------------------------------------------------------

    async def test_bulk_delete_removes_exactly_the_named_keys(self, cache: BaseCache) -> None:
        """``CacheBackend.delete(*keys)`` must remove those keys and no others."""
        for key in ("a", "b", "c", "d"):
            await cache.write(key, key.encode())
        await cache.bulk_delete(["a", "c"])
        assert sorted(await _collect(cache.keys())) == ["b", "d"]

    async def test_bulk_delete_ignores_missing_keys(self, cache: BaseCache) -> None:
        """A sweep may name keys another task already removed."""
        await cache.write("a", b"a")
        await cache.write("b", b"b")
        await cache.bulk_delete(["a", "missing"])
        assert await _collect(cache.keys()) == ["b"]

    async def test_bulk_delete_of_no_keys_removes_nothing(self, cache: BaseCache) -> None:
        """An empty ``IN ()`` is a syntax error in SQL; the adapter must not emit it."""
        await cache.write("a", b"a")
        await cache.bulk_delete([])
        assert await _collect(cache.keys()) == ["a"]

    async def test_bulk_delete_accepts_a_one_shot_iterator(self, cache: BaseCache) -> None:
        """The port takes an ``Iterable``: an adapter may not iterate it twice."""
        for key in ("a", "b", "c"):
            await cache.write(key, key.encode())
        await cache.bulk_delete(key for key in ("a", "b"))
        assert await _collect(cache.keys()) == ["c"]

    # -- read_many ------------------------------------------------------------------------

    async def test_read_many_returns_values_in_order_with_none_for_missing(
        self, cache: BaseCache
    ) -> None:
        """Batched reads are matched to keys by position, so order is the contract."""
        await cache.write("a", b"A")
        await cache.write("c", b"C")
        assert await cache.read_many(["c", "missing", "a"]) == [b"C", None, b"A"]

    async def test_read_many_of_repeated_key_fills_each_position(self, cache: BaseCache) -> None:
        """A store that answers a batch with a set of rows must map them back per position."""
        await cache.write("a", b"A")
        assert await cache.read_many(["a", "a"]) == [b"A", b"A"]

    async def test_read_many_of_no_keys_returns_empty_list(self, cache: BaseCache) -> None:
        """An empty batch is a valid request, and a list is always returned."""
        assert await cache.read_many([]) == []

    # -- contains and size ----------------------------------------------------------------

    async def test_contains_is_true_for_written_key(self, cache: BaseCache) -> None:
        """``has_url`` is answered from ``contains``."""
        await cache.write("k", b"v")
        assert await cache.contains("k") is True

    async def test_contains_is_false_for_missing_key(self, cache: BaseCache) -> None:
        """``has_url`` must not report responses that were never stored."""
        assert await cache.contains("missing") is False

    async def test_contains_is_true_for_empty_value(self, cache: BaseCache) -> None:
        """Presence is not truthiness: an empty value is still stored."""
        await cache.write("k", b"")
        assert await cache.contains("k") is True

    async def test_contains_is_false_after_delete(self, cache: BaseCache) -> None:
        """A store with a read cache in front must drop the deleted key from it too."""
        await cache.write("k", b"v")
        await cache.delete("k")
        assert await cache.contains("k") is False

    async def test_size_of_empty_store_is_zero(self, cache: BaseCache) -> None:
        """The ``cache`` fixture promises an empty store; the kit relies on it."""
        assert await cache.size() == 0

    async def test_size_counts_each_key_once(self, cache: BaseCache) -> None:
        """An overwrite replaces; it must not add a second row or version."""
        for key in ("a", "b", "c"):
            await cache.write(key, b"1")
        await cache.write("b", b"2")
        assert await cache.size() == 3

    async def test_size_drops_after_delete(self, cache: BaseCache) -> None:
        """``size`` reflects deletes at once, not after some compaction."""
        await cache.write("a", b"1")
        await cache.write("b", b"2")
        await cache.delete("a")
        assert await cache.size() == 1

    # -- iteration ------------------------------------------------------------------------

    async def test_keys_of_empty_store_yields_nothing(self, cache: BaseCache) -> None:
        """An empty namespace iterates as empty, not as an error."""
        assert await _collect(cache.keys()) == []

    async def test_keys_yields_exactly_the_written_keys(self, cache: BaseCache) -> None:
        """``urls()`` and the CLI list keys; none missing, none doubled, none mangled."""
        for key in _AWKWARD_KEYS:
            await cache.write(key, b"v")
        assert sorted(await _collect(cache.keys())) == sorted(_AWKWARD_KEYS)

    async def test_keys_does_not_yield_deleted_keys(self, cache: BaseCache) -> None:
        """Tombstones, if the store keeps any, are not keys."""
        await cache.write("a", b"1")
        await cache.write("b", b"2")
        await cache.delete("a")
        assert await _collect(cache.keys()) == ["b"]

    async def test_values_yields_every_stored_value(self, cache: BaseCache) -> None:
        """Maintenance tools decode every entry through ``values``."""
        stored = {"a": b"1", "b": _BINARY, "c": b""}
        for key, value in stored.items():
            await cache.write(key, value)
        assert sorted(await _collect(cache.values())) == sorted(stored.values())

    async def test_items_yields_each_key_with_its_value(self, cache: BaseCache) -> None:
        """Pairs must match: a value attributed to the wrong key is a wrong response."""
        stored = {"a": b"1", "b": _BINARY, "c": b""}
        for key, value in stored.items():
            await cache.write(key, value)
        assert dict(await _collect(cache.items())) == stored

    # -- clear and namespaces -------------------------------------------------------------

    async def test_clear_removes_every_entry(self, cache: BaseCache) -> None:
        """``CacheBackend.clear()`` empties the store."""
        for key in _AWKWARD_KEYS:
            await cache.write(key, b"v")
        await cache.clear()
        assert await _collect(cache.keys()) == []
        assert await cache.read_many(list(_AWKWARD_KEYS)) == [None] * len(_AWKWARD_KEYS)

    async def test_store_is_usable_after_clear(self, cache: BaseCache) -> None:
        """Stores that clear by dropping a table or collection must recreate it."""
        await cache.write("a", b"1")
        await cache.clear()
        await cache.write("b", b"2")
        assert await cache.read("b") == b"2"

    async def test_clear_leaves_other_namespace_intact(
        self, cache: BaseCache, other_namespace: BaseCache
    ) -> None:
        """``responses`` and ``redirects`` share storage; clearing one keeps the other."""
        await cache.write("k", b"mine")
        await other_namespace.write("k", b"theirs")
        await cache.clear()
        assert await other_namespace.read("k") == b"theirs"

    async def test_writes_are_invisible_in_other_namespace(
        self, cache: BaseCache, other_namespace: BaseCache
    ) -> None:
        """A namespace is sealed: its keys are not seen, counted or listed elsewhere."""
        await cache.write("k", b"mine")
        assert await other_namespace.read("k") is None
        assert await other_namespace.size() == 0
        assert await _collect(other_namespace.keys()) == []

    # -- expiry ---------------------------------------------------------------------------

    async def test_entry_with_future_expiry_is_readable(self, cache: BaseCache) -> None:
        """``expires_at`` is a deadline, not a delay: a later one keeps the entry."""
        await cache.write("k", b"v", expires_at=time.time() + 3600)
        assert await cache.read("k") == b"v"

    async def test_entry_past_its_expiry_reads_as_none(self, cache: BaseCache) -> None:
        """With native expiry the store, not the core, hides dead entries."""
        _skip_unless(type(cache).native_ttl, f"{type(cache).__name__} has no native expiry")
        await cache.write("k", b"v", expires_at=time.time() - 1)
        assert await cache.read("k") is None

    async def test_read_parts_of_expired_entry_is_none(self, cache: BaseCache) -> None:
        """Expiry hides a large value read in parts too."""
        _skip_unless(type(cache).native_ttl, f"{type(cache).__name__} has no native expiry")
        await cache.write_parts("k", (_BINARY, _LARGE), expires_at=time.time() - 1)
        assert await cache.read_parts("k", _RecordingSplitter(len(_BINARY))) is None

    async def test_entry_reads_as_none_once_its_expiry_passes(self, cache: BaseCache) -> None:
        """Expiry happens in real time, not only at write time.

        The entry must be readable while it lives, which a slow (loaded) machine may not
        manage to check within a short life: a check that ends after the deadline proves
        nothing, so it is made again with a life four times longer.
        """
        _skip_unless(type(cache).native_ttl, f"{type(cache).__name__} has no native expiry")
        life = _SHORT_LIFE
        for _attempt in range(4):
            expires_at = time.time() + life
            await cache.write("k", b"v", expires_at=expires_at)
            value = await cache.read("k")
            if time.time() < expires_at:  # the read ended while the entry lived
                assert value == b"v"
                break
            life *= 4
        else:
            pytest.fail(f"storage too slow to read an entry within {life / 4:.1f} s")
        await asyncio.sleep(max(0.0, expires_at - time.time()) + _WAIT - _SHORT_LIFE)
        assert await cache.read("k") is None

    async def test_entry_without_expiry_persists(self, cache: BaseCache) -> None:
        """``expires_at=None`` means never: not zero, not a default TTL."""
        await cache.write("k", b"v", expires_at=None)
        await asyncio.sleep(_WAIT)
        assert await cache.read("k") == b"v"

    async def test_contains_is_false_for_expired_entry(self, cache: BaseCache) -> None:
        """``contains`` and ``read`` agree about expired entries."""
        _skip_unless(type(cache).native_ttl, f"{type(cache).__name__} has no native expiry")
        await cache.write("k", b"v", expires_at=time.time() - 1)
        assert await cache.contains("k") is False

    async def test_read_many_returns_none_for_expired_entry(self, cache: BaseCache) -> None:
        """Batched reads apply expiry like single reads."""
        _skip_unless(type(cache).native_ttl, f"{type(cache).__name__} has no native expiry")
        await cache.write("dead", b"v", expires_at=time.time() - 1)
        await cache.write("live", b"w")
        assert await cache.read_many(["dead", "live"]) == [None, b"w"]

    async def test_overwrite_without_expiry_cancels_earlier_expiry(self, cache: BaseCache) -> None:
        """An upsert must replace ``expires_at`` with the value, not keep the old one."""
        await cache.write("k", b"old", expires_at=time.time() - 1)
        await cache.write("k", b"new", expires_at=None)
        assert await cache.read("k") == b"new"

    async def test_overwrite_with_past_expiry_hides_entry(self, cache: BaseCache) -> None:
        """Rewriting an entry as already expired (a stale response) hides it."""
        _skip_unless(type(cache).native_ttl, f"{type(cache).__name__} has no native expiry")
        await cache.write("k", b"old", expires_at=None)
        await cache.write("k", b"new", expires_at=time.time() - 1)
        assert await cache.read("k") is None

    async def test_delete_expired_removes_exactly_the_expired_entries(
        self, cache: BaseCache
    ) -> None:
        """A sweep at ``now`` removes entries due at or before ``now`` and counts them."""
        # Whole seconds far ahead of the clock: exact in every store's time type, and no
        # native expiry can remove anything before the sweep does.
        now = float(int(time.time()) + 1000)
        await cache.write("before", b"1", expires_at=now - 500)
        await cache.write("at", b"2", expires_at=now)
        await cache.write("after", b"3", expires_at=now + 500)
        await cache.write("never", b"4", expires_at=None)
        removed = await cache.delete_expired(now)
        _skip_unless(removed is not None, "delete_expired is not supported (returned None)")
        assert removed == 2
        assert sorted(await _collect(cache.keys())) == ["after", "never"]

    async def test_delete_expired_with_nothing_expired_returns_zero(self, cache: BaseCache) -> None:
        """A supported sweep reports 0, not ``None``, when there is nothing to do."""
        await cache.write("never", b"1", expires_at=None)
        removed = await cache.delete_expired(time.time())
        _skip_unless(removed is not None, "delete_expired is not supported (returned None)")
        assert removed == 0
        assert await cache.read("never") == b"1"

    # -- close ----------------------------------------------------------------------------

    async def test_close_is_idempotent(self, cache: BaseCache) -> None:
        """``autoclose`` and the user may both close; the second call must be harmless."""
        await cache.close()
        await cache.close()
        with pytest.raises(BackendError):
            await cache.read("k")

    async def test_read_after_close_raises_backend_error(self, cache: BaseCache) -> None:
        """Use after close is a bug in the caller; it must be reported as acc's error."""
        await cache.close()
        with pytest.raises(BackendError):
            await cache.read("k")

    async def test_read_parts_after_close_raises_backend_error(self, cache: BaseCache) -> None:
        """Reading in parts is reading: after close, acc's error."""
        await cache.close()
        with pytest.raises(BackendError):
            await cache.read_parts("k", _RecordingSplitter(1))

    async def test_write_after_close_raises_backend_error(self, cache: BaseCache) -> None:
        """A write to a closed store must not be lost silently."""
        await cache.close()
        with pytest.raises(BackendError):
            await cache.write("k", b"v")

    async def test_delete_after_close_raises_backend_error(self, cache: BaseCache) -> None:
        """An invalidation that cannot happen must not look as if it did."""
        await cache.close()
        with pytest.raises(BackendError):
            await cache.delete("k")

    async def test_bulk_delete_after_close_raises_backend_error(self, cache: BaseCache) -> None:
        """As for ``delete``."""
        await cache.close()
        with pytest.raises(BackendError):
            await cache.bulk_delete(["k"])

    async def test_read_many_after_close_raises_backend_error(self, cache: BaseCache) -> None:
        """As for ``read``."""
        await cache.close()
        with pytest.raises(BackendError):
            await cache.read_many(["k"])

    async def test_contains_after_close_raises_backend_error(self, cache: BaseCache) -> None:
        """A closed store cannot know; ``False`` would be a lie."""
        await cache.close()
        with pytest.raises(BackendError):
            await cache.contains("k")

    async def test_size_after_close_raises_backend_error(self, cache: BaseCache) -> None:
        """A closed store cannot count; ``0`` would be a lie."""
        await cache.close()
        with pytest.raises(BackendError):
            await cache.size()

    async def test_keys_after_close_raises_backend_error(self, cache: BaseCache) -> None:
        """An empty iteration would be a lie."""
        await cache.close()
        with pytest.raises(BackendError):
            await _collect(cache.keys())

    async def test_values_after_close_raises_backend_error(self, cache: BaseCache) -> None:
        """As for ``keys``."""
        await cache.close()
        with pytest.raises(BackendError):
            await _collect(cache.values())

    async def test_items_after_close_raises_backend_error(self, cache: BaseCache) -> None:
        """As for ``keys``."""
        await cache.close()
        with pytest.raises(BackendError):
            await _collect(cache.items())

    async def test_clear_after_close_raises_backend_error(self, cache: BaseCache) -> None:
        """A clear that cannot happen must not look as if it did."""
        await cache.close()
        with pytest.raises(BackendError):
            await cache.clear()

    async def test_delete_expired_after_close_raises_backend_error(self, cache: BaseCache) -> None:
        """Even a store that cannot sweep must report that it is closed."""
        await cache.close()
        with pytest.raises(BackendError):
            await cache.delete_expired(time.time())

    # -- persistence and sharing ----------------------------------------------------------

    async def test_data_survives_reopen(self, cache: BaseCache, reopen: Reopen) -> None:
        """A persistent store keeps entries, bytes and absences alike, across handles."""
        _skip_unless(type(cache).persistent, f"{type(cache).__name__} is not persistent")
        await cache.write("binary", _BINARY)
        await cache.write("empty", b"")
        await cache.write("gone", b"x")
        await cache.delete("gone")
        reopened = await reopen()
        try:
            _assert_same_bytes(await reopened.read("binary"), _BINARY)
            _assert_same_bytes(await reopened.read("empty"), b"")
            assert sorted(await _collect(reopened.keys())) == ["binary", "empty"]
        finally:
            await reopened.close()

    async def test_changes_are_seen_through_a_second_handle(
        self, cache: BaseCache, second_handle: BaseCache
    ) -> None:
        """Processes sharing a store see each other's writes and deletes, uncached."""
        _skip_unless(
            type(cache).shared_across_processes,
            f"{type(cache).__name__} is not shared across processes",
        )
        await cache.write("k", b"v")
        assert await second_handle.read("k") == b"v"
        await second_handle.delete("k")
        assert await cache.read("k") is None

    # -- concurrency ----------------------------------------------------------------------

    async def test_concurrent_writes_all_land(self, cache: BaseCache) -> None:
        """Concurrent requests store concurrently; none may be lost to a race."""
        keys = [f"key-{i}" for i in range(100)]
        await asyncio.gather(*(cache.write(key, key.encode()) for key in keys))
        assert await cache.size() == 100
        assert await cache.read_many(keys) == [key.encode() for key in keys]

    async def test_concurrent_reads_return_each_keys_value(self, cache: BaseCache) -> None:
        """Answers to concurrent reads must not be crossed between callers."""
        keys = [f"key-{i}" for i in range(100)]
        for key in keys:
            await cache.write(key, key.encode())
        values = await asyncio.gather(*(cache.read(key) for key in keys))
        assert list(values) == [key.encode() for key in keys]

    async def test_concurrent_write_then_read_sees_own_write(self, cache: BaseCache) -> None:
        """A task reads its own write even while 99 others write: no lost updates."""

        async def write_then_read(key: str) -> bytes | None:
            await cache.write(key, key.encode())
            return await cache.read(key)

        keys = [f"key-{i}" for i in range(100)]
        values = await asyncio.gather(*(write_then_read(key) for key in keys))
        assert list(values) == [key.encode() for key in keys]

    async def test_concurrent_overwrites_leave_one_written_value(self, cache: BaseCache) -> None:
        """Racing writers of one key leave one whole value (an upsert, not insert-or-fail)."""
        written = [f"value-{i}".encode() for i in range(100)]
        await asyncio.gather(*(cache.write("k", value) for value in written))
        assert await cache.read("k") in written
        assert await cache.size() == 1


def _contract_tests() -> Iterator[tuple[str, Callable[..., Awaitable[None]]]]:
    for name, attr in vars(BaseCacheContract).items():
        if name.startswith("test_"):
            yield name, attr


_CONTRACT_TESTS: dict[str, Callable[..., Awaitable[None]]] = dict(_contract_tests())
