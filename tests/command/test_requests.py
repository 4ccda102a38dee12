"""Assistance requests through the API: the Zeng chain hop by hop, refusals that change
nothing, escalation of overdue hops on a moved clock, and the result landing on the asking
case with its evidence."""

from __future__ import annotations

import hashlib
from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from tests.command.support import duty_user, liunan_case, zeng_request
from tests.conftest import AuthHeaders, HttpClient
from tests.web.test_console import login
from zhixing.command import assistance, escalation
from zhixing.command.models import (
    AssistanceRequest,
    BoardEvent,
    Escalation,
    Hop,
    RequestStatus,
)
from zhixing.command.network import Network
from zhixing.core import clock
from zhixing.core.actor import Actor
from zhixing.core.db import transaction
from zhixing.core.errors import Conflict, ValidationFailed
from zhixing.core.models import AuditRecord
from zhixing.courts import identity
from zhixing.courts.models import User

PHOTO = b"\xff\xd8\xff\xe0" + b"\x00" * 64 + b"car seized"


def _open(client: HttpClient, auth: AuthHeaders, **over: Any) -> dict[str, Any]:
    resp = client.post("/api/v1/command/requests", headers=auth("liuzhou.duty"),
                       json=zeng_request(to_court_code="桂", **over))
    assert resp.status_code == 201, resp.text
    result: dict[str, Any] = resp.json()
    return result


def _sweep() -> None:
    with transaction() as session:
        escalation.sweep(session)


def _count(db: Session, model: Any) -> int:
    return int(db.scalar(select(func.count()).select_from(model)) or 0)


def zeng_chain(client: HttpClient, auth: AuthHeaders) -> None:
    """Liuzhou asks the region; the region hands down to Guilin, Guilin to Qixing, which
    seizes the car: through any HTTP client (the in-process app or real servers)."""
    qixing = duty_user(client, auth, "qixing.duty", "桂0305")
    case = liunan_case(client, auth)
    req = _open(client, auth, case_id=case["id"])
    assert req["holder"]["court_code"] == "桂" and req["clock"]["what"] == "acknowledge"
    assert req["hops"][0]["from_center"]["court_code"] == "桂02"
    hop = req["hops"][0]["id"]
    r = client.post(f"/api/v1/command/hops/{hop}/acknowledge", headers=auth("gx.duty"))
    assert r.status_code == 200, r.text
    assert r.json()["clock"]["what"] == "act"
    r = client.post(f"/api/v1/command/hops/{hop}/hand-down", headers=auth("gx.duty"))
    assert r.status_code == 200, r.text
    assert r.json()["holder"]["court_code"] == "桂03"  # the default: down towards the place
    hop = r.json()["hops"][-1]["id"]
    client.post(f"/api/v1/command/hops/{hop}/acknowledge", headers=auth("guilin.duty"))
    r = client.post(f"/api/v1/command/hops/{hop}/hand-down", headers=auth("guilin.duty"),
                    json={"to_court_code": "桂0305", "note": "七星区就近处置"})
    assert r.status_code == 200, r.text
    hop = r.json()["hops"][-1]["id"]
    assert client.post(f"/api/v1/command/hops/{hop}/acknowledge",
                       headers=qixing).status_code == 200
    # Qixing has the place: it acts, and cannot hand down further by default
    r = client.post(f"/api/v1/command/hops/{hop}/hand-down", headers=qixing)
    assert r.status_code == 422 and r.json()["error"]["code"] == "place_is_own_area"
    up = client.post(f"/api/v1/command/requests/{req['id']}/documents", headers=qixing,
                     files={"file": ("car.jpg", PHOTO, "image/jpeg")},
                     data={"note": "扣押现场"})
    assert up.status_code == 201, up.text
    assert up.json()["sha256"] == hashlib.sha256(PHOTO).hexdigest()
    done = client.post(f"/api/v1/command/requests/{req['id']}/result", headers=qixing,
                       json={"outcome": "done", "summary": "车辆已扣押，停放于七星区法院"})
    assert done.status_code == 200, done.text
    body = done.json()
    assert body["status"] == "done" and body["result_center"]["court_code"] == "桂0305"
    assert [h["to_center"]["court_code"] for h in body["hops"]] == ["桂", "桂03", "桂0305"]
    assert all(h["acknowledged_at"] for h in body["hops"])
    # the result and the photo are on the asking case
    officer = auth("liunan.officer")
    events = client.get(f"/api/v1/cases/{case['id']}/events", headers=officer).json()
    summaries = [e["summary"] for e in events["items"]]
    assert any("协助执行结果" in s and "车辆已扣押" in s for s in summaries)
    doc_id = body["evidence"][0]["case_document_id"]
    got = client.get(f"/api/v1/cases/{case['id']}/documents/{doc_id}", headers=officer)
    assert got.status_code == 200 and got.content == PHOTO
    # one timeline for the whole chain
    tl = client.get(f"/api/v1/command/requests/{req['id']}/timeline",
                    headers=auth("liuzhou.duty")).json()["items"]
    assert [e["kind"] for e in tl] == [
        "request_opened", "hop_acknowledged", "hop_forwarded", "hop_acknowledged",
        "hop_forwarded", "hop_acknowledged", "evidence", "result"]
    # everyone on the way sees it; a center off the way does not
    for who in ("gx.duty", "guilin.duty", "liuzhou.duty"):
        assert client.get(f"/api/v1/command/requests/{req['id']}",
                          headers=auth(who)).status_code == 200
    nanning = duty_user(client, auth, "nanning.duty", "桂01")
    assert client.get(f"/api/v1/command/requests/{req['id']}",
                      headers=nanning).status_code == 404



class TestTheChain:
    def test_region_guilin_qixing_and_back_to_the_case(self, client: TestClient,
                                                        auth: AuthHeaders) -> None:
        zeng_chain(client, auth)

    def test_audit_records_every_action(self, client: TestClient, auth: AuthHeaders,
                                        db: Session) -> None:
        req = _open(client, auth)
        client.post(f"/api/v1/command/hops/{req['hops'][0]['id']}/acknowledge",
                    headers=auth("gx.duty"))
        actions = set(db.scalars(select(AuditRecord.action).where(
            AuditRecord.action.like("command.%"))))
        assert {"command.request_opened", "command.hop_acknowledged"} <= actions


class TestRefusals:
    def test_acknowledging_twice_is_a_conflict(self, client: TestClient,
                                               auth: AuthHeaders) -> None:
        hop = _open(client, auth)["hops"][0]["id"]
        url = f"/api/v1/command/hops/{hop}/acknowledge"
        assert client.post(url, headers=auth("gx.duty")).status_code == 200
        again = client.post(url, headers=auth("gx.duty"))
        assert again.status_code == 409 and again.json()["error"]["code"] == "already_acknowledged"

    def test_a_hop_addressed_elsewhere(self, client: TestClient, auth: AuthHeaders,
                                       db: Session) -> None:
        req = _open(client, auth)
        hop = req["hops"][0]["id"]
        # Liuzhou sees the request (it asked) but the hop is the region's
        mine = client.post(f"/api/v1/command/hops/{hop}/acknowledge", headers=auth("liuzhou.duty"))
        assert mine.status_code == 403 and mine.json()["error"]["code"] == "not_your_hop"
        # Guilin is not on the way yet: it does not exist for Guilin
        other = client.post(f"/api/v1/command/hops/{hop}/acknowledge", headers=auth("guilin.duty"))
        assert other.status_code == 404
        assert db.scalar(select(Hop.acknowledged_at).where(Hop.id == hop)) is None
        # a result from a center that does not hold the request
        res = client.post(f"/api/v1/command/requests/{req['id']}/result",
                          headers=auth("liuzhou.duty"), json={"outcome": "done", "summary": "办结"})
        assert res.status_code == 403

    @pytest.mark.parametrize(("over", "code"), [
        ({"to_court_code": "桂9999"}, "court_not_found"),
        ({"place_court_code": "桂0399"}, "court_not_found"),
        ({"to_court_code": "桂0305"}, "route_not_allowed"),  # no skipping to a far district
        ({"to_court_code": "桂01"}, "place_outside_receiver"),  # a peer city without the place
        ({"to_court_code": "桂02"}, "same_center"),
    ])
    def test_routes_outside_the_hierarchy(self, client: TestClient, auth: AuthHeaders,
                                          db: Session, over: dict[str, str], code: str) -> None:
        body = {**zeng_request(), **over}
        resp = client.post("/api/v1/command/requests", headers=auth("liuzhou.duty"), json=body)
        assert resp.status_code == 422, resp.text
        assert resp.json()["error"]["code"] == code
        assert _count(db, AssistanceRequest) == 0 and _count(db, Hop) == 0

    def test_a_district_asks_its_city(self, client: TestClient, auth: AuthHeaders) -> None:
        liunan = duty_user(client, auth, "liunan.duty", "桂0204")
        resp = client.post("/api/v1/command/requests", headers=liunan, json=zeng_request())
        assert resp.status_code == 201 and resp.json()["holder"]["court_code"] == "桂02"
        bad = client.post("/api/v1/command/requests", headers=liunan,
                          json=zeng_request(to_court_code="桂03"))
        assert bad.status_code == 422 and bad.json()["error"]["code"] == "route_not_allowed"

    def test_roles(self, client: TestClient, auth: AuthHeaders) -> None:
        hop = _open(client, auth)["hops"][0]["id"]
        # the region's administrator is of the right court but holds no duty role
        resp = client.post(f"/api/v1/command/hops/{hop}/acknowledge", headers=auth("admin"))
        assert resp.status_code == 403 and resp.json()["error"]["code"] == "role_forbidden"
        bailiff = client.post("/api/v1/command/requests", headers=auth("qixing.bailiff"),
                              json=zeng_request())
        assert bailiff.status_code == 403

    def test_evidence_type_and_size(self, client: TestClient, auth: AuthHeaders) -> None:
        qixing = duty_user(client, auth, "qixing.duty", "桂0305")
        req = client.post("/api/v1/command/requests", headers=auth("guilin.duty"),
                          json=zeng_request(to_court_code="桂0305")).json()
        client.post(f"/api/v1/command/hops/{req['hops'][0]['id']}/acknowledge", headers=qixing)
        bad = client.post(f"/api/v1/command/requests/{req['id']}/documents", headers=qixing,
                          files={"file": ("x.exe", b"MZ\x90\x00 not allowed", "image/jpeg")})
        assert bad.status_code == 422
        assert bad.json()["error"]["code"] == "file_type_not_allowed"


class TestEscalation:
    def test_unacknowledged_hop_goes_to_the_next_level(self, client: TestClient,
                                                       auth: AuthHeaders, db: Session) -> None:
        req = client.post("/api/v1/command/requests", headers=auth("gx.duty"),
                          json=zeng_request(to_court_code="桂03")).json()
        assert req["clock"]["state"] == "ok"
        clock.set_offset(timedelta(minutes=9))
        _sweep()
        assert _count(db, Escalation) == 0
        clock.set_offset(timedelta(minutes=11))  # urgent: acknowledge within 10 minutes
        _sweep()
        _sweep()  # once per hop and kind
        [row] = db.scalars(select(Escalation)).all()
        assert row.kind == "not_acknowledged"
        detail = client.get(f"/api/v1/command/requests/{req['id']}",
                            headers=auth("gx.duty")).json()
        assert detail["escalation_count"] == 1 and detail["clock"]["state"] == "overdue"
        [esc] = detail["escalations"]
        assert esc["late_center"]["court_code"] == "桂03"
        assert esc["to_center"]["court_code"] == "桂"  # Guilin's next level up
        # the region's duty leader takes it up, once
        url = f"/api/v1/command/escalations/{esc['id']}/acknowledge"
        assert client.post(url, headers=auth("gx.duty")).status_code == 200
        assert client.post(url, headers=auth("gx.duty")).status_code == 409
        # the board shows it
        kinds = [e["kind"] for e in client.get(
            f"/api/v1/command/requests/{req['id']}/timeline", headers=auth("gx.duty")
        ).json()["items"]]
        assert "escalated" in kinds

    def test_not_done_in_time(self, client: TestClient, auth: AuthHeaders,
                              db: Session) -> None:
        req = client.post("/api/v1/command/requests", headers=auth("gx.duty"),
                          json=zeng_request(to_court_code="桂03")).json()
        client.post(f"/api/v1/command/hops/{req['hops'][0]['id']}/acknowledge",
                    headers=auth("guilin.duty"))
        clock.set_offset(timedelta(hours=3, minutes=59))
        _sweep()
        assert _count(db, Escalation) == 0
        clock.set_offset(timedelta(hours=4, minutes=1))  # urgent: act within 4 hours
        _sweep()
        [row] = db.scalars(select(Escalation)).all()
        assert row.kind == "not_done"

    def test_normal_requests_have_working_days(self, client: TestClient,
                                               auth: AuthHeaders, db: Session) -> None:
        client.post("/api/v1/command/requests", headers=auth("gx.duty"),
                    json=zeng_request(to_court_code="桂03", urgency="normal"))
        clock.set_offset(timedelta(hours=20))
        _sweep()
        assert _count(db, Escalation) == 0
        clock.set_offset(timedelta(days=6))  # past any 1-working-day window, holidays aside
        _sweep()
        assert _count(db, Escalation) in (0, 1)  # a long holiday may still cover it
        clock.set_offset(timedelta(days=12))
        _sweep()
        assert _count(db, Escalation) == 1


class TestFigures:
    def test_by_center(self, client: TestClient, auth: AuthHeaders) -> None:
        req = client.post("/api/v1/command/requests", headers=auth("gx.duty"),
                          json=zeng_request(to_court_code="桂03", place_court_code="桂03")
                          ).json()
        guilin = auth("guilin.duty")
        client.post(f"/api/v1/command/hops/{req['hops'][0]['id']}/acknowledge", headers=guilin)
        client.post(f"/api/v1/command/requests/{req['id']}/result", headers=guilin,
                    json={"outcome": "done", "summary": "已扣押"})
        figs = client.get("/api/v1/command/figures", headers=auth("gx.duty")).json()
        by = {c["court_code"]: c for c in figs["centers"]}
        assert by["桂"]["requests_opened"] == 1
        assert by["桂03"]["hops_received"] == 1 and by["桂03"]["completed"] == 1
        assert by["桂03"]["median_acknowledge_seconds"] is not None
        assert figs["total"]["done"] == 1
        mine = client.get("/api/v1/command/figures", headers=guilin).json()
        assert {c["court_code"] for c in mine["centers"]} <= {"桂03"} | {
            c["court_code"] for c in mine["centers"] if c["court_code"].startswith("桂03")}
        bad = client.get("/api/v1/command/figures", headers=guilin, params={"court": "桂02"})
        assert bad.status_code == 422


def _actor(session: Session, username: str) -> Actor:
    user = session.scalar(select(User).where(User.username == username))
    assert user is not None
    return identity.actor_for(session, user, None)


def _region_hands_to_guilin(client: TestClient, auth: AuthHeaders,
                            case_id: int | None = None) -> dict[str, Any]:
    """Liuzhou asks the region; the region acknowledges and hands down to Guilin, whose hop
    is still unacknowledged."""
    req = _open(client, auth, case_id=case_id)
    hop = req["hops"][0]["id"]
    client.post(f"/api/v1/command/hops/{hop}/acknowledge", headers=auth("gx.duty"))
    r = client.post(f"/api/v1/command/hops/{hop}/hand-down", headers=auth("gx.duty"))
    assert r.status_code == 200, r.text
    result: dict[str, Any] = r.json()
    return result


class TestWithdrawal:
    def test_the_asker_withdraws_and_everything_on_the_way_stops(
            self, client: TestClient, auth: AuthHeaders, db: Session) -> None:
        case = liunan_case(client, auth)
        req = _region_hands_to_guilin(client, auth, case["id"])
        guilin_hop = req["hops"][-1]["id"]
        resp = client.post(f"/api/v1/command/requests/{req['id']}/withdraw",
                           headers=auth("liuzhou.duty"), json={"reason": "被执行人已主动履行"})
        assert resp.status_code == 200, resp.text
        body = resp.json()
        assert body["status"] == "withdrawn" and body["clock"] is None
        assert body["holder"] is None and body["result_center"] is None
        assert body["result_summary"] == "被执行人已主动履行" and body["result_at"]
        # Guilin, which never acknowledged, is refused with the reason; nothing changes
        late = client.post(f"/api/v1/command/hops/{guilin_hop}/acknowledge",
                           headers=auth("guilin.duty"))
        assert late.status_code == 409
        assert late.json()["error"]["code"] == "request_withdrawn"
        assert db.scalar(select(Hop.acknowledged_at).where(Hop.id == guilin_hop)) is None
        # the region, which passed it on, cannot report a result or add evidence either
        result = client.post(f"/api/v1/command/requests/{req['id']}/result",
                             headers=auth("gx.duty"), json={"outcome": "done", "summary": "办结"})
        assert result.status_code == 409
        assert result.json()["error"]["code"] == "request_withdrawn"
        hand = client.post(f"/api/v1/command/hops/{guilin_hop}/hand-down",
                           headers=auth("guilin.duty"))
        assert hand.status_code == 409 and hand.json()["error"]["code"] == "request_withdrawn"
        # the receiving center sees it withdrawn, on its list and on the one timeline
        listed = client.get("/api/v1/command/requests", headers=auth("guilin.duty"),
                            params={"status": "withdrawn"}).json()["items"]
        assert [r["id"] for r in listed] == [req["id"]]
        timeline = client.get(f"/api/v1/command/requests/{req['id']}/timeline",
                              headers=auth("guilin.duty")).json()["items"]
        assert [e["kind"] for e in timeline][-2:] == ["withdrawn", "hop_closed"]
        assert timeline[-1]["center"]["court_code"] == "桂03"
        # escalation stops: Guilin's acknowledgement is long overdue, nothing is raised
        clock.set_offset(timedelta(hours=5))
        _sweep()
        assert _count(db, Escalation) == 0
        # the asking case hears of it; the audit trail has it
        events = client.get(f"/api/v1/cases/{case['id']}/events",
                            headers=auth("liunan.officer")).json()["items"]
        assert any("撤回协助请求" in e["summary"] for e in events)
        record = db.scalar(select(AuditRecord).where(
            AuditRecord.action == "command.request_withdrawn"))
        assert record is not None and record.object_id == str(req["id"])
        assert record.details["reason"] == "被执行人已主动履行"
        # the figures count no completion for a withdrawal
        figs = client.get("/api/v1/command/figures", headers=auth("gx.duty")).json()
        assert figs["total"]["completed"] == 0

    def test_refusals_change_nothing(self, client: TestClient, auth: AuthHeaders,
                                     db: Session) -> None:
        req = _region_hands_to_guilin(client, auth)
        url = f"/api/v1/command/requests/{req['id']}/withdraw"
        # a center on the way is not the asker
        other = client.post(url, headers=auth("gx.duty"), json={"reason": "不需要了"})
        assert other.status_code == 403
        assert other.json()["error"]["code"] == "not_your_request"
        # a center off the way does not see the request at all
        nanning = duty_user(client, auth, "nanning.duty", "桂01")
        assert client.post(url, headers=nanning, json={"reason": "不需要了"}).status_code == 404
        for body, code in (({"reason": "   "}, "validation_failed"),
                           ({}, "required"), ({"reason": "x"}, "validation_failed")):
            bad = client.post(url, headers=auth("liuzhou.duty"), json=body)
            assert bad.status_code == 422, bad.text
            assert bad.json()["error"]["code"] == code
        assert db.scalar(select(AssistanceRequest.status).where(
            AssistanceRequest.id == req["id"])) == "open"
        ok = client.post(url, headers=auth("liuzhou.duty"), json={"reason": "不需要了"})
        assert ok.status_code == 200
        again = client.post(url, headers=auth("liuzhou.duty"), json={"reason": "不需要了"})
        assert again.status_code == 409
        assert again.json()["error"]["code"] == "request_withdrawn"

    def test_a_finished_request_cannot_be_withdrawn(self, client: TestClient,
                                                    auth: AuthHeaders, db: Session) -> None:
        req = client.post("/api/v1/command/requests", headers=auth("gx.duty"),
                          json=zeng_request(to_court_code="桂03", place_court_code="桂03")
                          ).json()
        guilin = auth("guilin.duty")
        client.post(f"/api/v1/command/hops/{req['hops'][0]['id']}/acknowledge", headers=guilin)
        client.post(f"/api/v1/command/requests/{req['id']}/result", headers=guilin,
                    json={"outcome": "failed", "summary": "车辆已驶离"})
        resp = client.post(f"/api/v1/command/requests/{req['id']}/withdraw",
                           headers=auth("gx.duty"), json={"reason": "撤回"})
        assert resp.status_code == 409
        assert resp.json()["error"]["code"] == "request_finished"
        row = db.scalar(select(AssistanceRequest).where(AssistanceRequest.id == req["id"]))
        assert row is not None and row.status == "failed" and row.result_summary == "车辆已驶离"

    def test_service_closes_the_open_hops(self, client: TestClient, auth: AuthHeaders) -> None:
        req = _region_hands_to_guilin(client, auth)
        with transaction() as session:
            network = Network(session)
            liuzhou = _actor(session, "liuzhou.duty")
            with pytest.raises(ValidationFailed) as refused:
                assistance.withdraw(session, liuzhou, network, req["id"], " ")
            assert refused.value.code == "reason_required"
            row = assistance.withdraw(session, liuzhou, network, req["id"], "申请人撤回申请")
            assert row.status == RequestStatus.WITHDRAWN
            closed = [e for e in session.scalars(select(BoardEvent).where(
                BoardEvent.request_id == row.id, BoardEvent.kind == "hop_closed"))]
            # only the hop still open (Guilin's), not the region's handed-down one
            assert [e.data["hop_id"] for e in closed] == [req["hops"][-1]["id"]]
            with pytest.raises(Conflict) as late:
                assistance.require_open(row)
            assert late.value.code == "request_withdrawn"

    def test_the_request_page_withdraws_with_csrf(self, client: TestClient,
                                                  auth: AuthHeaders, db: Session) -> None:
        req = _region_hands_to_guilin(client, auth)
        url = f"/command/requests/{req['id']}"
        # the escalation raised against Guilin waits on the region's desk...
        clock.set_offset(timedelta(minutes=11))
        _sweep()
        csrf = login(client, "gx.duty")
        assert 'data-testid="escalations"' in client.get("/command").text
        assert 'data-testid="withdraw-form"' not in client.get(url).text  # not the asker
        client.cookies.clear()
        csrf = login(client, "liuzhou.duty")
        page = client.get(url)
        assert 'data-testid="withdraw-form"' in page.text
        refused = client.post(f"{url}/withdraw", data={"reason": "已履行"})
        assert refused.status_code == 403
        empty = client.post(f"{url}/withdraw", data={"csrf_token": csrf, "reason": ""})
        assert empty.status_code == 422 and 'data-testid="form-error"' in empty.text
        assert db.scalar(select(AssistanceRequest.status).where(
            AssistanceRequest.id == req["id"])) == "open"
        done = client.post(f"{url}/withdraw", data={"csrf_token": csrf, "reason": "已履行"},
                           follow_redirects=False)
        assert done.status_code == 303 and done.headers["location"] == url
        page = client.get(url)
        assert 'data-status="withdrawn"' in page.text and 'data-testid="withdrawal"' in page.text
        assert 'data-testid="withdraw-form"' not in page.text
        # ...and is gone from it once the request is withdrawn
        client.cookies.clear()
        login(client, "gx.duty")
        assert 'data-testid="escalations"' not in client.get("/command").text
