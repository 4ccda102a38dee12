"""The access matrix: a user reaches their own court and the courts below it, nothing else.

Every API route with a record in its path is listed in RECORD_ROUTES; a route added without an
entry fails ``test_every_record_route_is_covered``, so new routes cannot skip this check.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient

from tests.conftest import PASSWORD, AuthHeaders
from zhixing.app import create_app

POWERFUL = ["admin", "auditor", "officer", "approver", "duty_leader", "duty_officer", "bailiff"]

# route path -> (method, body) for each method of the route that touches one record
RECORD_ROUTES: dict[str, list[tuple[str, dict[str, object] | None]]] = {
    "/api/v1/users/{user_id}": [("GET", None), ("PATCH", {"display_name": "hijacked"})],
    "/api/v1/courts/{code}": [],  # courts are public reference data, readable by everyone
}


def _api_record_routes() -> set[str]:
    app = create_app(start_worker=False)
    return {r.path for r in app.routes if isinstance(r, APIRoute) and "{" in r.path
            and r.path.startswith("/api/")}


def test_every_record_route_is_covered() -> None:
    assert _api_record_routes() <= set(RECORD_ROUTES)


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


def _user_id(client: TestClient, headers: dict[str, str]) -> int:
    return int(client.get("/api/v1/me", headers=headers).json()["id"])


# (actor, target, expected status): own court, subordinate court, unrelated, upward, sibling
CASES = [
    ("m.qingxiu", "m.qingxiu", 200),
    ("m.nanning", "m.qingxiu", 200),  # a higher court sees its subordinates
    ("admin", "m.liunan", 200),  # the high court sees every court
    ("m.liunan", "m.qingxiu", 404),  # unrelated court
    ("m.qingxiu", "m.nanning", 404),  # a lower court does not see upwards
    ("m.nanning", "m.liunan", 404),  # another city's court
]


@pytest.mark.parametrize(("actor", "target", "expected"), CASES)
@pytest.mark.parametrize("route", sorted(RECORD_ROUTES))
def test_record_routes(client: TestClient, people: Callable[[str], dict[str, str]],
                       actor: str, target: str, expected: int, route: str) -> None:
    target_id = _user_id(client, people(target))
    for method, body in RECORD_ROUTES[route]:
        url = route.replace("{user_id}", str(target_id))
        resp = client.request(method, url, headers=people(actor), json=body)
        assert resp.status_code == expected, (method, url, resp.text)
        if expected == 404:
            assert resp.json()["error"]["code"] == "user_not_found"
    # Nothing was changed by the refused requests.
    own = client.get(f"/api/v1/users/{target_id}", headers=people(target)).json()
    if expected == 404:
        assert own["display_name"] == target


@pytest.mark.parametrize(("actor", "visible", "hidden"), [
    ("m.qingxiu", {"m.qingxiu", "qingxiu.officer"}, {"m.nanning", "m.liunan", "admin"}),
    ("m.nanning", {"m.qingxiu", "m.nanning"}, {"m.liunan", "admin", "liunan.officer"}),
])
def test_lists_stay_within_reach(client: TestClient, people: Callable[[str], dict[str, str]],
                                 actor: str, visible: set[str], hidden: set[str]) -> None:
    names = {u["username"] for u in client.get("/api/v1/users", headers=people(actor),
                                               params={"limit": 200}).json()["items"]}
    assert visible <= names and not (hidden & names)


def test_audit_trail_stays_within_reach(client: TestClient,
                                        people: Callable[[str], dict[str, str]]) -> None:
    records = client.get("/api/v1/audit", headers=people("m.liunan"),
                         params={"limit": 200}).json()["items"]
    liunan_ids = {r["court_id"] for r in records}
    assert len(liunan_ids) == 1  # only Liunan's own records
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
    resp = client.get("/api/v1/users", headers=headers)
    assert resp.status_code == 403 and resp.json()["error"]["code"] == "machine_forbidden"
    bad = client.get("/api/v1/users", headers={"Authorization": f"Bearer {key_id}.wrong"})
    assert bad.status_code == 401
