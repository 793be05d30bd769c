"""The entry codec: how a :class:`CachedResponse` becomes bytes and back. Never pickle.

Layout of an entry (all integers big-endian)::

    b"ACC" | version: u8 | flags: u8 | meta_len: u32 | body_len: u64
          | check: crc32 (4 bytes) or, with FLAG_SIGNED, hmac (32 bytes) | meta | body

* ``meta`` is a compact JSON array: a schema tag first, then every attrs field of
  :class:`CachedResponse` but the body, in declaration order. Each value has a plain
  JSON form chosen by the field's declared type (see :class:`_Schema`):
  datetimes are whole microseconds since the Unix epoch (UTC), so they round-trip
  exactly; header pairs are one flat list of strings; redirect hops are nested arrays.
  A positional array decodes several times faster than a keyed object through a
  generic converter, and the schema tag (a digest of the field names and types) makes
  an entry written by a build with other fields read as a miss instead of a muddle.
* ``body`` follows as it is, so decoding never re-encodes it and copies it once at most
  (one slice); not at all when the store hands it over as a part of its own
  (:meth:`Codec.decode_parts`); ``body_len`` lets a truncated unsigned entry be told
  from a shorter body;
* an integrity check follows the fixed header, in every entry: a CRC-32 when unsigned,
  an HMAC-SHA256 with ``FLAG_SIGNED``. Either covers that header, the cache key the entry
  is stored under, the metadata and the body, and is checked before anything else is
  parsed: a flipped bit, a truncation, or an entry moved to another key reads as a miss.
  The CRC-32 detects corruption, not forgery (anyone can compute one); only a signature
  tells an entry acc wrote from one someone else wrote. Checking it costs about a
  microsecond per kilobyte, once per decode.

*Records* (what the ``redirects`` store holds: a redirect alias naming the key of the
entry it stands for, or a vary record) have an envelope of their own, checked the same
way under the key they are stored under (:meth:`Codec.encode_record`)::

    b"ACR" | version: u8 | flags: u8 | payload_len: u32
          | check: crc32 (4 bytes) or, with FLAG_SIGNED, hmac (32 bytes) | payload

So an alias or a vary record written for one key, and moved or pointed elsewhere, reads
as a miss; with ``secret_key``, so does one that acc did not write.

Anything that is not a well-formed entry of a known version, signed by one of the
configured keys when keys are configured, raises :class:`DecodeError`. The façade turns
that into a miss: the caller never sees it. Entries of format version 1 (cattrs and a
JSON object) and 2 (no integrity check when unsigned) are such entries: after an upgrade
they are misses, fetched and stored again.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import json.scanner
import struct
import types
import typing
import zlib
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta, timezone
from itertools import chain
from typing import Any, Final

import attrs

from acc.core.errors import AccError
from acc.core.models import CachedResponse

__all__ = ["FORMAT_VERSION", "RECORD_VERSION", "Codec", "DecodeError"]

MAGIC: Final = b"ACC"
FORMAT_VERSION: Final = 3
FLAG_SIGNED: Final = 0x01
_HEADER: Final = struct.Struct(">3sBBIQ")
_HEADER_SIZE: Final = _HEADER.size
_DIGEST_SIZE: Final = 32
_CRC: Final = struct.Struct(">I")
_CRC_SIZE: Final = _CRC.size
RECORD_MAGIC: Final = b"ACR"
RECORD_VERSION: Final = 1
_RECORD_HEADER: Final = struct.Struct(">3sBBI")
_RECORD_HEADER_SIZE: Final = _RECORD_HEADER.size
_BODY_FIELD: Final = "body"

_EPOCH: Final = datetime(1970, 1, 1, tzinfo=timezone.utc)
_MICROSECOND: Final = timedelta(microseconds=1)

_dumps = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode
# The C scanner, without decode()'s Python wrapper (typeshed types its argument oddly).
_scan: Callable[[str, int], tuple[Any, int]] = json.scanner.make_scanner(
    json.JSONDecoder()  # type: ignore[arg-type]
)


def _loads(text: str) -> Any:
    """Parse one JSON document that fills ``text`` (no whitespace: the encoder writes none)."""
    value, end = _scan(text, 0)
    if end != len(text):
        raise ValueError("trailing data after the metadata")
    return value


class DecodeError(AccError):
    """Stored bytes are not a valid entry (corrupt, truncated, tampered or unknown)."""


# -- the metadata schema: one JSON form per field type, derived from attrs.fields -------------

_Dump = Callable[[Any], Any]
_Load = Callable[[Any], Any]


def _same(value: Any) -> Any:
    return value


def _checked(kind: type) -> _Load:
    def load(value: Any) -> Any:
        if type(value) is not kind:
            raise TypeError(f"expected {kind.__name__}, got {type(value).__name__}")
        return value

    return load


def _load_float(value: Any) -> float:
    if type(value) is not float and type(value) is not int:
        raise TypeError(f"expected a number, got {type(value).__name__}")
    return float(value)


def _dump_bytes(value: bytes) -> str:
    return value.decode("latin-1")


def _load_bytes(value: Any) -> bytes:
    if type(value) is not str:
        raise TypeError("expected bytes as latin-1 text")
    return value.encode("latin-1")


def _dump_datetime(value: datetime) -> int:
    """An aware datetime as whole microseconds since the epoch: exact, unlike a float."""
    return (value - _EPOCH) // _MICROSECOND


def _load_datetime(value: Any) -> datetime:
    if type(value) is not int:
        raise TypeError("datetimes must be integer microseconds")
    return _EPOCH + timedelta(0, 0, value)  # positional: measurably faster than keywords


def _dump_pairs(value: tuple[tuple[str, str], ...]) -> list[str]:
    return list(chain.from_iterable(value))


def _load_pairs(value: Any) -> tuple[tuple[str, str], ...]:
    """A flat list of strings back to pairs, checked at C speed (no per-pair Python)."""
    if type(value) is not list or len(value) % 2:
        raise TypeError("header pairs must be a flat list of strings")
    "".join(value)  # raises TypeError unless every item is a string
    items = iter(value)
    return tuple(zip(items, items, strict=True))  # even length: checked above


def _load_str_tuple(value: Any) -> tuple[str, ...]:
    if type(value) is not list:
        raise TypeError("expected a list of strings")
    "".join(value)  # raises TypeError unless every item is a string
    return tuple(value)


def _optional(dump: _Dump, load: _Load) -> tuple[_Dump, _Load]:
    def dump_optional(value: Any) -> Any:
        return None if value is None else dump(value)

    def load_optional(value: Any) -> Any:
        return None if value is None else load(value)

    return dump_optional, load_optional


_SCALARS: Final[dict[Any, tuple[_Dump, _Load]]] = {
    str: (_same, _checked(str)),
    int: (_same, _checked(int)),
    bool: (_same, _checked(bool)),
    float: (_same, _load_float),
    bytes: (_dump_bytes, _load_bytes),
    datetime: (_dump_datetime, _load_datetime),
    tuple[tuple[str, str], ...]: (_dump_pairs, _load_pairs),
    tuple[str, ...]: (list, _load_str_tuple),
}


def _converters(field_type: Any) -> tuple[_Dump, _Load]:
    """The JSON form of a field of ``field_type``: a dump and a checking load function."""
    if field_type in _SCALARS:
        return _SCALARS[field_type]
    origin, args = typing.get_origin(field_type), typing.get_args(field_type)
    if origin in (typing.Union, types.UnionType) and type(None) in args and len(args) == 2:
        inner = args[0] if args[1] is type(None) else args[1]
        return _optional(*_converters(inner))
    if origin is tuple and len(args) == 2 and args[1] is Ellipsis and attrs.has(args[0]):
        nested = _Schema(args[0], tagged=False)

        def dump_many(value: Any) -> list[Any]:
            return [nested.dump(item) for item in value]

        def load_many(value: Any) -> tuple[Any, ...]:
            if type(value) is not list:
                raise TypeError(f"expected a list of {args[0].__name__}")
            if not value:
                return ()
            return tuple(nested.load(item) for item in value)

        return dump_many, load_many
    raise TypeError(f"the codec cannot store a field of type {field_type!r}")


_INLINE_CHECKS: Final = {str: "str", int: "int", bool: "bool"}


class _Schema:
    """The positional JSON form of an attrs class, derived from its fields once.

    ``dump`` gives a list (the schema tag first when ``tagged``), ``load`` checks every
    value's type and builds the instance. Both are generated as straight-line code from
    the field list, as attrs does for ``__init__``: a loop over per-field callables costs
    more than the rest of a decode. A frozen, slotted class without a
    ``__attrs_post_init__`` is filled through its slot descriptors, skipping
    ``__init__``: the values are already of the declared types (checked here), and were
    produced by an instance whose converters and validators had run, so running them
    again would only cost time on every hit.

    Args:
        cls: The attrs class.
        skip: A field kept out of the metadata (the body), supplied to :meth:`load`.
        tagged: Whether the list starts with a digest of the field names and types.
    """

    def __init__(self, cls: type, *, skip: str | None = None, tagged: bool = True) -> None:
        hints = typing.get_type_hints(cls)
        fields = attrs.fields(cls)
        names = [f.name for f in fields]
        stored = [name for name in names if name != skip]
        signature = repr([(name, hints[name]) for name in names]).encode()
        tag = hashlib.sha256(signature).hexdigest()[:12] if tagged else None
        direct = "__slots__" in cls.__dict__ and not hasattr(cls, "__attrs_post_init__")
        namespace: dict[str, Any] = {"CLS": cls, "NEW": object.__new__, "TAG": tag}
        dumped: list[str] = ["TAG"] if tagged else []
        unpacked: list[str] = ["tag"] if tagged else []
        lines = [
            "def load(data, skipped=None):",
            f"    if type(data) is not list or len(data) != {len(stored) + bool(tagged)}:",
            "        raise TypeError('metadata does not have the fields of this schema')",
            f"    {', '.join([*unpacked, *(f'v_{n}' for n in stored)])}, = data",
        ]
        if tagged:
            lines += [
                "    if tag != TAG:",
                "        raise TypeError('metadata was written for other fields')",
            ]
        for name in stored:
            dump, load = _converters(hints[name])
            inline = _INLINE_CHECKS.get(hints[name])
            if dump is _same:
                dumped.append(f"value.{name}")
            else:
                namespace[f"D_{name}"] = dump
                dumped.append(f"D_{name}(value.{name})")
            if inline is not None:
                lines += [
                    f"    if type(v_{name}) is not {inline}:",
                    f"        raise TypeError('{name}: expected {inline}')",
                ]
            else:
                namespace[f"L_{name}"] = load
                lines.append(f"    v_{name} = L_{name}(v_{name})")
        values = {name: ("skipped" if name == skip else f"v_{name}") for name in names}
        if direct:
            lines.append("    obj = NEW(CLS)")
            for name in names:
                namespace[f"S_{name}"] = cls.__dict__[name].__set__
                lines.append(f"    S_{name}(obj, {values[name]})")
            lines.append("    return obj")
        else:
            arguments = ", ".join(f"{name}={values[name]}" for name in names)
            lines.append(f"    return CLS({arguments})")
        lines += ["", "def dump(value):", f"    return [{', '.join(dumped)}]"]
        exec(compile("\n".join(lines), f"<acc codec schema {cls.__name__}>", "exec"), namespace)
        self.cls = cls
        self.tag = tag
        self.positions = {name: index + bool(tagged) for index, name in enumerate(stored)}
        """Where each stored field is in the list ``dump`` makes."""
        self.dump: Callable[[Any], list[Any]] = namespace["dump"]
        """Return the JSON-ready list of a value's fields (without the skipped one)."""
        self.load: Callable[..., Any] = namespace["load"]
        """Build an instance from a list made by ``dump`` and the skipped field's value.

        Raises ``TypeError`` (wrong shape, tag or value types) or ``ValueError``.
        """


_RESPONSE_SCHEMA: Final = _Schema(CachedResponse, skip=_BODY_FIELD)
"""Built at import (about a millisecond), so the first hit of a process does not pay it."""


def _normalise_keys(secret_key: str | bytes | Sequence[str | bytes] | None) -> tuple[bytes, ...]:
    if secret_key is None:
        return ()
    if isinstance(secret_key, (str, bytes)):
        secret_key = [secret_key]
    return tuple(k.encode() if isinstance(k, str) else bytes(k) for k in secret_key)


def _key_field(key: str) -> bytes:
    encoded = key.encode("utf-8", "surrogatepass")
    return len(encoded).to_bytes(4, "big") + encoded


def _as_bytes(data: object) -> bytes:
    """``data`` as bytes if it is a bytes-like value; a store may hand back anything."""
    if isinstance(data, (bytes, bytearray, memoryview)):
        return bytes(data)
    raise DecodeError(f"stored value is a {type(data).__name__}, not bytes")


def _crc_matches(head: bytes, body: bytes | None, key: str) -> bool:
    """Whether the CRC-32 after the header in ``head`` covers it, ``key`` and ``body``.

    ``head`` is an unsigned entry (the caller has checked that it holds the header and
    the CRC), or, with ``body``, everything of it before ``body``.
    """
    view = memoryview(head)
    check = zlib.crc32(view[:_HEADER_SIZE])
    check = zlib.crc32(_key_field(key), check)
    check = zlib.crc32(view[_HEADER_SIZE + _CRC_SIZE :], check)
    if body is not None:
        check = zlib.crc32(body, check)
    stored: int = _CRC.unpack_from(head, _HEADER_SIZE)[0]
    return check == stored


def _head_and_body(parts: Sequence[bytes]) -> tuple[bytes, bytes]:
    """Everything but the last of ``parts`` (joined), and the last: all as ``bytes``."""
    checked = [part if type(part) is bytes else _as_bytes(part) for part in parts]
    if not checked:
        raise DecodeError("entry is empty")
    *heads, body = checked
    return (heads[0] if len(heads) == 1 else b"".join(heads)), body


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
        return b"".join(self.encode_parts(response, key=key))

    def encode_parts(self, response: CachedResponse, *, key: str = "") -> tuple[bytes, bytes]:
        """Return the entry of ``response`` as two parts: everything before the body, and it.

        Their concatenation is :meth:`encode`'s result. The body part is
        ``response.body`` itself, not a copy, so a store that can write the parts one
        after the other (:meth:`~acc.core.storage.BaseCache.write_parts`) stores a large
        body without a second full copy of it in memory.
        """
        # aiohttp decodes header bytes with "surrogateescape", so a server's non-UTF-8
        # header holds lone surrogates: "surrogatepass" keeps them, exactly.
        meta = _dumps(_RESPONSE_SCHEMA.dump(response)).encode("utf-8", "surrogatepass")
        body = response.body
        if not self._keys:
            header = _HEADER.pack(MAGIC, FORMAT_VERSION, 0, len(meta), len(body))
            check = zlib.crc32(_key_field(key), zlib.crc32(header))
            check = zlib.crc32(body, zlib.crc32(meta, check))
            return b"".join((header, _CRC.pack(check), meta)), body
        header = _HEADER.pack(MAGIC, FORMAT_VERSION, FLAG_SIGNED, len(meta), len(body))
        mac = hmac.new(self._keys[0], header, hashlib.sha256)
        mac.update(_key_field(key))
        mac.update(meta)
        mac.update(body)
        return b"".join((header, mac.digest(), meta)), body

    def encode_record(self, payload: bytes, *, key: str) -> bytes:
        """Return the stored form of a record (an alias, a vary record) kept under ``key``.

        Its check (CRC-32, or HMAC-SHA256 when signing) covers ``key``, so the record
        answers for that key only.
        """
        if not self._keys:
            header = _RECORD_HEADER.pack(RECORD_MAGIC, RECORD_VERSION, 0, len(payload))
            check = zlib.crc32(payload, zlib.crc32(_key_field(key), zlib.crc32(header)))
            return b"".join((header, _CRC.pack(check), payload))
        header = _RECORD_HEADER.pack(RECORD_MAGIC, RECORD_VERSION, FLAG_SIGNED, len(payload))
        mac = hmac.new(self._keys[0], header, hashlib.sha256)
        mac.update(_key_field(key))
        mac.update(payload)
        return b"".join((header, mac.digest(), payload))

    def decode_record(self, data: bytes, *, key: str) -> bytes:
        """Return the payload of a record read under ``key``.

        Raises:
            DecodeError: ``data`` is not a record of this codec written for ``key``
                (corrupt, moved from another key, unsigned or badly signed).
        """
        if type(data) is not bytes:
            data = _as_bytes(data)
        if len(data) < _RECORD_HEADER_SIZE:
            raise DecodeError("record is truncated")
        magic, version, flags, length = _RECORD_HEADER.unpack_from(data)
        if magic != RECORD_MAGIC:
            raise DecodeError("record has no acc header")
        if version != RECORD_VERSION:
            raise DecodeError(f"record version {version} is not supported")
        if flags not in (0, FLAG_SIGNED):
            raise DecodeError(f"record has unknown flags {flags:#x}")
        if bool(flags) != bool(self._keys):
            raise DecodeError(
                "record is signed but no secret_key is configured"
                if flags
                else "record is not signed but a secret_key is configured"
            )
        offset = _RECORD_HEADER_SIZE + (_DIGEST_SIZE if flags else _CRC_SIZE)
        if offset + length != len(data):
            raise DecodeError("record length does not match its header (truncated?)")
        view = memoryview(data)
        header, key_field = view[:_RECORD_HEADER_SIZE], _key_field(key)
        if flags:
            digest = view[_RECORD_HEADER_SIZE:offset]
            for secret in self._keys:
                mac = hmac.new(secret, header, hashlib.sha256)
                mac.update(key_field)
                mac.update(view[offset:])
                if hmac.compare_digest(mac.digest(), digest):
                    break
            else:
                raise DecodeError("record signature does not match any secret_key")
        else:
            check = zlib.crc32(view[offset:], zlib.crc32(key_field, zlib.crc32(header)))
            if check != _CRC.unpack_from(data, _RECORD_HEADER_SIZE)[0]:
                raise DecodeError("record checksum does not match (corrupt, or another key's)")
        return data[offset:]

    def head_size(self, prefix: bytes) -> int:
        """Where the body begins in an entry whose first bytes are ``prefix``; 0 if unknown.

        The :data:`~acc.core.storage.Splitter` the façade hands a store's
        :meth:`~acc.core.storage.BaseCache.read_parts`, so that a large body comes back
        as a ``bytes`` object of its own, which :meth:`decode_parts` uses as it is. It
        checks nothing (the decode does): a prefix that is not an entry's gets 0, do not
        split.
        """
        if len(prefix) < _HEADER_SIZE:
            return 0
        magic, version, flags, meta_len, _body_len = _HEADER.unpack_from(prefix)
        if magic != MAGIC or version != FORMAT_VERSION:
            return 0
        check_size = _DIGEST_SIZE if flags & FLAG_SIGNED else _CRC_SIZE
        size: int = _HEADER_SIZE + check_size + meta_len
        return size

    def decode(self, data: bytes, *, key: str = "") -> CachedResponse:
        """Return the response stored in ``data`` under ``key``.

        The body is one slice of ``data`` (a single copy, however large it is);
        :meth:`decode_parts` can do without even that one.

        Raises:
            DecodeError: ``data`` is not a valid entry for this codec (a value that is not
                bytes at all included).
        """
        return self.decode_parts((data,), key=key)

    def decode_parts(self, parts: Sequence[bytes], *, key: str = "") -> CachedResponse:
        """Return the response stored, under ``key``, in the concatenation of ``parts``.

        When the last part is exactly the body (a store cut the value where
        :meth:`head_size` said, or kept the parts it was written in), that very object
        becomes the response's body: nothing is copied, however large it is. Otherwise
        the parts are joined and the body is one slice of them. The check (CRC-32 or
        signature) covers every byte either way.

        Raises:
            DecodeError: The parts are not a valid entry for this codec (a part that is
                not bytes at all included).
        """
        if type(parts) is not tuple and type(parts) is not list:
            raise DecodeError(f"stored parts are a {type(parts).__name__}, not a sequence")
        if len(parts) == 1:
            head = parts[0]
            if type(head) is not bytes:
                head = _as_bytes(head)
            body: bytes | None = None
        else:
            head, body = _head_and_body(parts)
            if len(head) < _HEADER_SIZE:  # not cut at the body: one value
                head, body = b"".join((head, body)), None
        if len(head) < _HEADER_SIZE:
            raise DecodeError("entry is truncated")
        magic, version, flags, meta_len, body_len = _HEADER.unpack_from(head)
        if magic != MAGIC:
            raise DecodeError("entry has no acc header")
        if version != FORMAT_VERSION:
            raise DecodeError(f"entry format version {version} is not supported")
        if flags:
            if flags != FLAG_SIGNED:
                raise DecodeError(f"entry has unknown flags {flags:#x}")
            if not self._keys:
                raise DecodeError("entry is signed but no secret_key is configured")
            offset = _HEADER_SIZE + _DIGEST_SIZE
        elif self._keys:
            raise DecodeError("entry is not signed but a secret_key is configured")
        else:
            offset = _HEADER_SIZE + _CRC_SIZE
        meta_end = offset + meta_len
        if body is not None and (len(head) != meta_end or len(body) != body_len):
            head, body = b"".join((head, body)), None  # not cut at the body: one value
        if body is None and meta_end + body_len != len(head):
            raise DecodeError("entry length does not match its header (truncated?)")
        # ``head`` is the whole entry (``body`` None) or everything before ``body``: the
        # check covers head (its own check field skipped), the key, then ``body``.
        if flags:
            if not self._verify(head, body, offset, key):
                raise DecodeError("entry signature does not match any secret_key")
        elif not _crc_matches(head, body, key):
            raise DecodeError("entry checksum does not match (corrupt, or moved from another key)")
        try:
            meta = _loads(str(head[offset:meta_end], "utf-8", "surrogatepass"))
            if body is None:
                body = head[meta_end:]
            return _RESPONSE_SCHEMA.load(meta, body)  # type: ignore[no-any-return]
        except Exception as exc:  # any malformed metadata is a decode error, by design
            raise DecodeError(f"entry metadata is invalid: {exc}") from None

    def url_of(self, data: bytes, *, key: str = "") -> str:
        """Return the ``url`` of the entry stored in ``data`` under ``key``, without building it.

        For maintenance that lists URLs (:meth:`CacheBackend.urls
        <acc.core.backend.CacheBackend.urls>`): the entry is checked as :meth:`decode`
        checks it (header, length, checksum or signature, schema tag), so a corrupt,
        moved or forged entry raises here too; only the other fields are not built and
        the body is not copied.

        Raises:
            DecodeError: ``data`` is not a valid entry for this codec.
        """
        data, meta_start, meta_end = self._verified_meta(data, key)
        try:
            meta = _loads(str(data[meta_start:meta_end], "utf-8", "surrogatepass"))
            fields = len(_RESPONSE_SCHEMA.positions) + 1
            if type(meta) is not list or len(meta) != fields or meta[0] != _RESPONSE_SCHEMA.tag:
                raise TypeError("metadata was written for other fields")
            url = meta[_RESPONSE_SCHEMA.positions["url"]]
        except Exception as exc:  # any malformed metadata is a decode error, by design
            raise DecodeError(f"entry metadata is invalid: {exc}") from None
        if type(url) is not str:
            raise DecodeError("entry metadata is invalid: url: expected str")
        return url

    def _verified_meta(self, data: object, key: str) -> tuple[bytes, int, int]:
        """Check an entry's envelope and integrity: its bytes, where its metadata is."""
        data = data if type(data) is bytes else _as_bytes(data)
        assert isinstance(data, bytes)
        if len(data) < _HEADER_SIZE:
            raise DecodeError("entry is truncated")
        magic, version, flags, meta_len, body_len = _HEADER.unpack_from(data)
        if magic != MAGIC or version != FORMAT_VERSION or flags not in (0, FLAG_SIGNED):
            raise DecodeError("entry has no acc header of this format")
        if bool(flags) != bool(self._keys):
            raise DecodeError("entry signing does not match this codec's secret_key")
        offset = _HEADER_SIZE + (_DIGEST_SIZE if flags else _CRC_SIZE)
        if offset + meta_len + body_len != len(data):
            raise DecodeError("entry length does not match its header (truncated?)")
        if not (self._verify(data, None, offset, key) if flags else _crc_matches(data, None, key)):
            raise DecodeError("entry check does not match (corrupt, forged or moved)")
        return data, offset, offset + meta_len

    def expires_at(self, data: bytes) -> float | None:
        """Return the ``expires`` of an entry as epoch seconds, without building it.

        For stores that keep copies (:class:`~acc.core.storage.near.NearCache`) and must not
        keep one past its expiry. The signature is not checked: the copy is decoded,
        and so verified, when it is used.

        Raises:
            DecodeError: ``data`` is not an entry of this format.
        """
        try:
            magic, version, flags, meta_len, _body_len = _HEADER.unpack_from(data)
            if magic != MAGIC or version != FORMAT_VERSION:
                raise ValueError("not an entry of this format")
            offset = _HEADER_SIZE + (_DIGEST_SIZE if flags & FLAG_SIGNED else _CRC_SIZE)
            meta = _loads(str(data[offset : offset + meta_len], "utf-8", "surrogatepass"))
            micros = meta[_RESPONSE_SCHEMA.positions["expires"]]
        except Exception as exc:
            raise DecodeError(f"cannot read the expiry of the entry: {exc}") from None
        if micros is None:
            return None
        if type(micros) is not int:
            raise DecodeError("the expiry of the entry is not a number of microseconds")
        return micros / 1_000_000

    def _verify(self, head: bytes, body: bytes | None, offset: int, cache_key: str) -> bool:
        """Whether the signature in ``head`` covers it, ``cache_key`` and ``body``."""
        view = memoryview(head)
        signed_header = view[:_HEADER_SIZE]
        digest = view[_HEADER_SIZE:offset]
        key_field = _key_field(cache_key)
        rest = view[offset:]
        for key in self._keys:
            mac = hmac.new(key, signed_header, hashlib.sha256)
            mac.update(key_field)
            mac.update(rest)
            if body is not None:
                mac.update(body)
            if hmac.compare_digest(mac.digest(), digest):
                return True
        return False
