"""Positions of field resources: plausibility, the latest row per resource, the track, and the
nearest available team or vehicle.

A batch is all or nothing: one implausible report refuses the whole batch (422 with the index
of the report at fault), so a client never has to guess what was kept.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Table, insert, select, text
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from zhixing.core.actor import Actor
from zhixing.core.clock import utcnow
from zhixing.core.errors import Forbidden, NotFound, ValidationFailed
from zhixing.field import policy
from zhixing.field.models import (
    FieldResource,
    FieldTeam,
    LatestPosition,
    PositionTrack,
    ResourceKind,
    ResourceStatus,
)

# (min lon, min lat, max lon, max lat)
CHINA_BOX = (73.4, 18.1, 135.1, 53.6)
GUANGXI_BOX = (104.4, 20.9, 112.1, 26.4)
REGION_MARGIN_DEG = 1.0  # teams cross into Guangdong, Hunan, Guizhou, Yunnan on duty
MAX_SPEED_KMH = 300.0  # faster than any vehicle on the road: a bad fix, not a journey
MAX_FUTURE = timedelta(minutes=2)
MAX_AGE = timedelta(hours=24)
EARTH_RADIUS_KM = 6371.0088


def haversine_km(lon1: float, lat1: float, lon2: float, lat2: float) -> float:
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * EARTH_RADIUS_KM * math.asin(min(1.0, math.sqrt(a)))


def check_point(lon: float, lat: float, field: str = "lon") -> None:
    """Refuse a coordinate that cannot be a place in Guangxi or next to it."""
    if not (math.isfinite(lon) and math.isfinite(lat)):
        raise ValidationFailed("coordinates must be finite numbers", code="position_not_finite",
                               field=field)
    x0, y0, x1, y1 = CHINA_BOX
    if not (x0 <= lon <= x1 and y0 <= lat <= y1):
        raise ValidationFailed("the position is outside China", code="position_outside_china",
                               field=field)
    m = REGION_MARGIN_DEG
    x0, y0, x1, y1 = GUANGXI_BOX
    if not (x0 - m <= lon <= x1 + m and y0 - m <= lat <= y1 + m):
        raise ValidationFailed("the position is too far from Guangxi",
                               code="position_outside_region", field=field)


@dataclass(frozen=True)
class _Res:
    id: int
    court_id: int


@dataclass(frozen=True)
class Report:
    resource: str  # the resource's code
    at: datetime
    lon: float
    lat: float
    accuracy_m: float | None = None


def _refuse(index: int, message: str, code: str) -> ValidationFailed:
    return ValidationFailed(message, code=code, field=f"reports.{index}",
                            details={"index": index})


def record(session: Session, actor: Actor, reports: Sequence[Report]) -> int:
    """Check every report, then store them all: the track rows appended, the latest row of each
    resource moved forward. Returns the number stored."""
    policy.require_role(actor, policy.POSITION_ROLES, "report positions")
    now = utcnow()
    codes = {r.resource for r in reports}
    # One statement for the resources and their latest positions; plain rows, no ORM objects:
    # this is the platform's hottest write path.
    found = session.execute(
        select(FieldResource.code, FieldResource.id, FieldResource.court_id, LatestPosition.at,
               LatestPosition.lon, LatestPosition.lat)
        .outerjoin(LatestPosition, LatestPosition.resource_id == FieldResource.id)
        .where(FieldResource.code.in_(codes))).all()
    resources = {code: _Res(rid, court_id) for code, rid, court_id, *_ in found}
    last: dict[int, tuple[datetime, float, float]] = {
        rid: (at, lon, lat) for _, rid, _, at, lon, lat in found if at is not None}
    latest_at = {rid: v[0] for rid, v in last.items()}
    accuracy: dict[int, float | None] = {}
    rows: list[dict[str, object]] = []
    for index, r in sorted(enumerate(reports), key=lambda p: p[1].at):
        res = resources.get(r.resource)
        if res is None or not actor.can_see_court(res.court_id):
            raise NotFound(f"no resource {r.resource!r}", code="resource_not_found",
                           field=f"reports.{index}.resource")
        if res.court_id != actor.court_id:
            raise Forbidden("positions are reported by the resource's own center",
                            code="not_your_resource", field=f"reports.{index}.resource")
        try:
            check_point(r.lon, r.lat, field=f"reports.{index}.lon")
        except ValidationFailed as exc:
            exc.details = {"index": index}
            raise
        if r.at.tzinfo is None:
            raise _refuse(index, "the time needs a zone offset", "position_time_invalid")
        if r.at > now + MAX_FUTURE or r.at < now - MAX_AGE:
            raise _refuse(index, "the report's time is in the future or too old",
                          "position_time_invalid")
        prev = last.get(res.id)
        if prev is not None and r.at > prev[0]:
            hours = (r.at - prev[0]).total_seconds() / 3600
            km = haversine_km(prev[1], prev[2], r.lon, r.lat)
            if km > 0.5 and km / hours > MAX_SPEED_KMH:
                raise _refuse(index, f"a jump of {km:.1f} km in {hours * 3600:.0f} s is not "
                              "plausible", "position_speed_jump")
        if prev is None or r.at > prev[0]:
            last[res.id] = (r.at, r.lon, r.lat)
            accuracy[res.id] = r.accuracy_m
        rows.append({"resource_id": res.id, "at": r.at, "lon": r.lon, "lat": r.lat,
                     "accuracy_m": r.accuracy_m, "received_at": now})
    if not rows:
        return 0
    session.execute(insert(PositionTrack), rows)
    # The newest report of each resource, if newer than what the latest row holds.
    moved = [{"resource_id": rid, "at": at, "lon": lon, "lat": lat,
              "accuracy_m": accuracy.get(rid), "received_at": now}
             for rid, (at, lon, lat) in last.items()
             if rid not in latest_at or latest_at[rid] < at]
    _upsert_latest(session, moved)
    if session.get_bind().dialect.name == "postgresql":
        # Telemetry: a crash may lose the last fraction of a second of reports, and the next
        # report replaces them; not waiting for the WAL flush halves the time a report holds
        # its connection. Only this transaction is affected.
        session.execute(text("SET LOCAL synchronous_commit = off"))
    return len(rows)


def _upsert_latest(session: Session, rows: Sequence[Mapping[str, object]]) -> None:
    if not rows:
        return
    table = LatestPosition.__table__
    assert isinstance(table, Table)
    dialect = session.get_bind().dialect.name
    stmt = (pg_insert(table) if dialect == "postgresql" else sqlite_insert(table)).values(rows)
    excluded = stmt.excluded
    session.execute(stmt.on_conflict_do_update(
        index_elements=["resource_id"],
        set_={"at": excluded.at, "lon": excluded.lon, "lat": excluded.lat,
              "accuracy_m": excluded.accuracy_m, "received_at": excluded.received_at},
        where=table.c.at < excluded.at))


@dataclass(frozen=True)
class Nearby:
    id: int
    label: str
    court_id: int
    distance_km: float
    lon: float
    lat: float
    at: datetime


# Boxes tried in turn (degrees; 1° of latitude is 111 km): the index on (lat, lon) answers
# the small ones from a handful of rows, and the wide ones are only read when nothing is near.
SEARCH_BOXES = (0.1, 0.5, 2.0, 8.0)


def nearest_teams(session: Session, actor: Actor, lon: float, lat: float,
                  limit: int = 5) -> list[Nearby]:
    """Available teams within the actor's reach, nearest first, by the last position of any
    of their members or devices."""
    check_point(lon, lat)
    for half in SEARCH_BOXES:
        stmt = (select(FieldTeam.id, FieldTeam.name, FieldTeam.court_id, LatestPosition.lon,
                       LatestPosition.lat, LatestPosition.at)
                .join(FieldResource, FieldResource.id == LatestPosition.resource_id)
                .join(FieldTeam, FieldTeam.id == FieldResource.team_id)
                .where(LatestPosition.lat.between(lat - half, lat + half),
                       LatestPosition.lon.between(lon - half, lon + half),
                       FieldTeam.status == ResourceStatus.AVAILABLE,
                       FieldTeam.court_id.in_(actor.visible_court_ids)))
        best: dict[int, Nearby] = {}
        for tid, name, court_id, plon, plat, at in session.execute(stmt):
            d = haversine_km(lon, lat, plon, plat)
            if tid not in best or d < best[tid].distance_km:
                best[tid] = Nearby(tid, name, court_id, round(d, 3), plon, plat, at)
        found = sorted(best.values(), key=lambda n: n.distance_km)
        # Within the box's inscribed radius the order is final; otherwise look wider.
        radius = half * 111.0 * math.cos(math.radians(min(abs(lat) + half, 89.0)))
        if len(found) >= limit and found[limit - 1].distance_km <= radius:
            return found[:limit]
        if half == SEARCH_BOXES[-1]:
            return found[:limit]
    return []


def nearest_vehicles(session: Session, actor: Actor, lon: float, lat: float,
                     limit: int = 5) -> list[Nearby]:
    check_point(lon, lat)
    for half in SEARCH_BOXES:
        stmt = (select(FieldResource.id, FieldResource.label, FieldResource.court_id,
                       LatestPosition.lon, LatestPosition.lat, LatestPosition.at)
                .join(LatestPosition, LatestPosition.resource_id == FieldResource.id)
                .where(LatestPosition.lat.between(lat - half, lat + half),
                       LatestPosition.lon.between(lon - half, lon + half),
                       FieldResource.kind == ResourceKind.VEHICLE,
                       FieldResource.status == ResourceStatus.AVAILABLE,
                       FieldResource.court_id.in_(actor.visible_court_ids)))
        found = sorted((Nearby(rid, label, cid, round(haversine_km(lon, lat, plon, plat), 3),
                               plon, plat, at)
                        for rid, label, cid, plon, plat, at in session.execute(stmt)),
                       key=lambda n: n.distance_km)
        radius = half * 111.0 * math.cos(math.radians(min(abs(lat) + half, 89.0)))
        if (len(found) >= limit and found[limit - 1].distance_km <= radius) or \
                half == SEARCH_BOXES[-1]:
            return found[:limit]
    return []
