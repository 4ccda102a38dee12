"""The big screen updates live: a case registered elsewhere moves its counter and ticker."""

from __future__ import annotations

import pytest

from tests.cases.factories import case_payload
from tests.conftest import PASSWORD
from tests.support.browser import SCREENSHOTS, chromium, console_page
from tests.support.database import ScratchDatabase
from tests.support.server import api_post, running_server

pytestmark = pytest.mark.browser



def test_big_screen_counter_changes_when_a_case_is_filed(test_db: ScratchDatabase) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    with running_server(test_db.url) as base, chromium() as browser:
        page, errors = console_page(browser, base, "gx.duty", PASSWORD, width=1920,
                                    height=1080, next_path="/screen")
        # Selector waits, not wait_for_function: the page's CSP rightly forbids eval.
        page.wait_for_selector("body[data-loaded='1']")
        page.wait_for_selector("#live.on")
        before = int(page.inner_text("[data-testid=c-received_today]"))
        token = api_post(f"{base}/api/v1/auth/tokens",
                      {"username": "qingxiu.officer", "password": PASSWORD})["token"]
        assert isinstance(token, str)
        case = api_post(f"{base}/api/v1/cases", case_payload(), token)
        page.locator("[data-testid=c-received_today]", has_text=str(before + 1)).wait_for(
            timeout=15_000)
        page.locator("#ticker li", has_text=str(case["case_number"])).first.wait_for(
            timeout=15_000)
        page.wait_for_timeout(1200)  # let the map finish drawing for the screenshot
        page.screenshot(path=str(SCREENSHOTS / "big-screen.png"))
        assert errors == [], errors
