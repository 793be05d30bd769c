"""The entry codec (acc.core.codec): exact round trips, and nothing else decodes."""

from __future__ import annotations

import json
import struct
import zlib
from datetime import datetime, timedelta, timezone

import attrs
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from acc.core.codec import FORMAT_VERSION, Codec, DecodeError
from acc.core.errors import AccError
from acc.core.models import CachedResponse, RedirectHop

CREATED = datetime(2024, 5, 17, 12, 30, 15, 123456, tzinfo=timezone.utc)
BODY = b"\x00\x01binary\x00body\xff\xfe" + bytes(range(256)) + b"\x00" * 16


def full_response(*, expires: datetime | None = CREATED + timedelta(hours=1)) -> CachedResponse:
    return CachedResponse(
        status=200,
        reason="OK",
        url="https://example.com/final?q=caf%C3%A9",
        method="GET",
        headers=[
            ("Content-Type", "application/octet-stream"),
            ("Content-Length", str(len(BODY))),
            ("Set-Cookie", "a=1; Path=/"),
            ("Set-Cookie", "b=2; HttpOnly"),
            ("ETag", '"v1"'),
            ("Last-Modified", "Wed, 21 Oct 2015 07:28:00 GMT"),
            ("X-Unicode", "café ☕ 😀 日本語"),
            ("X-Latin1-From-Server", "caf\udce9"),  # what aiohttp makes of a latin-1 byte
            ("x-lower", ""),
        ],
        request_headers=[("Accept", "*/*"), ("Authorization", "REDACTED")],
        body=BODY,
        created_at=CREATED,
        expires=expires,
        history=[
            RedirectHop(
                301,
                "Moved Permanently",
                "http://example.com/start",
                "GET",
                [("Location", "https://example.com/start")],
            ),
            RedirectHop(
                302,
                "Found",
                "https://example.com/start",
                "GET",
                [("Location", "/final?q=caf%C3%A9"), ("Set-Cookie", "r=1")],
            ),
        ],
    )


@pytest.mark.parametrize("expires", [None, CREATED + timedelta(hours=1)], ids=["never", "set"])
@pytest.mark.parametrize("secret_key", [None, "s3cret"], ids=["unsigned", "signed"])
def test_full_round_trip(expires: datetime | None, secret_key: str | None) -> None:
    codec = Codec(secret_key)
    response = full_response(expires=expires)
    decoded = codec.decode(codec.encode(response))
    assert decoded == response
    assert decoded.body == BODY
    assert decoded.cookies == ("a=1; Path=/", "b=2; HttpOnly")
    assert decoded.history[1].headers == (("Location", "/final?q=caf%C3%A9"), ("Set-Cookie", "r=1"))
    assert decoded.expires == expires
    assert decoded.created_at.tzinfo is not None
    assert codec.signed is (secret_key is not None)


def test_round_trip_keeps_extreme_datetimes_exactly() -> None:
    codec = Codec()
    latest = datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=timezone.utc)
    for moment in (
        latest,
        datetime(3000, 1, 1, 0, 0, 0, 1, tzinfo=timezone.utc),
        datetime(1, 1, 1, 0, 0, 0, 1, tzinfo=timezone.utc),
        datetime(2024, 1, 1, 12, 0, tzinfo=timezone(timedelta(hours=-7))),
    ):
        response = CachedResponse(200, "OK", "https://x/", "GET", created_at=moment, expires=moment)
        decoded = codec.decode(codec.encode(response))
        assert decoded.created_at == moment
        assert decoded.expires == moment
        assert decoded.created_at.utcoffset() == timedelta(0)


def test_body_is_stored_verbatim_and_nothing_is_pickled() -> None:
    body = b"\x80\x04\x95 looks-like-pickle \x00\x00 and NULs " + BODY
    response = CachedResponse(200, "OK", "https://x/", "GET", body=body, created_at=CREATED)
    for codec, mac_size in ((Codec(), 4), (Codec("k"), 32)):
        data = codec.encode(response)
        magic, version, _flags, meta_len, body_len = struct.unpack_from(">3sBBIQ", data)
        assert (magic, version, body_len) == (b"ACC", FORMAT_VERSION, len(body))
        meta_start = struct.calcsize(">3sBBIQ") + mac_size
        meta = data[meta_start : meta_start + meta_len]
        # The metadata is a plain JSON array (no pickle stream, no base64 body in it): a
        # schema tag, then every field but the body, in declaration order ...
        fields = json.loads(meta)
        assert isinstance(fields, list)
        names = [f.name for f in attrs.fields(CachedResponse) if f.name != "body"]
        assert len(fields) == 1 + len(names)
        assert fields[1 + names.index("status")] == 200
        assert fields[1 + names.index("url")] == "https://x/"
        assert b"looks-like-pickle" not in meta
        assert not meta.startswith(b"\x80")  # a pickle protocol 2+ stream starts so
        # ... and the body follows as it is: no base64, no escaping.
        assert data[meta_start + meta_len :] == body
        assert data.count(body) == 1


# -- hypothesis: arbitrary responses round-trip ----------------------------------------------

TEXT = st.text(max_size=20)  # any code point, lone surrogates included
PAIRS = st.lists(st.tuples(TEXT, TEXT), max_size=6)
TIMEZONES = st.builds(
    lambda minutes: timezone(timedelta(minutes=minutes)), st.integers(-23 * 60, 23 * 60)
)
# A local time near datetime.min/max with an offset is an instant UTC cannot represent.
MOMENTS = st.datetimes(
    min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30), timezones=TIMEZONES
)
HOPS = st.builds(
    RedirectHop,
    status=st.integers(100, 599),
    reason=TEXT,
    url=TEXT,
    method=TEXT,
    headers=PAIRS,
)
RESPONSES = st.builds(
    CachedResponse,
    status=st.integers(100, 599),
    reason=TEXT,
    url=TEXT,
    method=TEXT,
    headers=PAIRS,
    request_headers=PAIRS,
    body=st.binary(max_size=512),
    created_at=MOMENTS,
    expires=st.none() | MOMENTS,
    history=st.lists(HOPS, max_size=3),
)


@given(response=RESPONSES, secret_key=st.none() | st.text(min_size=1) | st.binary(min_size=1))
def test_arbitrary_responses_round_trip(
    response: CachedResponse, secret_key: str | bytes | None
) -> None:
    codec = Codec(secret_key)
    data = codec.encode(response)
    assert codec.decode(data) == response
    assert data.endswith(response.body)


@given(data=st.binary(max_size=300))
def test_arbitrary_bytes_decode_or_raise_decode_error(data: bytes) -> None:
    for codec in (Codec(), Codec("k")):
        try:
            result = codec.decode(data)
        except DecodeError:
            continue
        assert isinstance(result, CachedResponse)  # pragma: no cover - practically never


def _framed(
    meta: bytes, body: bytes = b"", *, version: int = FORMAT_VERSION, key: str = ""
) -> bytes:
    """An unsigned entry around ``meta`` and ``body`` with a valid CRC-32 under ``key``."""
    header = struct.pack(">3sBBIQ", b"ACC", version, 0, len(meta), len(body))
    key_field = len(key.encode()).to_bytes(4, "big") + key.encode()
    check = zlib.crc32(header + key_field + meta + body)
    return header + struct.pack(">I", check) + meta + body


_META_AT = struct.calcsize(">3sBBIQ") + 4  # after the header and the unsigned CRC-32


@given(meta=st.binary(max_size=300), body=st.binary(max_size=20))
def test_well_framed_garbage_metadata_raises_decode_error(meta: bytes, body: bytes) -> None:
    # Past the framing checks, straight into the metadata parser.
    data = _framed(meta, body)
    try:
        result = Codec().decode(data)
    except DecodeError:
        return
    assert isinstance(result, CachedResponse)  # pragma: no cover


JSONISH = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=5),
    lambda c: st.lists(c, max_size=3) | st.dictionaries(st.text(max_size=5), c, max_size=3),
    max_leaves=8,
)


def _schema_tag() -> str:
    data = Codec().encode(CachedResponse(200, "OK", "https://x/", "GET", created_at=CREATED))
    meta_len = struct.unpack_from(">3sBBIQ", data)[3]
    tag = json.loads(data[_META_AT : _META_AT + meta_len])[0]
    assert isinstance(tag, str)
    return tag


_META_WIDTH = len(attrs.fields(CachedResponse))  # the fields but the body, plus the tag


@settings(max_examples=300)
@given(values=st.lists(JSONISH, min_size=_META_WIDTH - 1, max_size=_META_WIDTH - 1))
def test_metadata_with_wrong_types_raises_decode_error(values: list[object]) -> None:
    # The right tag and width, arbitrary JSON values: past every check but the types.
    meta = json.dumps([_schema_tag(), *values]).encode()
    data = _framed(meta)
    try:
        result = Codec().decode(data)
    except DecodeError:
        return
    # If it decodes at all, it decodes to a valid response.
    assert isinstance(result, CachedResponse)
    assert result.created_at.tzinfo is not None


def _meta_of(response: CachedResponse) -> list[object]:
    data = Codec().encode(response)
    meta_len = struct.unpack_from(">3sBBIQ", data)[3]
    meta = json.loads(data[_META_AT : _META_AT + meta_len])
    assert isinstance(meta, list)
    return meta


def _entry(meta: list[object], body: bytes = b"") -> bytes:
    return _framed(json.dumps(meta).encode(), body)


def test_metadata_for_other_fields_is_a_decode_error() -> None:
    # An entry written by a build whose CachedResponse had other fields (another tag)
    # or another number of fields is a miss, never a response with shifted values.
    meta = _meta_of(full_response())
    with pytest.raises(DecodeError, match="other fields"):
        Codec().decode(_entry(["0" * 12, *meta[1:]]))
    with pytest.raises(DecodeError, match="fields"):
        Codec().decode(_entry([*meta, "extra"]))
    with pytest.raises(DecodeError, match="fields"):
        Codec().decode(_entry(meta[:-1]))


@pytest.mark.parametrize(
    ("name", "bad"),
    [
        ("status", "200"),
        ("status", True),
        ("reason", 1),
        ("headers", ["odd"]),
        ("headers", ["name", 1]),
        ("headers", [["name", "value"]]),
        ("created_at", 1.5),
        ("created_at", 10**30),
        ("expires", "soon"),
        ("history", [[301, "Moved"]]),
        ("history", {}),
    ],
)
def test_each_wrong_value_is_a_decode_error(name: str, bad: object) -> None:
    names = [f.name for f in attrs.fields(CachedResponse) if f.name != "body"]
    meta = _meta_of(full_response())
    meta[1 + names.index(name)] = bad
    with pytest.raises(DecodeError, match="invalid"):
        Codec().decode(_entry(meta))


def test_format_1_entries_are_misses() -> None:
    # The envelope of format 1 (cattrs and a JSON object): read as a decode error, i.e. a
    # miss that is fetched and stored again, never an exception to the caller.
    meta = json.dumps({"status": 200, "reason": "OK"}).encode()
    with pytest.raises(DecodeError, match="version 1"):
        Codec().decode(_framed(meta, version=1))


def test_body_is_one_slice_of_the_entry() -> None:
    body = bytes(range(256)) * 4096  # 1 MiB
    codec = Codec()
    decoded = codec.decode(codec.encode(CachedResponse(200, "OK", "u", "GET", body=body)))
    assert type(decoded.body) is bytes
    assert decoded.body == body


# -- what must not decode ----------------------------------------------------------------------


@pytest.mark.parametrize("secret_key", [None, "s3cret"], ids=["unsigned", "signed"])
def test_every_truncation_raises_decode_error(secret_key: str | None) -> None:
    codec = Codec(secret_key)
    data = codec.encode(full_response())
    for length in range(len(data)):
        with pytest.raises(DecodeError):
            codec.decode(data[:length])


@pytest.mark.parametrize("secret_key", [None, "s3cret"], ids=["unsigned", "signed"])
def test_trailing_bytes_raise_decode_error(secret_key: str | None) -> None:
    codec = Codec(secret_key)
    with pytest.raises(DecodeError):
        codec.decode(codec.encode(full_response()) + b"x")


@pytest.mark.parametrize("mask", [0x01, 0x80, 0xFF])
def test_flipping_any_byte_of_a_signed_entry_raises_decode_error(mask: int) -> None:
    codec = Codec(["s3cret", "older"])
    response = CachedResponse(
        200,
        "OK",
        "https://x/",
        "GET",
        headers=[("ETag", '"1"')],
        body=b"\x00body\x00",
        created_at=CREATED,
    )
    data = codec.encode(response)
    for index in range(len(data)):
        tampered = bytearray(data)
        tampered[index] ^= mask
        with pytest.raises(DecodeError):
            codec.decode(bytes(tampered))


@pytest.mark.parametrize("mask", [0x01, 0x10, 0x80])
def test_flipping_any_bit_of_an_unsigned_entry_raises_decode_error(mask: int) -> None:
    # Issue 12, item 4: an unsigned entry carries a CRC-32, so corruption is a miss,
    # never a changed body, header, URL or status.
    codec = Codec()
    data = codec.encode(full_response(), key="k1")
    assert codec.decode(data, key="k1") == full_response()
    for index in range(len(data)):
        tampered = bytearray(data)
        tampered[index] ^= mask
        with pytest.raises(DecodeError):
            codec.decode(bytes(tampered), key="k1")


def test_unsigned_entry_moved_to_another_key_raises() -> None:
    # The CRC covers the key too: an entry copied under another key reads as a miss.
    codec = Codec()
    data = codec.encode(full_response(), key="the-key")
    with pytest.raises(DecodeError, match="checksum"):
        codec.decode(data, key="another-key")


def test_format_2_entries_are_misses() -> None:
    # Format 2 had no integrity check when unsigned: its entries are misses now.
    data = bytearray(Codec().encode(full_response()))
    data[3] = 2
    with pytest.raises(DecodeError, match="version 2"):
        Codec().decode(bytes(data))


def test_unknown_version_raises() -> None:
    codec = Codec()
    data = bytearray(codec.encode(full_response()))
    assert data[3] == FORMAT_VERSION
    for version in (0, FORMAT_VERSION + 1, 255):
        data[3] = version
        with pytest.raises(DecodeError, match="version"):
            codec.decode(bytes(data))


def test_unknown_flags_raise() -> None:
    codec = Codec()
    data = bytearray(codec.encode(full_response()))
    data[4] = 0x02
    with pytest.raises(DecodeError, match="flags"):
        codec.decode(bytes(data))


def test_not_an_entry_raises() -> None:
    for data in (b"", b"ACC", b"\x80\x04\x95pickle", b'{"status": 200}', b"XYZ" + bytes(30)):
        with pytest.raises(DecodeError):
            Codec().decode(data)


def test_decode_error_is_an_acc_error() -> None:
    assert issubclass(DecodeError, AccError)


def test_signed_entry_read_without_key_raises() -> None:
    data = Codec("s3cret").encode(full_response())
    with pytest.raises(DecodeError, match="signed"):
        Codec().decode(data)


def test_unsigned_entry_read_with_key_raises() -> None:
    data = Codec().encode(full_response())
    with pytest.raises(DecodeError, match="not signed"):
        Codec("s3cret").decode(data)


def test_entry_signed_with_another_key_raises() -> None:
    data = Codec("attacker").encode(full_response())
    with pytest.raises(DecodeError, match="signature"):
        Codec(["s3cret", "older"]).decode(data)


def test_key_rotation() -> None:
    response = full_response()
    old_entry = Codec("old").encode(response)
    rotated = Codec(["new", "old"])
    assert rotated.decode(old_entry) == response
    # The first key signs: the new entry is not readable with the old key alone.
    new_entry = rotated.encode(response)
    assert new_entry != old_entry
    assert Codec("new").decode(new_entry) == response
    with pytest.raises(DecodeError):
        Codec("old").decode(new_entry)


def test_str_and_bytes_keys_are_the_same_key() -> None:
    response = full_response()
    assert Codec(b"k\xc3\xa9").decode(Codec("ké").encode(response)) == response


# -- the schema is derived from attrs fields, so a field added to the model round-trips ------


@attrs.frozen(slots=True)
class _Extended:
    """A model with every field type the codec supports (as CachedResponse may grow)."""

    text: str
    number: int
    ratio: float
    flag: bool
    blob: bytes
    moment: datetime
    maybe: datetime | None
    pairs: tuple[tuple[str, str], ...]
    hops: tuple[RedirectHop, ...]
    names: tuple[str, ...] = ()
    body: bytes = b""


@given(
    value=st.builds(
        _Extended,
        text=TEXT,
        number=st.integers(),
        ratio=st.floats(allow_nan=False),
        flag=st.booleans(),
        blob=st.binary(max_size=20),
        moment=MOMENTS,
        maybe=st.none() | MOMENTS,
        pairs=st.lists(st.tuples(TEXT, TEXT), max_size=4).map(tuple),
        hops=st.lists(HOPS, max_size=2).map(tuple),
        names=st.lists(TEXT, max_size=3).map(tuple),
        body=st.binary(max_size=20),
    )
)
def test_a_schema_round_trips_every_supported_field_type(value: _Extended) -> None:
    from acc.core.codec import _Schema

    schema = _Schema(_Extended, skip="body")
    dumped = json.loads(json.dumps(schema.dump(value), ensure_ascii=False))
    assert schema.load(dumped, value.body) == value


def test_a_field_type_the_codec_cannot_store_is_refused_at_once() -> None:
    from acc.core.codec import _Schema

    @attrs.frozen
    class Unsupported:
        mapping: dict[str, str]

    with pytest.raises(TypeError, match="cannot store"):
        _Schema(Unsupported)


def test_header_pairs_are_converted_to_pairs_of_str_unless_they_already_are() -> None:
    from acc.core.models import CachedResponse

    class Name(str):
        pass

    pairs = (("A", "1"), ("B", "2"))
    kept = CachedResponse(200, "OK", "http://example.com/", "GET", headers=pairs)
    assert kept.headers is pairs
    for loose in (
        [("A", "1")],
        (["A", "1"],),
        (("A", 1),),
        ((Name("A"), "1"),),
    ):
        entry = CachedResponse(200, "OK", "http://example.com/", "GET", headers=loose)  # type: ignore[arg-type]
        assert entry.headers == (("A", "1"),)
        assert type(entry.headers) is tuple
        assert all(type(n) is str and type(v) is str for n, v in entry.headers)
