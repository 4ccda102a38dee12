"""Positions: plausibility (a refused batch stores nothing), the latest row and the track, and
the nearest available team or vehicle."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from tests.conftest import AuthHeaders
from tests.field.support import QIXING, seed, team_of
from zhixing.core.errors import ValidationFailed
from zhixing.field import positions
from zhixing.field.models import FieldResource, LatestPosition, PositionTrack

URL = "/api/v1/field/positions"


def _now() -> datetime:
    return datetime.now(UTC)


def _report(code: str, lon: float, lat: float, ago: float = 0.0) -> dict[str, object]:
    return {"resource": code, "at": (_now() - timedelta(seconds=ago)).isoformat(),
            "lon": lon, "lat": lat}


def _track(db: Session) -> int:
    return int(db.scalar(select(func.count()).select_from(PositionTrack)) or 0)


class TestReports:
    def test_batch_is_stored_and_latest_moves_forward(self, client: TestClient,
                                                      auth: AuthHeaders, db: Session) -> None:
        seed(client)
        t = team_of(QIXING)
        before = _track(db)
        batch = [_report(t.device, t.lon + 0.001 * i, t.lat, ago=30 - i * 10) for i in range(3)]
        resp = client.post(URL, headers=auth("qixing.bailiff"), json={"reports": batch[::-1]})
        assert resp.status_code == 201 and resp.json() == {"stored": 3}
        assert _track(db) == before + 3
        latest = db.scalar(select(LatestPosition).join_from(
            LatestPosition, FieldResource,
            LatestPosition.resource_id == FieldResource.id).where(
            FieldResource.code == t.device))
        assert latest is not None and latest.lon == pytest.approx(t.lon + 0.002)
        old = client.post(URL, headers=auth("qixing.bailiff"),
                          json={"reports": [_report(t.device, t.lon, t.lat, ago=600)]})
        assert old.status_code == 201  # kept in the track, latest unchanged
        db.expire_all()
        again = db.get(LatestPosition, latest.resource_id)
        assert again is not None and again.lon == pytest.approx(t.lon + 0.002)

    @pytest.mark.parametrize(("lon", "lat", "code"), [
        (2.35, 48.85, "position_outside_china"),  # Paris
        (116.4, 39.9, "position_outside_region"),  # Beijing: China, but not near Guangxi
        (0.0, 0.0, "position_outside_china"),
        (float("nan"), 24.0, "position_not_finite"),
        (110.0, float("inf"), "position_not_finite"),
    ])
    def test_implausible_coordinates_refuse_the_whole_batch(
            self, client: TestClient, auth: AuthHeaders, db: Session, lon: float, lat: float,
            code: str) -> None:
        seed(client)
        t = team_of(QIXING)
        before = _track(db)
        body = {"reports": [_report(t.device, t.lon, t.lat), _report(t.device, lon, lat)]}
        import json

        resp = client.post(URL, headers={**auth("qixing.bailiff"),
                                         "content-type": "application/json"},
                           content=json.dumps(body))  # NaN and Infinity as JSON tokens
        assert resp.status_code == 422, resp.text
        assert resp.json()["error"]["code"] == code
        assert resp.json()["error"]["details"] == {"index": 1}
        assert _track(db) == before

    def test_speed_jump_and_bad_times(self, client: TestClient, auth: AuthHeaders,
                                      db: Session) -> None:
        seed(client)
        t = team_of(QIXING)
        h = auth("qixing.bailiff")
        assert client.post(URL, headers=h, json={"reports": [
            _report(t.device, t.lon, t.lat, ago=60)]}).status_code == 201
        before = _track(db)
        jump = client.post(URL, headers=h, json={"reports": [
            _report(t.device, t.lon + 0.5, t.lat)]})  # ~50 km in a minute
        assert jump.status_code == 422 and jump.json()["error"]["code"] == "position_speed_jump"
        future = client.post(URL, headers=h, json={"reports": [
            _report(t.device, t.lon, t.lat, ago=-3600)]})
        assert future.json()["error"]["code"] == "position_time_invalid"
        naive = client.post(URL, headers=h, json={"reports": [
            {"resource": t.device, "at": "2026-01-01T00:00:00", "lon": t.lon, "lat": t.lat}]})
        assert naive.status_code == 422
        assert _track(db) == before
        drive = client.post(URL, headers=h, json={"reports": [
            _report(t.device, t.lon + 0.01, t.lat)]})  # ~1 km in a minute: 60 km/h
        assert drive.status_code == 201

    def test_resources_of_other_centers(self, client: TestClient, auth: AuthHeaders) -> None:
        seed(client)
        other = team_of("桂0103")
        resp = client.post(URL, headers=auth("qixing.bailiff"), json={"reports": [
            _report(other.device, other.lon, other.lat)]})
        assert resp.status_code == 404 and resp.json()["error"]["code"] == "resource_not_found"
        higher = client.post(URL, headers=auth("gx.duty"), json={"reports": [
            _report(other.device, other.lon, other.lat)]})
        assert higher.status_code == 403
        officer = client.post(URL, headers=auth("qingxiu.officer"), json={"reports": [
            _report(other.device, other.lon, other.lat)]})
        assert officer.status_code == 403
        empty = client.post(URL, headers=auth("qixing.bailiff"), json={"reports": []})
        assert empty.status_code == 422


class TestNearest:
    def test_nearest_available_team_is_chosen(self, client: TestClient,
                                              auth: AuthHeaders) -> None:
        seed(client)
        qixing = team_of(QIXING)
        resp = client.get("/api/v1/field/teams/nearest", headers=auth("gx.duty"),
                          params={"lon": qixing.lon + 0.001, "lat": qixing.lat, "limit": 3})
        assert resp.status_code == 200
        items = resp.json()["items"]
        assert items[0]["id"] == qixing.id
        assert [i["distance_km"] for i in items] == sorted(i["distance_km"] for i in items)
        d = client.post("/api/v1/field/dispatches", headers=auth("guilin.duty"), json={
            "task": "核查车辆", "place": "七星区", "lon": qixing.lon, "lat": qixing.lat})
        assert d.status_code == 201 and d.json()["team_id"] == qixing.id
        after = client.get("/api/v1/field/teams/nearest", headers=auth("gx.duty"),
                           params={"lon": qixing.lon, "lat": qixing.lat}).json()["items"]
        assert qixing.id not in [i["id"] for i in after]  # on a task now
        # Guilin's desk reaches only Guilin's teams, however near another city's team is.
        wuzhou = team_of("桂04")
        mine = client.get("/api/v1/field/teams/nearest", headers=auth("guilin.duty"),
                          params={"lon": wuzhou.lon, "lat": wuzhou.lat}).json()["items"]
        assert mine and all(i["id"] != wuzhou.id for i in mine)
        vehicles = client.get("/api/v1/field/vehicles/nearest", headers=auth("gx.duty"),
                              params={"lon": wuzhou.lon, "lat": wuzhou.lat}).json()["items"]
        assert vehicles and vehicles[0]["distance_km"] < 10

    def test_outside_the_region_is_refused(self, client: TestClient, auth: AuthHeaders) -> None:
        resp = client.get("/api/v1/field/teams/nearest", headers=auth("gx.duty"),
                          params={"lon": 121.5, "lat": 31.2})
        assert resp.status_code == 422


GX = positions.GUANGXI_BOX


@settings(max_examples=200, deadline=None)
@given(lon=st.floats(allow_nan=True, allow_infinity=True),
       lat=st.floats(allow_nan=True, allow_infinity=True))
def test_check_point_accepts_only_the_region(lon: float, lat: float) -> None:
    m = positions.REGION_MARGIN_DEG
    inside = (math.isfinite(lon) and math.isfinite(lat) and GX[0] - m <= lon <= GX[2] + m
              and GX[1] - m <= lat <= GX[3] + m)
    try:
        positions.check_point(lon, lat)
        accepted = True
    except ValidationFailed:
        accepted = False
    assert accepted == inside


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.tuples(*[st.floats(-89, 89) if i % 2 else st.floats(-179, 179) for i in range(6)]))
def test_haversine_is_a_distance(p: tuple[float, ...]) -> None:
    lon1, lat1, lon2, lat2, lon3, lat3 = p
    ab = positions.haversine_km(lon1, lat1, lon2, lat2)
    ba = positions.haversine_km(lon2, lat2, lon1, lat1)
    ac = positions.haversine_km(lon1, lat1, lon3, lat3)
    bc = positions.haversine_km(lon2, lat2, lon3, lat3)
    assert ab == pytest.approx(ba, abs=1e-6)
    assert 0 <= ab <= math.pi * positions.EARTH_RADIUS_KM + 1e-6
    assert ac <= ab + bc + 1e-6


def test_haversine_known_distance() -> None:
    # Nanning to Guilin: about 355 km as the crow flies.
    assert positions.haversine_km(108.366, 22.817, 110.290, 25.274) == pytest.approx(338, rel=0.06)
