"""The Li story end to end (seed): a debtor who will not pay is listed and restricted; the
airline and border control know it through their feed and screening; he pays; the listing is
deleted within 3 working days; screening lets him fly again."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient

from tests.conftest import AuthHeaders, HttpClient
from tests.credit.support import fresh_indexes, onboard
from tests.credit.test_listings import APPROVER, OFFICER, _case, _debtor_id
from zhixing.cases.service import today
from zhixing.core.db import transaction
from zhixing.credit import sweep

__all__ = ["fresh_indexes"]  # the fixture, used by every test here


def _screen(client: HttpClient, headers: dict[str, str], id_number: str, activity: str
            ) -> dict[str, Any]:
    r = client.post("/api/v1/partner/screen", headers=headers, json={
        "activities": [activity], "people": [{"ref": "pax-1", "id_number": id_number}]})
    assert r.status_code == 200, r.text
    return dict(r.json()["results"][0])


def _feed(client: HttpClient, headers: dict[str, str], after: int) -> dict[str, Any]:
    r = client.get("/api/v1/partner/feed", headers=headers, params={"after": after})
    assert r.status_code == 200, r.text
    return dict(r.json())


def test_li_is_listed_refused_pays_and_flies_again(client: TestClient, auth: AuthHeaders
                                                   ) -> None:
    li_story(client, auth)


def li_story(client: HttpClient, auth: AuthHeaders) -> None:
    """The story through any HTTP client: the in-process app, or real servers (test_scale_out).
    """
    keys = onboard("caac", "nia-exit-entry")
    airline, border = keys["caac"], keys["nia-exit-entry"]
    case = _case(client, auth)
    li = next(p for p in case["parties"] if p["role"] == "debtor")
    # 1. Listed on ground 1 by the officer, approved by the head of enforcement; exit restricted.
    r = client.post(f"/api/v1/cases/{case['id']}/listings", headers=auth(OFFICER), json={
        "party_id": _debtor_id(case), "ground": 1, "conduct": "有履行能力而拒不履行"})
    listing = client.post(f"/api/v1/listings/{r.json()['id']}/decision",
                          headers=auth(APPROVER), json={"approve": True}).json()
    assert listing["status"] == "active" and listing["published"]
    r = client.post(f"/api/v1/cases/{case['id']}/restrictions", headers=auth(OFFICER),
                    json={"party_id": li["id"], "kind": "exit"})
    assert r.status_code == 201, r.text
    # 2. The airline's feed has him (flight only: it subscribes to nothing else).
    feed = _feed(client, airline, 0)
    mine = [i for i in feed["items"] if i["entry"]["id_number"] == li["id_number"]]
    assert [i["op"] for i in mine] == ["add"]
    assert mine[0]["entry"]["activities"] == ["flight"]
    cursor = feed["next_cursor"]
    assert client.post("/api/v1/partner/feed/ack", headers=airline,
                       json={"cursor": cursor}).status_code == 200
    # 3. He tries to fly and to leave the country: both refused, citing the court and case.
    flight = _screen(client, airline, li["id_number"], "flight")
    assert flight["restricted"] is True
    assert flight["hits"][0]["case_number"] == case["case_number"]
    assert _screen(client, border, li["id_number"], "exit")["restricted"] is True
    # 4. He pays everything. The platform sees the deletion event and sets its due date.
    applied = 12_345_600 + 50_000 + 10_000
    r = client.post(f"/api/v1/cases/{case['id']}/money", headers=auth(OFFICER), json={
        "kind": "recovered", "amount_fen": applied, "on": today().isoformat()})
    assert r.status_code == 201, r.text
    with transaction() as s:
        assert sweep.sweep(s).detected == 1
    due = client.get(f"/api/v1/listings/{listing['id']}", headers=auth(OFFICER)).json()
    assert due["deletion_ground"] == "full_performance"
    # 5. Deleted within the 3 working days; his restrictions are lifted with it.
    r = client.post(f"/api/v1/listings/{listing['id']}/deletion", headers=auth(OFFICER),
                    json={"ground": "full_performance"})
    deleted = r.json()
    assert deleted["status"] == "deleted"
    assert deleted["deleted_on"] <= deleted["deletion_due_on"]
    exits = client.get(f"/api/v1/cases/{case['id']}/restrictions",
                       headers=auth(OFFICER)).json()["items"]
    assert {x["status"] for x in exits} == {"lifted"}
    # 6. The airline's feed says delete; screening lets him fly and leave again.
    feed = _feed(client, airline, cursor)
    assert [i["op"] for i in feed["items"]
            if i["entry"]["id_number"] == li["id_number"]] == ["delete"]
    assert _screen(client, airline, li["id_number"], "flight")["restricted"] is False
    assert _screen(client, border, li["id_number"], "exit")["restricted"] is False
    # 7. The figures count him among those who paid after listing, and after a refusal.
    figures = client.get("/api/v1/credit/figures", headers=auth(OFFICER)).json()
    assert figures["voluntary_share"] == 1.0
    effects = {e["measure"]: e for e in figures["effects"]}
    assert effects["refused:flight"]["paid"] == 1 and effects["refused:exit"]["paid"] == 1
    # The public no longer finds him; his history is kept.
    public = client.get("/api/v1/public/dishonest", params={"name": li["name"]}).json()
    assert all(item.get("case_number") != case["case_number"]
               for item in public.get("items", []))
    actions = [v["action"] for v in client.get(f"/api/v1/listings/{listing['id']}/versions",
                                               headers=auth(OFFICER)).json()]
    assert actions == ["proposed", "approved", "deletion_detected", "deleted"]
