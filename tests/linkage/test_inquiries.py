"""Inquiries over the real protocol: fan-out, pull, results into the ledger, idempotency."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from tests.cases.factories import case_payload, person
from tests.conftest import AuthHeaders
from tests.linkage.support import onboard, sdk
from zhixing.cases.models import Asset
from zhixing.core.models import AuditRecord
from zhixing.linkage import keys, wire
from zhixing.linkage.models import LinkageTask

PURPOSE = {"purpose": "查明被执行人财产以供执行",
           "legal_basis": "《中华人民共和国民事诉讼法》第二百五十三条"}


def new_case(client: TestClient, auth: AuthHeaders, **kw: Any) -> dict[str, Any]:
    resp = client.post("/api/v1/cases", json=case_payload(**kw), headers=auth("qingxiu.officer"))
    assert resp.status_code == 201, resp.text
    return dict(resp.json())


def debtor_of(case: dict[str, Any]) -> dict[str, Any]:
    return next(p for p in case["parties"] if p["role"] == "debtor")


def deposits_result(task: wire.Task, balance: int = 5_000_000,
                    account: str = "6222000011112222") -> wire.Result:
    return wire.Result(
        schema_version="1", task_id=task.task_id, status="answered",
        reported_at=datetime.now(UTC),
        payload=wire.DepositsPayload(kind="deposits", accounts=[wire.DepositAccount(
            account_number=account, bank="中国工商银行", branch="南宁分行",
            balance_fen=balance, currency="CNY", account_type="demand")]))


@pytest.fixture
def issued(test_db: object) -> dict[str, keys.IssuedKeys]:
    return onboard()


def test_one_action_fans_out_to_every_unit(client: TestClient, auth: AuthHeaders,
                                           issued: dict[str, keys.IssuedKeys],
                                           db: Session) -> None:
    case = new_case(client, auth)
    resp = client.post(f"/api/v1/cases/{case['id']}/inquiries", json=PURPOSE,
                       headers=auth("qingxiu.officer"))
    assert resp.status_code == 201, resp.text
    inquiry = resp.json()
    assert inquiry["task_count"] == 45  # 22 banks + 23 departments, one kind each
    assert inquiry["by_status"] == {"queued": 45}
    audit = db.scalar(select(AuditRecord).where(AuditRecord.action == "linkage.inquiry"))
    assert audit is not None and audit.purpose == PURPOSE["purpose"]

    bank = sdk(client, issued["bank-icbc"])
    batch = bank.fetch_tasks(50)
    assert [t.kind for t in batch.tasks] == ["deposits"] and not batch.more
    task = batch.tasks[0]
    assert task.subject.id_number == debtor_of(case)["id_number"]
    assert task.purpose == PURPOSE["purpose"] and task.case_number == case["case_number"]
    # Not offered again while held back after a fetch; acknowledging is idempotent.
    assert bank.fetch_tasks(50).tasks == []
    assert [o.outcome for o in bank.ack([task.task_id])] == ["accepted"]
    assert [o.outcome for o in bank.ack([task.task_id])] == ["duplicate"]

    result = deposits_result(task)
    assert [o.outcome for o in bank.post_results([result])] == ["accepted"]
    # The same answer again is a duplicate; a different one is refused and changes nothing.
    assert [o.outcome for o in bank.post_results([result])] == ["duplicate"]
    other = deposits_result(task, balance=1)
    [conflict] = bank.post_results([other])
    assert conflict.outcome == "rejected" and conflict.error is not None
    assert conflict.error.code == "result_conflict"

    assets = list(db.scalars(select(Asset).where(Asset.case_id == case["id"])))
    assert len(assets) == 1
    assert (assets[0].provenance, assets[0].value_fen, assets[0].source_ref) == (
        "network_query", 5_000_000, task.task_id)
    assert assets[0].unit_id is not None

    detail = client.get(f"/api/v1/cases/{case['id']}/inquiries/{inquiry['id']}",
                        headers=auth("qingxiu.officer")).json()
    assert detail["by_status"] == {"answered": 1, "queued": 44}
    assert detail["found_fen"] == 5_000_000


def test_requery_finds_the_same_account_once(client: TestClient, auth: AuthHeaders,
                                             issued: dict[str, keys.IssuedKeys],
                                             db: Session) -> None:
    case = new_case(client, auth)
    bank = sdk(client, issued["bank-icbc"])
    for balance in (100, 900):
        client.post(f"/api/v1/cases/{case['id']}/inquiries", json=PURPOSE,
                    headers=auth("qingxiu.officer"))
        [task] = bank.fetch_tasks(50).tasks
        bank.post_results([deposits_result(task, balance=balance)])
    [asset] = db.scalars(select(Asset).where(Asset.case_id == case["id"]))
    assert asset.value_fen == 900


def test_a_unit_cannot_answer_another_units_task(client: TestClient, auth: AuthHeaders,
                                                 issued: dict[str, keys.IssuedKeys]) -> None:
    case = new_case(client, auth)
    client.post(f"/api/v1/cases/{case['id']}/inquiries", json=PURPOSE,
                headers=auth("qingxiu.officer"))
    [task] = sdk(client, issued["bank-icbc"]).fetch_tasks(50).tasks
    [outcome] = sdk(client, issued["bank-abc"]).post_results([deposits_result(task)])
    assert outcome.outcome == "rejected" and outcome.error is not None
    assert outcome.error.code == "unknown_task"


def test_wrong_kind_and_bad_items_are_rejected_alone(client: TestClient, auth: AuthHeaders,
                                                     issued: dict[str, keys.IssuedKeys],
                                                     db: Session) -> None:
    case = new_case(client, auth)
    client.post(f"/api/v1/cases/{case['id']}/inquiries", json=PURPOSE,
                headers=auth("qingxiu.officer"))
    [task] = sdk(client, issued["bank-icbc"]).fetch_tasks(50).tasks
    wrong = wire.Result(schema_version="1", task_id=task.task_id, status="answered",
                        reported_at=datetime.now(UTC),
                        payload=wire.VehiclesPayload(kind="vehicles", vehicles=[]))
    [outcome] = sdk(client, issued["bank-icbc"]).post_results([wrong])
    assert outcome.error is not None and outcome.error.code == "kind_mismatch"
    assert db.scalar(select(func.count()).select_from(Asset)) == 0
    stored = db.scalar(select(LinkageTask.result).where(LinkageTask.task_id == task.task_id))
    assert stored is None  # nothing applied: the unit may correct it and send again


@pytest.mark.parametrize(("body", "code"), [
    ({"purpose": "", "legal_basis": PURPOSE["legal_basis"]}, "validation_failed"),
    ({"purpose": PURPOSE["purpose"]}, "required"),
    ({**PURPOSE, "kinds": ["tax_returns"]}, "validation_failed"),
    ({**PURPOSE, "unit_ids": [999_999]}, "unit_not_available"),
])
def test_an_inquiry_needs_purpose_basis_and_known_units(
        client: TestClient, auth: AuthHeaders, issued: dict[str, keys.IssuedKeys],
        db: Session, body: dict[str, Any], code: str) -> None:
    case = new_case(client, auth)
    resp = client.post(f"/api/v1/cases/{case['id']}/inquiries", json=body,
                       headers=auth("qingxiu.officer"))
    assert resp.status_code == 422 and resp.json()["error"]["code"] == code
    assert db.scalar(select(func.count()).select_from(LinkageTask)) == 0


def test_never_a_third_party(client: TestClient, auth: AuthHeaders,
                             issued: dict[str, keys.IssuedKeys], db: Session) -> None:
    case = new_case(client, auth, debtors=[person("刘某")])
    applicant = next(p for p in case["parties"] if p["role"] == "applicant")
    resp = client.post(f"/api/v1/cases/{case['id']}/inquiries",
                       json={**PURPOSE, "party_ids": [applicant["id"]]},
                       headers=auth("qingxiu.officer"))
    assert resp.status_code == 422 and resp.json()["error"]["code"] == "not_a_debtor"
    assert db.scalar(select(func.count()).select_from(LinkageTask)) == 0


def test_only_the_cases_court_may_ask(client: TestClient, auth: AuthHeaders,
                                      issued: dict[str, keys.IssuedKeys]) -> None:
    case = new_case(client, auth)
    for user, status in (("qingxiu.approver", 201), ("liunan.officer", 404), ("auditor", 403)):
        resp = client.post(f"/api/v1/cases/{case['id']}/inquiries", json=PURPOSE,
                           headers=auth(user))
        assert resp.status_code == status, (user, resp.text)


def test_chosen_units_and_kinds(client: TestClient, auth: AuthHeaders,
                                issued: dict[str, keys.IssuedKeys]) -> None:
    case = new_case(client, auth)
    resp = client.post(f"/api/v1/cases/{case['id']}/inquiries",
                       json={**PURPOSE, "kinds": ["vehicles", "real_estate"]},
                       headers=auth("qingxiu.officer"))
    assert resp.status_code == 201
    assert 2 <= resp.json()["task_count"] < 45
