"""Tips: the public form and API (rate limit, enumeration, CSRF), the follow-up code, the duty
desk's triage, due dates, duplicates, outcome and the tipster's confidentiality."""

from __future__ import annotations

import re
from datetime import datetime, timedelta

from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import AuthHeaders
from tests.field.support import make_case, party, user
from zhixing.cases.documents import query_code
from zhixing.core import clock
from zhixing.core.clock import utcnow
from zhixing.field import tips as tipsvc
from zhixing.field.api import TIP_LIMIT


def _public(client: TestClient, **body: object) -> tuple[int, dict[str, object]]:
    resp = client.post("/api/v1/public/tips", json={"content": "被执行人的车停在七星区酒店",
                                                    **body})
    return resp.status_code, resp.json()


def _desk_tip(client: TestClient, auth: AuthHeaders, who: str = "gx.duty",
              **body: object) -> dict[str, object]:
    resp = client.post("/api/v1/field/tips", headers=auth(who),
                       json={"content": "电话举报：车在酒店", **body})
    assert resp.status_code == 201, resp.text
    tip: dict[str, object] = resp.json()
    return tip


class TestPublicTips:
    def test_anonymous_tip_gets_a_follow_up_code(self, client: TestClient) -> None:
        status, body = _public(client, court_code="桂03")
        assert status == 201
        code = str(body["follow_code"])
        assert re.fullmatch(r"[A-Z2-9]{4}-[A-Z2-9]{4}-[A-Z2-9]{4}", code)
        resp = client.post("/api/v1/public/tips/status", json={"code": code.lower()})
        assert resp.status_code == 200 and resp.json()["status"] == "received"
        resp = client.post("/api/v1/public/tips/information",
                           json={"code": code, "text": "车牌桂C12345"})
        assert resp.status_code == 201
        assert [m["text"] for m in resp.json()["messages"]] == ["车牌桂C12345"]

    def test_with_case_number_and_query_code(self, client: TestClient,
                                             auth: AuthHeaders) -> None:
        case = make_case(client, auth)
        number = str(case["case_number"])
        status, _ = _public(client, case_number=number, query_code=query_code(number))
        assert status == 201
        tips = client.get("/api/v1/field/tips", headers=auth("qingxiu.officer")).json()["items"]
        assert len(tips) == 1 and tips[0]["case_id"] == case["id"]
        assert tips[0]["court_code"] == "桂0103"

    def test_wrong_number_and_wrong_code_get_one_answer(self, client: TestClient,
                                                         auth: AuthHeaders) -> None:
        case = make_case(client, auth)
        number = str(case["case_number"])
        wrong_code = _public(client, case_number=number, query_code="AAAAAAAAAA")
        wrong_number = _public(client, case_number="（2025）桂0103执9999号",
                               query_code=query_code(number))
        assert wrong_code == wrong_number
        assert wrong_code[0] == 404 and wrong_code[1]["error"]["code"] == "no_match"  # type: ignore[index]

    def test_unknown_and_malformed_codes_get_one_answer(self, client: TestClient) -> None:
        answers = {client.post("/api/v1/public/tips/status", json={"code": c}).text
                   for c in ("ABCD-EFGH-JKLM", "x", "ÄÖÜ-ÄÖÜ-ÄÖÜ-ÄÖ", "0" * 32)}
        assert len(answers) == 1 and "no_match" in answers.pop()

    def test_rate_limit_counts_every_attempt(self, client: TestClient) -> None:
        for _ in range(TIP_LIMIT):
            client.post("/api/v1/public/tips/status", json={"code": "ABCD-EFGH-JKLM"})
        resp = client.post("/api/v1/public/tips", json={"content": "x"})
        assert resp.status_code == 429 and resp.headers["retry-after"]

    def test_implausible_place_is_refused(self, client: TestClient) -> None:
        status, body = _public(client, lon=2.35, lat=48.85)
        assert status == 422 and body["error"]["code"] == "position_outside_china"  # type: ignore[index]
        status, body = _public(client, lon=110.3)
        assert status == 422 and body["error"]["code"] == "position_incomplete"  # type: ignore[index]


class TestPublicForm:
    def test_form_needs_its_csrf_token(self, client: TestClient) -> None:
        resp = client.post("/tips/new", data={"content": "x", "csrf_token": "forged"})
        assert resp.status_code == 403

    def test_form_and_follow_up_pages(self, client: TestClient) -> None:
        page = client.get("/tips/new")
        assert page.status_code == 200
        token = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
        assert token is not None
        resp = client.post("/tips/new", data={"content": "债务人在阳朔开客栈", "court_code": "桂03",
                                              "csrf_token": token.group(1)})
        assert resp.status_code == 201
        code = re.search(r'data-testid="follow-code"><code>([A-Z0-9-]+)<', resp.text)
        assert code is not None
        resp = client.post("/tips/follow", data={"code": code.group(1), "text": "补充：门牌5号",
                                                 "csrf_token": token.group(1)})
        assert resp.status_code == 200 and "门牌5号" in resp.text
        resp = client.post("/tips/follow", data={"code": "NOPE-NOPE-NOPE",
                                                 "csrf_token": token.group(1)})
        assert resp.status_code == 404


class TestTriage:
    def test_due_dates_follow_urgency(self, client: TestClient, auth: AuthHeaders) -> None:
        tip = _desk_tip(client, auth)
        submitted = tipsvc.due_for(utcnow(), False)
        assert abs((_at(tip["due_at"]) - submitted).total_seconds()) < 60
        resp = client.post(f"/api/v1/field/tips/{tip['id']}/triage",
                           headers=auth("gx.duty"), json={"urgent": True})
        assert resp.status_code == 200
        due = _at(resp.json()["due_at"])
        assert due - _at(tip["submitted_at"]) == timedelta(days=3)
        clock.set_offset(timedelta(days=3, minutes=1))
        late = client.get(f"/api/v1/field/tips/{tip['id']}", headers=auth("gx.duty")).json()
        assert late["overdue"] is True
        overdue = client.get("/api/v1/field/tips", headers=auth("gx.duty"),
                             params={"overdue": True}).json()["items"]
        assert [t["id"] for t in overdue] == [tip["id"]]

    def test_link_case_and_debtor_routes_to_the_handling_court(
            self, client: TestClient, auth: AuthHeaders) -> None:
        case = make_case(client, auth)
        tip = _desk_tip(client, auth, court_code="桂0305")
        resp = client.post(f"/api/v1/field/tips/{tip['id']}/triage", headers=auth("gx.duty"),
                           json={"case_id": case["id"], "debtor_party_id": party(case, "debtor"),
                                 "center_code": "桂0305"})
        assert resp.status_code == 200, resp.text
        body = resp.json()
        assert body["court_code"] == "桂0103" and body["center_code"] == "桂0305"
        assert body["status"] == "triaged"
        bad = client.post(f"/api/v1/field/tips/{tip['id']}/triage", headers=auth("gx.duty"),
                          json={"debtor_party_id": party(case, "applicant")})
        assert bad.status_code == 422 and bad.json()["error"]["code"] == "not_a_debtor"
        events = client.get(f"/api/v1/cases/{case['id']}/events",
                            headers=auth("qingxiu.officer")).json()["items"]
        assert any(e["kind"] == "tip" for e in events)

    def test_merge_duplicates(self, client: TestClient, auth: AuthHeaders) -> None:
        first = _desk_tip(client, auth)
        status, receipt = _public(client)
        assert status == 201
        dup = client.get("/api/v1/field/tips", headers=auth("gx.duty")).json()["items"]
        dup_id = next(t["id"] for t in dup if t["id"] != first["id"])
        desk = auth("gx.duty")
        assert client.post(f"/api/v1/field/tips/{dup_id}/merge", headers=desk,
                           json={"into_id": dup_id}).json()["error"]["code"] == "merge_into_self"
        resp = client.post(f"/api/v1/field/tips/{dup_id}/merge", headers=desk,
                           json={"into_id": first["id"]})
        assert resp.status_code == 200
        again = client.post(f"/api/v1/field/tips/{dup_id}/merge", headers=desk,
                            json={"into_id": first["id"]})
        assert again.status_code == 409 and again.json()["error"]["code"] == "tip_closed"
        client.post(f"/api/v1/field/tips/{first['id']}/outcome", headers=desk, json={
            "outcome": "confirmed", "note": "车已扣押", "answer": "感谢，线索属实"})
        seen = client.post("/api/v1/public/tips/status",
                           json={"code": receipt["follow_code"]}).json()
        assert seen["checked"] is True and seen["answer"] == "感谢，线索属实"

    def test_merge_refuses_different_cases(self, client: TestClient, auth: AuthHeaders) -> None:
        a, b = make_case(client, auth), make_case(client, auth)
        ta = _desk_tip(client, auth, case_id=a["id"])
        tb = _desk_tip(client, auth, case_id=b["id"])
        resp = client.post(f"/api/v1/field/tips/{ta['id']}/merge", headers=auth("gx.duty"),
                           json={"into_id": tb["id"]})
        assert resp.status_code == 409 and resp.json()["error"]["code"] == "different_cases"

    def test_outcome_once(self, client: TestClient, auth: AuthHeaders) -> None:
        tip = _desk_tip(client, auth)
        url = f"/api/v1/field/tips/{tip['id']}/outcome"
        body = {"outcome": "unfounded", "note": "查无此车"}
        assert client.post(url, headers=auth("gx.duty"), json=body).status_code == 200
        again = client.post(url, headers=auth("gx.duty"), json=body)
        assert again.status_code == 409
        bad = client.post(url, headers=auth("gx.duty"), json={"outcome": "maybe", "note": "x"})
        assert bad.status_code == 422

    def test_tipster_is_confidential_beyond_the_handling_court(
            self, client: TestClient, auth: AuthHeaders) -> None:
        case = make_case(client, auth)
        number = str(case["case_number"])
        status, _ = _public(client, case_number=number, query_code=query_code(number),
                            tipster_name="杨某", tipster_phone="13800000000")
        assert status == 201
        mine = client.get("/api/v1/field/tips", headers=auth("qingxiu.officer")).json()
        assert mine["items"][0]["tipster"]["name"] == "杨某"
        higher = client.get("/api/v1/field/tips", headers=auth("gx.duty")).json()["items"]
        assert higher[0]["tipster"] is None and "杨某" not in str(higher)
        unrelated = client.get("/api/v1/field/tips", headers=auth("liunan.officer")).json()
        assert unrelated["items"] == []
        one = client.get(f"/api/v1/field/tips/{higher[0]['id']}", headers=auth("gx.duty"))
        assert one.json()["tipster"] is None

    def test_roles_without_tip_duty_are_refused(self, client: TestClient,
                                                auth: AuthHeaders) -> None:
        auditor = user(client, auth, "a.qixing", "桂0305", ["auditor"])
        resp = client.post("/api/v1/field/tips", headers=auditor, json={"content": "x"})
        assert resp.status_code == 403


def _at(value: object) -> datetime:
    return datetime.fromisoformat(str(value).replace("Z", "+00:00"))


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.text(min_size=0, max_size=40))
def test_any_text_as_a_code_is_no_match_or_refused(text: str) -> None:
    """Pure: normalisation never raises, and only 12 ASCII characters are ever looked up."""
    normal = tipsvc.normal_code(text)
    assert isinstance(tipsvc.code_hash(normal), str)
    code = tipsvc.new_follow_code()
    assert tipsvc.normal_code(tipsvc.format_code(code).lower()) == code
