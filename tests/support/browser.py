"""Headless Chromium from Debian's package, driven by Playwright (never a downloaded browser)."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, sync_playwright

CHROMIUM_FLAGS = [
    "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]
SCREENSHOTS = Path(os.environ.get("ZHIXING_SCREENSHOT_DIR", "build/screenshots"))


def chromium_path() -> str:
    path = os.environ.get("ZHIXING_CHROMIUM") or shutil.which("chromium")
    if not path:
        if os.environ.get("CI"):
            pytest.fail("chromium is not installed (scripts/test-all.sh installs it)")
        pytest.skip("chromium is not installed; `apt-get install chromium` to run browser tests")
    return path


@contextmanager
def chromium() -> Iterator[Browser]:
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium_path(), headless=True,
                                    args=CHROMIUM_FLAGS)
        try:
            yield browser
        finally:
            browser.close()


def console_page(browser: Browser, base: str, username: str, password: str, *,
                 width: int = 1366, height: int = 800, next_path: str = "/") -> tuple[
                     Page, list[str]]:
    """A page logged in as ``username`` at ``next_path``, and the list that collects the
    page's console errors (a test asserts it stays empty)."""
    page = browser.new_page(viewport={"width": width, "height": height}, locale="zh-CN")
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.goto(f"{base}/login?next={next_path}")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", password)
    page.click("button[type=submit]")
    page.wait_for_url(f"{base}{next_path}")
    return page, errors
