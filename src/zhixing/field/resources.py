"""Field resources of the command centers: teams, bailiffs, vehicles and devices; the demo's
fleet across Guangxi."""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import func, insert, select
from sqlalchemy.orm import Session

from zhixing.core import audit
from zhixing.core.actor import SYSTEM, Actor
from zhixing.core.clock import utcnow
from zhixing.core.errors import NotFound, ValidationFailed
from zhixing.courts.models import Court, CourtLevel, User, UserRole
from zhixing.field import policy
from zhixing.field.models import (
    FieldResource,
    FieldTeam,
    LatestPosition,
    PositionTrack,
    ResourceKind,
    ResourceStatus,
)

# The seed's fleet (seed/README.md: the Guangxi command center in 2014).
DEMO_VEHICLES = 127
DEMO_FIELD_DEVICES = 320
DEMO_VEHICLE_SYSTEMS = 90
JITTER_DEG = 0.02  # about 2 km around the court
SEED_AGE = timedelta(minutes=10)  # the fleet's last reports, a little before the demo starts


def get_resource(session: Session, actor: Actor, resource_id: int) -> FieldResource:
    policy.require_role(actor, policy.READ_ROLES, "read field resources")
    res = session.get(FieldResource, resource_id)
    if res is None or not actor.can_see_court(res.court_id):
        raise NotFound(f"resource {resource_id} not found", code="resource_not_found")
    return res


def get_team(session: Session, actor: Actor, team_id: int) -> FieldTeam:
    team = session.get(FieldTeam, team_id)
    if team is None or not (actor.can_see_court(team.court_id)
                            or team_id in policy.teams_of(session, actor)):
        raise NotFound(f"team {team_id} not found", code="team_not_found")
    return team


def set_status(session: Session, actor: Actor, res: FieldResource,
               status: ResourceStatus) -> FieldResource:
    """The duty desk sets anyone's status; a bailiff sets their own."""
    own = res.user_id is not None and res.user_id == actor.user_id
    if not own:
        policy.require_role(actor, policy.DESK_ROLES, "change the status of resources")
    if res.status != status:
        audit.record(session, actor, "field.resource_status", object_type="field_resource",
                     object_id=res.id, court_id=res.court_id,
                     details={"from": res.status.value, "to": status.value})
        res.status = status
        res.updated_at = utcnow()
        session.flush()
    return res


def my_bailiff(session: Session, actor: Actor) -> FieldResource | None:
    if actor.user_id is None:
        return None
    return session.scalar(select(FieldResource).where(
        FieldResource.user_id == actor.user_id, FieldResource.kind == ResourceKind.BAILIFF))


def team_members(session: Session, team_id: int) -> list[FieldResource]:
    return list(session.scalars(select(FieldResource).where(FieldResource.team_id == team_id)
                                .order_by(FieldResource.kind, FieldResource.id)))


def check_kind(value: str) -> ResourceKind:
    try:
        return ResourceKind(value)
    except ValueError:
        raise ValidationFailed(f"unknown resource kind {value!r}", code="invalid_kind",
                               field="kind") from None


@dataclass(frozen=True)
class SeedResult:
    teams: int
    vehicles: int
    field_devices: int
    vehicle_systems: int
    bailiffs: int


def _share(total: int, n: int) -> list[int]:
    """``total`` spread over ``n`` centers, the first ones (higher levels) taking the rest."""
    base, extra = divmod(total, n)
    return [base + (1 if i < extra else 0) for i in range(n)]


def seed_field(session: Session, *, rng: random.Random | None = None) -> SeedResult:
    """The demo fleet: a team per command center, the seed's 127 vehicles, 320 field devices
    and 90 vehicle systems spread over the 126 centers, positions near each court, and every
    bailiff user a member of their court's team. Idempotent: does nothing twice."""
    rng = rng or random.Random(20141126)
    if session.scalar(select(func.count()).select_from(FieldTeam)):
        return SeedResult(0, 0, 0, 0, 0)
    level_order = {CourtLevel.HIGH: 0, CourtLevel.INTERMEDIATE: 1, CourtLevel.BASIC: 2}
    courts = sorted(session.scalars(select(Court)), key=lambda c: (level_order[c.level], c.code))
    by_id = {c.id: c for c in courts}
    now = utcnow()

    def where(court: Court) -> tuple[float, float]:
        c: Court | None = court
        while c is not None and (c.lon is None or c.lat is None):
            c = by_id.get(c.parent_id) if c.parent_id else None
        lon, lat = (c.lon, c.lat) if c is not None and c.lon and c.lat else (108.32, 22.82)
        return (round(lon + rng.uniform(-JITTER_DEG, JITTER_DEG), 6),
                round(lat + rng.uniform(-JITTER_DEG, JITTER_DEG), 6))

    teams: dict[int, FieldTeam] = {}
    for court in courts:
        team = FieldTeam(court_id=court.id, name=f"{court.short_name_zh}执行一组",
                         status=ResourceStatus.AVAILABLE, updated_at=now)
        session.add(team)
        teams[court.id] = team
    session.flush()

    placed: list[FieldResource] = []
    vehicles: dict[int, list[FieldResource]] = {}
    n = len(courts)
    for court, count in zip(courts, _share(DEMO_VEHICLES, n), strict=True):
        for k in range(count):
            v = FieldResource(code=f"V-{court.code}-{k + 1}", kind=ResourceKind.VEHICLE,
                              court_id=court.id, label=f"{court.code}执{k + 1:02d}指挥车",
                              status=ResourceStatus.AVAILABLE, team_id=teams[court.id].id,
                              updated_at=now)
            vehicles.setdefault(court.id, []).append(v)
            placed.append(v)
    for court, count in zip(courts, _share(DEMO_FIELD_DEVICES, n), strict=True):
        for k in range(count):
            placed.append(FieldResource(
                code=f"D-{court.code}-{k + 1}", kind=ResourceKind.FIELD_DEVICE,
                court_id=court.id, label=f"{court.short_name_zh}单兵{k + 1}",
                status=ResourceStatus.AVAILABLE, team_id=teams[court.id].id, updated_at=now))
    session.add_all(placed)
    session.flush()
    systems: list[FieldResource] = []
    for court in courts[:DEMO_VEHICLE_SYSTEMS]:
        carrier = vehicles[court.id][0]
        systems.append(FieldResource(
            code=f"S-{court.code}-1", kind=ResourceKind.VEHICLE_SYSTEM, court_id=court.id,
            label=f"{carrier.label}车载系统", status=ResourceStatus.AVAILABLE,
            team_id=teams[court.id].id, carrier_id=carrier.id, updated_at=now))
    session.add_all(systems)
    bailiffs = 0
    users = session.execute(select(User.id, User.display_name, User.court_id).join(
        UserRole, UserRole.user_id == User.id).where(UserRole.role == "bailiff"))
    for uid, name, court_id in users:
        session.add(FieldResource(
            code=f"P-{uid}", kind=ResourceKind.BAILIFF, court_id=court_id, label=name,
            status=ResourceStatus.AVAILABLE, user_id=uid, team_id=teams[court_id].id,
            updated_at=now))
        bailiffs += 1
    session.flush()
    court_of = {c.id: c for c in courts}
    latest, track = [], []
    for res in [*placed, *systems]:
        lon, lat = where(court_of[res.court_id])
        row = {"resource_id": res.id, "at": now - SEED_AGE, "lon": lon, "lat": lat,
               "accuracy_m": 10.0, "received_at": now - SEED_AGE}
        latest.append(row)
        track.append(row)
    session.execute(insert(LatestPosition), latest)
    session.execute(insert(PositionTrack), track)
    audit.record(session, SYSTEM, "field.seeded", details={"teams": len(teams)})
    session.flush()
    return SeedResult(len(teams), DEMO_VEHICLES, DEMO_FIELD_DEVICES, len(systems), bailiffs)


def add_bailiff(session: Session, user_id: int, team: FieldTeam) -> FieldResource:
    """Make a bailiff user a member of a team (tests and the demo)."""
    user = session.get(User, user_id)
    if user is None:
        raise NotFound(f"user {user_id} not found", code="user_not_found")
    res = FieldResource(code=f"P-{user_id}", kind=ResourceKind.BAILIFF, court_id=user.court_id,
                        label=user.display_name, status=ResourceStatus.AVAILABLE,
                        user_id=user_id, team_id=team.id, updated_at=utcnow())
    session.add(res)
    session.flush()
    return res
