"""Push delivery to a real HTTP receiver, backoff when a unit is down, visible expiry, the
re-queries after 终本, and the figures."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from tests.cases.factories import day
from tests.cases.test_api import move
from tests.conftest import AuthHeaders
from tests.linkage.support import onboard, sdk
from tests.linkage.test_inquiries import PURPOSE, deposits_result, new_case
from zhixing.cases.models import Case
from zhixing.cases.service import today
from zhixing.cases.tasks import requery_due
from zhixing.core import clock
from zhixing.core.db import transaction
from zhixing.linkage import delivery, keys, signing, wire
from zhixing.linkage.client import PushReceiver, PushRejected
from zhixing.linkage.models import Inquiry, LinkageTask, LinkageUnit


class Receiver:
    """A unit's push endpoint: verifies each push with the SDK and stores its tasks."""

    def __init__(self, issued: keys.IssuedKeys) -> None:
        self.down = False
        self.tasks: list[wire.Task] = []
        self.receiver = PushReceiver(
            issued.key_id, signing.decode_secret(issued.secret),
            platform_keys={issued.platform_key_id: signing.decode_secret(
                issued.platform_secret)}, nonce_seen=signing.InMemoryNonceStore())
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                if outer.down:
                    self.send_response(503)
                    self.end_headers()
                    return
                try:
                    got = outer.receiver.receive("POST", self.path, dict(self.headers), body)
                except PushRejected as exc:
                    self.send_response(exc.status_code)
                    self.end_headers()
                    return
                outer.tasks.extend(got.tasks)
                self.send_response(got.status_code)
                for name, value in got.headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *_args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/zhixing/push"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()


@pytest.fixture
def push_unit(test_db: object) -> Iterator[tuple[keys.IssuedKeys, Receiver]]:
    issued = onboard()
    icbc = issued["bank-icbc"]
    receiver = Receiver(icbc)
    with transaction() as session:
        unit = session.scalars(select(LinkageUnit).where(LinkageUnit.code == "bank-icbc")).one()
        unit.delivery_mode, unit.push_url = "push", receiver.url  # type: ignore[assignment]
    yield icbc, receiver
    receiver.close()


def unit_tasks(db: Session, code: str) -> list[LinkageTask]:
    return list(db.scalars(select(LinkageTask).join(LinkageUnit).where(LinkageUnit.code == code)))


def test_push_delivers_signed_and_backs_off_while_the_unit_is_down(
        client: TestClient, auth: AuthHeaders, push_unit: tuple[keys.IssuedKeys, Receiver],
        db: Session) -> None:
    issued, receiver = push_unit
    receiver.down = True
    case = new_case(client, auth)
    client.post(f"/api/v1/cases/{case['id']}/inquiries", json=PURPOSE,
                headers=auth("qingxiu.officer"))
    uid = unit_tasks(db, "bank-icbc")[0].unit_id
    assert delivery.push_once(uid) == 0
    [task] = unit_tasks(db, "bank-icbc")
    assert task.status == "queued" and task.delivery_attempts == 1
    assert task.last_error is not None and "503" in task.last_error
    assert task.available_at > task.created_at  # waits: backoff
    assert delivery.push_once(uid) is None  # nothing due yet
    receiver.down = False
    with transaction() as session:  # the backoff has passed
        session.execute(update(LinkageTask).values(available_at=task.created_at))
    assert delivery.push_once(uid) == 1
    db.expire_all()
    [task] = unit_tasks(db, "bank-icbc")
    assert task.status == "acknowledged" and [t.task_id for t in receiver.tasks] == [task.task_id]
    # Delivered by push: a fetch does not offer it again; the result comes back as in pull.
    bank = sdk(client, issued)
    assert bank.fetch_tasks(50).tasks == []
    assert [o.outcome for o in bank.post_results([deposits_result(receiver.tasks[0])])] == [
        "accepted"]


def test_unanswered_queries_expire_visibly_but_orders_do_not(
        client: TestClient, auth: AuthHeaders, db: Session, test_db: object) -> None:
    onboard()
    case = new_case(client, auth)
    client.post(f"/api/v1/cases/{case['id']}/inquiries", json=PURPOSE,
                headers=auth("qingxiu.officer"))
    clock.set_offset(timedelta(hours=25))
    with transaction() as session:
        delivery.sweep(session)
    statuses = {t.status for t in db.scalars(select(LinkageTask))}
    assert statuses == {"expired"}
    units = client.get("/api/v1/units", headers=auth("gx.duty")).json()["items"]
    assert sum(u["expired"] for u in units) == 45


def test_requery_after_closed_for_now_asks_every_unit(client: TestClient, auth: AuthHeaders,
                                                      db: Session, test_db: object) -> None:
    onboard()
    h = auth("qingxiu.officer")
    case = new_case(client, auth, filed_days_ago=120)
    cid = case["id"]
    move(client, h, cid, action="advance", to="notice_served", on=day(118))
    move(client, h, cid, action="advance", to="investigating", on=day(116))
    for kind in ("consumption_restriction", "dishonest_listing_decided", "network_query_done",
                 "debtor_search", "applicant_interview"):
        client.post(f"/api/v1/cases/{cid}/facts", json={"kind": kind,
                                                        "on": day(10)}, headers=h)
    closed = move(client, h, cid, action="conclude", conclusion="closed_for_now")
    assert closed.status_code == 200, closed.text
    with transaction() as session:
        requery_due(session, {"case_id": cid, "round": 1})
    inquiry = db.scalars(select(Inquiry).where(Inquiry.case_id == cid)).one()
    assert inquiry.origin == "requery" and inquiry.task_count == 45
    assert "终结本次执行程序" in inquiry.purpose
    # An officer cannot query a concluded case by hand; the schedule can.
    resp = client.post(f"/api/v1/cases/{cid}/inquiries", json=PURPOSE, headers=h)
    assert resp.status_code == 409 and resp.json()["error"]["code"] == "case_concluded"
    assert db.get(Case, cid) is not None


def test_figures_count_requests_feedback_and_money(client: TestClient, auth: AuthHeaders,
                                                   db: Session, test_db: object) -> None:
    issued = onboard()
    case = new_case(client, auth)
    client.post(f"/api/v1/cases/{case['id']}/inquiries", json=PURPOSE,
                headers=auth("qingxiu.officer"))
    bank = sdk(client, issued["bank-icbc"])
    [task] = bank.fetch_tasks(50).tasks
    bank.post_results([deposits_result(task, balance=777)])
    for user in ("gx.duty", "qingxiu.officer"):
        f = client.get("/api/v1/network/figures", headers=auth(user)).json()
        assert (f["requests_sent"], f["feedback_received"], f["cases_covered"],
                f["debtors_covered"], f["funds_found_fen"]) == (45, 1, 1, 1, 777), user
    other = client.get("/api/v1/network/figures", headers=auth("liunan.officer")).json()
    assert other["requests_sent"] == 0
    bad = client.get("/api/v1/network/figures", params={"start": today().isoformat(),
                                                        "end": "2020-01-01"},
                     headers=auth("gx.duty"))
    assert bad.status_code == 422 and bad.json()["error"]["code"] == "invalid_period"
