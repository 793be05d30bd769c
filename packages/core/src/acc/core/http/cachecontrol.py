r"""Reading HTTP caching headers: ``Cache-Control`` directives, dates, entity tags, ``Vary``.

Everything here turns header text into values and never raises on what a server or a
caller sends: a header that cannot be read is reported as such (``None``, an invalid
marker), and the policy decides what that means.

Rules this module keeps:

1. ``Cache-Control`` is a comma-separated list of directives, ``name`` or
   ``name=value``, with the value a token or a quoted string (RFC 9111 §5.2). Names are
   case-insensitive; quoted values are unquoted, with ``\\`` escapes (RFC 9110 §5.6.4).
   Several ``Cache-Control`` field lines are one list (RFC 9110 §5.3).
2. When a directive appears more than once, its first occurrence counts (RFC 9111 §4.2.1
   lets a cache use the first).
3. A delta-seconds value is a non-negative integer (RFC 9111 §1.2.2); anything else is
   invalid, reported as :data:`INVALID`, which the policy treats as "already stale" for
   ``max-age`` (RFC 9111 §4.2.1, §5.2.2.1). Values too large to mean anything are
   capped at 2**31 seconds (RFC 9111 §1.2.2).
4. HTTP dates are read in all three formats of RFC 9110 §5.6.7 and are UTC; a date that
   cannot be read is ``None``.
5. Entity tags compare strongly or weakly as RFC 9110 §8.8.3.2 defines: weak comparison
   ignores the ``W/`` prefix; strong comparison requires both tags to be strong.
6. ``Vary`` names are case-insensitive (RFC 9110 §12.5.5); ``*`` means the response
   varies on more than request headers.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timezone
from email.utils import parsedate_to_datetime
from typing import Final

import attrs

from acc.core.models import HeaderPairs

__all__ = [
    "DELTA_SECONDS_CAP",
    "INVALID",
    "NO_DIRECTIVES",
    "Directives",
    "etags_match",
    "header_values",
    "parse_cache_control",
    "parse_delta_seconds",
    "parse_http_date",
    "vary_names",
]

DELTA_SECONDS_CAP: Final = 2**31
"""The largest delta-seconds value kept; greater ones are read as this (RFC 9111 §1.2.2)."""

INVALID: Final = -1
"""What :func:`parse_delta_seconds` returns for a value that is not delta-seconds."""


def header_values(headers: HeaderPairs, name: str) -> list[str]:
    """Every value of header ``name`` (case-insensitive), in order."""
    wanted = name.lower()
    return [value for key, value in headers if key.lower() == wanted]


def _split_list(text: str) -> list[str]:
    """Split a comma-separated list, keeping commas inside quoted strings."""
    items: list[str] = []
    current: list[str] = []
    quoted = escaped = False
    for char in text:
        if escaped:
            current.append(char)
            escaped = False
        elif quoted and char == "\\":
            current.append(char)
            escaped = True
        elif char == '"':
            current.append(char)
            quoted = not quoted
        elif char == "," and not quoted:
            items.append("".join(current))
            current = []
        else:
            current.append(char)
    items.append("".join(current))
    return [item.strip() for item in items if item.strip()]


def _unquote(value: str) -> str:
    value = value.strip()
    if len(value) >= 2 and value[0] == value[-1] == '"':
        inner = value[1:-1]
        out: list[str] = []
        escaped = False
        for char in inner:
            if escaped:
                out.append(char)
                escaped = False
            elif char == "\\":
                escaped = True
            else:
                out.append(char)
        return "".join(out)
    return value


def parse_delta_seconds(value: str | None) -> int:
    """Read a delta-seconds value (rule 3): seconds, or :data:`INVALID`."""
    if value is None:
        return INVALID
    text = value.strip()
    if not text.isascii() or not text.isdigit():
        return INVALID
    return min(int(text), DELTA_SECONDS_CAP)


@attrs.frozen(slots=True)
class Directives:
    """The directives of one message's ``Cache-Control``, names in lower case.

    A directive present without a value maps to ``None``. Accessors return what the
    policy needs: a flag, seconds, :data:`INVALID` for a present but unreadable value, or
    ``None`` for an absent directive.
    """

    items: tuple[tuple[str, str | None], ...] = ()

    def has(self, name: str) -> bool:
        """Whether directive ``name`` (lower case) is present."""
        return any(key == name for key, _ in self.items)

    def value(self, name: str) -> str | None:
        """The value of the first ``name`` directive, ``None`` if absent or bare."""
        for key, value in self.items:
            if key == name:
                return value
        return None

    def seconds(self, name: str) -> int | None:
        """Delta-seconds of directive ``name``: ``None`` if absent, else seconds/INVALID."""
        if not self.has(name):
            return None
        return parse_delta_seconds(self.value(name))

    @property
    def no_store(self) -> bool:
        """``no-store`` (RFC 9111 §5.2.1.5, §5.2.2.5)."""
        return self.has("no-store")

    @property
    def no_cache(self) -> bool:
        """``no-cache``, with or without field names (RFC 9111 §5.2.1.4, §5.2.2.4)."""
        return self.has("no-cache")

    @property
    def must_revalidate(self) -> bool:
        """``must-revalidate`` (RFC 9111 §5.2.2.2)."""
        return self.has("must-revalidate")

    @property
    def immutable(self) -> bool:
        """``immutable`` (RFC 8246 §2)."""
        return self.has("immutable")

    @property
    def only_if_cached(self) -> bool:
        """``only-if-cached`` (RFC 9111 §5.2.1.7)."""
        return self.has("only-if-cached")

    @property
    def max_age(self) -> int | None:
        """``max-age`` seconds (RFC 9111 §5.2.1.1, §5.2.2.1)."""
        return self.seconds("max-age")

    @property
    def min_fresh(self) -> int | None:
        """``min-fresh`` seconds (RFC 9111 §5.2.1.3)."""
        return self.seconds("min-fresh")

    @property
    def max_stale(self) -> int | None:
        """``max-stale`` seconds; a bare ``max-stale`` accepts any staleness: the cap.

        RFC 9111 §5.2.1.2: without a value the client accepts a stale response of any
        age. An unreadable value accepts none (``0``): staleness is never assumed.
        """
        if not self.has("max-stale"):
            return None
        raw = self.value("max-stale")
        if raw is None:
            return DELTA_SECONDS_CAP
        return max(parse_delta_seconds(raw), 0)

    @property
    def stale_while_revalidate(self) -> int | None:
        """``stale-while-revalidate`` seconds (RFC 5861 §3); unreadable counts as absent."""
        seconds = self.seconds("stale-while-revalidate")
        return None if seconds is None or seconds == INVALID else seconds

    @property
    def stale_if_error(self) -> int | None:
        """``stale-if-error`` seconds (RFC 5861 §4); unreadable counts as absent."""
        seconds = self.seconds("stale-if-error")
        return None if seconds is None or seconds == INVALID else seconds


NO_DIRECTIVES: Final = Directives()


def parse_cache_control(values: Iterable[str]) -> Directives:
    """Parse the ``Cache-Control`` field lines of a message (rules 1 and 2)."""
    items: list[tuple[str, str | None]] = []
    seen: set[str] = set()
    for line in values:
        for item in _split_list(line):
            name, sep, raw = item.partition("=")
            name = name.strip().lower()
            if not name or name in seen:
                continue
            seen.add(name)
            items.append((name, _unquote(raw) if sep else None))
    return Directives(tuple(items)) if items else NO_DIRECTIVES


def parse_http_date(value: str | None) -> datetime | None:
    """Read an HTTP date (rule 4) as an aware UTC datetime, or ``None``."""
    if not value:
        return None
    try:
        moment = parsedate_to_datetime(value.strip())
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if moment.tzinfo is None:
        return moment.replace(tzinfo=timezone.utc)
    try:
        return moment.astimezone(timezone.utc)
    except (OverflowError, ValueError):
        return None


def _opaque(tag: str) -> tuple[bool, str]:
    tag = tag.strip()
    if tag.startswith("W/"):
        return True, tag[2:]
    return False, tag


def etags_match(a: str, b: str, *, weak: bool) -> bool:
    """Compare two entity tags (rule 5), weakly or strongly."""
    weak_a, opaque_a = _opaque(a)
    weak_b, opaque_b = _opaque(b)
    if opaque_a != opaque_b:
        return False
    return weak or not (weak_a or weak_b)


def vary_names(headers: HeaderPairs) -> tuple[str, ...]:
    """The request header names a response varies on (rule 6): lower case, sorted, unique.

    ``("*",)`` when the list contains ``*``.
    """
    names: set[str] = set()
    for line in header_values(headers, "vary"):
        for item in _split_list(line):
            name = item.lower()
            if name == "*":
                return ("*",)
            names.add(name)
    return tuple(sorted(names))
