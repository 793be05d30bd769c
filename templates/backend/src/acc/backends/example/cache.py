"""The storage adapter: ``ExampleCache``, one namespace of the store behind ``BaseCache``.

TEMPLATE: the "server" below is a dict in this process, so the template runs and passes
the conformance kit as it is. Replace every ``# DRIVER:`` line with a call to your
store's asyncio client, and keep the rest: lazy connection, ``_ensure_open``, error
wrapping, one round trip for ``bulk_delete`` and ``read_many``.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Iterable, Sequence
from typing import ClassVar

from acc.core.errors import BackendError, BackendUnavailable, ConfigError
from acc.core.storage import BaseCache

__all__ = ["ExampleCache"]

DriverError = OSError  # DRIVER: the base exception class of your driver

# DRIVER: stands in for the server: url -> namespace -> key -> (value, expires_at).
_SERVERS: dict[str, dict[str, dict[str, tuple[bytes, float | None]]]] = {}


class ExampleCache(BaseCache):
    """One namespace (a table, a key prefix, a collection) of an Example store.

    Args:
        url: Where the store is.
        namespace: The namespace of this store; ``clear()`` empties only this one.
    """

    # Capability flags: say what the store really does; the kit skips what does not apply.
    native_ttl: ClassVar[bool] = True  # reads hide entries past expires_at
    persistent: ClassVar[bool] = True  # a new instance on the same url sees the data
    shared_across_processes: ClassVar[bool] = False  # DRIVER: True for a real server

    def __init__(self, url: str = "example://localhost", namespace: str = "responses") -> None:
        if not isinstance(namespace, str) or not namespace.isidentifier():
            raise ConfigError("namespace", f"expected an identifier, not {namespace!r}")
        self.url = url
        self.namespace = namespace
        self._client: dict[str, tuple[bytes, float | None]] | None = None

    async def _connect(self) -> dict[str, tuple[bytes, float | None]]:
        """Open the connection on first use, so that constructors do no I/O."""
        self._ensure_open()  # raises BackendError after close()
        if self._client is None:
            try:
                # DRIVER: self._client = await driver.connect(self.url)
                self._client = _SERVERS.setdefault(self.url, {}).setdefault(self.namespace, {})
            except DriverError as exc:
                raise BackendUnavailable(f"cannot reach {self.url}: {exc}") from exc
        return self._client

    @staticmethod
    def _live(item: tuple[bytes, float | None] | None, now: float) -> bytes | None:
        if item is None or (item[1] is not None and item[1] <= now):
            return None
        return item[0]

    # -- the five required methods ---------------------------------------------------------

    async def read(self, key: str) -> bytes | None:
        """Return the value under ``key``, or ``None``."""
        client = await self._connect()
        try:
            item = client.get(key)  # DRIVER: await client.get(key)
        except DriverError as exc:
            raise BackendError(f"read failed: {exc}") from exc
        return self._live(item, time.time())

    async def write(self, key: str, value: bytes, *, expires_at: float | None = None) -> None:
        """Store ``value`` under ``key``; use ``expires_at`` for native expiry."""
        client = await self._connect()
        try:
            client[key] = (bytes(value), expires_at)  # DRIVER: await client.set(..., exat=...)
        except DriverError as exc:
            raise BackendError(f"write failed: {exc}") from exc

    async def delete(self, key: str) -> None:
        """Remove ``key``; a missing key is not an error."""
        client = await self._connect()
        client.pop(key, None)  # DRIVER: await client.delete(key)

    async def keys(self) -> AsyncIterator[str]:
        """Iterate over live keys; fetch in pages, never hold a cursor across yields."""
        client = await self._connect()
        now = time.time()
        snapshot = [k for k, item in client.items() if self._live(item, now) is not None]
        for key in snapshot:  # DRIVER: page through keys (SCAN, keyset pagination, ...)
            yield key

    async def clear(self) -> None:
        """Remove every entry of this namespace, and nothing outside it."""
        client = await self._connect()
        client.clear()  # DRIVER: delete by namespace (DELETE FROM table, prefix, ...)

    # -- optional methods: override when the store can do better than the defaults ---------

    async def bulk_delete(self, keys: Iterable[str]) -> None:
        """Remove many keys in one round trip (chunk if the store has a limit)."""
        client = await self._connect()
        for key in list(keys):  # DRIVER: one DELETE ... IN / UNLINK / $in per chunk
            client.pop(key, None)

    async def read_many(self, keys: Sequence[str]) -> list[bytes | None]:
        """Return the values of ``keys`` in order, in one round trip."""
        client = await self._connect()
        now = time.time()
        return [self._live(client.get(key), now) for key in keys]  # DRIVER: MGET / IN

    async def delete_expired(self, now: float) -> int | None:
        """Remove expired entries natively and say how many; ``None`` if the store can't."""
        client = await self._connect()
        dead = [k for k, (_v, exp) in client.items() if exp is not None and exp <= now]
        for key in dead:
            del client[key]
        return len(dead)

    async def close(self) -> None:
        """Release the connection. Idempotent; later use raises ``BackendError``."""
        if self.closed:
            return
        self._client = None  # DRIVER: await client.close()
        await super().close()
