"""The access matrix: every API route that names a record × who is asking.

Rule: a user reaches records of their own court and of every court below it; records outside
that reach answer 404 (as if they did not exist). Inside the reach, higher courts read and
supervise, and only the record's own court acts on cases. Anonymous callers get 401.

RECORD_ROUTES is the rule table; ``test_every_record_route_is_covered`` fails when a route is
added to the API without an entry here, so no route can skip this check.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.cases.factories import case_payload
from tests.command.support import on_duty
from tests.conftest import PASSWORD, AuthHeaders
from zhixing.app import create_app
from zhixing.cases.service import today

POWERFUL = ["admin", "auditor", "officer", "approver", "duty_leader", "duty_officer", "bailiff"]


@dataclass(frozen=True)
class Rule:
    """Expected status for: the record's own court, a higher court, an unrelated court."""

    own: int | tuple[int, ...]
    higher: int | tuple[int, ...]
    body: dict[str, Any] | None = None
    files: bool = False


READ = Rule(own=200, higher=200)
ACT_ON_CASE = (200, 201, 409, 422)  # allowed to try; the case's rules may still refuse

# (method, path) -> rule. Unrelated courts always get 404; anonymous callers 401.
RECORD_ROUTES: dict[tuple[str, str], Rule] = {
    ("get", "/api/v1/users/{user_id}"): READ,
    ("patch", "/api/v1/users/{user_id}"): Rule(200, 200, {"display_name": "renamed"}),
    ("get", "/api/v1/cases/{case_id}"): READ,
    ("get", "/api/v1/cases/{case_id}/events"): READ,
    ("post", "/api/v1/cases/{case_id}/transitions"): Rule(
        ACT_ON_CASE, 403, {"action": "advance", "to": "notice_served"}),
    ("post", "/api/v1/cases/{case_id}/facts"): Rule(
        ACT_ON_CASE, 403, {"kind": "debtor_search", "on": today().isoformat()}),
    ("post", "/api/v1/cases/{case_id}/extensions"): Rule(403, 403, {"months": 3,
                                                                    "reason": "复杂"}),
    ("post", "/api/v1/cases/{case_id}/pauses"): Rule(
        ACT_ON_CASE, 403, {"reason": "audit", "on": today().isoformat()}),
    ("post", "/api/v1/cases/{case_id}/pauses/{reason}/end"): Rule((200, 409), 403),
    ("post", "/api/v1/cases/{case_id}/officer"): Rule(
        ACT_ON_CASE, 403, {"officer_username": "qingxiu.officer"}),
    ("post", "/api/v1/cases/{case_id}/notes"): Rule(ACT_ON_CASE, 403, {"text": "x"}),
    ("post", "/api/v1/cases/{case_id}/resume"): Rule(409, 403, {"reason": "x"}),
    ("post", "/api/v1/cases/{case_id}/assets"): Rule(ACT_ON_CASE, 403, {
        "debtor_id": 0, "kind": "deposit", "description": "x"}),
    ("post", "/api/v1/cases/{case_id}/assets/{asset_id}/control"): Rule(
        (404,), 403, {"action": "release", "on": today().isoformat()}),
    ("post", "/api/v1/cases/{case_id}/money"): Rule(ACT_ON_CASE, 403, {
        "kind": "recovered", "amount_fen": 1, "on": today().isoformat()}),
    ("post", "/api/v1/cases/{case_id}/documents"): Rule(ACT_ON_CASE, 403, files=True),
    ("get", "/api/v1/cases/{case_id}/documents/{doc_id}"): Rule(404, 404),
    ("get", "/api/v1/courts/{code}"): Rule(200, 200),  # public reference data
    ("get", "/api/v1/cases/{case_id}/inquiries"): READ,
    ("post", "/api/v1/cases/{case_id}/inquiries"): Rule(ACT_ON_CASE, 403, {
        "purpose": "查明财产", "legal_basis": "民事诉讼法第二百五十三条"}),
    ("get", "/api/v1/cases/{case_id}/inquiries/{inquiry_id}"): Rule(404, 404),
    ("get", "/api/v1/cases/{case_id}/orders"): READ,
    ("post", "/api/v1/cases/{case_id}/assets/{asset_id}/orders"): Rule(404, 403, {
        "kind": "freeze", "amount_fen": 100, "document_number": "（2026）桂0103执1号",
        "purpose": "冻结存款", "legal_basis": "民事诉讼法第二百四十九条"}),
    ("post", "/api/v1/cases/{case_id}/orders/{order_id}/decision"): Rule(403, 403, {
        "approve": True}),
    # Linked units serve the region: only the high court's administrators manage them.
    ("post", "/api/v1/cases/{case_id}/listings"): Rule(ACT_ON_CASE, 403, {
        "party_id": 1, "ground": 2, "conduct": "拒不申报财产"}),
    ("get", "/api/v1/cases/{case_id}/listings"): READ,
    ("get", "/api/v1/listings/{listing_id}"): READ,
    ("get", "/api/v1/listings/{listing_id}/versions"): READ,
    ("post", "/api/v1/listings/{listing_id}/decision"): Rule((200, 409), 403, {
        "approve": False, "note": "不予纳入"}),
    ("post", "/api/v1/listings/{listing_id}/deletion"): Rule(409, 403, {
        "ground": "active_performance"}),
    ("post", "/api/v1/listings/{listing_id}/revocation"): Rule(409, 403, {"reason": "错误"}),
    ("post", "/api/v1/listings/{listing_id}/extension"): Rule(409, 403, {
        "years": 1, "reason": "多次"}),
    ("post", "/api/v1/listings/{listing_id}/corrections"): Rule(409, 403, {
        "filed_by_name": "某", "grounds": "错误"}),
    ("get", "/api/v1/listings/{listing_id}/corrections"): READ,
    ("post", "/api/v1/corrections/{correction_id}/decision"): Rule(404, 404, {
        "upheld": False, "note": "不成立"}),
    ("post", "/api/v1/corrections/{correction_id}/higher-review"): Rule(404, 404, {}),
    ("post", "/api/v1/corrections/{correction_id}/higher-decision"): Rule(404, 404, {
        "upheld": False, "note": "不成立"}),
    ("post", "/api/v1/cases/{case_id}/restrictions"): Rule(ACT_ON_CASE, 403, {
        "party_id": 1, "kind": "exit"}),
    ("get", "/api/v1/cases/{case_id}/restrictions"): READ,
    ("post", "/api/v1/restrictions/{restriction_id}/lift"): Rule((200, 409), 403, {
        "reason": "security"}),
    ("post", "/api/v1/restrictions/{restriction_id}/exceptions"): Rule(409, 403, {
        "person_id": 1, "activities": ["flight"], "reason": "就医"}),
    ("patch", "/api/v1/units/{unit_id}"): Rule(403, 403, {"enabled": False}),
    ("post", "/api/v1/units/{unit_id}/keys"): Rule(403, 403),
    ("post", "/api/v1/units/{unit_id}/keys/rotate"): Rule(403, 403),
    ("delete", "/api/v1/units/{unit_id}/keys"): Rule(403, 403),
    # Partner agencies likewise: the high court's administrators only.
    ("get", "/api/v1/partners/{partner_id}"): Rule(403, 403),
    ("patch", "/api/v1/partners/{partner_id}"): Rule(403, 403, {"enabled": False}),
    ("post", "/api/v1/partners/{partner_id}/keys"): Rule(403, 403),
    ("post", "/api/v1/partners/{partner_id}/keys/{key_id}/revoke"): Rule(403, 403),
    # Field work (zhixing.field): a tip and an incident of Qingxiu; higher duty desks act too.
    ("get", "/api/v1/field/tips/{tip_id}"): READ,
    ("post", "/api/v1/field/tips/{tip_id}/triage"): Rule(200, 200, {"urgent": True}),
    ("post", "/api/v1/field/tips/{tip_id}/merge"): Rule((409, 422), (409, 422), {"into_id": 1}),
    ("post", "/api/v1/field/tips/{tip_id}/outcome"): Rule((200, 409), (200, 409), {
        "outcome": "unfounded", "note": "查无此车"}),
    ("post", "/api/v1/field/tips/{tip_id}/answers"): Rule(201, 201, {"text": "已核查"}),
    ("post", "/api/v1/cases/{case_id}/reward-offers"): Rule(ACT_ON_CASE, 403, {
        "applicant_party_id": 1, "amount_fen": 100_000}),
    ("get", "/api/v1/field/reward-offers/{offer_id}"): READ,
    ("post", "/api/v1/field/reward-offers/{offer_id}/decision"): Rule(200, 403, {
        "approve": True}),
    ("post", "/api/v1/field/reward-offers/{offer_id}/awards"): Rule(409, 403, {"tip_id": 1}),
    ("patch", "/api/v1/field/resources/{resource_id}"): Rule(404, 404, {"status": "off_duty"}),
    ("get", "/api/v1/field/dispatches/{dispatch_id}"): Rule(404, 404),
    ("post", "/api/v1/field/dispatches/{dispatch_id}/status"): Rule(404, 404, {
        "to": "en_route"}),
    ("post", "/api/v1/field/dispatches/{dispatch_id}/documents"): Rule(404, 404, files=True),
    ("post", "/api/v1/field/incidents/{incident_id}/acknowledge"): Rule((200, 409),
                                                                         (200, 409)),
    ("post", "/api/v1/field/incidents/{incident_id}/resolve"): Rule((200, 409), (200, 409),
                                                                     {}),
    # Command center: Qingxiu's request to Nanning; the hop is Nanning's to acknowledge.
    ("get", "/api/v1/command/requests/{request_id}"): READ,
    ("get", "/api/v1/command/requests/{request_id}/timeline"): READ,
    ("post", "/api/v1/command/requests/{request_id}/documents"): Rule(403, 409, files=True),
    ("post", "/api/v1/command/requests/{request_id}/result"): Rule(403, 409, {
        "outcome": "done", "summary": "已办结"}),
    # Only the asking center withdraws; Nanning holds the request but did not ask.
    ("post", "/api/v1/command/requests/{request_id}/withdraw"): Rule(200, 403, {
        "reason": "申请人撤回"}),
    ("post", "/api/v1/command/hops/{hop_id}/acknowledge"): Rule(403, 200),
    ("post", "/api/v1/command/hops/{hop_id}/hand-down"): Rule(403, 409),
    ("get", "/api/v1/command/handovers/{handover_id}"): Rule(404, 404),
    ("post", "/api/v1/command/handovers/{handover_id}/acknowledge"): Rule(404, 404),
    ("get", "/api/v1/command/roll-calls/{roll_call_id}"): Rule(404, 404),
    ("post", "/api/v1/command/roll-calls/{roll_call_id}/answer"): Rule(404, 404, {
        "status": "nothing"}),
    ("post", "/api/v1/command/escalations/{escalation_id}/acknowledge"): Rule(404, 404),
    # A video call from Qingxiu's desk to Nanning's (on duty there): Nanning answers, declines,
    # and sends candidates only after answering; Qingxiu, the caller, does not answer.
    ("get", "/api/v1/command/calls/{call_id}"): READ,
    ("post", "/api/v1/command/calls/{call_id}/answer"): Rule(403, 200, {
        "sdp": "v=0\r\ns=-\r\n"}),
    ("post", "/api/v1/command/calls/{call_id}/candidates"): Rule(200, 409, {
        "candidates": [{"candidate": "candidate:1 1 udp 1 192.0.2.2 5000 typ host"}]}),
    ("post", "/api/v1/command/calls/{call_id}/end"): Rule((200, 409), 200, {}),
}
UNITS = {("patch", "/api/v1/units/{unit_id}"), ("post", "/api/v1/units/{unit_id}/keys"),
         ("post", "/api/v1/units/{unit_id}/keys/rotate"),
         ("delete", "/api/v1/units/{unit_id}/keys"),
         ("get", "/api/v1/partners/{partner_id}"), ("patch", "/api/v1/partners/{partner_id}"),
         ("post", "/api/v1/partners/{partner_id}/keys"),
         ("post", "/api/v1/partners/{partner_id}/keys/{key_id}/revoke")}
UNRELATED_EXCEPTIONS = {("get", "/api/v1/courts/{code}")} | UNITS  # not court records


def _api_record_routes() -> set[tuple[str, str]]:
    spec = create_app(start_worker=False).openapi()
    return {(method, path) for path, item in spec["paths"].items() for method in item
            if "{" in path and path.startswith("/api/")}


def test_every_record_route_is_covered() -> None:
    routes = _api_record_routes()
    assert routes, "no routes found: the enumeration itself is broken"
    assert routes == set(RECORD_ROUTES)


@pytest.fixture
def people(client: TestClient, auth: AuthHeaders) -> Callable[[str], dict[str, str]]:
    """Users with every role in Qingxiu (桂0103), Nanning (桂01), Liunan (桂0204)."""
    admin = auth("admin")
    for name, court in (("m.qingxiu", "桂0103"), ("m.nanning", "桂01"), ("m.liunan", "桂0204")):
        resp = client.post("/api/v1/users", headers=admin, json={
            "username": name, "display_name": name, "court_code": court,
            "password": PASSWORD, "roles": POWERFUL})
        assert resp.status_code == 201, resp.text
    return auth


def _expand(path: str, ids: dict[str, str]) -> str:
    for key, value in ids.items():
        path = path.replace("{" + key + "}", value)
    return path


@pytest.fixture
def targets(client: TestClient, people: Callable[[str], dict[str, str]]) -> dict[str, str]:
    """One record of each kind, all belonging to Qingxiu (桂0103)."""
    case = client.post("/api/v1/cases", headers=people("qingxiu.officer"),
                       json=case_payload(filed_days_ago=30)).json()
    user = client.get("/api/v1/me", headers=people("m.qingxiu")).json()
    officer = people("qingxiu.officer")
    debtor = next(p["id"] for p in case["parties"] if p["role"] == "debtor")
    listing = client.post(f"/api/v1/cases/{case['id']}/listings", headers=officer, json={
        "party_id": debtor, "ground": 2, "conduct": "拒不申报财产"}).json()
    client.post(f"/api/v1/cases/{case['id']}/transitions", headers=officer,
                json={"action": "advance", "to": "notice_served"})
    restriction = client.post(f"/api/v1/cases/{case['id']}/restrictions", headers=officer,
                              json={"party_id": debtor, "kind": "exit"}).json()
    assist = client.post("/api/v1/command/requests", headers=people("m.qingxiu"), json={
        "kind": "verify_lead", "place_court_code": "桂0102", "place": "兴宁区某小区",
        "subject": "核查线索", "details": "核查被执行人住址", "to_court_code": "桂01"}).json()
    desk = people("m.qingxiu")
    tip = client.post("/api/v1/field/tips", headers=desk, json={"content": "车在酒店"}).json()
    applicant = next(p["id"] for p in case["parties"] if p["role"] == "applicant")
    offer = client.post(f"/api/v1/cases/{case['id']}/reward-offers", headers=officer, json={
        "applicant_party_id": applicant, "amount_fen": 100_000}).json()
    incident = client.post("/api/v1/field/incidents", headers=desk, json={}).json()
    on_duty(client, people, "桂01", ("leader", "m.nanning"))
    call = client.post("/api/v1/command/calls", headers=desk, json={
        "to_court_code": "桂01", "sdp": "v=0\r\ns=-\r\n"}).json()
    return {"listing_id": str(listing["id"]), "restriction_id": str(restriction["id"]),
            "tip_id": str(tip["id"]), "offer_id": str(offer["id"]),
            "incident_id": str(incident["id"]), "resource_id": "999999",
            "dispatch_id": "999999",
            "correction_id": "999999", "user_id": str(user["id"]), "case_id": str(case["id"]),
            "asset_id": "999999",
            "doc_id": "999999", "reason": "audit", "code": "桂0103", "inquiry_id": "999999",
            "order_id": "999999", "unit_id": "999999", "partner_id": "999999",
            "key_id": "zxk_999999", "request_id": str(assist["id"]),
            "hop_id": str(assist["hops"][0]["id"]), "handover_id": "999999",
            "roll_call_id": "999999", "escalation_id": "999999", "call_id": str(call["id"])}


def _call(client: TestClient, method: str, url: str, rule: Rule,
          headers: dict[str, str]) -> int:
    if rule.files:
        return client.post(url, headers=headers, files={
            "file": ("a.pdf", b"%PDF-1.4 test", "application/pdf")}).status_code
    return client.request(method.upper(), url, headers=headers, json=rule.body).status_code


def _ok(status: int, expected: int | tuple[int, ...]) -> bool:
    return status in (expected if isinstance(expected, tuple) else (expected,))


@pytest.mark.parametrize(("method", "path"), sorted(RECORD_ROUTES))
def test_record_route(client: TestClient, people: Callable[[str], dict[str, str]],
                      targets: dict[str, str], method: str, path: str) -> None:
    rule = RECORD_ROUTES[(method, path)]
    url = _expand(path, targets)
    own = "qingxiu.officer" if "/cases/" in path else "m.qingxiu"
    assert _call(client, method, url, rule, {}) == 401
    unrelated = _call(client, method, url, rule, people("m.liunan"))
    if (method, path) not in UNRELATED_EXCEPTIONS:
        assert unrelated == 404, (method, path, "unrelated", unrelated)
    if (method, path) in UNITS:
        assert unrelated == 403
        assert _call(client, method, url, rule, people("admin")) == 404  # the region's admin
    higher = _call(client, method, url, rule, people("m.nanning"))
    assert _ok(higher, rule.higher), (method, path, "higher", higher)
    mine = _call(client, method, url, rule, people(own))
    assert _ok(mine, rule.own), (method, path, "own", mine)


@pytest.mark.parametrize(("actor", "visible", "hidden"), [
    ("m.qingxiu", {"m.qingxiu", "qingxiu.officer"}, {"m.nanning", "m.liunan", "admin"}),
    ("m.nanning", {"m.qingxiu", "m.nanning"}, {"m.liunan", "admin", "liunan.officer"}),
])
def test_user_lists_stay_within_reach(client: TestClient,
                                      people: Callable[[str], dict[str, str]],
                                      actor: str, visible: set[str], hidden: set[str]) -> None:
    names = {u["username"] for u in client.get("/api/v1/users", headers=people(actor),
                                               params={"limit": 200}).json()["items"]}
    assert visible <= names and not (hidden & names)


def test_case_lists_stay_within_reach(client: TestClient,
                                      people: Callable[[str], dict[str, str]],
                                      targets: dict[str, str]) -> None:
    def ids(who: str) -> set[int]:
        items = client.get("/api/v1/cases", headers=people(who)).json()["items"]
        return {c["id"] for c in items}

    case_id = int(targets["case_id"])
    assert case_id in ids("m.nanning") and case_id in ids("admin")
    assert case_id not in ids("m.liunan")
    bad = client.get("/api/v1/cases", headers=people("m.liunan"), params={"court": "桂0103"})
    assert bad.status_code == 422 and bad.json()["error"]["code"] == "court_not_found"


def test_audit_trail_stays_within_reach(client: TestClient,
                                        people: Callable[[str], dict[str, str]]) -> None:
    records = client.get("/api/v1/audit", headers=people("m.liunan"),
                         params={"limit": 200}).json()["items"]
    assert len({r["court_id"] for r in records}) == 1  # only Liunan's own records
    everything = client.get("/api/v1/audit", headers=people("admin"),
                            params={"limit": 200}).json()["items"]
    assert len({r["court_id"] for r in everything}) > 1


def test_machine_keys_cannot_use_people_routes(client: TestClient) -> None:
    from zhixing.core.actor import SYSTEM
    from zhixing.core.db import transaction
    from zhixing.courts.identity import issue_api_key
    from zhixing.courts.models import ClientKind

    with transaction() as session:
        key_id, secret, _ = issue_api_key(session, ClientKind.PARTNER, "caac", "民航", [], SYSTEM)
    headers = {"Authorization": f"Bearer {key_id}.{secret}"}
    for url in ("/api/v1/users", "/api/v1/cases", "/api/v1/me"):
        resp = client.get(url, headers=headers)
        assert resp.status_code == 403 and resp.json()["error"]["code"] == "machine_forbidden"
    bad = client.get("/api/v1/users", headers={"Authorization": f"Bearer {key_id}.wrong"})
    assert bad.status_code == 401


