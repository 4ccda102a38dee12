"""Roll call (点名): at takeover the duty leader calls every center directly below his; each
answers "nothing" or "items needing coordination" (optionally opening an assistance request to
the caller) within the time limit. The sweep flags the centers that did not answer."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from zhixing.command import assistance, board, policy
from zhixing.command.limits import LIMITS
from zhixing.command.models import AnswerStatus, RollCall, RollCallAnswer
from zhixing.command.network import Network
from zhixing.command.schemas import AnswerIn, RollCallIn
from zhixing.core import audit
from zhixing.core.actor import Actor
from zhixing.core.clock import utcnow
from zhixing.core.db import lock_for_update
from zhixing.core.errors import Conflict, Forbidden, NotFound, ValidationFailed


def start(session: Session, actor: Actor, network: Network, body: RollCallIn) -> RollCall:
    center = policy.own_center(network, actor)
    policy.require_duty(actor, center, leader=True)
    called = network.subordinates(center)
    if not called:
        raise ValidationFailed("this center has no subordinate centers to call",
                               code="no_subordinate_centers")
    within = (timedelta(minutes=body.answer_within_minutes) if body.answer_within_minutes
              else LIMITS.roll_call_answer)
    now = utcnow()
    call = RollCall(center_id=center.id, started_by=actor.user_id, started_at=now,
                    answer_by=now + within, note=body.note)
    session.add(call)
    session.flush()
    for c in called:
        session.add(RollCallAnswer(roll_call_id=call.id, center_id=c.id,
                                   status=AnswerStatus.PENDING, answer_by=call.answer_by))
    session.flush()
    board.post(session, actor, "roll_call", f"{center.name} 点名：{len(called)} 个中心",
               roll_call_id=call.id, center_id=center.id, called=len(called),
               answer_by=call.answer_by.isoformat())
    audit.record(session, actor, "command.roll_call_started", object_type="roll_call",
                 object_id=call.id, court_id=center.court_id,
                 details={"called": [c.code for c in called],
                          "answer_by": call.answer_by.isoformat()})
    return call


def answers_of(session: Session, roll_call_id: int) -> list[RollCallAnswer]:
    return list(session.scalars(select(RollCallAnswer).where(
        RollCallAnswer.roll_call_id == roll_call_id).order_by(RollCallAnswer.id)))


def get(session: Session, actor: Actor, network: Network, roll_call_id: int) -> RollCall:
    """Seen within reach of the calling center, and by every center called."""
    policy.require_read(actor)
    call = session.get(RollCall, roll_call_id)
    ids = policy.visible_center_ids(network, actor)
    if call is None or (call.center_id not in ids and session.scalar(
            select(RollCallAnswer.id).where(RollCallAnswer.roll_call_id == call.id,
                                            RollCallAnswer.center_id.in_(ids))) is None):
        raise NotFound(f"roll call {roll_call_id} not found", code="roll_call_not_found")
    return call


def visible(network: Network, actor: Actor) -> object:
    ids = policy.visible_center_ids(network, actor)
    called = select(RollCallAnswer.roll_call_id).where(RollCallAnswer.center_id.in_(ids))
    return or_(RollCall.center_id.in_(ids), RollCall.id.in_(called))


def answer(session: Session, actor: Actor, network: Network, roll_call_id: int,
           body: AnswerIn) -> RollCallAnswer:
    call = get(session, actor, network, roll_call_id)
    center = policy.own_center(network, actor)
    row = session.scalar(select(RollCallAnswer).where(
        RollCallAnswer.roll_call_id == call.id, RollCallAnswer.center_id == center.id))
    if row is None:
        raise Forbidden("your center is not called in this roll call", code="not_called")
    policy.require_duty(actor, center)
    lock_for_update(session, RollCallAnswer, row.id)
    session.refresh(row)
    if row.status != AnswerStatus.PENDING:
        raise Conflict("your center has already answered", code="already_answered")
    if body.status == AnswerStatus.PENDING:
        raise ValidationFailed("answer nothing or items", code="invalid_answer", field="status")
    if body.status == AnswerStatus.NOTHING and body.request is not None:
        raise ValidationFailed("a request comes with items", code="request_needs_items",
                               field="request")
    if body.status == AnswerStatus.ITEMS and not (body.text or body.request):
        raise ValidationFailed("say what needs coordination", code="text_required",
                               field="text")
    now = utcnow()
    row.status = body.status
    row.answered_at = now
    row.answered_by = actor.user_id
    row.text = body.text or (body.request.subject if body.request else None)
    if body.request is not None:
        req = assistance.open_request(session, actor, network, body.request,
                                      to_center=network.center(call.center_id),
                                      roll_call_answer_id=row.id)
        row.request_id = req.id
    late = now > row.answer_by
    said = "无事项" if body.status == AnswerStatus.NOTHING else f"有需协调事项：{row.text}"
    board.post(session, actor, "roll_call_answer", f"{center.name} 应答：{said}",
               roll_call_id=call.id, center_id=center.id, caller_center_id=call.center_id,
               request_id=row.request_id, late=late)
    audit.record(session, actor, "command.roll_call_answered", object_type="roll_call",
                 object_id=call.id, court_id=center.court_id,
                 details={"status": str(body.status), "late": late,
                          "request_id": row.request_id})
    return row
