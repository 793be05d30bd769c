"""The API reference (docs/reference.md) covers every public class, and the helpers the
backend guide uses.

A name counts as covered when the page has an autodoc directive for it
(``.. autoclass:: acc.backends.sqlite.SQLiteBackend``) or for a module that exports it
with ``:members:`` (``.. automodule:: acc.backends.sqlite`` with ``:members:``).
"""

from __future__ import annotations

import importlib
import inspect
import re
from pathlib import Path

import pytest

REFERENCE = Path(__file__).resolve().parents[2] / "docs" / "reference.md"
_DIRECTIVE = re.compile(
    r"^\.\. auto(?P<kind>\w+):: (?P<target>[\w.]+)\n(?P<options>(?:   .*\n)*)", re.M
)

MODULES = [
    "acc.core",
    "acc.core.testing",
    "acc.sessions.aiohttp",
    "acc.sessions.httpx",
    "acc.backends.sqlite",
    "acc.backends.filesystem",
    "acc.backends.redis",
    "acc.backends.mongo",
    "acc.backends.dynamodb",
]
"""Public modules: every class in their ``__all__`` is documented."""

GUIDE_HELPERS = [
    "acc.core.url_options.OptionsTable",
    "acc.core.url_options.CACHE_OPTIONS",
    "acc.core.url_options.parse_url_options",
    "acc.core.url_options.register_option_type",
    "acc.core.url_options.url_scheme",
    "acc.core.registry.resolve_backend_class",
    "acc.core.registry.installed_schemes",
    "acc.core.registry.invalidate_cache",
    "acc.core.registry.KNOWN_BACKENDS",
    "acc.core.registry.ENTRY_POINT_GROUP",
    "acc.core.storage.sharing.SharedConnection",
    "acc.core.testing.BaseCacheContract",
    "acc.core.testing.expected_failure",
]
"""What docs/writing-a-backend.md and the registry docs tell backend authors to use."""


def documented() -> tuple[set[str], set[str]]:
    """(names with a directive of their own, modules documented with their members)."""
    text = REFERENCE.read_text(encoding="utf-8") + "\n"
    names: set[str] = set()
    modules: set[str] = set()
    for match in _DIRECTIVE.finditer(text):
        names.add(match["target"])
        if match["kind"] == "module" and ":members:" in match["options"]:
            modules.add(match["target"])
    return names, modules


def public_classes(module_name: str) -> list[str]:
    module = importlib.import_module(module_name)
    return [
        name for name in getattr(module, "__all__", ()) if inspect.isclass(getattr(module, name))
    ]


def test_directives_are_found() -> None:
    names, modules = documented()
    assert "acc.core" in modules
    assert "acc.sessions.aiohttp.CachedSession" in names


@pytest.mark.parametrize("module_name", MODULES)
def test_every_public_class_is_in_the_reference(module_name: str) -> None:
    names, modules = documented()
    classes = public_classes(module_name)
    assert classes, f"{module_name} exports no class: the check would be vacuous"
    missing = [
        f"{module_name}.{name}"
        for name in classes
        if module_name not in modules and f"{module_name}.{name}" not in names
    ]
    assert missing == []


def test_the_backend_guides_helpers_are_in_the_reference() -> None:
    names, _modules = documented()
    assert [helper for helper in GUIDE_HELPERS if helper not in names] == []
