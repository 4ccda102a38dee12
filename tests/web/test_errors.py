"""A database that is down or restarting, or a pool with no connection free in time, answers
503 with a code and Retry-After, never 500; any other unexpected error is a logged 500 in the
same shape."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError

from tests.support.database import ScratchDatabase


@pytest.fixture
def app_client(test_db: ScratchDatabase) -> TestClient:
    from zhixing.app import create_app

    app = create_app(start_worker=False)

    @app.get("/api/v1/test-only/db-down")
    def db_down() -> None:
        raise OperationalError("SELECT 1", {}, Exception("server closed the connection"))

    @app.get("/api/v1/test-only/pool-exhausted")
    def pool_exhausted() -> None:
        raise PoolTimeoutError("QueuePool limit of size 10 overflow 10 reached")

    @app.get("/api/v1/test-only/bug")
    def bug() -> None:
        raise IntegrityError("INSERT", {}, Exception("duplicate key"))

    return TestClient(app, raise_server_exceptions=False)


@pytest.mark.parametrize("path", ["db-down", "pool-exhausted"])
def test_a_database_outage_is_503_with_retry_after(app_client: TestClient, path: str) -> None:
    resp = app_client.get(f"/api/v1/test-only/{path}")
    assert resp.status_code == 503
    assert resp.json()["error"]["code"] == "database_unavailable"
    assert resp.headers["retry-after"] == "5"


def test_other_database_errors_are_a_logged_500(app_client: TestClient) -> None:
    resp = app_client.get("/api/v1/test-only/bug")
    assert resp.status_code == 500
    assert resp.json()["error"]["code"] == "internal_error"
