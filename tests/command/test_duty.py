"""The roster, who is on duty, the handover; roll call with unanswered centers flagged on a
moved clock."""

from __future__ import annotations

import itertools
from datetime import UTC, date, datetime, timedelta

from fastapi.testclient import TestClient
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import select
from sqlalchemy.orm import Session

from tests.command.support import duty_user, zeng_request
from tests.conftest import AuthHeaders
from zhixing.command import duty, escalation
from zhixing.command.models import RollCallAnswer
from zhixing.core import clock
from zhixing.core.clock import utcnow
from zhixing.core.db import transaction


@settings(max_examples=100, deadline=None)
@given(st.dates(min_value=date(2025, 1, 1), max_value=date(2030, 12, 31)),
       st.integers(1, 31), st.integers(0, 23), st.sampled_from([8, 12, 24]), st.integers(1, 4))
def test_rotation_covers_the_days_back_to_back(first: date, days: int, hour: int, hours: int,
                                               teams: int) -> None:
    slots = duty.rotation(first, days, hour, hours, teams)
    assert len(slots) == days * 24 // hours
    assert slots[0][0].date() == first and slots[0][0].hour == hour
    for (_s1, e1, t1), (s2, _e2, t2) in itertools.pairwise(slots):
        assert e1 == s2 and t2 == (t1 + 1) % teams
    assert all(e - s == timedelta(hours=hours) for s, e, _ in slots)


def _shift(start: datetime, hours: int = 24, **over: object) -> dict[str, object]:
    body: dict[str, object] = {
        "court_code": "桂", "starts_at": start.isoformat(),
        "ends_at": (start + timedelta(hours=hours)).isoformat(), "phone": "0771-1234567",
        "vehicles": "桂A·J0001", "members": [
            {"role": "leader", "username": "gx.duty"},
            {"role": "officer", "name": "值班员 李明", "phone": "13800000000"},
            {"role": "standby", "name": "法警 韦强"}]}
    body.update(over)
    return body


class TestRoster:
    def test_who_is_on_duty_now_and_then(self, client: TestClient, auth: AuthHeaders) -> None:
        leader = auth("gx.duty")
        now = utcnow().replace(microsecond=0)
        r = client.post("/api/v1/command/shifts", headers=leader, json=_shift(now - timedelta(
            hours=2)))
        assert r.status_code == 201, r.text
        clash = client.post("/api/v1/command/shifts", headers=leader,
                            json=_shift(now, hours=8))
        assert clash.status_code == 409 and clash.json()["error"]["code"] == "shift_overlaps"
        on = client.get("/api/v1/command/duty", headers=auth("gx.duty")).json()
        assert len(on["items"]) == 50 and on["next_cursor"]  # the region and below, paged
        [region] = [i for i in on["items"] if i["center"]["court_code"] == "桂"]
        roles = {m["role"]: m["name"] for m in region["shift"]["members"]}
        assert roles == {"leader": "值班领导 黄建", "officer": "值班员 李明",
                         "standby": "法警 韦强"}
        later = client.get("/api/v1/command/duty", headers=leader, params={
            "court": "桂", "at": (now + timedelta(days=2)).isoformat(), "limit": 1}).json()
        assert later["items"][0]["shift"] is None
        # a city sees itself and its districts only
        guilin = client.get("/api/v1/command/duty", headers=auth("guilin.duty"),
                            params={"limit": 200}).json()["items"]
        assert {i["center"]["court_code"][:3] for i in guilin} == {"桂03"}

    def test_bad_shifts(self, client: TestClient, auth: AuthHeaders) -> None:
        leader = auth("gx.duty")
        now = datetime.now(UTC)
        no_leader = _shift(now, members=[{"role": "officer", "name": "某"}])
        r = client.post("/api/v1/command/shifts", headers=leader, json=no_leader)
        assert r.status_code == 422 and r.json()["error"]["code"] == "leader_required"
        stranger = _shift(now, members=[{"role": "leader", "username": "guilin.duty"}])
        r = client.post("/api/v1/command/shifts", headers=leader, json=stranger)
        assert r.status_code == 422 and r.json()["error"]["code"] == "user_not_in_center"
        backwards = _shift(now, hours=-1)
        assert client.post("/api/v1/command/shifts", headers=leader,
                           json=backwards).status_code == 422
        # Guilin keeps its own roster, not the region's
        r = client.post("/api/v1/command/shifts", headers=auth("guilin.duty"), json=_shift(now))
        assert r.status_code == 404 and r.json()["error"]["code"] == "court_not_found"
        # a duty officer without the leader role does not keep rosters
        r = client.post("/api/v1/command/shifts", headers=auth("liuzhou.duty"),
                        json=_shift(now, court_code="桂02", members=[
                            {"role": "leader", "username": "liuzhou.duty"}]))
        assert r.status_code == 403

    def test_rotating_roster(self, client: TestClient, auth: AuthHeaders) -> None:
        first = (utcnow() + timedelta(days=3)).date()
        r = client.post("/api/v1/command/rosters", headers=auth("guilin.duty"), json={
            "court_code": "桂03", "first_day": first.isoformat(), "days": 3, "shift_hours": 12,
            "teams": [{"name": "甲班", "members": [{"role": "leader", "username": "guilin.duty"}]},
                      {"name": "乙班", "members": [{"role": "leader", "name": "值班领导 唐"}]}]})
        assert r.status_code == 201, r.text
        assert [s["team"] for s in r.json()["items"]] == ["甲班", "乙班"] * 3
        listed = client.get("/api/v1/command/shifts", headers=auth("guilin.duty"), params={
            "start": first.isoformat(), "days": 3}).json()["items"]
        assert len(listed) == 6


class TestHandover:
    def test_items_carried_and_acknowledged_once(self, client: TestClient,
                                                 auth: AuthHeaders) -> None:
        outgoing = auth("gx.duty")
        req = client.post("/api/v1/command/requests", headers=outgoing,
                          json=zeng_request(to_court_code="桂03")).json()
        h = client.post("/api/v1/command/handovers", headers=outgoing, json={
            "items": ["南宁暴雨，注意外勤安全", "贺州法院视频设备故障"]})
        assert h.status_code == 201, h.text
        items = h.json()["items"]
        assert [i["text"] for i in items[:2]] == ["南宁暴雨，注意外勤安全", "贺州法院视频设备故障"]
        assert items[2]["request_id"] == req["id"]  # the open request is carried
        url = f"/api/v1/command/handovers/{h.json()['id']}/acknowledge"
        same = client.post(url, headers=outgoing)
        assert same.status_code == 409 and same.json()["error"]["code"] == "same_person"
        pending = client.post("/api/v1/command/handovers", headers=outgoing, json={})
        assert pending.status_code == 409
        incoming = duty_user(client, auth, "gx.duty2", "桂", ("duty_leader",))
        ok = client.post(url, headers=incoming)
        assert ok.status_code == 200 and ok.json()["acknowledged_at"]
        assert client.post(url, headers=incoming).status_code == 409
        # next handover carries the unresolved text items
        nxt = client.post("/api/v1/command/handovers", headers=incoming, json={
            "resolved": ["贺州法院视频设备故障"]}).json()
        texts = [i["text"] for i in nxt["items"]]
        assert "南宁暴雨，注意外勤安全" in texts and "贺州法院视频设备故障" not in texts
        assert client.get(f"/api/v1/command/handovers/{nxt['id']}",
                          headers=auth("guilin.duty")).status_code == 404


class TestRollCall:
    def test_every_city_answers_or_is_flagged(self, client: TestClient, auth: AuthHeaders,
                                              db: Session) -> None:
        r = client.post("/api/v1/command/roll-calls", headers=auth("gx.duty"),
                        json={"answer_within_minutes": 10})
        assert r.status_code == 201, r.text
        call = r.json()
        assert len(call["answers"]) == 14
        assert {a["status"] for a in call["answers"]} == {"pending"}
        url = f"/api/v1/command/roll-calls/{call['id']}/answer"
        nothing = client.post(url, headers=auth("guilin.duty"), json={"status": "nothing"})
        assert nothing.status_code == 200, nothing.text
        again = client.post(url, headers=auth("guilin.duty"), json={"status": "nothing"})
        assert again.status_code == 409
        no_text = client.post(url, headers=auth("liuzhou.duty"), json={"status": "items"})
        assert no_text.status_code == 422 and no_text.json()["error"]["code"] == "text_required"
        items = client.post(url, headers=auth("liuzhou.duty"), json={
            "status": "items", "text": "曾某车辆在桂林七星区出现，请求协调扣押",
            "request": zeng_request()})
        assert items.status_code == 200, items.text
        rid = items.json()["request_id"]
        req = client.get(f"/api/v1/command/requests/{rid}", headers=auth("gx.duty")).json()
        assert req["holder"]["court_code"] == "桂"  # sent to the calling center
        # Qingxiu (a district) is not called by the region
        qingxiu = duty_user(client, auth, "qx.duty", "桂0103", ("duty_officer",))
        assert client.post(url, headers=qingxiu, json={
            "status": "nothing"}).status_code == 404
        # the clock runs out: the twelve silent cities are flagged, once
        clock.set_offset(timedelta(minutes=11))
        with transaction() as session:
            assert escalation.sweep(session).roll_call_overdue == 12
        with transaction() as session:
            assert escalation.sweep(session).roll_call_overdue == 0
        flagged = db.scalars(select(RollCallAnswer).where(
            RollCallAnswer.overdue_at.is_not(None))).all()
        assert len(flagged) == 12
        late = client.post(url, headers=auth("gx.duty"), json={"status": "nothing"})
        assert late.status_code == 403  # the region is not called by itself
        read = client.get(f"/api/v1/command/roll-calls/{call['id']}",
                          headers=auth("liuzhou.duty")).json()
        by = {a["center"]["court_code"]: a for a in read["answers"]}
        assert by["桂02"]["status"] == "items" and by["桂01"]["overdue"]
        assert not by["桂03"]["overdue"]

    def test_only_a_leader_with_centers_below(self, client: TestClient,
                                              auth: AuthHeaders) -> None:
        officer = client.post("/api/v1/command/roll-calls", headers=auth("liuzhou.duty"),
                              json={})
        assert officer.status_code == 403
        qixing = duty_user(client, auth, "qx.lead", "桂0305", ("duty_leader",))
        district = client.post("/api/v1/command/roll-calls", headers=qixing, json={})
        assert district.status_code == 422
        assert district.json()["error"]["code"] == "no_subordinate_centers"
        city = client.post("/api/v1/command/roll-calls", headers=auth("guilin.duty"),
                           json={}).json()
        assert {a["center"]["court_code"][:3] for a in city["answers"]} == {"桂03"}
