"""Video calls between duty desks: who may call whom, the call's states, the signalling
relayed in order with its size limits, a call missed after 60 s on a moved clock, the audit
trail, and the board's banner and video links (the media themselves are in the browser
test)."""

from __future__ import annotations

import html
import json
import re
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from tests.command.support import duty_user, on_duty
from tests.conftest import AuthHeaders
from tests.web.test_console import login
from zhixing.command import calls, escalation, policy
from zhixing.command.models import CallSide, CallSignal, VideoCall
from zhixing.command.network import Network
from zhixing.core import clock
from zhixing.core.db import transaction
from zhixing.core.jobs import Worker
from zhixing.core.models import AuditRecord, Job
from zhixing.core.settings import get_settings

URL = "/api/v1/command/calls"


def sdp(tag: str = "offer", size: int = 0) -> str:
    """Enough of a session description for the platform, which only carries it."""
    text = f"v=0\r\no=- 4611731400430051336 2 IN IP4 127.0.0.1\r\ns={tag}\r\nt=0 0\r\n"
    if size:
        text += "a=x-pad:" + "x" * (size - len(text) - 10) + "\r\n"
    return text


def candidate(i: int) -> dict[str, Any]:
    return {"candidate": f"candidate:{i} 1 udp 2122260223 192.0.2.2 {50000 + i} typ host "
                         "generation 0", "sdpMid": "0", "sdpMLineIndex": 0,
            "usernameFragment": "abcd"}


@pytest.fixture
def desks(client: TestClient, auth: AuthHeaders) -> AuthHeaders:
    """The region's duty leader and Guilin's duty officer on duty now."""
    on_duty(client, auth, "桂", ("leader", "gx.duty"))
    on_duty(client, auth, "桂03", ("officer", "guilin.duty"))
    return auth


def place(client: TestClient, headers: dict[str, str], to: str = "桂03",
          **over: Any) -> dict[str, Any]:
    resp = client.post(URL, headers=headers, json={"to_court_code": to, "sdp": sdp(), **over})
    assert resp.status_code == 201, resp.text
    result: dict[str, Any] = resp.json()
    return result


def _count(db: Session, model: type[Any]) -> int:
    return int(db.scalar(select(func.count()).select_from(model)) or 0)


def _audit(db: Session, call_id: int) -> list[tuple[str, dict[str, Any]]]:
    rows = db.execute(select(AuditRecord.action, AuditRecord.details).where(
        AuditRecord.object_type == "video_call", AuditRecord.object_id == str(call_id))
        .order_by(AuditRecord.seq)).tuples().all()
    return [(a, d or {}) for a, d in rows]


class TestWhoMayCall:
    def test_the_rule_over_the_tree(self, db: Session) -> None:
        network = Network(db)

        def why(a: str, b: str) -> str | None:
            return policy.call_refusal(network.tree.by_code[a], network.tree.by_code[b])

        assert why("桂", "桂03") is None and why("桂03", "桂") is None  # child, parent
        assert why("桂03", "桂02") is None  # peer cities under the region
        assert why("桂0305", "桂0321") is None  # peer districts under Guilin
        assert why("桂0305", "桂03") is None
        assert why("桂", "桂0305") == "call_route_not_allowed"  # two levels down
        assert why("桂0305", "桂0204") == "call_route_not_allowed"  # a district of another city
        assert why("桂0305", "桂02") == "call_route_not_allowed"  # another city
        assert why("桂03", "桂03") == "same_center"
        guilin = network.by_code("桂03", "x")
        reach = [c.code for c in policy.callable_centers(network, guilin)]
        assert reach[0] == "桂" and "桂0305" in reach and "桂02" in reach
        assert "桂03" not in reach and "桂0204" not in reach
        assert len(reach) == len(set(reach))

    def test_the_region_calls_guilin(self, client: TestClient, desks: AuthHeaders,
                                     db: Session) -> None:
        call = place(client, desks("gx.duty"))
        assert call["state"] == "ringing" and call["your_side"] == "caller"
        assert call["caller_center"]["court_code"] == "桂"
        assert call["callee_center"]["court_code"] == "桂03"
        assert call["caller_name"] == "值班领导 黄建"
        seen = client.get(f"{URL}/{call['id']}", headers=desks("guilin.duty")).json()
        assert seen["you_may_answer"] is True and seen["your_side"] is None
        # one center up and one below see it; an unrelated city does not
        liuzhou = client.get(f"{URL}/{call['id']}", headers=desks("liuzhou.duty"))
        assert liuzhou.status_code == 404
        assert liuzhou.json()["error"]["code"] == "call_not_found"
        assert _count(db, VideoCall) == 1

    @pytest.mark.parametrize(("to", "code"), [
        ("桂0305", "call_route_not_allowed"),  # two levels down: through Guilin
        ("桂", "same_center"),
        ("桂9999", "court_not_found"),
    ])
    def test_routes(self, client: TestClient, desks: AuthHeaders, db: Session, to: str,
                    code: str) -> None:
        resp = client.post(URL, headers=desks("gx.duty"), json={"to_court_code": to,
                                                                 "sdp": sdp()})
        assert resp.status_code == 422 and resp.json()["error"]["code"] == code
        assert _count(db, VideoCall) == 0 and _count(db, CallSignal) == 0

    def test_peers_and_parents(self, client: TestClient, desks: AuthHeaders) -> None:
        liuzhou = desks("liuzhou.duty")
        on_duty(client, desks, "桂02", ("officer", "liuzhou.duty"))
        assert place(client, liuzhou, "桂03")["state"] == "ringing"  # a peer city
        assert place(client, liuzhou, "桂")["state"] == "ringing"  # its parent
        qixing = duty_user(client, desks, "qixing.duty", "桂0305", roles=("duty_officer",))
        duty_user(client, desks, "yangshuo.duty", "桂0321", roles=("duty_officer",))
        on_duty(client, desks, "桂0305", ("officer", "qixing.duty"))
        on_duty(client, desks, "桂0321", ("officer", "yangshuo.duty"))
        assert place(client, qixing, "桂0321")["state"] == "ringing"  # a peer district
        far = client.post(URL, headers=qixing, json={"to_court_code": "桂02", "sdp": sdp()})
        assert far.json()["error"]["code"] == "call_route_not_allowed"

    def test_only_the_duty_desk_calls(self, client: TestClient, auth: AuthHeaders,
                                      db: Session) -> None:
        on_duty(client, auth, "桂03", ("officer", "guilin.duty"))
        # gx.duty holds the roles but is not on the roster now
        resp = client.post(URL, headers=auth("gx.duty"), json={"to_court_code": "桂03",
                                                               "sdp": sdp()})
        assert resp.status_code == 403 and resp.json()["error"]["code"] == "not_on_duty"
        # a standby on the roster answers calls but does not place them
        duty_user(client, auth, "gx.standby", "桂", roles=("duty_officer",))
        on_duty(client, auth, "桂", ("standby", "gx.standby"))
        resp = client.post(URL, headers=auth("gx.standby"), json={"to_court_code": "桂03",
                                                                  "sdp": sdp()})
        assert resp.status_code == 403 and resp.json()["error"]["code"] == "not_on_duty"
        officer = client.post(URL, headers=auth("qingxiu.officer"),
                              json={"to_court_code": "桂01", "sdp": sdp()})
        assert officer.status_code == 403
        assert _count(db, VideoCall) == 0
        # the center's administrator may, roster or not
        assert place(client, auth("admin"))["state"] == "ringing"

    def test_nobody_on_duty_there(self, client: TestClient, desks: AuthHeaders,
                                  db: Session) -> None:
        resp = client.post(URL, headers=desks("gx.duty"), json={"to_court_code": "桂02",
                                                                "sdp": sdp()})
        assert resp.status_code == 409 and resp.json()["error"]["code"] == "nobody_on_duty"
        assert _count(db, VideoCall) == 0


class TestStates:
    def test_answer_then_hang_up(self, client: TestClient, desks: AuthHeaders,
                                 db: Session) -> None:
        call = place(client, desks("gx.duty"))
        url = f"{URL}/{call['id']}"
        own = client.post(f"{url}/answer", headers=desks("gx.duty"), json={"sdp": sdp("a")})
        assert own.status_code == 403 and own.json()["error"]["code"] == "not_callee"
        answered = client.post(f"{url}/answer", headers=desks("guilin.duty"),
                               json={"sdp": sdp("answer")})
        assert answered.status_code == 200, answered.text
        body = answered.json()
        assert body["state"] == "connected" and body["answered_by_name"] == "值班员 莫林"
        assert body["your_side"] == "callee"
        again = client.post(f"{url}/answer", headers=desks("guilin.duty"),
                            json={"sdp": sdp("answer")})
        assert again.status_code == 409
        assert again.json()["error"]["code"] == "call_already_answered"
        clock.set_offset(timedelta(seconds=75))  # they talk for 75 seconds
        ended = client.post(f"{url}/end", headers=desks("guilin.duty"), json={})
        assert ended.status_code == 200
        body = ended.json()
        assert body["state"] == "ended" and body["ended_side"] == "callee"
        assert body["ended_by_name"] == "值班员 莫林"
        assert 75 <= body["duration_seconds"] <= 77
        # over: no answer, no candidates, no second end
        late = client.post(f"{url}/answer", headers=desks("guilin.duty"),
                           json={"sdp": sdp("answer")})
        assert late.status_code == 409 and late.json()["error"]["code"] == "call_ended"
        assert late.json()["error"]["details"] == {"state": "ended"}
        more = client.post(f"{url}/candidates", headers=desks("gx.duty"),
                           json={"candidates": [candidate(1)]})
        assert more.status_code == 409 and more.json()["error"]["code"] == "call_ended"
        twice = client.post(f"{url}/end", headers=desks("gx.duty"))
        assert twice.status_code == 409
        # every step audited, and on the board
        trail = _audit(db, call["id"])
        assert [a for a, _ in trail] == ["command.call_started", "command.call_answered",
                                         "command.call_ended"]
        assert trail[2][1]["state"] == "ended" and trail[2][1]["side"] == "callee"
        assert trail[0][1] == {"from": "桂", "to": "桂03"}

    def test_declined_by_anyone_on_duty_there(self, client: TestClient, desks: AuthHeaders,
                                              db: Session) -> None:
        call = place(client, desks("gx.duty"))
        url = f"{URL}/{call['id']}"
        # Guilin's users who are not on the roster neither answer nor decline
        duty_user(client, desks, "guilin.other", "桂03", roles=("duty_officer",))
        nope = client.post(f"{url}/answer", headers=desks("guilin.other"),
                           json={"sdp": sdp("answer")})
        assert nope.status_code == 403 and nope.json()["error"]["code"] == "not_on_duty"
        assert client.post(f"{url}/end", headers=desks("guilin.other"),
                           json={"reason": "decline"}).status_code == 403
        # a candidate before answering is refused: answer first
        early = client.post(f"{url}/candidates", headers=desks("guilin.duty"),
                            json={"candidates": [candidate(1)]})
        assert early.status_code == 409 and early.json()["error"]["code"] == "answer_first"
        declined = client.post(f"{url}/end", headers=desks("guilin.duty"),
                               json={"reason": "decline"})
        assert declined.json()["state"] == "declined"
        assert declined.json()["duration_seconds"] is None
        late = client.post(f"{url}/answer", headers=desks("guilin.duty"),
                           json={"sdp": sdp("answer")})
        assert late.status_code == 409 and late.json()["error"]["code"] == "call_ended"
        assert [a for a, _ in _audit(db, call["id"])] == ["command.call_started",
                                                          "command.call_ended"]

    def test_called_off_and_failed(self, client: TestClient, desks: AuthHeaders) -> None:
        first = place(client, desks("gx.duty"))
        off = client.post(f"{URL}/{first['id']}/end", headers=desks("gx.duty")).json()
        assert off["state"] == "ended" and off["ended_side"] == "caller"
        assert off["duration_seconds"] is None
        second = place(client, desks("gx.duty"))
        client.post(f"{URL}/{second['id']}/answer", headers=desks("guilin.duty"),
                    json={"sdp": sdp("answer")})
        failed = client.post(f"{URL}/{second['id']}/end", headers=desks("gx.duty"),
                             json={"reason": "failed"}).json()
        assert failed["state"] == "failed" and failed["duration_seconds"] is not None
        bad = client.post(f"{URL}/{second['id']}/end", headers=desks("gx.duty"),
                          json={"reason": "lost"})
        assert bad.status_code == 422

    def test_missed_after_60_seconds(self, client: TestClient, desks: AuthHeaders,
                                     db: Session) -> None:
        call = place(client, desks("gx.duty"))
        url = f"{URL}/{call['id']}"
        [job] = db.scalars(select(Job).where(Job.kind == calls.UNANSWERED_JOB)).all()
        assert job.payload == {"call_id": call["id"]}
        clock.set_offset(timedelta(seconds=59))
        Worker().run_pending()
        assert client.get(url, headers=desks("gx.duty")).json()["state"] == "ringing"
        clock.set_offset(timedelta(seconds=61))
        Worker().run_pending()  # the job at the ring's end
        row = db.get(VideoCall, call["id"])
        assert row is not None and row.state == "missed"
        body = client.get(url, headers=desks("gx.duty")).json()
        assert body["state"] == "missed" and body["ended_side"] == "platform"
        assert body["ended_by"] is None and body["duration_seconds"] is None
        late = client.post(f"{url}/answer", headers=desks("guilin.duty"),
                           json={"sdp": sdp("answer")})
        assert late.status_code == 409 and late.json()["error"]["code"] == "call_ended"
        assert late.json()["error"]["details"] == {"state": "missed"}
        trail = _audit(db, call["id"])
        assert trail[-1][0] == "command.call_ended" and trail[-1][1]["state"] == "missed"

    def test_missed_when_touched_before_the_job_runs(self, client: TestClient,
                                                     desks: AuthHeaders) -> None:
        call = place(client, desks("gx.duty"))
        clock.set_offset(timedelta(seconds=61))
        late = client.post(f"{URL}/{call['id']}/answer", headers=desks("guilin.duty"),
                           json={"sdp": sdp("answer")})
        assert late.status_code == 409 and late.json()["error"]["details"] == {
            "state": "missed"}
        assert Worker().run_pending() >= 1  # the job finds it missed already: no change
        with transaction() as session:
            row = session.get(VideoCall, call["id"])
            assert row is not None and row.state == "missed"


class TestGoneWithoutHangingUp:
    """A browser that crashes or loses the network hangs up nothing: a connected call whose
    side's page stops reading its stream for 60 s is ended as failed."""

    def test_the_sweep_ends_a_call_both_sides_left(self, client: TestClient,
                                                   desks: AuthHeaders, db: Session) -> None:
        call = place(client, desks("gx.duty"))
        url = f"{URL}/{call['id']}"
        client.post(f"{url}/answer", headers=desks("guilin.duty"), json={"sdp": sdp("answer")})
        clock.set_offset(timedelta(seconds=59))
        with transaction() as session:
            assert escalation.sweep(session).calls_lost == 0
        clock.set_offset(timedelta(seconds=61))
        with transaction() as session:
            assert escalation.sweep(session).calls_lost == 1
            assert escalation.sweep(session).calls_lost == 0  # once
        body = client.get(url, headers=desks("gx.duty")).json()
        assert body["state"] == "failed" and body["ended_side"] == "platform"
        assert body["ended_by"] is None and body["duration_seconds"] == 61
        trail = _audit(db, call["id"])
        assert trail[-1][0] == "command.call_ended" and trail[-1][1]["state"] == "failed"

    def test_a_side_still_reading_keeps_the_call_and_ends_it_when_the_other_goes(
            self, client: TestClient, desks: AuthHeaders, db: Session,
            monkeypatch: pytest.MonkeyPatch) -> None:
        from zhixing.command import call_views

        monkeypatch.setattr(call_views, "STREAM_SECONDS", 0.3)
        call = place(client, desks("gx.duty"))
        url = f"{URL}/{call['id']}"
        client.post(f"{url}/answer", headers=desks("guilin.duty"), json={"sdp": sdp("answer")})
        stream = f"/command/calls/{call['id']}/stream"
        login(client, "gx.duty")  # the caller's page stays open; Guilin's browser crashed
        row = db.get(VideoCall, call["id"])
        assert row is not None and row.answered_at is not None
        answered = row.answered_at

        def at(seconds: int) -> None:
            """The clock at ``seconds`` after the answer (real time moves on meanwhile: a
            stream request lasts up to its idle wait, 5 s with PostgreSQL's signals)."""
            clock.set_offset(answered + timedelta(seconds=seconds) - datetime.now(UTC))

        for seconds in (12, 30, 46):
            at(seconds)
            assert client.get(stream, headers={"Last-Event-ID": "3"}).status_code == 200
        db.refresh(row)
        assert row.state == "connected" and row.caller_seen_at is not None
        assert row.caller_seen_at - answered >= timedelta(seconds=46)
        assert row.callee_seen_at == answered  # nothing from Guilin since its answer
        with transaction() as session:
            assert escalation.sweep(session).calls_lost == 0  # the caller is still here
        at(61)  # Guilin silent for 61 s
        text = client.get(stream, headers={"Last-Event-ID": "3"}).text
        assert '"state":"failed"' in text
        db.refresh(row)
        assert row.state == "failed"

    def test_onlookers_do_not_keep_a_call_alive(self, db: Session) -> None:
        now = clock.utcnow()
        call = VideoCall(caller_center_id=1, caller_id=1, callee_center_id=2,
                         state="connected", created_at=now, ring_until=now, answered_at=now,
                         answered_by=2, caller_seen_at=now, callee_seen_at=now)

        def actor(user_id: int) -> Any:
            return type("A", (), {"user_id": user_id})()

        later = now + timedelta(seconds=11)
        assert calls.touch(call, actor(3), CallSide.CALLEE, later) is False  # did not answer
        assert calls.touch(call, actor(2), CallSide.CALLER, later) is False  # not the caller
        assert calls.touch(call, actor(2), CallSide.CALLEE, now + timedelta(seconds=5)) is False
        assert calls.touch(call, actor(2), CallSide.CALLEE, later) is True
        assert call.callee_seen_at == later and call.caller_seen_at == now
        assert calls.lost_side(call, now + timedelta(seconds=60)) == CallSide.CALLER


class TestSignalling:
    def test_each_side_reads_the_other_in_order(self, client: TestClient, desks: AuthHeaders,
                                                db: Session) -> None:
        caller, callee = desks("gx.duty"), desks("guilin.duty")
        call = place(client, caller)
        url = f"{URL}/{call['id']}"
        r = client.post(f"{url}/candidates", headers=caller,
                        json={"candidates": [candidate(1), candidate(2)]})
        assert r.status_code == 200 and r.json() == {
            "call_id": call["id"], "side": "caller", "accepted": 2, "total": 2, "last_seq": 3}
        client.post(f"{url}/answer", headers=callee, json={"sdp": sdp("answer")})
        client.post(f"{url}/candidates", headers=callee, json={"candidates": [candidate(7)]})
        client.post(f"{url}/candidates", headers=caller, json={"candidates": [candidate(3)]})
        client.post(f"{url}/end", headers=caller)

        def read(side: str) -> list[tuple[int, str, str]]:
            rows = calls.signals_after(db, call["id"], 0, CallSide(side))
            return [(s.seq, str(s.side), str(s.kind)) for s in rows]

        assert read("callee") == [(1, "caller", "offer"), (2, "caller", "candidate"),
                                  (3, "caller", "candidate"), (5, "platform", "state"),
                                  (7, "caller", "candidate"), (8, "platform", "state")]
        assert read("caller") == [(4, "callee", "answer"), (5, "platform", "state"),
                                  (6, "callee", "candidate"), (8, "platform", "state")]
        offer = db.scalar(select(CallSignal.payload).where(CallSignal.call_id == call["id"],
                                                           CallSignal.seq == 1))
        assert offer == {"type": "offer", "sdp": sdp()}  # CRLFs kept exactly

    def test_the_stream_resumes_after_the_last_event(self, client: TestClient,
                                                     desks: AuthHeaders) -> None:
        caller = desks("gx.duty")
        call = place(client, caller)
        url = f"{URL}/{call['id']}"
        client.post(f"{url}/answer", headers=desks("guilin.duty"), json={"sdp": sdp("answer")})
        client.post(f"{url}/candidates", headers=desks("guilin.duty"),
                    json={"candidates": [candidate(1), candidate(2)]})
        client.post(f"{url}/end", headers=caller)
        login(client, "gx.duty")
        stream = f"/command/calls/{call['id']}/stream"

        def events(**headers: str) -> list[dict[str, Any]]:
            resp = client.get(stream, headers=headers)
            assert resp.status_code == 200, resp.text
            out = []
            for block in resp.text.split("\n\n"):
                lines = dict(line.split(": ", 1) for line in block.splitlines()
                             if ": " in line and not line.startswith(":"))
                if lines.get("event") == "signal":
                    message = json.loads(lines["data"])
                    assert int(lines["id"]) == message["seq"]
                    out.append(message)
            return out

        everything = events()
        assert [(m["seq"], m["kind"]) for m in everything] == [
            (2, "answer"), (3, "state"), (4, "candidate"), (5, "candidate"), (6, "state")]
        assert everything[0]["payload"]["sdp"] == sdp("answer")
        assert everything[-1]["payload"]["state"] == "ended"
        resumed = events(**{"Last-Event-ID": "4"})
        assert [m["seq"] for m in resumed] == [5, 6]
        # all delivered and the call over: 204 tells the EventSource to stop
        assert client.get(stream, headers={"Last-Event-ID": "6"}).status_code == 204
        # only the two sides read the signalling; an onlooker within reach does not
        client.cookies.clear()
        login(client, "admin")
        assert client.get(stream).status_code == 403

    def test_sdp_size(self, client: TestClient, desks: AuthHeaders, db: Session) -> None:
        big = client.post(URL, headers=desks("gx.duty"), json={
            "to_court_code": "桂03", "sdp": sdp(size=64 * 1024 + 1)})
        assert big.status_code == 422 and big.json()["error"]["code"] == "sdp_too_large"
        # sent as JSON escapes, as any client may: a NUL (which PostgreSQL would refuse), a
        # lone surrogate (refused by the schema already)
        for junk, code in (("hello", "sdp_invalid"), ("v=0\r\ns=\x00\r\n", "sdp_invalid"),
                           ("v=0\r\ns=\ud800\r\n", "validation_failed")):
            resp = client.post(URL, content=json.dumps({"to_court_code": "桂03", "sdp": junk}),
                               headers={**desks("gx.duty"), "content-type": "application/json"})
            assert resp.status_code == 422 and resp.json()["error"]["code"] == code
        assert _count(db, VideoCall) == 0
        call = place(client, desks("gx.duty"), sdp=sdp(size=64 * 1024))  # the limit itself
        big = client.post(f"{URL}/{call['id']}/answer", headers=desks("guilin.duty"),
                          json={"sdp": sdp("answer", size=64 * 1024 + 1)})
        assert big.status_code == 422 and big.json()["error"]["code"] == "sdp_too_large"
        assert db.get(VideoCall, call["id"]).state == "ringing"  # type: ignore[union-attr]

    def test_at_most_200_candidates_a_side(self, client: TestClient, desks: AuthHeaders,
                                           db: Session) -> None:
        call = place(client, desks("gx.duty"))
        url = f"{URL}/{call['id']}/candidates"
        headers = desks("gx.duty")
        for start in (0, 100):
            r = client.post(url, headers=headers, json={
                "candidates": [candidate(i) for i in range(start, start + 100)]})
            assert r.status_code == 200 and r.json()["total"] == start + 100
        over = client.post(url, headers=headers, json={"candidates": [candidate(500)]})
        assert over.status_code == 422
        assert over.json()["error"]["code"] == "too_many_candidates"
        one_request = client.post(url, headers=headers, json={
            "candidates": [candidate(i) for i in range(201)]})
        assert one_request.status_code == 422
        # the other side has its own 200
        client.post(f"{URL}/{call['id']}/answer", headers=desks("guilin.duty"),
                    json={"sdp": sdp("answer")})
        r = client.post(url, headers=desks("guilin.duty"), json={"candidates": [candidate(1)]})
        assert r.status_code == 200 and r.json()["side"] == "callee"
        assert _count(db, CallSignal) == 1 + 200 + 2 + 1
        bad = client.post(url, headers=headers, json={"candidates": [{"candidate": "x",
                                                                      "extra": 1}]})
        assert bad.status_code == 422
        nul = client.post(url, headers=desks("guilin.duty"),
                          json={"candidates": [{"candidate": "candidate:\x00"}]})
        assert nul.status_code == 422 and nul.json()["error"]["code"] == "candidate_invalid"


class TestBoard:
    def test_banner_and_video_links(self, client: TestClient, desks: AuthHeaders) -> None:
        login(client, "gx.duty")
        desk = client.get("/command").text
        assert 'data-testid="video-links"' in desk
        assert desk.count('data-testid="video-link"') == 1  # only Guilin has someone on duty
        assert 'href="/command/calls/new?to=%E6%A1%8203"' in desk
        page = client.get("/command/calls/new", params={"to": "桂03"})
        assert page.status_code == 200 and 'id="call"' in page.text
        refused = client.get("/command/calls/new", params={"to": "桂02"},
                             headers={"accept": "text/html"})
        assert refused.status_code == 409 and "nobody_on_duty" in refused.text
        call = place(client, desks("gx.duty"))
        client.cookies.clear()
        csrf = login(client, "guilin.duty")
        desk = client.get("/command").text
        assert 'data-testid="call-banner"' in desk
        assert f'href="/command/calls/{call["id"]}?accept=true"' in desk
        page = client.get(f"/command/calls/{call['id']}")
        assert page.status_code == 200 and 'data-state="ringing"' in page.text
        declined = client.post(f"/command/calls/{call['id']}/decline",
                               data={"csrf_token": csrf}, follow_redirects=False)
        assert declined.status_code == 303 and declined.headers["location"] == "/command"
        assert 'data-testid="call-banner"' not in client.get("/command").text
        again = client.post(f"/command/calls/{call['id']}/decline", data={"csrf_token": csrf})
        assert again.status_code == 409 and "call_ended" in again.text

    def test_the_banner_rings_only_for_those_on_duty(self, client: TestClient,
                                                     desks: AuthHeaders) -> None:
        place(client, desks("gx.duty"))
        duty_user(client, desks, "guilin.other", "桂03", roles=("duty_officer",))
        login(client, "guilin.other")
        assert 'data-testid="call-banner"' not in client.get("/command").text


def test_ice_servers_from_the_settings_reach_the_page(client: TestClient, desks: AuthHeaders,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    def config() -> dict[str, Any]:
        page = client.get("/command/calls/new", params={"to": "桂03"})
        assert page.status_code == 200
        found = re.search(r'data-config="([^"]*)"', page.text)
        assert found is not None
        result: dict[str, Any] = json.loads(html.unescape(found.group(1)))
        return result

    login(client, "gx.duty")
    assert config()["iceServers"] == []  # none by default: host candidates on a closed network
    servers = [{"urls": ["turn:turn.gxcourt.example:3478"], "username": "zx", "credential": "s"}]
    monkeypatch.setenv("ZHIXING_ICE_SERVERS", json.dumps(servers))
    get_settings.cache_clear()
    try:
        seen = config()
    finally:
        monkeypatch.delenv("ZHIXING_ICE_SERVERS")
        get_settings.cache_clear()
    assert seen["iceServers"] == servers and seen["to"] == "桂03" and seen["side"] == "caller"
