"""From what the network answered to what acc stores, and the entries the flow makes up.

Rules this module keeps:

1. Bodies are stored decoded when the client decoded them: ``Content-Encoding`` then goes
   (it no longer describes the bytes), and ``Content-Length`` is set to the stored length.
   ``Transfer-Encoding`` describes the wire, never the stored bytes, so it always goes.
2. Credentials, ``credential_params`` and ``ignored_params`` are redacted from everything
   kept: the URL, the request headers, every redirect hop's URL, and the URL-bearing
   headers (``Location``, ``Content-Location``, the targets of ``Link``) of the response
   and of every hop, user info included. A URL-bearing header that cannot be parsed and
   names a redacted parameter is kept as ``REDACTED``.
3. A ``504 Gateway Timeout`` made up for ``only_if_cached`` carries no body and is never
   stored (RFC 9111 §5.2.1.7).
"""

from __future__ import annotations

import re
from datetime import datetime

from acc.core.flow.exchange import ResponseHead
from acc.core.keys import REDACTED, CREDENTIAL_HEADERS, redact_headers, redact_url
from acc.core.models import CachedResponse, HeaderPairs, RedirectHop

__all__ = ["entry_from_head", "gateway_timeout"]

_WIRE_HEADERS = frozenset({"transfer-encoding", "content-length"})
_DECODED_HEADERS = _WIRE_HEADERS | {"content-encoding"}
_URL_HEADERS = frozenset({"location", "content-location"})
_LINK_TARGET = re.compile(r"<([^>]*)>")


def _redacted_url(value: str, redacted_params: frozenset[str]) -> str:
    """A URL (absolute or relative) from a header, redacted; ``REDACTED`` if unreadable."""
    try:
        return redact_url(value, redacted_params)
    except ValueError:
        if "@" in value or any(name in value for name in redacted_params):
            return REDACTED
        return value


def _redact_response_headers(headers: HeaderPairs, redacted_params: frozenset[str]) -> HeaderPairs:
    """The headers with the URLs they carry redacted (rule 2)."""
    out: list[tuple[str, str]] = []
    for name, value in headers:
        lower = name.lower()
        if lower in _URL_HEADERS:
            value = _redacted_url(value, redacted_params)
        elif lower == "link" and "<" in value:
            value = _LINK_TARGET.sub(
                lambda match: f"<{_redacted_url(match.group(1), redacted_params)}>", value
            )
        out.append((name, value))
    return tuple(out)


def entry_from_head(
    head: ResponseHead,
    body: bytes,
    *,
    created_at: datetime,
    expires: datetime | None,
    redacted_params: frozenset[str],
    redacted_headers: frozenset[str] = CREDENTIAL_HEADERS,
) -> CachedResponse:
    """Build the stored form of a response whose body was read (rules 1 and 2).

    Args:
        head: The response.
        body: Its body, as read.
        created_at: When it was received.
        expires: When it stops being fresh.
        redacted_params: Query parameters whose values are redacted
            (``ignored_params`` and ``credential_params``).
        redacted_headers: Request headers (lower case) whose values are redacted.
    """
    dropped = _DECODED_HEADERS if head.body_decoded else _WIRE_HEADERS
    headers = [
        (n, v)
        for n, v in _redact_response_headers(head.headers, redacted_params)
        if n.lower() not in dropped
    ]
    headers.append(("Content-Length", str(len(body))))
    history = tuple(
        RedirectHop(
            status=hop.status,
            reason=hop.reason,
            url=redact_url(hop.url, redacted_params),
            method=hop.method,
            headers=_redact_response_headers(hop.headers, redacted_params),
        )
        for hop in head.history
    )
    return CachedResponse(
        status=head.status,
        reason=head.reason,
        url=redact_url(head.url, redacted_params),
        method=head.method.upper(),
        headers=tuple(headers),
        request_headers=redact_headers(head.request_headers, frozenset(), redacted_headers),
        body=body,
        created_at=created_at,
        expires=expires,
        history=history,
    )


def gateway_timeout(
    method: str, url: str, *, created_at: datetime, redacted_params: frozenset[str]
) -> CachedResponse:
    """The ``504`` answer to an ``only_if_cached`` request the cache cannot serve (rule 3)."""
    return CachedResponse(
        status=504,
        reason="Gateway Timeout",
        url=redact_url(url, redacted_params),
        method=method.upper(),
        headers=(("Content-Length", "0"),),
        created_at=created_at,
    )
