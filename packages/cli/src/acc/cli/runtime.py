"""What every command shares: the cache URL, parsing, consoles, errors and Ctrl-C.

Rules this module keeps:

1. The cache is opened by URL through :meth:`acc.core.CacheBackend.from_url` (the
   ``acc.backends`` entry points), with ``strict=True``: a command about a cache that
   cannot be reached fails with one line, it does not quietly fall back to the network.
2. Data goes to standard output; progress, status lines and errors to standard error.
   A progress bar is shown only when standard error is a terminal.
3. Every error a user can cause ends the command with one line, ``acc: error: ...``,
   and a non-zero status: 2 for a bad option, URL or scheme; 1 for a server or file
   that cannot be reached; 130 for Ctrl-C.
4. Ctrl-C (SIGINT) during a batch (:meth:`Interrupts.batch`) lets the batch finish and
   then stops; anywhere else it stops at once. Either way the command's ``finally``
   blocks run (temporary files are removed), so nothing is left half-written.
"""

from __future__ import annotations

import asyncio
import os
import re
import signal
import sys
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, NoReturn, TypeVar

import platformdirs
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
)

from acc.core import CacheBackend

__all__ = [
    "CACHE_ENV",
    "Failure",
    "Interrupted",
    "Interrupts",
    "default_cache_url",
    "fail",
    "open_cache",
    "parse_duration",
    "parse_size",
    "progress",
    "run",
    "stderr",
    "stdout",
]

CACHE_ENV = "ACC_CACHE_URL"
"""The environment variable that selects the cache when ``--cache`` is not given."""

stdout = Console(soft_wrap=True)
stderr = Console(stderr=True, soft_wrap=True)

_T = TypeVar("_T")


class Failure(Exception):
    """An error to report in one line, with the exit status to end with."""

    def __init__(self, message: str, status: int = 1) -> None:
        super().__init__(message)
        self.status = status


class Interrupted(Exception):
    """Ctrl-C stopped the command (after the batch it interrupted, if any)."""


def fail(message: str, status: int = 2) -> NoReturn:
    """Stop the command with one error line."""
    raise Failure(message, status)


def default_cache_path() -> Path:
    """The per-user SQLite cache: ``http-cache.sqlite`` in the platform's cache folder."""
    return Path(platformdirs.user_cache_dir("acc", appauthor=False)) / "http-cache.sqlite"


def default_cache_url() -> str:
    """``sqlite:///`` and :func:`default_cache_path`."""
    return "sqlite:///" + default_cache_path().as_posix()


def open_cache(url: str) -> CacheBackend:
    """The backend ``url`` names, strict (rule 1); a bad URL is a :class:`Failure`."""
    try:
        return CacheBackend.from_url(url, strict=True)
    except (ValueError, TypeError) as exc:
        raise Failure(f"--cache {url}: {exc}".replace("\n", " ").replace("    ", " "), 2) from exc


_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|sec|m|min|h|d|w)?\s*$", re.IGNORECASE)
_DURATION_UNITS = {"": 1, "s": 1, "sec": 1, "m": 60, "min": 60, "h": 3600, "d": 86400, "w": 604800}
_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmgt]?i?b?)?\s*$", re.IGNORECASE)


def parse_duration(text: str, option: str) -> float:
    """Seconds from ``90``, ``90s``, ``15m``, ``2h``, ``7d`` or ``1w``."""
    match = _DURATION.match(text)
    if match is None:
        fail(f"{option}: expected a duration such as 90, 90s, 15m, 2h or 7d, not {text!r}")
    return float(match[1]) * _DURATION_UNITS[(match[2] or "").lower()]


def parse_size(text: str, option: str) -> int:
    """Bytes from ``500``, ``64k``, ``10MB``, ``1GiB`` (k, M, G, T: powers of 1024)."""
    match = _SIZE.match(text)
    if match is None:
        fail(f"{option}: expected a size such as 500, 64k, 10MB or 1GiB, not {text!r}")
    unit = (match[2] or "").lower().rstrip("b").rstrip("i")
    power = " kmgt".index(unit) if unit else 0
    return int(float(match[1]) * 1024**power)


def progress(**columns: Any) -> Progress:
    """A progress bar on standard error, shown only on a terminal (rule 2)."""
    return Progress(
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=stderr,
        disable=not stderr.is_terminal,
        transient=False,
        **columns,
    )


class Interrupts:
    """Ctrl-C handling for one command (rule 4). Created inside the running loop."""

    def __init__(self) -> None:
        self.requested = False
        self._depth = 0
        self._task = asyncio.current_task()
        self._loop = asyncio.get_running_loop()
        self._installed = False
        try:
            self._loop.add_signal_handler(signal.SIGINT, self._on_signal)
            self._installed = True
        except (NotImplementedError, RuntimeError, ValueError):  # Windows, or not the main thread
            pass

    def _on_signal(self) -> None:
        self.requested = True
        if self._depth == 0 and self._task is not None:
            self._task.cancel()

    def close(self) -> None:
        """Give SIGINT back to Python's default handler."""
        if self._installed:
            self._loop.remove_signal_handler(signal.SIGINT)
            self._installed = False

    @contextmanager
    def batch(self) -> Iterator[None]:
        """A batch that Ctrl-C lets finish; :class:`Interrupted` is raised after it."""
        self._depth += 1
        try:
            yield
        finally:
            self._depth -= 1
        if self.requested:
            raise Interrupted

    def check(self) -> None:
        """Raise :class:`Interrupted` if Ctrl-C was pressed."""
        if self.requested:
            raise Interrupted


def run(main: Callable[[Interrupts], Awaitable[_T]]) -> _T:
    """Run a command's coroutine, turning Ctrl-C into :class:`Interrupted` (rule 4)."""

    async def guarded() -> _T:
        interrupts = Interrupts()
        try:
            return await main(interrupts)
        except asyncio.CancelledError:
            if interrupts.requested:
                raise Interrupted from None
            raise
        finally:
            interrupts.close()

    try:
        return asyncio.run(guarded())
    except KeyboardInterrupt:
        raise Interrupted from None


def write_stdout_bytes(data: bytes) -> None:
    """Write raw bytes (a body) to standard output."""
    stdout.file.flush()
    buffer = getattr(sys.stdout, "buffer", None)
    if buffer is None:
        sys.stdout.write(data.decode("utf-8", "replace"))
    else:
        buffer.write(data)
        buffer.flush()


def atomic_target(path: Path) -> Path:
    """A temporary file beside ``path``, for writing before an ``os.replace``."""
    return path.with_name(f".{path.name}.acc-{os.getpid()}.tmp")
