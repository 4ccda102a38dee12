"""The demo's command data: a roster at every center, the named duty users on duty at theirs."""

from __future__ import annotations

from fastapi.testclient import TestClient

from tests.conftest import AuthHeaders
from zhixing.command.demo import seed_command
from zhixing.core.db import transaction


def test_seed_command(client: TestClient, auth: AuthHeaders) -> None:
    with transaction() as session:
        made = seed_command(session)
    assert made["shifts"] == 126 * 8 and made["requests"] == 3
    with transaction() as session:
        assert seed_command(session) == {"shifts": 0, "requests": 0}  # once
    on = client.get("/api/v1/command/duty", headers=auth("gx.duty"),
                    params={"limit": 200}).json()["items"]
    assert len(on) == 126 and all(i["shift"] for i in on)
    leaders = {i["center"]["court_code"]: [m["name"] for m in i["shift"]["members"]
                                           if m["role"] == "leader"] for i in on}
    assert leaders["桂"] == ["值班领导 黄建"] and leaders["桂03"] == ["值班员 莫林"]
    officers = {i["center"]["court_code"]: [m["name"] for m in i["shift"]["members"]
                                            if m["role"] == "officer"] for i in on}
    assert officers["桂02"] == ["值班员 覃敏"]
    reqs = client.get("/api/v1/command/requests", headers=auth("gx.duty")).json()["items"]
    assert sorted(r["status"] for r in reqs) == ["done", "open", "open"]
