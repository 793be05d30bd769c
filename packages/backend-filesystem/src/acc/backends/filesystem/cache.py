"""The file-system store: :class:`FileCache`, one file per entry in a folder per store.

A store is a folder (``<cache folder>/<namespace>``); each entry is one file in it, named
by the SHA-256 of its key (64 hex digits: safe on every file system, whatever the key).
A file is a small fixed header, the key, then the value as it is::

    b"ACCF"  version (1 byte)  flags (1 byte)  expires_at (float64, big-endian)
    key length (uint32, big-endian)  key (UTF-8)  value

Rules this module keeps:

1. Standard library only; constructors do no I/O (folders are created on first write).
2. A write never shows half an entry: the file is written under a temporary name in the
   same folder (``.tmp-*``, created ``0600``) and moved over the entry with
   ``os.replace``, which is atomic, so another reader, in this process or another, sees
   the old file or the new one. Folders are created ``0700``.
3. Expiry is in the header, so it is honoured without reading values: a read of a file
   past ``expires_at`` returns ``None``, and :meth:`FileCache.delete_expired` reads the
   first bytes of each file only. A file whose header or key does not match (another
   format, a file renamed by hand, a hash collision) reads as ``None`` too.
4. Two processes may share a folder. Besides rule 2, the expiry sweep never deletes an
   entry another process has just rewritten: it moves an expired file aside, checks the
   header of what it moved, and puts back (with ``os.link``, which never overwrites) a file
   that turned out to be fresh.
5. The event loop is not held for long: reads of files up to :data:`INLINE_READ_MAX`
   bytes, ``contains`` and single deletes run on the loop's thread (on a warm page cache a
   small read takes about 15 µs, against about 200 µs for a hop to a worker thread);
   writes (creating and renaming a file costs from 0.2 to several milliseconds on ext4),
   larger reads and every walk over the folder (``keys``, ``items``, ``size``, ``clear``,
   ``delete_expired``, ``bulk_delete``) run in a worker thread (:func:`asyncio.to_thread`).
6. :meth:`FileCache.read_parts` reads a large value as two ``bytes`` objects, cut where
   the reader's splitter says (its head, then its body), through an unbuffered file, so
   each byte is copied once, from the file into the part that holds it.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import functools
import hashlib
import os
import re
import secrets
import struct
import time
from collections.abc import AsyncIterator, Callable, Iterable, Iterator
from pathlib import Path
from typing import BinaryIO, ClassVar, TypeVar

from acc.core.errors import BackendError, ConfigError
from acc.core.storage import SPLIT_PROBE, BaseCache, Splitter

__all__ = ["INLINE_READ_MAX", "FileCache", "cache_folder"]

_T = TypeVar("_T")

MAGIC = b"ACCF"
VERSION = 1
_HEADER = struct.Struct(">4sBBdI")  # magic, version, flags, expires_at, key length
_HAS_EXPIRY = 0x01
_MAX_KEY_BYTES = 1 << 20

INLINE_READ_MAX = 256 * 1024
"""Files up to this size are read on the event loop's thread; larger ones in a worker."""

_NAME = re.compile(r"[0-9a-f]{64}\Z")  # an entry's file name
_TEMP_PREFIX = ".tmp-"  # a write in progress (or abandoned by a crash)
_TRASH_PREFIX = ".del-"  # an expired file being swept
_LEFTOVER_AGE = 3600.0  # seconds after which a temporary file is an abandoned one
_NAMESPACE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,63}\Z")
_FOLDER_MODE = 0o700
_BATCH = 256  # files per worker-thread call when walking a folder
_REPLACE_ATTEMPTS = 10  # Windows refuses to replace a file another handle has open


def cache_folder(name: str | os.PathLike[str]) -> Path:
    """Turn a cache name into the folder it means: ``~`` expanded, made absolute.

    A relative name is taken against the current directory, now (as the SQLite backend
    takes its database file).

    Raises:
        ConfigError: ``name`` is not a non-empty path.
    """
    try:
        text = os.fspath(name)
    except TypeError:
        raise ConfigError("cache_name", f"expected a folder path, not {name!r}") from None
    if not isinstance(text, str) or not text.strip():
        raise ConfigError("cache_name", f"expected a folder path, not {name!r}")
    return Path(text).expanduser().absolute()


def file_name(key: str) -> str:
    """The name of the file that holds ``key``: the hex SHA-256 of its UTF-8 bytes."""
    return hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()


def _encode_header(key: bytes, expires_at: float | None) -> bytes:
    flags = 0 if expires_at is None else _HAS_EXPIRY
    stamp = 0.0 if expires_at is None else float(expires_at)
    return _HEADER.pack(MAGIC, VERSION, flags, stamp, len(key)) + key


def _parse_header(head: bytes) -> tuple[float | None, int] | None:
    """``(expires_at, key length)`` from the first bytes of a file, or ``None`` if not ours."""
    if len(head) < _HEADER.size:
        return None
    magic, version, flags, stamp, key_length = _HEADER.unpack_from(head)
    if magic != MAGIC or version != VERSION or key_length > _MAX_KEY_BYTES:
        return None
    return (stamp if flags & _HAS_EXPIRY else None), key_length


def _expired(expires_at: float | None, now: float) -> bool:
    return expires_at is not None and expires_at <= now


def _read_head(handle: BinaryIO) -> tuple[float | None, bytes] | None:
    """Read the header and key of an open file: ``(expires_at, key bytes)`` or ``None``."""
    parsed = _parse_header(handle.read(_HEADER.size))
    if parsed is None:
        return None
    expires_at, key_length = parsed
    key = handle.read(key_length)
    if len(key) != key_length:
        return None
    return expires_at, key


def _load_parts(path: Path, key: bytes, now: float, split: Splitter) -> tuple[bytes, ...] | None:
    """The value in the file at ``path`` cut where ``split`` says, or ``None`` (rule 6)."""
    try:
        handle = open(path, "rb", buffering=0)  # noqa: SIM115 - raw: reads copy once
    except (FileNotFoundError, NotADirectoryError):
        return None
    with handle:
        head = _read_head(handle)  # a raw file reads the same
        if head is None or head[1] != key or _expired(head[0], now):
            return None
        start = handle.tell()
        length = os.fstat(handle.fileno()).st_size - start
        at = split(handle.read(SPLIT_PROBE) or b"")
        handle.seek(start)
        if type(at) is int and 0 < at < length:
            first = handle.read(at) or b""
            return first, handle.readall()
        return (handle.readall(),)


def _entry_names(folder: Path) -> list[str]:
    """The entry files of ``folder`` (none when it does not exist yet)."""
    try:
        with os.scandir(folder) as found:
            return [item.name for item in found if _NAME.match(item.name)]
    except FileNotFoundError:
        return []


def _batches(names: list[str], size: int = _BATCH) -> Iterator[list[str]]:
    for start in range(0, len(names), size):
        yield names[start : start + size]


def _make_folder(folder: Path) -> None:
    """Create ``folder`` and its missing parents, each ``0700`` (existing ones are left)."""
    missing: list[Path] = []
    current = folder
    while not current.is_dir():
        missing.append(current)
        if current.parent == current:
            break
        current = current.parent
    for path in reversed(missing):
        try:
            path.mkdir(mode=_FOLDER_MODE)
        except FileExistsError:
            if not path.is_dir():
                raise


class FileCache(BaseCache):
    """A store in a folder of files, one per entry (see the module's rules).

    Args:
        path: The cache folder: ``~`` is expanded and a relative path made absolute.
        namespace: The store's subfolder (``"responses"``, ``"redirects"``): letters,
            digits, ``_``, ``.`` and ``-``, not starting with ``.`` or ``-``.

    Raises:
        ConfigError: An invalid path or namespace.
    """

    native_ttl: ClassVar[bool] = True
    persistent: ClassVar[bool] = True
    shared_across_processes: ClassVar[bool] = True

    def __init__(self, path: str | os.PathLike[str], namespace: str = "responses") -> None:
        if not isinstance(namespace, str) or not _NAMESPACE.match(namespace):
            raise ConfigError(
                "namespace",
                "expected 1-64 letters, digits, '_', '.' or '-', not starting with '.' "
                f"or '-', not {namespace!r}",
            )
        self.root = cache_folder(path)
        """The cache folder."""
        self.namespace = namespace
        self.folder = self.root / namespace
        """The folder of this store's files."""

    def __repr__(self) -> str:
        return f"{type(self).__name__}({str(self.root)!r}, namespace={self.namespace!r})"

    def path_of(self, key: str) -> Path:
        """The file that holds (or would hold) ``key``."""
        return self.folder / file_name(key)

    # -- plumbing -------------------------------------------------------------------------

    def _failed(self, operation: str, exc: OSError) -> BackendError:
        return BackendError(f"{self!r}: {operation} failed: {exc}")

    async def _in_thread(self, operation: str, function: Callable[[], _T]) -> _T:
        self._ensure_open()
        try:
            return await asyncio.to_thread(function)
        except OSError as exc:
            raise self._failed(operation, exc) from exc

    def _load(self, handle: BinaryIO, key: bytes, now: float) -> bytes | None:
        """The value in an open file, or ``None`` (not ours, another key, expired)."""
        head = _read_head(handle)
        if head is None or head[1] != key or _expired(head[0], now):
            return None
        return handle.read()

    # -- reading --------------------------------------------------------------------------

    async def read(self, key: str) -> bytes | None:
        """Return the value under ``key``, or ``None`` if missing or expired."""
        self._ensure_open()
        path = self.path_of(key)
        encoded = key.encode("utf-8", "surrogatepass")
        try:
            handle = open(path, "rb")  # noqa: ASYNC230, SIM115 (rule 5: a small read)
        except (FileNotFoundError, NotADirectoryError):
            return None
        except OSError as exc:
            raise self._failed("read", exc) from exc
        try:
            size = os.fstat(handle.fileno()).st_size
            now = time.time()
            if size <= INLINE_READ_MAX:
                value = self._load(handle, encoded, now)
            else:
                value = await asyncio.to_thread(self._load, handle, encoded, now)
        except OSError as exc:
            raise self._failed("read", exc) from exc
        finally:
            handle.close()
        return value

    async def read_parts(self, key: str, split: Splitter | None = None) -> tuple[bytes, ...] | None:
        """Return the value under ``key``; a large one cut where ``split`` says (rule 6).

        Files up to :data:`INLINE_READ_MAX` bytes, or without ``split``, are read as
        :meth:`read` reads them, in one part.
        """
        self._ensure_open()
        path = self.path_of(key)
        try:
            size = os.stat(path).st_size
        except (FileNotFoundError, NotADirectoryError):
            return None
        except OSError as exc:
            raise self._failed("read", exc) from exc
        if split is None or size <= INLINE_READ_MAX:
            return await super().read_parts(key, split)
        encoded = key.encode("utf-8", "surrogatepass")
        try:
            return await asyncio.to_thread(_load_parts, path, encoded, time.time(), split)
        except OSError as exc:
            raise self._failed("read", exc) from exc

    async def contains(self, key: str) -> bool:
        """Whether ``key`` holds a live value (only the header is read)."""
        self._ensure_open()
        try:
            with open(self.path_of(key), "rb") as handle:  # noqa: ASYNC230 (rule 5)
                head = _read_head(handle)
        except (FileNotFoundError, NotADirectoryError):
            return False
        except OSError as exc:
            raise self._failed("contains", exc) from exc
        return (
            head is not None
            and head[1] == key.encode("utf-8", "surrogatepass")
            and not _expired(head[0], time.time())
        )

    # -- writing --------------------------------------------------------------------------

    async def write(self, key: str, value: bytes, *, expires_at: float | None = None) -> None:
        """Store ``value`` under ``key``: a temporary file, then an atomic rename."""
        header = _encode_header(key.encode("utf-8", "surrogatepass"), expires_at)
        path = self.path_of(key)
        await self._in_thread("write", lambda: self._write_file(path, header, bytes(value)))

    def _write_file(self, path: Path, header: bytes, value: bytes) -> None:
        try:
            temporary = self._create_temporary()
        except FileNotFoundError:
            _make_folder(self.folder)
            temporary = self._create_temporary()
        descriptor, name = temporary
        try:
            with os.fdopen(descriptor, "wb") as handle:
                handle.write(header)
                handle.write(value)
            self._replace(name, path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(name)
            raise

    def _create_temporary(self) -> tuple[int, Path]:
        name = self.folder / f"{_TEMP_PREFIX}{secrets.token_hex(8)}"
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
        return os.open(name, flags, 0o600), name

    @staticmethod
    def _replace(source: Path, target: Path) -> None:
        for attempt in range(_REPLACE_ATTEMPTS):
            try:
                os.replace(source, target)
                return
            except PermissionError:  # Windows: a reader has the target open
                if os.name != "nt" or attempt == _REPLACE_ATTEMPTS - 1:
                    raise
                time.sleep(0.01 * (attempt + 1))

    # -- deleting -------------------------------------------------------------------------

    async def delete(self, key: str) -> None:
        """Remove ``key`` (a missing key is not an error)."""
        self._ensure_open()
        try:
            os.unlink(self.path_of(key))
        except (FileNotFoundError, NotADirectoryError):
            pass
        except OSError as exc:
            raise self._failed("delete", exc) from exc

    async def bulk_delete(self, keys: Iterable[str]) -> None:
        """Remove many keys, in a worker thread."""
        paths = [self.path_of(key) for key in dict.fromkeys(keys)]
        await self._in_thread("bulk_delete", lambda: self._unlink_all(paths))

    @staticmethod
    def _unlink_all(paths: Iterable[Path]) -> int:
        removed = 0
        for path in paths:
            try:
                os.unlink(path)
                removed += 1
            except (FileNotFoundError, NotADirectoryError):
                pass
        return removed

    async def clear(self) -> None:
        """Remove every entry of this store (and abandoned temporary files)."""
        await self._in_thread("clear", self._clear)

    def _clear(self) -> None:
        names = _entry_names(self.folder)
        self._unlink_all(self.folder / name for name in names)
        self._sweep_leftovers(time.time())

    def _sweep_leftovers(self, now: float) -> None:
        """Remove temporary files a crashed writer or sweeper left more than an hour ago."""
        try:
            with os.scandir(self.folder) as found:
                for item in found:
                    if not item.name.startswith((_TEMP_PREFIX, _TRASH_PREFIX)):
                        continue
                    try:
                        if item.stat().st_mtime < now - _LEFTOVER_AGE:
                            os.unlink(item.path)
                    except FileNotFoundError:
                        pass
        except FileNotFoundError:
            pass

    async def delete_expired(self, now: float) -> int:
        """Remove the entries past ``expires_at`` at ``now``, reading headers only."""
        return await self._in_thread("delete_expired", lambda: self._delete_expired(now))

    def _delete_expired(self, now: float) -> int:
        removed = 0
        for name in _entry_names(self.folder):
            if self._remove_if_expired(self.folder / name, now):
                removed += 1
        self._sweep_leftovers(time.time())
        return removed

    def _remove_if_expired(self, path: Path, now: float) -> bool:
        """Remove ``path`` if it holds an expired (or unreadable) entry (rule 4)."""
        if not self._dead(path, now):
            return False
        trash = path.with_name(f"{_TRASH_PREFIX}{secrets.token_hex(8)}")
        try:
            os.rename(path, trash)
        except FileNotFoundError:
            return False  # deleted meanwhile
        try:
            if self._dead(trash, now):
                return True
            # Rewritten by another writer between the check and the move: put it back,
            # unless an even newer write took the name meanwhile.
            try:
                os.link(trash, path)
            except FileExistsError:
                pass
            except OSError as exc:
                if exc.errno not in (errno.EPERM, errno.EXDEV, errno.ENOTSUP, errno.EMLINK):
                    raise
                # No hard links here: the fresh entry is lost, which reads as a miss.
            return False
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(trash)

    @staticmethod
    def _dead(path: Path, now: float) -> bool:
        """Whether ``path`` holds an expired entry or is not an entry file of ours."""
        try:
            with open(path, "rb") as handle:
                head = _read_head(handle)
        except FileNotFoundError:
            return False
        return head is None or _expired(head[0], now)

    # -- walking --------------------------------------------------------------------------

    async def _names(self) -> list[str]:
        return await self._in_thread("keys", lambda: _entry_names(self.folder))

    def _heads(self, names: list[str], now: float) -> list[str]:
        """The live keys among the files ``names`` (headers only)."""
        keys: list[str] = []
        for name in names:
            try:
                with open(self.folder / name, "rb") as handle:
                    head = _read_head(handle)
            except FileNotFoundError:
                continue
            if head is None or _expired(head[0], now):
                continue
            key = head[1].decode("utf-8", "surrogatepass")
            if file_name(key) == name:
                keys.append(key)
        return keys

    def _pairs(self, names: list[str], now: float) -> list[tuple[str, bytes]]:
        """The live ``(key, value)`` pairs among the files ``names``."""
        pairs: list[tuple[str, bytes]] = []
        for name in names:
            try:
                with open(self.folder / name, "rb") as handle:
                    head = _read_head(handle)
                    if head is None or _expired(head[0], now):
                        continue
                    value = handle.read()
            except FileNotFoundError:
                continue
            key = head[1].decode("utf-8", "surrogatepass")
            if file_name(key) == name:
                pairs.append((key, value))
        return pairs

    async def keys(self) -> AsyncIterator[str]:
        """Iterate over the live keys, reading the headers in a worker thread."""
        now = time.time()
        for names in _batches(await self._names()):
            for key in await self._in_thread("keys", functools.partial(self._heads, names, now)):
                yield key

    async def items(self) -> AsyncIterator[tuple[str, bytes]]:
        """Iterate over live ``(key, value)`` pairs, a few files per worker-thread call."""
        now = time.time()
        for names in _batches(await self._names(), 16):
            for pair in await self._in_thread("items", functools.partial(self._pairs, names, now)):
                yield pair

    async def size(self) -> int:
        """The number of live entries (headers are read, values are not)."""
        now = time.time()

        def count() -> int:
            return sum(
                len(self._heads(names, now)) for names in _batches(_entry_names(self.folder))
            )

        return await self._in_thread("size", count)

    async def disk_usage(self) -> int:
        """Bytes this store's files take (their sizes, temporary files included)."""

        def total() -> int:
            found = 0
            try:
                with os.scandir(self.folder) as entries:
                    for item in entries:
                        try:
                            if item.is_file(follow_symlinks=False):
                                found += item.stat(follow_symlinks=False).st_size
                        except FileNotFoundError:
                            pass
            except FileNotFoundError:
                pass
            return found

        return await self._in_thread("disk_usage", total)

    async def close(self) -> None:
        """Mark the store closed (there is nothing to release). Idempotent."""
        self._closed = True
