"""The file store reads a large value in two parts (``FileCache.read_parts``, rule 6)."""

from __future__ import annotations

from pathlib import Path

from acc_entries import large_entry

from acc.backends.filesystem import FileCache
from acc.core.codec import Codec

BODY = bytes(range(256)) * (4 * 1024)  # 1 MiB: above INLINE_READ_MAX


async def test_a_large_value_is_read_as_head_and_body(tmp_path: Path) -> None:
    store = FileCache(tmp_path)
    try:
        codec = Codec()
        head, body = codec.encode_parts(large_entry(BODY), key="k")
        await store.write_parts("k", (head, body))
        parts = await store.read_parts("k", codec.head_size)
        assert parts == (head, body)
        assert codec.decode_parts(parts, key="k").body is parts[1]
        assert await store.read_parts("k", lambda prefix: 0) == (head + body,)
        assert await store.read_parts("other", codec.head_size) is None
        await store.write_parts("dead", (head, body), expires_at=1.0)
        assert await store.read_parts("dead", codec.head_size) is None
    finally:
        await store.close()
