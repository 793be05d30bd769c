"""Decoded entries remembered by the identity of the bytes they were decoded from.

An in-process store (:class:`~acc.core.MemoryCache`, :class:`~acc.core.storage.near.NearCache`)
returns, on every read of a key, the very ``bytes`` object that was written. Decoding
those bytes again on every hit is the largest cost left on a memory hit, so the façade
keeps the last decoded :class:`~acc.core.CachedResponse` of each recently read key
together with the bytes object it came from, and reuses it while the store still returns
that same object.

Rules this module keeps:

1. An entry is reused only when the store returned the *same object* (``is``) it was
   decoded from. ``bytes`` are immutable and the memo holds a reference to them, so the
   object cannot be recycled for other content: a rewrite, a delete or another
   process's change always yields another object, hence a fresh decode (and a fresh
   signature check).
2. Everything the codec checks (format, signature, the key the entry was signed for) was
   checked when the entry was first decoded from those bytes under that key.
3. The memo is bounded by entry count and by bytes, and keeps only entries up to a size
   limit, so it never holds more than a few megabytes beyond what the store holds.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Final

from acc.core.models import CachedResponse

__all__ = ["DecodedMemo"]

MAX_ENTRIES: Final = 1024
MAX_BYTES: Final = 32 * 1024 * 1024
MAX_ENTRY_BYTES: Final = 256 * 1024


class DecodedMemo:
    """A bounded LRU from key to ``(bytes read, entry decoded from them)``."""

    __slots__ = ("_items", "_size", "max_bytes", "max_entries", "max_entry_bytes")

    def __init__(
        self,
        *,
        max_entries: int = MAX_ENTRIES,
        max_bytes: int = MAX_BYTES,
        max_entry_bytes: int = MAX_ENTRY_BYTES,
    ) -> None:
        self.max_entries = max_entries
        self.max_bytes = max_bytes
        self.max_entry_bytes = max_entry_bytes
        self._items: OrderedDict[str, tuple[bytes, CachedResponse]] = OrderedDict()
        self._size = 0

    def __len__(self) -> int:
        return len(self._items)

    def get(self, key: str, data: bytes) -> CachedResponse | None:
        """The entry decoded from ``data`` under ``key``, if that very object was seen."""
        item = self._items.get(key)
        if item is None or item[0] is not data:
            return None
        self._items.move_to_end(key)
        return item[1]

    def put(self, key: str, data: bytes, entry: CachedResponse) -> None:
        """Remember that ``data``, read under ``key``, decodes to ``entry``."""
        if len(data) > self.max_entry_bytes:
            self.forget(key)
            return
        previous = self._items.pop(key, None)
        if previous is not None:
            self._size -= len(previous[0])
        self._items[key] = (data, entry)
        self._size += len(data)
        while len(self._items) > self.max_entries or self._size > self.max_bytes:
            _key, (old, _entry) = self._items.popitem(last=False)
            self._size -= len(old)

    def forget(self, key: str) -> None:
        """Drop what is remembered of ``key``."""
        previous = self._items.pop(key, None)
        if previous is not None:
            self._size -= len(previous[0])

    def clear(self) -> None:
        """Drop everything."""
        self._items.clear()
        self._size = 0
