"""Guards for the layout and the dependency rule of DESIGN §1-§2.

import-linter checks imports of installed modules at the package level; these tests check
the source tree itself, so they also catch files that are not importable yet, and imports
hidden in functions or ``TYPE_CHECKING`` blocks.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = sorted(
    p for p in (ROOT / "packages").iterdir() if p.is_dir() and not p.name.startswith(".")
)
CORE = ROOT / "packages" / "core" / "src" / "acc" / "core"
CORE_MODULES = sorted(CORE.rglob("*.py"))

CORE_THIRD_PARTY = {"attrs", "attr", "cattrs", "acc"}
KIT_EXTRA = {"pytest"}  # acc.core.testing, the conformance kit, and only it
FORBIDDEN_IN_CORE = ("acc.sessions", "acc.backends")


def _relative(path: Path) -> str:
    return path.relative_to(ROOT).as_posix()


def _imported_modules(path: Path) -> list[tuple[int, str]]:
    """Every absolute module a file imports, as (line, dotted name), anywhere in it.

    ``from a import b`` yields both ``a`` and ``a.b``: ``b`` may be a submodule, and
    ``from acc import backends`` must not slip through.
    """
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    found: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.extend((node.lineno, alias.name) for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.append((node.lineno, node.module))
            found.extend((node.lineno, f"{node.module}.{alias.name}") for alias in node.names)
    return found


def test_the_workspace_has_packages_and_core_modules() -> None:
    # The other tests iterate over these lists; an empty list would make them pass vacuously.
    assert "core" in {p.name for p in PACKAGES}
    assert CORE / "storage" / "base.py" in CORE_MODULES
    assert CORE / "http" / "policy.py" in CORE_MODULES
    assert CORE / "testing.py" in CORE_MODULES


def test_import_scanner_sees_every_kind_of_import(tmp_path: Path) -> None:
    source = tmp_path / "sample.py"
    source.write_text(
        "import os.path, json as j\n"
        "from acc import backends\n"
        "from . import sibling\n"
        "def f():\n"
        "    import aiohttp\n"
        "if False:\n"
        "    from yarl import URL\n",
        encoding="utf-8",
    )
    assert sorted(_imported_modules(source)) == [
        (1, "json"),
        (1, "os.path"),
        (2, "acc"),
        (2, "acc.backends"),
        (5, "aiohttp"),
        (7, "yarl"),
        (7, "yarl.URL"),
    ]


@pytest.mark.parametrize(
    "namespace", ["acc/__init__.py", "acc/backends/__init__.py", "acc/sessions/__init__.py"]
)
def test_namespace_packages_have_no_init_file(namespace: str) -> None:
    offenders = [_relative(p) for p in sorted(ROOT.glob(f"packages/*/src/{namespace}"))]
    assert offenders == [], (
        "acc, acc.backends and acc.sessions are PEP 420 namespaces shared by several "
        f"distributions; an __init__.py in one hides the others: {offenders}"
    )


@pytest.mark.parametrize("module", CORE_MODULES, ids=lambda p: p.relative_to(CORE).as_posix())
def test_core_imports_only_stdlib_attrs_and_cattrs(module: Path) -> None:
    allowed = set(sys.stdlib_module_names) | CORE_THIRD_PARTY
    if module == CORE / "testing.py":
        allowed |= KIT_EXTRA
    bad = [
        f"{_relative(module)}:{line}: {name}"
        for line, name in _imported_modules(module)
        if name.partition(".")[0] not in allowed
    ]
    assert bad == []


@pytest.mark.parametrize("module", CORE_MODULES, ids=lambda p: p.relative_to(CORE).as_posix())
def test_core_never_imports_an_adapter(module: Path) -> None:
    bad = [
        f"{_relative(module)}:{line}: {name}"
        for line, name in _imported_modules(module)
        if any(name == f or name.startswith(f + ".") for f in FORBIDDEN_IN_CORE)
    ]
    assert bad == []


@pytest.mark.parametrize("package", PACKAGES, ids=lambda p: p.name)
def test_every_package_ships_py_typed_and_a_readme(package: Path) -> None:
    missing = [name for name in ("README.md",) if not (package / name).is_file()]
    if not list((package / "src").rglob("py.typed")):
        missing.append("src/**/py.typed")
    assert missing == [], f"{_relative(package)} lacks {missing}"
