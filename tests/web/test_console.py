from __future__ import annotations

import re

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from tests.conftest import PASSWORD
from zhixing.core import clock
from zhixing.core.models import AuditRecord
from zhixing.web.deps import SESSION_COOKIE


def _csrf(html: str) -> str:
    match = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert match, "no CSRF field on the page"
    return match.group(1)


def login(client: TestClient, username: str, password: str = PASSWORD) -> str:
    page = client.get("/login")
    resp = client.post("/login", data={"username": username, "password": password,
                                       "csrf_token": _csrf(page.text), "next": "/"},
                       follow_redirects=False)
    assert resp.status_code == 303, resp.text
    home = client.get("/")
    assert home.status_code == 200
    return _csrf(home.text)


class TestLogin:
    def test_console_requires_login(self, client: TestClient) -> None:
        resp = client.get("/admin/users?cursor=x", follow_redirects=False)
        assert resp.status_code == 303
        assert resp.headers["location"].startswith("/login?next=/admin/users")

    def test_login_shows_court_and_roles(self, client: TestClient) -> None:
        login(client, "qingxiu.approver")
        home = client.get("/").text
        assert "青秀区法院" in home and "桂0103" in home
        assert "审批人" in home and "执行员" in home  # roles, in Chinese by default
        assert "工作台" in home

    def test_wrong_password_stays_on_login(self, client: TestClient) -> None:
        page = client.get("/login")
        resp = client.post("/login", data={"username": "admin", "password": "wrong-wrong",
                                           "csrf_token": _csrf(page.text)})
        assert resp.status_code == 401
        assert "用户名或密码错误" in resp.text
        assert SESSION_COOKIE not in client.cookies

    def test_login_form_needs_its_csrf_token(self, client: TestClient) -> None:
        client.get("/login")
        resp = client.post("/login", data={"username": "admin", "password": PASSWORD,
                                           "csrf_token": "forged"})
        assert resp.status_code == 403
        assert SESSION_COOKIE not in client.cookies

    def test_session_rotates_on_login(self, client: TestClient) -> None:
        login(client, "admin")
        first = client.cookies[SESSION_COOKIE]
        login(client, "admin")
        assert client.cookies[SESSION_COOKIE] != first

    def test_open_redirect_is_refused(self, client: TestClient) -> None:
        page = client.get("/login")
        resp = client.post("/login", data={"username": "admin", "password": PASSWORD,
                                           "csrf_token": _csrf(page.text),
                                           "next": "//evil.example/"}, follow_redirects=False)
        assert resp.headers["location"] == "/"

    def test_logout_needs_csrf_and_ends_the_session(self, client: TestClient,
                                                    db: Session) -> None:
        csrf = login(client, "admin")
        refused = client.post("/logout", data={"csrf_token": "nope"})
        assert refused.status_code == 403 and refused.json()["error"]["code"] == "csrf_failed"
        assert client.get("/").status_code == 200
        client.post("/logout", data={"csrf_token": csrf}, follow_redirects=False)
        assert client.get("/", follow_redirects=False).status_code == 303
        actions = db.scalars(select(AuditRecord.action).order_by(AuditRecord.seq)).all()
        assert actions[-1] == "auth.logout" and "auth.login" in actions

    def test_idle_session_expires(self, client: TestClient) -> None:
        from datetime import timedelta

        login(client, "admin")
        clock.set_offset(timedelta(minutes=31))
        assert client.get("/", follow_redirects=False).status_code == 303


class TestPages:
    @pytest.mark.parametrize("path", ["/", "/courts", "/courts?q=七星", "/admin/users", "/audit"])
    def test_pages_render_for_admin(self, client: TestClient, path: str) -> None:
        login(client, "admin")
        resp = client.get(path)
        assert resp.status_code == 200 and "<main" in resp.text

    def test_officer_cannot_open_user_admin(self, client: TestClient) -> None:
        login(client, "qingxiu.officer")
        assert client.get("/admin/users").status_code == 403
        assert "/admin/users" not in client.get("/").text  # not in the navigation either

    def test_create_user_from_console(self, client: TestClient) -> None:
        csrf = login(client, "admin")
        resp = client.post("/admin/users", data={
            "username": "console.made", "display_name": "控制台用户", "court_code": "桂0305",
            "password": PASSWORD, "roles": ["bailiff"], "csrf_token": csrf})
        assert resp.status_code == 200 and "console.made" in resp.text
        bad = client.post("/admin/users", data={
            "username": "x", "display_name": "y", "court_code": "桂0305",
            "password": PASSWORD, "roles": ["bailiff"], "csrf_token": csrf})
        assert bad.status_code == 422 and "invalid_username" in bad.text

    def test_english_switch(self, client: TestClient) -> None:
        login(client, "admin")
        client.get("/lang/en?next=/courts")
        page = client.get("/courts").text
        assert "<h1>Courts & command centers</h1>" in page and "Qingxiu" in page
        client.get("/lang/zh_CN")
        assert "法院与指挥中心" in client.get("/courts").text

    def test_stored_markup_is_escaped(self, client: TestClient) -> None:
        csrf = login(client, "admin")
        client.post("/admin/users", data={
            "username": "xss.user", "display_name": "<script>alert(1)</script>",
            "court_code": "桂", "password": PASSWORD, "roles": ["officer"], "csrf_token": csrf})
        page = client.get("/admin/users").text
        assert "<script>alert(1)</script>" not in page
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page


class TestOps:
    def test_health_and_readiness(self, client: TestClient) -> None:
        assert client.get("/healthz").json() == {"status": "ok"}
        ready = client.get("/readyz")
        assert ready.status_code == 200 and ready.json()["status"] == "ready"

    def test_metrics(self, client: TestClient) -> None:
        client.get("/healthz")
        body = client.get("/metrics").text
        assert "zhixing_http_requests_total" in body and 'route="/healthz"' in body

    def test_request_id_and_security_headers(self, client: TestClient) -> None:
        resp = client.get("/login", headers={"X-Request-ID": "abc-123"})
        assert resp.headers["x-request-id"] == "abc-123"
        csp = resp.headers["content-security-policy"]
        assert "script-src 'self'" in csp and "frame-ancestors 'none'" in csp
        assert resp.headers["x-content-type-options"] == "nosniff"
        assert "x-request-id" in client.get("/healthz", headers={"X-Request-ID": "bad id!"}).headers

    def test_unknown_route_uses_the_error_shape(self, client: TestClient) -> None:
        resp = client.get("/api/v1/nothing-here")
        assert resp.status_code == 404 and resp.json()["error"]["code"] == "not_found"
        wrong_method = client.put("/api/v1/me")
        assert wrong_method.status_code == 405
        assert wrong_method.json()["error"]["code"] == "method_not_allowed"

    def test_static_assets_are_vendored(self, client: TestClient) -> None:
        assert client.get("/static/vendor/htmx/htmx.min.js").status_code == 200
        assert client.get("/static/vendor/echarts/echarts.min.js").status_code == 200
        assert client.get("/static/css/console.css").status_code == 200
