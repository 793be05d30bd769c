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
4. HTTP dates are read in exactly the three formats of RFC 9110 §5.6.7 (IMF-fixdate,
   rfc850-date, asctime-date), always UTC; anything else (another zone, ``UTC`` for
   ``GMT``, a 2-digit year outside rfc850-date, a missing comma, doubled spaces, dashes
   or dots where the grammar has spaces or colons, a 1-digit hour) cannot be read and is
   ``None``, which for ``Expires`` means already expired (RFC 9111 §5.3). Day and month
   names and ``GMT`` are matched without regard to case, the one leniency kept (RFC 9110
   §5.6.7 asks recipients to be robust). A 2-digit rfc850 year more than 50 years ahead
   of the reference moment is taken in the previous century (RFC 9110 §5.6.7).
5. Entity tags compare strongly or weakly as RFC 9110 §8.8.3.2 defines: weak comparison
   ignores the ``W/`` prefix; strong comparison requires both tags to be strong.
6. ``Vary`` names are case-insensitive (RFC 9110 §12.5.5); ``*`` means the response
   varies on more than request headers.
7. ``Age`` is a singleton, but a list-based value (or several field lines) is read by its
   first member (RFC 9111 §5.1); a first member that is not delta-seconds is reported as
   :data:`INVALID`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import datetime, timezone
from typing import Final

import attrs

from acc.core.models import HeaderPairs

__all__ = [
    "DELTA_SECONDS_CAP",
    "INVALID",
    "NO_DIRECTIVES",
    "Directives",
    "age_value",
    "etags_match",
    "header_values",
    "split_list",
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


def split_list(text: str) -> list[str]:
    """Split a comma-separated list into its members, stripped, empty ones dropped.

    Commas inside quoted strings do not split (RFC 9110 §5.6.1, §5.6.4).
    """
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
    def must_understand(self) -> bool:
        """``must-understand`` (RFC 9111 §5.2.2.3)."""
        return self.has("must-understand")

    @property
    def public(self) -> bool:
        """``public`` (RFC 9111 §5.2.2.9)."""
        return self.has("public")

    @property
    def private(self) -> bool:
        """``private``, with or without field names (RFC 9111 §5.2.2.7)."""
        return self.has("private")

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
        for item in split_list(line):
            name, sep, raw = item.partition("=")
            name = name.strip().lower()
            if not name or name in seen:
                continue
            seen.add(name)
            items.append((name, _unquote(raw) if sep else None))
    return Directives(tuple(items)) if items else NO_DIRECTIVES


_MONTHS: Final = {
    name: number
    for number, name in enumerate(
        ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"), 1
    )
}
_TIME = r"(?P<hour>\d{2}):(?P<minute>\d{2}):(?P<second>\d{2})"
_MONTH = r"(?P<month>[A-Za-z]{3})"
_IMF_FIXDATE: Final = re.compile(
    rf"(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun), (?P<day>\d{{2}}) {_MONTH} (?P<year>\d{{4}}) {_TIME} GMT",
    re.IGNORECASE | re.ASCII,
)
_RFC850_DATE: Final = re.compile(
    r"(?:Monday|Tuesday|Wednesday|Thursday|Friday|Saturday|Sunday), "
    rf"(?P<day>\d{{2}})-{_MONTH}-(?P<year>\d{{2}}) {_TIME} GMT",
    re.IGNORECASE | re.ASCII,
)
_ASCTIME_DATE: Final = re.compile(
    rf"(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun) {_MONTH} (?P<day>\d{{2}}| \d) {_TIME} (?P<year>\d{{4}})",
    re.IGNORECASE | re.ASCII,
)


def _two_digit_year(yy: int, reference: datetime | None) -> int:
    """The year of an rfc850-date: never more than 50 years ahead (RFC 9110 §5.6.7)."""
    if reference is None:
        # No reference moment given: the usual pivot (70-99 are 19xx, 00-69 are 20xx).
        return 1900 + yy if yy >= 70 else 2000 + yy
    base = reference.year
    year = base - base % 100 + yy
    return year - 100 if year > base + 50 else year


def parse_http_date(value: str | None, *, reference: datetime | None = None) -> datetime | None:
    """Read an HTTP-date (rule 4) as an aware UTC datetime, or ``None``.

    Args:
        value: The field value.
        reference: The moment a 2-digit rfc850 year is read against (the time the
            message was received); without it, years 70-99 are 19xx and 00-69 are 20xx.
    """
    if not value:
        return None
    text = value.strip(" \t")
    match = (
        _IMF_FIXDATE.fullmatch(text)
        or _RFC850_DATE.fullmatch(text)
        or _ASCTIME_DATE.fullmatch(text)
    )
    if match is None:
        return None
    month = _MONTHS.get(match["month"].lower())
    if month is None:
        return None
    year = int(match["year"])
    if len(match["year"]) == 2:
        year = _two_digit_year(year, reference)
    second = min(int(match["second"]), 59)  # a leap second reads as :59
    try:
        return datetime(
            year,
            month,
            int(match["day"]),
            int(match["hour"]),
            int(match["minute"]),
            second,
            tzinfo=timezone.utc,
        )
    except ValueError:  # 31 Feb, hour 25, ...
        return None


def age_value(headers: HeaderPairs) -> int | None:
    """The ``Age`` of a message (rule 7): seconds, :data:`INVALID`, or ``None`` if absent."""
    values = header_values(headers, "age")
    if not values:
        return None
    members = split_list(", ".join(values))
    if not members:
        return INVALID
    return parse_delta_seconds(members[0])


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
        for item in split_list(line):
            name = item.lower()
            if name == "*":
                return ("*",)
            names.add(name)
    return tuple(sorted(names))
