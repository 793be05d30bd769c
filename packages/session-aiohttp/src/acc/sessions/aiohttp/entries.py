"""From a live aiohttp response to the entry acc stores: :func:`entry_from_response`.

The body is stored decoded (aiohttp has already undone ``Content-Encoding``), so the
framing headers that describe the bytes on the wire are replaced by a
``Content-Length`` that matches what is stored; credentials and ignored parameters are
redacted from everything kept (URLs, request headers, redirect hops).
"""

from __future__ import annotations

from typing import Any

from aiohttp import ClientResponse

from acc.core import CachedResponse, RedirectHop
from acc.core.keys import redact_headers, redact_url
from acc.core.models import utcnow

__all__ = ["entry_from_response"]

_UNSTORED_HEADERS = frozenset({"content-encoding", "transfer-encoding", "content-length"})


def entry_from_response(
    response: ClientResponse,
    body: bytes,
    *,
    expires: Any,
    ignored_params: frozenset[str],
) -> CachedResponse:
    """Build the stored form of a live response whose body was read (and decoded).

    The body is stored decoded, so ``Content-Encoding`` is dropped and ``Content-Length``
    is set to the stored length; credentials and ignored parameters are redacted.
    """
    headers = [(n, v) for n, v in response.headers.items() if n.lower() not in _UNSTORED_HEADERS]
    headers.append(("Content-Length", str(len(body))))
    history = tuple(
        RedirectHop(
            status=hop.status,
            reason=hop.reason or "",
            url=redact_url(str(hop.url), ignored_params),
            method=hop.method,
            headers=tuple(hop.headers.items()),
        )
        for hop in response.history
    )
    return CachedResponse(
        status=response.status,
        reason=response.reason or "",
        url=redact_url(str(response.url), ignored_params),
        method=response.method,
        headers=tuple(headers),
        request_headers=redact_headers(
            tuple(response.request_info.headers.items()), ignored_params
        ),
        body=body,
        created_at=utcnow(),
        expires=expires,
        history=history,
    )
