"""Open an evaluation report in headless Chromium: console messages, the page's own count
of overlapping plot labels (measured with the browser's real text boxes) and, when asked,
a screenshot of the whole page. Shared by the browser tests and the docs sample."""

from __future__ import annotations

import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--hide-scrollbars",
    "--enable-logging=stderr",
    "--v=0",
)


@dataclass(frozen=True)
class PageCheck:
    dom: str
    console: list[str]  # console messages and uncaught errors
    plots: int
    overlaps: int
    overlapping: str  # "text a / text b | ..."
    height: int


def chromium_or_skip() -> str:
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        pytest.skip("chromium is not installed (apt-get install chromium)")
    return chromium


def _attr(dom: str, name: str) -> str:
    m = re.search(rf'<body[^>]*\s{name}="([^"]*)"', dom)
    return m.group(1) if m else ""


def check_page(
    chromium: str, page: Path, profile: Path, screenshot: Path | None = None, width: int = 1300
) -> PageCheck:
    """Load `page`, read what its script recorded on <body>, and optionally save a
    screenshot of the whole page (as tall as the page reported itself)."""
    base = [chromium, *_FLAGS, f"--user-data-dir={profile}", "--virtual-time-budget=3000"]
    proc = subprocess.run(
        [*base, f"--window-size={width},1000", "--dump-dom", page.as_uri()],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    dom = proc.stdout
    console = [
        line for line in proc.stderr.splitlines() if "CONSOLE" in line or "Uncaught" in line
    ]
    height = int(_attr(dom, "data-height") or 0)
    if screenshot is not None:
        shot = subprocess.run(
            [*base, f"--window-size={width},{max(height, 600)}", f"--screenshot={screenshot}",
             page.as_uri()],
            capture_output=True,
            text=True,
            timeout=120,
        )  # fmt: skip
        assert shot.returncode == 0 and screenshot.exists(), shot.stderr[-2000:]
        console += [
            line for line in shot.stderr.splitlines() if "CONSOLE" in line or "Uncaught" in line
        ]
    return PageCheck(
        dom,
        console,
        int(_attr(dom, "data-plots") or 0),
        int(_attr(dom, "data-label-overlaps") or -1),
        _attr(dom, "data-overlapping"),
        height,
    )
