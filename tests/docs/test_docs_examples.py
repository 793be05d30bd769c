"""The ```python examples of the documentation run, against a real local origin.

Conventions for the pages in ``docs/`` (also stated here because this test enforces them):

* A fenced block whose language is exactly ``python`` is an example that must run. The
  blocks of one page are executed in order, in one fresh namespace, so a later block may
  use what an earlier one defined.
* An example shows its I/O in ``async def main(url: str) -> None``. After each block that
  defines (or redefines) ``main``, the test awaits ``main(url)``, where ``url`` is
  ``origin("/json")``: a JSON endpoint of the test origin on 127.0.0.1 (see
  ``tests/conftest.py``). Examples never reach the internet, and assert what they show.
* Blocks do not run an event loop themselves (no top-level ``asyncio.run``) and use only
  the in-memory backend (or a file in a temporary folder), unless the page is about
  another backend.
* An example that talks to a server reads the server's URL from an environment variable
  with a default, in its own code, so that it runs when pasted::

      REDIS_URL = os.environ.get("ACC_REDIS_URL", "redis://localhost:6379/0")

  The variables are ``ACC_REDIS_URL``, ``ACC_REDIS_CLUSTER_URL``, ``ACC_MONGODB_URL`` and
  ``ACC_DYNAMODB_URL`` (those the test suite itself reads). The test sets each one a page
  mentions to the URL of the real server of the fixture of the same name in
  ``acc_services`` (``redis_url``, ...), and checks that every block using a server's URL
  defines it that way: nothing is injected into the examples' namespace.
* Examples run in a temporary current directory, so one that names a relative file or
  folder (``SQLiteBackend("http-cache")``) writes there, not into the checkout.
* Anything not meant to run (shell commands, signatures, fragments, code of other
  libraries) uses another fence language: ``text``, ``console``, ...
* A page without ``python`` blocks is not collected; a page whose blocks fail, fails.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

DOCS = Path(__file__).resolve().parents[2] / "docs"
_FENCE = re.compile(r"^ {0,3}(?P<fence>`{3,}|~{3,})(?P<info>.*)$")


def python_blocks(page: Path) -> list[tuple[int, str]]:
    """The ``python`` fenced blocks of ``page``, as (line before the code, source).

    Fences follow CommonMark: a run of three or more backticks or tildes opens a block,
    and a run of the same character, at least as long and with nothing after it, closes
    it; fences of other languages (and blocks nested in them) are skipped.
    """
    blocks: list[tuple[int, str]] = []
    opened: tuple[str, str, int] | None = None  # (fence, info, line number)
    body: list[str] = []
    for number, line in enumerate(page.read_text(encoding="utf-8").splitlines(), 1):
        match = _FENCE.match(line)
        if opened is None:
            if match:
                opened = (match["fence"], match["info"].strip(), number)
                body = []
            continue
        fence, info, start = opened
        if (
            match
            and match["fence"][0] == fence[0]
            and len(match["fence"]) >= len(fence)
            and not match["info"].strip()
        ):
            if info == "python":
                blocks.append((start, "\n".join(body) + "\n"))
            opened = None
        else:
            body.append(line)
    if opened is not None:
        raise AssertionError(f"{page.name}:{opened[2]}: a code fence is never closed")
    return blocks


PAGES = sorted(page for page in DOCS.glob("*.md") if python_blocks(page))


def test_pages_with_examples_are_found():
    assert DOCS.is_dir(), f"no docs directory at {DOCS}"
    assert PAGES, "no page of the documentation has a ```python example"


SERVICES = ("REDIS_URL", "REDIS_CLUSTER_URL", "MONGODB_URL", "DYNAMODB_URL")
"""The names of server URLs in examples; each is read from ``ACC_<name>``."""


def services_of(page: Path) -> list[str]:
    """The servers ``page``'s examples use (by the name of their URL)."""
    text = "".join(source for _, source in python_blocks(page))
    return [name for name in SERVICES if re.search(rf"\b{name}\b", text)]


def undefined_service_urls(source: str) -> list[str]:
    """The server URLs a block uses without reading them from the environment itself."""
    return [
        name
        for name in SERVICES
        if re.search(rf"\b{name}\b", source)
        and not re.search(
            rf"^{name} = os\.environ\.get\(\s*\"ACC_{name}\",\s*\"[^\"]+\"\s*\)",
            source,
            re.MULTILINE,
        )
    ]


def test_a_block_that_uses_a_server_url_must_read_it_from_the_environment() -> None:
    assert undefined_service_urls("cache = RedisBackend(url=REDIS_URL)\n") == ["REDIS_URL"]
    defined = (
        "import os\n"
        'REDIS_URL = os.environ.get("ACC_REDIS_URL", "redis://localhost:6379/0")\n'
        "cache = RedisBackend(url=REDIS_URL)\n"
    )
    assert undefined_service_urls(defined) == []


@pytest.mark.parametrize("page", PAGES, ids=[page.name for page in PAGES])
async def test_examples_run(
    page: Path,
    origin,
    request: pytest.FixtureRequest,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    monkeypatch.chdir(tmp_path)
    for first_line, source in python_blocks(page):
        missing = undefined_service_urls(source)
        assert not missing, (
            f"{page.name}:{first_line}: the block uses {missing} without reading it from the "
            f'environment with a default, as in: REDIS_URL = os.environ.get("ACC_REDIS_URL", '
            '"redis://localhost:6379/0")'
        )
    for name in services_of(page):
        monkeypatch.setenv(f"ACC_{name}", request.getfixturevalue(name.lower()))
    namespace: dict[str, Any] = {"__name__": f"docs_example_{page.stem.replace('-', '_')}"}
    url = origin("/json")
    ran = 0
    for first_line, source in python_blocks(page):
        # Pad with blank lines so tracebacks point at the line in the Markdown file.
        code = compile("\n" * first_line + source, str(page), "exec")
        previous_main = namespace.get("main")
        exec(code, namespace)
        main = namespace.get("main")
        if main is not None and main is not previous_main:
            await main(url)
            ran += 1
    assert ran or not any("async def main" in source for _, source in python_blocks(page))
