"""The screening path's key cache: no database round trip for a known key, a change made in
this process seen at once, one made elsewhere when its signal arrives (within the cache time
while signals are not heard)."""

from __future__ import annotations

import threading

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import event, update

from tests.credit.support import fresh_indexes, onboard
from zhixing.core.clock import utcnow
from zhixing.core.db import get_engine
from zhixing.core.signals import SIGNALS
from zhixing.courts.models import ApiKey
from zhixing.credit import follower, partner_keys

__all__ = ["fresh_indexes"]

BODY = {"activities": ["flight"], "people": [{"ref": "1", "id_number": "110101199003074477"}]}


def test_a_known_key_costs_no_query_and_a_change_elsewhere_unheard_lands_within_the_ttl(
        client: TestClient, test_db: object, monkeypatch: pytest.MonkeyPatch) -> None:
    headers = onboard("caac")["caac"]
    indexes = follower.ScreeningIndexes(poll_seconds=0.2)  # as in production: a thread follows
    follower.set_indexes(indexes)
    indexes.start()
    assert client.post("/api/v1/partner/screen", headers=headers, json=BODY).status_code == 200
    statements: list[str] = []

    def count(*args: object) -> None:
        if threading.current_thread().name != "screening-follower":
            statements.append(str(args[2]))

    event.listen(get_engine(), "before_cursor_execute", count)
    try:
        r = client.post("/api/v1/partner/screen", headers=headers, json=BODY)
    finally:
        event.remove(get_engine(), "before_cursor_execute", count)
    assert r.status_code == 200 and r.json()["results"][0]["restricted"] is False
    assert statements == []  # a clean single check: memory only
    # Another process revokes the key (here: behind the cache's back, so no signal is sent).
    key_id = headers["Authorization"].split()[1].split(".")[0]
    with get_engine().begin() as conn:
        conn.execute(update(ApiKey).where(ApiKey.key_id == key_id).values(revoked_at=utcnow()))
    # Not hearing signals (SQLite, a reconnect): accepted within the TTL…
    monkeypatch.setattr(SIGNALS, "listening", False)
    assert client.post("/api/v1/partner/screen", headers=headers, json=BODY).status_code == 200
    # …and refused once it has passed.
    monkeypatch.setattr(partner_keys, "TTL_SECONDS", 0.0)
    r = client.post("/api/v1/partner/screen", headers=headers, json=BODY)
    assert r.status_code == 401 and r.json()["error"]["code"] == "invalid_token"


def test_a_change_elsewhere_lands_when_its_signal_does(
        client: TestClient, test_db: object, monkeypatch: pytest.MonkeyPatch) -> None:
    """While signals are heard, a cached key lives until the channel is signalled."""
    headers = onboard("caac")["caac"]
    generation = {"now": 5}
    monkeypatch.setattr(SIGNALS, "mark", lambda _channel: generation["now"])
    monkeypatch.setattr(SIGNALS, "listening", True)
    monkeypatch.setattr(SIGNALS, "listening_on", {partner_keys.KEYS_CHANNEL})
    monkeypatch.setattr(partner_keys, "TTL_SECONDS", 0.0)  # only the signalled lifetime counts
    assert client.post("/api/v1/partner/screen", headers=headers, json=BODY).status_code == 200
    key_id = headers["Authorization"].split()[1].split(".")[0]
    with get_engine().begin() as conn:  # not through a session: no signal is sent
        conn.execute(update(ApiKey).where(ApiKey.key_id == key_id).values(revoked_at=utcnow()))
    assert client.post("/api/v1/partner/screen", headers=headers, json=BODY).status_code == 200
    generation["now"] += 1  # the revoking commit's NOTIFY arrives
    r = client.post("/api/v1/partner/screen", headers=headers, json=BODY)
    assert r.status_code == 401 and r.json()["error"]["code"] == "invalid_token"
