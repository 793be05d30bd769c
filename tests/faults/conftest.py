"""Fixtures of the fault tests; the harness itself is ``acc_faults`` (tests/support)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Any

import aiohttp
import pytest
from acc_faults import HANG, Harness

from acc.core import CacheBackend


@pytest.fixture
async def harness(origin: Any) -> AsyncIterator[Callable[[CacheBackend], Harness]]:
    """``harness(backend)``: a :class:`Harness` over ``backend`` (closed afterwards)."""
    made: list[CacheBackend] = []
    async with aiohttp.ClientSession() as http:

        def factory(backend: CacheBackend) -> Harness:
            made.append(backend)
            return Harness(origin, backend, http)

        yield factory
        for backend in made:
            await asyncio.wait_for(backend.close(), HANG)
