"""Storage outages, told in the log without flooding it: :class:`OutageLog`.

Rules this module keeps:

1. The first storage failure after a healthy period is logged at WARNING at once, with
   the operation and the error.
2. While the outage lasts, failures are counted, and at most one WARNING per
   ``interval`` (by the cache's clock) says how many failed since the last one; every
   other failure is logged at DEBUG only. A storage outage under load fails every
   request, and one line per request would bury everything else in the log.
3. The first success after an outage is logged at WARNING, with the number of failures
   the outage counted, so the log shows where an outage started and ended.
4. It only logs: counting in ``stats``, events and ``strict`` are the façade's.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

__all__ = ["DEFAULT_WARNING_INTERVAL", "OutageLog"]

logger = logging.getLogger("acc")

DEFAULT_WARNING_INTERVAL = timedelta(seconds=60)
"""How often, at most, an ongoing outage is reported at WARNING (rule 2)."""


class OutageLog:
    """The log of one cache's storage outages (see the module docstring)."""

    __slots__ = ("failures", "in_outage", "interval", "last_warning", "unreported")

    def __init__(self, interval: timedelta = DEFAULT_WARNING_INTERVAL) -> None:
        self.interval = interval
        self.in_outage = False
        self.failures = 0
        """Failures counted in the current (or last) outage."""
        self.unreported = 0
        """Failures since the last WARNING."""
        self.last_warning: datetime | None = None

    def failed(self, cache: object, operation: str, exc: BaseException, now: datetime) -> None:
        """Report a failed storage ``operation`` of ``cache`` at ``now`` (rules 1, 2)."""
        if not self.in_outage:
            self.in_outage = True
            self.failures = 1
            self.unreported = 0
            self.last_warning = now
            logger.warning(
                "acc: %s failed on %r (%r); serving from the network until storage recovers",
                operation,
                cache,
                exc,
            )
            return
        self.failures += 1
        self.unreported += 1
        last = self.last_warning
        if last is None or now - last >= self.interval:
            logger.warning(
                "acc: storage of %r is still failing: %d more failure(s) since %s, the "
                "latest a %s (%r)",
                cache,
                self.unreported,
                "the last warning" if last is None else last.isoformat(timespec="seconds"),
                operation,
                exc,
            )
            self.unreported = 0
            self.last_warning = now
        else:
            logger.debug("acc: %s failed on %r (%r)", operation, cache, exc)

    def recovered(self, cache: object) -> None:
        """Report that storage of ``cache`` works again after an outage (rule 3)."""
        if not self.in_outage:
            return
        self.in_outage = False
        logger.warning(
            "acc: storage of %r is working again (%d failure(s) during the outage)",
            cache,
            self.failures,
        )
