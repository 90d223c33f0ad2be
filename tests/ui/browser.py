"""Debian's Chromium driven through Playwright (Playwright's own browsers are never downloaded): launching it, and
skipping or failing where it is missing."""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page, Playwright


CHROMIUM = "/usr/bin/chromium"
BROWSER_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def require_browser() -> None:
    """Skip (with the remedy) where Playwright or Chromium is missing on a developer's machine; fail instead where
    ``REQUIRE_BROWSER`` is set (.ci/run sets it after installing Chromium), so CI cannot skip them silently."""
    missing = None
    try:
        import playwright  # noqa: F401
    except ImportError:
        missing = "playwright is not installed (pip install -e '.[test]')"
    if missing is None and not Path(CHROMIUM).exists() and not shutil.which("chromium"):
        missing = "Chromium is not installed (apt-get install -y chromium)"
    if missing is not None:
        if os.environ.get("REQUIRE_BROWSER"):
            pytest.fail(missing)
        pytest.skip(missing)


def launch(playwright: Playwright) -> Browser:
    executable = CHROMIUM if Path(CHROMIUM).exists() else shutil.which("chromium")
    return playwright.chromium.launch(executable_path=executable, headless=True, args=BROWSER_FLAGS)


def sign_in(page: Page, token: str) -> None:
    """On the console's sign-in page: enter the token and submit."""
    page.get_by_label("API token").fill(token)
    page.get_by_role("button", name="Sign in").click()
