"""A person logs in to the console in a real browser and sees it."""

from __future__ import annotations

import pytest

from tests.conftest import PASSWORD
from tests.support.browser import SCREENSHOTS, chromium
from tests.support.database import ScratchDatabase
from tests.support.server import running_server

pytestmark = pytest.mark.browser


def test_login_and_see_the_console(test_db: ScratchDatabase) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    with running_server(test_db.url) as base, chromium() as browser:
        page = browser.new_page(viewport={"width": 1366, "height": 800}, locale="zh-CN")
        errors: list[str] = []
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        page.goto(f"{base}/")
        assert "/login" in page.url
        page.screenshot(path=str(SCREENSHOTS / "login.png"))
        page.fill("input[name=username]", "qingxiu.officer")
        page.fill("input[name=password]", "wrong password")
        page.click("button[type=submit]")
        assert "用户名或密码错误" in page.inner_text("[data-testid=login-error]")
        errors.clear()  # the 401 of the wrong password above was expected
        page.fill("input[name=username]", "qingxiu.officer")
        page.fill("input[name=password]", PASSWORD)
        page.click("button[type=submit]")
        page.wait_for_url(f"{base}/")
        assert "青秀区法院" in page.inner_text("[data-testid=court]")
        assert "执行员" in page.inner_text("[data-testid=who]")
        assert "工作台" in page.inner_text("main h1")
        page.screenshot(path=str(SCREENSHOTS / "home.png"), full_page=True)
        page.click("text=English")
        page.wait_for_load_state()
        assert page.inner_text("main h1") == "Workbench"
        page.click("nav.sidebar >> text=Courts & command centers")
        page.wait_for_url(f"{base}/courts")
        assert page.locator("[data-testid=courts] tbody tr").count() == 126
        page.screenshot(path=str(SCREENSHOTS / "courts-en.png"))
        page.click("button:has-text('Log out')")
        page.wait_for_url(f"{base}/login")
        assert errors == [], errors
