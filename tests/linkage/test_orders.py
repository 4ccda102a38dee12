"""Control orders online: exactly once, in chain order, deductions signed off by two people,
and the watch order that freezes money arriving later (the Liu story)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from tests.conftest import AuthHeaders
from tests.linkage.support import onboard, sdk
from tests.linkage.test_inquiries import PURPOSE, deposits_result, new_case
from zhixing.cases.models import Asset, Case, LedgerEntry
from zhixing.cases.service import today
from zhixing.linkage import keys, wire
from zhixing.linkage.client import LinkageClient
from zhixing.linkage.models import ControlOrder, LinkageTask

OUTSTANDING = 12_345_600 + 50_000 + 10_000
ORDER = {"document_number": "（2026）桂0103执123号之一", **PURPOSE}


@pytest.fixture
def issued(test_db: object) -> dict[str, keys.IssuedKeys]:
    return onboard()


def found_account(client: TestClient, auth: AuthHeaders, bank: LinkageClient,
                  balance: int = 3_000_000) -> tuple[dict[str, Any], int]:
    case = new_case(client, auth)
    client.post(f"/api/v1/cases/{case['id']}/inquiries", json={**PURPOSE, "kinds": ["deposits"]},
                headers=auth("qingxiu.officer"))
    [task] = bank.fetch_tasks(50).tasks
    bank.post_results([deposits_result(task, balance=balance)])
    detail = client.get(f"/api/v1/cases/{case['id']}", headers=auth("qingxiu.officer")).json()
    [asset] = detail["assets"]
    return case, int(asset["id"])


def order(client: TestClient, auth: AuthHeaders, case: dict[str, Any], asset_id: int,
          user: str = "qingxiu.officer", **body: Any) -> Any:
    return client.post(f"/api/v1/cases/{case['id']}/assets/{asset_id}/orders",
                       json={**ORDER, **body}, headers=auth(user))


def outcome(task: wire.Task, applied: int | None, *, expires: date | None = None,
            **kw: Any) -> wire.Result:
    assert task.control is not None
    ordered = task.control.amount_fen
    return wire.Result(
        schema_version="1", task_id=task.task_id, status="answered",
        reported_at=datetime.now(UTC),
        payload=wire.ControlOutcome(
            kind=task.kind, unit_reference=f"ICBC-{task.task_id[-6:]}",  # type: ignore[arg-type]
            applied_at=datetime.now(UTC), amount_ordered_fen=ordered,
            amount_applied_fen=applied if ordered is not None else None,
            expires_on=expires, **kw))


def test_a_release_never_overtakes_its_freeze(client: TestClient, auth: AuthHeaders,
                                              issued: dict[str, keys.IssuedKeys],
                                              db: Session) -> None:
    bank = sdk(client, issued["bank-icbc"])
    case, asset_id = found_account(client, auth, bank)
    freeze = order(client, auth, case, asset_id, kind="freeze", amount_fen=5_000_000)
    assert freeze.status_code == 201, freeze.text
    assert freeze.json()["status"] == "sent"
    release = order(client, auth, case, asset_id, kind="release")
    assert release.status_code == 201 and release.json()["status"] == "waiting"

    [task] = bank.fetch_tasks(50).tasks  # only the freeze is with the bank
    assert task.kind == "freeze" and task.control is not None
    assert (task.control.sequence, task.control.chain_id) == (1, task.task_id)
    assert task.control.period_days == 365 and task.control.amount_fen == 5_000_000

    expires = today() + timedelta(days=365)
    partial = outcome(task, 3_000_000, expires=expires, shortfall_reason="insufficient_balance")
    assert [o.outcome for o in bank.post_results([partial])] == ["accepted"]
    asset = db.get(Asset, asset_id)
    assert asset is not None and asset.control_state == "frozen"
    assert asset.control_amount_fen == 3_000_000

    [follow] = bank.fetch_tasks(50).tasks  # now the release goes, after the freeze
    assert follow.kind == "release" and follow.control is not None
    assert follow.control.supersedes_task_id == task.task_id
    assert follow.control.sequence == 2
    bank.post_results([outcome(follow, None)])
    db.expire_all()
    asset = db.get(Asset, asset_id)
    assert asset is not None and asset.control_state == "released"


def test_a_release_of_a_refused_freeze_is_cancelled(client: TestClient, auth: AuthHeaders,
                                                    issued: dict[str, keys.IssuedKeys],
                                                    db: Session) -> None:
    bank = sdk(client, issued["bank-icbc"])
    case, asset_id = found_account(client, auth, bank)
    order(client, auth, case, asset_id, kind="freeze", amount_fen=1_000_000)
    release_id = order(client, auth, case, asset_id, kind="release").json()["id"]
    [task] = bank.fetch_tasks(50).tasks
    bank.post_results([wire.Result(
        schema_version="1", task_id=task.task_id, status="refused",
        reported_at=datetime.now(UTC),
        refusal=wire.Refusal(code="account_not_found", message="账户已销户"))])
    assert db.get(ControlOrder, release_id).status == "cancelled"  # type: ignore[union-attr]
    assert bank.fetch_tasks(50).tasks == []


def test_freeze_limits(client: TestClient, auth: AuthHeaders,
                       issued: dict[str, keys.IssuedKeys], db: Session) -> None:
    bank = sdk(client, issued["bank-icbc"])
    case, asset_id = found_account(client, auth, bank)
    too_much = order(client, auth, case, asset_id, kind="freeze", amount_fen=OUTSTANDING + 1)
    assert too_much.status_code == 422
    assert too_much.json()["error"]["code"] == "exceeds_outstanding"
    too_long = order(client, auth, case, asset_id, kind="freeze", amount_fen=100,
                     period_days=366)
    assert too_long.json()["error"]["code"] == "period_too_long"
    sealed = order(client, auth, case, asset_id, kind="seal", period_days=30)
    assert sealed.status_code == 409  # the bank takes no seals
    assert db.scalar(select(func.count()).select_from(ControlOrder)) == 0


def test_the_same_request_key_makes_one_order(client: TestClient, auth: AuthHeaders,
                                              issued: dict[str, keys.IssuedKeys],
                                              db: Session) -> None:
    bank = sdk(client, issued["bank-icbc"])
    case, asset_id = found_account(client, auth, bank)
    first = order(client, auth, case, asset_id, kind="freeze", amount_fen=100,
                  request_key="double-click-0001")
    again = order(client, auth, case, asset_id, kind="freeze", amount_fen=100,
                  request_key="double-click-0001")
    assert first.status_code == again.status_code == 201
    assert first.json()["id"] == again.json()["id"]
    assert db.scalar(select(func.count()).select_from(LinkageTask)
                     .where(LinkageTask.order_id.is_not(None))) == 1


def test_deduction_needs_a_second_person(client: TestClient, auth: AuthHeaders,
                                         issued: dict[str, keys.IssuedKeys],
                                         db: Session) -> None:
    bank = sdk(client, issued["bank-icbc"])
    case, asset_id = found_account(client, auth, bank)
    order(client, auth, case, asset_id, kind="freeze", amount_fen=2_000_000)
    [freeze] = bank.fetch_tasks(50).tasks
    bank.post_results([outcome(freeze, 2_000_000, expires=today() + timedelta(days=365))])

    resp = order(client, auth, case, asset_id, user="qingxiu.approver", kind="deduct",
                 amount_fen=2_000_000)
    assert resp.status_code == 201 and resp.json()["status"] == "awaiting_approval"
    deduct_id = resp.json()["id"]
    assert bank.fetch_tasks(50).tasks == []  # nothing leaves before the sign-off
    url = f"/api/v1/cases/{case['id']}/orders/{deduct_id}/decision"
    mine = client.post(url, json={"approve": True}, headers=auth("qingxiu.approver"))
    assert mine.status_code == 403 and mine.json()["error"]["code"] == "same_person"
    officer = client.post(url, json={"approve": True}, headers=auth("qingxiu.officer"))
    assert officer.status_code == 403 and officer.json()["error"]["code"] == "approver_required"

    # the officer asks, the approver signs
    second = order(client, auth, case, asset_id, kind="deduct", amount_fen=1_500_000)
    assert second.status_code == 409  # one pending order per asset at a time
    client.post(url, json={"approve": False, "note": "改为由他人申请"},
                headers=auth("qingxiu.approver"))
    resp = order(client, auth, case, asset_id, kind="deduct", amount_fen=1_500_000)
    assert resp.status_code == 201, resp.text
    url = f"/api/v1/cases/{case['id']}/orders/{resp.json()['id']}/decision"
    ok = client.post(url, json={"approve": True}, headers=auth("qingxiu.approver"))
    assert ok.status_code == 200 and ok.json()["status"] == "sent"
    [deduct] = bank.fetch_tasks(50).tasks
    assert deduct.kind == "deduct" and deduct.control is not None
    assert deduct.control.supersedes_task_id == freeze.task_id
    bank.post_results([outcome(deduct, 1_500_000)])
    kase = db.get(Case, case["id"])
    assert kase is not None and kase.recovered_fen == 1_500_000
    assert db.scalar(select(LedgerEntry.amount_fen).where(LedgerEntry.case_id == case["id"])) \
        == 1_500_000
    asset = db.get(Asset, asset_id)
    assert asset is not None and asset.control_amount_fen == 500_000


def test_an_amount_above_the_order_is_rejected(client: TestClient, auth: AuthHeaders,
                                               issued: dict[str, keys.IssuedKeys],
                                               db: Session) -> None:
    bank = sdk(client, issued["bank-icbc"])
    case, asset_id = found_account(client, auth, bank)
    order(client, auth, case, asset_id, kind="freeze", amount_fen=1_000)
    [task] = bank.fetch_tasks(50).tasks
    body = outcome(task, 1_000, expires=today() + timedelta(days=30)).model_dump(
        mode="json")
    body["payload"]["amount_applied_fen"] = 2_000
    body["payload"]["amount_ordered_fen"] = 2_000
    [res] = bank.post_results([wire.Result.model_validate(body, strict=False)])
    assert res.error is not None and res.error.code == "amount_mismatch"
    asset = db.get(Asset, asset_id)
    assert asset is not None and asset.control_state == "none"


def test_money_arriving_under_a_standing_freeze_is_frozen(
        client: TestClient, auth: AuthHeaders, issued: dict[str, keys.IssuedKeys],
        db: Session) -> None:
    bank = sdk(client, issued["bank-icbc"])
    case, asset_id = found_account(client, auth, bank, balance=3_000_000)
    order(client, auth, case, asset_id, kind="freeze", amount_fen=5_000_000)
    [task] = bank.fetch_tasks(50).tasks
    bank.post_results([outcome(task, 3_000_000, expires=today() + timedelta(days=365),
                               shortfall_reason="insufficient_balance")])
    asset = db.get(Asset, asset_id)
    assert asset is not None and asset.identifier is not None
    arrived = wire.Event(schema_version="1", event_id="icbc-credit-0001", kind="funds_arrived",
                         related_task_id=task.task_id, account_number=asset.identifier,
                         currency="CNY", amount_fen=4_000_000, amount_frozen_fen=2_000_000,
                         arrived_at=datetime.now(UTC))
    assert bank.post_event(arrived).outcome == "accepted"
    assert bank.post_event(arrived).outcome == "duplicate"
    [follow] = bank.fetch_tasks(50).tasks
    assert follow.kind == "freeze" and follow.control is not None
    assert follow.control.amount_fen == 2_000_000  # the rest of what arrived
    db.expire_all()
    asset = db.get(Asset, asset_id)
    assert asset is not None and asset.control_amount_fen == 5_000_000
    bank.post_results([outcome(follow, 2_000_000, expires=today() + timedelta(days=365))])
    db.expire_all()
    asset = db.get(Asset, asset_id)
    assert asset is not None and asset.control_amount_fen == 7_000_000
    # The same arrival reported again under the follow-up freeze orders nothing more.
    orders_before = db.scalar(select(func.count()).select_from(ControlOrder))
    echo = arrived.model_copy(update={"event_id": "icbc-credit-0001-2",
                                      "related_task_id": follow.task_id,
                                      "amount_frozen_fen": 0})
    assert bank.post_event(echo).outcome == "accepted"
    assert db.scalar(select(func.count()).select_from(ControlOrder)) == orders_before
    stranger = arrived.model_copy(update={"event_id": "icbc-credit-0002",
                                          "related_task_id": "zt_not_a_freeze_000"})
    res = bank.post_event(stranger)
    assert res.error is not None and res.error.code == "not_a_freeze"


def test_a_wealth_product_is_frozen_as_such_and_never_deducted(
        client: TestClient, auth: AuthHeaders, issued: dict[str, keys.IssuedKeys]) -> None:
    bank = sdk(client, issued["bank-icbc"])
    case = new_case(client, auth)
    client.post(f"/api/v1/cases/{case['id']}/inquiries", json={**PURPOSE, "kinds": ["deposits"]},
                headers=auth("qingxiu.officer"))
    [task] = bank.fetch_tasks(50).tasks
    product = wire.DepositAccount(
        account_number="WM0001", bank="中国工商银行", branch="南宁分行", balance_fen=800_000,
        currency="CNY", account_type="wealth_product", wealth_product=wire.WealthProduct(
            product_code="GX-01", product_name="稳利90天", value_fen=800_000))
    bank.post_results([wire.Result(
        schema_version="1", task_id=task.task_id, status="answered",
        reported_at=datetime.now(UTC),
        payload=wire.DepositsPayload(kind="deposits", accounts=[product]))])
    [asset] = client.get(f"/api/v1/cases/{case['id']}",
                         headers=auth("qingxiu.officer")).json()["assets"]
    deduct = order(client, auth, case, asset["id"], kind="deduct", amount_fen=100)
    assert deduct.status_code == 422 and deduct.json()["error"]["code"] == "wrong_control"
    assert order(client, auth, case, asset["id"], kind="freeze", amount_fen=800_000
                 ).status_code == 201
    [freeze] = bank.fetch_tasks(50).tasks
    assert freeze.control is not None
    assert freeze.control.asset.asset_type == "wealth_product"
    assert freeze.control.asset.reference == "WM0001"
