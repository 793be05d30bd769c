"""Backends found by URL scheme through entry points, and URL query options."""

from __future__ import annotations

import importlib.metadata
import shutil
import sys
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest

from acc.backends.sqlite import SQLiteBackend
from acc.core import CacheBackend, ConfigError, MemoryCache, registry
from acc.core.registry import (
    backend_from_url,
    installed_schemes,
    parse_url_options,
    resolve_backend_class,
)

FAKE_PACKAGE = Path(__file__).parents[1] / "fixtures" / "acc-backend-fake"


# -- memory:// -----------------------------------------------------------------------------


def test_memory_url_builds_an_in_memory_backend() -> None:
    backend = CacheBackend.from_url("memory://")
    assert type(backend) is CacheBackend
    assert isinstance(backend.responses, MemoryCache)
    assert backend.cache_name == "acc-cache"


def test_memory_url_names_the_cache_and_converts_query_options() -> None:
    backend = CacheBackend.from_url(
        "memory://my-cache?expire_after=3600&allowed_codes=200,203&allowed_codes=404"
        "&include_headers=yes&allowed_methods=GET,POST&secret_key=s3cret&strict=0"
    )
    settings = backend.settings
    assert backend.cache_name == "my-cache"
    assert settings.expire_after == 3600
    assert type(settings.expire_after) is int
    assert settings.allowed_codes == frozenset({200, 203, 404})
    assert settings.include_headers is True
    assert settings.allowed_methods == frozenset({"GET", "POST"})
    assert settings.secret_key == ("s3cret",)
    assert settings.strict is False


def test_expire_after_in_a_url_takes_floats_never_and_datetimes() -> None:
    assert CacheBackend.from_url("memory://?expire_after=1.5").settings.expire_after == 1.5
    assert CacheBackend.from_url("memory://?expire_after=never").settings.expire_after == -1
    assert CacheBackend.from_url("memory://?expire_after=-1").settings.expire_after == -1
    moment = CacheBackend.from_url("memory://?expire_after=2030-01-02T03:04:05").settings
    assert moment.expire_after == datetime(2030, 1, 2, 3, 4, 5, tzinfo=timezone.utc)


def test_keyword_options_override_the_query() -> None:
    backend = CacheBackend.from_url("memory://?expire_after=10", expire_after=20)
    assert backend.settings.expire_after == 20


def test_memory_scheme_is_case_insensitive_and_registered() -> None:
    assert resolve_backend_class("MEMORY") is CacheBackend
    assert type(backend_from_url("Memory://")) is CacheBackend


@pytest.mark.parametrize(
    ("url", "error"),
    [
        ("memory://?no_such_option=1", TypeError),
        ("memory://?expire_after=soon", ConfigError),
        ("memory://?include_headers=perhaps", ConfigError),
        ("memory://?allowed_codes=ok", ConfigError),
        ("memory://?expire_after=1&expire_after=2", ConfigError),
        ("memory://?allowed_codes=99", ConfigError),
        ("memory://?cache_name=x", TypeError),
        ("memory://x#fragment", ConfigError),
    ],
)
def test_bad_query_options_raise(url: str, error: type[Exception]) -> None:
    with pytest.raises(error):
        CacheBackend.from_url(url)


def test_bad_query_value_names_the_option() -> None:
    with pytest.raises(ConfigError) as raised:
        CacheBackend.from_url("memory://?include_headers=perhaps")
    assert raised.value.argument == "include_headers"


def test_unknown_query_option_lists_the_known_ones() -> None:
    with pytest.raises(TypeError, match="expire_aftr") as raised:
        CacheBackend.from_url("memory://?expire_aftr=1")
    assert "expire_after" in str(raised.value)


# -- sqlite:// -----------------------------------------------------------------------------


async def test_sqlite_relative_url(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    backend = CacheBackend.from_url("sqlite:///relative.db")
    assert isinstance(backend, SQLiteBackend)
    assert backend.db_path == tmp_path / "relative.db"
    async with backend:
        await backend.responses.write("k", b"v")
    assert (tmp_path / "relative.db").is_file()


def test_sqlite_nested_relative_url_and_bare_name(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    backend = CacheBackend.from_url("sqlite:///caches/http")
    assert isinstance(backend, SQLiteBackend)
    assert backend.db_path == tmp_path / "caches" / "http.sqlite"


def test_sqlite_absolute_url(tmp_path: Path) -> None:
    backend = CacheBackend.from_url(f"sqlite:///{tmp_path}/abs.db")  # tmp_path starts with /
    assert isinstance(backend, SQLiteBackend)
    assert backend.db_path == tmp_path / "abs.db"
    assert SQLiteBackend.from_url("sqlite:////var/cache/x.db").db_path == Path("/var/cache/x.db")


def test_sqlite_url_with_home_and_escapes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    assert SQLiteBackend.from_url("sqlite:///~/c.db").db_path == tmp_path / "c.db"
    assert SQLiteBackend.from_url("sqlite:///~/my%20cache.db").db_path == tmp_path / "my cache.db"


@pytest.mark.parametrize("url", ["sqlite://", "sqlite:///:memory:", "sqlite://?expire_after=5"])
async def test_sqlite_memory_urls(url: str) -> None:
    backend = CacheBackend.from_url(url)
    assert isinstance(backend, SQLiteBackend)
    assert backend.in_memory
    async with backend:
        await backend.responses.write("k", b"v")
        assert await backend.responses.read("k") == b"v"


def test_sqlite_query_options_are_typed(tmp_path: Path) -> None:
    backend = CacheBackend.from_url(
        f"sqlite:///{tmp_path}/c.db?expire_after=3600&busy_timeout=5&fast_save=true"
        "&match_headers=Accept,Accept-Language&ignored_params=token"
    )
    assert isinstance(backend, SQLiteBackend)
    assert backend.settings.expire_after == 3600
    assert backend.connection.busy_timeout == 5.0
    assert type(backend.connection.busy_timeout) is float
    assert backend.connection.fast_save is True
    assert backend.settings.match_headers == ("Accept", "Accept-Language")
    assert backend.settings.ignored_params == frozenset({"token"})


def test_sqlite_keyword_options_override_the_query(tmp_path: Path) -> None:
    backend = SQLiteBackend.from_url(
        f"sqlite:///{tmp_path}/c.db?busy_timeout=5&expire_after=10", busy_timeout=1.5
    )
    assert backend.connection.busy_timeout == 1.5
    assert backend.settings.expire_after == 10


@pytest.mark.parametrize(
    ("url", "error", "argument"),
    [
        ("sqlite:///c.db?busy_timeout=soon", ConfigError, "busy_timeout"),
        ("sqlite:///c.db?busy_timeout=-3", ConfigError, "busy_timeout"),
        ("sqlite:///c.db?fast_save=maybe", ConfigError, "fast_save"),
        ("sqlite://host/c.db", ConfigError, "url"),
        ("memory://", ConfigError, "url"),
        ("sqlite:///c.db?busy_timout=3", TypeError, None),
        ("sqlite:///c.db?responses=x", TypeError, None),
    ],
)
def test_bad_sqlite_urls(url: str, error: type[Exception], argument: str | None) -> None:
    with pytest.raises(error) as raised:
        SQLiteBackend.from_url(url)
    if argument is not None:
        assert isinstance(raised.value, ConfigError)
        assert raised.value.argument == argument


def test_sqlite_entry_point_is_registered() -> None:
    names = {ep.name: ep.value for ep in importlib.metadata.entry_points(group="acc.backends")}
    assert names["sqlite"] == "acc.backends.sqlite:SQLiteBackend"
    assert names["memory"] == "acc.core.backend:CacheBackend"
    assert resolve_backend_class("sqlite") is SQLiteBackend


# -- unknown and missing schemes -------------------------------------------------------------


def test_unknown_scheme_lists_installed_schemes() -> None:
    with pytest.raises(ConfigError) as raised:
        CacheBackend.from_url("nosuch://somewhere")
    message = str(raised.value)
    assert raised.value.argument == "url"
    assert "'nosuch'" in message
    assert "memory" in message
    assert "sqlite" in message
    assert "pip install" not in message


@pytest.mark.parametrize(
    ("url", "package"),
    [
        ("redis://localhost:6379/0", "acc-backend-redis"),
        ("rediss://localhost:6380/0", "acc-backend-redis"),
        ("unix:///run/redis.sock", "acc-backend-redis"),
        ("mongodb://localhost:27017", "acc-backend-mongo"),
        ("mongodb+srv://cluster.example.com", "acc-backend-mongo"),
        ("redis+cluster://localhost:7000/0", "acc-backend-redis"),
        ("rediss+cluster://localhost:7000/0", "acc-backend-redis"),
        ("dynamodb://table?region=eu-west-1", "acc-backend-dynamodb"),
    ],
)
def test_known_but_missing_scheme_gives_the_pip_install_line(
    url: str, package: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The entry points of an environment without ``package``, as the registry reads them.
    real_scan = registry._scan

    def scan_without_package() -> dict[str, Any]:
        found = real_scan()
        return {s: ep for s, ep in found.items() if registry.KNOWN_SCHEMES.get(s) != package}

    monkeypatch.setattr(registry, "_scan", scan_without_package)
    monkeypatch.setattr(registry, "_entry_points", None)
    assert url.split(":")[0] not in installed_schemes()
    with pytest.raises(ConfigError) as raised:
        CacheBackend.from_url(url)
    message = str(raised.value)
    assert f"pip install {package}" in message.splitlines()[1]
    # Until the packages are published, the same package from a clone of the repository:
    assert "hatch run dist:build" in message
    assert f"pip install --find-links dist {package}" in message
    assert "installed schemes: " in message
    assert "sqlite" in message


@pytest.mark.parametrize("url", ["cache.db", "", "://x", "1abc://x", "/tmp/cache.db"])
def test_a_non_url_is_a_config_error(url: str) -> None:
    with pytest.raises(ConfigError, match=r"^url"):
        CacheBackend.from_url(url)


def test_a_non_string_url_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match=r"^url"):
        CacheBackend.from_url(42)  # type: ignore[arg-type]


# -- a third-party backend, installed for the test -------------------------------------------


def _install(site: Path, entry_points: str) -> None:
    """Install the fake package into ``site``: its module and a ``*.dist-info`` folder."""
    shutil.copy(FAKE_PACKAGE / "acc_backend_fake.py", site / "acc_backend_fake.py")
    info = site / "acc_backend_fake-0.1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: acc-backend-fake\nVersion: 0.1.0\n", encoding="utf-8"
    )
    (info / "entry_points.txt").write_text(f"[acc.backends]\n{entry_points}\n", encoding="utf-8")


@pytest.fixture
def fake_installed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """The fake backend package, importable and registered, for one test."""
    pyproject = (FAKE_PACKAGE / "pyproject.toml").read_text(encoding="utf-8")
    declared = 'fake = "acc_backend_fake:FakeBackend"'
    assert declared in pyproject  # keep the test in step with the fixture package
    site = tmp_path / "site-packages"
    site.mkdir()
    _install(
        site,
        "fake = acc_backend_fake:FakeBackend\n"
        "plain = acc_backend_fake:PlainBackend\n"
        "notabackend = acc_backend_fake:NotABackend\n"
        "broken = acc_backend_not_installed:Backend",
    )
    installed_before = installed_schemes()  # fills the registry's cache without "fake"
    assert "fake" not in installed_before
    monkeypatch.syspath_prepend(str(site))
    try:
        yield importlib.import_module("acc_backend_fake")
    finally:
        sys.modules.pop("acc_backend_fake", None)
        registry.invalidate_cache()


def test_a_third_party_backend_is_found_by_its_scheme(fake_installed: Any) -> None:
    # The registry read the entry points before the package appeared: a miss reads again.
    backend = CacheBackend.from_url("fake://over-there?flavour=mint&shards=3&expire_after=60")
    assert isinstance(backend, fake_installed.FakeBackend)
    assert backend.location == "over-there"
    assert backend.flavour == "mint"
    assert backend.shards == 3
    assert backend.settings.expire_after == 60
    assert "fake" in installed_schemes()
    assert resolve_backend_class("fake") is fake_installed.FakeBackend


def test_a_third_party_backend_gets_options_and_checks_them(fake_installed: Any) -> None:
    backend = backend_from_url("fake://x?flavour=mint", flavour="lemon")
    assert backend.flavour == "lemon"  # type: ignore[attr-defined]
    with pytest.raises(TypeError, match="colour"):
        CacheBackend.from_url("fake://x?colour=red")
    with pytest.raises(ConfigError, match=r"^shards"):
        CacheBackend.from_url("fake://x?shards=many")


def test_unknown_scheme_lists_third_party_schemes_too(fake_installed: Any) -> None:
    with pytest.raises(ConfigError, match="fake"):
        CacheBackend.from_url("nosuch://x")


def test_a_backend_without_from_url_does_not_loop(fake_installed: Any) -> None:
    with pytest.raises(ConfigError, match="from_url"):
        CacheBackend.from_url("plain://x")


def test_a_registered_object_that_is_not_a_backend(fake_installed: Any) -> None:
    with pytest.raises(ConfigError, match="not a CacheBackend"):
        CacheBackend.from_url("notabackend://x")


def test_a_registered_backend_that_cannot_be_imported(fake_installed: Any) -> None:
    with pytest.raises(ConfigError, match="cannot be imported"):
        CacheBackend.from_url("broken://x")


def test_the_cache_is_invalidated_on_request(fake_installed: Any) -> None:
    assert "fake" not in installed_schemes()  # read before the package appeared
    registry.invalidate_cache()
    assert "fake" in installed_schemes()


# -- parse_url_options ------------------------------------------------------------------------


def _target(
    *,
    count: int = 1,
    ratio: float = 1.0,
    flag: bool = False,
    names: list[str] | None = None,
    codes: tuple[int, ...] = (),
    label: str = "",
    maybe: int | None = None,
    untyped=3,
) -> None:
    """A function with one parameter of each kind."""


def test_parse_url_options_converts_by_annotation() -> None:
    options = parse_url_options(
        "count=4&ratio=2&flag=on&names=a,b&names=c&codes=1,2&label=x%20y&maybe=none&untyped=7",
        _target,
    )
    assert options == {
        "count": 4,
        "ratio": 2.0,
        "flag": True,
        "names": ["a", "b", "c"],
        "codes": [1, 2],
        "label": "x y",
        "maybe": None,
        "untyped": 7,
    }
    assert type(options["ratio"]) is float


def test_parse_url_options_takes_a_mapping_and_explicit_converters() -> None:
    options = parse_url_options(
        {"count": ["5"], "label": "plain"}, _target, converters={"label": str.upper}
    )
    assert options == {"count": 5, "label": "PLAIN"}


def test_parse_url_options_refuses_unknown_names_unless_open_ended() -> None:
    with pytest.raises(TypeError, match="colour"):
        parse_url_options("colour=red", _target)

    def open_ended(*, count: int = 1, **extra: object) -> None:
        """Takes anything."""

    assert parse_url_options("count=2&colour=red", open_ended) == {"count": 2, "colour": "red"}
