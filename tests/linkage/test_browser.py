"""An officer starts a network query from the case page; the inquiry page fills in live as a
bank answers through the SDK (the real protocol against a real server), without a reload."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime

import pytest

from tests.cases.factories import case_payload, person
from tests.conftest import PASSWORD
from tests.linkage.support import onboard
from tests.linkage.test_inquiries import deposits_result
from tests.support.browser import SCREENSHOTS, chromium, console_page
from tests.support.database import ScratchDatabase
from tests.support.server import api_post, running_server
from zhixing.linkage import keys, signing, wire
from zhixing.linkage.client import LinkageClient

pytestmark = pytest.mark.browser



def _unit(base: str, issued: keys.IssuedKeys) -> LinkageClient:
    return LinkageClient(base, issued.key_id, signing.decode_secret(issued.secret),
                         platform_keys={issued.platform_key_id:
                                        signing.decode_secret(issued.platform_secret)},
                         max_attempts=1)


def test_the_inquiry_page_fills_in_live(test_db: ScratchDatabase) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    issued = onboard()
    with running_server(test_db.url) as base, chromium() as browser:
        token = api_post(f"{base}/api/v1/auth/tokens",
                      {"username": "qingxiu.officer", "password": PASSWORD})["token"]
        case = api_post(f"{base}/api/v1/cases", case_payload(debtors=[person("刘某明")]), token)
        page, errors = console_page(browser, base, "qingxiu.officer", PASSWORD, width=1500,
                                    height=1000, next_path=f"/cases/{case['id']}")
        form = page.locator("[data-testid=inquiry-form]")
        assert form.locator("input[name=purpose]").input_value() == "查明被执行人财产以供执行"
        for kind in ("securities", "household_registration", "lodging"):
            form.locator(f"input[name=kinds][value={kind}]").uncheck()
        form.locator("button[type=submit]").click()
        page.wait_for_url(re.compile(rf".*/cases/{case['id']}/inquiries/\d+$"))
        page.wait_for_selector("#live-state[data-live=on]")  # the stream is connected
        loads: list[str] = []
        page.on("load", lambda p: loads.append(p.url))
        total = page.locator("[data-testid=tasks] tbody tr").count()
        assert total > 20 and page.inner_text("[data-testid=done-total]") == f"0 / {total}"

        bank = _unit(base, issued["bank-icbc"])
        [task] = bank.fetch_tasks(10).tasks
        row = page.locator(f"tr[data-task-id='{task.task_id}']")
        page.locator(f"tr[data-task-id='{task.task_id}'][data-status=delivered]").wait_for(
            timeout=15_000)
        bank.post_results([deposits_result(task, balance=8_650_000)])
        vehicles = _unit(base, issued["dept-gx-ps-vehicles"])
        [car] = vehicles.fetch_tasks(10).tasks
        vehicles.post_results([wire.Result(
            schema_version="1", task_id=car.task_id, status="answered",
            reported_at=datetime.now(UTC), payload=wire.VehiclesPayload(
                kind="vehicles", vehicles=[wire.Vehicle(
                    plate_number="桂A8R261", model="丰田 凯美瑞", vin="LVGBE40K8JG123456",
                    registered_on=date(2021, 3, 18))]))])
        page.locator(f"tr[data-task-id='{task.task_id}'][data-status=answered]").wait_for(
            timeout=15_000)
        page.locator(f"tr[data-task-id='{car.task_id}'][data-status=answered]").wait_for(
            timeout=15_000)
        assert "已反馈" in row.inner_text() and "86,500.00" in row.inner_text()
        page.locator("[data-testid=done-total]", has_text=f"2 / {total}").wait_for(
            timeout=15_000)
        assert page.inner_text("[data-testid=found-fen]") == "86,500.00"
        assert loads == [], "the page was reloaded"
        page.wait_for_timeout(700)  # let the swap settle for the screenshot
        page.screenshot(path=str(SCREENSHOTS / "inquiry.png"), full_page=True)
        page.screenshot(path=str(SCREENSHOTS / "inquiry-top.png"))

        page.goto(f"{base}/cases/{case['id']}")
        assert page.locator("[data-testid=inquiries] tbody tr").count() == 1
        page.locator("[data-testid=inquiries] a").first.wait_for()
        page.screenshot(path=str(SCREENSHOTS / "case-network.png"), full_page=True)
        assert errors == [], errors
