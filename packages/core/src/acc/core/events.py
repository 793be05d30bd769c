"""Events: one value per decision of the cache, for code that exports metrics.

An application passes listeners to :class:`~acc.core.CacheBackend` (``listeners=[...]``,
or :meth:`~acc.core.CacheBackend.add_listener`) and each gets a :class:`CacheEvent` for
every decision the request flow makes (a hit, a miss and whether it was stored, a stale
or revalidated hit, a bypass, a 504, an invalidation) and for every storage error. acc
depends on no metrics library: the documentation shows a Prometheus and an OpenTelemetry
listener, each a few lines.

Rules this module keeps:

1. An event carries the facts of the DEBUG log line of the same decision (``decision``,
   ``reason``, ``key``, ``url``), plus a stable ``kind`` to label metrics by, and what is
   known at that point: the status, whether a response was stored, the body size, the
   seconds since the flow received the request.
2. Listeners are called synchronously, in the order they were added, on the task of the
   request. They must be quick; they may not await (a listener that returns an awaitable
   has it closed, and a warning logged).
3. A listener never breaks a request, nor another listener: whatever it raises is
   caught and logged (the first failure of each listener at WARNING with its traceback,
   the next ones at DEBUG, so a broken exporter cannot flood the log).
4. With no listener nothing is built: the flow reads :attr:`EventHub.listeners` (a tuple,
   empty by default) before it builds an event.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Callable, Iterable
from typing import Literal

import attrs

from acc.core.errors import ConfigError

__all__ = ["EVENT_KINDS", "CacheEvent", "EventHub", "EventKind", "Listener"]

logger = logging.getLogger("acc")

EventKind = Literal[
    "hit",
    "stale",
    "revalidated",
    "miss",
    "bypass",
    "gateway_timeout",
    "ignored",
    "invalidation",
    "error",
]
"""What an event reports, one of a fixed set (a metric label with few values)."""

EVENT_KINDS: tuple[EventKind, ...] = (
    "hit",
    "stale",
    "revalidated",
    "miss",
    "bypass",
    "gateway_timeout",
    "ignored",
    "invalidation",
    "error",
)
"""Every :data:`EventKind`, in the order of the documentation."""


@attrs.frozen(slots=True)
class CacheEvent:
    """One decision of the cache (or one storage error), as listeners receive it.

    Attributes:
        kind: ``"hit"`` (served fresh from the cache), ``"stale"`` (served stale:
            stale-while-revalidate, stale-if-error, ``max-stale``), ``"revalidated"`` (a
            ``304`` confirmed the entry), ``"miss"`` (the network answered; ``stored``
            says whether the response was kept), ``"bypass"`` (the cache left the
            request alone), ``"gateway_timeout"`` (``only_if_cached`` answered 504),
            ``"ignored"`` (an entry was found but not used: ``filter_fn`` refused it, or a
            304 did not select it), ``"invalidation"`` (an unsafe method dropped entries),
            ``"error"`` (storage failed, or an entry could not be read).
        decision: The decision as the DEBUG line words it (``acc_decision``).
        reason: Why (``acc_reason``); may be empty.
        method: The request method (empty for a storage error).
        url: The request URL (empty for a storage error).
        key: The cache key, or ``None`` when the cache was not consulted.
        status: The status of the response served or received, when there is one.
        stored: For a ``"miss"``, whether the response was written to the cache.
        body_bytes: The size of the body served from, or written to, the cache.
        elapsed: Seconds from the moment the flow received the request to this event
            (``None`` when not measured: storage errors, entries ignored on reading).
    """

    kind: EventKind
    decision: str
    reason: str = ""
    method: str = ""
    url: str = ""
    key: str | None = None
    status: int | None = None
    stored: bool | None = None
    body_bytes: int | None = None
    elapsed: float | None = None


Listener = Callable[[CacheEvent], object]
"""A listener: called with each event; what it returns is ignored."""


class EventHub:
    """The listeners of one cache, and the safe way to call them (rules 2-4).

    Args:
        listeners: The listeners to start with.

    Raises:
        ConfigError: A listener that is not callable.
    """

    __slots__ = ("_failed", "listeners")

    def __init__(self, listeners: Iterable[Listener] = ()) -> None:
        given: object = listeners
        if isinstance(given, (str, bytes)) or not isinstance(given, Iterable):
            raise ConfigError("listeners", f"expected a list of callables, not {given!r}")
        found = tuple(given)
        for listener in found:
            _check(listener)
        self.listeners: tuple[Listener, ...] = found
        """The listeners, in call order (read-only: use :meth:`add` and :meth:`remove`)."""
        self._failed: set[int] = set()

    def add(self, listener: Listener) -> None:
        """Call ``listener`` with every later event, after the listeners already added."""
        _check(listener)
        self.listeners = (*self.listeners, listener)

    def remove(self, listener: Listener) -> None:
        """Stop calling ``listener`` (its first registration); no error if it is absent."""
        found = list(self.listeners)
        if listener in found:
            found.remove(listener)
            self.listeners = tuple(found)

    def emit(self, event: CacheEvent) -> None:
        """Call every listener with ``event``; nothing a listener does escapes (rule 3)."""
        for listener in self.listeners:
            try:
                result = listener(event)
                if inspect.isawaitable(result):
                    close = getattr(result, "close", None)
                    if close is not None:
                        close()
                    raise TypeError(
                        "listeners are called synchronously; this one returned an awaitable"
                    )
            except Exception:
                first = id(listener) not in self._failed
                self._failed.add(id(listener))
                logger.log(
                    logging.WARNING if first else logging.DEBUG,
                    "acc: the event listener %r failed on a %s event; the request goes on",
                    listener,
                    event.kind,
                    exc_info=True,
                )


def _check(listener: object) -> None:
    if not callable(listener):
        raise ConfigError("listeners", f"expected a callable, not {listener!r}")
