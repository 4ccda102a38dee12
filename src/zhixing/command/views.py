"""Console pages of the command center: the duty desk (/command) with who is on duty here and
below, the roll call, the open requests and their clocks, escalations; the request page with
its one timeline and the actions this center may take. Both follow the network live (SSE;
one board poll per process, see :mod:`live`)."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncIterator, Callable
from typing import Annotated, Any

from fastapi import APIRouter, File, Form, Query, Request, UploadFile
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import RedirectResponse, Response, StreamingResponse
from pydantic import ValidationError
from sqlalchemy import select
from sqlalchemy.orm import Session

from zhixing.cases.models import Case
from zhixing.command import (
    assistance,
    board,
    call_views,
    duty,
    escalation,
    policy,
    presenters,
    rollcall,
    routing,
    schemas,
    terms,
)
from zhixing.command.live import WATCH
from zhixing.command.models import (
    AnswerStatus,
    AssistanceRequest,
    BoardEvent,
    Escalation,
    Hop,
    RequestStatus,
    RollCall,
    RollCallAnswer,
)
from zhixing.command.network import CenterRef, Network
from zhixing.core.actor import Actor
from zhixing.core.clock import utcnow
from zhixing.core.db import session_factory
from zhixing.core.errors import DomainError, ValidationFailed
from zhixing.field import dispatch as dispatches
from zhixing.field import policy as field_policy
from zhixing.field.models import Dispatch
from zhixing.web import i18n, sse
from zhixing.web.deps import ConsoleUser, DbSession, RecordId, SmallRecordId
from zhixing.web.errors import form_error
from zhixing.web.templating import render, templates

router = APIRouter(include_in_schema=False)

STREAM_SECONDS = 600
HEARTBEAT_SECONDS = 15.0
SECTIONS = ("duty", "rollcall", "requests", "events", "calls", "video")


# --- what the desk shows -----------------------------------------------------------------------


def desk_context(session: Session, actor: Actor, network: Network) -> dict[str, Any]:
    center = policy.own_center(network, actor)
    below = network.subordinates(center)
    now = utcnow()
    ids = policy.visible_center_ids(network, actor)
    calls = list(session.scalars(select(RollCall).where(RollCall.center_id == center.id)
                                 .order_by(RollCall.id.desc()).limit(1)))
    my_call = calls[0] if calls else None
    pending = session.execute(select(RollCallAnswer, RollCall).join(
        RollCall, RollCall.id == RollCallAnswer.roll_call_id).where(
        RollCallAnswer.center_id == center.id, RollCallAnswer.status == AnswerStatus.PENDING)
        .order_by(RollCallAnswer.id.desc()).limit(1)).tuples().first()
    open_rows = list(session.scalars(assistance.visible(network, actor).where(
        AssistanceRequest.status == RequestStatus.OPEN).order_by(
        AssistanceRequest.act_by, AssistanceRequest.id).limit(100)))
    closed_rows = list(session.scalars(assistance.visible(network, actor).where(
        AssistanceRequest.status != RequestStatus.OPEN).order_by(
        AssistanceRequest.result_at.desc(), AssistanceRequest.id.desc()).limit(10)))
    hops = presenters.hops_by_id(session, [r.current_hop_id for r in open_rows + closed_rows])
    # Escalations of closed (done, failed, withdrawn) requests no longer wait for anyone.
    esc = list(session.scalars(select(Escalation).join(
        AssistanceRequest, AssistanceRequest.id == Escalation.request_id).where(
        Escalation.to_center_id.in_(ids), Escalation.acknowledged_at.is_(None),
        AssistanceRequest.status == RequestStatus.OPEN)
        .order_by(Escalation.id.desc()).limit(50)))
    events = list(session.scalars(select(BoardEvent).where(
        BoardEvent.center_id.in_(ids) | BoardEvent.request_id.in_(
            [r.id for r in open_rows + closed_rows])).order_by(BoardEvent.id.desc()).limit(15)))
    return {
        "actor": actor, "center": center, "now": now,
        "duty": duty.on_duty(session, [center, *below], now),
        "my_call": my_call,
        "my_call_answers": [presenters.answer_read(network, a)
                            for a in rollcall.answers_of(session, my_call.id)] if my_call else [],
        "pending_answer": pending,
        "pending_caller": network.center(pending[1].center_id) if pending else None,
        "open": [presenters.request_read(network, r, hops.get(r.current_hop_id or 0))
                 for r in open_rows],
        "closed": [presenters.request_read(network, r, hops.get(r.current_hop_id or 0))
                   for r in closed_rows],
        "escalations": [presenters.escalation_read(network, e) for e in esc],
        "events": [presenters.event_read(network, e) for e in events],
        "is_duty": actor.has_role(*policy.DUTY_ROLES),
        "is_leader": actor.has_role(*policy.LEADER_ROLES),
        "my_center_id": center.id, "terms": terms,
        "last_handover": duty.last_handover(session, center.id),
        **call_views.desk_calls(session, actor, network, center, now),
    }


def _fragment(name: str, context: dict[str, Any]) -> str:
    return templates.env.get_template(name).render(**context)


def _desk(request: Request, actor: Actor, db: DbSession, error: DomainError | None = None
          ) -> Response:
    policy.require_read(actor)
    network = Network(db)
    version = board.head(db)  # before reading: the stream resends what moved after this
    ctx = desk_context(db, actor, network)
    ctx.update({"error": error, "version": version,
                "courts": sorted(network.tree.by_code)})
    return render(request, "command/desk.html", ctx,
                  status_code=error.status_code if error else 200)


@router.get("/command")
def desk_page(request: Request, actor: ConsoleUser, db: DbSession) -> Response:
    return _desk(request, actor, db)


async def _stream(request: Request, render_sections: Callable[[], tuple[int, dict[str, str]]],
                  since: int | None) -> AsyncIterator[str]:
    """Sections re-rendered when the board moves, each sent only when its HTML changed. The
    first look is a baseline when the page was rendered at the current version: swapping
    identical HTML would close a form the user has just opened."""
    yield "retry: 3000\n\n"
    sent: dict[str, str] = {}
    seen = -1
    first = True
    loop = asyncio.get_running_loop()
    deadline = loop.time() + STREAM_SECONDS
    while loop.time() < deadline:
        if await request.is_disconnected():
            return
        version = await WATCH.wait_past(seen, HEARTBEAT_SECONDS)
        if version == seen:
            yield ": waiting\n\n"
            continue
        seen = version
        head, sections = await run_in_threadpool(render_sections)
        quiet = first and since is not None and head <= since
        first = False
        for name, html in sections.items():
            digest = hashlib.sha256(html.encode()).hexdigest()
            if sent.get(name) != digest:
                sent[name] = digest
                if not quiet:
                    yield sse.message(name, html, version)


@router.get("/command/stream")
async def desk_stream(request: Request, actor: ConsoleUser, db: DbSession,
                      since: Annotated[int | None, Query(ge=0, le=2**62)] = None
                      ) -> StreamingResponse:
    """The desk's sections as SSE messages of HTML (htmx ``sse-swap``), each sent when it
    changed: ``duty``, ``rollcall``, ``requests``, ``events``, and the video calls: ``calls``
    (the ringing banner, your calls) and ``video`` (the centers you may call)."""
    policy.require_read(actor)
    db.commit()
    locale = i18n.current_locale.get()
    csrf = getattr(request.state, "csrf_token", "")

    def render_sections() -> tuple[int, dict[str, str]]:
        token = i18n.current_locale.set(locale)
        try:
            with session_factory()() as session:
                ctx = desk_context(session, actor, Network(session))
                head = board.head(session)  # after reading: what the render may include
                session.commit()
            ctx.update({"locale": locale, "csrf_token": csrf})
            return head, {name: _fragment(f"command/_{name}.html", ctx) for name in SECTIONS}
        finally:
            i18n.current_locale.reset(token)

    return sse.response(_stream(request, render_sections, since))


# --- forms on the desk -------------------------------------------------------------------------


def _act(request: Request, actor: Actor, db: DbSession, act: Callable[[], object],
         back: Callable[[object], str], page: Callable[[DomainError], Response]) -> Response:
    try:
        result = act()
    except (DomainError, ValidationError) as exc:
        db.rollback()
        return page(form_error(exc))
    return RedirectResponse(back(result), status_code=303)


def _clean(form: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in form.items() if k != "csrf_token" and v not in ("", None)}


def _request_body(data: dict[str, Any], prefix: str = "") -> schemas.RequestIn:
    fields = ("kind", "urgency", "place_court_code", "place", "subject", "details", "case_id",
              "to_court_code")
    picked = {f: data[prefix + f] for f in fields if data.get(prefix + f) not in (None, "")}
    return schemas.RequestIn.model_validate(picked)


def _resolve_case(db: DbSession, body: schemas.RequestIn, raw: dict[str, Any],
                  prefix: str = "") -> schemas.RequestIn:
    number = raw.get(prefix + "case_number")
    if number and body.case_id is None:
        case_id = db.scalar(select(Case.id).where(Case.case_number == number))
        if case_id is None:
            raise ValidationFailed("no case with this number", code="case_not_found",
                                   field="case_number")
        return body.model_copy(update={"case_id": case_id})
    return body


async def _form(request: Request) -> dict[str, Any]:
    form = await request.form()
    return _clean({k: v for k, v in form.items() if isinstance(v, str)})


@router.post("/command/requests")
async def create_request(request: Request, actor: ConsoleUser, db: DbSession) -> Response:
    data = await _form(request)

    def act() -> object:
        network = Network(db)
        body = _resolve_case(db, _request_body(data), data)
        return assistance.open_request(db, actor, network, body)
    return _act(request, actor, db, act, lambda r: f"/command/requests/{getattr(r, 'id', '')}",
                lambda e: _desk(request, actor, db, e))


@router.post("/command/roll-calls")
async def start_roll_call(request: Request, actor: ConsoleUser, db: DbSession) -> Response:
    data = await _form(request)

    def act() -> object:
        return rollcall.start(db, actor, Network(db), schemas.RollCallIn.model_validate(data))
    return _act(request, actor, db, act, lambda _: "/command#rollcall",
                lambda e: _desk(request, actor, db, e))


@router.post("/command/roll-calls/{roll_call_id}/answer")
async def answer_roll_call(roll_call_id: SmallRecordId, request: Request, actor: ConsoleUser,
                           db: DbSession) -> Response:
    data = await _form(request)

    def act() -> object:
        req = None
        if data.get("status") == "items" and data.get("req_kind"):
            req = _resolve_case(db, _request_body(data, "req_"), data, "req_")
        body = schemas.AnswerIn(status=AnswerStatus(data.get("status", "pending")),
                                text=data.get("text"), request=req)
        return rollcall.answer(db, actor, Network(db), roll_call_id, body)

    def back(row: object) -> str:
        rid = getattr(row, "request_id", None)
        return f"/command/requests/{rid}" if rid else "/command#rollcall"
    return _act(request, actor, db, act, back, lambda e: _desk(request, actor, db, e))


@router.post("/command/handovers")
async def hand_over(request: Request, actor: ConsoleUser, db: DbSession) -> Response:
    form = await request.form()
    items = [line.strip() for v in form.getlist("items") if isinstance(v, str)
             for line in v.splitlines() if line.strip()]
    note = form.get("note")

    def act() -> object:
        return duty.hand_over(db, actor, Network(db), schemas.HandoverIn(
            items=items, note=note if isinstance(note, str) and note else None))
    return _act(request, actor, db, act, lambda _: "/command#handover",
                lambda e: _desk(request, actor, db, e))


@router.post("/command/handovers/{handover_id}/acknowledge")
def acknowledge_handover(handover_id: SmallRecordId, request: Request, actor: ConsoleUser,
                         db: DbSession) -> Response:
    return _act(request, actor, db,
                lambda: duty.acknowledge_handover(db, actor, Network(db), handover_id),
                lambda _: "/command#handover", lambda e: _desk(request, actor, db, e))


@router.post("/command/escalations/{escalation_id}/acknowledge")
def acknowledge_escalation(escalation_id: RecordId, request: Request, actor: ConsoleUser,
                           db: DbSession) -> Response:
    return _act(request, actor, db,
                lambda: escalation.acknowledge(db, actor, Network(db), escalation_id),
                lambda _: "/command#escalations", lambda e: _desk(request, actor, db, e))


# --- the request page --------------------------------------------------------------------------


def request_context(session: Session, actor: Actor, network: Network,
                    req: AssistanceRequest) -> dict[str, Any]:
    detail = presenters.request_detail(session, network, req)
    events = list(session.scalars(select(BoardEvent).where(BoardEvent.request_id == req.id)
                                  .order_by(BoardEvent.id)))
    hop = session.get(Hop, req.current_hop_id) if req.current_hop_id else None
    mine = (hop is not None and req.status == RequestStatus.OPEN and actor.court_id ==
            network.center(hop.to_center_id).court_id and actor.has_role(*policy.DUTY_ROLES))
    holder: CenterRef | None = network.center(hop.to_center_id) if hop else None
    suggestion = None
    if mine and hop is not None and hop.acknowledged_at is not None and holder is not None:
        step = routing.next_center(network.tree, network.node(holder), network.node(
            network.center_of_court[req.place_court_id]))
        suggestion = network.of_node(step) if step is not None else None
    case = session.get(Case, req.case_id) if req.case_id else None
    return {
        "actor": actor, "r": detail, "events": [presenters.event_read(network, e)
                                                for e in events],
        "can_acknowledge": mine and hop is not None and hop.acknowledged_at is None,
        "can_act": mine and hop is not None and hop.acknowledged_at is not None,
        "can_withdraw": req.status == RequestStatus.OPEN and actor.court_id == network.center(
            req.origin_center_id).court_id and actor.has_role(*policy.ASKING_ROLES),
        "suggestion": suggestion, "hop_id": hop.id if hop else None, "terms": terms,
        "case_number": case.case_number if case and actor.can_see_court(case.court_id)
        else None,
        "case_visible": case is not None and actor.can_see_court(case.court_id),
        "names": presenters.user_names(session, [h.acknowledged_by for h in
                                                 assistance.hops_of(session, req.id)]),
    }


def _request_page(request: Request, actor: Actor, db: DbSession, request_id: int,
                  error: DomainError | None = None) -> Response:
    network = Network(db)
    version = board.head(db)
    req = assistance.get_request(db, actor, network, request_id)
    ctx = request_context(db, actor, network, req)
    ctx.update({
        "error": error, "courts": sorted(network.tree.by_code), "version": version,
        # this court's teams sent on the request (outside the live part: the asking center
        # follows them on the timeline; a dispatch stays with the court that sent it)
        "dispatches": list(db.scalars(select(Dispatch).where(
            Dispatch.request_id == req.id, Dispatch.court_id.in_(actor.visible_court_ids))
            .order_by(Dispatch.id))),
        "can_dispatch": ctx["can_act"] and actor.has_role(*field_policy.DESK_ROLES)})
    return render(request, "command/request.html", ctx,
                  status_code=error.status_code if error else 200)


@router.get("/command/requests/{request_id}")
def request_page(request_id: RecordId, request: Request, actor: ConsoleUser,
                 db: DbSession) -> Response:
    return _request_page(request, actor, db, request_id)


@router.get("/command/requests/{request_id}/stream")
async def request_stream(request_id: RecordId, request: Request, actor: ConsoleUser,
                         db: DbSession,
                         since: Annotated[int | None, Query(ge=0, le=2**62)] = None
                         ) -> StreamingResponse:
    """The request's state, timeline and actions, re-sent when they change."""
    assistance.get_request(db, actor, Network(db), request_id)
    db.commit()
    locale = i18n.current_locale.get()
    csrf = getattr(request.state, "csrf_token", "")

    def render_sections() -> tuple[int, dict[str, str]]:
        token = i18n.current_locale.set(locale)
        try:
            with session_factory()() as session:
                network = Network(session)
                req = assistance.get_request(session, actor, network, request_id)
                ctx = request_context(session, actor, network, req)
                head = board.head(session)
                session.commit()
            ctx.update({"locale": locale, "csrf_token": csrf})
            return head, {"request": _fragment("command/_request_live.html", ctx)}
        finally:
            i18n.current_locale.reset(token)

    return sse.response(_stream(request, render_sections, since))


def _on_request(request: Request, actor: Actor, db: DbSession, request_id: int,
                act: Callable[[], object]) -> Response:
    return _act(request, actor, db, act, lambda _: f"/command/requests/{request_id}",
                lambda e: _request_page(request, actor, db, request_id, e))


def _current_hop(db: DbSession, actor: Actor, network: Network, request_id: int) -> int:
    req = assistance.get_request(db, actor, network, request_id)
    if req.current_hop_id is None:
        raise ValidationFailed("the request has no hop", code="no_hop")
    return req.current_hop_id


@router.post("/command/requests/{request_id}/acknowledge")
async def acknowledge(request_id: RecordId, request: Request, actor: ConsoleUser,
                      db: DbSession) -> Response:
    data = await _form(request)

    def act() -> object:
        network = Network(db)
        hop_id = int(data.get("hop_id") or _current_hop(db, actor, network, request_id))
        return assistance.acknowledge(db, actor, network, hop_id, data.get("note"))
    return _on_request(request, actor, db, request_id, act)


@router.post("/command/requests/{request_id}/hand-down")
async def hand_down(request_id: RecordId, request: Request, actor: ConsoleUser,
                    db: DbSession) -> Response:
    data = await _form(request)

    def act() -> object:
        network = Network(db)
        hop_id = int(data.get("hop_id") or _current_hop(db, actor, network, request_id))
        return assistance.forward(db, actor, network, hop_id, data.get("to_court_code"),
                                  data.get("note"))
    return _on_request(request, actor, db, request_id, act)


@router.post("/command/requests/{request_id}/documents")
def upload_evidence(request_id: RecordId, request: Request, actor: ConsoleUser, db: DbSession,
                    file: Annotated[UploadFile, File()],
                    note: Annotated[str | None, Form(max_length=255)] = None) -> Response:
    return _on_request(request, actor, db, request_id, lambda: assistance.add_evidence(
        db, actor, Network(db), request_id, file.file, file.filename or "evidence", note))


@router.post("/command/requests/{request_id}/result")
async def report_result(request_id: RecordId, request: Request, actor: ConsoleUser,
                        db: DbSession) -> Response:
    data = await _form(request)

    def act() -> object:
        body = schemas.ResultIn.model_validate({"outcome": data.get("outcome", "done"),
                                                "summary": data.get("summary", "")})
        return assistance.report_result(db, actor, Network(db), request_id, body)
    return _on_request(request, actor, db, request_id, act)


@router.post("/command/requests/{request_id}/withdraw")
async def withdraw(request_id: RecordId, request: Request, actor: ConsoleUser,
                   db: DbSession) -> Response:
    data = await _form(request)

    def act() -> object:
        body = schemas.WithdrawIn.model_validate({"reason": data.get("reason", "")})
        req = assistance.withdraw(db, actor, Network(db), request_id, body.reason)
        return dispatches.call_off_for_request(db, actor, req.id, body.reason)
    return _on_request(request, actor, db, request_id, act)
