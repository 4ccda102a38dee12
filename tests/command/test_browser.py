"""The Zeng story in real browsers against a real server: the regional duty leader calls the
roll; Liuzhou answers with a request about debtor Zeng's car in Guilin's Qixing district; it
goes region → Guilin → Qixing, each acknowledging; Qixing's duty desk dispatches the nearest
field team from the request, whose bailiff follows the task on his phone (en route, on scene,
a photo of the car, done); Qixing reports the car seized; the Liuzhou console sees the team's
steps and the result arrive without a reload, and the photo is on the asking case."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page

from tests.cases.factories import case_payload, person
from tests.conftest import PASSWORD
from tests.field.support import QIXING, team_of
from tests.support.browser import chromium, console_page
from tests.support.database import ScratchDatabase
from tests.support.server import api_post, running_server
from zhixing.core.db import transaction
from zhixing.field import resources

pytestmark = pytest.mark.browser

PHOTO = b"\xff\xd8\xff\xe0" + b"\x00" * 256 + b"zeng car seized"
BOARD_SHOT = Path("/tmp/command_board.png")  # noqa: S108 (the brief names this file)



def _token(base: str, username: str) -> str:
    return str(api_post(f"{base}/api/v1/auth/tokens",
                     {"username": username, "password": PASSWORD})["token"])


def _acknowledge_and_hand_down(page: Page, to: str) -> None:
    page.locator("[data-testid=acknowledge-form] button").click()
    page.wait_for_selector("[data-testid=hand-down-form]")
    field = page.locator("[data-testid=hand-down-form] input[name=to_court_code]")
    assert field.input_value() == to  # the platform suggests the next center on the way
    page.locator("[data-testid=hand-down-form] button[type=submit]").click()
    page.wait_for_selector(f"[data-testid=hops] li[data-to='{to}']")


def _dispatch_the_nearest_team(browser: Browser, base: str, qixing: Page, photo: Path) -> None:
    """From the request page, Qixing's desk sends the nearest team; the bailiff works the task
    on his phone and photographs the car there: the photo goes back along the request."""
    team = team_of(QIXING)
    phone = browser.new_page(viewport={"width": 390, "height": 844}, locale="zh-CN",
                             is_mobile=True, has_touch=True, permissions=["geolocation"],
                             geolocation={"longitude": team.lon, "latitude": team.lat})
    phone_errors: list[str] = []
    phone.on("console", lambda m: phone_errors.append(m.text) if m.type == "error" else None)
    phone.goto(f"{base}/login?next=/field")
    phone.fill("input[name=username]", "qixing.bailiff")
    phone.fill("input[name=password]", PASSWORD)
    phone.click("button[type=submit]")
    phone.wait_for_url(f"{base}/field")
    phone.click("[data-testid=locate]")  # on patrol: the team's position is known
    phone.locator("[data-testid=msg]", has_text="位置已上报").wait_for(timeout=10_000)

    request_url = qixing.url
    qixing.click("[data-testid=dispatch-for-request]")
    qixing.wait_for_url(re.compile(r".*/field/dispatches/new\?request_id=\d+$"))
    form = qixing.locator("[data-testid=dispatch-form]")
    assert "7Z311" in form.locator("input[name=task]").input_value()  # from the request
    assert form.locator("input[name=place]").input_value() == "桂林市七星区某酒店停车场"
    form.locator("[data-testid=lon]").fill(f"{team.lon + 0.002:.6f}")
    form.locator("[data-testid=lat]").fill(f"{team.lat + 0.001:.6f}")
    form.locator("[data-testid=find-nearest]").click()
    nearest = qixing.locator("[data-testid=nearest-teams] li").first
    nearest.wait_for()
    assert nearest.locator("input[type=radio]").is_checked()  # the nearest goes by default
    assert float(nearest.locator(".km").get_attribute("data-km") or "99") < 1
    form.locator("[data-testid=dispatch-submit]").click()
    qixing.wait_for_url(re.compile(r".*/field/dispatches/\d+$"))
    dispatch_url = qixing.url
    assert qixing.locator("[data-testid=dispatch-request]").count() == 1

    phone.reload()
    task = phone.locator("[data-testid=task]")
    assert task.count() == 1 and "7Z311" in task.inner_text()
    for step in ("en_route", "on_scene"):
        phone.click(f"[data-testid=move-{step}]")
        phone.wait_for_selector(f"[data-testid=task-status].st-{step}", timeout=10_000)
    phone.set_input_files("[data-testid=evidence-file]", str(photo))
    phone.click("[data-testid=evidence-upload]")
    phone.locator("[data-testid=evidence-count] b", has_text="1").wait_for(timeout=10_000)
    phone.click("[data-testid=move-done]")
    phone.wait_for_selector("[data-testid=no-tasks], [data-testid=task-status].st-done",
                            timeout=10_000)
    assert phone.evaluate("document.documentElement.scrollWidth") <= 390
    assert phone_errors == [], phone_errors

    qixing.goto(dispatch_url)  # the desk sees the whole way, and the photo
    assert "7Z311" in qixing.content()
    qixing.wait_for_selector(f"[data-testid=evidence] td:has-text('{photo.name}')")
    qixing.goto(request_url)
    qixing.wait_for_selector("[data-testid=request-dispatches] li[data-dispatch-id]")


def test_the_zeng_story(test_db: ScratchDatabase, tmp_path: Path) -> None:
    with transaction() as session:
        resources.seed_field(session)  # teams, vehicles, devices; qixing.bailiff in his team
    with running_server(test_db.url) as base, chromium() as browser:
        admin = _token(base, "admin")
        api_post(f"{base}/api/v1/users", {
            "username": "qixing.duty", "display_name": "值班员 七星", "court_code": "桂0305",
            "password": PASSWORD, "roles": ["duty_officer"]}, admin)
        case = api_post(f"{base}/api/v1/cases", case_payload(
            officer_username="liunan.officer", title_issuer="柳州市柳南区人民法院",
            debtors=[person("曾某")]), _token(base, "liunan.officer"))

        region, region_errors = console_page(browser, base, "gx.duty", PASSWORD, width=1500,
                                             height=1100, next_path="/command")
        region.locator("[data-testid=roll-call-form] summary").click()
        region.locator("[data-testid=roll-call-form] button[type=submit]").click()
        region.wait_for_selector("[data-testid=roll-call] li[data-court='桂02']"
                                 "[data-status=pending]")

        liuzhou, liuzhou_errors = console_page(browser, base, "liuzhou.duty", PASSWORD,
                                               width=1400, height=1000, next_path="/command")
        answer = liuzhou.locator("[data-testid=answer-roll-call]")
        answer.locator("[data-testid=answer-items] summary").click()
        form = answer.locator("[data-testid=answer-items] form")
        form.locator("textarea[name=text]").fill("申请执行人杨某发现曾某车辆在桂林七星区，请求协调扣押")
        form.locator("select[name=req_kind]").select_option("seize_vehicle")
        form.locator("select[name=req_urgency]").select_option("urgent")
        form.locator("input[name=req_place_court_code]").fill("桂0305")
        form.locator("input[name=req_place]").fill("桂林市七星区某酒店停车场")
        form.locator("input[name=req_subject]").fill("被执行人曾某的车辆 桂B·7Z311")
        form.locator("textarea[name=req_details]").fill("车辆现停放于酒店停车场，请立即扣押。")
        form.locator("input[name=req_case_number]").fill(case["case_number"])
        form.locator("button[type=submit]").click()
        liuzhou.wait_for_url(re.compile(r".*/command/requests/\d+$"))
        request_url = liuzhou.url
        liuzhou.wait_for_selector("#live-state[data-live=on]")
        loads: list[str] = []
        liuzhou.on("load", lambda p: loads.append(p.url))

        # the region's board shows Liuzhou's answer and the request live
        region.wait_for_selector("[data-testid=roll-call] li[data-court='桂02'][data-status=items]")
        region.wait_for_selector("[data-testid=open-requests] tr[data-request-id]")
        region.screenshot(path=str(BOARD_SHOT), full_page=True)

        region.goto(request_url)
        _acknowledge_and_hand_down(region, "桂03")
        guilin, guilin_errors = console_page(browser, base, "guilin.duty", PASSWORD,
                                             next_path=request_url.removeprefix(base))
        _acknowledge_and_hand_down(guilin, "桂0305")
        qixing, qixing_errors = console_page(browser, base, "qixing.duty", PASSWORD,
                                             width=430, height=900,
                                             next_path=request_url.removeprefix(base))
        qixing.locator("[data-testid=acknowledge-form] button").click()
        qixing.wait_for_selector("[data-testid=evidence-form]")
        photo = tmp_path / "zeng-car.jpg"
        photo.write_bytes(PHOTO)
        _dispatch_the_nearest_team(browser, base, qixing, photo)
        qixing.wait_for_selector("[data-testid=evidence] td:has-text('zeng-car.jpg')")
        qixing.locator("[data-testid=result-form] textarea[name=summary]").fill(
            "车辆已扣押，拖至七星区法院停车场")
        qixing.locator("[data-testid=result-form] button[type=submit]").click()
        qixing.wait_for_selector("[data-testid=request-status][data-status=done]")

        # Liuzhou sees it arrive, without reloading its page
        liuzhou.wait_for_selector("[data-testid=request-status][data-status=done]",
                                  timeout=15_000)
        assert "车辆已扣押" in liuzhou.inner_text("[data-testid=result-summary]")
        assert "zeng-car.jpg" in liuzhou.inner_text("[data-testid=evidence]")
        assert "到达现场" in liuzhou.inner_text("[data-testid=timeline]")  # the team's steps
        assert loads == []
        # a clock days long (a normal request's 7 days) counts in days, not in hundreds of hours
        liuzhou.evaluate("""() => {
            const el = document.createElement("span");
            el.id = "probe"; el.dataset.left = "剩余"; el.dataset.over = "超时";
            el.dataset.due = new Date(Date.now() + 2 * 86400e3 + 3600e3 + 30e3).toISOString();
            document.body.appendChild(el);
        }""")
        liuzhou.wait_for_function("() => (document.querySelector('#probe .left') || {})"
                                  ".textContent?.startsWith('剩余 2天 1:00:')")
        hops = liuzhou.locator("[data-testid=hops] li")
        assert [hops.nth(i).get_attribute("data-to") for i in range(hops.count())] == [
            "桂", "桂03", "桂0305"]
        # the photo is on the asking case
        officer, officer_errors = console_page(browser, base, "liunan.officer", PASSWORD,
                                               next_path=f"/cases/{case['id']}")
        assert "zeng-car.jpg" in officer.content()
        for errors in (region_errors, liuzhou_errors, guilin_errors, qixing_errors,
                       officer_errors):
            assert errors == []
