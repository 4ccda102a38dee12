"""A dispatch on another center's assistance request: the Zeng story's last mile. Qixing's desk
sends its nearest team; the team's steps are on the request's timeline and its photo from the
scene is the request's evidence and a document of Liunan's case, which Qixing cannot see."""

from __future__ import annotations

import hashlib
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import func, select

from tests.command.support import duty_user, liunan_case, zeng_request
from tests.conftest import AuthHeaders
from tests.field.support import QIXING, seed, team_of
from zhixing.cases.models import CaseDocument
from zhixing.core.db import transaction
from zhixing.field.models import Dispatch, DispatchEvidence

JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + b"\x00" * 500 + b"zeng car"


def _held_by_qixing(client: TestClient, auth: AuthHeaders) -> tuple[dict[str, Any],
                                                                     dict[str, Any]]:
    """Liunan's case, and Liuzhou's request handed region → Guilin → Qixing, acknowledged."""
    duty_user(client, auth, "qixing.duty", QIXING)
    case = liunan_case(client, auth)
    req = client.post("/api/v1/command/requests", headers=auth("liuzhou.duty"),
                      json=zeng_request(case["id"], to_court_code="桂")).json()
    hop = req["hops"][0]["id"]
    for who, to in (("gx.duty", "桂03"), ("guilin.duty", QIXING)):
        assert client.post(f"/api/v1/command/hops/{hop}/acknowledge",
                           headers=auth(who)).status_code == 200
        r = client.post(f"/api/v1/command/hops/{hop}/hand-down", headers=auth(who),
                        json={"to_court_code": to})
        assert r.status_code == 200, r.text
        hop = r.json()["hops"][-1]["id"]
    assert client.post(f"/api/v1/command/hops/{hop}/acknowledge",
                       headers=auth("qixing.duty")).status_code == 200
    return case, req


def _dispatch_body(**over: Any) -> dict[str, Any]:
    t = team_of(QIXING)
    return {"task": "扣押曾某车辆", "place": "七星区某酒店停车场", "lon": t.lon + 0.001,
            "lat": t.lat, **over}


def _count(model: Any) -> int:
    with transaction() as session:
        return int(session.scalar(select(func.count()).select_from(model)) or 0)


def test_the_team_works_the_request_and_the_asking_case_gets_the_photo(
        client: TestClient, auth: AuthHeaders) -> None:
    seed(client)
    case, req = _held_by_qixing(client, auth)
    desk = auth("qixing.duty")
    resp = client.post("/api/v1/field/dispatches", headers=desk,
                       json=_dispatch_body(request_id=req["id"]))
    assert resp.status_code == 201, resp.text
    d = resp.json()
    assert d["request_id"] == req["id"] and d["case_id"] is None
    bailiff = auth("qixing.bailiff")
    for to in ("en_route", "on_scene"):
        assert client.post(f"/api/v1/field/dispatches/{d['id']}/status", headers=bailiff,
                           json={"to": to}).status_code == 200
    up = client.post(f"/api/v1/field/dispatches/{d['id']}/documents", headers=bailiff,
                     files={"file": ("car.jpg", JPEG, "image/jpeg")})
    assert up.status_code == 201, up.text
    ev = up.json()
    assert ev["request_evidence_id"] and ev["document_id"]
    assert ev["sha256"] == hashlib.sha256(JPEG).hexdigest()
    assert client.post(f"/api/v1/field/dispatches/{d['id']}/status", headers=bailiff,
                       json={"to": "done", "note": "车辆已拖离"}).status_code == 200

    # Liuzhou, which asked, follows the team on the request's one timeline
    asker = auth("liuzhou.duty")
    tl = client.get(f"/api/v1/command/requests/{req['id']}/timeline",
                    headers=asker).json()["items"]
    kinds = [e["kind"] for e in tl]
    assert kinds[-5:] == ["dispatch", "dispatch", "dispatch", "evidence", "dispatch"]
    assert "到达现场" in tl[-3]["summary"] and "车辆已拖离" in tl[-1]["summary"]
    body = client.get(f"/api/v1/command/requests/{req['id']}", headers=asker).json()
    assert [e["sha256"] for e in body["evidence"]] == [ev["sha256"]]
    # the photo is a document of Liunan's case, readable by its officer
    officer = auth("liunan.officer")
    got = client.get(f"/api/v1/cases/{case['id']}/documents/{ev['document_id']}",
                     headers=officer)
    assert got.status_code == 200 and got.content == JPEG
    # the dispatch stays Qixing's: Liuzhou does not see it
    assert client.get(f"/api/v1/field/dispatches/{d['id']}", headers=asker).status_code == 404


def test_only_the_center_holding_the_request_sends_a_team(client: TestClient,
                                                          auth: AuthHeaders) -> None:
    seed(client)
    duty_user(client, auth, "qixing.duty", QIXING)
    case = liunan_case(client, auth)
    req = client.post("/api/v1/command/requests", headers=auth("liuzhou.duty"),
                      json=zeng_request(case["id"], to_court_code="桂")).json()
    # Qixing cannot see the request yet: as if it did not exist
    r = client.post("/api/v1/field/dispatches", headers=auth("qixing.duty"),
                    json=_dispatch_body(request_id=req["id"]))
    assert r.status_code == 422 and r.json()["error"]["code"] == "request_not_found"
    # the region holds it but has not acknowledged it
    r = client.post("/api/v1/field/dispatches", headers=auth("gx.duty"),
                    json=_dispatch_body(request_id=req["id"]))
    assert r.status_code == 409 and r.json()["error"]["code"] == "not_acknowledged"
    # Liuzhou asked but does not hold it
    r = client.post("/api/v1/field/dispatches", headers=auth("liuzhou.duty"),
                    json=_dispatch_body(request_id=req["id"]))
    assert r.status_code == 403
    assert _count(Dispatch) == 0


def test_a_case_and_a_request_together_are_refused(client: TestClient,
                                                   auth: AuthHeaders) -> None:
    seed(client)
    case, req = _held_by_qixing(client, auth)
    r = client.post("/api/v1/field/dispatches", headers=auth("gx.duty"),
                    json=_dispatch_body(request_id=req["id"], case_id=case["id"]))
    assert r.status_code == 422 and r.json()["error"]["code"] == "case_and_request"


def test_withdrawing_calls_the_team_off_and_takes_no_more_evidence(
        client: TestClient, auth: AuthHeaders) -> None:
    seed(client)
    _, req = _held_by_qixing(client, auth)
    desk = auth("qixing.duty")
    d = client.post("/api/v1/field/dispatches", headers=desk,
                    json=_dispatch_body(request_id=req["id"])).json()
    assert client.post(f"/api/v1/field/dispatches/{d['id']}/status",
                       headers=auth("qixing.bailiff"), json={"to": "en_route"}
                       ).status_code == 200
    withdrawn = client.post(f"/api/v1/command/requests/{req['id']}/withdraw",
                            headers=auth("liuzhou.duty"), json={"reason": "已自动履行"})
    assert withdrawn.status_code == 200, withdrawn.text
    called_off = client.get(f"/api/v1/field/dispatches/{d['id']}", headers=desk).json()
    assert called_off["status"] == "cancelled" and "已自动履行" in called_off["result"]
    tl = client.get(f"/api/v1/command/requests/{req['id']}/timeline",
                    headers=auth("liuzhou.duty")).json()["items"]
    assert tl[-1]["kind"] == "dispatch" and "取消" in tl[-1]["summary"]
    # the team is free for the next task
    team = team_of(QIXING)
    near = client.get("/api/v1/field/teams/nearest", headers=desk, params={
        "lon": team.lon, "lat": team.lat, "limit": 1}).json()["items"]
    assert near[0]["id"] == team.id
    before = _count(DispatchEvidence), _count(CaseDocument)
    up = client.post(f"/api/v1/field/dispatches/{d['id']}/documents",
                     headers=auth("qixing.bailiff"),
                     files={"file": ("car.jpg", JPEG, "image/jpeg")})
    assert up.status_code == 409 and up.json()["error"]["code"] == "request_withdrawn"
    assert (_count(DispatchEvidence), _count(CaseDocument)) == before
