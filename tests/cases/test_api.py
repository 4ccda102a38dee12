from __future__ import annotations

import io
import random
from datetime import date
from typing import Any

import pytest
from fastapi.testclient import TestClient
from openpyxl import load_workbook
from sqlalchemy import event as sa_event
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from tests.cases.factories import case_payload, company, day, person
from tests.conftest import AuthHeaders
from zhixing.cases.documents import query_code
from zhixing.cases.models import Case, CaseEvent, CaseFact, Party
from zhixing.core.db import get_engine
from zhixing.core.models import AuditRecord, Job
from zhixing.demo_data.identities import resident_id

CASES = "/api/v1/cases"


def register(client: TestClient, headers: dict[str, str], **kw: Any) -> dict[str, Any]:
    resp = client.post(CASES, json=case_payload(**kw), headers=headers)
    assert resp.status_code == 201, resp.text
    return dict(resp.json())


def move(client: TestClient, headers: dict[str, str], case_id: int, **body: Any) -> Any:
    return client.post(f"{CASES}/{case_id}/transitions", json=body, headers=headers)


def count(db: Session, model: Any) -> int:
    return db.scalar(select(func.count()).select_from(model)) or 0


class TestRegistration:
    def test_number_title_parties_and_clock(self, client: TestClient, auth: AuthHeaders) -> None:
        c = register(client, auth("qingxiu.officer"))
        year = c["filed_on"][:4]
        assert c["case_number"] == f"（{year}）桂0103执1号" and c["state"] == "filed"
        assert c["applied_fen"] == 12_345_600 + 50_000 + 10_000 == c["outstanding_fen"]
        assert {p["role"] for p in c["parties"]} == {"applicant", "debtor"}
        assert c["officer"] == "执行法官 陆青" and "officer_assigned" in c["facts"]
        assert c["clock"]["period_deadline"] is not None
        second = register(client, auth("qingxiu.officer"))
        assert second["case_number"] == f"（{year}）桂0103执2号"

    def test_same_person_is_one_party_across_cases(self, client: TestClient, auth: AuthHeaders,
                                                   db: Session) -> None:
        debtor = person("王大明")
        a = register(client, auth("qingxiu.officer"), debtors=[debtor])
        b = register(client, auth("qingxiu.officer"), debtors=[debtor])
        ids = {p["id"] for p in a["parties"] if p["role"] == "debtor"}
        assert ids == {p["id"] for p in b["parties"] if p["role"] == "debtor"}
        found = client.get(CASES, params={"q": debtor["id_number"]},
                           headers=auth("qingxiu.officer")).json()["items"]
        assert {c["id"] for c in found} == {a["id"], b["id"]}

    def test_organisation_with_responsible_persons(self, client: TestClient,
                                                   auth: AuthHeaders) -> None:
        org = company("柳州某实业有限公司", responsible_persons=[
            {"role": "legal_representative", "person": person("覃志强")},
            {"role": "actual_controller", "person": person("覃志勇")}])
        c = register(client, auth("qingxiu.officer"), debtors=[org])
        debtor = next(p for p in c["parties"] if p["role"] == "debtor")
        assert {r["role"] for r in debtor["responsible_persons"]} == {
            "legal_representative", "actual_controller"}

    def test_existing_case_number_can_be_entered_once(self, client: TestClient,
                                                      auth: AuthHeaders) -> None:
        h = auth("qingxiu.officer")
        year = day(0)[:4]
        number = f"（{year}）桂0103执900号"
        assert register(client, h, case_number=number)["case_number"] == number
        dup = client.post(CASES, json=case_payload(case_number=number), headers=h)
        assert dup.status_code == 409 and dup.json()["error"]["code"] == "duplicate_case_number"
        # the register moved past the entered number
        assert register(client, h)["case_number"] == f"（{year}）桂0103执901号"


def _mutate(payload: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    target: Any = payload
    parts = path.split(".")
    for p in parts[:-1]:
        target = target[int(p)] if p.isdigit() else target[p]
    target[parts[-1]] = value
    return payload


BAD_INPUT = [
    ("debtors.0.id_number", "450103199003070011", "invalid_id_checksum", "debtors.0.id_number"),
    ("debtors.0.id_number", "450103199002300018", None, "debtors.0.id_number"),
    ("applicants.0.id_number", "91450100MA5K0000X0", None, "applicants.0.id_number"),
    ("principal_fen", -1, "validation_failed", "principal_fen"),
    ("principal_fen", 12.5, "validation_failed", "principal_fen"),
    ("principal_fen", "100", "validation_failed", "principal_fen"),
    ("filed_on", "2999-01-01", "date_in_future", "filed_on"),
    ("title_effective_date", "1999-01-01", "effective_before_title", "title_effective_date"),
    ("case_number", "2025-桂0103-1", "invalid_case_number", "case_number"),
    ("case_number", "（2025）桂0204执1号", "case_number_mismatch", "case_number"),
    ("officer_username", "liunan.officer", "user_not_in_court", "officer_username"),
    ("debtors", [], "validation_failed", "debtors"),
    ("debtors.0.id_kind", "uscc", "id_kind_mismatch", "debtors.0.id_kind"),
    ("court_code", "桂0204", "court_not_found", "court_code"),
]


class TestBadInput:
    @pytest.mark.parametrize(("path", "value", "code", "field"), BAD_INPUT)
    def test_refused_with_the_field_named_and_nothing_saved(
            self, client: TestClient, auth: AuthHeaders, db: Session, path: str, value: Any,
            code: str | None, field: str) -> None:
        before = (count(db, Case), count(db, Party))
        resp = client.post(CASES, json=_mutate(case_payload(), path, value),
                           headers=auth("qingxiu.officer"))
        assert 400 <= resp.status_code < 500, resp.text
        err = resp.json()["error"]
        assert err["field"] == field
        if code:
            assert err["code"] == code
        assert (count(db, Case), count(db, Party)) == before

    def test_one_id_two_names(self, client: TestClient, auth: AuthHeaders) -> None:
        h = auth("qingxiu.officer")
        p = person("张三")
        register(client, h, debtors=[p])
        resp = client.post(CASES, json=case_payload(debtors=[{**p, "name": "张四"}]), headers=h)
        assert resp.status_code == 409 and resp.json()["error"]["code"] == "id_name_mismatch"

    def test_party_on_both_sides(self, client: TestClient, auth: AuthHeaders) -> None:
        p = person("陈同")
        resp = client.post(CASES, json=case_payload(applicants=[p], debtors=[p]),
                           headers=auth("qingxiu.officer"))
        assert resp.status_code == 422 and resp.json()["error"]["code"] == "party_on_both_sides"

    def test_unknown_field(self, client: TestClient, auth: AuthHeaders) -> None:
        resp = client.post(CASES, json=case_payload(state="concluded"),
                           headers=auth("qingxiu.officer"))
        assert resp.status_code == 422 and resp.json()["error"]["code"] == "unknown_field"


class TestLifecycleOverHttp:
    def test_walk_to_closed_for_now_and_resume(self, client: TestClient, auth: AuthHeaders,
                                               db: Session) -> None:
        h = auth("qingxiu.officer")
        c = register(client, h, filed_days_ago=120)
        cid = c["id"]
        assert move(client, h, cid, action="advance", to="investigating").status_code == 409
        assert move(client, h, cid, action="advance", to="notice_served",
                    on=day(118)).status_code == 200
        assert move(client, h, cid, action="advance", to="investigating",
                    on=day(116)).status_code == 200
        refused = move(client, h, cid, action="conclude", conclusion="closed_for_now")
        assert refused.status_code == 409
        assert set(refused.json()["error"]["details"]["missing"]) == {
            "consumption_restriction", "dishonest_listing_decided", "network_query_done",
            "debtor_search", "applicant_interview_or_panel_review"}
        for kind in ("consumption_restriction", "dishonest_listing_decided",
                     "network_query_done", "debtor_search", "applicant_interview"):
            r = client.post(f"{CASES}/{cid}/facts", json={"kind": kind, "on": day(10)},
                            headers=h)
            assert r.status_code == 201, r.text
        closed = move(client, h, cid, action="conclude", conclusion="closed_for_now")
        assert closed.status_code == 200 and closed.json()["conclusion"] == "closed_for_now"
        assert closed.json()["allowed_actions"] == ["resume_as_new_case"]
        # re-queries every 6 months for 5 years
        assert db.scalar(select(func.count()).select_from(Job)
                         .where(Job.kind == "cases.requery_due")) == 10
        resumed = client.post(f"{CASES}/{cid}/resume", json={"reason": "新发现房产"}, headers=h)
        assert resumed.status_code == 201
        child = resumed.json()
        assert "执恢" in child["case_number"] and child["resumed_from"] == c["case_number"]
        assert child["principal_fen"] == c["outstanding_fen"]
        again = client.post(f"{CASES}/{cid}/resume", json={"reason": "x"}, headers=h)
        assert again.status_code == 409

    def test_suspension_stops_the_clock(self, client: TestClient, auth: AuthHeaders) -> None:
        h = auth("qingxiu.officer")
        c = register(client, h, filed_days_ago=30)
        s = move(client, h, c["id"], action="suspend", ground="bankruptcy", on=day(20))
        assert s.status_code == 200 and s.json()["period_deadline"] is None
        assert s.json()["clock"]["paused"] is True
        r = move(client, h, c["id"], action="resume")
        assert r.json()["state"] == "filed"
        assert r.json()["clock"]["paused_days"] == 20
        assert r.json()["period_deadline"] > c["period_deadline"]

    def test_extension_needs_an_approver(self, client: TestClient, auth: AuthHeaders) -> None:
        c = register(client, auth("qingxiu.officer"))
        body = {"months": 3, "reason": "案情复杂"}
        denied = client.post(f"{CASES}/{c['id']}/extensions", json=body,
                             headers=auth("qingxiu.officer"))
        assert denied.status_code == 403
        ok = client.post(f"{CASES}/{c['id']}/extensions", json=body,
                         headers=auth("qingxiu.approver"))
        assert ok.status_code == 201 and ok.json()["clock"]["extension_months"] == 3

    def test_performed_after_full_recovery(self, client: TestClient, auth: AuthHeaders) -> None:
        h = auth("qingxiu.officer")
        c = register(client, h, filed_days_ago=10, principal_fen=100_000, interest_fen=0,
                     costs_fen=0)
        early = move(client, h, c["id"], action="conclude", conclusion="performed")
        assert early.json()["error"]["code"] == "outstanding_not_zero"
        over = client.post(f"{CASES}/{c['id']}/money", json={
            "kind": "recovered", "amount_fen": 100_001, "on": day(1)}, headers=h)
        assert over.status_code == 422 and over.json()["error"]["code"] == "exceeds_outstanding"
        client.post(f"{CASES}/{c['id']}/money", json={
            "kind": "recovered", "amount_fen": 100_000, "on": day(1)}, headers=h)
        applicant = next(p for p in c["parties"] if p["role"] == "applicant")
        paid = client.post(f"{CASES}/{c['id']}/money", json={
            "kind": "disbursed", "amount_fen": 100_000, "on": day(0),
            "party_id": applicant["id"]}, headers=h)
        assert paid.status_code == 201
        done = move(client, h, c["id"], action="conclude", conclusion="performed")
        assert done.status_code == 200 and done.json()["outstanding_fen"] == 0

    def test_out_of_order_and_future_dates(self, client: TestClient, auth: AuthHeaders) -> None:
        h = auth("qingxiu.officer")
        c = register(client, h, filed_days_ago=5)
        future = move(client, h, c["id"], action="advance", to="notice_served", on="2999-01-01")
        assert future.json()["error"]["code"] == "date_in_future"
        before = move(client, h, c["id"], action="advance", to="notice_served", on=day(30))
        assert before.json()["error"]["code"] == "date_before_filing"

    def test_timeline_records_everything(self, client: TestClient, auth: AuthHeaders) -> None:
        h = auth("qingxiu.officer")
        c = register(client, h, filed_days_ago=5)
        move(client, h, c["id"], action="advance", to="notice_served")
        client.post(f"{CASES}/{c['id']}/notes", json={"text": "电话联系被执行人"}, headers=h)
        events = client.get(f"{CASES}/{c['id']}/events", headers=h).json()["items"]
        assert [e["kind"] for e in events] == ["note", "transition", "registered"]


class TestLedger:
    def _asset(self, client: TestClient, h: dict[str, str], c: dict[str, Any],
               **kw: Any) -> Any:
        debtor = next(p for p in c["parties"] if p["role"] == "debtor")
        body = {"debtor_id": debtor["id"], "kind": "deposit", "description": "工行活期",
                "identifier": "6222020000000001", "holder": "中国工商银行南宁分行", **kw}
        return client.post(f"{CASES}/{c['id']}/assets", json=body, headers=h)

    def test_freeze_rules(self, client: TestClient, auth: AuthHeaders) -> None:
        h = auth("qingxiu.officer")
        c = register(client, h, filed_days_ago=10)
        asset = self._asset(client, h, c).json()
        url = f"{CASES}/{c['id']}/assets/{asset['id']}/control"
        too_much = client.post(url, json={"action": "freeze", "on": day(1),
                                          "amount_fen": c["outstanding_fen"] + 1}, headers=h)
        assert too_much.json()["error"]["code"] == "exceeds_outstanding"
        too_long = client.post(url, json={"action": "freeze", "on": day(1), "amount_fen": 100,
                                          "days": 400}, headers=h)
        assert too_long.json()["error"]["code"] == "period_too_long"
        wrong = client.post(url, json={"action": "seal", "on": day(1)}, headers=h)
        assert wrong.json()["error"]["code"] == "wrong_control_for_kind"
        ok = client.post(url, json={"action": "freeze", "on": day(1), "amount_fen": 100},
                         headers=h)
        assert ok.status_code == 200 and ok.json()["control_state"] == "frozen"
        twice = client.post(url, json={"action": "freeze", "on": day(1), "amount_fen": 100},
                            headers=h)
        assert twice.status_code == 409
        released = client.post(url, json={"action": "release", "on": day(0)}, headers=h)
        assert released.json()["control_state"] == "released"

    def test_asset_must_belong_to_a_debtor(self, client: TestClient, auth: AuthHeaders) -> None:
        h = auth("qingxiu.officer")
        c = register(client, h)
        applicant = next(p for p in c["parties"] if p["role"] == "applicant")
        resp = self._asset(client, h, c, debtor_id=applicant["id"])
        assert resp.json()["error"]["code"] == "not_a_debtor"

    def test_expiring_freeze_is_on_the_work_queue(self, client: TestClient,
                                                  auth: AuthHeaders) -> None:
        h = auth("qingxiu.officer")
        c = register(client, h, filed_days_ago=400)
        asset = self._asset(client, h, c).json()
        client.post(f"{CASES}/{c['id']}/assets/{asset['id']}/control",
                    json={"action": "freeze", "on": day(350), "amount_fen": 100}, headers=h)
        queue = client.get(f"{CASES}/queue", headers=h).json()
        assert [f["asset_id"] for f in queue["freezes_expiring"]] == [asset["id"]]


class TestDocuments:
    def test_upload_records_sha256_and_checks_type(self, client: TestClient,
                                                   auth: AuthHeaders) -> None:
        h = auth("qingxiu.officer")
        c = register(client, h)
        pdf = b"%PDF-1.4\n" + bytes(random.Random(1).randbytes(2000))
        resp = client.post(f"{CASES}/{c['id']}/documents", headers=h,
                           files={"file": ("裁定书.pdf", pdf, "application/pdf")})
        assert resp.status_code == 201
        import hashlib

        assert resp.json()["sha256"] == hashlib.sha256(pdf).hexdigest()
        got = client.get(f"{CASES}/{c['id']}/documents/{resp.json()['id']}", headers=h)
        assert got.content == pdf
        exe = client.post(f"{CASES}/{c['id']}/documents", headers=h,
                          files={"file": ("x.pdf", b"MZ\x90\x00evil", "application/pdf")})
        assert exe.status_code == 422
        assert exe.json()["error"]["code"] == "file_type_not_allowed"


class TestListsAndExport:
    def test_filters_and_pages(self, client: TestClient, auth: AuthHeaders) -> None:
        h = auth("qingxiu.officer")
        for i in range(5):
            register(client, h, filed_days_ago=i * 50)
        overdue = client.get(CASES, params={"overdue": "true"}, headers=h).json()["items"]
        assert {c["filed_on"] for c in overdue} == {day(200)}
        pages, cursor = [], None
        while True:
            params: dict[str, Any] = {"limit": 2, "state": "open"}
            if cursor:
                params["cursor"] = cursor
            body = client.get(CASES, params=params, headers=h).json()
            pages.append([c["id"] for c in body["items"]])
            cursor = body["next_cursor"]
            if not cursor:
                break
        flat = [i for p in pages for i in p]
        assert len(flat) == 5 and len(set(flat)) == 5
        filed = client.get(CASES, params={"filed_from": day(60), "filed_to": day(0)},
                           headers=h).json()["items"]
        assert len(filed) == 2
        bad = client.get(CASES, params={"state": "asleep"}, headers=h)
        assert bad.status_code == 422 and bad.json()["error"]["code"] == "unknown_state"

    def test_page_costs_a_fixed_number_of_queries(self, client: TestClient,
                                                  auth: AuthHeaders) -> None:
        h = auth("qingxiu.officer")
        for _ in range(12):
            register(client, h)
        counts = []
        for limit in (2, 12):
            statements: list[str] = []

            def _count(*args: Any, seen: list[str] = statements) -> None:
                seen.append(str(args[2]))

            sa_event.listen(get_engine(), "before_cursor_execute", _count)
            try:
                client.get(CASES, params={"limit": limit}, headers=h)
            finally:
                sa_event.remove(get_engine(), "before_cursor_execute", _count)
            counts.append(len(statements))
        assert counts[0] == counts[1]

    def test_export(self, client: TestClient, auth: AuthHeaders) -> None:
        h = auth("qingxiu.officer")
        c = register(client, h)
        resp = client.get(f"{CASES}/export.xlsx", headers=h)
        wb = load_workbook(io.BytesIO(resp.content))
        rows = list(wb.active.iter_rows(values_only=True))
        assert rows[0][0] == "案号" and rows[1][0] == c["case_number"]


class TestAccess:
    def test_other_court_gets_404_higher_court_reads_but_cannot_act(
            self, client: TestClient, auth: AuthHeaders) -> None:
        c = register(client, auth("qingxiu.officer"))
        assert client.get(f"{CASES}/{c['id']}", headers=auth("liunan.officer")).status_code == 404
        assert move(client, auth("liunan.officer"), c["id"], action="suspend",
                    ground="retrial").status_code == 404
        assert client.get(f"{CASES}/{c['id']}", headers=auth("gx.duty")).status_code == 200
        assert move(client, auth("gx.duty"), c["id"], action="suspend",
                    ground="retrial").status_code == 403
        assert client.get(CASES, headers=auth("liunan.officer")).json()["items"] == []

    def test_reads_are_audited(self, client: TestClient, auth: AuthHeaders,
                               db: Session) -> None:
        c = register(client, auth("qingxiu.officer"))
        client.get(f"{CASES}/{c['id']}", headers=auth("gx.duty"))
        reads = db.scalars(select(AuditRecord).where(AuditRecord.action == "case.read")).all()
        assert [(r.actor_name, r.case_id) for r in reads] == [("gx.duty", c["id"])]


class TestPublicLookup:
    def test_progress_with_the_query_code(self, client: TestClient, auth: AuthHeaders) -> None:
        h = auth("qingxiu.officer")
        c = register(client, h, filed_days_ago=3)
        move(client, h, c["id"], action="advance", to="notice_served")
        body = {"case_number": c["case_number"], "query_code": query_code(c["case_number"])}
        resp = client.post("/api/v1/public/case-progress", json=body)
        assert resp.status_code == 200
        progress = resp.json()
        assert [n["node"] for n in progress["nodes"]] == ["filed", "notice_served"]
        text = resp.text
        for p in c["parties"]:
            assert p["name"] not in text and (p["id_number"] or "") not in text

    def test_wrong_code_and_rate_limit(self, client: TestClient, auth: AuthHeaders) -> None:
        c = register(client, auth("qingxiu.officer"))
        wrong = {"case_number": c["case_number"], "query_code": "AAAAAAAAAA"}
        unknown = {"case_number": "（2020）桂0103执9999号", "query_code": "AAAAAAAAAA"}
        a = client.post("/api/v1/public/case-progress", json=wrong)
        b = client.post("/api/v1/public/case-progress", json=unknown)
        assert a.status_code == b.status_code == 404 and a.json() == b.json()
        statuses = [client.post("/api/v1/public/case-progress", json=wrong).status_code
                    for _ in range(10)]
        assert statuses[-1] == 429


class TestFactsAndEvents:
    def test_fact_once(self, client: TestClient, auth: AuthHeaders, db: Session) -> None:
        h = auth("qingxiu.officer")
        c = register(client, h)
        body = {"kind": "debtor_search", "on": day(0)}
        assert client.post(f"{CASES}/{c['id']}/facts", json=body, headers=h).status_code == 201
        again = client.post(f"{CASES}/{c['id']}/facts", json=body, headers=h)
        assert again.status_code == 409
        unknown = client.post(f"{CASES}/{c['id']}/facts", json={"kind": "lunch", "on": day(0)},
                              headers=h)
        assert unknown.json()["error"]["code"] == "unknown_fact"
        assert db.scalar(select(func.count()).select_from(CaseFact)
                         .where(CaseFact.case_id == c["id"])) == 2  # + officer_assigned
        assert db.scalar(select(func.count()).select_from(CaseEvent)
                         .where(CaseEvent.case_id == c["id"])) == 2


def test_resident_id_factory_is_valid() -> None:
    from stdnum.cn import ric

    assert ric.is_valid(resident_id(random.Random(9)))


class TestHistoryRules:
    def test_steps_cannot_go_back_in_time(self, client: TestClient, auth: AuthHeaders) -> None:
        h = auth("qingxiu.officer")
        c = register(client, h, filed_days_ago=30)
        assert move(client, h, c["id"], action="advance", to="notice_served",
                    on=day(10)).status_code == 200
        back = move(client, h, c["id"], action="advance", to="investigating", on=day(20))
        assert back.status_code == 422
        assert back.json()["error"]["code"] == "date_before_previous_step"

    def test_freezes_outlive_the_case(self, client: TestClient, auth: AuthHeaders) -> None:
        h = auth("qingxiu.officer")
        c = register(client, h, filed_days_ago=30, principal_fen=100_000, interest_fen=0,
                     costs_fen=0)
        debtor = next(p for p in c["parties"] if p["role"] == "debtor")
        asset = client.post(f"{CASES}/{c['id']}/assets", headers=h, json={
            "debtor_id": debtor["id"], "kind": "deposit", "description": "存款"}).json()
        url = f"{CASES}/{c['id']}/assets/{asset['id']}/control"
        client.post(url, json={"action": "freeze", "on": day(5), "amount_fen": 100}, headers=h)
        client.post(f"{CASES}/{c['id']}/money", json={
            "kind": "recovered", "amount_fen": 100_000, "on": day(1)}, headers=h)
        assert move(client, h, c["id"], action="conclude",
                    conclusion="performed").status_code == 200
        refused = client.post(url, json={"action": "freeze", "on": day(0), "amount_fen": 1},
                              headers=h)
        assert refused.status_code == 409
        released = client.post(url, json={"action": "release", "on": day(0)}, headers=h)
        assert released.status_code == 200 and released.json()["control_state"] == "released"

    def test_late_closure_collapses_past_requeries(self, client: TestClient,
                                                   auth: AuthHeaders, db: Session) -> None:
        from zhixing.cases.models import Case as CaseRow
        from zhixing.cases.service import schedule_requeries
        from zhixing.core.db import transaction

        c = register(client, auth("qingxiu.officer"), filed_days_ago=800)
        with transaction() as s:
            row = s.get(CaseRow, c["id"])
            assert row is not None
            schedule_requeries(s, row, date.fromisoformat(day(700)))  # ~23 months ago
        rounds = sorted(j.payload["round"] for j in db.scalars(
            select(Job).where(Job.kind == "cases.requery_due")))
        assert rounds == [3, 4, 5, 6, 7, 8, 9, 10]  # rounds 1-3 were due: one reminder, now


def test_public_lookup_is_audited_with_the_client_address(
        client: TestClient, auth: AuthHeaders, db: Session) -> None:
    c = register(client, auth("qingxiu.officer"))
    client.post("/api/v1/public/case-progress", json={
        "case_number": c["case_number"], "query_code": query_code(c["case_number"])})
    rec = db.scalars(select(AuditRecord).where(AuditRecord.action == "case.public_progress")).one()
    assert rec.client_ip == "testclient" and rec.case_id == c["id"]
