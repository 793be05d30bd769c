"""The distributions: built by ``hatch run dist:build``, checked by ``hatch run dist:check``.

The fast tests check the sources the build reads (licence copies, READMEs, changelog, the
hatch scripts) and the checker itself, on metadata made here. The slow ones build every
package of a fresh copy of the repository, exactly as ``hatch run dist:build`` does, and
check the artefacts: with ``twine check --strict``, with ``scripts/dist.py check`` (the
release workflow's check), by reading them directly, and by breaking copies of them to
see that the check notices.
"""

from __future__ import annotations

import email.message
import email.parser
import importlib.util
import re
import shutil
import sys
import tarfile
import zipfile
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

import pytest
from acc_release import ROOT, explain, run
from packaging.version import Version


def _load_tool() -> ModuleType:
    spec = importlib.util.spec_from_file_location("acc_dist_tool", ROOT / "scripts" / "dist.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up by name
    spec.loader.exec_module(module)
    return module


tool = _load_tool()
PACKAGES = sorted(p.parent for p in ROOT.glob("packages/*/pyproject.toml"))
URLS = ("Homepage", "Documentation", "Source", "Issues", "Changelog")


def _version_of(package: Path) -> str:
    """The version in a package's ``_version.py`` (the one hatch reads)."""
    (found,) = package.glob("src/acc/**/_version.py")
    match = re.search(r'__version__ = "([^"]+)"', found.read_text(encoding="utf-8"))
    assert match is not None, found
    return match.group(1)


def _parse(text: str) -> email.message.Message:
    return email.parser.Parser().parsestr(text)


# -- the sources -----------------------------------------------------------------------------


def test_the_hatch_dist_scripts_run_the_commands_the_suite_runs() -> None:
    text = (ROOT / "pyproject.toml").read_text(encoding="utf-8")
    section = text[text.index("[tool.hatch.envs.dist.scripts]") :]
    section = section[: section.index("\n[", 1)]
    assert 'build = "python scripts/dist.py build {args}"' in section
    assert 'check = "python scripts/dist.py check {args}"' in section


def test_the_build_covers_every_folder_of_packages() -> None:
    packages = tool.workspace_packages(ROOT)
    assert {p.directory.name for p in packages} == {p.name for p in PACKAGES}
    assert "acc-core" in {p.name for p in packages}


def test_every_package_is_at_the_one_version_of_the_monorepo() -> None:
    versions = {package.name: _version_of(package) for package in PACKAGES}
    assert len(set(versions.values())) == 1, versions


@pytest.mark.parametrize("package", PACKAGES, ids=lambda p: p.name)
def test_every_package_has_the_repositorys_licence(package: Path) -> None:
    assert (package / "LICENSE").read_bytes() == (ROOT / "LICENSE").read_bytes()


@pytest.mark.parametrize("package", PACKAGES, ids=lambda p: p.name)
def test_every_readme_links_absolutely_because_it_is_the_registry_page(package: Path) -> None:
    readme = (package / "README.md").read_text(encoding="utf-8")
    assert tool._relative_links(readme) == []


def test_the_link_finder_sees_every_kind_of_link() -> None:
    markdown = (
        "[a](../../README.md) [b](https://example.org/x) [c](#anchor) [d](mailto:a@b.c)\n"
        '<a href="docs/x.html">e</a>\n'
        "[ref]: ../docs/y.md\n"
    )
    assert sorted(tool._relative_links(markdown)) == [
        "../../README.md",
        "../docs/y.md",
        "docs/x.html",
    ]


def test_the_changelog_keeps_a_changelog_with_an_unreleased_section() -> None:
    text = (ROOT / "CHANGELOG.md").read_text(encoding="utf-8")
    assert text.startswith("# Changelog\n")
    assert "https://keepachangelog.com/" in text
    unreleased = text[text.index("## [Unreleased]") :]
    assert "### Changed" in unreleased
    # This round's breaking change of the core's layout, with where names went.
    assert "acc.core.http.policy" in unreleased
    assert "acc.core.storage.near" in unreleased


# -- the checker, on metadata made here -----------------------------------------------------

GOOD_METADATA = """\
Metadata-Version: 2.4
Name: acc-backend-x
Version: 0.1.0
Summary: An x store for acc.
Project-URL: Homepage, https://github.com/acc-cache/acc
Project-URL: Documentation, https://acc-cache.readthedocs.io
Project-URL: Source, https://github.com/acc-cache/acc/tree/main/packages/backend-x
Project-URL: Issues, https://github.com/acc-cache/acc/issues
Project-URL: Changelog, https://github.com/acc-cache/acc/blob/main/CHANGELOG.md
License-Expression: MIT
License-File: LICENSE
Classifier: Development Status :: 3 - Alpha
Classifier: Framework :: AsyncIO
Classifier: Programming Language :: Python :: 3.10
Classifier: Typing :: Typed
Requires-Python: >=3.10
Requires-Dist: acc-core<0.2,>=0.1
Requires-Dist: x-driver>=1
Description-Content-Type: text/markdown

# acc-backend-x

An x store for [acc](https://github.com/acc-cache/acc#readme).
"""


def test_good_metadata_has_no_problem() -> None:
    assert tool.check_metadata("x", _parse(GOOD_METADATA), Version("0.1.3")) == []


@pytest.mark.parametrize(
    ("old", "new", "version", "problem"),
    [
        ("License-Expression: MIT\n", "", "0.1.0", "License-Expression is None"),
        ("License-File: LICENSE\n", "", "0.1.0", "no License-File: LICENSE"),
        (
            "Classifier: Typing :: Typed\n",
            "Classifier: Typing :: Typed\nClassifier: License :: OSI Approved :: MIT License\n",
            "0.1.0",
            "PEP 639",
        ),
        ("Classifier: Typing :: Typed\n", "", "0.1.0", "no classifier 'Typing :: Typed'"),
        ("Classifier: Programming Language :: Python :: 3.10\n", "", "0.1.0", "Python :: 3."),
        ("Project-URL: Changelog, https://", "Project-URL: News, https://", "0.1.0", "'Changelog'"),
        ("Issues, https://", "Issues, http://", "0.1.0", "no https Project-URL 'Issues'"),
        ("acc-core<0.2,>=0.1", "acc-core", "0.1.0", "acc-core (any version), not the release"),
        ("acc-core<0.2,>=0.1", "acc-core>=0.1", "0.1.0", "not the release series"),
        ("", "", "0.2.0", "not the release series <0.3,>=0.2"),
        ("(https://github.com/acc-cache/acc#readme)", "(../../README.md)", "0.1.0", "relative"),
        ("text/markdown", "text/x-rst", "0.1.0", "not text/markdown"),
        ("Requires-Python: >=3.10\n", "", "0.1.0", "no Requires-Python"),
    ],
)
def test_the_checker_finds_each_metadata_problem(
    old: str, new: str, version: str, problem: str
) -> None:
    assert old in GOOD_METADATA
    broken = GOOD_METADATA.replace(old, new, 1)
    problems = tool.check_metadata("x", _parse(broken), Version(version))
    assert any(problem in p for p in problems), problems


# -- the build -------------------------------------------------------------------------------


@pytest.mark.slow
def test_dist_build_writes_an_sdist_and_a_wheel_of_every_package(dist: Path) -> None:
    expected = set()
    for package in tool.workspace_packages(ROOT):
        name, version = package.file_prefix, _version_of(package.directory)
        expected |= {f"{name}-{version}.tar.gz", f"{name}-{version}-py3-none-any.whl"}
    assert {p.name for p in dist.iterdir()} == expected
    assert len(expected) == 2 * len(PACKAGES)


@pytest.mark.slow
def test_twine_check_passes_on_every_artefact(dist: Path, fresh_clone: Path) -> None:
    files = sorted(str(p) for p in dist.iterdir())
    result = run([sys.executable, "-m", "twine", "check", "--strict", *files], cwd=fresh_clone)
    assert result.returncode == 0, explain(result)
    assert result.stdout.count("PASSED") == len(files) == 2 * len(PACKAGES), result.stdout


@pytest.mark.slow
def test_dist_check_passes_on_a_fresh_build(dist: Path, fresh_clone: Path) -> None:
    result = run([sys.executable, "scripts/dist.py", "check"], cwd=fresh_clone)
    assert result.returncode == 0, explain(result)
    assert "twine check --strict and content checks passed" in result.stdout


@pytest.mark.slow
def test_dist_check_holds_the_artefacts_to_the_release_tags_version(
    dist: Path, fresh_clone: Path
) -> None:
    version = _version_of(ROOT / "packages" / "core")
    passed = run(
        [sys.executable, "scripts/dist.py", "check", "--version", f"v{version}"], cwd=fresh_clone
    )
    assert passed.returncode == 0, explain(passed)
    failed = run(
        [sys.executable, "scripts/dist.py", "check", "--version", "99.0.0"], cwd=fresh_clone
    )
    assert failed.returncode == 1, explain(failed)
    assert f"version {version} is not the release's version 99.0.0" in failed.stderr


@pytest.mark.slow
def test_licence_changelog_and_project_urls_are_in_every_artefact(dist: Path) -> None:
    """Read directly, not through the checker: the "done when" of the release issue."""
    licence = (ROOT / "LICENSE").read_bytes()
    changelog = (ROOT / "CHANGELOG.md").read_bytes()
    for wheel_path in sorted(dist.glob("*.whl")):
        with zipfile.ZipFile(wheel_path) as wheel:
            (metadata_name,) = [n for n in wheel.namelist() if n.endswith(".dist-info/METADATA")]
            info = metadata_name.rsplit("/", 1)[0]
            metadata = _parse(wheel.read(metadata_name).decode())
            assert wheel.read(f"{info}/licenses/LICENSE") == licence, wheel_path.name
        _assert_release_metadata(wheel_path.name, metadata)
    for sdist_path in sorted(dist.glob("*.tar.gz")):
        top = sdist_path.name.removesuffix(".tar.gz")
        with tarfile.open(sdist_path) as sdist:
            files = {
                name: sdist.extractfile(f"{top}/{name}").read()  # type: ignore[union-attr]
                for name in ("LICENSE", "CHANGELOG.md", "PKG-INFO")
            }
        assert files["LICENSE"] == licence, sdist_path.name
        assert files["CHANGELOG.md"] == changelog, sdist_path.name
        _assert_release_metadata(sdist_path.name, _parse(files["PKG-INFO"].decode()))


def _assert_release_metadata(where: str, metadata: email.message.Message) -> None:
    assert metadata["License-Expression"] == "MIT", where
    assert "LICENSE" in metadata.get_all("License-File", []), where
    labels = {field.split(",")[0] for field in metadata.get_all("Project-URL", [])}
    assert set(URLS) <= labels, where
    classifiers = metadata.get_all("Classifier", [])
    assert {"Framework :: AsyncIO", "Typing :: Typed"} <= set(classifiers), where
    assert "Programming Language :: Python :: 3.10" in classifiers, where


# -- the checker, on broken copies of real artefacts ------------------------------------------


def _rewrite_wheel(
    path: Path,
    *,
    drop: Callable[[str], bool] = lambda _name: False,
    add: dict[str, bytes] | None = None,
    edit: Callable[[str, bytes], bytes] = lambda _name, data: data,
) -> None:
    rewritten = path.with_name(path.name + ".tmp")
    with zipfile.ZipFile(path) as source, zipfile.ZipFile(rewritten, "w") as target:
        for info in source.infolist():
            if not drop(info.filename):
                target.writestr(info, edit(info.filename, source.read(info)))
        for name, data in (add or {}).items():
            target.writestr(name, data)
    rewritten.replace(path)


def _drop_from_sdist(path: Path, suffix: str) -> None:
    rewritten = path.with_name(path.name + ".tmp")
    with tarfile.open(path) as source, tarfile.open(rewritten, "w:gz") as target:
        for member in source.getmembers():
            if not member.name.endswith(suffix):
                target.addfile(member, source.extractfile(member) if member.isfile() else None)
    rewritten.replace(path)


def _unpin(name: str, data: bytes) -> bytes:
    if name.endswith(".dist-info/METADATA"):
        return re.sub(rb"Requires-Dist: acc-core[^\n]*", b"Requires-Dist: acc-core", data)
    return data


BREAKAGES: dict[str, tuple[Callable[[Path], object], str]] = {
    "a namespace __init__.py in a wheel": (
        lambda d: _rewrite_wheel(next(d.glob("acc_core-*.whl")), add={"acc/__init__.py": b""}),
        "acc/__init__.py would hide the other acc packages",
    ),
    "a wheel without its licence": (
        lambda d: _rewrite_wheel(
            next(d.glob("acc_core-*.whl")), drop=lambda n: n.endswith("/licenses/LICENSE")
        ),
        "licenses/LICENSE",
    ),
    "a wheel with tests in it": (
        lambda d: _rewrite_wheel(
            next(d.glob("acc_core-*.whl")), add={"tests/test_core.py": b"x = 1\n"}
        ),
        "stray file tests/test_core.py",
    ),
    "a wheel without py.typed": (
        lambda d: _rewrite_wheel(
            next(d.glob("acc_backend_sqlite-*.whl")), drop=lambda n: n.endswith("py.typed")
        ),
        "no py.typed marker",
    ),
    "an unpinned acc-core": (
        lambda d: _rewrite_wheel(next(d.glob("acc_backend_redis-*.whl")), edit=_unpin),
        "requires acc-core (any version)",
    ),
    "an sdist without the changelog": (
        lambda d: _drop_from_sdist(next(d.glob("acc_core-*.tar.gz")), "/CHANGELOG.md"),
        "no CHANGELOG.md",
    ),
    "a package without a wheel": (
        lambda d: next(d.glob("acc_session_aiohttp-*.whl")).unlink(),
        "acc-session-aiohttp: expected one sdist and one wheel",
    ),
    "two versions of a package": (
        lambda d: shutil.copy(
            next(d.glob("acc_core-*.whl")), d / "acc_core-0.0.9-py3-none-any.whl"
        ),
        "dist holds several",
    ),
    "a file that is not an artefact": (
        lambda d: (d / "notes.txt").write_text("x"),
        "notes.txt: not an artefact",
    ),
}


@pytest.mark.slow
@pytest.mark.parametrize("breakage", sorted(BREAKAGES))
def test_dist_check_finds_a_broken_artefact(
    breakage: str, dist: Path, fresh_clone: Path, tmp_path: Path
) -> None:
    broken = tmp_path / "dist"
    shutil.copytree(dist, broken)
    assert tool.check_artefacts(broken, fresh_clone) == []  # the copy is fine as it is
    damage, problem = BREAKAGES[breakage]
    damage(broken)
    problems = tool.check_artefacts(broken, fresh_clone)
    assert any(problem in p for p in problems), problems
