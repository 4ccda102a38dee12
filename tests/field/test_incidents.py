"""Incidents: an SOS opens one at once and the duty desks above the team see it (API, the map's
feed); acknowledging twice is refused. Figures by center and period."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from fastapi.testclient import TestClient
from sqlalchemy import select

from tests.conftest import AuthHeaders
from tests.field.support import QIXING, seed, team_of, user
from tests.web.test_console import login
from zhixing.cases.service import today
from zhixing.core import clock
from zhixing.core.actor import Actor
from zhixing.core.db import transaction
from zhixing.courts import identity
from zhixing.courts.models import User
from zhixing.field import live


def _sos(client: TestClient, auth: AuthHeaders, **body: object) -> dict[str, object]:
    resp = client.post("/api/v1/field/incidents", headers=auth("qixing.bailiff"), json=body)
    assert resp.status_code == 201, resp.text
    inc: dict[str, object] = resp.json()
    return inc


class TestSos:
    def test_sos_is_on_every_desk_above(self, client: TestClient, auth: AuthHeaders) -> None:
        seed(client)
        t = team_of(QIXING)
        inc = _sos(client, auth, lon=t.lon, lat=t.lat, note="对方聚众阻挠")
        assert inc["status"] == "open" and inc["team_id"] == t.id
        for desk in ("gx.duty", "guilin.duty"):
            items = client.get("/api/v1/field/incidents", headers=auth(desk)).json()["items"]
            assert [i["id"] for i in items] == [inc["id"]]
        peer = client.get("/api/v1/field/incidents", headers=auth("liuzhou.duty")).json()
        assert peer["items"] == []
        url = f"/api/v1/field/incidents/{inc['id']}"
        assert client.post(f"{url}/acknowledge", headers=auth("liuzhou.duty")).status_code == 404
        assert client.post(f"{url}/acknowledge",
                           headers=auth("qixing.bailiff")).status_code == 403
        ack = client.post(f"{url}/acknowledge", headers=auth("guilin.duty"))
        assert ack.status_code == 200 and ack.json()["acknowledged_at"]
        twice = client.post(f"{url}/acknowledge", headers=auth("gx.duty"))
        assert twice.status_code == 409 and twice.json()["error"]["code"] == "already_acknowledged"
        done = client.post(f"{url}/resolve", headers=auth("guilin.duty"), json={"note": "已控制"})
        assert done.status_code == 200 and done.json()["status"] == "resolved"
        assert client.get("/api/v1/field/incidents", headers=auth("gx.duty")).json()["items"] == []

    def test_sos_without_position_uses_the_last_known(self, client: TestClient,
                                                      auth: AuthHeaders) -> None:
        seed(client)
        t = team_of(QIXING)
        me = f"P-{client.get('/api/v1/me', headers=auth('qixing.bailiff')).json()['id']}"
        from datetime import UTC, datetime

        client.post("/api/v1/field/positions", headers=auth("qixing.bailiff"), json={
            "reports": [{"resource": me, "at": datetime.now(UTC).isoformat(),
                         "lon": t.lon, "lat": t.lat}]})
        inc = _sos(client, auth)
        assert (inc["lon"], inc["lat"]) == (t.lon, t.lat)
        bad = client.post("/api/v1/field/incidents", headers=auth("qixing.bailiff"),
                          json={"lon": 200.0, "lat": 1.0})
        assert bad.status_code == 422
        officer = client.post("/api/v1/field/incidents", headers=auth("qingxiu.officer"),
                              json={})
        assert officer.status_code == 403

    def test_duty_leader_map_shows_it(self, client: TestClient, auth: AuthHeaders) -> None:
        seed(client)
        inc = _sos(client, auth)
        login(client, "gx.duty")
        page = client.get("/field/map")
        assert page.status_code == 200 and f"SOS #{inc['id']}" in page.text
        data = client.get("/field/map/data").json()
        assert [i["id"] for i in data["incidents"]] == [inc["id"]]
        assert len(data["resources"]) >= 537 and len(data["centers"]) == 126
        client.cookies.clear()
        login(client, "liuzhou.duty")
        assert client.get("/field/map/data").json()["incidents"] == []


class TestFeed:
    def test_one_poll_feeds_each_viewer_within_reach(self, client: TestClient,
                                                     auth: AuthHeaders) -> None:
        seed(client)
        _, items = live.poll(None)
        hub = live.MapHub()
        hub.fresh(items)  # what a viewer already has
        inc = _sos(client, auth)
        _, items = live.poll(None)
        fresh = hub.fresh(items)
        assert [(i["layer"], i["id"]) for i in fresh] == [("incidents", inc["id"])]
        assert hub.fresh(items) == []  # the overlap does not send it twice
        with transaction() as session:
            def actor(name: str) -> Actor:
                u = session.scalar(select(User).where(User.username == name))
                assert u is not None
                return identity.actor_for(session, u, None)

            region, guilin, liuzhou = actor("gx.duty"), actor("guilin.duty"), actor(
                "liuzhou.duty")

        async def run() -> list[int]:
            viewers = [live.Viewer(a.visible_court_ids) for a in (region, guilin, liuzhou)]
            hub.viewers.update(viewers)
            hub.publish(fresh)
            return [v.queue.qsize() for v in viewers]

        assert asyncio.run(run()) == [1, 1, 0]


class TestFigures:
    def test_by_center_and_period(self, client: TestClient, auth: AuthHeaders) -> None:
        seed(client)
        t = team_of(QIXING)
        d = client.post("/api/v1/field/dispatches", headers=auth("guilin.duty"), json={
            "task": "x", "place": "y", "lon": t.lon, "lat": t.lat}).json()
        for to in ("en_route", "on_scene"):
            client.post(f"/api/v1/field/dispatches/{d['id']}/status",
                        headers=auth("qixing.bailiff"), json={"to": to})
        clock.set_offset(timedelta(minutes=42))
        client.post(f"/api/v1/field/dispatches/{d['id']}/status",
                    headers=auth("qixing.bailiff"), json={"to": "done"})
        tip = client.post("/api/v1/field/tips", headers=auth("guilin.duty"),
                          json={"content": "x"}).json()
        client.post(f"/api/v1/field/tips/{tip['id']}/outcome", headers=auth("guilin.duty"),
                    json={"outcome": "confirmed", "note": "ok"})
        _sos(client, auth)
        resp = client.get("/api/v1/field/figures", headers=auth("gx.duty"),
                          params={"court": "桂03", "start": today().isoformat(),
                                  "end": today().isoformat()})
        assert resp.status_code == 200, resp.text
        body = resp.json()
        assert body["total"]["dispatches_done"] == 1 and body["total"]["tips_checked"] == 1
        assert 41.9 < body["total"]["median_minutes_to_complete_dispatch"] < 42.2
        by_code = {c["court_code"]: c for c in body["centers"]}
        assert by_code["桂03"]["dispatches"] == 1 and by_code["桂0305"]["incidents"] == 1
        assert by_code["桂03"]["tips_received"] == 1
        old = client.get("/api/v1/field/figures", headers=auth("gx.duty"), params={
            "court": "桂03", "start": "2020-01-01", "end": "2020-12-31"}).json()
        assert old["total"]["dispatches"] == 0
        bad = client.get("/api/v1/field/figures", headers=auth("gx.duty"),
                         params={"start": "2026-02-01", "end": "2026-01-01"})
        assert bad.status_code == 422 and bad.json()["error"]["code"] == "invalid_period"
        out = client.get("/api/v1/field/figures", headers=auth("liuzhou.duty"),
                         params={"court": "桂03"})
        assert out.status_code == 422
        bailiff = user(client, auth, "b.fig", QIXING, ["bailiff"])
        assert client.get("/api/v1/field/figures", headers=bailiff).status_code == 403
