"""SharedConnection: the connection closes once, after the last store releases it."""

from __future__ import annotations

import pytest

from acc.core import BackendError
from acc.core.storage.sharing import SharedConnection


class Counted(SharedConnection):
    def __init__(self) -> None:
        self.closes = 0

    async def close(self) -> None:
        if not self._closed:
            self._closed = True
            self.closes += 1


async def test_closes_after_the_last_user_releases_it() -> None:
    connection = Counted()
    connection.acquire()
    connection.acquire()
    await connection.release()
    still_open = not connection.closed
    await connection.release()
    assert still_open
    assert connection.closed
    assert connection.closes == 1


async def test_a_closed_connection_cannot_be_acquired() -> None:
    connection = Counted()
    await connection.close()
    with pytest.raises(BackendError, match="is closed"):
        connection.acquire()


def test_close_must_be_implemented() -> None:
    with pytest.raises(TypeError):
        SharedConnection()  # type: ignore[abstract]
