"""Make the terminal captures of docs/cli.md: ``acc stats`` and ``acc prune``.

Run from the repository root, in the workspace's environment::

    hatch run python docs/_static/capture/make_captures.py

It fills a SQLite cache with 3,000 entries of a few made-up hosts, runs the real ``acc``
commands in a real terminal (tmux, 120x40, so ``acc prune`` shows its progress bar),
captures the screen with its colours (``tmux capture-pane -e``), and renders it to PNG:
rich turns the ANSI text into an SVG, ``rsvg-convert`` (Debian: librsvg2-bin) into PNG.
Needs tmux and rsvg-convert.
"""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

from rich.console import Console
from rich.text import Text

from acc.core import CacheBackend, CachedResponse

HERE = Path(__file__).resolve().parent
STATIC = HERE.parent
HOSTS = ("api.example.com", "cdn.example.com", "auth.example.com")
TYPES = (("application/json", 1800), ("text/html", 5200), ("image/png", 24000))


async def fill(url: str) -> None:
    """3,000 entries; a tenth of them already past their expiry, a few 404s and 301s."""
    now = datetime.now(timezone.utc)
    async with CacheBackend.from_url(url) as backend:
        for n in range(3000):
            host = HOSTS[n % 3]
            kind, size = TYPES[n % 7 % 3]
            status = 404 if n % 50 == 0 else (301 if n % 97 == 0 else 200)
            created = now - timedelta(hours=n % 72)
            expires = created + timedelta(minutes=30) if n % 10 == 0 else now + timedelta(days=1)
            entry = CachedResponse(
                status=status,
                reason="OK",
                url=f"https://{host}/v1/items/{n}",
                method="GET",
                headers=(("Content-Type", kind),),
                body=bytes(size + n % 700),
                created_at=created,
                expires=expires,
            )
            await backend.write_entry(f"key-{n}", entry, keep_until=now + timedelta(days=2))


def capture(command: str, name: str, *, title: str, wait_for: str) -> None:
    """Run ``command`` in a 120x40 tmux session; render its screen to ``name``.png."""
    session = f"acc-capture-{name}"
    subprocess.run(["tmux", "kill-session", "-t", session], capture_output=True, check=False)
    subprocess.run(
        ["tmux", "new-session", "-d", "-s", session, "-x", "120", "-y", "40", "bash", "--norc"],
        check=True,
    )
    subprocess.run(["tmux", "send-keys", "-t", session, "PS1='$ '; clear", "Enter"], check=True)
    time.sleep(0.5)
    subprocess.run(["tmux", "send-keys", "-t", session, command, "Enter"], check=True)
    deadline = time.monotonic() + 120
    screen = ""
    while time.monotonic() < deadline:
        time.sleep(0.5)
        screen = subprocess.run(
            ["tmux", "capture-pane", "-p", "-e", "-t", session],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        if wait_for in screen and screen.rstrip().endswith("$"):
            break
    subprocess.run(["tmux", "kill-session", "-t", session], check=False)
    lines = screen.rstrip().splitlines()
    console = Console(record=True, width=120, force_terminal=True, color_system="truecolor")
    console.print(Text.from_ansi("\n".join(lines)))
    svg = STATIC / f"{name}.svg"
    console.save_svg(str(svg), title=title)
    subprocess.run(
        ["rsvg-convert", "--zoom", "1", "-o", str(STATIC / f"{name}.png"), str(svg)], check=True
    )
    svg.unlink()


def main() -> None:
    """Fill a cache, capture ``acc stats`` and ``acc prune``."""
    for tool in ("tmux", "rsvg-convert"):
        if shutil.which(tool) is None:
            sys.exit(f"{tool} is needed (apt-get install tmux librsvg2-bin)")
    with tempfile.TemporaryDirectory(prefix="acc-capture-") as folder:
        url = f"sqlite:///{folder}/http-cache.sqlite"
        asyncio.run(fill(url))
        acc = Path(sys.executable).with_name("acc")
        env = f"export ACC_CACHE_URL={url}; export PATH={acc.parent}:$PATH; "
        subprocess.run(["bash", "-c", env + "true"], check=True)
        capture(
            env + "clear; acc stats", "acc-stats", title="$ acc stats", wait_for="by content type"
        )
        capture(
            env + "clear; acc prune --older-than 2d --max-bytes 12MB",
            "acc-prune",
            title="$ acc prune --older-than 2d --max-bytes 12MB",
            wait_for="kept",
        )


if __name__ == "__main__":
    main()
