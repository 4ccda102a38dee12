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


# Every role is fuzzed, and anonymous callers, split between the two backends' runs (CI runs
# them side by side, and each identity costs a pass over the whole API): (user or None for
# anonymous, examples per operation). The long pass (docs/development.md) takes any of them.
IDENTITIES: dict[str, tuple[tuple[str | None, int], ...]] = {
    "postgresql": (("qingxiu.approver", 6), ("admin", 2)),  # officer + approver; the region
    "sqlite": ((None, 1), ("qixing.bailiff", 2), ("liuzhou.duty", 2), ("gx.duty", 2),
               ("auditor", 2)),
}


def _token(base: str, username: str) -> str:
    req = urllib.request.Request(  # noqa: S310 (loopback test server)
        f"{base}/api/v1/auth/tokens", method="POST",
        data=json.dumps({"username": username, "password": PASSWORD}).encode(),
        headers={"content-type": "application/json"})
    with urllib.request.urlopen(req, timeout=10) as resp:  # noqa: S310
        return str(json.loads(resp.read())["token"])


def test_schemathesis_finds_no_server_errors(test_db: ScratchDatabase, tmp_path: Path) -> None:
    failures: list[str] = []
    with running_server(test_db.url, ZHIXING_EMBEDDED_WORKER="false") as base:
        # Every token first: the fuzzing's wrong passwords soon throttle logins from loopback.
        tokens = {name: _token(base, name) for name, _ in IDENTITIES[test_db.backend] if name}
        for username, examples in IDENTITIES[test_db.backend]:
            auth = ["-H", f"Authorization: Bearer {tokens[username]}"] if username else []
            result = subprocess.run(
                [sys.executable, "-m", "schemathesis.cli", "run",
                 f"{base}/api/v1/openapi.json", *auth,
                 "-c", "not_a_server_error,response_schema_conformance,status_code_conformance",
                 "-n", str(examples), "--generation-deterministic",
                 "--exclude-path", "/api/v1/auth/tokens/current"],
                capture_output=True, text=True, timeout=600, cwd=tmp_path)
            if result.returncode != 0:
                failures.append(f"--- as {username or 'anonymous'} ---\n"
                                f"{result.stdout[-6000:]}")
    assert not failures, "\n".join(failures)
