"""Drive the console in Debian's Chromium through Playwright (its own browsers are never downloaded)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from tests.ui.airflow_ui import BROWSER_FLAGS, CHROMIUM

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page, Playwright


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
    return playwright.chromium.launch(executable_path=executable, headless=True, args=["--headless", *BROWSER_FLAGS])


def sign_in(page: Page, token: str) -> None:
    """On the sign-in page: enter the token and submit."""
    page.get_by_label("API token").fill(token)
    page.get_by_role("button", name="Sign in").click()
