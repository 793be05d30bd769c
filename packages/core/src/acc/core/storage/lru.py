"""The one bounded LRU map of acc's in-process stores.

:class:`~acc.core.MemoryCache` (the in-memory store), :class:`~acc.core.storage.near.NearCache`
(local copies of a remote store) and :class:`~acc.core.storage.memo.DecodedMemo` (decoded
entries) each keep recently used items in process memory, bounded by count and by bytes.
They share :class:`LRU`, so eviction and byte accounting are written, and tested, once.

Rules this module keeps:

1. Items are kept in use order, least recently used first: :meth:`LRU.put` and
   :meth:`LRU.touch` make a key the most recent, and eviction takes from the front.
2. The bounds hold after every :meth:`LRU.put`: at most ``max_entries`` items and
   ``max_bytes`` bytes. An item larger than ``max_item_bytes`` is never kept; putting one
   removes what the key held, so a key never keeps an older value than the caller's.
3. It knows nothing of what it holds: values are opaque, and their sizes are the ones the
   caller gives (the bytes of a stored value, say), kept beside them when there is a byte
   bound, so that eviction needs no callback.
4. A hit costs a dict lookup and no more: :attr:`LRU.peek` and :attr:`LRU.touch` are the
   underlying ``OrderedDict``'s own methods (C code) bound to the instance, so a store's
   hit path runs no Python frame of this module. That is why a hit is two calls (look,
   then touch) rather than one ``get``: the caller decides whether the item is still good
   (not expired, the same bytes) before it counts as used.
"""

from __future__ import annotations

import sys
from collections import OrderedDict
from collections.abc import Callable, ItemsView, Iterator
from typing import Generic, TypeVar

from acc.core.errors import ConfigError

__all__ = ["LRU"]

_K = TypeVar("_K")
_V = TypeVar("_V")


def _bound(name: str, value: object) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigError(name, f"must be a positive int or None, not {value!r}")
    return value


_UNBOUNDED = sys.maxsize


class LRU(Generic[_K, _V]):
    """A map that keeps its most recently used items within entry and byte bounds.

    Args:
        max_entries: Keep at most this many items (``None``: no bound).
        max_bytes: Keep items whose sizes add up to at most this (``None``: no bound;
            sizes are then not even counted, which keeps :meth:`put` as cheap as a
            dict's insertion).
        max_item_bytes: Never keep an item larger than this (default and at most:
            ``max_bytes``).

    Raises:
        ConfigError: A bound that is not a positive ``int`` or ``None``.
    """

    __slots__ = (
        "_byte_limit",
        "_entry_limit",
        "_item_limit",
        "_items",
        "_sizes",
        "max_bytes",
        "max_entries",
        "max_item_bytes",
        "nbytes",
        "peek",
        "touch",
    )

    peek: Callable[[_K], _V | None]
    """``peek(key)``: the item under ``key``, or ``None``; its recency is left as it is."""
    touch: Callable[[_K], None]
    """``touch(key)``: make ``key`` (which must be present) the most recently used."""

    def __init__(
        self,
        *,
        max_entries: int | None = None,
        max_bytes: int | None = None,
        max_item_bytes: int | None = None,
    ) -> None:
        max_entries = _bound("max_entries", max_entries)
        max_bytes = _bound("max_bytes", max_bytes)
        max_item_bytes = _bound("max_item_bytes", max_item_bytes)
        if max_bytes is not None and (max_item_bytes is None or max_item_bytes > max_bytes):
            max_item_bytes = max_bytes  # a larger item could never stay
        self.max_entries: int | None = max_entries
        """The bound on the number of items (read-only; ``None``: none)."""
        self.max_bytes: int | None = max_bytes
        """The bound on the sum of the items' sizes (read-only; ``None``: none)."""
        self.max_item_bytes: int | None = max_item_bytes
        """The size above which an item is not kept (read-only; ``None``: none)."""
        # The same bounds as ints, so put() compares without testing for None.
        self._entry_limit = _UNBOUNDED if max_entries is None else max_entries
        self._byte_limit = _UNBOUNDED if max_bytes is None else max_bytes
        self._item_limit = _UNBOUNDED if max_item_bytes is None else max_item_bytes
        self.nbytes = 0
        """The sum of the sizes of the items kept (counted only with a ``max_bytes``)."""
        self._items: OrderedDict[_K, _V] = OrderedDict()
        # The size of each item, only when there is a byte bound to keep.
        self._sizes: dict[_K, int] | None = None if max_bytes is None else {}
        self.peek = self._items.get
        self.touch = self._items.move_to_end

    def __len__(self) -> int:
        return len(self._items)

    def __contains__(self, key: object) -> bool:
        return key in self._items

    def __iter__(self) -> Iterator[_K]:
        """The keys, least recently used first."""
        return iter(self._items)

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}({len(self)} items, {self.nbytes} bytes; "
            f"max_entries={self.max_entries}, max_bytes={self.max_bytes})"
        )

    def items(self) -> ItemsView[_K, _V]:
        """A view of the ``(key, value)`` pairs, least recently used first.

        Take a list of it before changing the map while going through it.
        """
        return self._items.items()

    def put(self, key: _K, value: _V, size: int = 0) -> bool:
        """Keep ``value`` under ``key`` as the most recently used, then evict to the bounds.

        Args:
            key: The key.
            value: The value; what it holds is the caller's business.
            size: Its size in bytes, counted against ``max_bytes`` and ``max_item_bytes``.

        Returns:
            Whether it is kept: ``False`` for an item larger than ``max_item_bytes``, in
            which case the key holds nothing any more.
        """
        if size > self._item_limit:
            self.pop(key)
            return False
        items = self._items
        sizes = self._sizes
        if sizes is None:
            items[key] = value
            items.move_to_end(key)
        else:
            old = sizes.pop(key, None)
            if old is not None:
                self.nbytes -= old
                del items[key]
            items[key] = value
            sizes[key] = size
            self.nbytes += size
        if len(items) > self._entry_limit or self.nbytes > self._byte_limit:
            self._shrink()
        return True

    def _shrink(self) -> None:
        items, sizes = self._items, self._sizes
        while len(items) > self._entry_limit or self.nbytes > self._byte_limit:
            key, _value = items.popitem(last=False)
            if sizes is not None:
                self.nbytes -= sizes.pop(key)

    def pop(self, key: _K) -> _V | None:
        """Remove ``key`` and return its value (``None`` if it was not kept)."""
        sizes = self._sizes
        if sizes is not None:
            size = sizes.pop(key, None)
            if size is None:
                return None
            self.nbytes -= size
        return self._items.pop(key, None)

    def clear(self) -> None:
        """Remove every item."""
        self._items.clear()
        if self._sizes is not None:
            self._sizes.clear()
        self.nbytes = 0
