"""Read shapes of the command center, shared by the JSON API and the console pages."""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field
from sqlalchemy import select
from sqlalchemy.orm import Session

from zhixing.command import assistance, calls, duty, escalation
from zhixing.command.limits import LIMITS
from zhixing.command.models import (
    AssistanceRequest,
    BoardEvent,
    DutyMember,
    DutyShift,
    Escalation,
    Evidence,
    Handover,
    Hop,
    RollCall,
    RollCallAnswer,
    VideoCall,
)
from zhixing.command.network import CenterRef, Network
from zhixing.core.clock import utcnow
from zhixing.courts.models import User


class CenterRead(BaseModel):
    court_code: str
    name: str
    level: str


class MemberRead(BaseModel):
    role: str
    name: str
    user_id: int | None
    phone: str | None


class ShiftRead(BaseModel):
    id: int
    court_code: str
    starts_at: datetime
    ends_at: datetime
    pattern: str
    team: str | None
    phone: str | None
    vehicles: str | None
    note: str | None
    members: list[MemberRead]


class OnDutyRead(BaseModel):
    center: CenterRead
    duty_phone: str | None
    shift: ShiftRead | None


class HandoverRead(BaseModel):
    id: int
    center: CenterRead
    from_shift_id: int | None
    to_shift_id: int | None
    items: list[dict[str, Any]]
    note: str | None
    handed_over_by: int
    handed_over_at: datetime
    acknowledged_by: int | None
    acknowledged_at: datetime | None


class AnswerRead(BaseModel):
    center: CenterRead
    status: str
    answer_by: datetime
    answered_at: datetime | None
    text: str | None
    request_id: int | None
    overdue: bool
    late: bool


class RollCallRead(BaseModel):
    id: int
    center: CenterRead
    started_at: datetime
    answer_by: datetime
    note: str | None
    answers: list[AnswerRead]


class HopRead(BaseModel):
    id: int
    seq: int
    from_center: CenterRead
    to_center: CenterRead
    sent_at: datetime
    ack_by: datetime
    acknowledged_at: datetime | None
    acknowledged_by: int | None
    handed_down_at: datetime | None
    note: str | None


class EscalationRead(BaseModel):
    id: int
    request_id: int
    hop_id: int
    kind: str
    late_center: CenterRead
    to_center: CenterRead
    to_user_id: int | None
    due_at: datetime
    escalated_at: datetime
    acknowledged_at: datetime | None


class EvidenceRead(BaseModel):
    id: int
    filename: str
    content_type: str
    size_bytes: int
    sha256: str
    case_document_id: int | None
    uploaded_at: datetime
    note: str | None


class Clock(BaseModel):
    what: str  # acknowledge / act
    due_at: datetime
    seconds_left: int
    state: str  # ok / warn / overdue


class RequestRead(BaseModel):
    id: int
    kind: str
    urgency: str
    status: str
    origin: CenterRead
    place_court: CenterRead
    place: str
    subject: str
    details: str
    case_id: int | None
    created_at: datetime
    act_by: datetime
    escalation_count: int
    current_hop_id: int | None
    holder: CenterRead | None
    clock: Clock | None
    result_at: datetime | None
    result_center: CenterRead | None
    result_summary: str | None


class RequestDetail(RequestRead):
    hops: list[HopRead]
    escalations: list[EscalationRead]
    evidence: list[EvidenceRead]


class EventRead(BaseModel):
    id: int
    occurred_at: datetime
    kind: str
    summary: str
    actor_name: str | None
    center: CenterRead | None
    request_id: int | None
    roll_call_id: int | None


def center_read(c: CenterRef) -> CenterRead:
    return CenterRead(court_code=c.code, name=c.name, level=c.level)


def shift_read(network: Network, s: DutyShift, members: list[DutyMember]) -> ShiftRead:
    return ShiftRead(id=s.id, court_code=network.center(s.center_id).code, starts_at=s.starts_at,
                     ends_at=s.ends_at, pattern=str(s.pattern), team=s.team, phone=s.phone,
                     vehicles=s.vehicles, note=s.note,
                     members=[MemberRead(role=str(m.role), name=m.name, user_id=m.user_id,
                                         phone=m.phone) for m in members])


def on_duty_read(network: Network, row: duty.OnDuty) -> OnDutyRead:
    return OnDutyRead(center=center_read(row.center), duty_phone=row.center.duty_phone,
                      shift=shift_read(network, row.shift, row.members) if row.shift else None)


def handover_read(network: Network, h: Handover) -> HandoverRead:
    return HandoverRead(id=h.id, center=center_read(network.center(h.center_id)),
                        from_shift_id=h.from_shift_id, to_shift_id=h.to_shift_id, items=h.items,
                        note=h.note, handed_over_by=h.handed_over_by,
                        handed_over_at=h.handed_over_at, acknowledged_by=h.acknowledged_by,
                        acknowledged_at=h.acknowledged_at)


def answer_read(network: Network, a: RollCallAnswer) -> AnswerRead:
    return AnswerRead(center=center_read(network.center(a.center_id)), status=str(a.status),
                      answer_by=a.answer_by, answered_at=a.answered_at, text=a.text,
                      request_id=a.request_id, overdue=a.overdue_at is not None,
                      late=(a.answered_at or utcnow()) > a.answer_by)


def roll_call_read(network: Network, call: RollCall,
                   answers: list[RollCallAnswer]) -> RollCallRead:
    return RollCallRead(id=call.id, center=center_read(network.center(call.center_id)),
                        started_at=call.started_at, answer_by=call.answer_by, note=call.note,
                        answers=[answer_read(network, a) for a in answers])


def clock_of(hop: Hop | None, req: AssistanceRequest, now: datetime | None = None) -> Clock | None:
    deadline = assistance.deadline_of(hop, req)
    if deadline is None:
        return None
    what, due = deadline
    now = now or utcnow()
    left = int((due - now).total_seconds())
    start = hop.sent_at if what == "acknowledge" and hop is not None else req.created_at
    span = max(1.0, (due - start).total_seconds())
    state = "overdue" if left < 0 else "warn" if left < span * LIMITS.warn_share else "ok"
    return Clock(what=what, due_at=due, seconds_left=left, state=state)


def request_read(network: Network, req: AssistanceRequest, hop: Hop | None) -> RequestRead:
    holder = network.center(hop.to_center_id) if hop is not None and req.status == "open" \
        else None
    return RequestRead(
        id=req.id, kind=str(req.kind), urgency=str(req.urgency), status=str(req.status),
        origin=center_read(network.center(req.origin_center_id)),
        place_court=center_read(network.center_of_court[req.place_court_id]), place=req.place,
        subject=req.subject, details=req.details, case_id=req.case_id,
        created_at=req.created_at, act_by=req.act_by, escalation_count=req.escalations,
        current_hop_id=req.current_hop_id,
        holder=center_read(holder) if holder else None, clock=clock_of(hop, req),
        result_at=req.result_at,
        result_center=center_read(network.center(req.result_center_id))
        if req.result_center_id else None, result_summary=req.result_summary)


def hops_by_id(session: Session, ids: Collection[int | None]) -> dict[int, Hop]:
    wanted = [i for i in ids if i is not None]
    return {h.id: h for h in session.scalars(select(Hop).where(Hop.id.in_(wanted)))} \
        if wanted else {}


def hop_read(network: Network, h: Hop) -> HopRead:
    return HopRead(id=h.id, seq=h.seq, from_center=center_read(network.center(h.from_center_id)),
                   to_center=center_read(network.center(h.to_center_id)), sent_at=h.sent_at,
                   ack_by=h.ack_by, acknowledged_at=h.acknowledged_at,
                   acknowledged_by=h.acknowledged_by, handed_down_at=h.handed_down_at,
                   note=h.note)


def escalation_read(network: Network, e: Escalation) -> EscalationRead:
    return EscalationRead(id=e.id, request_id=e.request_id, hop_id=e.hop_id, kind=str(e.kind),
                          late_center=center_read(network.center(e.late_center_id)),
                          to_center=center_read(network.center(e.to_center_id)),
                          to_user_id=e.to_user_id, due_at=e.due_at, escalated_at=e.escalated_at,
                          acknowledged_at=e.acknowledged_at)


def evidence_read(e: Evidence) -> EvidenceRead:
    return EvidenceRead(id=e.id, filename=e.filename, content_type=e.content_type,
                        size_bytes=e.size_bytes, sha256=e.sha256,
                        case_document_id=e.case_document_id, uploaded_at=e.uploaded_at,
                        note=e.note)


def request_detail(session: Session, network: Network, req: AssistanceRequest) -> RequestDetail:
    session.flush()
    hops = assistance.hops_of(session, req.id)
    current = next((h for h in hops if h.id == req.current_hop_id), None)
    base = request_read(network, req, current)
    return RequestDetail(
        **base.model_dump(), hops=[hop_read(network, h) for h in hops],
        escalations=[escalation_read(network, e)
                     for e in escalation.escalations_of(session, req.id)],
        evidence=[evidence_read(e) for e in assistance.evidence_of(session, req.id)])


def event_read(network: Network, e: BoardEvent) -> EventRead:
    return EventRead(id=e.id, occurred_at=e.occurred_at, kind=e.kind, summary=e.summary,
                     actor_name=e.actor_name,
                     center=center_read(network.center(e.center_id)) if e.center_id else None,
                     request_id=e.request_id, roll_call_id=e.roll_call_id)


def user_names(session: Session, ids: Collection[int | None]) -> dict[int, str]:
    wanted = {i for i in ids if i is not None}
    if not wanted:
        return {}
    return dict(session.execute(select(User.id, User.display_name).where(User.id.in_(wanted)))
                .tuples().all())


# --- video calls -------------------------------------------------------------------------------


class CallRead(BaseModel):
    id: int
    state: str = Field(description="ringing, connected, ended, declined, missed or failed")
    caller_center: CenterRead
    callee_center: CenterRead
    caller_id: int
    caller_name: str | None
    created_at: datetime
    ring_until: datetime
    answered_at: datetime | None
    answered_by: int | None
    answered_by_name: str | None
    ended_at: datetime | None
    ended_by: int | None = Field(description="None when the platform ended it (missed)")
    ended_by_name: str | None
    ended_side: str | None = Field(description="caller, callee or platform")
    duration_seconds: int | None = Field(description="answered to ended")
    last_seq: int = Field(description="the number of the call's newest signalling message")
    your_side: str | None = Field(description="caller or callee when you speak for a side")
    you_may_answer: bool


def call_read(session: Session, network: Network, call: VideoCall,
              me: calls.Party) -> CallRead:
    names = user_names(session, [call.caller_id, call.answered_by, call.ended_by])
    return CallRead(
        id=call.id, state=str(call.state),
        caller_center=center_read(network.center(call.caller_center_id)),
        callee_center=center_read(network.center(call.callee_center_id)),
        caller_id=call.caller_id, caller_name=names.get(call.caller_id),
        created_at=call.created_at, ring_until=call.ring_until, answered_at=call.answered_at,
        answered_by=call.answered_by, answered_by_name=names.get(call.answered_by or 0),
        ended_at=call.ended_at, ended_by=call.ended_by,
        ended_by_name=names.get(call.ended_by or 0),
        ended_side=str(call.ended_side) if call.ended_side else None,
        duration_seconds=call.duration_seconds, last_seq=call.last_seq,
        your_side=str(me.side) if me.side else None, you_may_answer=me.may_answer)
