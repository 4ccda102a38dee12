"""The console pages of network query and control: the case page's panel and forms, the inquiry
page and its live stream, online control orders and their sign-off, and the linked units."""

from __future__ import annotations

import random
import re
import threading
import time
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from tests.cases.factories import company, person
from tests.conftest import AuthHeaders
from tests.linkage.support import onboard, sdk
from tests.linkage.test_inquiries import PURPOSE, debtor_of, deposits_result, new_case
from tests.linkage.test_orders import outcome
from tests.web.test_console import login
from zhixing.cases.models import Party
from zhixing.cases.service import today
from zhixing.core import clock
from zhixing.core.models import AuditRecord
from zhixing.demo_data.identities import credit_code
from zhixing.linkage import keys, presenters, views, wire
from zhixing.linkage.models import ControlOrder, Inquiry, LinkageTask, LinkageUnit

XSS = "<script>alert(1)</script>"
DEPOSIT_UNITS = 23  # reference units answering deposit queries


@pytest.fixture
def issued(test_db: object) -> dict[str, keys.IssuedKeys]:
    return onboard()


def _inquiry_form(csrf: str, case: dict[str, Any], **over: Any) -> dict[str, Any]:
    form: dict[str, Any] = {"csrf_token": csrf, **PURPOSE,
                            "party_ids": [str(debtor_of(case)["id"])], "kinds": ["deposits"]}
    form.update(over)
    return form


def _start(client: TestClient, csrf: str, case: dict[str, Any], **over: Any) -> int:
    resp = client.post(f"/cases/{case['id']}/inquiries", data=_inquiry_form(csrf, case, **over),
                       follow_redirects=False)
    assert resp.status_code == 303, resp.text
    match = re.fullmatch(rf"/cases/{case['id']}/inquiries/(\d+)", resp.headers["location"])
    assert match, resp.headers["location"]
    return int(match.group(1))


def _result(task: wire.Task, payload: Any) -> wire.Result:
    return wire.Result(schema_version="1", task_id=task.task_id, status="answered",
                       reported_at=datetime.now(UTC), payload=payload)


def _row(html: str, task_id: str) -> str:
    match = re.search(rf'<tr [^>]*data-task-id="{task_id}".*?</tr>', html, re.S)
    assert match, f"no row for {task_id}"
    return match.group(0)


# --- the case page -----------------------------------------------------------------------------


class TestCasePanel:
    def test_officer_gets_the_form_with_defaults(self, client: TestClient, auth: AuthHeaders,
                                                 issued: dict[str, keys.IssuedKeys],
                                                 db: Session) -> None:
        case = new_case(client, auth, debtors=[person("刘某"), company("某某公司")])
        with_id, without_id = [p for p in case["parties"] if p["role"] == "debtor"]
        # A party entered before identity numbers were required (the API requires one now).
        db.execute(update(Party).where(Party.id == without_id["id"]).values(id_number=None))
        login(client, "qingxiu.officer")
        page = client.get(f"/cases/{case['id']}").text
        assert 'data-testid="network-panel"' in page and 'data-testid="inquiry-form"' in page
        assert f'value="{PURPOSE["purpose"]}"' in page
        assert 'value="《中华人民共和国民事诉讼法》第二百五十二条、第二百五十三条"' in page
        assert re.search(rf'value="{with_id["id"]}" checked', page)
        assert re.search(rf'value="{without_id["id"]}" disabled', page)
        for kind in wire.QUERY_KINDS:
            assert f'value="{kind}" checked' in page
        assert "尚未发起网络查控" in page

    @pytest.mark.parametrize(("user", "status", "form"), [
        ("qingxiu.approver", 200, True), ("gx.duty", 200, False), ("auditor", 200, False),
        ("liunan.officer", 404, False), ("qixing.bailiff", 404, False)])
    def test_who_sees_what(self, client: TestClient, auth: AuthHeaders,
                           issued: dict[str, keys.IssuedKeys], user: str, status: int,
                           form: bool) -> None:
        case = new_case(client, auth)
        login(client, user)
        resp = client.get(f"/cases/{case['id']}")
        assert resp.status_code == status
        if status == 200:
            assert 'data-testid="network-panel"' in resp.text
            assert ('data-testid="inquiry-form"' in resp.text) == form

    def test_the_form_starts_an_inquiry(self, client: TestClient, auth: AuthHeaders,
                                        issued: dict[str, keys.IssuedKeys],
                                        db: Session) -> None:
        case = new_case(client, auth)
        csrf = login(client, "qingxiu.officer")
        inquiry_id = _start(client, csrf, case)
        inquiry = db.get(Inquiry, inquiry_id)
        assert inquiry is not None and inquiry.kinds == ["deposits"]
        assert inquiry.purpose == PURPOSE["purpose"] and inquiry.task_count == DEPOSIT_UNITS
        page = client.get(f"/cases/{case['id']}").text
        assert f'href="/cases/{case["id"]}/inquiries/{inquiry_id}"' in page
        assert f"0 / {DEPOSIT_UNITS}" in page

    def test_all_debtors_and_kinds(self, client: TestClient, auth: AuthHeaders,
                                   issued: dict[str, keys.IssuedKeys], db: Session) -> None:
        case = new_case(client, auth, debtors=[person("刘某"), person("李某")])
        csrf = login(client, "qingxiu.officer")
        ids = [str(p["id"]) for p in case["parties"] if p["role"] == "debtor"]
        inquiry_id = _start(client, csrf, case, party_ids=ids, kinds=list(wire.QUERY_KINDS))
        assert db.scalar(select(Inquiry.task_count).where(Inquiry.id == inquiry_id)) == 2 * 45

    @pytest.mark.parametrize(("over", "code"), [
        ({"purpose": ""}, "validation_failed"),
        ({"legal_basis": "法"}, "validation_failed"),
        ({"party_ids": []}, "no_debtor_chosen"),
        ({"kinds": []}, "no_kind_chosen"),
        ({"kinds": ["tax_returns"]}, "validation_failed"),
        ({"party_ids": ["x"]}, "validation_failed"),
    ])
    def test_errors_are_shown_with_the_values_kept(
            self, client: TestClient, auth: AuthHeaders, issued: dict[str, keys.IssuedKeys],
            db: Session, over: dict[str, Any], code: str) -> None:
        case = new_case(client, auth)
        csrf = login(client, "qingxiu.officer")
        form = _inquiry_form(csrf, case, **{"purpose": "为查明财产而查询", **over})
        resp = client.post(f"/cases/{case['id']}/inquiries", data=form)
        assert resp.status_code == 422, resp.text
        assert 'data-testid="action-error"' in resp.text and code in resp.text
        if "purpose" not in over:
            assert 'value="为查明财产而查询"' in resp.text  # what was typed is kept
        assert db.scalar(select(func.count()).select_from(LinkageTask)) == 0

    def test_never_a_third_party(self, client: TestClient, auth: AuthHeaders,
                                 issued: dict[str, keys.IssuedKeys], db: Session) -> None:
        case = new_case(client, auth)
        applicant = next(p for p in case["parties"] if p["role"] == "applicant")
        csrf = login(client, "qingxiu.officer")
        resp = client.post(f"/cases/{case['id']}/inquiries",
                           data=_inquiry_form(csrf, case, party_ids=[str(applicant["id"])]))
        assert resp.status_code == 422 and "not_a_debtor" in resp.text
        assert db.scalar(select(func.count()).select_from(Inquiry)) == 0

    def test_readers_and_other_courts_cannot_start_one(
            self, client: TestClient, auth: AuthHeaders, issued: dict[str, keys.IssuedKeys],
            db: Session) -> None:
        case = new_case(client, auth)
        csrf = login(client, "gx.duty")
        resp = client.post(f"/cases/{case['id']}/inquiries", data=_inquiry_form(csrf, case))
        assert resp.status_code == 403 and "role_forbidden" in resp.text
        csrf = login(client, "liunan.officer")
        resp = client.post(f"/cases/{case['id']}/inquiries", data=_inquiry_form(csrf, case))
        assert resp.status_code == 404
        assert db.scalar(select(func.count()).select_from(Inquiry)) == 0

    def test_csrf_is_enforced_on_every_form(self, client: TestClient, auth: AuthHeaders,
                                            issued: dict[str, keys.IssuedKeys],
                                            db: Session) -> None:
        case = new_case(client, auth)
        login(client, "admin")
        unit = db.scalar(select(LinkageUnit.id).limit(1))
        assert client.post(f"/network/units/{unit}/enabled",
                           data={"enabled": "false"}).status_code == 403
        login(client, "qingxiu.approver")
        for path, data in (
                (f"/cases/{case['id']}/inquiries", _inquiry_form("forged", case)),
                (f"/cases/{case['id']}/assets/1/orders", {"csrf_token": "forged",
                                                          "kind": "freeze"}),
                (f"/cases/{case['id']}/orders/1/decision", {"approve": "true"})):
            resp = client.post(path, data=data)
            assert resp.status_code == 403 and "csrf_failed" in resp.text, path
        assert db.scalar(select(func.count()).select_from(Inquiry)) == 0
        assert db.scalar(select(LinkageUnit.enabled).where(LinkageUnit.id == unit)) is True


# --- the inquiry page --------------------------------------------------------------------------


class TestInquiryPage:
    def test_rows_counters_and_audit(self, client: TestClient, auth: AuthHeaders,
                                     issued: dict[str, keys.IssuedKeys], db: Session) -> None:
        case = new_case(client, auth)
        csrf = login(client, "qingxiu.officer")
        inquiry_id = _start(client, csrf, case)
        bank = sdk(client, issued["bank-icbc"])
        [task] = bank.fetch_tasks(10).tasks
        bank.post_results([deposits_result(task, balance=1_234_567)])
        page = client.get(f"/cases/{case['id']}/inquiries/{inquiry_id}")
        assert page.status_code == 200
        html = page.text
        assert PURPOSE["purpose"] in html and PURPOSE["legal_basis"] in html
        assert "执行法官 陆青" in html and "承办人发起" in html
        assert html.count('<tr id="task-') == DEPOSIT_UNITS
        row = _row(html, task.task_id)
        assert 'data-status="answered"' in row and "已反馈" in row
        assert "中国工商银行南宁分行" in row and "6222000011112222" in row
        assert "12,345.67" in row
        assert 'data-testid="done-total">1 / 23<' in html
        assert 'data-testid="count-queued">22<' in html
        assert 'data-testid="found-fen">12,345.67<' in html
        assert f'sse-connect="/cases/{case["id"]}/inquiries/{inquiry_id}/stream?since=' in html
        reads = db.scalars(select(AuditRecord).where(
            AuditRecord.action == "linkage.inquiry_read")).all()
        assert [(r.object_id, r.purpose) for r in reads] == [(str(inquiry_id),
                                                              PURPOSE["purpose"])]

    @pytest.mark.parametrize(("user", "status"), [
        ("auditor", 200), ("gx.duty", 200), ("liunan.officer", 404), ("qixing.bailiff", 404)])
    def test_who_may_read_it(self, client: TestClient, auth: AuthHeaders,
                             issued: dict[str, keys.IssuedKeys], monkeypatch: pytest.MonkeyPatch,
                             user: str, status: int) -> None:
        monkeypatch.setattr(views, "STREAM_SECONDS", 0.5)
        case = new_case(client, auth)
        csrf = login(client, "qingxiu.officer")
        inquiry_id = _start(client, csrf, case)
        login(client, user)
        for suffix in ("", "/stream"):
            resp = client.get(f"/cases/{case['id']}/inquiries/{inquiry_id}{suffix}")
            assert resp.status_code == status, (user, suffix)

    def test_an_inquiry_of_another_case_is_not_found(self, client: TestClient,
                                                     auth: AuthHeaders,
                                                     issued: dict[str, keys.IssuedKeys]) -> None:
        case, other = new_case(client, auth), new_case(client, auth)
        csrf = login(client, "qingxiu.officer")
        inquiry_id = _start(client, csrf, case)
        assert client.get(f"/cases/{other['id']}/inquiries/{inquiry_id}").status_code == 404
        assert client.get(f"/cases/{case['id']}/inquiries/999999").status_code == 404

    def test_every_kind_of_answer_is_summarised(self, client: TestClient, auth: AuthHeaders,
                                                issued: dict[str, keys.IssuedKeys]) -> None:
        case = new_case(client, auth)
        csrf = login(client, "qingxiu.officer")
        inquiry_id = _start(client, csrf, case, kinds=list(wire.QUERY_KINDS))
        now = datetime.now(UTC)
        payloads: dict[str, Any] = {
            "bank-icbc": wire.DepositsPayload(kind="deposits", accounts=[
                wire.DepositAccount(account_number="6222000011113333", bank="中国工商银行",
                                    branch="青秀支行", balance_fen=50_000_00, currency="CNY",
                                    account_type="demand"),
                wire.DepositAccount(account_number="6222000011114444", bank="中国工商银行",
                                    branch="青秀支行", balance_fen=7_000, currency="USD",
                                    account_type="time")]),
            "dept-gx-natural-resources": wire.RealEstatePayload(kind="real_estate", properties=[
                wire.Property(certificate_number="桂(2020)南宁市不动产权第0012345号",
                              address="南宁市青秀区民族大道100号3栋1201", area_m2="89.35",
                              usage="住宅", co_owners=["王某"])]),
            "dept-gx-ps-vehicles": wire.VehiclesPayload(kind="vehicles", vehicles=[
                wire.Vehicle(plate_number="桂A12345", model="大众 迈腾",
                             vin="LFV3A23C0J3012345", registered_on=date(2019, 5, 1))]),
            "dept-gx-market-regulation": wire.BusinessRegistrationPayload(
                kind="business_registration", roles=[wire.BusinessRole(
                    company_name="南宁某贸易有限公司", credit_code=credit_code(random.Random(3)),
                    role="shareholder", share_percent="35", capital_fen=1_000_000_00)]),
            "dept-csdc": wire.SecuritiesPayload(kind="securities", accounts=[
                wire.SecuritiesAccount(account="A123456789", broker="国海证券", holdings=[
                    wire.Holding(code="600519", name="贵州茅台", quantity=100)])]),
            "dept-gx-ps-household": wire.HouseholdRegistrationPayload(
                kind="household_registration", record=wire.HouseholdRecord(
                    address="南宁市兴宁区朝阳路8号", household_head="刘建国", members=[])),
            "dept-gx-civil-affairs": wire.MarriageRegistrationPayload(
                kind="marriage_registration", record=wire.MarriageRecord(
                    status="married", spouse_name="张某某", registered_on=date(2012, 10, 1))),
            "dept-gx-ps-lodging": wire.LodgingPayload(kind="lodging", stays=[wire.Stay(
                hotel="桂林某大酒店", address="桂林市秀峰区中山中路1号",
                check_in_at=now - timedelta(days=3))]),
        }
        for code, payload in payloads.items():
            unit = sdk(client, issued[code])
            [task] = [t for t in unit.fetch_tasks(10).tasks if t.kind == payload.kind]
            assert [o.outcome for o in unit.post_results([_result(task, payload)])] == [
                "accepted"], code
        tax = sdk(client, issued["dept-gx-tax"])
        [task] = tax.fetch_tasks(10).tasks
        tax.post_results([wire.Result(
            schema_version="1", task_id=task.task_id, status="refused",
            reported_at=datetime.now(UTC),
            refusal=wire.Refusal(code="insufficient_legal_basis", message="请补充协助执行通知书"))])
        html = client.get(f"/cases/{case['id']}/inquiries/{inquiry_id}").text
        for text in ("50,000.00 元", "USD 7000", "活期", "定期",
                     "南宁市青秀区民族大道100号3栋1201 · 89.35 m² · 住宅", "共有人: 王某",
                     "桂A12345", "LFV3A23C0J3012345", "南宁某贸易有限公司 · 股东 35%",
                     "出资 1,000,000.00 元", "A123456789", "贵州茅台 × 100",
                     "户籍地址: 南宁市兴宁区朝阳路8号", "户主 刘建国", "已婚 · 配偶 张某某",
                     "桂林某大酒店", "insufficient_legal_basis", "请补充协助执行通知书",
                     "已拒绝"):
            assert text in html, text

    def test_english(self, client: TestClient, auth: AuthHeaders,
                     issued: dict[str, keys.IssuedKeys]) -> None:
        case = new_case(client, auth)
        csrf = login(client, "qingxiu.officer")
        inquiry_id = _start(client, csrf, case)
        client.cookies.set("zx_lang", "en")
        html = client.get(f"/cases/{case['id']}/inquiries/{inquiry_id}").text
        assert "Network query" in html and "Queued" in html and "Industrial and" in html


class TestLiveStream:
    @pytest.fixture(autouse=True)
    def _short(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setattr(views, "STREAM_SECONDS", 6.0)
        monkeypatch.setattr(views, "TICK_SECONDS", 0.2)

    def test_a_row_arrives_when_a_unit_answers(self, client: TestClient, auth: AuthHeaders,
                                               issued: dict[str, keys.IssuedKeys]) -> None:
        case = new_case(client, auth, debtors=[person(f"刘{XSS}")])
        csrf = login(client, "qingxiu.officer")
        inquiry_id = _start(client, csrf, case, kinds=["lodging"])  # one unit: one task
        page = client.get(f"/cases/{case['id']}/inquiries/{inquiry_id}").text
        since = re.search(r"stream\?since=(\d+)", page)
        assert since
        assert XSS not in page and "刘&lt;script&gt;alert(1)&lt;/script&gt;" in page
        lodging = sdk(client, issued["dept-gx-ps-lodging"])
        [task] = lodging.fetch_tasks(10).tasks
        stay = wire.Stay(hotel=f"酒店{XSS}", address="南宁市", check_in_at=datetime.now(UTC))

        def answer_later() -> None:
            time.sleep(1.0)  # the stream has made its first look by now
            lodging.post_results([_result(task, wire.LodgingPayload(kind="lodging",
                                                                    stays=[stay]))])

        answering = threading.Thread(target=answer_later)
        answering.start()
        started = time.monotonic()
        try:
            with client.stream("GET", f"/cases/{case['id']}/inquiries/{inquiry_id}/stream",
                               params={"since": since.group(1)}) as resp:
                assert resp.status_code == 200
                assert resp.headers["content-type"].startswith("text/event-stream")
                text = "".join(resp.iter_text())
        finally:
            answering.join()
        assert time.monotonic() - started < 5.5  # it ended when the task was final
        chunks = [e for e in text.split("\n\n") if e.strip()]
        assert chunks[0] == "retry: 3000"
        events = chunks[1:]
        names = [m.group(1) for e in events if (m := re.search(r"^event: (\S+)", e))]
        assert len(names) == len(events)
        # First look: the row the unit fetched moved after the page was drawn (delivered).
        assert names[:2] == [f"task-{self._id(task.task_id)}", "progress"]
        assert names[-3:] == [f"task-{self._id(task.task_id)}", "progress", "done"]
        answered = events[names.index("progress") + 1]
        assert 'data-status="answered"' in answered and "已反馈" in answered
        assert "酒店&lt;script&gt;" in answered and XSS not in text
        assert "刘&lt;script&gt;" in answered
        assert all(line.startswith(("event: ", "id: ", "data: ", ": "))
                   for e in events for line in e.splitlines())
        assert 'data-testid="done-total">1 / 1<' in text and 'data-live="off"' in text
        case_page = client.get(f"/cases/{case['id']}").text
        assert XSS not in case_page and "刘&lt;script&gt;alert(1)&lt;/script&gt;" in case_page

    def test_a_reconnect_resends_what_moved_since_its_last_event(
            self, client: TestClient, auth: AuthHeaders,
            issued: dict[str, keys.IssuedKeys], monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setattr(views, "STREAM_SECONDS", 1.0)
        case = new_case(client, auth)
        csrf = login(client, "qingxiu.officer")
        inquiry_id = _start(client, csrf, case, kinds=["deposits"])
        url = f"/cases/{case['id']}/inquiries/{inquiry_id}/stream"
        with client.stream("GET", url) as resp:  # a first connection without a page moment
            text = "".join(resp.iter_text())
        assert text.count("event: task-") == DEPOSIT_UNITS  # all created moments ago
        clock.set_offset(timedelta(minutes=2))  # later; within the protocol's signing window
        seen_at = str(int((datetime.now(UTC) + timedelta(minutes=1)).timestamp() * 1000))
        with client.stream("GET", url, headers={"Last-Event-ID": seen_at}) as resp:
            text = "".join(resp.iter_text())
        assert text.count("event: task-") == 0  # nothing moved since: counters only
        assert "event: progress" in text and "event: done" not in text
        bank = sdk(client, issued["bank-icbc"])
        [task] = bank.fetch_tasks(10).tasks
        bank.post_results([deposits_result(task)])
        with client.stream("GET", url, headers={"Last-Event-ID": seen_at}) as resp:
            text = "".join(resp.iter_text())
        assert text.count("event: task-") == 1 and 'data-status="answered"' in text
        assert 'data-testid="count-answered">1<' in text

    @staticmethod
    def _id(task_id: str) -> int:
        from zhixing.core.db import session_factory

        with session_factory()() as session:
            found = session.scalar(select(LinkageTask.id).where(LinkageTask.task_id == task_id))
        assert found is not None
        return int(found)


def test_changed_since_counts_expiries_without_a_moment() -> None:
    now = datetime.now(UTC)
    base: presenters.Fingerprint = ("queued", 0, None, None, None, None, 0)
    current = {1: (base, now - timedelta(hours=1)), 2: (base, now),
               3: (("expired", 0, "no answer", None, None, None, 0), None), 4: (base, None)}
    assert presenters.changed_since(current, now - timedelta(minutes=1)) == {2, 3}


# --- control orders ----------------------------------------------------------------------------


def _found_account(client: TestClient, auth: AuthHeaders, issued: dict[str, keys.IssuedKeys],
                   balance: int = 3_000_000) -> tuple[dict[str, Any], int]:
    case = new_case(client, auth)
    client.post(f"/api/v1/cases/{case['id']}/inquiries", json={**PURPOSE, "kinds": ["deposits"]},
                headers=auth("qingxiu.officer"))
    bank = sdk(client, issued["bank-icbc"])
    [task] = bank.fetch_tasks(50).tasks
    bank.post_results([deposits_result(task, balance=balance)])
    [asset] = client.get(f"/api/v1/cases/{case['id']}",
                         headers=auth("qingxiu.officer")).json()["assets"]
    return case, int(asset["id"])


def _order_form(page: str, asset_id: int) -> dict[str, str]:
    match = re.search(rf'data-testid="control-{asset_id}".*?</details>', page, re.S)
    assert match, "no control form for the asset"
    form = match.group(0)
    fields = dict(re.findall(r'<input [^>]*name="(\w+)"[^>]*value="([^"]*)"', form))
    fields["kind"] = re.findall(r'<option value="(\w+)"', form)[0]
    return fields


class TestOrders:
    def test_freeze_from_the_case_page_once(self, client: TestClient, auth: AuthHeaders,
                                            issued: dict[str, keys.IssuedKeys],
                                            db: Session) -> None:
        case, asset_id = _found_account(client, auth, issued, balance=3_000_000)
        login(client, "qingxiu.officer")
        page = client.get(f"/cases/{case['id']}").text
        form = _order_form(page, asset_id)
        # Defaults: a freeze of the balance (less than the outstanding amount), for a year.
        assert form["kind"] == "freeze" and form["amount"] == "30,000.00"
        assert form["period_days"] == "365" and len(form["request_key"]) >= 16
        assert form["purpose"] and form["legal_basis"]
        assert 'value="deduct"' in page and "需审批人签批" in page
        url = f"/cases/{case['id']}/assets/{asset_id}/orders"
        body = {**form, "amount": "20,000.00", "document_number": "（2026）桂0103执1号之一"}
        for _ in range(2):  # a double submit makes one order
            resp = client.post(url, data=body, follow_redirects=False)
            assert resp.status_code == 303 and resp.headers["location"].endswith(
                "#network-orders")
        [order] = db.scalars(select(ControlOrder)).all()
        assert (order.kind, order.amount_fen, order.period_days, order.status) == (
            "freeze", 2_000_000, 365, "sent")
        page = client.get(f"/cases/{case['id']}").text
        assert 'data-testid="orders"' in page and "已发送至单位" in page
        assert "（2026）桂0103执1号之一" in page
        # Now the asset is held: the form offers renewal, release and deduction.
        form = _order_form(page, asset_id)
        assert form["kind"] == "renew_freeze" and form["request_key"] != body["request_key"]

    def test_a_refused_amount_is_explained(self, client: TestClient, auth: AuthHeaders,
                                           issued: dict[str, keys.IssuedKeys],
                                           db: Session) -> None:
        case, asset_id = _found_account(client, auth, issued)
        login(client, "qingxiu.officer")
        form = _order_form(client.get(f"/cases/{case['id']}").text, asset_id)
        url = f"/cases/{case['id']}/assets/{asset_id}/orders"
        for amount, code in (("99,999,999.00", "exceeds_outstanding"),
                             ("1.234", "invalid_amount"), ("0", "validation_failed")):
            resp = client.post(url, data={**form, "amount": amount, "document_number": "X1"})
            assert resp.status_code == 422 and code in resp.text, amount
        resp = client.post(url, data={**form, "document_number": "X1", "period_days": "400"})
        assert resp.status_code == 422 and "period_too_long" in resp.text
        resp = client.post(url, data={**form, "document_number": " "})
        assert resp.status_code == 422 and "document_number" in resp.text
        assert db.scalar(select(func.count()).select_from(ControlOrder)) == 0

    def test_assets_found_by_hand_get_no_online_form(self, client: TestClient,
                                                     auth: AuthHeaders,
                                                     issued: dict[str, keys.IssuedKeys]) -> None:
        case = new_case(client, auth)
        client.post(f"/api/v1/cases/{case['id']}/assets", json={
            "debtor_id": debtor_of(case)["id"], "kind": "vehicle", "description": "轿车"},
            headers=auth("qingxiu.officer"))
        login(client, "qingxiu.officer")
        page = client.get(f"/cases/{case['id']}").text
        assert "轿车" in page and 'data-testid="control-' not in page

    def test_readers_get_no_control_form(self, client: TestClient, auth: AuthHeaders,
                                         issued: dict[str, keys.IssuedKeys]) -> None:
        case, asset_id = _found_account(client, auth, issued)
        login(client, "gx.duty")
        page = client.get(f"/cases/{case['id']}").text
        assert f'data-asset-id="{asset_id}"' in page and 'data-testid="control-' not in page

    def test_a_wealth_product_is_not_offered_for_deduction(
            self, client: TestClient, auth: AuthHeaders, issued: dict[str, keys.IssuedKeys]
            ) -> None:
        case = new_case(client, auth)
        client.post(f"/api/v1/cases/{case['id']}/inquiries",
                    json={**PURPOSE, "kinds": ["deposits"]}, headers=auth("qingxiu.officer"))
        bank = sdk(client, issued["bank-icbc"])
        [task] = bank.fetch_tasks(50).tasks
        bank.post_results([_result(task, wire.DepositsPayload(kind="deposits", accounts=[
            wire.DepositAccount(
                account_number="WP0001", bank="中国工商银行", branch="南宁分行",
                balance_fen=500_000, currency="CNY", account_type="wealth_product",
                wealth_product=wire.WealthProduct(product_code="GS01", product_name="稳利理财",
                                                  value_fen=500_000))]))])
        [asset] = client.get(f"/api/v1/cases/{case['id']}",
                             headers=auth("qingxiu.officer")).json()["assets"]
        login(client, "qingxiu.officer")
        page = client.get(f"/cases/{case['id']}").text
        form = re.search(rf'data-testid="control-{asset["id"]}".*?</details>', page, re.S)
        assert form is not None and "稳利理财" in page
        assert re.findall(r'<option value="(\w+)"', form.group(0)) == ["freeze"]

    def test_a_suspended_case_keeps_only_renewal_and_release(
            self, client: TestClient, auth: AuthHeaders, issued: dict[str, keys.IssuedKeys]
            ) -> None:
        case, asset_id = _found_account(client, auth, issued)
        bank = sdk(client, issued["bank-icbc"])
        client.post(f"/api/v1/cases/{case['id']}/assets/{asset_id}/orders", json={
            "kind": "freeze", "amount_fen": 1_000_000, "document_number": "（2026）桂0103执1号",
            **PURPOSE}, headers=auth("qingxiu.officer"))
        [freeze] = bank.fetch_tasks(50).tasks
        bank.post_results([outcome(freeze, 1_000_000, expires=today() + timedelta(days=365))])
        resp = client.post(f"/api/v1/cases/{case['id']}/transitions", json={
            "action": "suspend", "ground": "applicant_agreed"}, headers=auth("qingxiu.officer"))
        assert resp.status_code == 200, resp.text
        login(client, "qingxiu.officer")
        page = client.get(f"/cases/{case['id']}").text
        assert 'data-testid="inquiry-form"' not in page
        form = re.search(rf'data-testid="control-{asset_id}".*?</details>', page, re.S)
        assert form is not None
        assert re.findall(r'<option value="(\w+)"', form.group(0)) == ["renew_freeze", "release"]

    def test_a_deduction_waits_for_an_approver(self, client: TestClient, auth: AuthHeaders,
                                               issued: dict[str, keys.IssuedKeys],
                                               db: Session) -> None:
        case, asset_id = _found_account(client, auth, issued)
        bank = sdk(client, issued["bank-icbc"])
        client.post(f"/api/v1/cases/{case['id']}/assets/{asset_id}/orders", json={
            "kind": "freeze", "amount_fen": 2_000_000, "document_number": "（2026）桂0103执1号",
            **PURPOSE}, headers=auth("qingxiu.officer"))
        [freeze] = bank.fetch_tasks(50).tasks
        bank.post_results([outcome(freeze, 2_000_000, expires=today() + timedelta(days=365))])

        csrf = login(client, "qingxiu.officer")
        form = _order_form(client.get(f"/cases/{case['id']}").text, asset_id)
        resp = client.post(f"/cases/{case['id']}/assets/{asset_id}/orders", data={
            **form, "kind": "deduct", "amount": "15,000", "period_days": "365",
            "document_number": "（2026）桂0103执1号之二"}, follow_redirects=False)
        assert resp.status_code == 303
        deduct = db.scalar(select(ControlOrder).where(ControlOrder.kind == "deduct"))
        assert deduct is not None and deduct.status == "awaiting_approval"
        assert deduct.period_days is None and deduct.amount_fen == 1_500_000
        page = client.get(f"/cases/{case['id']}").text
        assert "待审批" in page and f'data-testid="decide-{deduct.id}"' not in page
        url = f"/cases/{case['id']}/orders/{deduct.id}/decision"
        refused = client.post(url, data={"csrf_token": csrf, "approve": "true"})
        assert refused.status_code == 403 and "approver_required" in refused.text

        csrf = login(client, "qingxiu.approver")
        page = client.get(f"/cases/{case['id']}").text
        assert f'data-testid="decide-{deduct.id}"' in page
        bad = client.post(url, data={"csrf_token": csrf, "approve": "maybe"})
        assert bad.status_code == 422
        ok = client.post(url, data={"csrf_token": csrf, "approve": "true", "note": "同意扣划"},
                         follow_redirects=False)
        assert ok.status_code == 303
        db.expire_all()
        assert db.get(ControlOrder, deduct.id).status == "sent"  # type: ignore[union-attr]
        page = client.get(f"/cases/{case['id']}").text
        assert "同意扣划" in page and "执行局长 梁正" in page
        again = client.post(url, data={"csrf_token": csrf, "approve": "false"})
        assert again.status_code == 409 and "not_awaiting_approval" in again.text

    def test_an_approver_does_not_sign_his_own_deduction(
            self, client: TestClient, auth: AuthHeaders, issued: dict[str, keys.IssuedKeys],
            db: Session) -> None:
        case, asset_id = _found_account(client, auth, issued)
        csrf = login(client, "qingxiu.approver")
        form = _order_form(client.get(f"/cases/{case['id']}").text, asset_id)
        client.post(f"/cases/{case['id']}/assets/{asset_id}/orders", data={
            **form, "csrf_token": csrf, "kind": "deduct", "amount": "100",
            "document_number": "（2026）桂0103执1号之二"})
        deduct = db.scalar(select(ControlOrder).where(ControlOrder.kind == "deduct"))
        assert deduct is not None
        page = client.get(f"/cases/{case['id']}").text
        assert f'data-testid="decide-{deduct.id}"' not in page
        resp = client.post(f"/cases/{case['id']}/orders/{deduct.id}/decision",
                           data={"csrf_token": csrf, "approve": "true"})
        assert resp.status_code == 403 and "same_person" in resp.text


# --- linked units ------------------------------------------------------------------------------


class TestUnitsPage:
    def test_readers_see_units_health_and_figures(self, client: TestClient, auth: AuthHeaders,
                                                  issued: dict[str, keys.IssuedKeys]) -> None:
        case = new_case(client, auth)
        csrf = login(client, "qingxiu.officer")
        _start(client, csrf, case)
        home = client.get("/").text
        assert 'href="/network/units"' in home and "网络查控" in home
        page = client.get("/network/units")
        assert page.status_code == 200
        assert page.text.count('<tr id="unit-') == 45
        assert "中国工商银行" in page.text and "/network/units/" not in page.text
        assert f'data-testid="fig-requests_sent">{DEPOSIT_UNITS}<' in page.text
        assert 'data-testid="fig-cases_covered">1<' in page.text
        assert re.search(r'name="start" value="\d{4}-\d{2}-\d{2}"', page.text)

    def test_the_period_form(self, client: TestClient, auth: AuthHeaders,
                             issued: dict[str, keys.IssuedKeys]) -> None:
        case = new_case(client, auth)
        csrf = login(client, "qingxiu.officer")
        _start(client, csrf, case)
        past = (today() - timedelta(days=400)).isoformat()
        before = client.get("/network/units", params={"start": past, "end": past})
        assert 'data-testid="fig-requests_sent">0<' in before.text
        wrong = client.get("/network/units", params={"start": today().isoformat(), "end": past})
        assert wrong.status_code == 422 and "invalid_period" in wrong.text

    @pytest.mark.parametrize("user", ["qixing.bailiff"])
    def test_others_are_refused(self, client: TestClient, issued: dict[str, keys.IssuedKeys],
                                user: str) -> None:
        login(client, user)
        assert 'href="/network/units"' not in client.get("/").text
        assert client.get("/network/units").status_code == 403

    def test_high_court_admin_switches_a_unit(self, client: TestClient,
                                              issued: dict[str, keys.IssuedKeys],
                                              db: Session) -> None:
        unit = db.scalar(select(LinkageUnit).where(LinkageUnit.code == "bank-icbc"))
        assert unit is not None
        csrf = login(client, "auditor")
        assert f"/network/units/{unit.id}/enabled" not in client.get("/network/units").text
        refused = client.post(f"/network/units/{unit.id}/enabled",
                              data={"csrf_token": csrf, "enabled": "false"})
        assert refused.status_code == 403 and "role_forbidden" in refused.text
        csrf = login(client, "admin")
        page = client.get("/network/units").text
        assert f"/network/units/{unit.id}/enabled" in page
        resp = client.post(f"/network/units/{unit.id}/enabled",
                           data={"csrf_token": csrf, "enabled": "false"},
                           follow_redirects=False)
        assert resp.status_code == 303
        db.expire_all()
        assert db.scalar(select(LinkageUnit.enabled).where(LinkageUnit.id == unit.id)) is False
        assert db.scalar(select(func.count()).select_from(AuditRecord).where(
            AuditRecord.action == "linkage.unit_updated")) == 1
        row = re.search(rf'<tr id="unit-{unit.id}".*?</tr>', client.get("/network/units").text,
                        re.S)
        assert row and "停用" in row.group(0) and 'value="true"' in row.group(0)
        missing = client.post("/network/units/99999/enabled",
                              data={"csrf_token": csrf, "enabled": "true"})
        assert missing.status_code == 404
