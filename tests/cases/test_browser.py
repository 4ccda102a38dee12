"""An officer files a case in the browser, moves it to property investigation, and sees the
statutory deadline warning."""

from __future__ import annotations

import random
from datetime import timedelta

import pytest

from tests.conftest import PASSWORD
from tests.support.browser import SCREENSHOTS, chromium, console_page
from tests.support.database import ScratchDatabase
from tests.support.server import running_server
from zhixing.cases.service import today
from zhixing.demo_data.identities import credit_code, resident_id

pytestmark = pytest.mark.browser


def test_file_a_case_and_see_the_deadline_warning(test_db: ScratchDatabase) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    rng = random.Random(77)
    filed = today() - timedelta(days=178)  # the 6-month period ends within the week
    with running_server(test_db.url) as base, chromium() as browser:
        page, errors = console_page(browser, base, "qingxiu.officer", PASSWORD, width=1400,
                                    height=1000)
        page.click("nav.sidebar >> text=立案登记")
        page.wait_for_url(f"{base}/cases/new")
        form = page.locator("[data-testid=new-case]")
        form.locator("input[name=filed_on]").fill(filed.isoformat())
        form.locator("input[name=title_issuer]").fill("南宁市青秀区人民法院")
        form.locator("input[name=title_document_number]").fill("（2025）桂0103民初2088号")
        form.locator("input[name=title_date]").fill((filed - timedelta(days=90)).isoformat())
        form.locator("input[name=title_effective_date]").fill(
            (filed - timedelta(days=60)).isoformat())
        form.locator("input[name=principal]").fill("860,000.00")
        form.locator("input[name=interest]").fill("12500.5")
        form.locator("select[name=a0_kind]").select_option("organisation")
        form.locator("input[name=a0_name]").fill("南宁市某建材有限公司")
        form.locator("input[name=a0_id_number]").fill(credit_code(rng))
        form.locator("input[name=d0_name]").fill("刘某明")
        form.locator("input[name=d0_id_number]").fill(resident_id(rng))
        form.locator("button[type=submit]").click()
        page.wait_for_url(f"{base}/cases/*")
        number = page.inner_text("[data-testid=case-number]")
        assert number.startswith(f"（{filed.year}）桂0103执") and number.endswith("号")
        assert page.inner_text("[data-testid=outstanding]") == "872,500.50"
        for target in ("notice_served", "investigating"):
            page.select_option("[data-testid=advance-form] select[name=to]", target)
            page.click("[data-testid=advance-form] button[type=submit]")
            page.wait_for_load_state()
        assert "财产调查" in page.inner_text(".case-head")
        warnings = page.inner_text("[data-testid=deadline-warnings]")
        assert "执行审限" in warnings and "即将到期" in warnings
        assert "送达通知" in page.inner_text("[data-testid=timeline]")
        page.screenshot(path=str(SCREENSHOTS / "case-page.png"), full_page=True)
        page.goto(f"{base}/cases/queue")
        assert page.locator("[data-testid=queue-due-soon] a", has_text=number).count() == 1
        page.screenshot(path=str(SCREENSHOTS / "work-queue.png"), full_page=True)
        assert errors == [], errors
