"""The duty desk's console pages for tips and dispatch: they render within the field policy's
reach, filter and page, and their forms act through the same services as the API, refusing
bad input (the form back with the error, nothing changed) and forms without the CSRF token."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from tests.conftest import AuthHeaders
from tests.field.support import QIXING, make_case, party, seed, team_of, user
from tests.web.test_console import login
from zhixing.core import clock
from zhixing.core.db import transaction
from zhixing.core.models import AuditRecord
from zhixing.courts import identity
from zhixing.courts.models import User
from zhixing.field import tips as tipsvc
from zhixing.field.models import (
    Dispatch,
    FieldResource,
    FieldTeam,
    LatestPosition,
    ResourceKind,
    Tip,
    TipChannel,
    TipMessage,
)


def _api_tip(client: TestClient, auth: AuthHeaders, who: str = "gx.duty",
             **body: Any) -> dict[str, Any]:
    resp = client.post("/api/v1/field/tips", headers=auth(who),
                       json={"content": "电话举报：车在酒店", **body})
    assert resp.status_code == 201, resp.text
    tip: dict[str, Any] = resp.json()
    return tip


def _ids(html: str) -> list[int]:
    return [int(i) for i in re.findall(r'data-tip-id="(\d+)"', html)]


def _count(db: Session, model: Any) -> int:
    return int(db.scalar(select(func.count()).select_from(model)) or 0)


def _tip(db: Session, tip_id: int) -> Tip:
    db.expire_all()
    tip = db.get(Tip, tip_id)
    assert tip is not None
    return tip


class TestTipDesk:
    def test_the_desk_lists_filters_and_searches(self, client: TestClient,
                                                 auth: AuthHeaders) -> None:
        case = make_case(client, auth)
        linked = _api_tip(client, auth, "qingxiu.officer", content="被执行人在青秀区开店",
                          case_id=case["id"])
        urgent = _api_tip(client, auth, "guilin.duty", content="车停在七星区酒店", urgent=True)
        checked = _api_tip(client, auth, "guilin.duty", content="已核查的线索")
        client.post(f"/api/v1/field/tips/{checked['id']}/outcome", headers=auth("guilin.duty"),
                    json={"outcome": "unfounded", "note": "查无此车"})
        login(client, "gx.duty")
        page = client.get("/field/tips")
        assert page.status_code == 200 and 'data-testid="tips"' in page.text
        # open tips by their check-by date: the urgent one (3 days) first
        assert _ids(page.text) == [urgent["id"], linked["id"]]
        assert 'href="/field/tips"' in page.text  # in the navigation
        cases = {
            "status=checked": [checked["id"]],
            "status=all": [urgent["id"], checked["id"], linked["id"]],
            "urgency=urgent": [urgent["id"]],
            "urgency=normal": [linked["id"]],
            "court=桂03": [urgent["id"]],
            "court=桂01": [linked["id"]],  # the handling court is below Nanning
            f"q={case['case_number']}": [linked["id"]],
            "q=刘建国": [linked["id"]],  # the debtor of the linked case
            "q=七星区": [urgent["id"]],
            f"q=%23{urgent['id']}": [urgent["id"]],
            "within=1": [urgent["id"], linked["id"]],
            "overdue=true": [],
        }
        for query, expected in cases.items():
            resp = client.get(f"/field/tips?{query}")
            assert resp.status_code == 200, (query, resp.text)
            assert sorted(_ids(resp.text)) == sorted(expected), query
        clock.set_offset(timedelta(days=4))  # the urgent tip's 3 days are over
        client.cookies.clear()
        login(client, "gx.duty")  # the console session has expired meanwhile
        overdue = client.get("/field/tips?overdue=true")
        assert _ids(overdue.text) == [urgent["id"]]
        assert 'class="overdue urgent"' in overdue.text and 'data-state="overdue"' in overdue.text
        assert client.get("/field/tips?within=3").status_code == 200
        assert _ids(client.get("/field/tips?within=3").text) == []

    def test_bad_filters_show_the_desk_with_the_error(self, client: TestClient,
                                                      auth: AuthHeaders) -> None:
        _api_tip(client, auth)
        login(client, "gx.duty")
        for query, code in (("status=lost", "invalid_status"), ("court=桂9999", "court_not_found"),
                            ("within=5", "invalid_period"), ("within=x", "invalid_period"),
                            ("urgency=soon", "invalid_urgency"), ("cursor=@@", "invalid_cursor")):
            resp = client.get(f"/field/tips?{query}")
            assert resp.status_code == 422, query
            assert 'data-testid="form-error"' in resp.text and code in resp.text
            assert _ids(resp.text) == []

    def test_pages(self, client: TestClient, auth: AuthHeaders) -> None:
        login(client, "gx.duty")
        with transaction() as session:
            desk = session.scalar(select(User).where(User.username == "gx.duty"))
            assert desk is not None
            actor = identity.actor_for(session, desk, None)
            for n in range(53):
                tipsvc.take(session, actor, tipsvc.TipIn(content=f"线索{n}"), TipChannel.PHONE)
        first = client.get("/field/tips")
        assert len(_ids(first.text)) == 50
        nxt = re.search(r'href="(/field/tips\?[^"]*cursor=[^"]+)" data-testid="next-page"',
                        first.text)
        assert nxt is not None
        second = client.get(nxt.group(1).replace("&amp;", "&"))
        assert second.status_code == 200 and len(_ids(second.text)) == 3
        assert not set(_ids(first.text)) & set(_ids(second.text))
        assert 'data-testid="next-page"' not in second.text

    def test_another_courts_tip_stays_out_of_reach(self, client: TestClient,
                                                   auth: AuthHeaders) -> None:
        tip = _api_tip(client, auth, "guilin.duty", content="桂林的线索")
        login(client, "liunan.officer")
        assert _ids(client.get("/field/tips?status=all").text) == []
        assert client.get(f"/field/tips/{tip['id']}").status_code == 404
        csrf = login(client, "liunan.officer")
        resp = client.post(f"/field/tips/{tip['id']}/triage",
                           data={"csrf_token": csrf, "urgency": "urgent"})
        assert resp.status_code == 404
        client.cookies.clear()
        login(client, "gx.duty")  # the region is above Guilin
        assert client.get(f"/field/tips/{tip['id']}").status_code == 200

    def test_a_reader_sees_but_does_not_act(self, client: TestClient, auth: AuthHeaders,
                                            db: Session) -> None:
        tip = _api_tip(client, auth, "gx.duty")
        csrf = login(client, "auditor")
        page = client.get(f"/field/tips/{tip['id']}")
        assert page.status_code == 200 and 'data-testid="triage-form"' not in page.text
        assert 'data-testid="take-tip"' not in client.get("/field/tips").text
        resp = client.post(f"/field/tips/{tip['id']}/triage",
                           data={"csrf_token": csrf, "urgency": "urgent"})
        assert resp.status_code == 403 and "role_forbidden" in resp.text
        assert _tip(db, tip["id"]).status == "received"


class TestTipForms:
    def test_take_a_phone_tip(self, client: TestClient, auth: AuthHeaders, db: Session) -> None:
        case = make_case(client, auth)
        csrf = login(client, "gx.duty")
        resp = client.post("/field/tips", data={
            "csrf_token": csrf, "content": "来电：曾某的车在七星区酒店", "place": "七星区某酒店",
            "lon": "110.32", "lat": "25.28", "court_code": "桂0305",
            "case_number": case["case_number"], "urgent": "true", "tipster_name": "杨某",
            "tipster_phone": "13800000000", "relation": "applicant"})
        assert resp.status_code == 201, resp.text
        code = re.search(r'data-testid="follow-code">[^<]*<strong>([A-Z2-9-]{14})</strong>',
                         resp.text)
        assert code is not None
        tip = db.scalar(select(Tip))
        assert tip is not None and tip.channel == "phone" and tip.urgent
        assert tip.case_id == case["id"] and tip.court_id != tip.center_court_id
        assert tipsvc.by_code(db, code.group(1)).id == tip.id  # the code works for the caller
        # the code is shown once: the tip's page does not show it again
        assert code.group(1) not in client.get(f"/field/tips/{tip.id}").text

    def test_bad_phone_tips_give_the_form_back(self, client: TestClient,
                                               db: Session) -> None:
        csrf = login(client, "gx.duty")
        for data, code in (
                ({"content": ""}, "validation_failed"),
                ({"content": "车在酒店", "lon": "110.3"}, "position_incomplete"),
                ({"content": "车在酒店", "lon": "east", "lat": "25"}, "invalid_number"),
                ({"content": "车在酒店", "lon": "2.35", "lat": "48.85"}, "position_outside_china"),
                ({"content": "车在酒店", "case_number": "（2025）桂0103执9999号"},
                 "case_not_found"),
                ({"content": "车在酒店", "court_code": "桂9999"}, "court_not_found")):
            resp = client.post("/field/tips", data={"csrf_token": csrf, "place": "七星区",
                                                    **data})
            assert resp.status_code == 422, (data, resp.text)
            assert code in resp.text and 'data-testid="form-error"' in resp.text
            assert '<details class="panel take-tip" data-testid="take-tip" open>' in resp.text
            assert 'value="七星区"' in resp.text  # what was typed comes back
        assert _count(db, Tip) == 0

    def test_forms_need_the_csrf_token(self, client: TestClient, auth: AuthHeaders,
                                       db: Session) -> None:
        tip = _api_tip(client, auth)
        login(client, "gx.duty")
        assert client.post("/field/tips", data={"content": "车在酒店"}).status_code == 403
        forged = client.post(f"/field/tips/{tip['id']}/triage",
                             data={"csrf_token": "forged", "urgency": "urgent"})
        assert forged.status_code == 403
        for action, data in (("outcome", {"outcome": "unfounded", "note": "x"}),
                             ("answer", {"text": "x"}), ("merge", {"into_id": "1"})):
            assert client.post(f"/field/tips/{tip['id']}/{action}", data=data).status_code == 403
        assert _count(db, Tip) == 1 and not _tip(db, tip["id"]).urgent
        assert _count(db, TipMessage) == 0

    def test_triage_merge_outcome_answer(self, client: TestClient, auth: AuthHeaders,
                                         db: Session) -> None:
        case = make_case(client, auth)
        tip = _api_tip(client, auth, "guilin.duty", tipster_name="杨某")
        dup = _api_tip(client, auth, content="同一辆车")
        csrf = login(client, "gx.duty")
        url = f"/field/tips/{tip['id']}"
        page = client.get(url)
        assert page.status_code == 200 and 'data-testid="triage-form"' in page.text
        # the region is not the handling court: the tipster stays confidential
        assert "杨某" not in page.text
        resp = client.post(f"{url}/triage", data={
            "csrf_token": csrf, "case_number": case["case_number"], "urgency": "urgent",
            "center_code": QIXING, "relation": "applicant"}, follow_redirects=False)
        assert resp.status_code == 303 and resp.headers["location"] == url
        row = _tip(db, tip["id"])
        assert row.status == "triaged" and row.urgent and row.case_id == case["id"]
        assert row.due_at - row.submitted_at == timedelta(days=3)
        # the debtor of the linked case is now offered
        assert 'name="debtor_party_id"' in client.get(url).text
        debtor = party(case, "debtor")
        assert client.post(f"{url}/triage", data={"csrf_token": csrf, "debtor_party_id": str(
            debtor)}, follow_redirects=False).status_code == 303
        assert _tip(db, tip["id"]).debtor_party_id == debtor
        # a duplicate on the same case is suggested, then merged into this tip
        client.post(f"/field/tips/{dup['id']}/triage",
                    data={"csrf_token": csrf, "case_number": case["case_number"]})
        assert f'href="/field/tips/{dup["id"]}" data-testid="duplicate"' in client.get(url).text
        merged = client.post(f"/field/tips/{dup['id']}/merge",
                             data={"csrf_token": csrf, "into_id": f"#{tip['id']}"},
                             follow_redirects=False)
        assert merged.status_code == 303 and merged.headers["location"] == url
        assert _tip(db, dup["id"]).merged_into_id == tip["id"]
        assert f'href="/field/tips/{dup["id"]}"' in client.get(url).text  # listed as merged
        done = client.post(f"{url}/outcome", data={
            "csrf_token": csrf, "outcome": "confirmed", "note": "车辆已找到",
            "answer": "感谢，线索属实"}, follow_redirects=False)
        assert done.status_code == 303
        row = _tip(db, tip["id"])
        assert row.status == "checked" and row.outcome == "confirmed"
        assert client.post(f"{url}/answer", data={"csrf_token": csrf, "text": "已扣押车辆"},
                           follow_redirects=False).status_code == 303
        text = client.get(url).text
        assert "已扣押车辆" in text and 'data-testid="triage-form"' not in text
        history = re.findall(r'data-action="([a-z_.]+)"', text)
        assert history == ["tip.taken", "tip.taken", "tip.triaged", "tip.triaged",
                           "tip.triaged", "tip.merged", "tip.checked", "tip.answered"]

    def test_the_handling_court_sees_the_tipster_and_it_is_audited(
            self, client: TestClient, auth: AuthHeaders, db: Session) -> None:
        tip = _api_tip(client, auth, "qingxiu.officer", tipster_name="杨某",
                       tipster_phone="13800000000")
        login(client, "qingxiu.officer")
        page = client.get(f"/field/tips/{tip['id']}")
        assert 'data-testid="tipster"' in page.text and "杨某" in page.text
        assert db.scalar(select(func.count()).select_from(AuditRecord).where(
            AuditRecord.action == "tip.tipster_read")) == 1

    def test_refusals_give_the_page_back_and_change_nothing(
            self, client: TestClient, auth: AuthHeaders, db: Session) -> None:
        a, b = make_case(client, auth), make_case(client, auth)
        tip = _api_tip(client, auth, case_id=a["id"])
        other = _api_tip(client, auth, case_id=b["id"])
        csrf = login(client, "gx.duty")
        url = f"/field/tips/{tip['id']}"
        for action, data, status, code in (
                ("triage", {"center_code": "桂9999", "urgency": "urgent"}, 422, "court_not_found"),
                ("triage", {"urgency": "soon"}, 422, "invalid_urgency"),
                ("triage", {"debtor_party_id": str(party(a, "applicant"))}, 422, "not_a_debtor"),
                ("triage", {"case_number": "（2025）桂0103执9999号"}, 422, "case_not_found"),
                ("merge", {"into_id": str(tip["id"])}, 409, "merge_into_self"),
                ("merge", {"into_id": "99999999"}, 422, "tip_not_found"),
                ("merge", {"into_id": "abc"}, 422, "invalid_number"),
                ("merge", {"into_id": str(other["id"])}, 409, "different_cases"),
                ("outcome", {"outcome": "maybe", "note": "x"}, 422, "validation_failed"),
                ("outcome", {"outcome": "confirmed"}, 422, "validation_failed"),
                ("answer", {"text": ""}, 422, "validation_failed")):
            resp = client.post(f"{url}/{action}", data={"csrf_token": csrf, **data})
            assert resp.status_code == status, (action, data, resp.text)
            assert code in resp.text and 'data-testid="form-error"' in resp.text
        row = _tip(db, tip["id"])
        assert row.status == "received" and not row.urgent and row.merged_into_id is None
        assert _count(db, TipMessage) == 0


class TestDispatchDesk:
    def test_dispatch_the_nearest_team_from_a_tip(self, client: TestClient,
                                                  auth: AuthHeaders, db: Session) -> None:
        seed(client)
        t = team_of(QIXING)
        case = make_case(client, auth)
        tip = _api_tip(client, auth, content="曾某的车在七星区酒店", place="七星区某酒店",
                       lon=t.lon, lat=t.lat, case_id=case["id"])
        csrf = login(client, "gx.duty")
        form = client.get(f"/field/dispatches/new?tip_id={tip['id']}")
        assert form.status_code == 200
        assert f'value="{t.lon:.6f}"' in form.text and str(case["case_number"]) in form.text
        near = client.get("/field/dispatches/nearest", params={"lon": t.lon, "lat": t.lat})
        assert near.status_code == 200
        teams = [int(i) for i in re.findall(r'name="team_id" value="(\d+)"', near.text)]
        assert teams[0] == t.id and len(teams) == 5  # Qixing's own team is the nearest
        assert re.search(r'name="team_id" value="\d+" checked', near.text)
        vehicle = int(re.findall(r'name="vehicle_id" value="(\d+)"', near.text)[0])
        resp = client.post("/field/dispatches", data={
            "csrf_token": csrf, "task": "扣押曾某的车辆", "place": "七星区某酒店",
            "lon": str(t.lon), "lat": str(t.lat), "team_id": str(t.id),
            "vehicle_id": str(vehicle), "case_number": case["case_number"],
            "tip_id": str(tip["id"])}, follow_redirects=False)
        assert resp.status_code == 303, resp.text
        d = db.scalar(select(Dispatch))
        assert d is not None and resp.headers["location"] == f"/field/dispatches/{d.id}"
        assert (d.team_id, d.vehicle_id, d.case_id, d.tip_id) == (t.id, vehicle, case["id"],
                                                                  tip["id"])
        page = client.get(f"/field/dispatches/{d.id}")
        assert page.status_code == 200 and f'data-team-id="{t.id}"' in page.text
        assert 'data-testid="move-en_route"' in page.text
        # the desk moves the task on for a team that phoned in; the history says who
        moved = client.post(f"/field/dispatches/{d.id}/status",
                            data={"csrf_token": csrf, "to": "en_route", "note": "已出发"},
                            follow_redirects=False)
        assert moved.status_code == 303
        text = client.get(f"/field/dispatches/{d.id}").text
        assert 'data-status="en_route"' in text
        assert re.findall(r'data-action="([a-z_.]+)"', text) == ["dispatch.created",
                                                                 "dispatch.moved"]
        bad = client.post(f"/field/dispatches/{d.id}/status",
                          data={"csrf_token": csrf, "to": "done"})
        assert bad.status_code == 409 and "invalid_transition" in bad.text
        # the desk lists it among the active ones, with its age; and the tip links to it
        desk = client.get("/field/dispatches")
        assert f'data-dispatch-id="{d.id}"' in desk.text and 'data-testid="age"' in desk.text
        assert f'href="/field/dispatches/{d.id}"' in client.get(f"/field/tips/{tip['id']}").text
        assert 'href="/field/dispatches"' in client.get("/command").text  # from the board

    def test_filters_and_reach(self, client: TestClient, auth: AuthHeaders) -> None:
        seed(client)
        t = team_of(QIXING)
        mine = client.post("/api/v1/field/dispatches", headers=auth("guilin.duty"), json={
            "task": "核查线索", "place": "七星区", "lon": t.lon, "lat": t.lat}).json()
        login(client, "gx.duty")

        def listed(query: str) -> list[int]:
            resp = client.get(f"/field/dispatches?{query}")
            assert resp.status_code == 200, resp.text
            return [int(i) for i in re.findall(r'data-dispatch-id="(\d+)"', resp.text)]

        assert listed("") == [mine["id"]]
        assert listed("status=done") == []
        assert listed("status=dispatched&court=桂03") == [mine["id"]]
        assert listed("court=桂01") == []
        assert listed("q=核查") == [mine["id"]] and listed(f"q=%23{mine['id']}") == [mine["id"]]
        assert listed("q=扣押") == []
        bad = client.get("/field/dispatches?status=lost")
        assert bad.status_code == 422 and "invalid_status" in bad.text
        client.cookies.clear()
        login(client, "liunan.officer")
        assert listed("status=all") == []
        assert client.get(f"/field/dispatches/{mine['id']}").status_code == 404
        assert client.get("/field/dispatches/new").status_code == 403  # not a duty desk

    def test_bad_dispatches_give_the_form_back(self, client: TestClient, auth: AuthHeaders,
                                               db: Session) -> None:
        seed(client)
        t = team_of(QIXING)
        csrf = login(client, "gx.duty")
        base = {"csrf_token": csrf, "task": "扣押车辆", "place": "七星区", "lon": str(t.lon),
                "lat": str(t.lat)}
        client.post("/field/dispatches", data={**base, "team_id": str(t.id)})  # Qixing now busy
        before = _count(db, Dispatch)
        for over, status, code in (
                ({"lon": "2.35", "lat": "48.85"}, 422, "position_outside_china"),
                ({"lon": "108.3", "lat": "35.0"}, 422, "position_outside_region"),
                ({"lat": ""}, 422, "validation_failed"),
                ({"task": ""}, 422, "validation_failed"),
                ({"team_id": "abc"}, 422, "invalid_number"),
                ({"team_id": str(t.id)}, 409, "team_not_available"),
                ({"team_id": "2147483000"}, 422, "team_not_found"),
                ({"case_number": "（2025）桂0103执9999号"}, 422, "case_not_found")):
            resp = client.post("/field/dispatches", data={**base, **over})
            assert resp.status_code == status, (over, resp.text)
            assert code in resp.text and 'data-testid="dispatch-form"' in resp.text
            assert 'value="七星区"' in resp.text  # what was typed comes back
        assert _count(db, Dispatch) == before
        near = client.get("/field/dispatches/nearest", params={"lon": "2.35", "lat": "48.85"})
        assert near.status_code == 422 and 'data-testid="nearest-error"' in near.text
        assert client.get("/field/dispatches/nearest",
                          params={"lon": "110"}).status_code == 422
        no_csrf = client.post("/field/dispatches", data={k: v for k, v in base.items()
                                                         if k != "csrf_token"})
        assert no_csrf.status_code == 403 and _count(db, Dispatch) == before

    def test_evidence_shows_on_the_dispatch_page(self, client: TestClient,
                                                 auth: AuthHeaders, db: Session) -> None:
        seed(client)
        t = team_of(QIXING)
        case = make_case(client, auth)
        d = client.post("/api/v1/field/dispatches", headers=auth("gx.duty"), json={
            "task": "扣押车辆", "place": "七星区", "lon": t.lon, "lat": t.lat, "team_id": t.id,
            "case_id": case["id"]}).json()
        jpeg = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + b"\x00" * 200
        up = client.post(f"/api/v1/field/dispatches/{d['id']}/documents",
                         headers=auth("qixing.bailiff"),
                         files={"file": ("scene.jpg", jpeg, "image/jpeg")})
        assert up.status_code == 201, up.text
        login(client, "gx.duty")
        page = client.get(f"/field/dispatches/{d['id']}")
        assert "scene.jpg" in page.text and up.json()["sha256"][:16] in page.text
        # the team's members are named; the bailiff's app is a team member
        members = db.scalars(select(FieldResource.label).where(
            FieldResource.team_id == t.id, FieldResource.kind == ResourceKind.BAILIFF)).all()
        assert all(m in page.text for m in members)
        assert _count(db, FieldTeam) > 0 and _count(db, LatestPosition) > 0


def test_a_bailiff_has_no_desk_in_the_navigation(client: TestClient, auth: AuthHeaders) -> None:
    user(client, auth, "qixing.duty", QIXING, ["duty_officer"])
    login(client, "qixing.bailiff")
    home = client.get("/").text
    assert 'href="/field/tips"' not in home and 'href="/field/dispatches"' not in home
    client.cookies.clear()
    login(client, "qixing.duty")
    home = client.get("/").text
    assert 'href="/field/tips"' in home and 'href="/field/dispatches"' in home
