"""Decoded entries remembered with the bytes they were decoded from.

Decoding an entry (its JSON metadata, the field checks, the CRC-32 or signature) is the
largest cost left on a small hit once the store has answered. The façade keeps the last
decoded :class:`~acc.core.CachedResponse` of each recently read key together with the
bytes it came from, and reuses it while the store returns those same bytes again.

Rules this module keeps:

1. An entry is reused only when the store returned bytes *equal* to those it was
   decoded from under the same key: the same number of parts
   (:meth:`~acc.core.storage.BaseCache.read_parts`), each equal to the part seen before.
   An in-process store (:class:`~acc.core.MemoryCache`,
   :class:`~acc.core.storage.near.NearCache`) returns the very objects, which compare
   equal at once (``bytes`` equality begins with identity); a persistent store returns
   new objects, and the comparison is one ``memcmp`` of a value no larger than
   ``max_entry_bytes``, far cheaper than a decode. A rewrite, a delete or another
   process's change yields other bytes, hence a fresh decode (and a fresh check).
2. Everything the codec checks (format, checksum or signature, the key the entry was
   signed for) is a function of the bytes and the key, so it holds for equal bytes under
   the same key: it was checked when the entry was first decoded. A change of
   ``secret_key`` replaces the memo.
3. The memo is bounded by entry count and by bytes (counting everything it holds, as
   stored). An entry decoded with a copy of its body (the store returned it in one
   piece) is kept only up to ``max_entry_bytes``: the copy doubles what it costs. When
   the store is in-process (``shares_store_bytes``), an entry whose body *is* the stored
   part (a large body written and read in parts) costs nothing beyond the store's own
   bytes while the store keeps them, and is kept up to ``max_bytes``: a large memory
   hit is then as cheap as a small one. A persistent store's bytes live only in the
   memo, so there every entry counts against ``max_entry_bytes``.
"""

from __future__ import annotations

from typing import Final

from acc.core.models import CachedResponse
from acc.core.storage.lru import LRU

__all__ = ["DecodedMemo"]

MAX_ENTRIES: Final = 1024
MAX_ENTRY_BYTES: Final = 256 * 1024
SHARED_MAX_BYTES: Final = 32 * 1024 * 1024
"""``max_bytes`` when the store is in-process: its large entries cost the memo nothing."""
MAX_BYTES_COPIED: Final = 8 * 1024 * 1024
"""``max_bytes`` for a persistent store, whose bytes the memo alone keeps alive."""


class DecodedMemo:
    """A bounded LRU from key to ``(bytes read, entry decoded from them)``."""

    __slots__ = ("_items", "_max_entry_bytes", "_peek", "_shares", "_touch")

    def __init__(
        self,
        *,
        max_entries: int = MAX_ENTRIES,
        max_bytes: int | None = None,
        max_entry_bytes: int = MAX_ENTRY_BYTES,
        shares_store_bytes: bool = True,
    ) -> None:
        if max_bytes is None:
            max_bytes = SHARED_MAX_BYTES if shares_store_bytes else MAX_BYTES_COPIED
        self._shares = shares_store_bytes
        self._items: LRU[str, tuple[tuple[bytes, ...], CachedResponse]] = LRU(
            max_entries=max_entries, max_bytes=max_bytes
        )
        self._max_entry_bytes = max_entry_bytes
        # get() runs on every hit of an in-process store: one attribute away from the
        # dict's own methods, as cheap as the lookup itself.
        self._peek = self._items.peek
        self._touch = self._items.touch

    @property
    def max_entries(self) -> int | None:
        """How many entries are remembered, at most."""
        return self._items.max_entries

    @property
    def max_bytes(self) -> int | None:
        """How many bytes of entries (as stored) are remembered, at most."""
        return self._items.max_bytes

    @property
    def max_entry_bytes(self) -> int | None:
        """Entries stored larger than this are not remembered, unless their body is shared.

        (See rule 3: an entry whose body is the stored part itself is kept up to
        ``max_bytes``.)
        """
        return self._max_entry_bytes

    def __len__(self) -> int:
        return len(self._items)

    def get(self, key: str, parts: tuple[bytes, ...]) -> CachedResponse | None:
        """The entry decoded under ``key`` from parts equal to ``parts``, if remembered."""
        item = self._peek(key)
        if item is None:
            return None
        seen = item[0]
        if seen is not parts:
            count = len(parts)
            if len(seen) != count:
                return None
            if count == 1:  # a value read whole: the common case, without a loop
                if seen[0] != parts[0]:
                    return None
            else:
                for old, new in zip(seen, parts, strict=True):
                    if old != new:
                        return None
        self._touch(key)
        return item[1]

    def put(self, key: str, parts: tuple[bytes, ...], entry: CachedResponse) -> None:
        """Remember that ``parts``, read under ``key``, decode to ``entry``.

        An entry stored larger than ``max_entry_bytes`` is not remembered unless the store
        is in-process and its body is the last part itself (rule 3); what was remembered
        of ``key`` is then forgotten.
        """
        size = sum(map(len, parts))
        limit = self._max_entry_bytes
        if limit is not None and size > limit and (entry.body is not parts[-1] or not self._shares):
            self._items.pop(key)
            return
        self._items.put(key, (parts, entry), size)

    def forget(self, key: str) -> None:
        """Drop what is remembered of ``key``."""
        self._items.pop(key)

    def clear(self) -> None:
        """Drop everything."""
        self._items.clear()
