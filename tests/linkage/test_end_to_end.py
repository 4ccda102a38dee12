"""End to end with real processes: the API server, a job worker and the unit simulator (45
units in 5 processes speaking the protocol through the SDK), on the test database.

The Liu story: one request asks every unit; the bank finds his account; the officer freezes it
online; money lands in the account later and is frozen within seconds. Then the faults: the
server and the worker are killed with SIGKILL again and again while orders are in flight, and
the simulated banks' own ledgers prove every order was applied exactly once.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from tests.cases.factories import case_payload, person
from tests.support.database import ScratchDatabase
from tests.support.processes import Platform, running_platform, wait_for
from zhixing.core.db import transaction
from zhixing.linkage.models import ControlOrder, LinkageTask
from zhixing.linkage.simulator import Ledger, credit, holdings

# On both databases. On SQLite this once stalled for the 30-second busy timeout: the console's
# session look-up ran on the event loop and held the write lock's queue; it runs on the thread
# pool since, and this test is the proof.
pytestmark = pytest.mark.slow
PURPOSE = {"purpose": "查明被执行人财产以供执行",
           "legal_basis": "《中华人民共和国民事诉讼法》第二百五十三条"}


@pytest.fixture
def platform(test_db: ScratchDatabase) -> Iterator[Platform]:
    with running_platform(test_db) as p:
        yield p


def demand_accounts(id_number: str) -> set[str]:
    return {a.account_number for a in holdings.deposit_accounts(
        "bank-icbc", "中国工商银行", id_number) if a.account_type != "wealth_product"}


def debtor_with_account(rng: random.Random) -> dict[str, Any]:
    while True:
        candidate = person(f"刘{rng.choice('建国明华志强伟')}")
        if demand_accounts(candidate["id_number"]):
            return candidate


def new_case(p: Platform, h: dict[str, str], debtor: dict[str, Any]) -> dict[str, Any]:
    resp = p.http.post("/api/v1/cases", json=case_payload(debtors=[debtor]), headers=h)
    assert resp.status_code == 201, resp.text
    return dict(resp.json())


def answered_inquiry(p: Platform, h: dict[str, str], case_id: int) -> dict[str, Any]:
    resp = p.http.post(f"/api/v1/cases/{case_id}/inquiries", json=PURPOSE, headers=h)
    assert resp.status_code == 201, resp.text
    url = f"/api/v1/cases/{case_id}/inquiries/{resp.json()['id']}"

    def done() -> dict[str, Any] | None:
        body = p.http.get(url, headers=h).json()
        return dict(body) if body["done"] == body["task_count"] == 45 else None

    return wait_for(done, "all 45 answers", 90)


def icbc_asset(p: Platform, h: dict[str, str], case_id: int) -> dict[str, Any]:
    detail = p.http.get(f"/api/v1/cases/{case_id}", headers=h).json()
    debtor = next(x for x in detail["parties"] if x["role"] == "debtor")
    own = demand_accounts(debtor["id_number"])
    return next(a for a in detail["assets"] if a["identifier"] in own)


def order_state(p: Platform, h: dict[str, str], case_id: int, order_id: int) -> dict[str, Any]:
    orders = p.http.get(f"/api/v1/cases/{case_id}/orders", headers=h).json()["items"]
    return dict(next(o for o in orders if o["id"] == order_id))


def test_the_liu_story(platform: Platform) -> None:
    p = platform
    h = p.headers("qingxiu.officer")
    debtor = debtor_with_account(random.Random(1))
    case = new_case(p, h, debtor)
    inquiry = answered_inquiry(p, h, case["id"])
    assert inquiry["by_status"].get("answered", 0) >= 40  # a few may refuse; none is lost
    asset = icbc_asset(p, h, case["id"])
    outstanding = case["outstanding_fen"]
    resp = p.http.post(f"/api/v1/cases/{case['id']}/assets/{asset['id']}/orders", json={
        "kind": "freeze", "amount_fen": outstanding, "document_number": "（2026）桂0103执1号之一",
        **PURPOSE}, headers=h)
    assert resp.status_code == 201, resp.text
    freeze = resp.json()
    def standing() -> dict[str, Any] | None:
        state = order_state(p, h, case["id"], freeze["id"])
        return state if state["status"] in ("applied", "partial") else None

    applied = wait_for(standing, "the freeze", 30)
    frozen_first = applied["applied_amount_fen"]
    assert frozen_first <= outstanding
    # Money lands in the account: the standing freeze catches it.
    arrival = outstanding  # more than enough
    caught = credit(p.ledgers, "bank-icbc", account_number=asset["identifier"],
                    amount_fen=arrival)
    assert caught.auto_frozen_fen == outstanding - frozen_first

    def fully_frozen() -> dict[str, Any] | None:
        now = icbc_asset(p, h, case["id"])
        return now if now["control_amount_fen"] == outstanding else None

    wait_for(fully_frozen, "the arrived money frozen", 30)
    events = p.http.get(f"/api/v1/cases/{case['id']}/events", headers=h).json()["items"]
    assert any(e["kind"] == "funds_arrived" for e in events)
    totals = Ledger.open(p.ledgers, "bank-icbc").totals()
    assert totals[asset["identifier"]].frozen_fen == outstanding
    assert all(o.times_applied == 1 for o in Ledger.open(p.ledgers, "bank-icbc")
               .applied_orders())


def _settled(p: Platform, h: dict[str, str], case_id: int, order_id: int
             ) -> Callable[[], bool]:
    return lambda: order_state(p, h, case_id, order_id)["status"] not in ("sent", "waiting")


def test_killing_server_and_worker_loses_and_duplicates_nothing(platform: Platform) -> None:
    p = platform
    h = p.headers("qingxiu.officer")
    rng = random.Random(2)
    cases = [new_case(p, h, debtor_with_account(rng)) for _ in range(4)]
    for case in cases:
        answered_inquiry(p, h, case["id"])
    orders: list[tuple[int, int]] = []
    kills = 0
    for round_number in range(6):
        for case in cases:
            asset = icbc_asset(p, h, case["id"])
            kind = "release" if asset["control_state"] == "frozen" else "freeze"
            body: dict[str, Any] = {"kind": kind, "document_number": "（2026）桂0103执9号",
                                    "request_key": f"e2e-case-{case['id']}-{round_number}",
                                    **PURPOSE}
            if kind == "freeze":
                body["amount_fen"] = 100_000
            try:
                resp = p.http.post(f"/api/v1/cases/{case['id']}/assets/{asset['id']}/orders",
                                   json=body, headers=h)
            except httpx.HTTPError:
                continue
            assert resp.status_code == 201, resp.text
            orders.append((case["id"], resp.json()["id"]))
        time.sleep(rng.uniform(0.05, 0.6))
        victim = p.worker if round_number % 2 else p.server
        victim.kill()
        kills += 1
        time.sleep(rng.uniform(0.0, 0.5))
        if victim is p.server:
            p.restart_server()
        else:
            victim.start()
        # Wait for the chain to settle before the next round asks for the next order.
        for case_id, order_id in orders:
            wait_for(_settled(p, h, case_id, order_id), f"order {order_id}", 60)
    assert kills == 6 and len(orders) >= 12
    with transaction() as session:
        applied = {o.task_id for o in session.scalars(select(ControlOrder).where(
            ControlOrder.status.in_(("applied", "partial"))))}
        open_tasks = session.scalars(select(LinkageTask.task_id).where(
            LinkageTask.status.in_(("queued", "delivered", "acknowledged")))).all()
    ledger = Ledger.open(p.ledgers, "bank-icbc")
    at_bank = {o.task_id: o.times_applied for o in ledger.applied_orders()}
    assert open_tasks == []  # no task lost
    assert set(at_bank.values()) == {1}  # none applied twice
    assert applied == set(at_bank)  # the platform and the bank agree, order by order
