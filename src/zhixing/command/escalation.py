"""The command center's sweep (a recurring job): flags roll-call answers past their time,
escalates overdue hops to the duty leader of the next level up (a hop not acknowledged in time,
or a request its holder has not acted on by the deadline), and ends video calls a side of which
went away without hanging up. Each (hop, kind) escalates once; the
escalation is a row, a flag on the request and an event on every board that watches."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import and_, exists, select
from sqlalchemy.orm import Session

from zhixing.command import board, calls, duty, policy, routing
from zhixing.command.limits import LIMITS
from zhixing.command.models import (
    AnswerStatus,
    AssistanceRequest,
    Escalation,
    EscalationKind,
    Hop,
    RequestStatus,
    RollCallAnswer,
)
from zhixing.command.network import Network
from zhixing.core import audit, jobs
from zhixing.core.actor import SYSTEM, Actor
from zhixing.core.clock import utcnow
from zhixing.core.errors import Conflict, NotFound

BATCH = 500


@dataclass
class SweepResult:
    roll_call_overdue: int = 0
    escalated: int = 0
    calls_lost: int = 0


def _escalate(session: Session, network: Network, req: AssistanceRequest, hop: Hop,
              kind: EscalationKind, due: datetime, now: datetime) -> Escalation:
    late = network.center(hop.to_center_id)
    target = network.of_node(routing.escalation_target(network.tree, network.node(late)))
    row = Escalation(request_id=req.id, hop_id=hop.id, kind=kind, late_center_id=late.id,
                     to_center_id=target.id, to_user_id=duty.leader_on_duty(session, target.id,
                                                                            now),
                     due_at=due, escalated_at=now)
    session.add(row)
    req.escalations += 1
    session.flush()
    what = "未按时签收" if kind == EscalationKind.NOT_ACKNOWLEDGED else "未按时办结"
    board.post(session, SYSTEM, "escalated", f"督办：{late.name} {what}，报 {target.name} 值班领导",
               request_id=req.id, center_id=target.id, late_center_id=late.id,
               escalation_id=row.id, escalation_kind=str(kind))
    audit.record(session, SYSTEM, "command.escalated", object_type="assistance_escalation",
                 object_id=row.id, court_id=target.court_id, case_id=req.case_id,
                 details={"request_id": req.id, "hop_id": hop.id, "kind": str(kind),
                          "late": late.code, "to": target.code})
    return row


def sweep(session: Session, now: datetime | None = None) -> SweepResult:
    now = now or utcnow()
    out = SweepResult()
    network: Network | None = None
    # 1. roll-call answers past their time
    for ans in session.scalars(select(RollCallAnswer).where(
            RollCallAnswer.status == AnswerStatus.PENDING, RollCallAnswer.overdue_at.is_(None),
            RollCallAnswer.answer_by < now).order_by(RollCallAnswer.id).limit(BATCH)):
        network = network or Network(session)
        ans.overdue_at = now
        center = network.center(ans.center_id)
        board.post(session, SYSTEM, "roll_call_overdue", f"{center.name} 点名未应答",
                   roll_call_id=ans.roll_call_id, center_id=center.id)
        out.roll_call_overdue += 1
    # 2. hops not acknowledged in time
    not_escalated = ~exists().where(Escalation.hop_id == Hop.id,
                                    Escalation.kind == EscalationKind.NOT_ACKNOWLEDGED)
    rows = session.execute(select(Hop, AssistanceRequest).join(
        AssistanceRequest, AssistanceRequest.id == Hop.request_id).where(
        Hop.acknowledged_at.is_(None), Hop.ack_by < now,
        AssistanceRequest.status == RequestStatus.OPEN, not_escalated)
        .order_by(Hop.id).limit(BATCH)).tuples().all()
    for hop, req in rows:
        network = network or Network(session)
        _escalate(session, network, req, hop, EscalationKind.NOT_ACKNOWLEDGED, hop.ack_by, now)
        out.escalated += 1
    # 3. requests not acted on by their deadline: the center holding it is late
    not_done_yet = ~exists().where(Escalation.hop_id == Hop.id,
                                   Escalation.kind == EscalationKind.NOT_DONE)
    rows = session.execute(select(Hop, AssistanceRequest).join(
        AssistanceRequest, and_(AssistanceRequest.current_hop_id == Hop.id)).where(
        AssistanceRequest.status == RequestStatus.OPEN, AssistanceRequest.act_by < now,
        Hop.acknowledged_at.is_not(None), not_done_yet)
        .order_by(Hop.id).limit(BATCH)).tuples().all()
    for hop, req in rows:
        network = network or Network(session)
        _escalate(session, network, req, hop, EscalationKind.NOT_DONE, req.act_by, now)
        out.escalated += 1
    # 4. video calls whose side went away without hanging up
    out.calls_lost = calls.end_lost(session, network, now)
    return out


def escalations_of(session: Session, request_id: int) -> list[Escalation]:
    return list(session.scalars(select(Escalation).where(Escalation.request_id == request_id)
                                .order_by(Escalation.id)))


def acknowledge(session: Session, actor: Actor, network: Network,
                escalation_id: int) -> Escalation:
    """The duty leader the escalation went to takes note of it (and takes it up)."""
    row = session.get(Escalation, escalation_id)
    ids = policy.visible_center_ids(network, actor)
    if row is None or (row.to_center_id not in ids and row.late_center_id not in ids):
        raise NotFound(f"escalation {escalation_id} not found", code="escalation_not_found")
    center = network.center(row.to_center_id)
    policy.require_duty(actor, center, leader=True)
    if row.acknowledged_at is not None:
        raise Conflict("the escalation is already acknowledged", code="already_acknowledged")
    row.acknowledged_at = utcnow()
    row.acknowledged_by = actor.user_id
    board.post(session, actor, "escalation_acknowledged", f"{center.name} 值班领导已督办",
               request_id=row.request_id, center_id=center.id, escalation_id=row.id)
    audit.record(session, actor, "command.escalation_acknowledged",
                 object_type="assistance_escalation", object_id=row.id,
                 court_id=center.court_id, details={"request_id": row.request_id})
    return row


@jobs.handler("command.sweep")
def run(session: Session, _payload: dict[str, Any]) -> None:
    sweep(session)


def schedule_recurring(session: Session) -> None:
    jobs.enqueue(session, "command.sweep", dedupe_key="recurring:command.sweep",
                 interval=LIMITS.sweep_interval)
