from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import event, func, select
from sqlalchemy.orm import Session

from tests.conftest import PASSWORD, AuthHeaders
from zhixing.core.db import get_engine, session_factory
from zhixing.core.models import AuditRecord
from zhixing.core.settings import get_settings
from zhixing.courts import identity
from zhixing.courts.models import User

TOKENS = "/api/v1/auth/tokens"


def _new_user(client: TestClient, admin: dict[str, str], username: str, court: str,
              roles: list[str]) -> int:
    resp = client.post("/api/v1/users", headers=admin, json={
        "username": username, "display_name": username, "court_code": court,
        "password": PASSWORD, "roles": roles})
    assert resp.status_code == 201, resp.text
    return int(resp.json()["id"])


class TestTokens:
    def test_login_and_me(self, client: TestClient) -> None:
        resp = client.post(TOKENS, json={"username": "qingxiu.officer", "password": PASSWORD})
        assert resp.status_code == 201
        headers = {"Authorization": f"Bearer {resp.json()['token']}"}
        me = client.get("/api/v1/me", headers=headers).json()
        assert me["court_code"] == "桂0103" and me["roles"] == ["officer"]

    def test_wrong_password_and_unknown_user_look_the_same(self, client: TestClient) -> None:
        wrong = client.post(TOKENS, json={"username": "admin", "password": "nope-nope-nope"})
        unknown = client.post(TOKENS, json={"username": "nobody", "password": "nope-nope-nope"})
        assert wrong.status_code == unknown.status_code == 401
        assert wrong.json() == unknown.json()
        assert wrong.json()["error"]["code"] == "invalid_credentials"

    def test_repeated_failures_are_throttled(self, client: TestClient) -> None:
        limit = get_settings().login_max_failures
        for _ in range(limit):
            assert client.post(TOKENS, json={"username": "admin",
                                              "password": "bad-password"}).status_code == 401
        blocked = client.post(TOKENS, json={"username": "admin", "password": PASSWORD})
        assert blocked.status_code == 429
        assert blocked.json()["error"]["code"] == "rate_limited"
        assert int(blocked.headers["retry-after"]) > 0

    def test_revoked_token_stops_working(self, client: TestClient, auth: AuthHeaders) -> None:
        headers = auth("admin")
        assert client.delete(f"{TOKENS}/current", headers=headers).status_code == 204
        resp = client.get("/api/v1/me", headers=headers)
        assert resp.status_code == 401 and resp.json()["error"]["code"] == "invalid_token"

    @pytest.mark.parametrize("header", ["Basic abc", "Bearer", "Bearer zxt_forged", "Token x"])
    def test_bad_authorization_headers(self, client: TestClient, header: str) -> None:
        resp = client.get("/api/v1/me", headers={"Authorization": header})
        assert resp.status_code == 401
        assert set(resp.json()) == {"error"}

    def test_anonymous_is_refused(self, client: TestClient) -> None:
        assert client.get("/api/v1/users").status_code == 401

    def test_authenticating_costs_two_statements(self, client: TestClient,
                                                 auth: AuthHeaders) -> None:
        """Every request authenticates: the credential with its user, court and roles in one
        statement, the court's subtree in a second (lazy loads made it six)."""
        raw = auth("qingxiu.approver")["Authorization"].split()[1]
        statements: list[str] = []

        def count(*args: object) -> None:
            if not str(args[2]).startswith("BEGIN"):  # SQLite's BEGIN IMMEDIATE
                statements.append(str(args[2]))

        event.listen(get_engine(), "before_cursor_execute", count)
        try:
            with session_factory()() as session:
                token = identity.resolve_api_token(session, raw)
                assert token is not None
                actor = identity.actor_for(session, token.user, None)
        finally:
            event.remove(get_engine(), "before_cursor_execute", count)
        assert actor.roles == {"approver", "officer"} and actor.court_code == "桂0103"
        assert actor.court_id in actor.visible_court_ids and len(actor.visible_court_ids) == 1
        assert len(statements) == 2, statements

    def test_deactivated_user_loses_access(self, client: TestClient, auth: AuthHeaders) -> None:
        officer = auth("qingxiu.officer")
        uid = client.get("/api/v1/me", headers=officer).json()["id"]
        resp = client.patch(f"/api/v1/users/{uid}", headers=auth("admin"),
                            json={"is_active": False})
        assert resp.status_code == 200
        assert client.get("/api/v1/me", headers=officer).status_code == 401


class TestBadInput:
    def test_malformed_json(self, client: TestClient, db: Session) -> None:
        resp = client.post(TOKENS, content=b"{not json", headers={"content-type":
                                                                  "application/json"})
        assert resp.status_code == 400 and resp.json()["error"]["code"] == "malformed_json"

    def test_unknown_field(self, client: TestClient, auth: AuthHeaders, db: Session) -> None:
        before = db.scalar(select(func.count()).select_from(User))
        resp = client.post("/api/v1/users", headers=auth("admin"), json={
            "username": "new.one", "display_name": "x", "court_code": "桂", "password": PASSWORD,
            "roles": ["officer"], "is_superuser": True})
        assert resp.status_code == 422
        assert resp.json()["error"] == {**resp.json()["error"], "code": "unknown_field",
                                        "field": "is_superuser"}
        assert db.scalar(select(func.count()).select_from(User)) == before

    def test_wrong_type(self, client: TestClient, auth: AuthHeaders) -> None:
        resp = client.patch("/api/v1/users/1", headers=auth("admin"), json={"is_active": "maybe"})
        assert resp.status_code == 422 and resp.json()["error"]["field"] == "is_active"

    def test_oversized_body(self, client: TestClient) -> None:
        big = b'{"username": "' + b"a" * (get_settings().max_body_bytes + 10) + b'"}'
        resp = client.post(TOKENS, content=big, headers={"content-type": "application/json"})
        assert resp.status_code == 413 and resp.json()["error"]["code"] == "body_too_large"

    @pytest.mark.parametrize(("field", "value", "code"), [
        ("username", "Bad Name!", "invalid_username"),
        ("password", "short", "password_too_short"),
        ("roles", ["emperor"], "unknown_role"),
        ("court_code", "桂9999", "court_not_found"),
    ])
    def test_user_validation(self, client: TestClient, auth: AuthHeaders, db: Session,
                             field: str, value: object, code: str) -> None:
        body = {"username": "valid.name", "display_name": "x", "court_code": "桂0103",
                "password": PASSWORD, "roles": ["officer"], field: value}
        resp = client.post("/api/v1/users", headers=auth("admin"), json=body)
        assert resp.status_code in (404, 422)
        assert resp.json()["error"]["code"] == code
        assert resp.json()["error"]["field"] == field
        assert db.scalar(select(User.id).where(User.username == "valid.name")) is None

    def test_duplicate_username(self, client: TestClient, auth: AuthHeaders) -> None:
        resp = client.post("/api/v1/users", headers=auth("admin"), json={
            "username": "admin", "display_name": "x", "court_code": "桂", "password": PASSWORD,
            "roles": ["officer"]})
        assert resp.status_code == 409 and resp.json()["error"]["code"] == "username_taken"

    @pytest.mark.parametrize("cursor", ["%%%", "bm90LWpzb24", "WyJhIl0"])
    def test_bad_cursor(self, client: TestClient, auth: AuthHeaders, cursor: str) -> None:
        resp = client.get("/api/v1/users", headers=auth("admin"), params={"cursor": cursor})
        assert resp.status_code == 422 and resp.json()["error"]["code"] == "invalid_cursor"

    def test_bad_limit(self, client: TestClient, auth: AuthHeaders) -> None:
        resp = client.get("/api/v1/users", headers=auth("admin"), params={"limit": 0})
        assert resp.status_code == 422


class TestUsers:
    def test_pagination_walks_every_user_once(self, client: TestClient,
                                               auth: AuthHeaders) -> None:
        admin = auth("admin")
        for i in range(5):
            _new_user(client, admin, f"page.user{i}", "桂0103", ["officer"])
        seen: list[str] = []
        cursor = None
        while True:
            params: dict[str, str | int] = {"limit": 4}
            if cursor:
                params["cursor"] = cursor
            page = client.get("/api/v1/users", headers=admin, params=params).json()
            seen += [u["username"] for u in page["items"]]
            cursor = page["next_cursor"]
            if not cursor:
                break
        assert len(seen) == len(set(seen)) == 14

    def test_admin_changes_are_audited(self, client: TestClient, auth: AuthHeaders,
                                       db: Session) -> None:
        uid = _new_user(client, auth("admin"), "audited.user", "桂02", ["officer"])
        client.patch(f"/api/v1/users/{uid}", headers=auth("admin"), json={"roles": ["approver"]})
        actions = db.scalars(select(AuditRecord.action).where(
            AuditRecord.object_type == "user", AuditRecord.object_id == str(uid))).all()
        assert actions == ["user.created", "user.updated"]

    def test_officer_may_not_create_users(self, client: TestClient, auth: AuthHeaders) -> None:
        resp = client.post("/api/v1/users", headers=auth("qingxiu.officer"), json={
            "username": "x.y.z", "display_name": "x", "court_code": "桂0103",
            "password": PASSWORD, "roles": ["officer"]})
        assert resp.status_code == 403 and resp.json()["error"]["code"] == "role_forbidden"

    def test_courts_listing(self, client: TestClient, auth: AuthHeaders) -> None:
        headers = auth("qingxiu.officer")
        items = client.get("/api/v1/courts", headers=headers,
                           params={"parent": "桂03"}).json()["items"]
        assert "桂0305" in {c["code"] for c in items}
        assert all(c["level"] == "basic" for c in items)
        one = client.get("/api/v1/courts/桂0305", headers=headers).json()
        assert one["parent_code"] == "桂03" and one["command_center"].endswith("执行指挥中心")
        assert client.get("/api/v1/courts/桂9999", headers=headers).status_code == 404
