"""Variants: responses that differ by request headers named in ``Vary``.

A response with ``Vary`` is stored under a *variant key*: the request's primary key
(what :mod:`acc.core.keys` computes) extended with a hash of the varying header names and
the request's values of them. Under the primary key, the ``redirects`` store then holds a
small *vary record* naming those headers (and the variant keys written so far), so a
lookup that misses on ``responses`` learns which headers to key the variant by. A plain
response (no ``Vary``) keeps living under its primary key and costs one read.

Rules this module keeps:

1. Stored responses are selected by the request header fields ``Vary`` names; two
   requests' fields match after the transformations RFC 9111 §4.1 allows: field lines
   combined (RFC 9110 §5.3), whitespace around list commas and runs of whitespace
   normalised (a field sent on several lines is a list, where that whitespace is
   insignificant, RFC 9110 §5.6.1; so ``1,2``, ``1, 2`` and `` 1 ,  2`` match), and
   case ignored in fields whose values are case-insensitive (``Accept-Language``
   ranges, RFC 4647 §2; ``Accept-Charset``). The order of members is kept: it can
   carry a preference (RFC 9110 §12.5.4). An absent field matches only an absent field.
2. ``Vary: *`` always fails to match (RFC 9111 §4.1): such a response is never stored.
3. ``Accept-Encoding`` is left out of the variant: acc stores bodies decoded, so the
   stored response is right for every encoding the client accepts.
4. A vary record is told apart from a redirect alias (a key, as text) by its prefix.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from typing import Final

import attrs

from acc.core.http.cachecontrol import header_values, split_list, vary_names
from acc.core.models import HeaderPairs

__all__ = [
    "MAX_VARIANTS",
    "VaryRecord",
    "decode_vary_record",
    "encode_vary_record",
    "variant_key",
    "varying_headers",
]

_PREFIX: Final = b"acc-vary:1\n"
MAX_VARIANTS: Final = 64
"""How many variant keys a vary record remembers (for invalidation); oldest dropped."""

_NOT_VARYING: Final = frozenset({"accept-encoding"})
_CASE_INSENSITIVE: Final = frozenset({"accept-language", "accept-charset"})


@attrs.frozen(slots=True)
class VaryRecord:
    """What the ``redirects`` store holds under a primary key whose response varies."""

    names: tuple[str, ...]
    variants: tuple[str, ...] = ()


def varying_headers(headers: HeaderPairs) -> tuple[str, ...]:
    """The request header names a response varies on (rules 2 and 3); ``("*",)`` for ``*``."""
    names = vary_names(headers)
    if names == ("*",):
        return names
    return tuple(name for name in names if name not in _NOT_VARYING)


def _field_value(request_headers: HeaderPairs, name: str) -> str | None:
    """The request's value of field ``name``, normalised as rule 1 says."""
    values = header_values(request_headers, name)
    if not values:
        return None
    members = [" ".join(member.split()) for member in split_list(",".join(values))]
    value = ",".join(members)
    return value.lower() if name.lower() in _CASE_INSENSITIVE else value


def variant_key(primary: str, names: Iterable[str], request_headers: HeaderPairs) -> str:
    """The key of the variant of ``primary`` that a request with these headers selects."""
    digest = hashlib.sha256()
    for name in names:
        value = _field_value(request_headers, name)
        for part in (name, "\x00" if value is None else "=" + value):
            data = part.encode("utf-8", "surrogateescape")
            digest.update(len(data).to_bytes(8, "big") + data)
    return f"{primary}:vary:{digest.hexdigest()[:32]}"


def encode_vary_record(record: VaryRecord) -> bytes:
    """The bytes stored for ``record`` in the ``redirects`` store."""
    body = {"names": list(record.names), "variants": list(record.variants[-MAX_VARIANTS:])}
    return _PREFIX + json.dumps(body, separators=(",", ":")).encode()


def decode_vary_record(data: bytes) -> VaryRecord | None:
    """The vary record in ``data``, or ``None`` when ``data`` is an alias (rule 4)."""
    if not data.startswith(_PREFIX):
        return None
    try:
        body = json.loads(data[len(_PREFIX) :])
        names = tuple(str(name) for name in body["names"])
        variants = tuple(str(key) for key in body.get("variants", ()))
    except (ValueError, KeyError, TypeError):
        return VaryRecord(names=())
    return VaryRecord(names=names, variants=variants)
