"""The field app on a phone (position by geolocation, a photo, a status, SOS) and the command
map receiving changes live, in Chromium."""

from __future__ import annotations

import json
import shutil
import tempfile
import urllib.request
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import select

from tests.cases.factories import case_payload
from tests.conftest import PASSWORD
from tests.field.support import QIXING, team_of
from tests.support.browser import SCREENSHOTS, chromium, console_page
from tests.support.database import ScratchDatabase
from tests.support.server import running_server
from zhixing.core.db import transaction
from zhixing.field import resources
from zhixing.field.models import FieldResource, LatestPosition

pytestmark = pytest.mark.browser

SHOTS = Path(tempfile.gettempdir())  # /tmp/field_app.png and /tmp/field_map.png
JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + b"\x00" * 4000


def _call(url: str, body: dict[str, object] | None = None, token: str | None = None,
          method: str = "POST") -> dict[str, object]:
    headers = {"content-type": "application/json"}
    if token:
        headers["authorization"] = f"Bearer {token}"
    req = urllib.request.Request(url, data=None if body is None else json.dumps(body).encode(),  # noqa: S310
                                 headers=headers, method=method)
    with urllib.request.urlopen(req, timeout=10) as resp:  # noqa: S310 (loopback test server)
        result: dict[str, object] = json.loads(resp.read())
        return result


def _token(base: str, username: str) -> str:
    token = _call(f"{base}/api/v1/auth/tokens", {"username": username, "password": PASSWORD})
    return str(token["token"])


def _keep(path: Path, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    shutil.copy(path, SCREENSHOTS / name)


def test_field_app_on_a_phone(test_db: ScratchDatabase, tmp_path: Path) -> None:
    with transaction() as session:
        resources.seed_field(session)
    t = team_of(QIXING)
    with running_server(test_db.url) as base, chromium() as browser:
        case = _call(f"{base}/api/v1/cases", case_payload(), _token(base, "qingxiu.officer"))
        desk = _token(base, "gx.duty")
        task = _call(f"{base}/api/v1/field/dispatches", {
            "task": "扣押曾某的车辆", "place": "桂林市七星区某酒店停车场", "lon": t.lon,
            "lat": t.lat, "team_id": t.id, "case_id": case["id"]}, desk)
        page = browser.new_page(viewport={"width": 390, "height": 844}, locale="zh-CN",
                                is_mobile=True, has_touch=True, permissions=["geolocation"],
                                geolocation={"longitude": t.lon + 0.003,
                                             "latitude": t.lat + 0.002})
        errors: list[str] = []
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        page.goto(f"{base}/login?next=/field")
        page.fill("input[name=username]", "qixing.bailiff")
        page.fill("input[name=password]", PASSWORD)
        page.click("button[type=submit]")
        page.wait_for_url(f"{base}/field")
        assert page.locator("[data-testid=task]").count() == 1

        page.click("[data-testid=locate]")
        page.locator("[data-testid=msg]", has_text="位置已上报").wait_for(timeout=10_000)
        assert f"{t.lon + 0.003:.5f}" in page.inner_text("[data-testid=last-position]")

        photo = tmp_path / "scene.jpg"
        photo.write_bytes(JPEG)
        page.set_input_files("[data-testid=evidence-file]", str(photo))
        page.click("[data-testid=evidence-upload]")
        page.locator("[data-testid=evidence-count] b", has_text="1").wait_for(timeout=10_000)
        detail = _call(f"{base}/api/v1/cases/{case['id']}", None,
                       _token(base, "qingxiu.officer"), method="GET")
        documents = detail["documents"]
        assert isinstance(documents, list)
        assert [d["filename"] for d in documents] == ["scene.jpg"]

        page.click("[data-testid=move-en_route]")
        page.wait_for_selector("[data-testid=task-status].st-en_route", timeout=10_000)

        # The page reports a fresh position right after the SOS; wait for it, so the test's
        # own requests below do not race the page's on the embedded SQLite server.
        with page.expect_response("**/api/v1/field/positions", timeout=10_000):
            page.click("[data-testid=sos]")
        page.locator("[data-testid=sos]", has_text="已求援").wait_for(timeout=10_000)
        incidents = _call(f"{base}/api/v1/field/incidents", None, desk, method="GET")
        items = incidents["items"]
        assert isinstance(items, list) and len(items) == 1
        assert items[0]["dispatch_id"] == task["id"]

        # Nothing may overflow the phone's width.
        overflow = page.evaluate("document.documentElement.scrollWidth")
        assert overflow <= 390, overflow
        page.screenshot(path=str(SHOTS / "field_app.png"), full_page=True)
        _keep(SHOTS / "field_app.png", "field-app.png")
        assert errors == [], errors


def test_map_receives_changes_live(test_db: ScratchDatabase) -> None:
    with transaction() as session:
        resources.seed_field(session)
    t = team_of(QIXING)
    with running_server(test_db.url) as base, chromium() as browser:
        page, errors = console_page(browser, base, "gx.duty", PASSWORD, width=1440, height=900,
                                    next_path="/field/map")
        page.wait_for_selector("#live.on")
        page.locator("#n-resources", has_text="537").wait_for(timeout=10_000)
        bailiff = _token(base, "qixing.bailiff")
        inc = _call(f"{base}/api/v1/field/incidents", {"lon": t.lon, "lat": t.lat,
                                                       "note": "遭遇阻挠"}, bailiff)
        page.locator("[data-testid=incidents] li", has_text=f"SOS #{inc['id']}").wait_for(
            timeout=5_000)
        _call(f"{base}/api/v1/field/positions", {"reports": [{
            "resource": t.device, "at": datetime.now(UTC).isoformat(),
            "lon": t.lon + 0.01, "lat": t.lat}]}, bailiff)
        page.wait_for_selector("body[data-map-updates='2']", timeout=5_000)
        task = _call(f"{base}/api/v1/field/dispatches", {
            "task": "扣押车辆", "place": "七星区", "lon": t.lon, "lat": t.lat}, _token(
            base, "guilin.duty"))
        page.locator("[data-testid=dispatches] li", has_text=f"#{task['id']}").wait_for(
            timeout=5_000)
        page.uncheck("[data-testid=layer-resources]")  # a layer filter
        page.locator("[data-testid=incidents] li button").first.click()  # acknowledge
        page.locator("[data-testid=incidents] li.inc-acknowledged").wait_for(timeout=5_000)
        page.check("[data-testid=layer-resources]")
        page.wait_for_timeout(800)
        page.screenshot(path=str(SHOTS / "field_map.png"))
        _keep(SHOTS / "field_map.png", "field-map.png")
        assert errors == [], errors


def test_desk_triages_a_tip_and_dispatches_the_nearest_team(test_db: ScratchDatabase) -> None:
    """The duty officer takes a phone call at the tip desk, triages the tip onto the case and
    Qixing's center, and sends the nearest available team, picked from the positions."""
    with transaction() as session:
        resources.seed_field(session)
    t = team_of(QIXING)
    with transaction() as session:
        device = session.scalar(select(LatestPosition).join(
            FieldResource, FieldResource.id == LatestPosition.resource_id).where(
            FieldResource.code == t.device))
        assert device is not None
        lon, lat = device.lon, device.lat  # right where Qixing's team is
    with running_server(test_db.url) as base, chromium() as browser:
        case = _call(f"{base}/api/v1/cases", case_payload(), _token(base, "qingxiu.officer"))
        page, errors = console_page(browser, base, "gx.duty", PASSWORD, width=1366, height=768,
                                    next_path="/field/tips")
        page.locator("[data-testid=take-tip] summary").click()
        form = page.locator("[data-testid=take-tip] form")
        form.locator("textarea[name=content]").fill("来电：被执行人的车停在七星区某酒店停车场")
        form.locator("input[name=place]").fill("桂林市七星区某酒店停车场")
        form.locator("input[name=lon]").fill(f"{lon:.6f}")
        form.locator("input[name=lat]").fill(f"{lat:.6f}")
        form.locator("input[name=tipster_name]").fill("杨某")
        form.locator("[data-testid=take-tip-submit]").click()
        page.wait_for_selector("[data-testid=follow-code]")
        tip_id = page.inner_text("[data-testid=tip-title]").split("#")[1].split()[0]
        page.goto(f"{base}/field/tips")
        page.wait_for_selector(f"tr[data-tip-id='{tip_id}'] [data-testid=clock]")
        page.screenshot(path=str(SHOTS / "tip_desk.png"))
        _keep(SHOTS / "tip_desk.png", "tip-desk.png")

        page.click(f"tr[data-tip-id='{tip_id}'] td.content a")
        triage = page.locator("[data-testid=triage-form]")
        triage.locator("input[name=case_number]").fill(str(case["case_number"]))
        triage.locator("select[name=urgency]").select_option("urgent")
        triage.locator("input[name=center_code]").fill(QIXING)
        triage.locator("[data-testid=triage-submit]").click()
        page.wait_for_selector("[data-testid=tip-status][data-status=triaged]")
        assert QIXING in page.inner_text("[data-testid=tip-center]")
        assert str(case["case_number"]) in page.inner_text("[data-testid=tip-case]")
        page.screenshot(path=str(SHOTS / "tip_page.png"), full_page=True)
        _keep(SHOTS / "tip_page.png", "tip-page.png")

        page.click("[data-testid=dispatch-from-tip]")
        page.wait_for_selector("[data-testid=dispatch-form]")
        assert page.input_value("[data-testid=lon]") == f"{lon:.6f}"
        page.click("[data-testid=find-nearest]")
        first = page.locator("[data-testid=nearest-teams] input[name=team_id]").first
        first.wait_for(timeout=10_000)
        assert first.get_attribute("value") == str(t.id) and first.is_checked()
        page.locator("[data-testid=nearest-vehicles] input[name=vehicle_id]").nth(1).check()
        page.screenshot(path=str(SHOTS / "dispatch_new.png"), full_page=True)
        _keep(SHOTS / "dispatch_new.png", "dispatch-new.png")
        page.click("[data-testid=dispatch-submit]")
        page.wait_for_selector("[data-testid=dispatch-status][data-status=dispatched]")
        assert page.get_attribute("[data-testid=dispatch-team]", "data-team-id") == str(t.id)
        assert page.inner_text("[data-testid=dispatch-tip]") == f"#{tip_id}"
        page.screenshot(path=str(SHOTS / "dispatch_page.png"), full_page=True)
        _keep(SHOTS / "dispatch_page.png", "dispatch-page.png")

        page.goto(f"{base}/field/dispatches")
        page.wait_for_selector("[data-testid=dispatches] tr[data-status=dispatched]")
        page.screenshot(path=str(SHOTS / "dispatch_desk.png"))
        _keep(SHOTS / "dispatch_desk.png", "dispatch-desk.png")
        assert page.evaluate("document.documentElement.scrollWidth") <= 1366
        assert errors == [], errors
