"""Decoding an entry from parts (``Codec.decode_parts``) and where its body begins.

A store that hands the body over as a part of its own (cut where ``Codec.head_size``
says, or kept as written) gets that very object back as the response's body: no copy.
Any other partition still decodes (joined), and the check covers every byte either way.
"""

from __future__ import annotations

import pytest
from acc_entries import large_entry

from acc.core import MemoryCache
from acc.core.codec import Codec, DecodeError
from acc.core.storage import SPLIT_PROBE

BODY = bytes(range(256)) * 4096  # 1 MiB


@pytest.fixture(params=[None, "s3cret"], ids=["crc", "signed"])
def codec(request: pytest.FixtureRequest) -> Codec:
    return Codec(request.param)


def test_head_size_is_where_the_body_begins(codec: Codec) -> None:
    head, body = codec.encode_parts(large_entry(BODY), key="k")
    data = head + body
    assert codec.head_size(data[:SPLIT_PROBE]) == len(head)
    assert codec.head_size(data[:10]) == 0  # too short to tell: do not split
    assert codec.head_size(b"not an entry at all, but long enough to read") == 0


def test_a_body_part_cut_at_the_body_is_used_as_it_is(codec: Codec) -> None:
    head, body = codec.encode_parts(large_entry(BODY), key="k")
    stored_body = bytes(bytearray(body))  # as a store would read it: an object of its own
    decoded = codec.decode_parts((head, stored_body), key="k")
    assert decoded == large_entry(BODY)
    assert decoded.body is stored_body


@pytest.mark.parametrize("cut", [1, 7, 100, -1, -5000])
def test_parts_cut_elsewhere_decode_joined(codec: Codec, cut: int) -> None:
    data = codec.encode(large_entry(BODY), key="k")
    decoded = codec.decode_parts((data[:cut], data[cut:]), key="k")
    assert decoded == large_entry(BODY)
    middle = len(data) // 2
    three = codec.decode_parts((data[:5], data[5:middle], data[middle:]), key="k")
    assert three == large_entry(BODY)


@pytest.mark.parametrize("where", ["head", "body"])
def test_a_flipped_bit_in_either_part_is_a_decode_error(codec: Codec, where: str) -> None:
    head, body = codec.encode_parts(large_entry(BODY), key="k")
    if where == "head":
        head = head[:-3] + bytes([head[-3] ^ 1]) + head[-2:]
    else:
        body = body[:500] + bytes([body[500] ^ 1]) + body[501:]
    with pytest.raises(DecodeError):
        codec.decode_parts((head, body), key="k")


def test_parts_under_another_key_or_truncated_are_decode_errors(codec: Codec) -> None:
    head, body = codec.encode_parts(large_entry(BODY), key="k")
    with pytest.raises(DecodeError):
        codec.decode_parts((head, body), key="other")
    with pytest.raises(DecodeError):
        codec.decode_parts((head, body[:-1]), key="k")
    with pytest.raises(DecodeError):
        codec.decode_parts((head[:5], b""), key="k")


@pytest.mark.parametrize(
    "parts",
    [(), [b"x", 3], b"ACC", ("text", b"x"), None],
    ids=["empty", "int", "bytes", "str", "none"],
)
def test_hostile_parts_are_decode_errors(parts: object) -> None:
    with pytest.raises(DecodeError):
        Codec().decode_parts(parts, key="k")  # type: ignore[arg-type]


def test_bytes_like_parts_decode() -> None:
    codec = Codec()
    head, body = codec.encode_parts(large_entry(BODY), key="k")
    parts = (bytearray(head), memoryview(body))
    assert codec.decode_parts(parts, key="k") == large_entry(BODY)  # type: ignore[arg-type]


async def test_memory_store_keeps_and_returns_the_parts_written() -> None:
    store = MemoryCache()
    head, body = Codec().encode_parts(large_entry(BODY), key="k")
    await store.write_parts("k", (head, body))
    parts = await store.read_parts("k")
    assert parts is not None
    assert parts[0] is head
    assert parts[1] is body
    assert await store.read_parts("k") is parts
    assert await store.read("k") == head + body  # read() joins them
    assert Codec().decode_parts(parts, key="k").body is body


async def test_a_large_memory_hit_is_decoded_once_and_shares_the_stored_body() -> None:
    from acc.core import CacheBackend

    backend = CacheBackend()
    await backend.write_entry("k", large_entry(BODY))
    first = await backend.read_entry("k")
    second = await backend.read_entry("k")
    assert first is not None
    assert second is first
    parts = await backend.responses.read_parts("k")
    assert parts is not None
    assert first.body is parts[-1]


def test_join_parts_gives_a_single_part_itself_and_joins_several() -> None:
    from acc.core.storage import join_parts

    part = bytes(range(256))
    assert join_parts((part,)) is part  # no copy
    assert join_parts([b"ab", b"", b"cd"]) == b"abcd"
