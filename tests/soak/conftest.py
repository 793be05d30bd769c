"""The long soak runs only when asked for: ``pytest -m soak_long tests/soak``."""

from __future__ import annotations

import pytest


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if "soak_long" in (config.option.markexpr or ""):
        return
    skip = pytest.mark.skip(reason="the long soak runs with -m soak_long (minutes)")
    for item in items:
        if item.get_closest_marker("soak_long") is not None:
            item.add_marker(skip)
