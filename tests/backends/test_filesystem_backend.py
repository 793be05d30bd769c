"""FileBackend and FileCache beyond the conformance kit: real folders, real processes."""

from __future__ import annotations

import asyncio
import os
import stat
import sys
import textwrap
import time
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import pytest

from acc.backends.filesystem import FileBackend, FileCache, cache_folder
from acc.backends.filesystem.cache import _HEADER, INLINE_READ_MAX, file_name
from acc.core import BackendError, CacheBackend, CachedResponse, ConfigError
from acc.core.models import utcnow


def _entry(url: str, *, expires_in: float | None = None) -> CachedResponse:
    expires = None if expires_in is None else utcnow() + timedelta(seconds=expires_in)
    return CachedResponse(
        status=200, reason="OK", url=url, method="GET", body=b"body", expires=expires
    )


@pytest.fixture
async def backend(tmp_path: Path) -> AsyncIterator[FileBackend]:
    cache = FileBackend(tmp_path / "cache")
    yield cache
    await cache.close()


def _files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if not p.name.startswith("."))


# -- paths and URLs ------------------------------------------------------------------------


def test_relative_name_is_made_absolute_at_construction(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    assert FileBackend("http-cache").cache_dir == tmp_path / "http-cache"
    assert FileBackend().cache_dir == tmp_path / "acc-cache"


def test_tilde_is_expanded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    assert cache_folder("~/c") == tmp_path / "c"


@pytest.mark.parametrize("name", ["", "   ", 3, None])
def test_invalid_cache_name_raises_config_error(name: object) -> None:
    with pytest.raises(ConfigError, match="cache_name"):
        FileBackend(name)  # type: ignore[arg-type]


@pytest.mark.parametrize("namespace", ["", ".hidden", "-x", "a/b", "..", "x" * 65, 3])
def test_invalid_namespaces_are_refused(tmp_path: Path, namespace: object) -> None:
    with pytest.raises(ConfigError, match="namespace"):
        FileCache(tmp_path, namespace)  # type: ignore[arg-type]


def test_unknown_keyword_raises_type_error(tmp_path: Path) -> None:
    with pytest.raises(TypeError):
        FileBackend(tmp_path, expire_afer=3)


@pytest.mark.parametrize("name", ["responses", "redirects"])
def test_stores_cannot_be_replaced(tmp_path: Path, name: str) -> None:
    with pytest.raises(TypeError, match=f"{name}= is not accepted"):
        FileBackend(tmp_path, **{name: FileCache(tmp_path)})


def test_url_paths_follow_the_sqlite_rules(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    relative = CacheBackend.from_url("file:///sub/cache?expire_after=60")
    assert isinstance(relative, FileBackend)
    assert relative.cache_dir == tmp_path / "sub" / "cache"
    assert relative.settings.expire_after == 60
    absolute = CacheBackend.from_url(f"file:///{tmp_path}/abs")  # four slashes
    assert isinstance(absolute, FileBackend)
    assert absolute.cache_dir == tmp_path / "abs"
    home = FileBackend.from_url("file:///~/in-home")
    assert home.cache_dir == tmp_path / "home" / "in-home"
    spaced = FileBackend.from_url("file:///with%20space")
    assert spaced.cache_dir == tmp_path / "with space"


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("file://host/cache", "has no host"),
        ("file://", "names no folder"),
        ("file:///", "names no folder"),
        ("file:///c#frag", "no #fragment"),
        ("sqlite:///c", "expected a file:// URL"),
    ],
)
def test_bad_urls_raise_config_error(url: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        FileBackend.from_url(url)


def test_an_unknown_url_option_raises_type_error() -> None:
    with pytest.raises(TypeError, match="colour"):
        CacheBackend.from_url("file:///c?colour=red")


# -- the files -----------------------------------------------------------------------------


async def test_constructing_does_no_io(tmp_path: Path) -> None:
    FileBackend(tmp_path / "never" / "used")
    assert not (tmp_path / "never").exists()


async def test_one_file_per_entry_in_a_folder_per_store(backend: FileBackend) -> None:
    await backend.write_entry("k1", _entry("https://a/1"), aliases=["alias"])
    await backend.write_entry("k2", _entry("https://a/2"))
    responses = backend.cache_dir / "responses"
    redirects = backend.cache_dir / "redirects"
    assert _files(responses) == sorted([responses / file_name("k1"), responses / file_name("k2")])
    assert _files(redirects) == [redirects / file_name("alias")]
    assert list(responses.glob(".*")) == []  # no temporary file left behind


async def test_files_are_0600_and_folders_0700(tmp_path: Path) -> None:
    backend = FileBackend(tmp_path / "a" / "b")
    old = os.umask(0o022)
    try:
        await backend.write_entry("k", _entry("https://a/"))
    finally:
        os.umask(old)
    [written] = _files(backend.cache_dir / "responses")
    assert stat.S_IMODE(written.stat().st_mode) == 0o600
    for folder in (tmp_path / "a", backend.cache_dir, backend.cache_dir / "responses"):
        assert stat.S_IMODE(folder.stat().st_mode) == 0o700, folder
    await backend.close()


async def test_the_expiry_is_in_the_header(tmp_path: Path) -> None:
    store = FileCache(tmp_path)
    await store.write("k", b"value", expires_at=1234.5)
    data = store.path_of("k").read_bytes()
    magic, version, flags, expires_at, key_length = _HEADER.unpack_from(data)
    assert (magic, version, flags, expires_at, key_length) == (b"ACCF", 1, 1, 1234.5, 1)
    assert data[_HEADER.size :] == b"kvalue"


async def test_a_file_of_another_key_or_format_reads_as_missing(tmp_path: Path) -> None:
    store = FileCache(tmp_path)
    await store.write("a", b"A")
    await store.write("b", b"B")
    os.replace(store.path_of("a"), store.path_of("b"))  # "a"'s file under "b"'s name
    assert await store.read("b") is None
    assert await store.contains("b") is False
    assert [key async for key in store.keys()] == []  # noqa: SIM118 - an async iterator
    store.path_of("c").write_bytes(b"not an entry at all")
    assert await store.read("c") is None
    store.path_of("d").write_bytes(_HEADER.pack(b"ACCF", 1, 0, 0.0, 5) + b"ab")  # truncated key
    assert await store.read("d") is None
    assert await store.size() == 0


async def test_files_that_are_not_entries_are_left_alone(tmp_path: Path) -> None:
    store = FileCache(tmp_path)
    await store.write("k", b"v")
    notes = store.folder / "README.txt"
    notes.write_text("mine")
    assert [key async for key in store.keys()] == ["k"]  # noqa: SIM118
    await store.clear()
    assert notes.read_text() == "mine"
    assert await store.size() == 0


async def test_large_values_are_read_in_a_worker_thread(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = FileCache(tmp_path)
    small, large = b"s" * 100, b"L" * (INLINE_READ_MAX + 1)
    await store.write("small", small)
    await store.write("large", large)
    hops: list[object] = []
    real = asyncio.to_thread

    async def counting(function: object, /, *args: object) -> object:
        hops.append(function)
        return await real(function, *args)  # type: ignore[arg-type]

    monkeypatch.setattr(asyncio, "to_thread", counting)
    assert await store.read("small") == small
    assert hops == []  # read on the loop's thread
    assert await store.read("large") == large
    assert len(hops) == 1
    await store.write("w", b"x")
    assert len(hops) == 2  # writes always go to a worker thread


async def test_disk_usage_counts_both_stores(backend: FileBackend) -> None:
    assert await backend.disk_usage() == 0
    await backend.write_entry("k", _entry("https://a/"), aliases=["alias"])
    expected = sum(
        p.stat().st_size
        for store in ("responses", "redirects")
        for p in _files(backend.cache_dir / store)
    )
    assert expected > 0
    assert await backend.disk_usage() == expected


# -- expiry --------------------------------------------------------------------------------


async def test_delete_expired_reads_headers_only(
    backend: FileBackend, monkeypatch: pytest.MonkeyPatch
) -> None:
    await backend.write_entry("old", _entry("https://a/old", expires_in=-5))
    await backend.write_entry("new", _entry("https://a/new", expires_in=3600))
    await backend.write_entry("forever", _entry("https://a/forever"))

    def no_values(*_args: object) -> None:
        raise AssertionError("a value was read")

    monkeypatch.setattr(FileCache, "_load", no_values)
    monkeypatch.setattr(FileCache, "_pairs", no_values)
    assert await backend.delete(expired=True) == 1
    monkeypatch.undo()
    assert await backend.has_url("https://a/old") is False
    assert sorted([k async for k in backend.responses.keys()]) == ["forever", "new"]  # noqa: SIM118


async def test_an_expired_file_stays_until_swept_but_reads_as_missing(tmp_path: Path) -> None:
    store = FileCache(tmp_path)
    await store.write("k", b"v", expires_at=time.time() - 1)
    assert store.path_of("k").exists()
    assert await store.read("k") is None
    assert await store.delete_expired(time.time()) == 1
    assert not store.path_of("k").exists()


async def test_the_sweep_puts_back_an_entry_rewritten_while_it_looked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Another process rewrites an expired entry between the sweep's check of the header
    # and its removal: the sweep must leave the new entry in place.
    store = FileCache(tmp_path)
    await store.write("k", b"old", expires_at=time.time() - 10)
    real_dead = FileCache._dead
    calls = 0

    def dead_then_rewritten(path: Path, now: float) -> bool:
        nonlocal calls
        calls += 1
        verdict = real_dead(path, now)
        if calls == 1:  # the other process's write lands right after the first look
            store._write_file(store.path_of("k"), _header_for("k", None), b"fresh")
        return verdict

    monkeypatch.setattr(FileCache, "_dead", staticmethod(dead_then_rewritten))
    assert await store.delete_expired(time.time()) == 0
    assert calls == 2
    assert await store.read("k") == b"fresh"
    assert [p.name for p in store.folder.iterdir()] == [file_name("k")]


def _header_for(key: str, expires_at: float | None) -> bytes:
    from acc.backends.filesystem.cache import _encode_header

    return _encode_header(key.encode(), expires_at)


async def test_leftover_temporary_files_are_swept_after_an_hour(tmp_path: Path) -> None:
    store = FileCache(tmp_path)
    await store.write("k", b"v")
    old, young = store.folder / ".tmp-old", store.folder / ".tmp-young"
    for path in (old, young):
        path.write_bytes(b"partial")
    hour_ago = time.time() - 3700
    os.utime(old, (hour_ago, hour_ago))
    assert await store.delete_expired(time.time()) == 0
    assert not old.exists()
    assert young.exists()  # may be a write in progress in another process
    assert await store.read("k") == b"v"


# -- the façade over it ----------------------------------------------------------------------


async def test_entries_survive_a_new_backend_on_the_folder(tmp_path: Path) -> None:
    async with FileBackend(tmp_path / "c") as first:
        await first.write_entry("k", _entry("https://a/"), aliases=["alias"])
    async with FileBackend(tmp_path / "c") as second:
        found = await second.read_entry("alias")
        assert found is not None
        assert found.url == "https://a/"
        assert [url async for url in second.urls()] == ["https://a/"]


async def test_clear_empties_both_stores(backend: FileBackend) -> None:
    await backend.write_entry("k", _entry("https://a/"), aliases=["alias"])
    await backend.clear()
    assert await backend.responses.size() == 0
    assert await backend.redirects.size() == 0


async def test_near_cache_works_over_files(tmp_path: Path) -> None:
    async with FileBackend(tmp_path, near_cache=True) as backend:
        await backend.write_entry("k", _entry("https://a/"))
        assert await backend.read_entry("k") is not None
        assert await backend.disk_usage() > 0


async def test_close_is_idempotent_and_later_use_raises(tmp_path: Path) -> None:
    backend = FileBackend(tmp_path)
    await backend.close()
    await backend.close()
    with pytest.raises(BackendError):
        await backend.read_entry("k")
    with pytest.raises(BackendError):
        await backend.disk_usage()


async def test_an_unwritable_folder_is_a_backend_error_and_the_facade_fails_open(
    tmp_path: Path,
) -> None:
    blocker = tmp_path / "file-not-folder"
    blocker.write_text("x")
    store = FileCache(blocker)
    with pytest.raises(BackendError, match="write failed"):
        await store.write("k", b"v")
    async with FileBackend(blocker) as backend:
        assert await backend.write_entry("k", _entry("https://a/")) is False
        assert backend.stats.errors == 1


# -- processes -------------------------------------------------------------------------------

_WRITER = textwrap.dedent(
    """
    import asyncio, sys, time
    from acc.backends.filesystem import FileCache

    async def main(folder, tag, start):
        store = FileCache(folder)
        while time.time() < start:
            await asyncio.sleep(0.005)
        for round in range(40):
            for i in range(10):
                # Both processes rewrite the same keys with values of different lengths.
                await store.write(f"shared-{i}", tag.encode() * (1000 + 7919 * i))
            if round % 10 == 0:
                await store.delete_expired(time.time())
        for i in range(100):
            await store.write(f"{tag}-{i}", f"{tag}:{i}".encode(), expires_at=time.time() + 600)
        await store.close()

    asyncio.run(main(sys.argv[1], sys.argv[2], float(sys.argv[3])))
    """
)


@pytest.mark.slow
async def test_two_processes_share_a_folder_and_never_see_half_an_entry(tmp_path: Path) -> None:
    folder = tmp_path / "shared"
    start = time.time() + 1.5
    procs = [
        await asyncio.create_subprocess_exec(
            sys.executable,
            "-c",
            _WRITER,
            str(folder),
            tag,
            str(start),
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        for tag in ("a", "b")
    ]
    reader = FileCache(folder)
    torn = 0
    reads = 0
    communicate = [asyncio.ensure_future(proc.communicate()) for proc in procs]
    while not all(task.done() for task in communicate):
        for i in range(10):
            value = await reader.read(f"shared-{i}")
            if value is not None:
                reads += 1
                whole = value in (b"a" * (1000 + 7919 * i), b"b" * (1000 + 7919 * i))
                torn += not whole
        await asyncio.sleep(0)
    for proc, task in zip(procs, communicate, strict=True):
        _out, err = await asyncio.wait_for(task, timeout=60)
        assert proc.returncode == 0, err.decode()
        assert err == b""
    assert reads > 0
    assert torn == 0
    assert await reader.size() == 210
    keys = [f"{tag}-{i}" for tag in "ab" for i in range(100)]
    assert await reader.read_many(keys) == [k.replace("-", ":").encode() for k in keys]
    assert [p.name for p in folder.glob("*") if p.name.startswith(".")] == []
