"""Backends found by URL scheme through entry points, and URL query options."""

from __future__ import annotations

import importlib
import importlib.metadata
import inspect
import re
import shutil
import sys
from collections.abc import Iterator, Mapping
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest

from acc.backends.sqlite import SQLiteBackend
from acc.core import CacheBackend, ConfigError, MemoryCache, registry
from acc.core.registry import KNOWN_BACKENDS, BackendSpec, installed_schemes, resolve_backend_class
from acc.core.storage.near import NearCache
from acc.core.url_options import parse_url_options, register_option_type

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
    assert type(CacheBackend.from_url("Memory://")) is CacheBackend


def test_stale_windows_and_the_near_cache_in_a_url() -> None:
    backend = CacheBackend.from_url(
        "memory://?stale_if_error=30&stale_while_revalidate=yes"
        "&near_cache=max_entries:10,max_age:2.5"
    )
    assert backend.settings.stale_if_error == 30.0
    assert backend.settings.stale_while_revalidate is True
    assert isinstance(backend.responses, NearCache)
    assert backend.responses.max_entries == 10
    assert backend.responses.max_age == 2.5
    with pytest.raises(ConfigError, match=r"^near_cache"):
        CacheBackend.from_url("memory://?near_cache=max_entries:many")


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
        ("memory://?responses=x", TypeError),  # objects only code can pass
        ("memory://?filter_fn=none", TypeError),
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
        ("file:///http-cache", "acc-backend-filesystem"),
    ],
)
def test_known_but_missing_scheme_gives_the_pip_install_line(
    url: str, package: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # An environment without ``package``: no entry points of its, and no module to import.
    real_scan = registry._scan
    scheme = url.split(":")[0]
    module = KNOWN_BACKENDS[scheme].module

    def scan_without_package() -> dict[str, Any]:
        return {s: spec for s, spec in real_scan().items() if spec.module != module}

    monkeypatch.setattr(registry, "_scan", scan_without_package)
    monkeypatch.setattr(registry, "_entry_points", None)
    monkeypatch.setitem(sys.modules, module, None)  # import fails, find_spec finds nothing
    assert KNOWN_BACKENDS[scheme].package == package
    assert scheme not in installed_schemes()
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
    backend = CacheBackend.from_url("fake://x?flavour=mint", flavour="lemon")
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


def test_the_facade_registered_for_another_scheme_does_not_loop(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(registry, "_scan", lambda: {"loop": KNOWN_BACKENDS["memory"]})
    monkeypatch.setattr(registry, "_entry_points", None)
    assert resolve_backend_class("loop") is CacheBackend
    with pytest.raises(ConfigError, match="does not handle loop://"):
        CacheBackend.from_url("loop://x")


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


# -- the built-in table of known schemes ---------------------------------------------------


def test_a_known_scheme_resolves_without_its_entry_point(monkeypatch: pytest.MonkeyPatch) -> None:
    # A source checkout that was never installed has no entry points, only the modules.
    monkeypatch.setattr(registry, "_scan", dict)
    monkeypatch.setattr(registry, "_entry_points", None)
    assert resolve_backend_class("sqlite") is SQLiteBackend
    assert "sqlite" in installed_schemes()
    with pytest.raises(ConfigError, match="nosuch"):
        resolve_backend_class("nosuch")


def test_the_known_schemes_match_the_first_party_entry_points() -> None:
    registered = {
        ep.name: (ep.value, ep.dist.name if ep.dist else None)
        for ep in importlib.metadata.entry_points(group="acc.backends")
        if ep.dist is not None and ep.dist.name.startswith("acc-")
    }
    assert set(registered) == set(KNOWN_BACKENDS)
    for scheme, spec in KNOWN_BACKENDS.items():
        assert registered[scheme] == (spec.target, spec.package)


def test_a_known_backend_whose_import_fails_says_what_to_reinstall(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "acc_test_half_installed.py").write_text(
        "import acc_test_missing_driver\n", encoding="utf-8"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    spec = BackendSpec("acc_test_half_installed:Backend", "acc-backend-half")
    monkeypatch.setattr(registry, "KNOWN_BACKENDS", {"half": spec})
    assert spec.installed()
    with pytest.raises(ConfigError) as raised:
        resolve_backend_class("half")
    message = str(raised.value)
    assert "cannot be imported" in message
    assert "acc_test_missing_driver" in message
    assert "pip install acc-backend-half" in message


def test_a_known_object_that_is_not_a_class(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(
        registry, "KNOWN_BACKENDS", {"fn": BackendSpec("acc.core.registry:invalidate_cache")}
    )
    with pytest.raises(ConfigError, match="not a class"):
        resolve_backend_class("fn")


# -- parse_url_options ------------------------------------------------------------------------

TABLE = {
    "count": int,
    "ratio": float,
    "flag": bool,
    "names": list[str],
    "codes": tuple[int, ...],
    "label": str,
    "maybe": int | None,
    "either": int | float,
    "pairs": dict[str, int],
    "one_or_many": str | list[str],
}


def test_parse_url_options_converts_by_the_table() -> None:
    options = parse_url_options(
        "count=4&ratio=2&flag=on&names=a,b&names=c&codes=1,2&label=x%20y&maybe=none"
        "&either=7&pairs=a:1,b:2&one_or_many=x",
        TABLE,
    )
    assert options == {
        "count": 4,
        "ratio": 2.0,
        "flag": True,
        "names": ["a", "b", "c"],
        "codes": (1, 2),
        "label": "x y",
        "maybe": None,
        "either": 7,
        "pairs": {"a": 1, "b": 2},
        "one_or_many": "x",
    }
    assert type(options["ratio"]) is float
    assert type(options["either"]) is int
    assert parse_url_options("either=1.5&one_or_many=x,y", TABLE) == {
        "either": 1.5,
        "one_or_many": ["x", "y"],
    }
    assert parse_url_options("one_or_many=x&one_or_many=y", TABLE) == {"one_or_many": ["x", "y"]}


def test_parse_url_options_takes_a_mapping_and_types_a_backend_teaches_it() -> None:
    class Shout(str):
        """An option type of a backend's own."""

    def shout(text: str) -> Shout:
        if not text.isalpha():
            raise ValueError(text)
        return Shout(text.upper())

    register_option_type(Shout, shout, "letters")
    table = {**TABLE, "label": Shout, "labels": list[Shout]}
    options = parse_url_options({"count": ["5"], "label": "plain", "labels": "a,b"}, table)
    assert options == {"count": 5, "label": "PLAIN", "labels": ["A", "B"]}
    assert type(options["label"]) is Shout
    with pytest.raises(ConfigError, match=r"^labels: expected letters in the URL query, not '1'"):
        parse_url_options("labels=a,1", table)


@pytest.mark.parametrize(
    ("query", "argument", "problem"),
    [
        ("count=many", "count", "expected an integer"),
        ("count=1&count=2", "count", "given 2 times"),
        ("maybe=1&maybe=2", "maybe", "given 2 times"),
        ("flag=perhaps", "flag", "expected true or false"),
        ("codes=1,x", "codes", "expected an integer"),
        ("pairs=a", "pairs", "name:value pairs"),
        ("pairs=a:x", "pairs", "name:value pairs, each value an integer"),
        ("maybe=x", "maybe", "expected an integer, or none"),
        ("expire_after=soon", "expire_after", "expected seconds, -1, never or an ISO 8601"),
    ],
)
def test_parse_url_options_names_the_option_of_a_bad_value(
    query: str, argument: str, problem: str
) -> None:
    with pytest.raises(ConfigError) as raised:
        parse_url_options(query, TABLE)
    assert raised.value.argument == argument
    assert problem in raised.value.problem


def test_parse_url_options_refuses_names_in_no_table_and_skipped_ones() -> None:
    with pytest.raises(TypeError, match="colour") as raised:
        parse_url_options("colour=red", TABLE, owner="Paint")
    message = str(raised.value)
    assert message.startswith("Paint got an unknown option 'colour'")
    assert "count" in message  # the backend's table
    assert "expire_after" in message  # and CacheBackend's
    with pytest.raises(TypeError, match="'count' cannot be set in the URL query of Paint"):
        parse_url_options("count=2", TABLE, skip=("count",), owner="Paint")
    assert parse_url_options("count=2", TABLE, skip=("label",)) == {"count": 2}


@pytest.mark.parametrize(
    ("module", "backend", "table"),
    [
        ("acc.backends.sqlite.backend", "SQLiteBackend", "URL_OPTIONS"),
        ("acc.backends.redis.backend", "RedisBackend", "URL_OPTIONS"),
        ("acc.backends.dynamodb.backend", "DynamoDBBackend", "URL_OPTIONS"),
        ("acc.core.url_options", "", "CACHE_OPTIONS"),
    ],
)
def test_every_option_of_a_table_is_a_keyword_of_its_backend(
    module: str, backend: str, table: str
) -> None:
    namespace = importlib.import_module(module)
    klass = getattr(namespace, backend) if backend else CacheBackend
    options = getattr(namespace, table)
    assert isinstance(options, Mapping)
    assert options  # a vacuous table would pass
    keywords: set[str] = set()
    for owner in (klass, CacheBackend):
        for name, parameter in inspect.signature(owner).parameters.items():
            if parameter.kind in (parameter.POSITIONAL_OR_KEYWORD, parameter.KEYWORD_ONLY):
                keywords.add(name)
    assert set(options) <= keywords


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("sqlite:///rel/cache.db", ("rel/cache.db", "")),
        ("sqlite:////abs/cache.db?expire_after=60", ("/abs/cache.db", "expire_after=60")),
        ("sqlite:///a%20b.db", ("a b.db", "")),
        ("sqlite://", ("", "")),
        ("SQLITE:///x", ("x", "")),
    ],
)
def test_local_path_url_splits_path_and_query(url: str, expected: tuple[str, str]) -> None:
    from acc.core.url_options import local_path_url

    assert local_path_url(url, "sqlite", "sqlite:///x.db") == expected


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("file:///x", "expected a sqlite:// URL"),
        ("sqlite://host/x.db", "a sqlite URL has no host; use sqlite:///x.db"),
        ("sqlite:///x.db#frag", "has no #fragment"),
    ],
)
def test_local_path_url_refuses_what_is_no_local_path(url: str, message: str) -> None:
    from acc.core.url_options import local_path_url

    with pytest.raises(ConfigError, match=re.escape(message)):
        local_path_url(url, "sqlite", "sqlite:///x.db")
