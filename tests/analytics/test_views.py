from __future__ import annotations

import io

from fastapi.testclient import TestClient
from openpyxl import load_workbook

from tests.analytics.test_indicators import refresh
from tests.cases.factories import case_payload
from tests.conftest import AuthHeaders
from tests.web.test_console import login
from zhixing.analytics import views
from zhixing.courts.service import load_reference_data


class TestApi:
    def test_report_and_children(self, client: TestClient, auth: AuthHeaders) -> None:
        client.post("/api/v1/cases", json=case_payload(), headers=auth("qingxiu.officer"))
        refresh()
        body = client.get("/api/v1/indicators", params={"court": "桂01"},
                          headers=auth("gx.duty")).json()
        assert body["court_code"] == "桂01" and body["total"]["received"] == 1
        qingxiu = next(c for c in body["children"] if c["court_code"] == "桂0103")
        assert qingxiu["figures"]["received"] == 1
        assert sum(c["figures"]["received"] for c in body["children"]) == 1

    def test_reach_and_bad_periods(self, client: TestClient, auth: AuthHeaders) -> None:
        h = auth("liunan.officer")
        assert client.get("/api/v1/indicators", params={"court": "桂0103"},
                          headers=h).status_code == 404
        bad = client.get("/api/v1/indicators", params={"start": "2025-05-01",
                                                       "end": "2025-01-01"}, headers=h)
        assert bad.status_code == 422 and bad.json()["error"]["code"] == "invalid_period"
        assert client.get("/api/v1/indicators", headers=auth("qixing.bailiff")).status_code == 403

    def test_spreadsheet(self, client: TestClient, auth: AuthHeaders) -> None:
        resp = client.get("/api/v1/indicators/report.xlsx", params={"court": "桂02"},
                          headers=auth("gx.duty"))
        rows = list(load_workbook(io.BytesIO(resp.content)).active.iter_rows(values_only=True))
        assert rows[1][0] == "法院" and rows[2][0] == "柳州市中级人民法院（合计）"
        under = [r for r in load_reference_data() if r["parent"] == "桂02"]
        assert len(rows) == 3 + len(under)  # title, header, total, a row per court below

    def test_trend(self, client: TestClient, auth: AuthHeaders) -> None:
        points = client.get("/api/v1/indicators/trend", params={"months": 6},
                            headers=auth("gx.duty")).json()
        assert len(points) == 6 and set(points[0]) == {"month", "received", "concluded"}


class TestPages:
    def test_pages_render(self, client: TestClient) -> None:
        login(client, "gx.duty")
        assert "结案率" in client.get("/indicators").text
        screen = client.get("/screen")
        assert screen.status_code == 200 and "广西壮族自治区高级人民法院执行指挥中心" in screen.text
        assert client.get("/screen?court=桂0103").status_code == 200
        data = client.get("/screen/data", params={"court": "桂"}).json()
        assert set(data["counters"]) == {"open_cases", "overdue", "received_today",
                                         "concluded_today", "recovered_fen_today"}
        assert len(data["shading"]) == 14 and len(data["trend"]) == 12
        assert client.get("/screen/data", params={"court": "桂9"}).status_code == 404

    def test_stream_sends_new_events(self, client: TestClient, auth: AuthHeaders,
                                     monkeypatch: object) -> None:
        import pytest

        mp = pytest.MonkeyPatch()
        mp.setattr(views, "STREAM_SECONDS", 2.0)
        mp.setattr(views, "TICK_SECONDS", 0.5)
        try:
            login(client, "gx.duty")
            client.post("/api/v1/cases", json=case_payload(), headers=auth("qingxiu.officer"))
            with client.stream("GET", "/screen/stream", params={"after": 0}) as resp:
                text = "".join(resp.iter_text())
        finally:
            mp.undo()
        assert "event: hello" in text and "event: update" in text and "registered" in text
