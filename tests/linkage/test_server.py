"""The protocol endpoints refuse what is not authentic, fresh and once, and sign answers."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from tests.conftest import AuthHeaders
from tests.linkage.support import onboard, sdk, unit_id
from zhixing.core.models import AuditRecord
from zhixing.linkage import keys, signing, wire
from zhixing.linkage.client import ApiError
from zhixing.linkage.models import LinkageUnit

TASKS = "/api/v1/linkage/tasks?limit=10"


@pytest.fixture
def issued(test_db: object) -> dict[str, keys.IssuedKeys]:
    return onboard()


def signed(issued: keys.IssuedKeys, method: str = "GET", target: str = TASKS,
           body: bytes = b"", **kw: object) -> dict[str, str]:
    return signing.sign(method, target, body, issued.key_id,
                        signing.decode_secret(issued.secret), **kw)  # type: ignore[arg-type]


def test_a_signed_fetch_gets_a_signed_answer(client: TestClient,
                                             issued: dict[str, keys.IssuedKeys]) -> None:
    unit = issued["bank-icbc"]
    headers = signed(unit)
    resp = client.get(TASKS, headers=headers)
    assert resp.status_code == 200
    assert resp.json() == {"schema_version": "1", "tasks": [], "more": False}
    key = signing.verify_response(
        200, resp.headers, resp.content,
        {unit.platform_key_id: signing.decode_secret(unit.platform_secret)}.get,
        request_method="GET", request_path=TASKS, request_nonce=headers[signing.HEADER_NONCE],
        now=datetime.now(UTC))
    assert key == unit.platform_key_id


@pytest.mark.parametrize(("tamper", "code"), [
    (lambda h: h.pop(signing.HEADER_SIGNATURE), "missing_signature"),
    (lambda h: h.update({signing.HEADER_SIGNATURE: "0" * 64}), "bad_signature"),
    (lambda h: h.update({signing.HEADER_KEY: "bank-nobody-k1"}), "unknown_key"),
    (lambda h: h.update({signing.HEADER_NONCE: "short"}), "malformed_signature"),
])
def test_forgeries_are_refused(client: TestClient, issued: dict[str, keys.IssuedKeys],
                               tamper: object, code: str) -> None:
    headers = signed(issued["bank-icbc"])
    tamper(headers)  # type: ignore[operator]
    resp = client.get(TASKS, headers=headers)
    assert resp.status_code == 401 and resp.json()["error"]["code"] == code


def test_a_replayed_nonce_is_refused(client: TestClient,
                                     issued: dict[str, keys.IssuedKeys]) -> None:
    headers = signed(issued["bank-icbc"])
    assert client.get(TASKS, headers=headers).status_code == 200
    again = client.get(TASKS, headers=headers)
    assert again.status_code == 401 and again.json()["error"]["code"] == "replayed_nonce"


@pytest.mark.parametrize(("skew", "status"), [(290, 200), (-290, 200), (310, 401), (-310, 401)])
def test_the_clock_window(client: TestClient, issued: dict[str, keys.IssuedKeys],
                          skew: int, status: int) -> None:
    when = datetime.now(UTC) + timedelta(seconds=skew)
    resp = client.get(TASKS, headers=signed(issued["bank-icbc"], now=when))
    assert resp.status_code == status
    if status == 401:
        assert resp.json()["error"]["code"] == "stale_timestamp"


def test_a_body_that_is_not_the_one_signed(client: TestClient,
                                           issued: dict[str, keys.IssuedKeys]) -> None:
    body = json.dumps({"schema_version": "1", "task_ids": ["zt_0000000000"]}).encode()
    headers = signed(issued["bank-icbc"], "POST", "/api/v1/linkage/tasks/ack", body)
    resp = client.post("/api/v1/linkage/tasks/ack", content=body.replace(b"0", b"1"),
                       headers=headers)
    assert resp.status_code == 401 and resp.json()["error"]["code"] == "body_digest_mismatch"


def test_revoked_keys_stop_at_once_and_rotation_overlaps(
        client: TestClient, auth: AuthHeaders, issued: dict[str, keys.IssuedKeys],
        db: Session) -> None:
    unit = issued["bank-icbc"]
    uid = unit_id(db, "bank-icbc")
    rotated = client.post(f"/api/v1/units/{uid}/keys/rotate", headers=auth("admin"))
    assert rotated.status_code == 200, rotated.text
    new_secret = rotated.json()["secret"]
    assert client.get(TASKS, headers=signed(unit)).status_code == 200  # old secret, overlap
    fresh = keys.IssuedKeys(unit.unit_code, unit.key_id, new_secret, unit.platform_key_id,
                            unit.platform_secret)
    assert client.get(TASKS, headers=signed(fresh)).status_code == 200
    assert client.delete(f"/api/v1/units/{uid}/keys", headers=auth("admin")).status_code == 204
    resp = client.get(TASKS, headers=signed(fresh))
    assert resp.status_code == 401 and resp.json()["error"]["code"] == "unknown_key"


def test_only_administrators_manage_keys(client: TestClient, auth: AuthHeaders,
                                         issued: dict[str, keys.IssuedKeys],
                                         db: Session) -> None:
    uid = unit_id(db, "bank-icbc")
    for user in ("qingxiu.officer", "auditor"):
        assert client.post(f"/api/v1/units/{uid}/keys", headers=auth(user)).status_code == 403
    issued_now = client.post(f"/api/v1/units/{uid}/keys", headers=auth("admin")).json()
    assert issued_now["key_id"] != issued["bank-icbc"].key_id
    assert client.get(TASKS, headers=signed(issued["bank-icbc"])).status_code == 401
    actions = set(db.scalars(select(AuditRecord.action)))
    assert {"linkage.keys_issued"} <= actions


def test_a_switched_off_unit_is_refused_signed(client: TestClient, auth: AuthHeaders,
                                               issued: dict[str, keys.IssuedKeys],
                                               db: Session) -> None:
    uid = unit_id(db, "bank-icbc")
    resp = client.patch(f"/api/v1/units/{uid}", json={"enabled": False}, headers=auth("admin"))
    assert resp.status_code == 200 and resp.json()["enabled"] is False
    with pytest.raises(ApiError) as err:
        sdk(client, issued["bank-icbc"]).fetch_tasks(10)  # the SDK verified the 403's signature
    assert err.value.status_code == 403
    assert db.scalar(select(LinkageUnit.enabled).where(LinkageUnit.id == uid)) is False


def test_bad_envelopes_and_oversized_bodies(client: TestClient,
                                            issued: dict[str, keys.IssuedKeys]) -> None:
    unit = issued["bank-icbc"]
    for body, status, code in (
            (b"not json", 422, "validation_failed"),
            (b'{"schema_version": "2", "results": []}', 422, "unsupported_schema_version"),
            (b'{"schema_version": "1", "results": []}', 422, "validation_failed"),
            (b"[" * (wire.MAX_BODY_BYTES + 1), 413, "payload_too_large")):
        headers = signed(unit, "POST", "/api/v1/linkage/results", body)
        resp = client.post("/api/v1/linkage/results", content=body, headers=headers)
        assert resp.status_code == status, (body[:20], resp.text)
        assert resp.json()["error"]["code"] in (code, "body_too_large")


def test_people_cannot_use_the_protocol_and_units_cannot_use_people_routes(
        client: TestClient, auth: AuthHeaders, issued: dict[str, keys.IssuedKeys],
        db: Session) -> None:
    assert client.get(TASKS, headers=auth("admin")).status_code == 401
    headers = signed(issued["bank-icbc"], target="/api/v1/cases")
    assert client.get("/api/v1/cases", headers=headers).status_code == 401
    assert db.scalar(select(func.count()).select_from(AuditRecord)
                     .where(AuditRecord.action.like("linkage.results%"))) == 0


def test_a_long_poll_answers_when_a_task_arrives(client: TestClient, auth: AuthHeaders,
                                                 issued: dict[str, keys.IssuedKeys]) -> None:
    import threading
    import time

    from tests.linkage.test_inquiries import PURPOSE, new_case

    bank = sdk(client, issued["bank-icbc"])
    started = time.monotonic()
    assert bank.fetch_tasks(10, wait=1).tasks == []  # nothing comes: empty after the wait
    assert time.monotonic() - started >= 1
    got: list[wire.TaskBatch] = []
    waiting = threading.Thread(target=lambda: got.append(bank.fetch_tasks(10, wait=20)))
    waiting.start()
    time.sleep(0.3)
    case = new_case(client, auth)
    client.post(f"/api/v1/cases/{case['id']}/inquiries", json=PURPOSE,
                headers=auth("qingxiu.officer"))
    waiting.join(timeout=15)
    assert not waiting.is_alive() and len(got[0].tasks) == 1
    assert time.monotonic() - started < 15


def test_another_process_revoking_a_key_is_heard_through_its_signal(
        client: TestClient, issued: dict[str, keys.IssuedKeys], db: Session,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """While signals are heard, a cached key lives until the keys channel is signalled; a
    revocation committed elsewhere (here: behind the cache's back) is refused from then on."""
    from zhixing.core.db import get_engine
    from zhixing.core.signals import SIGNALS
    from zhixing.linkage.models import UnitKey

    generation = {"now": 7}  # the real listener's signals must not interfere
    monkeypatch.setattr(SIGNALS, "mark", lambda _channel: generation["now"])
    monkeypatch.setattr(keys, "CACHE_SECONDS", 0.0)  # only the signalled lifetime counts
    monkeypatch.setattr(SIGNALS, "listening", True)
    monkeypatch.setattr(SIGNALS, "listening_on", {keys.KEYS_CHANNEL})
    unit = issued["bank-icbc"]
    assert client.get(TASKS, headers=signed(unit)).status_code == 200  # cached now
    with get_engine().begin() as conn:  # not through a session: no signal is sent
        conn.execute(update(UnitKey).where(UnitKey.key_id == unit.key_id)
                     .values(revoked_at=datetime.now(UTC)))
    assert client.get(TASKS, headers=signed(unit)).status_code == 200  # no signal yet
    generation["now"] += 1  # the revoking commit's NOTIFY arrives
    resp = client.get(TASKS, headers=signed(unit))
    assert resp.status_code == 401 and resp.json()["error"]["code"] == "unknown_key"
    # Not listening (SQLite, a reconnect): the short lifetime alone, here none at all.
    monkeypatch.setattr(SIGNALS, "listening", False)
    assert keys.caller_keys(db, unit.key_id) is None
