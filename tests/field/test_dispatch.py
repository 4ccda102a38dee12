"""Dispatch orders: transitions and who may make them, the team's status, evidence uploads."""

from __future__ import annotations

import hashlib
from types import SimpleNamespace
from typing import Any

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import AuthHeaders
from tests.field.support import QIXING, make_case, second_team, seed, team_of, user
from zhixing.field import dispatch as dispatches
from zhixing.field.models import DispatchStatus

JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + b"\x00" * 2000
MOVES = ("en_route", "on_scene", "done", "cancelled")


def _dispatch(client: TestClient, auth: AuthHeaders, case_id: object = None,
              **over: object) -> dict[str, Any]:
    t = team_of(QIXING)
    # The region's desk: it reaches both the Qingxiu case and the Qixing team.
    resp = client.post("/api/v1/field/dispatches", headers=auth("gx.duty"), json={
        "task": "扣押曾某车辆", "place": "七星区某酒店停车场", "lon": t.lon, "lat": t.lat,
        "team_id": t.id, "case_id": case_id, **over})
    assert resp.status_code == 201, resp.text
    body: dict[str, Any] = resp.json()
    return body


def _move(client: TestClient, headers: dict[str, str], dispatch_id: object,
          to: str) -> Any:
    return client.post(f"/api/v1/field/dispatches/{dispatch_id}/status", headers=headers,
                       json={"to": to})


class TestTransitions:
    def test_team_moves_its_task_to_done(self, client: TestClient, auth: AuthHeaders) -> None:
        seed(client)
        case = make_case(client, auth)
        d = _dispatch(client, auth, case["id"])
        assert d["status"] == "dispatched"
        me = auth("qixing.bailiff")
        mine = client.get("/api/v1/field/dispatches", headers=me,
                          params={"mine": True}).json()["items"]
        assert [x["id"] for x in mine] == [d["id"]]
        skip = _move(client, me, d["id"], "on_scene")
        assert skip.status_code == 409 and skip.json()["error"]["code"] == "invalid_transition"
        for to in ("en_route", "on_scene", "done"):
            resp = _move(client, me, d["id"], to)
            assert resp.status_code == 200 and resp.json()["status"] == to
            assert resp.json()[f"{to}_at"] is not None
        assert _move(client, me, d["id"], "done").status_code == 409
        teams = client.get("/api/v1/field/teams/nearest", headers=auth("guilin.duty"), params={
            "lon": d["lon"], "lat": d["lat"], "limit": 1}).json()["items"]
        assert teams[0]["id"] == d["team_id"]  # available again
        events = client.get(f"/api/v1/cases/{case['id']}/events",
                            headers=auth("qingxiu.officer")).json()["items"]
        assert sum(e["kind"] == "dispatch" for e in events) == 4

    def test_only_the_desk_cancels(self, client: TestClient, auth: AuthHeaders) -> None:
        seed(client)
        d = _dispatch(client, auth)
        team = _move(client, auth("qixing.bailiff"), d["id"], "cancelled")
        assert team.status_code == 403 and team.json()["error"]["code"] == "desk_only"
        desk = _move(client, auth("gx.duty"), d["id"], "cancelled")  # the region's desk too
        assert desk.status_code == 200 and desk.json()["cancelled_at"]

    def test_a_task_that_is_not_yours(self, client: TestClient, auth: AuthHeaders) -> None:
        seed(client)
        d = _dispatch(client, auth)
        user(client, auth, "b.qixing2", QIXING, ["bailiff"])
        second_team(QIXING, "b.qixing2")
        other = _move(client, auth("b.qixing2"), d["id"], "en_route")
        assert other.status_code == 403 and other.json()["error"]["code"] == "not_your_task"
        far = user(client, auth, "b.liunan", "桂0204", ["bailiff"])
        assert _move(client, far, d["id"], "en_route").status_code == 404
        assert client.get(f"/api/v1/field/dispatches/{d['id']}", headers=far).status_code == 404
        officer = _move(client, auth("qingxiu.officer"), d["id"], "en_route")
        assert officer.status_code == 404
        liuzhou = _move(client, auth("liuzhou.duty"), d["id"], "en_route")
        assert liuzhou.status_code == 404  # a peer city's desk does not reach Qixing

    def test_bad_orders(self, client: TestClient, auth: AuthHeaders) -> None:
        seed(client)
        d = _dispatch(client, auth)
        t = team_of(QIXING)
        busy = client.post("/api/v1/field/dispatches", headers=auth("guilin.duty"), json={
            "task": "x", "place": "y", "lon": t.lon, "lat": t.lat, "team_id": t.id})
        assert busy.status_code == 409 and busy.json()["error"]["code"] == "team_not_available"
        cases: list[tuple[dict[str, object], int, str | None]] = [
            ({"team_id": 999_999}, 422, "team_not_found"),
            ({"team_id": team_of("桂0204").id}, 422, "team_not_found"),  # outside reach
            ({"vehicle_id": 1, "team_id": None}, 422, None),
            ({"lon": 151.2, "lat": -33.9}, 422, "position_outside_china")]
        for over, status, code in cases:
            resp = client.post("/api/v1/field/dispatches", headers=auth("guilin.duty"), json={
                "task": "x", "place": "y", "lon": t.lon, "lat": t.lat, **over})
            assert resp.status_code == status, (over, resp.text)
            if code:
                assert resp.json()["error"]["code"] == code
        bailiff = client.post("/api/v1/field/dispatches", headers=auth("qixing.bailiff"), json={
            "task": "x", "place": "y", "lon": t.lon, "lat": t.lat})
        assert bailiff.status_code == 403
        del d


class TestEvidence:
    def test_photo_is_attached_to_the_case(self, client: TestClient, auth: AuthHeaders) -> None:
        seed(client)
        case = make_case(client, auth)
        d = _dispatch(client, auth, case["id"])
        resp = client.post(f"/api/v1/field/dispatches/{d['id']}/documents",
                           headers=auth("qixing.bailiff"),
                           files={"file": ("scene.jpg", JPEG, "image/jpeg")})
        assert resp.status_code == 201, resp.text
        assert resp.json()["sha256"] == hashlib.sha256(JPEG).hexdigest()
        detail = client.get(f"/api/v1/cases/{case['id']}", headers=auth("qingxiu.officer"))
        docs = detail.json()["documents"]
        assert [(x["filename"], x["sha256"]) for x in docs] == [
            ("scene.jpg", hashlib.sha256(JPEG).hexdigest())]
        page = client.get(f"/api/v1/cases/{case['id']}/events",
                          headers=auth("qingxiu.officer")).json()["items"]
        assert any(e["kind"] == "document" and "现场取证" in e["summary"] for e in page)

    @pytest.mark.parametrize(("name", "content", "code"), [
        ("a.pdf", b"%PDF-1.4 not a photo", "file_type_not_allowed"),
        ("a.jpg", b"GIF89a pretending", "file_type_not_allowed"),
        ("a.exe", b"MZ\x90\x00", "file_type_not_allowed"),
        ("a.jpg", b"", "empty_file"),
    ])
    def test_disallowed_files(self, client: TestClient, auth: AuthHeaders, name: str,
                              content: bytes, code: str) -> None:
        seed(client)
        d = _dispatch(client, auth, make_case(client, auth)["id"])
        resp = client.post(f"/api/v1/field/dispatches/{d['id']}/documents",
                           headers=auth("qixing.bailiff"),
                           files={"file": (name, content, "image/jpeg")})
        assert resp.status_code == 422 and resp.json()["error"]["code"] == code

    def test_over_the_size_limit(self, client: TestClient, auth: AuthHeaders,
                                 monkeypatch: pytest.MonkeyPatch) -> None:
        seed(client)
        d = _dispatch(client, auth, make_case(client, auth)["id"])
        monkeypatch.setattr(dispatches, "get_settings",
                            lambda: SimpleNamespace(max_upload_bytes=1024))
        resp = client.post(f"/api/v1/field/dispatches/{d['id']}/documents",
                           headers=auth("qixing.bailiff"),
                           files={"file": ("big.jpg", JPEG, "image/jpeg")})
        assert resp.status_code == 422 and resp.json()["error"]["code"] == "file_too_large"

    def test_no_case_and_not_yours(self, client: TestClient, auth: AuthHeaders) -> None:
        seed(client)
        d = _dispatch(client, auth)
        resp = client.post(f"/api/v1/field/dispatches/{d['id']}/documents",
                           headers=auth("qixing.bailiff"),
                           files={"file": ("a.jpg", JPEG, "image/jpeg")})
        assert resp.status_code == 409 and resp.json()["error"]["code"] == "no_case"
        user(client, auth, "b.qixing3", QIXING, ["bailiff"])
        second_team(QIXING, "b.qixing3")
        other = client.post(f"/api/v1/field/dispatches/{d['id']}/documents",
                            headers=auth("b.qixing3"),
                            files={"file": ("a.jpg", JPEG, "image/jpeg")})
        assert other.status_code == 403


@settings(max_examples=12, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(walk=st.lists(st.tuples(st.sampled_from(MOVES), st.booleans()), max_size=6))
def test_random_walks_follow_the_state_machine(client: TestClient, auth: AuthHeaders,
                                               walk: list[tuple[str, bool]]) -> None:
    """Any sequence of moves by the team or the desk: accepted exactly when the model says."""
    seed(client)
    d = _dispatch(client, auth)
    state = DispatchStatus.DISPATCHED
    for to, by_desk in walk:
        target = DispatchStatus(to)
        resp = _move(client, auth("guilin.duty" if by_desk else "qixing.bailiff"), d["id"], to)
        if target == DispatchStatus.CANCELLED and not by_desk:
            assert resp.status_code == 403
        elif dispatches.can_move(state, target):
            assert resp.status_code == 200, resp.text
            state = target
        else:
            assert resp.status_code == 409
    if state in dispatches.ACTIVE:  # free the team for the next example
        assert _move(client, auth("guilin.duty"), d["id"], "cancelled").status_code == 200
    order = ["dispatched", "en_route", "on_scene", "done"]
    final = client.get(f"/api/v1/field/dispatches/{d['id']}", headers=auth("guilin.duty")).json()
    stamps = [final[f"{s}_at"] for s in order if final[f"{s}_at"]]
    assert stamps == sorted(stamps)
