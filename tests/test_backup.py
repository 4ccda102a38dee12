"""The backup drill (scripts/backup-check.sh): dump, restore into a fresh database, verify the
audit chain and the row counts; a broken chain in the source fails the drill."""

from __future__ import annotations

import os
import subprocess

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, text

from tests.cases.factories import case_payload
from tests.conftest import AuthHeaders
from tests.support.database import ScratchDatabase
from tests.support.server import ROOT

pytestmark = [pytest.mark.slow, pytest.mark.skipif(
    os.environ.get("ZHIXING_TEST_BACKEND", "sqlite") != "postgresql",
    reason="pg_dump and pg_restore: the PostgreSQL backup")]


def drill(url: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["bash", "scripts/backup-check.sh", url], cwd=ROOT, text=True,
                          capture_output=True, timeout=300, check=False)


def test_a_restored_backup_has_every_row_and_an_intact_chain(
        test_db: ScratchDatabase, client: TestClient, auth: AuthHeaders) -> None:
    for _ in range(3):  # audited work in several tables
        resp = client.post("/api/v1/cases", headers=auth("qingxiu.officer"),
                           json=case_payload())
        assert resp.status_code == 201, resp.text
    done = drill(test_db.url)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "audit chain intact" in done.stdout and "same row counts" in done.stdout


def test_a_tampered_source_fails_the_drill(test_db: ScratchDatabase, client: TestClient,
                                           auth: AuthHeaders, observer_engine: Engine) -> None:
    resp = client.post("/api/v1/cases", headers=auth("qingxiu.officer"), json=case_payload())
    assert resp.status_code == 201, resp.text
    with observer_engine.connect() as conn:
        conn.execute(text("UPDATE audit_records SET action = 'tampered' WHERE seq = 1"))
    done = drill(test_db.url)
    assert done.returncode != 0
    assert "BROKEN" in done.stdout + done.stderr


def test_only_postgresql_urls() -> None:
    done = drill("sqlite:///x.db")
    assert done.returncode == 2 and "PostgreSQL URL" in done.stderr
