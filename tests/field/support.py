"""The demo fleet, cases and people for the field tests."""

from __future__ import annotations

from dataclasses import dataclass

from fastapi.testclient import TestClient
from sqlalchemy import select

from tests.cases.factories import case_payload
from tests.conftest import PASSWORD, AuthHeaders
from zhixing.core.db import transaction
from zhixing.courts.models import Court
from zhixing.field import resources
from zhixing.field.models import FieldResource, FieldTeam, ResourceKind, ResourceStatus

QIXING = "桂0305"


def seed(client: TestClient) -> resources.SeedResult:
    del client  # the app must exist first: it points the process at the test database
    with transaction() as session:
        return resources.seed_field(session)


def make_case(client: TestClient, auth: AuthHeaders, **over: object) -> dict[str, object]:
    resp = client.post("/api/v1/cases", headers=auth("qingxiu.officer"),
                       json=case_payload(filed_days_ago=30, **over))
    assert resp.status_code == 201, resp.text
    case: dict[str, object] = resp.json()
    return case


def party(case: dict[str, object], role: str) -> int:
    parties = case["parties"]
    assert isinstance(parties, list)
    return int(next(p["id"] for p in parties if p["role"] == role))


def user(client: TestClient, auth: AuthHeaders, name: str, court: str,
         roles: list[str]) -> dict[str, str]:
    resp = client.post("/api/v1/users", headers=auth("admin"), json={
        "username": name, "display_name": name, "court_code": court, "password": PASSWORD,
        "roles": roles})
    assert resp.status_code == 201, resp.text
    return auth(name)


@dataclass(frozen=True)
class Team:
    id: int
    court_id: int
    device: str  # a field device's code
    lon: float
    lat: float


def team_of(court_code: str) -> Team:
    with transaction() as session:
        court = session.scalar(select(Court).where(Court.code == court_code))
        assert court is not None and court.lon is not None and court.lat is not None
        team = session.scalar(select(FieldTeam).where(FieldTeam.court_id == court.id))
        assert team is not None
        device = session.scalar(select(FieldResource.code).where(
            FieldResource.team_id == team.id, FieldResource.kind == ResourceKind.FIELD_DEVICE))
        assert device is not None
        return Team(team.id, court.id, device, court.lon, court.lat)


def second_team(court_code: str, username: str) -> int:
    """Another team at the same court, with ``username`` as its bailiff."""
    with transaction() as session:
        court = session.scalar(select(Court).where(Court.code == court_code))
        assert court is not None
        team = FieldTeam(court_id=court.id, name="二组", status=ResourceStatus.AVAILABLE)
        session.add(team)
        session.flush()
        from zhixing.courts.models import User

        uid = session.scalar(select(User.id).where(User.username == username))
        assert uid is not None
        resources.add_bailiff(session, uid, team)
        return team.id
