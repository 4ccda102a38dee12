"""The console's case pages: forms go through the same rules and show errors in place."""

from __future__ import annotations

import random
import re
from datetime import timedelta

from fastapi.testclient import TestClient

from tests.cases.factories import case_payload, day
from tests.conftest import AuthHeaders
from tests.web.test_console import login
from zhixing.cases.documents import query_code
from zhixing.cases.service import today
from zhixing.demo_data.identities import credit_code, resident_id


def _form(filed_days_ago: int = 10, **over: str) -> dict[str, str]:
    rng = random.Random(filed_days_ago)
    filed = today() - timedelta(days=filed_days_ago)
    form = {
        "filed_on": filed.isoformat(), "title_issuer": "南宁市青秀区人民法院",
        "title_document_number": "（2025）桂0103民初1号",
        "title_date": (filed - timedelta(days=40)).isoformat(),
        "title_effective_date": (filed - timedelta(days=20)).isoformat(),
        "principal": "10,000.00", "a0_kind": "organisation", "a0_name": "某公司",
        "a0_id_number": credit_code(rng), "d0_kind": "person", "d0_name": "黄某",
        "d0_id_number": resident_id(rng), "officer_username": "qingxiu.officer",
    }
    form.update(over)
    return form


class TestRegistrationForm:
    def test_register_from_the_console(self, client: TestClient) -> None:
        csrf = login(client, "qingxiu.officer")
        resp = client.post("/cases/new", data={**_form(), "csrf_token": csrf},
                           follow_redirects=False)
        assert resp.status_code == 303 and re.match(r"/cases/\d+$", resp.headers["location"])
        page = client.get(resp.headers["location"]).text
        assert "10,000.00" in page and "黄某" in page

    def test_errors_are_shown_with_the_values_kept(self, client: TestClient) -> None:
        csrf = login(client, "qingxiu.officer")
        bad = _form(d0_id_number="450103199003070011")
        resp = client.post("/cases/new", data={**bad, "csrf_token": csrf})
        assert resp.status_code == 422
        assert "invalid_id_checksum" in resp.text and "debtors.0.id_number" in resp.text
        assert 'value="黄某"' in resp.text

    def test_amount_in_yuan_is_parsed_exactly(self, client: TestClient) -> None:
        csrf = login(client, "qingxiu.officer")
        for text, ok in (("0.1", True), ("12.345", False), ("-5", False), ("1e3", False)):
            resp = client.post("/cases/new", data={**_form(principal=text), "csrf_token": csrf},
                               follow_redirects=False)
            assert (resp.status_code == 303) == ok, (text, resp.status_code)

    def test_officer_of_another_court_is_refused(self, client: TestClient) -> None:
        csrf = login(client, "qingxiu.officer")
        resp = client.post("/cases/new", data={**_form(officer_username="liunan.officer"),
                                               "csrf_token": csrf})
        assert resp.status_code == 422 and "user_not_in_court" in resp.text

    def test_csrf_is_required(self, client: TestClient) -> None:
        login(client, "qingxiu.officer")
        assert client.post("/cases/new", data=_form()).status_code == 403


class TestCasePage:
    def _case(self, client: TestClient, auth: AuthHeaders, days: int = 120) -> int:
        resp = client.post("/api/v1/cases", json=case_payload(filed_days_ago=days),
                           headers=auth("qingxiu.officer"))
        return int(resp.json()["id"])

    def test_actions_and_refusals(self, client: TestClient, auth: AuthHeaders) -> None:
        cid = self._case(client, auth)
        csrf = login(client, "qingxiu.officer")
        url = f"/cases/{cid}/actions/transition"
        ok = client.post(url, data={"csrf_token": csrf, "action": "advance",
                                    "to": "notice_served", "on": day(100)},
                         follow_redirects=False)
        assert ok.status_code == 303
        refused = client.post(url, data={"csrf_token": csrf, "action": "advance",
                                         "to": "disbursing"})
        assert refused.status_code == 409 and "transition_refused" in refused.text
        fact = client.post(f"/cases/{cid}/actions/fact", data={
            "csrf_token": csrf, "kind": "debtor_search", "on": day(1)}, follow_redirects=False)
        assert fact.status_code == 303
        page = client.get(f"/cases/{cid}").text
        assert "查找被执行人下落" in page

    def test_ledger_forms(self, client: TestClient, auth: AuthHeaders) -> None:
        cid = self._case(client, auth, days=20)
        detail = client.get(f"/api/v1/cases/{cid}", headers=auth("qingxiu.officer")).json()
        debtor = next(p for p in detail["parties"] if p["role"] == "debtor")
        csrf = login(client, "qingxiu.officer")
        added = client.post(f"/cases/{cid}/actions/asset", data={
            "csrf_token": csrf, "debtor_id": str(debtor["id"]), "kind": "vehicle",
            "description": "小型轿车 桂A12345", "value": "80000"}, follow_redirects=False)
        assert added.status_code == 303
        detail = client.get(f"/api/v1/cases/{cid}", headers=auth("qingxiu.officer")).json()
        asset_id = detail["assets"][0]["id"]
        seized = client.post(f"/cases/{cid}/actions/control", data={
            "csrf_token": csrf, "asset_id": str(asset_id), "action": "seize", "on": day(1),
            "days": "730"}, follow_redirects=False)
        assert seized.status_code == 303
        money = client.post(f"/cases/{cid}/actions/money", data={
            "csrf_token": csrf, "kind": "recovered", "amount": "1,000.50", "on": day(0)},
            follow_redirects=False)
        assert money.status_code == 303
        after = client.get(f"/api/v1/cases/{cid}", headers=auth("qingxiu.officer")).json()
        assert after["recovered_fen"] == 100_050
        assert after["assets"][0]["control_state"] == "seized"

    def test_other_court_sees_nothing(self, client: TestClient, auth: AuthHeaders) -> None:
        cid = self._case(client, auth)
        login(client, "liunan.officer")
        assert client.get(f"/cases/{cid}").status_code == 404
        assert client.get(f"/cases/{cid}/notices/execution_notice").status_code == 404

    def test_notices_carry_the_query_code(self, client: TestClient, auth: AuthHeaders) -> None:
        cid = self._case(client, auth)
        number = client.get(f"/api/v1/cases/{cid}", headers=auth("qingxiu.officer")).json()[
            "case_number"]
        login(client, "qingxiu.officer")
        for kind, title in (("execution_notice", "执行通知书"),
                            ("property_report_order", "报告财产令")):
            page = client.get(f"/cases/{cid}/notices/{kind}").text
            assert title in page and number in page and query_code(number) in page
        assert client.get(f"/cases/{cid}/notices/nonsense").status_code == 404

    def test_public_lookup_page(self, client: TestClient, auth: AuthHeaders) -> None:
        cid = self._case(client, auth)
        number = client.get(f"/api/v1/cases/{cid}", headers=auth("qingxiu.officer")).json()[
            "case_number"]
        client.cookies.clear()
        page = client.post("/lookup", data={"case_number": number,
                                            "query_code": query_code(number).lower()})
        assert page.status_code == 200 and 'data-testid="progress"' in page.text
        wrong = client.post("/lookup", data={"case_number": number, "query_code": "nope"})
        assert wrong.status_code == 404 and "未找到" in wrong.text

    def test_lists_and_queue_render(self, client: TestClient, auth: AuthHeaders) -> None:
        self._case(client, auth, days=200)
        login(client, "qingxiu.officer")
        for path in ("/cases", "/cases?overdue=true&state=open", "/cases/queue", "/cases/new"):
            assert client.get(path).status_code == 200, path
        assert client.get("/cases?sort=sideways").status_code == 422


def test_console_errors_are_pages(client: TestClient) -> None:
    login(client, "qingxiu.officer")
    page = client.get("/cases/999999", headers={"accept": "text/html"})
    assert page.status_code == 404 and "<main" in page.text and "case_not_found" in page.text
    api = client.get("/api/v1/cases/999999", headers={"accept": "text/html"})
    assert api.json()["error"]["code"] == "case_not_found"
    # an address edited by hand (a query parameter out of range) is a page too
    bad = client.get("/cases?cursor=" + "x" * 201, headers={"accept": "text/html"})
    assert bad.status_code == 422 and "<main" in bad.text and "validation_failed" in bad.text
    bad_api = client.get("/api/v1/cases?cursor=" + "x" * 201, headers={"accept": "text/html"})
    assert bad_api.json()["error"]["code"] == "validation_failed"
