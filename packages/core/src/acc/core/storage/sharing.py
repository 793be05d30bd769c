"""A connection that several stores share: :class:`SharedConnection`.

A backend's two stores (``responses`` and ``redirects``) normally share one client, one
connection pool or one worker thread. Each store registers with :meth:`acquire` when it
is built and gives it back with :meth:`release` when it closes; the connection itself
closes after the last store has released it, so that closing the backend (both stores)
closes the client exactly once, and closing one store never pulls it from under the
other. First-party backends build on it, and third-party ones may.
"""

from __future__ import annotations

import abc

from acc.core.errors import BackendError

__all__ = ["SharedConnection"]


class SharedConnection(abc.ABC):
    """Counts the stores using a connection and closes it after the last one leaves.

    Subclasses implement :meth:`close` (idempotent; it sets ``_closed``).
    """

    _users: int = 0
    _closed: bool = False

    @property
    def closed(self) -> bool:
        """Whether the connection was closed (by :meth:`close` or its last store)."""
        return self._closed

    def acquire(self) -> None:
        """Register a store; the connection closes when every store has released it.

        Raises:
            BackendError: The connection is already closed.
        """
        if self._closed:
            raise BackendError(f"{self!r} is closed")
        self._users += 1

    async def release(self) -> None:
        """Unregister a store, closing the connection after the last one."""
        self._users -= 1
        if self._users <= 0:
            await self.close()

    @abc.abstractmethod
    async def close(self) -> None:
        """Close the connection. Idempotent."""
