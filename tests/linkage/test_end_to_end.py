"""End to end with real processes: the API server, a job worker and the unit simulator (45
processes speaking the protocol through the SDK), on the test database.

The Liu story: one request asks every unit; the bank finds his account; the officer freezes it
online; money lands in the account later and is frozen within seconds. Then the faults: the
server and the worker are killed with SIGKILL again and again while orders are in flight, and
the simulated banks' own ledgers prove every order was applied exactly once.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest
from sqlalchemy import select

from tests.cases.factories import case_payload, person
from tests.conftest import PASSWORD
from tests.support.database import ScratchDatabase
from tests.support.server import ROOT, free_port
from zhixing.core.db import transaction
from zhixing.linkage import onboarding
from zhixing.linkage.models import ControlOrder, LinkageTask
from zhixing.linkage.simulator import Ledger, credit, holdings

# PostgreSQL only, the production database. On SQLite (the single-process trial default) the
# 45 simulated units' concurrent load once left the database write-locked for the 30-second busy
# timeout in CI; under investigation (see the issue note) rather than papered over with retries.
pytestmark = [pytest.mark.slow, pytest.mark.skipif(
    os.environ.get("ZHIXING_TEST_BACKEND", "sqlite") != "postgresql",
    reason="end to end with 45 unit processes runs on PostgreSQL")]
T = TypeVar("T")
PURPOSE = {"purpose": "查明被执行人财产以供执行",
           "legal_basis": "《中华人民共和国民事诉讼法》第二百五十三条"}


class Proc:
    """One platform process that can be killed and started again on the same port."""

    def __init__(self, args: list[str], env: dict[str, str], log: Path) -> None:
        self.args, self.env, self.log = args, env, log
        self.proc: subprocess.Popen[bytes] | None = None
        self.kills = 0

    def start(self) -> None:
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "zhixing.cli", *self.args], cwd=ROOT, env=self.env,
                stdout=subprocess.DEVNULL, stderr=out)

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()
        self.kills += 1

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()


def wait_for(check: Callable[[], T | None], what: str, timeout: float = 60.0) -> T:
    deadline = time.monotonic() + timeout
    while True:
        try:
            found = check()
        except httpx.HTTPError:
            found = None
        if found:
            return found
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)


@dataclass
class Platform:
    base: str
    server: Proc
    worker: Proc
    simulator: Proc
    ledgers: Path
    http: httpx.Client

    def headers(self, user: str) -> dict[str, str]:
        resp = self.http.post("/api/v1/auth/tokens", json={"username": user,
                                                           "password": PASSWORD})
        resp.raise_for_status()
        return {"Authorization": f"Bearer {resp.json()['token']}"}

    def restart_server(self) -> None:
        self.server.start()
        wait_for(lambda: self.http.get("/readyz").status_code == 200, "the server", 30)


@pytest.fixture
def platform(test_db: ScratchDatabase) -> Iterator[Platform]:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    work = Path(tempfile.mkdtemp(prefix="zhixing-e2e-"))
    with transaction() as session:
        config = onboarding.simulated_units(session, base, push_port_start=free_port())
    # Push ports must be free: give each push unit one the OS just handed out.
    for unit in config["units"]:
        if unit["push_url"]:
            unit["push_url"] = f"http://127.0.0.1:{free_port()}/zhixing/push"
    with transaction() as session:
        from zhixing.linkage.models import LinkageUnit

        for unit in config["units"]:
            row = session.scalars(select(LinkageUnit).where(
                LinkageUnit.code == unit["code"])).one()
            row.push_url = unit["push_url"]
    onboarding.write_secret_file(work / "units.json", config)
    env = {**os.environ, "ZHIXING_DATABASE_URL": test_db.url, "ZHIXING_ENV": "test",
           "ZHIXING_LOG_JSON": "true", "ZHIXING_EMBEDDED_WORKER": "false"}
    server = Proc(["serve", "--no-migrate", "--port", str(port)], env, work / "server.log")
    worker = Proc(["worker"], env, work / "worker.log")
    simulator = Proc(["simulate-units", "--config", str(work / "units.json"), "--ledger-dir",
                      str(work / "ledgers"), "--long-poll", "20", "--seed", "7"],
                     env, work / "simulator.log")
    http = httpx.Client(base_url=base, timeout=30)
    p = Platform(base, server, worker, simulator, work / "ledgers", http)
    try:
        p.restart_server()
        worker.start()
        simulator.start()
        # 45 processes start on two cores: wait until every unit is up before the clock runs.
        wait_for(lambda: simulator.log.read_text(errors="replace").count(" mode against ")
                 >= len(config["units"]), "every simulated unit to start", 180)
        yield p
    finally:
        for proc in (simulator, worker, server):
            proc.stop()
        http.close()


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
