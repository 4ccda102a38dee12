"""Property-based fuzzing of the whole API from its own OpenAPI (schemathesis, bounded).

No generated request may produce a 5xx, an undocumented status code, or a body that breaks the
published schema. A longer pass: the same command with a larger ``-n`` (docs/development.md).
"""

from __future__ import annotations

import json
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from tests.cases.factories import case_payload
from tests.conftest import PASSWORD, AuthHeaders
from tests.support.database import ScratchDatabase
from tests.support.server import running_server

pytestmark = pytest.mark.slow


def test_regressions_found_by_fuzzing(client: TestClient, auth: AuthHeaders) -> None:
    huge = "9" * 40  # past 64 bits: overflowed the SQLite driver (500)
    h = auth("qingxiu.officer")
    assert client.get(f"/api/v1/cases/{huge}", headers=h).status_code == 422
    assert client.patch(f"/api/v1/users/{huge}", headers=auth("admin"), json={}
                        ).status_code == 422
    number = client.post("/api/v1/cases", json=case_payload(), headers=h).json()["case_number"]
    # a non-ASCII query code made hmac.compare_digest raise (500)
    resp = client.post("/api/v1/public/case-progress",
                       json={"case_number": number, "query_code": "码码码"})
    assert resp.status_code == 404


def test_schemathesis_finds_no_server_errors(test_db: ScratchDatabase, tmp_path: Path) -> None:
    with running_server(test_db.url, ZHIXING_EMBEDDED_WORKER="false") as base:
        req = urllib.request.Request(  # noqa: S310 (loopback test server)
            f"{base}/api/v1/auth/tokens", method="POST",
            data=json.dumps({"username": "qingxiu.approver", "password": PASSWORD}).encode(),
            headers={"content-type": "application/json"})
        with urllib.request.urlopen(req, timeout=10) as resp:  # noqa: S310
            token = json.loads(resp.read())["token"]
        result = subprocess.run(
            [sys.executable, "-m", "schemathesis.cli", "run", f"{base}/api/v1/openapi.json",
             "-H", f"Authorization: Bearer {token}",
             "-c", "not_a_server_error,response_schema_conformance,status_code_conformance",
             "-n", "8", "--generation-deterministic",
             "--exclude-path", "/api/v1/auth/tokens/current"],
            capture_output=True, text=True, timeout=600, cwd=tmp_path)
    assert result.returncode == 0, result.stdout[-6000:]
