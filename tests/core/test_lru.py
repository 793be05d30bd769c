"""The bounded LRU shared by the in-process stores (acc.core.storage.lru), and its users."""

from __future__ import annotations

import types
from collections import OrderedDict

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from acc.core import ConfigError, EntryTooLarge, MemoryCache
from acc.core.storage.lru import LRU

# -- order -----------------------------------------------------------------------------------


def test_put_and_touch_make_a_key_the_most_recent_and_peek_does_not() -> None:
    lru: LRU[str, int] = LRU()
    for n, key in enumerate("abc"):
        assert lru.put(key, n)
    assert list(lru) == ["a", "b", "c"]
    assert lru.peek("a") == 0
    assert list(lru) == ["a", "b", "c"]  # looking is not using
    lru.touch("a")
    assert list(lru) == ["b", "c", "a"]
    lru.put("b", 10)  # a new value is a use too
    assert list(lru) == ["c", "a", "b"]
    assert lru.peek("b") == 10
    assert lru.peek("missing") is None
    assert list(lru.items()) == [("c", 2), ("a", 0), ("b", 10)]
    assert "a" in lru
    assert "z" not in lru
    assert len(lru) == 3


def test_the_hit_path_is_the_dicts_own_c_methods() -> None:
    # What keeps a hit as cheap as a dict lookup: no Python frame between the store and
    # the OrderedDict (see the module's rule 4).
    lru: LRU[str, int] = LRU(max_entries=3, max_bytes=100)
    assert isinstance(lru.peek, types.BuiltinMethodType)
    assert isinstance(lru.touch, types.BuiltinMethodType)
    assert isinstance(lru.peek.__self__, OrderedDict)


# -- bounds ----------------------------------------------------------------------------------


def test_max_entries_evicts_the_least_recently_used() -> None:
    lru: LRU[str, int] = LRU(max_entries=2)
    lru.put("a", 1)
    lru.put("b", 2)
    lru.touch("a")
    lru.put("c", 3)
    assert list(lru) == ["a", "c"]  # "b" was the least recently used


def test_max_bytes_counts_sizes_through_replace_pop_evict_and_clear() -> None:
    lru: LRU[str, str] = LRU(max_bytes=10)
    lru.put("a", "A", 4)
    lru.put("b", "B", 4)
    assert lru.nbytes == 8
    lru.put("a", "A2", 2)  # a replacement counts its new size only
    assert (lru.nbytes, list(lru)) == (6, ["b", "a"])
    lru.put("c", "C", 5)  # 11 bytes: the oldest goes
    assert (lru.nbytes, list(lru)) == (7, ["a", "c"])
    lru.put("d", "D", 9)  # 16 bytes: both older ones go
    assert (lru.nbytes, list(lru)) == (9, ["d"])
    assert lru.pop("d") == "D"
    assert lru.pop("d") is None
    assert lru.nbytes == 0
    lru.put("e", "E", 3)
    lru.clear()
    assert (lru.nbytes, len(lru), list(lru)) == (0, 0, [])


def test_an_item_too_large_is_never_kept_and_removes_the_keys_older_value() -> None:
    lru: LRU[str, str] = LRU(max_bytes=100, max_item_bytes=6)
    assert lru.put("k", "small", 5)
    assert not lru.put("k", "large", 7)
    assert "k" not in lru
    assert lru.nbytes == 0
    assert lru.max_item_bytes == 6
    assert LRU(max_bytes=10).max_item_bytes == 10  # the default: max_bytes
    assert LRU(max_bytes=10, max_item_bytes=50).max_item_bytes == 10  # never more
    only_items: LRU[str, str] = LRU(max_item_bytes=3)  # a size limit without a total
    assert not only_items.put("k", "x", 4)
    assert only_items.put("k", "x", 3)


def test_without_bounds_nothing_is_evicted() -> None:
    lru: LRU[int, int] = LRU()
    for n in range(5000):
        lru.put(n, n, 1_000_000)
    assert len(lru) == 5000
    assert lru.peek(0) == 0


@pytest.mark.parametrize("name", ["max_entries", "max_bytes", "max_item_bytes"])
@pytest.mark.parametrize("value", [0, -1, True, 1.5, "3"])
def test_invalid_bounds_raise_config_error_naming_them(name: str, value: object) -> None:
    with pytest.raises(ConfigError) as raised:
        LRU(**{name: value})  # type: ignore[arg-type]
    assert raised.value.argument == name


# -- against a model ------------------------------------------------------------------------

KEYS = st.sampled_from("abcdef")
OPERATIONS = st.lists(
    st.one_of(
        st.tuples(st.just("put"), KEYS, st.integers(0, 12)),
        st.tuples(st.just("touch"), KEYS, st.just(0)),
        st.tuples(st.just("pop"), KEYS, st.just(0)),
    ),
    max_size=60,
)


@settings(max_examples=300, deadline=None)
@given(
    operations=OPERATIONS,
    max_entries=st.none() | st.integers(1, 5),
    max_bytes=st.none() | st.integers(1, 30),
)
def test_behaves_as_a_list_in_use_order_cut_to_the_bounds(
    operations: list[tuple[str, str, int]], max_entries: int | None, max_bytes: int | None
) -> None:
    lru: LRU[str, int] = LRU(max_entries=max_entries, max_bytes=max_bytes)
    model: list[tuple[str, int]] = []  # (key, size), least recently used first
    for operation, key, size in operations:
        present = [k for k, _ in model]
        if operation == "put":
            model = [(k, s) for k, s in model if k != key]
            kept = max_bytes is None or size <= max_bytes
            assert lru.put(key, size, size) is kept
            if kept:
                model.append((key, size))
            while (max_entries is not None and len(model) > max_entries) or (
                max_bytes is not None and sum(s for _, s in model) > max_bytes
            ):
                model.pop(0)
        elif operation == "touch" and key in present:
            lru.touch(key)
            model.append(model.pop(present.index(key)))
        elif operation == "pop":
            expected = dict(model).get(key)
            assert lru.pop(key) == expected
            model = [(k, s) for k, s in model if k != key]
        assert list(lru.items()) == model  # a value is its size here
        if max_bytes is not None:
            assert lru.nbytes == sum(s for _, s in model) <= max_bytes
        if max_entries is not None:
            assert len(lru) <= max_entries


# -- the stores that use it -------------------------------------------------------------------


async def _keys(store: MemoryCache) -> list[str]:
    """The store's keys, least recently used first."""
    listing = store.keys()  # an async iterator, not a dict view
    return [key async for key in listing]


async def test_memory_cache_evicts_by_entries_and_by_bytes() -> None:
    store = MemoryCache(max_entries=3, max_bytes=10)
    assert (store.max_entries, store.max_bytes) == (3, 10)
    for key in "abc":
        await store.write(key, b"12")
    assert await store.read("a") == b"12"  # "a" is now the most recently used
    await store.write("d", b"12")  # a fourth entry: "b" goes
    assert await _keys(store) == ["c", "a", "d"]
    await store.write("e", b"123456")  # 12 bytes > 10: "c" goes
    assert await _keys(store) == ["a", "d", "e"]
    await store.write("f", b"1234")  # 14 bytes: "a" goes, then "d"
    assert await _keys(store) == ["e", "f"]
    assert await store.read("b") is None


async def test_memory_cache_refuses_a_value_larger_than_max_bytes() -> None:
    store = MemoryCache(max_bytes=4)
    await store.write("k", b"old")
    with pytest.raises(EntryTooLarge):
        await store.write("k", b"12345")
    assert await store.read("k") is None  # no older value is left behind
    assert await store.size() == 0


@pytest.mark.parametrize("option", ["max_entries", "max_bytes"])
def test_memory_cache_checks_its_bounds(option: str) -> None:
    with pytest.raises(ConfigError, match=f"^{option}: must be a positive int or None"):
        MemoryCache(**{option: 0})
