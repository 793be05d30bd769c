"""The entry codec: how a :class:`CachedResponse` becomes bytes and back. Never pickle.

Layout of an entry (all integers big-endian)::

    b"ACC" | version: u8 | flags: u8 | meta_len: u32 | body_len: u64
          | [hmac: 32 bytes] | meta | body

* ``meta`` is compact JSON of everything but the body, produced by a cattrs converter;
  datetimes are whole microseconds since the Unix epoch (UTC), so they round-trip exactly;
* ``body`` follows as it is, so decoding a large body does not copy or re-encode it;
  ``body_len`` lets a truncated unsigned entry be told from a shorter body;
* with ``FLAG_SIGNED`` an HMAC-SHA256 follows the fixed header; it covers that header,
  the cache key the entry is stored under, the metadata and the body, and is checked
  before anything else is parsed.

Anything that is not a well-formed entry of a known version, signed by one of the
configured keys when keys are configured, raises :class:`DecodeError`. The façade turns
that into a miss: the caller never sees it.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import struct
from collections.abc import Sequence
from datetime import datetime, timedelta, timezone
from typing import Any, Final

import cattrs

from acc.core.errors import AccError
from acc.core.models import CachedResponse, RedirectHop

__all__ = ["FORMAT_VERSION", "Codec", "DecodeError"]

MAGIC: Final = b"ACC"
FORMAT_VERSION: Final = 1
FLAG_SIGNED: Final = 0x01
_HEADER: Final = struct.Struct(">3sBBIQ")
_DIGEST_SIZE: Final = 32
_EPOCH: Final = datetime(1970, 1, 1, tzinfo=timezone.utc)
_MICROSECOND: Final = timedelta(microseconds=1)


class DecodeError(AccError):
    """Stored bytes are not a valid entry (corrupt, truncated, tampered or unknown)."""


def _to_micros(value: datetime) -> int:
    """An aware datetime as whole microseconds since the epoch: exact, unlike a float."""
    return (value - _EPOCH) // _MICROSECOND


def _from_micros(value: Any, _type: Any = None) -> datetime:
    if type(value) is not int:
        raise TypeError("datetimes must be integer microseconds")
    return _EPOCH + timedelta(microseconds=value)


def _make_converter() -> cattrs.Converter:
    converter = cattrs.Converter()
    converter.register_unstructure_hook(datetime, _to_micros)
    converter.register_structure_hook(datetime, _from_micros)
    pairs = tuple[tuple[str, str], ...]
    converter.register_unstructure_hook_func(
        lambda t: t == pairs, lambda headers: [list(p) for p in headers]
    )

    def structure_pairs(value: Any, _type: Any) -> tuple[tuple[str, str], ...]:
        out = []
        for pair in value:
            name, val = pair
            if not isinstance(name, str) or not isinstance(val, str):
                raise TypeError("header names and values must be strings")
            out.append((name, val))
        return tuple(out)

    converter.register_structure_hook_func(lambda t: t == pairs, structure_pairs)
    return converter


_converter = _make_converter()
_META_FIELDS = (
    "status",
    "reason",
    "url",
    "method",
    "headers",
    "request_headers",
    "created_at",
    "expires",
    "history",
)


def _normalise_keys(secret_key: str | bytes | Sequence[str | bytes] | None) -> tuple[bytes, ...]:
    if secret_key is None:
        return ()
    if isinstance(secret_key, (str, bytes)):
        secret_key = [secret_key]
    return tuple(k.encode() if isinstance(k, str) else bytes(k) for k in secret_key)


def _key_field(key: str) -> bytes:
    encoded = key.encode("utf-8", "surrogatepass")
    return len(encoded).to_bytes(4, "big") + encoded


class Codec:
    """Encodes and decodes entries, signing them when secret keys are given.

    Args:
        secret_key: ``None`` for unsigned entries; a key; or a list of keys for
            rotation, where the first signs and every one verifies.
    """

    __slots__ = ("_keys",)

    def __init__(self, secret_key: str | bytes | Sequence[str | bytes] | None = None) -> None:
        self._keys = _normalise_keys(secret_key)

    @property
    def signed(self) -> bool:
        """Whether entries are signed and only signed entries are accepted."""
        return bool(self._keys)

    def encode(self, response: CachedResponse, *, key: str = "") -> bytes:
        """Return the bytes of ``response``'s entry.

        Args:
            response: The response to encode.
            key: The cache key the entry is stored under. A signature covers it, so a
                signed entry copied onto another key does not verify there.
        """
        meta_dict = {
            "status": response.status,
            "reason": response.reason,
            "url": response.url,
            "method": response.method,
            "headers": _converter.unstructure(response.headers, tuple[tuple[str, str], ...]),
            "request_headers": _converter.unstructure(
                response.request_headers, tuple[tuple[str, str], ...]
            ),
            "created_at": _to_micros(response.created_at),
            "expires": None if response.expires is None else _to_micros(response.expires),
            "history": _converter.unstructure(response.history, tuple[RedirectHop, ...]),
        }
        # aiohttp decodes header bytes with "surrogateescape", so a server's non-UTF-8
        # header holds lone surrogates: "surrogatepass" keeps them, exactly.
        meta = json.dumps(meta_dict, separators=(",", ":"), ensure_ascii=False).encode(
            "utf-8", "surrogatepass"
        )
        body = response.body
        if not self._keys:
            header = _HEADER.pack(MAGIC, FORMAT_VERSION, 0, len(meta), len(body))
            return b"".join((header, meta, body))
        header = _HEADER.pack(MAGIC, FORMAT_VERSION, FLAG_SIGNED, len(meta), len(body))
        mac = hmac.new(self._keys[0], header, hashlib.sha256)
        mac.update(_key_field(key))
        mac.update(meta)
        mac.update(body)
        return b"".join((header, mac.digest(), meta, body))

    def decode(self, data: bytes, *, key: str = "") -> CachedResponse:
        """Return the response stored in ``data`` under ``key``.

        Raises:
            DecodeError: ``data`` is not a valid entry for this codec.
        """
        view = memoryview(data)
        if len(view) < _HEADER.size:
            raise DecodeError("entry is truncated")
        magic, version, flags, meta_len, body_len = _HEADER.unpack_from(view)
        if magic != MAGIC:
            raise DecodeError("entry has no acc header")
        if version != FORMAT_VERSION:
            raise DecodeError(f"entry format version {version} is not supported")
        if flags & ~FLAG_SIGNED:
            raise DecodeError(f"entry has unknown flags {flags:#x}")
        offset = _HEADER.size
        if flags & FLAG_SIGNED:
            if not self._keys:
                raise DecodeError("entry is signed but no secret_key is configured")
            digest = bytes(view[offset : offset + _DIGEST_SIZE])
            offset += _DIGEST_SIZE
            if len(digest) != _DIGEST_SIZE:
                raise DecodeError("entry is truncated")
            if not self._verify(view, digest, offset, key):
                raise DecodeError("entry signature does not match any secret_key")
        elif self._keys:
            raise DecodeError("entry is not signed but a secret_key is configured")
        meta_end = offset + meta_len
        if meta_end + body_len != len(view):
            raise DecodeError("entry length does not match its header (truncated?)")
        try:
            meta = json.loads(bytes(view[offset:meta_end]).decode("utf-8", "surrogatepass"))
            if not isinstance(meta, dict) or set(meta) != set(_META_FIELDS):
                raise ValueError("unexpected metadata fields")
            meta["body"] = bytes(view[meta_end:])
            return _converter.structure(meta, CachedResponse)
        except Exception as exc:  # any malformed metadata is a decode error, by design
            raise DecodeError(f"entry metadata is invalid: {exc}") from None

    def _verify(self, view: memoryview, digest: bytes, offset: int, cache_key: str) -> bool:
        signed_header = view[: _HEADER.size]
        key_field = _key_field(cache_key)
        rest = view[offset:]
        for key in self._keys:
            mac = hmac.new(key, signed_header, hashlib.sha256)
            mac.update(key_field)
            mac.update(rest)
            if hmac.compare_digest(mac.digest(), digest):
                return True
        return False
