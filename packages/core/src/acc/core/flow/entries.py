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
4. ``Set-Cookie`` is stored only with ``store_cookies=True``: by default it is dropped
   from what is stored (the final response and every redirect hop), and from entries
   read back that carry it, so one request's cookies never reach another session. The
   caller of the request that fetched the response still gets its own cookies.
5. An entry is served only if a client binding can turn it into its response object
   without an error (:func:`unservable`): a three-digit status, a method that is a token,
   an absolute ``http(s)`` URL that every client's URL parser takes, and header text
   that encodes back to the bytes it came from. The same check runs before an entry is
   stored, so what is stored can be served; an entry read from storage that fails it is
   a miss (the façade deletes it), whoever wrote it.
"""

from __future__ import annotations

import ipaddress
import re
from datetime import datetime
from functools import lru_cache
from itertools import chain
from urllib.parse import urlsplit

import attrs

from acc.core.flow.exchange import ResponseHead
from acc.core.keys import CREDENTIAL_HEADERS, REDACTED, redact_headers, redact_url
from acc.core.models import CachedResponse, HeaderPairs, RedirectHop

__all__ = ["carries_cookies", "entry_from_head", "gateway_timeout", "unservable", "without_cookies"]

_WIRE_HEADERS = frozenset({"transfer-encoding", "content-length"})
_DECODED_HEADERS = _WIRE_HEADERS | {"content-encoding"}
_URL_HEADERS = frozenset({"location", "content-location"})
_COOKIE_HEADERS = frozenset({"set-cookie", "set-cookie2"})
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
    headers = []
    for name, value in head.headers:  # rule 2 as _redact_response_headers, in the same pass
        lower = name.lower()
        if lower in dropped:
            continue
        if lower in _URL_HEADERS:
            value = _redacted_url(value, redacted_params)
        elif lower == "link" and "<" in value:
            value = _LINK_TARGET.sub(
                lambda match: f"<{_redacted_url(match.group(1), redacted_params)}>", value
            )
        headers.append((name, value))
    headers.append(("Content-Length", str(len(body))))
    history = (
        tuple(
            RedirectHop(
                status=hop.status,
                reason=hop.reason,
                url=redact_url(hop.url, redacted_params),
                method=hop.method,
                headers=_redact_response_headers(hop.headers, redacted_params),
            )
            for hop in head.history
        )
        if head.history
        else ()
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


_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+\Z")
_URL_CHARS = re.compile(r"[\x21-\x7e\x80-\ud7ff\ue000-\U0010ffff]+\Z")
"""Visible ASCII and non-ASCII text: no controls, no space, no surrogate."""
_IPV4_LIKE = re.compile(r"[0-9]+\.[0-9]+\.[0-9]+\.[0-9]+\Z")
_HOST = re.compile(r"[A-Za-z0-9._~-]+\Z|\[[0-9A-Fa-f:.]+\]\Z")
_PLAIN_URL = re.compile(r"(?i:https?)://([A-Za-z0-9._~:-]+)(?:[/?#]|\Z)")
"""An http(s) URL whose netloc is a plain host and port: what ``urlsplit`` would find."""
_MAX_URL = 65536
"""The longest URL kept (httpx refuses longer ones)."""


@lru_cache(maxsize=4096)
def _url_problem(url: str) -> str | None:
    """Why a client could not parse ``url`` as the URL of a response, or ``None`` (rule 5).

    Stored URLs are what clients produced (ASCII, an IDNA host): an ``http(s)`` URL with
    a host of letters, digits and ``.-_~`` (a valid IPv4 address if it looks like one,
    punycode labels that decode) or a valid IPv6 literal, a port that is a number, no
    user info, no control character or space.
    """
    if len(url) > _MAX_URL:
        return "the URL is too long"
    if not _URL_CHARS.match(url):
        return "the URL holds a control character, a space or a surrogate"
    plain = _PLAIN_URL.match(url)
    if plain is not None:  # most URLs: the host and port are known without parsing
        return _netloc_problem(plain.group(1))
    try:
        parts = urlsplit(url)
    except ValueError as exc:
        return f"the URL does not parse ({exc})"
    if parts.scheme.lower() not in ("http", "https"):
        return "the URL is not http(s)"
    return _netloc_problem(parts.netloc)


@lru_cache(maxsize=1024)
def _netloc_problem(netloc: str) -> str | None:
    """What :func:`_url_problem` finds wrong with a URL's host and port (few: remembered)."""
    try:
        urlsplit(f"http://{netloc}").port  # noqa: B018 - ValueError: a port that is no number
    except ValueError as exc:
        return f"the URL does not parse ({exc})"
    host = netloc[: netloc.find("]") + 1] if netloc.startswith("[") else netloc.partition(":")[0]
    if "@" in netloc or not _HOST.match(host) or netloc[len(host) : len(host) + 1] not in ("", ":"):
        return "the URL has no valid host"
    try:
        if host.startswith("["):
            ipaddress.IPv6Address(host[1:-1])
        elif _IPV4_LIKE.match(host):
            ipaddress.IPv4Address(host)
        elif "xn--" in host.lower():
            host.encode("ascii").decode("idna")
    except (ValueError, UnicodeError):
        return "the URL's host is not a valid address or name"
    return None


def _pairs_problem(*pairs: HeaderPairs) -> str | None:
    text = "".join(chain.from_iterable(chain.from_iterable(pairs)))
    if text.isascii():  # the common case: nothing to encode
        return None
    try:
        text.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:
        return "a header holds a surrogate that is not an undecodable byte"
    return None


def _has_cookie(headers: HeaderPairs) -> bool:
    for name, _value in headers:  # a loop: twice as fast as any() over a generator
        if (len(name) == 10 or len(name) == 11) and name.lower() in _COOKIE_HEADERS:
            return True
    return False


def carries_cookies(entry: CachedResponse) -> bool:
    """Whether ``entry`` or one of its redirect hops sets a cookie (rule 4)."""
    if _has_cookie(entry.headers):
        return True
    return any(_has_cookie(hop.headers) for hop in entry.history) if entry.history else False


def _cookieless(headers: HeaderPairs) -> HeaderPairs:
    return tuple((name, value) for name, value in headers if name.lower() not in _COOKIE_HEADERS)


def without_cookies(entry: CachedResponse) -> CachedResponse:
    """``entry`` without ``Set-Cookie``, in the response and in every hop (rule 4)."""
    if not carries_cookies(entry):
        return entry
    hops = tuple(attrs.evolve(hop, headers=_cookieless(hop.headers)) for hop in entry.history)
    return attrs.evolve(entry, headers=_cookieless(entry.headers), history=hops)


def unservable(entry: CachedResponse | RedirectHop) -> str | None:
    """Why a binding could not build a response from ``entry``, or ``None`` (rule 5)."""
    if not 100 <= entry.status <= 999:
        return f"status {entry.status} is not a three-digit number"
    if entry.method not in _METHODS and not _TOKEN.match(entry.method):
        return "the method is not a token"
    problem = _url_problem(entry.url)
    if problem is not None:
        return problem
    if isinstance(entry, RedirectHop):
        return _pairs_problem(entry.headers)
    problem = _pairs_problem(entry.headers, entry.request_headers)
    for hop in entry.history:
        problem = problem or unservable(hop)
    return problem


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
