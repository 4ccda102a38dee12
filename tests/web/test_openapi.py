from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient

from zhixing.app import create_app


def _operations(spec: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [(path, method, op) for path, item in spec["paths"].items()
            for method, op in item.items()]


def test_operation_ids_are_stable_and_unique() -> None:
    spec = create_app(start_worker=False).openapi()
    ids = [op["operationId"] for _, _, op in _operations(spec)]
    assert len(ids) == len(set(ids))
    assert "users-list_users" in ids and "auth-create_token" in ids and "ops-readyz" in ids


def test_api_errors_are_documented_with_the_shared_shape() -> None:
    spec = create_app(start_worker=False).openapi()
    assert set(spec["components"]["schemas"]["ErrorBody"]["properties"]) == {"error"}
    for path, method, op in _operations(spec):
        if not path.startswith("/api/"):
            continue
        for status in ("401", "404", "422"):
            ref = op["responses"][status]["content"]["application/json"]["schema"]["$ref"]
            assert ref.endswith("/ErrorBody"), (path, method, status)


def test_spec_is_served(client: TestClient) -> None:
    resp = client.get("/api/v1/openapi.json")
    assert resp.status_code == 200 and resp.json()["info"]["title"].startswith("Zhixing")
