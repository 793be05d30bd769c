"""The storage port: the few methods a backend implements.

A :class:`BaseCache` is a namespace of ``str`` keys mapped to ``bytes`` values. It knows
nothing of HTTP, encoding or expiry policy: the core hands it opaque bytes and, with each
write, the moment after which the entry is of no further use (``expires_at``), which a
store with native expiry (Redis ``PXAT``, a Mongo TTL index, an indexed SQL column) may use
to drop the entry itself.

A minimal adapter writes :meth:`read`, :meth:`write`, :meth:`delete`, :meth:`keys` and
:meth:`clear`. Everything else has a default built on those, which an adapter overrides
when its store can do better (one round trip for many keys, a ``COUNT``, a native
expiry sweep). ``acc.core.testing.BaseCacheContract`` checks every adapter the same way.
"""

from __future__ import annotations

import abc
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from typing import ClassVar, Final

from acc.core.errors import BackendError

__all__ = ["SPLIT_PROBE", "BaseCache", "Splitter", "join_parts"]

SPLIT_PROBE: Final = 64
"""How many leading bytes of a value a :data:`Splitter` is shown (all of it when shorter)."""

Splitter = Callable[[bytes], int]
"""``split(prefix) -> offset``: where, in a value whose first bytes are ``prefix``, its
second part should begin (see :meth:`BaseCache.read_parts`). An offset outside
``1 .. len(value) - 1`` means: do not split."""


def join_parts(parts: Sequence[bytes]) -> bytes:
    """The concatenation of ``parts``: the only part itself when there is one (no copy).

    How a store that keeps or reads a value in parts gives it back whole.
    """
    return parts[0] if len(parts) == 1 else b"".join(parts)


class BaseCache(abc.ABC):
    """The storage port: bytes in, bytes out, one namespace per instance.

    Capability flags are class attributes, read by the conformance kit and by the façade:

    Attributes:
        native_ttl: The store drops (or hides) entries past ``expires_at`` by itself, so
            :meth:`read` returns ``None`` for them.
        persistent: Entries survive the process (a file or a server), so a new instance
            on the same location sees them.
        shared_across_processes: Several processes may use the same store at once.
        returns_stored_objects: :meth:`read_parts` returns the very ``bytes`` objects
            that were written (an in-process store), so the façade may reuse the entry it
            decoded from them last time (see :mod:`acc.core.storage.memo`). Leave it
            false otherwise.
        in_process: Every operation completes in this process without waiting on
            anything outside it (no I/O, no lock another process holds), so the façade
            does not time it against the request's storage budget. Leave it false
            otherwise.
        cancels_promptly: A cancelled operation ends at once: it never waits on its
            server while it handles the cancellation. The façade then times it in the
            request's own task (an operation that answers without waiting costs no
            timer). Otherwise (the default, safe for any store) each timed operation runs
            in a task of its own, which the request stops waiting for when its budget is
            spent, whatever the driver does with the cancellation. An instance may set
            it (a wrapper, from the store it wraps).
    """

    native_ttl: ClassVar[bool] = False
    persistent: ClassVar[bool] = False
    shared_across_processes: ClassVar[bool] = False
    returns_stored_objects: ClassVar[bool] = False
    in_process: ClassVar[bool] = False
    cancels_promptly: bool = False

    _closed: bool = False

    # -- the required methods ---------------------------------------------------------

    @abc.abstractmethod
    async def read(self, key: str) -> bytes | None:
        """Return the value stored under ``key``, or ``None`` if missing or expired."""

    @abc.abstractmethod
    async def write(self, key: str, value: bytes, *, expires_at: float | None = None) -> None:
        """Store ``value`` under ``key``, replacing any previous value.

        Args:
            key: The key.
            value: The bytes to store, as they are.
            expires_at: A UTC epoch second after which the store may drop the entry;
                ``None`` keeps it until deleted.

        Raises:
            EntryTooLarge: The store cannot hold a value this large; it has removed any
                older value under ``key`` first, so the key reads as a miss.
        """

    @abc.abstractmethod
    async def delete(self, key: str) -> None:
        """Remove ``key``; removing a missing key is not an error."""

    @abc.abstractmethod
    def keys(self) -> AsyncIterator[str]:
        """Iterate over the keys of this namespace (expired ones may be skipped)."""

    @abc.abstractmethod
    async def clear(self) -> None:
        """Remove every entry of this namespace, and nothing outside it."""

    # -- optional methods with defaults -----------------------------------------------

    async def bulk_delete(self, keys: Iterable[str]) -> None:
        """Remove many keys; stores override this to do it in one round trip."""
        self._ensure_open()
        for key in keys:
            await self.delete(key)

    async def write_parts(
        self, key: str, parts: Sequence[bytes], *, expires_at: float | None = None
    ) -> None:
        """Store the concatenation of ``parts`` under ``key``, as :meth:`write` would.

        The façade hands a large entry over as its parts (the encoded header, the body)
        so that a store able to write them one after the other (SQLite's incremental
        blob I/O, Redis ``APPEND``) never makes a contiguous copy of a large body. Readers
        must never see a partial value. This default joins the parts and calls
        :meth:`write`.
        """
        await self.write(key, join_parts(parts), expires_at=expires_at)

    async def read_parts(self, key: str, split: Splitter | None = None) -> tuple[bytes, ...] | None:
        """Return the value under ``key`` as parts whose concatenation it is, or ``None``.

        This is how the façade reads an entry: a large body that is a part of its own
        reaches the caller as that very ``bytes`` object, never sliced out of a larger
        one (a slice is a copy). A store able to read a value in ranges (SQLite's blob
        I/O, a file's ``seek``) shows ``split`` the value's first :data:`SPLIT_PROBE`
        bytes and returns the value as two parts cut where it says; a store that keeps
        the parts :meth:`write_parts` was given (the memory store) may return those
        instead. Any partition is correct: the reader joins parts that are not where it
        wants them. This default returns ``(await self.read(key),)``, one part.

        Args:
            key: The key.
            split: Where to cut the value, or ``None`` for no preference.
        """
        value = await self.read(key)
        return None if value is None else (value,)

    async def read_many(self, keys: Sequence[str]) -> list[bytes | None]:
        """Return the values of ``keys`` in order, ``None`` for each missing one."""
        self._ensure_open()
        return [await self.read(key) for key in keys]

    async def contains(self, key: str) -> bool:
        """Whether ``key`` holds a (non-expired) value."""
        self._ensure_open()
        return await self.read(key) is not None

    async def size(self) -> int:
        """The number of entries in this namespace."""
        self._ensure_open()
        count = 0
        async for _key in self.keys():
            count += 1
        return count

    async def values(self) -> AsyncIterator[bytes]:
        """Iterate over the stored values."""
        async for _key, value in self.items():
            yield value

    async def items(self) -> AsyncIterator[tuple[str, bytes]]:
        """Iterate over ``(key, value)`` pairs, skipping keys that vanish meanwhile."""
        async for key in self.keys():
            value = await self.read(key)
            if value is not None:
                yield key, value

    async def delete_expired(self, now: float) -> int | None:
        """Remove the entries whose ``expires_at`` is at or before ``now``.

        Returns:
            The number removed, or ``None`` when the store cannot tell which entries
            expired without the caller decoding them (the default).
        """
        self._ensure_open()
        return None

    async def close(self) -> None:
        """Release the store's resources. Idempotent; later use raises ``BackendError``."""
        self._closed = True

    @property
    def evictions(self) -> int | None:
        """Entries the store dropped to stay within its bounds, or ``None`` if it cannot tell.

        A bounded in-process store counts them (``MemoryCache``); the façade adds them to
        ``stats.evictions``. The default is ``None``: a server that evicts on its own
        (Redis ``maxmemory``) does not tell its client.
        """
        return None

    async def compact(self) -> bool:
        """Give the space of deleted entries back, where the store can (SQLite ``VACUUM``).

        Returns:
            Whether the store compacted; ``False`` (the default) when it has nothing to do
            or cannot (memory and servers manage their own space).
        """
        self._ensure_open()
        return False

    # -- helpers for adapters -----------------------------------------------------------

    @property
    def closed(self) -> bool:
        """Whether :meth:`close` has been called."""
        return self._closed

    def _ensure_open(self) -> None:
        """Raise :class:`BackendError` if the store was closed."""
        if self._closed:
            raise BackendError(f"{type(self).__name__} is closed")
