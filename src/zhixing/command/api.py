"""JSON API of the command center: the roster and who is on duty, handovers, roll calls,
assistance requests with their hops, evidence and results, escalations, figures."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from typing import Annotated

from fastapi import APIRouter, File, Form, Query, UploadFile
from pydantic import AwareDatetime, BaseModel
from sqlalchemy import select

from zhixing.command import (
    assistance,
    duty,
    escalation,
    figures,
    policy,
    presenters,
    rollcall,
    schemas,
)
from zhixing.command.models import AssistanceRequest, BoardEvent, RequestStatus, RollCall
from zhixing.command.network import CenterRef, Network
from zhixing.core.actor import Actor
from zhixing.core.clock import CHINA_TZ, utcnow
from zhixing.core.errors import NotFound, ValidationFailed
from zhixing.core.pagination import clamp_limit, cursor_int, page_from
from zhixing.field import dispatch as dispatches
from zhixing.web.deps import CurrentUser, DbSession, RecordId, SmallRecordId
from zhixing.web.errors import ERROR_RESPONSES

router = APIRouter(prefix="/api/v1/command", responses=ERROR_RESPONSES, tags=["command"])

Limit = Annotated[int | None, Query(description="page size, 1-200 (default 50)")]
Cursor = Annotated[str | None, Query(description="opaque cursor from the previous page")]
CourtQuery = Annotated[str | None, Query(max_length=16, description="court code (default: yours)")]


class OnDutyList(BaseModel):
    at: datetime
    items: list[presenters.OnDutyRead]
    next_cursor: str | None


class ShiftList(BaseModel):
    items: list[presenters.ShiftRead]
    next_cursor: str | None


class RollCallList(BaseModel):
    items: list[presenters.RollCallRead]
    next_cursor: str | None


class RequestList(BaseModel):
    items: list[presenters.RequestRead]
    next_cursor: str | None


class EventList(BaseModel):
    items: list[presenters.EventRead]
    next_cursor: str | None


def _center(network: Network, actor: Actor, code: str | None, field: str = "court") -> CenterRef:
    if not code:
        return policy.own_center(network, actor)
    center = network.by_code(code, field)
    if center.court_id not in actor.visible_court_ids:
        raise ValidationFailed(f"no court {code!r} within your reach", code="court_not_found",
                               field=field)
    return center


# --- duty --------------------------------------------------------------------------------------


@router.get("/duty", response_model=OnDutyList)
def who_is_on_duty(actor: CurrentUser, db: DbSession, court: CourtQuery = None,
                   at: Annotated[AwareDatetime | None, Query()] = None, limit: Limit = None,
                   cursor: Cursor = None) -> OnDutyList:
    """Who is on duty at a center and every center below it, now or at ``at``."""
    policy.require_read(actor)
    network = Network(db)
    root = _center(network, actor, court)
    n = clamp_limit(limit)
    after = cursor_int(cursor)
    node = network.node(root)
    centers = sorted((c for c in network.centers.values()
                      if network.node(c).path.startswith(node.path)), key=lambda c: c.id)
    if after is not None:
        centers = [c for c in centers if c.id > after]
    moment = at or utcnow()
    page = page_from(centers[:n + 1], n, lambda c: [c.id])
    rows = duty.on_duty(db, page.items, moment)
    return OnDutyList(at=moment, items=[presenters.on_duty_read(network, r) for r in rows],
                      next_cursor=page.next_cursor)


@router.get("/shifts", response_model=ShiftList)
def list_shifts(actor: CurrentUser, db: DbSession, court: CourtQuery = None,
                start: Annotated[date | None, Query(description="first day (China)")] = None,
                days: Annotated[int, Query(ge=1, le=62)] = 7, limit: Limit = None,
                cursor: Cursor = None) -> ShiftList:
    """A center's roster over some days."""
    policy.require_read(actor)
    network = Network(db)
    center = _center(network, actor, court)
    first = start or utcnow().astimezone(CHINA_TZ).date()
    begin = datetime.combine(first, time(0), CHINA_TZ).astimezone(UTC)
    n = clamp_limit(limit)
    rows = duty.shifts_between(db, center, begin, begin + timedelta(days=days),
                               cursor_int(cursor), n)
    page = page_from(rows, n, lambda s: [s.id])
    members = duty.members_of(db, [s.id for s in page.items])
    return ShiftList(items=[presenters.shift_read(network, s, members[s.id])
                            for s in page.items], next_cursor=page.next_cursor)


@router.post("/shifts", response_model=presenters.ShiftRead, status_code=201)
def create_shift(body: schemas.ShiftIn, actor: CurrentUser, db: DbSession) -> presenters.ShiftRead:
    network = Network(db)
    shift = duty.create_shift(db, actor, network, body)
    return presenters.shift_read(network, shift, duty.members_of(db, [shift.id])[shift.id])


@router.post("/rosters", response_model=ShiftList, status_code=201)
def create_roster(body: schemas.RosterIn, actor: CurrentUser, db: DbSession) -> ShiftList:
    """Shifts for some days at once: a fixed team, or teams rotating shift by shift."""
    network = Network(db)
    shifts = duty.create_roster(db, actor, network, body)
    members = duty.members_of(db, [s.id for s in shifts])
    return ShiftList(items=[presenters.shift_read(network, s, members[s.id]) for s in shifts],
                     next_cursor=None)


@router.post("/handovers", response_model=presenters.HandoverRead, status_code=201)
def hand_over(body: schemas.HandoverIn, actor: CurrentUser,
              db: DbSession) -> presenters.HandoverRead:
    """交接班: the outgoing duty staff list the open items (the center's open requests are
    added, and the previous handover's unresolved items carried over)."""
    network = Network(db)
    return presenters.handover_read(network, duty.hand_over(db, actor, network, body))


@router.get("/handovers/{handover_id}", response_model=presenters.HandoverRead)
def get_handover(handover_id: SmallRecordId, actor: CurrentUser,
                 db: DbSession) -> presenters.HandoverRead:
    network = Network(db)
    return presenters.handover_read(network, duty.get_handover(db, actor, network, handover_id))


@router.post("/handovers/{handover_id}/acknowledge", response_model=presenters.HandoverRead)
def acknowledge_handover(handover_id: SmallRecordId, actor: CurrentUser,
                         db: DbSession) -> presenters.HandoverRead:
    """The incoming duty staff take the items over (once: 409 after)."""
    network = Network(db)
    return presenters.handover_read(network, duty.acknowledge_handover(db, actor, network,
                                                                        handover_id))


# --- roll call ---------------------------------------------------------------------------------


def _roll_call_read(db: DbSession, network: Network, call: RollCall) -> presenters.RollCallRead:
    db.flush()
    return presenters.roll_call_read(network, call, rollcall.answers_of(db, call.id))


@router.post("/roll-calls", response_model=presenters.RollCallRead, status_code=201)
def start_roll_call(body: schemas.RollCallIn, actor: CurrentUser,
                    db: DbSession) -> presenters.RollCallRead:
    """The duty leader calls every center directly below his."""
    network = Network(db)
    return _roll_call_read(db, network, rollcall.start(db, actor, network, body))


@router.get("/roll-calls", response_model=RollCallList)
def list_roll_calls(actor: CurrentUser, db: DbSession, limit: Limit = None,
                    cursor: Cursor = None) -> RollCallList:
    """Roll calls by centers within reach, and those calling your center; newest first."""
    policy.require_read(actor)
    network = Network(db)
    n = clamp_limit(limit)
    q = select(RollCall).where(rollcall.visible(network, actor))  # type: ignore[arg-type]
    after = cursor_int(cursor)
    if after is not None:
        q = q.where(RollCall.id < after)
    rows = db.scalars(q.order_by(RollCall.id.desc()).limit(n + 1)).all()
    page = page_from(rows, n, lambda c: [c.id])
    return RollCallList(items=[_roll_call_read(db, network, c) for c in page.items],
                        next_cursor=page.next_cursor)


@router.get("/roll-calls/{roll_call_id}", response_model=presenters.RollCallRead)
def get_roll_call(roll_call_id: SmallRecordId, actor: CurrentUser,
                  db: DbSession) -> presenters.RollCallRead:
    network = Network(db)
    return _roll_call_read(db, network, rollcall.get(db, actor, network, roll_call_id))


@router.post("/roll-calls/{roll_call_id}/answer", response_model=presenters.AnswerRead)
def answer_roll_call(roll_call_id: SmallRecordId, body: schemas.AnswerIn, actor: CurrentUser,
                     db: DbSession) -> presenters.AnswerRead:
    """Your center's answer: nothing, or items needing coordination (optionally with an
    assistance request, sent to the calling center)."""
    network = Network(db)
    row = rollcall.answer(db, actor, network, roll_call_id, body)
    return presenters.answer_read(network, row)


# --- assistance requests -----------------------------------------------------------------------


def _detail(db: DbSession, network: Network, req: AssistanceRequest) -> presenters.RequestDetail:
    return presenters.request_detail(db, network, req)


@router.post("/requests", response_model=presenters.RequestDetail, status_code=201)
def open_request(body: schemas.RequestIn, actor: CurrentUser,
                 db: DbSession) -> presenters.RequestDetail:
    """Ask another center for assistance. It goes up to the parent center, down to a child,
    or across between city centers; a route outside the hierarchy is refused (422)."""
    network = Network(db)
    return _detail(db, network, assistance.open_request(db, actor, network, body))


@router.get("/requests", response_model=RequestList)
def list_requests(actor: CurrentUser, db: DbSession, limit: Limit = None, cursor: Cursor = None,
                  status: Annotated[RequestStatus | None, Query()] = None) -> RequestList:
    """Requests whose way touches your reach; newest first."""
    policy.require_read(actor)
    network = Network(db)
    n = clamp_limit(limit)
    q = assistance.visible(network, actor)
    if status is not None:
        q = q.where(AssistanceRequest.status == status)
    after = cursor_int(cursor)
    if after is not None:
        q = q.where(AssistanceRequest.id < after)
    rows = db.scalars(q.order_by(AssistanceRequest.id.desc()).limit(n + 1)).all()
    page = page_from(rows, n, lambda r: [r.id])
    hops = presenters.hops_by_id(db, [r.current_hop_id for r in page.items])
    return RequestList(items=[presenters.request_read(network, r, hops.get(
        r.current_hop_id or 0)) for r in page.items], next_cursor=page.next_cursor)


@router.get("/requests/{request_id}", response_model=presenters.RequestDetail)
def get_request(request_id: RecordId, actor: CurrentUser,
                db: DbSession) -> presenters.RequestDetail:
    network = Network(db)
    return _detail(db, network, assistance.get_request(db, actor, network, request_id))


@router.get("/requests/{request_id}/timeline", response_model=EventList)
def request_timeline(request_id: RecordId, actor: CurrentUser, db: DbSession,
                     limit: Limit = None, cursor: Cursor = None) -> EventList:
    """The whole chain as one timeline, oldest first."""
    network = Network(db)
    req = assistance.get_request(db, actor, network, request_id)
    n = clamp_limit(limit)
    q = select(BoardEvent).where(BoardEvent.request_id == req.id)
    after = cursor_int(cursor)
    if after is not None:
        q = q.where(BoardEvent.id > after)
    rows = db.scalars(q.order_by(BoardEvent.id).limit(n + 1)).all()
    page = page_from(rows, n, lambda e: [e.id])
    return EventList(items=[presenters.event_read(network, e) for e in page.items],
                     next_cursor=page.next_cursor)


@router.post("/requests/{request_id}/documents", response_model=presenters.EvidenceRead,
             status_code=201)
def add_evidence(request_id: RecordId, actor: CurrentUser, db: DbSession,
                 file: Annotated[UploadFile, File()],
                 note: Annotated[str | None, Form(max_length=255)] = None
                 ) -> presenters.EvidenceRead:
    """Evidence from the center acting on the request (photo, video, PDF...): SHA-256
    recorded, and attached to the asking case as a document."""
    network = Network(db)
    ev = assistance.add_evidence(db, actor, network, request_id, file.file,
                                 file.filename or "evidence", note)
    return presenters.evidence_read(ev)


@router.post("/requests/{request_id}/result", response_model=presenters.RequestDetail)
def report_result(request_id: RecordId, body: schemas.ResultIn, actor: CurrentUser,
                  db: DbSession) -> presenters.RequestDetail:
    """The acting center reports the result; it lands on the asking case's timeline."""
    network = Network(db)
    return _detail(db, network, assistance.report_result(db, actor, network, request_id, body))


@router.post("/requests/{request_id}/withdraw", response_model=presenters.RequestDetail)
def withdraw_request(request_id: RecordId, body: schemas.WithdrawIn, actor: CurrentUser,
                     db: DbSession) -> presenters.RequestDetail:
    """The asking center takes its open request back, with a reason. Every open hop closes,
    escalation stops, and later acknowledgements and results are refused (409
    ``request_withdrawn``). Another center: 403 ``not_your_request``; a request whose result
    is back: 409 ``request_finished``. Field teams still out on it are called off."""
    network = Network(db)
    req = assistance.withdraw(db, actor, network, request_id, body.reason)
    dispatches.call_off_for_request(db, actor, req.id, body.reason)
    return _detail(db, network, req)


@router.post("/hops/{hop_id}/acknowledge", response_model=presenters.RequestDetail)
def acknowledge_hop(hop_id: RecordId, actor: CurrentUser, db: DbSession,
                    body: schemas.AcknowledgeIn | None = None) -> presenters.RequestDetail:
    """签收: the center a hop is addressed to acknowledges it (once: 409 after; another
    center: 403)."""
    network = Network(db)
    hop = assistance.acknowledge(db, actor, network, hop_id, body.note if body else None)
    return _detail(db, network, assistance.get_request(db, actor, network, hop.request_id))


@router.post("/hops/{hop_id}/hand-down", response_model=presenters.RequestDetail)
def hand_down(hop_id: RecordId, actor: CurrentUser, db: DbSession,
              body: schemas.ForwardIn | None = None) -> presenters.RequestDetail:
    """Pass the request on from the center holding it: by default down towards the place
    (across to the place's city, or up, when the place is outside the holder's area)."""
    network = Network(db)
    body = body or schemas.ForwardIn()
    hop = assistance.forward(db, actor, network, hop_id, body.to_court_code, body.note)
    return _detail(db, network, assistance.get_request(db, actor, network, hop.request_id))


@router.post("/escalations/{escalation_id}/acknowledge",
             response_model=presenters.EscalationRead)
def acknowledge_escalation(escalation_id: RecordId, actor: CurrentUser,
                           db: DbSession) -> presenters.EscalationRead:
    network = Network(db)
    return presenters.escalation_read(network, escalation.acknowledge(db, actor, network,
                                                                       escalation_id))


# --- figures -----------------------------------------------------------------------------------


@router.get("/figures", response_model=figures.Figures)
def command_figures(actor: CurrentUser, db: DbSession, court: CourtQuery = None,
                    start: Annotated[date | None, Query(description="first day (China)")] = None,
                    end: Annotated[date | None, Query(description="last day (China)")] = None
                    ) -> figures.Figures:
    """Coordinations, cases assisted, median times to acknowledge and to complete, by center
    (the court and every court below it) over a period of days (default: the last 30)."""
    policy.require_read(actor)
    network = Network(db)
    root = _center(network, actor, court)
    today = utcnow().astimezone(CHINA_TZ).date()
    last = end or today
    first = start or last - timedelta(days=29)
    if first > last or (last - first).days > 366:
        raise ValidationFailed("the period runs forward, at most a year", code="invalid_period",
                               field="start")
    node = network.node(root)
    centers = [c for c in network.in_reach(actor.visible_court_ids)
               if network.node(c).path.startswith(node.path)]
    if not centers:
        raise NotFound("court not found", code="court_not_found")
    begin = datetime.combine(first, time(0), CHINA_TZ).astimezone(UTC)
    finish = datetime.combine(last + timedelta(days=1), time(0), CHINA_TZ).astimezone(UTC)
    return figures.compute(db, centers, begin, finish)
