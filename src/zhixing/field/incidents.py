"""Incidents (突发事件): an SOS from a field team opens one at once; the duty desk of the team's
center and every center above it sees it live, acknowledges it and resolves it."""

from __future__ import annotations

from sqlalchemy import Select, select
from sqlalchemy.orm import Session

from zhixing.core import audit
from zhixing.core.actor import Actor
from zhixing.core.clock import utcnow
from zhixing.core.errors import Conflict, NotFound
from zhixing.field import dispatch as dispatches
from zhixing.field import policy, positions
from zhixing.field.models import Incident, IncidentStatus, LatestPosition
from zhixing.field.resources import my_bailiff


def sos(session: Session, actor: Actor, lon: float | None, lat: float | None,
        note: str | None) -> Incident:
    """Opened at once, with as little as the press of a button: the position is the one sent,
    else the bailiff's last known one."""
    policy.require_role(actor, (*policy.FIELD_ROLES, *policy.DESK_ROLES), "raise an SOS")
    if lon is not None and lat is not None:
        positions.check_point(lon, lat)
    me = my_bailiff(session, actor)
    if (lon is None or lat is None) and me is not None:
        last = session.get(LatestPosition, me.id)
        if last is not None:
            lon, lat = last.lon, last.lat
    team_id = me.team_id if me is not None else None
    active = dispatches.for_teams(session, {team_id}) if team_id is not None else []
    assert actor.court_id is not None
    now = utcnow()
    inc = Incident(court_id=actor.court_id, kind="sos", team_id=team_id,
                   dispatch_id=active[0].id if active else None, reported_by=actor.user_id,
                   lon=lon, lat=lat, note=(note or "").strip() or None,
                   status=IncidentStatus.OPEN, reported_at=now, updated_at=now)
    session.add(inc)
    session.flush()
    audit.record(session, actor, "incident.sos", object_type="incident", object_id=inc.id,
                 court_id=inc.court_id, case_id=active[0].case_id if active else None)
    return inc


def get(session: Session, actor: Actor, incident_id: int) -> Incident:
    inc = session.get(Incident, incident_id)
    if inc is None or not (actor.can_see_court(inc.court_id)
                           or inc.reported_by == actor.user_id):
        raise NotFound(f"incident {incident_id} not found", code="incident_not_found")
    return inc


def acknowledge(session: Session, actor: Actor, inc: Incident) -> Incident:
    policy.require_role(actor, policy.DESK_ROLES, "acknowledge incidents")
    if inc.status != IncidentStatus.OPEN:
        raise Conflict("the incident is already acknowledged", code="already_acknowledged")
    now = utcnow()
    inc.status = IncidentStatus.ACKNOWLEDGED
    inc.acknowledged_at = now
    inc.acknowledged_by = actor.user_id
    inc.updated_at = now
    session.flush()
    audit.record(session, actor, "incident.acknowledged", object_type="incident",
                 object_id=inc.id, court_id=inc.court_id)
    return inc


def resolve(session: Session, actor: Actor, inc: Incident, note: str | None) -> Incident:
    policy.require_role(actor, policy.DESK_ROLES, "resolve incidents")
    if inc.status == IncidentStatus.RESOLVED:
        raise Conflict("the incident is already resolved", code="already_resolved")
    now = utcnow()
    if inc.acknowledged_at is None:
        inc.acknowledged_at = now
        inc.acknowledged_by = actor.user_id
    inc.status = IncidentStatus.RESOLVED
    inc.resolved_at = now
    inc.resolved_by = actor.user_id
    if note:
        inc.note = f"{inc.note}\n{note}" if inc.note else note
    inc.updated_at = now
    session.flush()
    audit.record(session, actor, "incident.resolved", object_type="incident",
                 object_id=inc.id, court_id=inc.court_id)
    return inc


def visible(actor: Actor, open_only: bool = True) -> Select[tuple[Incident]]:
    stmt = select(Incident).where(Incident.court_id.in_(actor.visible_court_ids))
    if open_only:
        stmt = stmt.where(Incident.status != IncidentStatus.RESOLVED)
    return stmt.order_by(Incident.reported_at.desc())
