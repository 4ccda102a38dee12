"""Helpers for the command-center tests: duty users, and a case to ask for."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from tests.cases.factories import case_payload, person
from tests.conftest import PASSWORD, AuthHeaders, HttpClient


def duty_user(client: HttpClient, auth: AuthHeaders, username: str, court: str,
              roles: tuple[str, ...] = ("duty_officer", "duty_leader")) -> dict[str, str]:
    resp = client.post("/api/v1/users", headers=auth("admin"), json={
        "username": username, "display_name": f"值班 {username}", "court_code": court,
        "password": PASSWORD, "roles": list(roles)})
    assert resp.status_code == 201, resp.text
    return auth(username)


def liunan_case(client: HttpClient, auth: AuthHeaders) -> dict[str, Any]:
    """A Liunan (桂0204, under Liuzhou) case against debtor Zeng."""
    resp = client.post("/api/v1/cases", headers=auth("liunan.officer"), json=case_payload(
        filed_days_ago=20, officer_username="liunan.officer", title_issuer="柳州市柳南区人民法院",
        debtors=[person("曾某")]))
    assert resp.status_code == 201, resp.text
    result: dict[str, Any] = resp.json()
    return result


def zeng_request(case_id: int | None = None, **over: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "kind": "seize_vehicle", "urgency": "urgent", "place_court_code": "桂0305",
        "place": "桂林市七星区某酒店停车场", "subject": "被执行人曾某的车辆 桂B·7Z311",
        "details": "申请执行人杨某看到被执行人曾某的车停在七星区某酒店，请求扣押。"}
    if case_id is not None:
        body["case_id"] = case_id
    body.update(over)
    return body


def on_duty(client: HttpClient, auth: Callable[[str], dict[str, str]], court: str,
            *members: tuple[str, str], hours_ago: int = 1) -> dict[str, Any]:
    """A shift at ``court`` running now, with ``(role, username)`` members (a named duty
    leader is added when none of them leads), set up by the region's administrator."""
    now = datetime.now(UTC).replace(microsecond=0)
    body = [{"role": role, "username": username} for role, username in members]
    if not any(role == "leader" for role, _ in members):
        body.append({"role": "leader", "name": "值班领导 唐"})
    resp = client.post("/api/v1/command/shifts", headers=auth("admin"), json={
        "court_code": court, "starts_at": (now - timedelta(hours=hours_ago)).isoformat(),
        "ends_at": (now + timedelta(hours=24 - hours_ago)).isoformat(), "members": body})
    assert resp.status_code == 201, resp.text
    result: dict[str, Any] = resp.json()
    return result
