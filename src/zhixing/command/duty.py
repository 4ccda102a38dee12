"""The duty roster: shifts with their leader, officers and standby personnel, who is on duty at
any moment, and the shift handover (交接班) with its open items carried over."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

from sqlalchemy import and_, or_, select
from sqlalchemy.orm import Session

from zhixing.command import board, policy
from zhixing.command.models import (
    AssistanceRequest,
    DutyMember,
    DutyRole,
    DutyShift,
    Handover,
    Hop,
    RequestStatus,
    ShiftPattern,
)
from zhixing.command.network import CenterRef, Network
from zhixing.command.schemas import HandoverIn, MemberIn, RosterIn, ShiftIn
from zhixing.core import audit
from zhixing.core.actor import Actor
from zhixing.core.clock import CHINA_TZ, utcnow
from zhixing.core.errors import Conflict, NotFound, ValidationFailed
from zhixing.courts.models import User

SHIFT_HOURS = (8, 12, 24)
MAX_SHIFT = timedelta(hours=48)


# --- the roster --------------------------------------------------------------------------------


def rotation(first_day: date, days: int, handover_hour: int, shift_hours: int,
             teams: int) -> list[tuple[datetime, datetime, int]]:
    """Back-to-back shifts from ``first_day`` at the handover hour (China time) for ``days``
    days; each shift's team index, the teams taking turns (one team: a fixed pattern)."""
    if shift_hours not in SHIFT_HOURS:
        raise ValidationFailed("a shift lasts 8, 12 or 24 hours", code="invalid_shift_hours",
                               field="shift_hours")
    start = datetime.combine(first_day, time(handover_hour), CHINA_TZ)
    count = days * 24 // shift_hours
    step = timedelta(hours=shift_hours)
    return [((start + i * step).astimezone(CHINA_TZ), (start + (i + 1) * step).astimezone(
        CHINA_TZ), i % teams) for i in range(count)]


def _members(session: Session, center: CenterRef, members: Sequence[MemberIn],
             field: str) -> list[DutyMember]:
    out: list[DutyMember] = []
    for i, m in enumerate(members):
        where = f"{field}[{i}]"
        if m.username:
            user = session.scalar(select(User).where(User.username == m.username))
            if user is None or user.court_id != center.court_id or not user.is_active:
                raise ValidationFailed(f"{m.username!r} is no active user of this center's court",
                                       code="user_not_in_center", field=where)
            out.append(DutyMember(role=m.role, user_id=user.id, name=m.name or user.display_name,
                                  phone=m.phone))
        elif m.name:
            out.append(DutyMember(role=m.role, user_id=None, name=m.name, phone=m.phone))
        else:
            raise ValidationFailed("a member needs a username or a name", code="member_unnamed",
                                   field=where)
    if not any(m.role == DutyRole.LEADER for m in out):
        raise ValidationFailed("a shift needs a duty leader", code="leader_required", field=field)
    return out


def _check_free(session: Session, center_id: int, start: datetime, end: datetime) -> None:
    clash = session.scalar(select(DutyShift.id).where(
        DutyShift.center_id == center_id, DutyShift.starts_at < end, DutyShift.ends_at > start
    ).limit(1))
    if clash is not None:
        raise Conflict(f"the center already has shift {clash} at that time",
                       code="shift_overlaps", details={"shift_id": clash})


def _add_shift(session: Session, actor: Actor, center: CenterRef, start: datetime,
               end: datetime, pattern: ShiftPattern, members: list[DutyMember], *,
               team: str | None = None, phone: str | None = None, vehicles: str | None = None,
               note: str | None = None) -> DutyShift:
    _check_free(session, center.id, start, end)
    shift = DutyShift(center_id=center.id, starts_at=start, ends_at=end, pattern=pattern,
                      team=team, phone=phone or center.duty_phone, vehicles=vehicles, note=note,
                      created_by=actor.user_id, created_at=utcnow())
    session.add(shift)
    session.flush()
    for m in members:
        m.shift_id = shift.id
        session.add(m)
    session.flush()
    return shift


def create_shift(session: Session, actor: Actor, network: Network, body: ShiftIn) -> DutyShift:
    center = network.by_code(body.court_code, "court_code")
    policy.require_roster(actor, center)
    if not body.starts_at < body.ends_at <= body.starts_at + MAX_SHIFT:
        raise ValidationFailed("a shift ends after it starts, within 48 hours",
                               code="invalid_shift_time", field="ends_at")
    members = _members(session, center, body.members, "members")
    shift = _add_shift(session, actor, center, body.starts_at, body.ends_at, body.pattern,
                       members, team=body.team, phone=body.phone, vehicles=body.vehicles,
                       note=body.note)
    audit.record(session, actor, "command.shift_created", object_type="duty_shift",
                 object_id=shift.id, court_id=center.court_id,
                 details={"starts_at": shift.starts_at.isoformat(),
                          "ends_at": shift.ends_at.isoformat()})
    return shift


def create_roster(session: Session, actor: Actor, network: Network,
                  body: RosterIn) -> list[DutyShift]:
    center = network.by_code(body.court_code, "court_code")
    policy.require_roster(actor, center)
    if body.pattern == ShiftPattern.FIXED and len(body.teams) != 1:
        raise ValidationFailed("a fixed pattern has one team", code="fixed_needs_one_team",
                               field="teams")
    slots = rotation(body.first_day, body.days, body.handover_hour, body.shift_hours,
                     len(body.teams))
    shifts = []
    for start, end, team in slots:
        t = body.teams[team]
        shifts.append(_add_shift(session, actor, center, start, end, body.pattern,
                                 _members(session, center, t.members, f"teams[{team}].members"),
                                 team=t.name, phone=body.phone, vehicles=t.vehicles))
    audit.record(session, actor, "command.roster_created", object_type="duty_roster",
                 object_id=center.id, court_id=center.court_id,
                 details={"first_day": body.first_day.isoformat(), "days": body.days,
                          "pattern": str(body.pattern), "shifts": len(shifts)})
    return shifts


def members_of(session: Session, shift_ids: Collection[int]) -> dict[int, list[DutyMember]]:
    out: dict[int, list[DutyMember]] = {i: [] for i in shift_ids}
    if shift_ids:
        for m in session.scalars(select(DutyMember).where(DutyMember.shift_id.in_(shift_ids))
                                 .order_by(DutyMember.shift_id, DutyMember.id)):
            out[m.shift_id].append(m)
    return out


# --- who is on duty ----------------------------------------------------------------------------


@dataclass(frozen=True)
class OnDuty:
    center: CenterRef
    shift: DutyShift | None
    members: list[DutyMember]

    def by_role(self, role: DutyRole) -> list[DutyMember]:
        return [m for m in self.members if m.role == role]


def on_duty(session: Session, centers: Sequence[CenterRef],
            at: datetime | None = None) -> list[OnDuty]:
    """Who is on duty at each center at ``at`` (now by default)."""
    at = at or utcnow()
    ids = [c.id for c in centers]
    rows = session.scalars(select(DutyShift).where(
        DutyShift.center_id.in_(ids), DutyShift.starts_at <= at, DutyShift.ends_at > at)
        .order_by(DutyShift.starts_at)).all() if ids else []
    by_center = {s.center_id: s for s in rows}
    members = members_of(session, [s.id for s in rows])
    return [OnDuty(c, by_center.get(c.id), members.get(by_center[c.id].id, [])
                   if c.id in by_center else []) for c in centers]


def leader_on_duty(session: Session, center_id: int, at: datetime | None = None) -> int | None:
    """The user id of the duty leader on duty at ``center_id`` (if the roster names a user)."""
    at = at or utcnow()
    return session.scalar(select(DutyMember.user_id).join(
        DutyShift, DutyShift.id == DutyMember.shift_id).where(
        DutyShift.center_id == center_id, DutyShift.starts_at <= at, DutyShift.ends_at > at,
        DutyMember.role == DutyRole.LEADER, DutyMember.user_id.is_not(None)).limit(1))


def roster_roles(session: Session, center_id: int, user_id: int | None,
                 at: datetime | None = None) -> set[str]:
    """The roles ``user_id`` holds on ``center_id``'s shift at ``at`` (empty: not on duty)."""
    if user_id is None:
        return set()
    at = at or utcnow()
    return {str(r) for r in session.scalars(select(DutyMember.role).join(
        DutyShift, DutyShift.id == DutyMember.shift_id).where(
        DutyShift.center_id == center_id, DutyShift.starts_at <= at, DutyShift.ends_at > at,
        DutyMember.user_id == user_id))}


def staffed(session: Session, center_ids: Collection[int],
            at: datetime | None = None) -> set[int]:
    """Which of the centers have a platform user on their shift at ``at``: someone who can
    answer the desk's calls."""
    if not center_ids:
        return set()
    at = at or utcnow()
    return set(session.scalars(select(DutyShift.center_id).join(
        DutyMember, DutyMember.shift_id == DutyShift.id).where(
        DutyShift.center_id.in_(center_ids), DutyShift.starts_at <= at, DutyShift.ends_at > at,
        DutyMember.user_id.is_not(None)).distinct()))


def shifts_between(session: Session, center: CenterRef, start: datetime, end: datetime,
                   after_id: int | None, limit: int) -> list[DutyShift]:
    q = select(DutyShift).where(DutyShift.center_id == center.id, DutyShift.ends_at > start,
                                DutyShift.starts_at < end)
    if after_id is not None:
        q = q.where(DutyShift.id > after_id)
    return list(session.scalars(q.order_by(DutyShift.id).limit(limit + 1)))


# --- handover ----------------------------------------------------------------------------------


def open_requests_at(session: Session, center_id: int) -> list[AssistanceRequest]:
    """Open requests the center holds, asked for, or has not yet acknowledged."""
    held = select(Hop.request_id).where(Hop.to_center_id == center_id,
                                        Hop.handed_down_at.is_(None))
    return list(session.scalars(select(AssistanceRequest).where(
        AssistanceRequest.status == RequestStatus.OPEN,
        or_(AssistanceRequest.origin_center_id == center_id,
            and_(AssistanceRequest.id.in_(held)))).order_by(AssistanceRequest.id).limit(200)))


def last_handover(session: Session, center_id: int) -> Handover | None:
    return session.scalar(select(Handover).where(Handover.center_id == center_id)
                          .order_by(Handover.id.desc()).limit(1))


def hand_over(session: Session, actor: Actor, network: Network, body: HandoverIn) -> Handover:
    """The outgoing duty staff list the open items: theirs, the previous handover's not
    resolved, and every open request of the center."""
    center = policy.own_center(network, actor)
    policy.require_duty(actor, center)
    now = utcnow()
    previous = last_handover(session, center.id)
    if previous is not None and previous.acknowledged_at is None:
        raise Conflict("the previous handover is not acknowledged yet",
                       code="handover_pending", details={"handover_id": previous.id})
    items: list[dict[str, object]] = []
    seen: set[str] = set()
    for text in body.items:
        if text and text not in seen:
            items.append({"text": text})
            seen.add(text)
    if body.carry_previous and previous is not None:
        for item in previous.items:
            text = str(item.get("text", ""))
            if item.get("request_id") is None and text not in seen and text not in body.resolved:
                items.append({"text": text, "carried": True})
                seen.add(text)
    for req in open_requests_at(session, center.id):
        items.append({"text": f"{req.subject}（{req.place}）", "request_id": req.id})
    current = session.scalar(select(DutyShift).where(
        DutyShift.center_id == center.id, DutyShift.starts_at <= now, DutyShift.ends_at > now))
    following = session.scalar(select(DutyShift).where(
        DutyShift.center_id == center.id,
        DutyShift.starts_at >= (current.ends_at if current else now)).order_by(
        DutyShift.starts_at).limit(1))
    row = Handover(center_id=center.id, from_shift_id=current.id if current else None,
                   to_shift_id=following.id if following else None, items=items,
                   note=body.note, handed_over_by=actor.user_id, handed_over_at=now,
                   carried_from_id=previous.id if previous else None)
    session.add(row)
    session.flush()
    board.post(session, actor, "handover", f"交接班：{len(items)} 项未结事项",
               center_id=center.id, handover_id=row.id, items=len(items))
    audit.record(session, actor, "command.handover", object_type="handover", object_id=row.id,
                 court_id=center.court_id, details={"items": len(items)})
    return row


def get_handover(session: Session, actor: Actor, network: Network, handover_id: int) -> Handover:
    policy.require_read(actor)
    row = session.get(Handover, handover_id)
    if row is None or network.center(row.center_id).court_id not in actor.visible_court_ids:
        raise NotFound(f"handover {handover_id} not found", code="handover_not_found")
    return row


def acknowledge_handover(session: Session, actor: Actor, network: Network,
                         handover_id: int) -> Handover:
    """The incoming duty staff take the open items over."""
    row = get_handover(session, actor, network, handover_id)
    center = network.center(row.center_id)
    policy.require_duty(actor, center)
    if row.acknowledged_at is not None:
        raise Conflict("the handover is already acknowledged", code="already_acknowledged")
    if row.handed_over_by == actor.user_id:
        raise Conflict("the incoming duty staff acknowledge, not the outgoing",
                       code="same_person")
    row.acknowledged_at = utcnow()
    row.acknowledged_by = actor.user_id
    board.post(session, actor, "handover_acknowledged", "接班确认", center_id=center.id,
               handover_id=row.id)
    audit.record(session, actor, "command.handover_acknowledged", object_type="handover",
                 object_id=row.id, court_id=center.court_id)
    return row
