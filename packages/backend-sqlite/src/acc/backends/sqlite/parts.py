"""Reading a large value in two parts with incremental blob I/O.

A hit on a large entry wants its body as a ``bytes`` object of its own: sliced out of
the whole value it would be copied once more (see ``BaseCache.read_parts``). SQLite's
blob I/O (``sqlite3.Connection.blobopen``, Python 3.11+) reads any range of a value
straight into a new ``bytes`` object, so a value is read as its first bytes (where the
caller's splitter says the second part begins), its head and the rest: each byte is
copied once, out of the database's pages (mapped, on the loop-thread reader).

Rules this module keeps:

1. The row is found and read within one read transaction, so the parts are of one
   version of the value, however other connections write meanwhile (in WAL mode a
   reader has a snapshot and never waits for the writer).
2. A value that is not a BLOB (a row written by something else) is read whole with a
   plain ``SELECT``, as ``read`` would, and handed back as one part.
3. It runs on whichever connection it is given, in that connection's thread: the
   loop-thread reader or the worker's own.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from typing import Any, Final

from acc.core.storage import SPLIT_PROBE, Splitter

__all__ = ["SPLIT_FROM", "TooLargeHere", "read_in_parts"]

SPLIT_FROM: Final = 1024 * 1024
"""Values at least this large are read in two parts when the reader asks for a cut.

Smaller ones are read whole by the one point query: a slice of them costs less than the
blob handle's few statements.
"""


class TooLargeHere(Exception):
    """The value is larger than the caller reads on this thread: read it in another."""


def read_in_parts(
    database: sqlite3.Connection,
    table: str,
    locate: str,
    key: str,
    now: float,
    split: Splitter,
    max_size: int | None = None,
) -> tuple[bytes, ...] | None:
    """Read the live value under ``key`` cut where ``split`` says, in one transaction.

    Args:
        database: An autocommit connection (no transaction open).
        table: The table (already checked by the store).
        locate: ``SELECT rowid, value IS NOT NULL AND typeof(value) = 'blob', value``
            of the live row for parameters ``(key, now)``, where the third column is
            the value only when it is not a BLOB (rule 2).
        key: The key.
        now: The epoch second that decides which rows are live.
        split: Where the second part begins, given the first :data:`SPLIT_PROBE` bytes.
        max_size: Raise :class:`TooLargeHere` for a value larger than this, before
            reading any of it (the loop-thread reader's bound).

    Returns:
        The value as one or two parts, or ``None`` when ``key`` holds no live value.

    Raises:
        sqlite3.Error: As the statements raise it (a lock, a missing table).
        TooLargeHere: The value is larger than ``max_size``.
    """
    database.execute("BEGIN")
    try:
        row = database.execute(locate, (key, now)).fetchone()
        if row is None:
            return None
        rowid, is_blob, other = row
        if not is_blob:
            return (_text_bytes(other),)
        blob_open: Callable[..., Any] = getattr(database, "blobopen")  # noqa: B009 - Python 3.11+
        with blob_open(table, "value", rowid, readonly=True) as blob:
            size = len(blob)
            if max_size is not None and size > max_size:
                raise TooLargeHere(size)
            at = split(blob.read(SPLIT_PROBE))
            blob.seek(0)
            if type(at) is int and 0 < at < size:
                head: bytes = blob.read(at)
                body: bytes = blob.read()
                return head, body
            whole: bytes = blob.read()
            return (whole,)
    finally:
        if database.in_transaction:
            database.execute("COMMIT")  # a read transaction: nothing to write


def _text_bytes(value: object) -> bytes:
    """A value that is not a BLOB as bytes (its text), for the core to reject."""
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value)
    return str(value).encode("utf-8", "surrogatepass")
