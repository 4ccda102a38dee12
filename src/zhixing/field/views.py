"""Console pages of field work: the field app for a team's phone, the live map, and the duty
desk's tip desk and dispatch desk."""

from __future__ import annotations

import asyncio
import json
import math
from collections.abc import AsyncIterator, Callable, Collection, Sequence
from datetime import datetime
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Query, Request
from fastapi.responses import RedirectResponse, Response, StreamingResponse
from pydantic import ValidationError
from sqlalchemy import select
from sqlalchemy.orm import Session

from zhixing.cases.models import Case, CaseDocument, Party
from zhixing.command import assistance
from zhixing.command.models import AssistanceRequest, Evidence
from zhixing.command.network import Network
from zhixing.core import audit
from zhixing.core.actor import Actor
from zhixing.core.clock import utcnow
from zhixing.core.errors import DomainError, Forbidden, NotFound, ValidationFailed
from zhixing.core.models import AuditRecord
from zhixing.courts.models import Court, User
from zhixing.field import desks, incidents, live, policy, positions, resources, terms
from zhixing.field import dispatch as dispatches
from zhixing.field import tips as tipsvc
from zhixing.field.api import tip_in
from zhixing.field.models import (
    Dispatch,
    DispatchEvidence,
    DispatchStatus,
    FieldResource,
    FieldTeam,
    LatestPosition,
    ResourceKind,
    Tip,
    TipChannel,
    TipOutcome,
    TipsterRelation,
)
from zhixing.field.schemas import AnswerIn, DispatchIn, MoveIn, OutcomeIn, TipTakeIn
from zhixing.web import i18n, sse
from zhixing.web.deps import ConsoleUser, DbSession, RecordId
from zhixing.web.errors import form_error
from zhixing.web.templating import render

router = APIRouter(include_in_schema=False)

STREAM_SECONDS = 900  # the browser's EventSource reconnects by itself after this
KEEPALIVE_SECONDS = 15.0
MAP_ROLES = (*policy.DESK_ROLES, "approver", "officer", "auditor", "admin")


@router.get("/field")
def field_app(request: Request, actor: ConsoleUser, db: DbSession) -> Response:
    """A field team's phone: its tasks, big status buttons, position, evidence, SOS."""
    policy.require_role(actor, (*policy.FIELD_ROLES, *policy.DESK_ROLES), "use the field app")
    me = resources.my_bailiff(db, actor)
    team = db.get(FieldTeam, me.team_id) if me is not None and me.team_id else None
    tasks = dispatches.for_teams(db, {team.id}) if team is not None else []
    cases = {c.id: c.case_number for c in db.scalars(select(Case).where(
        Case.id.in_([t.case_id for t in tasks if t.case_id])))}
    last = db.get(LatestPosition, me.id) if me is not None else None
    return render(request, "field/app.html", {
        "actor": actor, "me": me, "team": team, "tasks": tasks, "cases": cases,
        "last": last, "next": dispatches.NEXT,
        "evidence": {t.id: len(dispatches.evidence_of(db, t)) for t in tasks}})


def _require_map(actor_roles: bool) -> None:
    if not actor_roles:
        raise Forbidden("your role may not watch the command map", code="role_forbidden")


@router.get("/field/map")
def field_map(request: Request, actor: ConsoleUser, db: DbSession) -> Response:
    """The live map of Guangxi: centers, resources, dispatches, tips and incidents."""
    _require_map(actor.has_role(*MAP_ROLES))
    open_incidents = list(db.scalars(incidents.visible(actor).limit(20)))
    return render(request, "field/map.html", {"actor": actor, "incidents": open_incidents})


@router.get("/field/map/data")
def field_map_data(actor: ConsoleUser, db: DbSession) -> Response:
    _require_map(actor.has_role(*MAP_ROLES))
    data = live.snapshot(db, actor)
    return Response(json.dumps(data, ensure_ascii=False, separators=(",", ":")),
                    media_type="application/json", headers={"Cache-Control": "no-store"})


@router.get("/field/map/stream")
async def field_map_stream(request: Request, actor: ConsoleUser,
                           db: DbSession) -> StreamingResponse:
    """Live changes within the viewer's reach, as SSE messages, from the process's one poll."""
    _require_map(actor.has_role(*MAP_ROLES))
    db.commit()
    viewer = live.HUB.subscribe(actor.visible_court_ids)

    async def messages() -> AsyncIterator[str]:
        loop = asyncio.get_running_loop()
        ends = loop.time() + STREAM_SECONDS
        try:
            yield "retry: 2000\nevent: hello\ndata: {}\n\n"
            while loop.time() < ends:
                try:
                    data = await asyncio.wait_for(viewer.queue.get(), KEEPALIVE_SECONDS)
                except TimeoutError:
                    if await request.is_disconnected():
                        return
                    yield ": keepalive\n\n"
                    continue
                yield f"event: update\ndata: {data}\n\n"
        finally:
            live.HUB.unsubscribe(viewer)

    return sse.response(messages())


# --- the duty desk: tips -----------------------------------------------------------------------
# The tip desk and the dispatch desk act through the same service functions as the JSON API
# (tips.py, dispatch.py); refusals come back as the page with the form and the error, and
# change nothing (the request's transaction is rolled back).

WARN_SHARE = 0.25  # a clock turns amber with a quarter of its time left, as the command desk's
HISTORY_ACTIONS = terms.HISTORY  # what a record's history shows (reads left out)


async def _form(request: Request) -> dict[str, str]:
    form = await request.form()
    return {k: v.strip() for k, v in form.items()
            if isinstance(v, str) and k != "csrf_token" and v.strip()}


def _int(data: dict[str, str], name: str) -> int | None:
    raw = data.get(name, "").removeprefix("#").strip()
    if not raw:
        return None
    if not (raw.isascii() and raw.isdigit()) or not 0 < int(raw) <= desks.MAX_ID:
        raise ValidationFailed(f"{name}: a record number is expected", code="invalid_number",
                               field=name)
    return int(raw)


def _float(data: dict[str, str], name: str) -> float | None:
    raw = data.get(name)
    if raw is None:
        return None
    try:
        value = float(raw)
    except ValueError:
        raise ValidationFailed(f"{name}: a number in degrees is expected",
                               code="invalid_number", field=name) from None
    if not math.isfinite(value):
        raise ValidationFailed(f"{name}: a finite number is expected",
                               code="position_not_finite", field=name)
    return value


def _case_id(db: Session, actor: Actor, number: str | None, field: str) -> int | None:
    """A case typed by its number, as the officer reads it off the file."""
    if not number:
        return None
    normal = number.strip().replace("(", "（").replace(")", "）")
    case = db.scalar(select(Case).where(Case.case_number == normal))
    if case is None or not actor.can_see_court(case.court_id):
        raise ValidationFailed("no case with this number within your reach",
                               code="case_not_found", field=field)
    return case.id


def user_names(db: Session, ids: Collection[int | None]) -> dict[int, str]:
    wanted = {i for i in ids if i is not None}
    if not wanted:
        return {}
    return dict(db.execute(select(User.id, User.display_name).where(User.id.in_(wanted)))
                .tuples().all())


def _courts(db: Session, ids: Collection[int]) -> dict[int, Court]:
    wanted = {i for i in ids if i is not None}
    return {c.id: c for c in db.scalars(select(Court).where(Court.id.in_(wanted)))} \
        if wanted else {}


def _case_numbers(db: Session, actor: Actor, ids: Collection[int | None]) -> dict[int, str]:
    """Numbers of the cases the actor may open (another court's case shows no number)."""
    wanted = {i for i in ids if i is not None}
    if not wanted:
        return {}
    return {cid: number for cid, number, court_id in db.execute(
        select(Case.id, Case.case_number, Case.court_id).where(Case.id.in_(wanted))).tuples()
        if actor.can_see_court(court_id)}


def _clock(tip: Tip, now: datetime) -> dict[str, Any] | None:
    """The statutory check-by clock of an open tip (RULES.md: 7 days, 3 if urgent)."""
    if tip.status not in tipsvc.OPEN:
        return None
    left = (tip.due_at - now).total_seconds()
    span = max(1.0, (tip.due_at - tip.submitted_at).total_seconds())
    state = "overdue" if left < 0 else "warn" if left < span * WARN_SHARE else "ok"
    return {"state": state, "due_at": tip.due_at}


def _tip_rows(db: Session, actor: Actor, rows: Sequence[Tip]) -> list[dict[str, Any]]:
    now = utcnow()
    courts = _courts(db, [c for t in rows for c in (t.court_id, t.center_court_id)])
    numbers = _case_numbers(db, actor, [t.case_id for t in rows])
    return [{"tip": t, "court": courts[t.court_id], "center": courts[t.center_court_id],
             "case_number": numbers.get(t.case_id or 0), "clock": _clock(t, now),
             "late": t.checked_at is not None and t.checked_at > t.due_at} for t in rows]


def _tip_filter(status: str | None, urgency: str | None, court: str | None,
                within: str | None, overdue: str | None, q: str | None) -> desks.TipFilter:
    days = None
    if within:
        if not (within.isascii() and within.isdigit()):
            raise ValidationFailed("received within a number of days", code="invalid_period",
                                   field="within")
        days = int(within)
    return desks.TipFilter(status=None if status == "all" else (status or "open"),
                           urgency=urgency or None, court=court or None, within_days=days,
                           overdue=overdue in ("true", "on", "1"), q=q or None)


def _tip_desk(request: Request, actor: Actor, db: Session, params: dict[str, str],
              cursor: str | None = None, error: DomainError | None = None,
              form: dict[str, str] | None = None) -> Response:
    policy.require_role(actor, policy.READ_ROLES, "read tips")
    items: list[dict[str, Any]] = []
    next_cursor = None
    try:
        f = _tip_filter(params.get("status"), params.get("urgency"), params.get("court"),
                        params.get("within"), params.get("overdue"), params.get("q"))
        page = desks.tip_page(db, actor, f, None, cursor)
        items, next_cursor = _tip_rows(db, actor, page.items), page.next_cursor
    except DomainError as exc:
        db.rollback()
        error = error or exc
    return render(request, "field/tips.html", {
        "actor": actor, "items": items, "next_cursor": next_cursor, "p": params,
        "query": urlencode(params), "error": error, "form": form or {},
        "terms": terms, "statuses": desks.TIP_STATUSES, "within": desks.RECEIVED_WITHIN_DAYS,
        "can_take": actor.has_role(*policy.TIP_ROLES),
        "courts": sorted(db.scalars(select(Court.code))),
    }, status_code=error.status_code if error else 200)


def _filters(request: Request, names: tuple[str, ...]) -> dict[str, str]:
    return {k: v.strip()[:64] for k, v in request.query_params.items()
            if k in names and v.strip()}


TIP_FILTERS = ("status", "urgency", "court", "within", "overdue", "q")


@router.get("/field/tips")
def tip_desk(request: Request, actor: ConsoleUser, db: DbSession,
             cursor: Annotated[str | None, Query(max_length=200)] = None) -> Response:
    """The tip desk: tips within reach by their check-by date, filtered and searched."""
    return _tip_desk(request, actor, db, _filters(request, TIP_FILTERS), cursor)


@router.post("/field/tips")
async def take_phone_tip(request: Request, actor: ConsoleUser, db: DbSession) -> Response:
    """A tip taken by the duty officer from a phone call. The tipster's follow-up code is
    shown once, on the page this answers with (only its hash is kept)."""
    data = await _form(request)
    try:
        body = TipTakeIn.model_validate({
            k: v for k, v in data.items() if k in (
                "content", "place", "court_code", "tipster_name", "tipster_phone",
                "relation")} | {"lon": _float(data, "lon"), "lat": _float(data, "lat"),
                                "urgent": data.get("urgent") in ("true", "on", "1")})
        case_id = _case_id(db, actor, data.get("case_number"), "case_number")
        tip, code = tipsvc.take(db, actor, tip_in(body, body.urgent), TipChannel.PHONE, case_id)
    except (DomainError, ValidationError) as exc:
        db.rollback()
        return _tip_desk(request, actor, db, {}, error=form_error(exc), form=data)
    return _tip_page(request, actor, db, tip, follow_code=tipsvc.format_code(code),
                     status_code=201)


def _history(db: Session, actor: Actor, object_type: str, ids: Collection[int], *,
             debtors_visible: bool = True) -> list[dict[str, Any]]:
    """What was done to the records, from the audit trail (reads left out), each entry with
    its details in words; a case outside the actor's reach shows no number, as elsewhere."""
    rows = list(db.scalars(select(AuditRecord).where(
        AuditRecord.object_type == object_type,
        AuditRecord.object_id.in_([str(i) for i in ids]),
        AuditRecord.action.in_(list(HISTORY_ACTIONS))).order_by(AuditRecord.seq)))
    ids_of = {k: {r.details.get(k) for r in rows} for k in ("case_id", "debtor_party_id",
                                                             "team_id", "vehicle_id")}
    cases = _case_numbers(db, actor, [i for i in ids_of["case_id"] if isinstance(i, int)])
    parties = dict(db.execute(select(Party.id, Party.name).where(
        Party.id.in_({i for i in ids_of["debtor_party_id"] if isinstance(i, int)}))).tuples()
        .all()) if debtors_visible else {}
    teams = dict(db.execute(select(FieldTeam.id, FieldTeam.name).where(
        FieldTeam.id.in_({i for i in ids_of["team_id"] if isinstance(i, int)}))).tuples().all())
    vehicles = dict(db.execute(select(FieldResource.id, FieldResource.label).where(
        FieldResource.id.in_({i for i in ids_of["vehicle_id"] if isinstance(i, int)})))
        .tuples().all())
    _ = i18n.gettext

    def words(r: AuditRecord) -> list[str]:
        d = r.details or {}
        out: list[str] = []
        if "channel" in d:
            out.append(_(terms.CHANNEL.get(str(d["channel"]), str(d["channel"]))))
        if d.get("case_id") is not None:
            out.append(cases.get(d["case_id"]) or _("another court's case"))
        if d.get("debtor_party_id") in parties:
            out.append(parties[d["debtor_party_id"]])
        if "urgent" in d:
            out.append(_(terms.URGENCY["urgent" if d["urgent"] else "normal"]))
        if "center" in d:
            out.append(f"→ {d['center']}")
        if "relation" in d:
            out.append(_(terms.RELATION.get(str(d["relation"]), str(d["relation"]))))
        if "into" in d:
            out.append(f"→ #{d['into']}")
        if "outcome" in d:
            out.append(_(terms.OUTCOME.get(str(d["outcome"]), str(d["outcome"]))))
        if d.get("late"):
            out.append(_("late"))
        if d.get("team_id") is not None:
            out.append(teams.get(d["team_id"], f"#{d['team_id']}"))
        if d.get("vehicle_id") is not None:
            out.append(vehicles.get(d["vehicle_id"], f"#{d['vehicle_id']}"))
        if "from" in d and "to" in d:
            out.append(f"{_(terms.DISPATCH_STATUS.get(str(d['from']), str(d['from'])))} → "
                       f"{_(terms.DISPATCH_STATUS.get(str(d['to']), str(d['to'])))}")
        if "by" in d:
            out.append(_(terms.BY.get(str(d["by"]), str(d["by"]))))
        return out

    return [{"action": r.action, "at": r.occurred_at, "actor": r.actor_name,
             "words": words(r)} for r in rows]


def _tip_page(request: Request, actor: Actor, db: Session, tip: Tip, *,
              error: DomainError | None = None, follow_code: str | None = None,
              status_code: int = 200) -> Response:
    courts = _courts(db, [tip.court_id, tip.center_court_id])
    case = db.get(Case, tip.case_id) if tip.case_id else None
    case_visible = case is not None and actor.can_see_court(case.court_id)
    debtors = [cp.party for cp in case.parties if cp.role == "debtor"] \
        if case is not None and case_visible else []
    merged = [m for m in db.scalars(select(Tip).where(Tip.merged_into_id == tip.id)
                                    .order_by(Tip.submitted_at)) if policy.can_see_tip(actor, m)]
    tipster_visible = policy.may_see_tipster(actor, tip)
    if tipster_visible and not tip.anonymous and follow_code is None:  # not on taking it
        audit.record(db, actor, "tip.tipster_read", object_type="tip", object_id=tip.id,
                     court_id=tip.court_id, case_id=tip.case_id)
    sent = list(db.scalars(select(Dispatch).where(Dispatch.tip_id == tip.id)
                           .order_by(Dispatch.id)))
    history = _history(db, actor, "tip", [tip.id, *(m.id for m in merged)],
                       debtors_visible=case_visible)
    messages = tipsvc.messages(db, tip)
    ctx = {
        "actor": actor, "tip": tip, "court": courts[tip.court_id],
        "center": courts[tip.center_court_id], "case": case, "case_visible": case_visible,
        "debtors": debtors, "debtor": db.get(Party, tip.debtor_party_id)
        if tip.debtor_party_id and case_visible else None,
        "clock": _clock(tip, utcnow()), "messages": messages, "merged": merged,
        "duplicates": desks.possible_duplicates(db, actor, tip),
        "dispatches": sent, "history": history, "history_labels": HISTORY_ACTIONS,
        "names": user_names(db, [m.author_id for m in messages]),
        "tipster_visible": tipster_visible, "follow_code": follow_code, "error": error,
        "can_act": actor.has_role(*policy.TIP_ROLES) and tip.status in tipsvc.OPEN,
        "can_answer": actor.has_role(*policy.TIP_ROLES),
        "can_dispatch": actor.has_role(*policy.DESK_ROLES) and tip.status in tipsvc.OPEN,
        "terms": terms, "courts": sorted(db.scalars(select(Court.code))),
        "late": tip.checked_at is not None and tip.checked_at > tip.due_at,
    }
    return render(request, "field/tip.html", ctx,
                  status_code=error.status_code if error else status_code)


@router.get("/field/tips/{tip_id}")
def tip_page(tip_id: RecordId, request: Request, actor: ConsoleUser, db: DbSession) -> Response:
    """One tip: its facts and clock, triage, merge, outcome, the talk with the tipster, and
    its history."""
    return _tip_page(request, actor, db, tipsvc.get(db, actor, tip_id))


def _on_tip(request: Request, actor: Actor, db: Session, tip_id: int,
            act: Callable[[Tip], Tip | object]) -> Response:
    tip = tipsvc.get(db, actor, tip_id)
    try:
        result = act(tip)
    except (DomainError, ValidationError) as exc:
        db.rollback()
        return _tip_page(request, actor, db, tipsvc.get(db, actor, tip_id), error=form_error(exc))
    target = result.id if isinstance(result, Tip) else tip_id
    return RedirectResponse(f"/field/tips/{target}", status_code=303)


@router.post("/field/tips/{tip_id}/triage")
async def triage_tip(tip_id: RecordId, request: Request, actor: ConsoleUser,
                     db: DbSession) -> Response:
    data = await _form(request)

    def act(tip: Tip) -> Tip:
        urgency = data.get("urgency")
        if urgency not in (None, *desks.URGENCIES):
            raise ValidationFailed("urgent or normal", code="invalid_urgency", field="urgency")
        relation = data.get("relation")
        if relation is not None and relation not in {r.value for r in TipsterRelation}:
            raise ValidationFailed("unknown relation", code="invalid_relation",
                                   field="relation")
        return tipsvc.triage(db, actor, tip, tipsvc.Triage(
            case_id=_case_id(db, actor, data.get("case_number"), "case_number"),
            debtor_party_id=_int(data, "debtor_party_id"),
            urgent=None if urgency is None else urgency == "urgent",
            center_code=data.get("center_code"),
            relation=TipsterRelation(relation) if relation else None))
    return _on_tip(request, actor, db, tip_id, act)


@router.post("/field/tips/{tip_id}/merge")
async def merge_tip(tip_id: RecordId, request: Request, actor: ConsoleUser,
                    db: DbSession) -> Response:
    """Merge this tip (a duplicate) into another; the page of the other tip follows."""
    data = await _form(request)

    def act(tip: Tip) -> Tip:
        into_id = _int(data, "into_id")
        if into_id is None:
            raise ValidationFailed("name the tip this one repeats", code="into_required",
                                   field="into_id")
        try:
            into = tipsvc.get(db, actor, into_id)
        except NotFound:
            raise ValidationFailed(f"tip {into_id} not found", code="tip_not_found",
                                   field="into_id") from None
        return tipsvc.merge(db, actor, tip, into)
    return _on_tip(request, actor, db, tip_id, act)


@router.post("/field/tips/{tip_id}/outcome")
async def tip_outcome(tip_id: RecordId, request: Request, actor: ConsoleUser,
                      db: DbSession) -> Response:
    data = await _form(request)

    def act(tip: Tip) -> Tip:
        body = OutcomeIn.model_validate({"outcome": data.get("outcome", ""),
                                         "note": data.get("note", ""),
                                         "answer": data.get("answer")})
        return tipsvc.record_outcome(db, actor, tip, TipOutcome(body.outcome), body.note,
                                     body.answer)
    return _on_tip(request, actor, db, tip_id, act)


@router.post("/field/tips/{tip_id}/answer")
async def answer_tip(tip_id: RecordId, request: Request, actor: ConsoleUser,
                     db: DbSession) -> Response:
    """An answer the tipster reads with the follow-up code."""
    data = await _form(request)

    def act(tip: Tip) -> object:
        body = AnswerIn.model_validate({"text": data.get("text", "")})
        return tipsvc.answer(db, actor, tip, body.text)
    return _on_tip(request, actor, db, tip_id, act)


# --- the duty desk: dispatches -----------------------------------------------------------------

DISPATCH_FILTERS = ("status", "court", "q")
NEAREST = 5


def _dispatch_rows(db: Session, actor: Actor, rows: Sequence[Dispatch]) -> list[dict[str, Any]]:
    now = utcnow()
    teams = {t.id: t for t in db.scalars(select(FieldTeam).where(
        FieldTeam.id.in_({d.team_id for d in rows})))} if rows else {}
    vehicles = {v.id: v for v in db.scalars(select(FieldResource).where(
        FieldResource.id.in_({d.vehicle_id for d in rows if d.vehicle_id})))}
    courts = _courts(db, [d.court_id for d in rows] + [t.court_id for t in teams.values()])
    numbers = _case_numbers(db, actor, [d.case_id for d in rows])
    out = []
    for d in rows:
        end = d.done_at or d.cancelled_at or now
        out.append({"d": d, "team": teams[d.team_id], "team_court": courts[
            teams[d.team_id].court_id], "vehicle": vehicles.get(d.vehicle_id or 0),
            "court": courts[d.court_id], "case_number": numbers.get(d.case_id or 0),
            "age_minutes": int((end - d.dispatched_at).total_seconds() // 60)})
    return out


@router.get("/field/dispatches")
def dispatch_desk(request: Request, actor: ConsoleUser, db: DbSession,
                  cursor: Annotated[str | None, Query(max_length=200)] = None) -> Response:
    """The dispatch desk: orders within reach with their state and age, newest first."""
    policy.require_role(actor, policy.READ_ROLES, "read dispatches")
    params = _filters(request, DISPATCH_FILTERS)
    status = params.get("status", "active")
    items: list[dict[str, Any]] = []
    next_cursor = None
    error: DomainError | None = None
    try:
        f = desks.DispatchFilter(status=None if status == "all" else status,
                                 court=params.get("court"), q=params.get("q"))
        page = desks.dispatch_page(db, actor, f, None, cursor)
        items, next_cursor = _dispatch_rows(db, actor, page.items), page.next_cursor
    except DomainError as exc:
        db.rollback()
        error = exc
    return render(request, "field/dispatches.html", {
        "actor": actor, "items": items, "next_cursor": next_cursor, "p": params,
        "query": urlencode(params), "error": error, "terms": terms,
        "statuses": desks.DISPATCH_STATUSES, "can_dispatch": actor.has_role(*policy.DESK_ROLES),
        "courts": sorted(db.scalars(select(Court.code))),
    }, status_code=error.status_code if error else 200)


def _nearest(db: Session, actor: Actor, lon: float, lat: float) -> dict[str, Any]:
    teams = positions.nearest_teams(db, actor, lon, lat, NEAREST)
    vehicles = positions.nearest_vehicles(db, actor, lon, lat, NEAREST)
    return {"teams": teams, "vehicles": vehicles,
            "near_courts": _courts(db, [n.court_id for n in (*teams, *vehicles)])}


def _new_dispatch(request: Request, actor: Actor, db: Session, form: dict[str, str],
                  error: DomainError | None = None) -> Response:
    policy.require_role(actor, policy.DESK_ROLES, "dispatch field teams")
    ctx: dict[str, Any] = {"actor": actor, "form": form, "error": error, "teams": None,
                           "vehicles": None, "near_courts": {}, "near_error": None}
    try:
        lon, lat = _float(form, "lon"), _float(form, "lat")
        if lon is not None and lat is not None:
            ctx.update(_nearest(db, actor, lon, lat))
    except DomainError as exc:
        ctx["near_error"] = exc
    return render(request, "field/dispatch_new.html", ctx,
                  status_code=error.status_code if error else 200)


@router.get("/field/dispatches/new")
def new_dispatch(request: Request, actor: ConsoleUser, db: DbSession,
                 tip_id: Annotated[int | None, Query(ge=1, le=2**63 - 1)] = None,
                 request_id: Annotated[int | None, Query(ge=1, le=2**63 - 1)] = None
                 ) -> Response:
    """The dispatch form; from a tip, its place, position and case are filled in; from an
    assistance request, its task and place, and the seat of the place's court as a first
    position to search teams from."""
    form: dict[str, str] = {}
    if request_id is not None:
        req = assistance.get_request(db, actor, Network(db), request_id)
        seat = db.get(Court, req.place_court_id)
        form = {"request_id": str(req.id), "task": f"协助执行 #{req.id}：{req.subject}"[:255],
                "place": req.place}
        if seat is not None and seat.lon is not None and seat.lat is not None:
            form.update(lon=f"{seat.lon:.6f}", lat=f"{seat.lat:.6f}")
    elif tip_id is not None:
        tip = tipsvc.get(db, actor, tip_id)
        numbers = _case_numbers(db, actor, [tip.case_id])
        form = {"tip_id": str(tip.id), "task": f"核查线索 #{tip.id}：{tip.content}"[:255],
                "place": tip.place or "", "case_number": numbers.get(tip.case_id or 0, "")}
        if tip.lon is not None and tip.lat is not None:
            form.update(lon=f"{tip.lon:.6f}", lat=f"{tip.lat:.6f}")
    return _new_dispatch(request, actor, db, {k: v for k, v in form.items() if v})


@router.get("/field/dispatches/nearest")
def nearest(request: Request, actor: ConsoleUser, db: DbSession,
            lon: Annotated[str, Query(max_length=32)] = "",
            lat: Annotated[str, Query(max_length=32)] = "") -> Response:
    """The nearest available teams and vehicles to a place, to pick from (an htmx fragment
    of the dispatch form)."""
    policy.require_role(actor, policy.DESK_ROLES, "search teams")
    ctx: dict[str, Any] = {"actor": actor, "form": {}, "near_error": None}
    try:
        x, y = _float({"lon": lon}, "lon"), _float({"lat": lat}, "lat")
        if x is None or y is None:
            raise ValidationFailed("give the place's longitude and latitude",
                                   code="position_incomplete", field="lon")
        ctx.update(_nearest(db, actor, x, y))
    except DomainError as exc:
        ctx["near_error"] = exc
    return render(request, "field/_nearest.html", ctx,
                  status_code=ctx["near_error"].status_code if ctx["near_error"] else 200)


@router.post("/field/dispatches")
async def create_dispatch(request: Request, actor: ConsoleUser, db: DbSession) -> Response:
    data = await _form(request)
    try:
        body = DispatchIn.model_validate({
            "task": data.get("task", ""), "place": data.get("place", ""),
            "lon": _float(data, "lon"), "lat": _float(data, "lat"),
            "team_id": _int(data, "team_id"), "vehicle_id": _int(data, "vehicle_id"),
            "case_id": _case_id(db, actor, data.get("case_number"), "case_number"),
            "tip_id": _int(data, "tip_id"), "request_id": _int(data, "request_id")})
        d = dispatches.create(db, actor, dispatches.DispatchIn(
            task=body.task, place=body.place, lon=body.lon, lat=body.lat, team_id=body.team_id,
            vehicle_id=body.vehicle_id, case_id=body.case_id, tip_id=body.tip_id,
            request_id=body.request_id))
    except (DomainError, ValidationError) as exc:
        db.rollback()
        return _new_dispatch(request, actor, db, data, form_error(exc))
    return RedirectResponse(f"/field/dispatches/{d.id}", status_code=303)


def _dispatch_page(request: Request, actor: Actor, db: Session, d: Dispatch,
                   error: DomainError | None = None) -> Response:
    team = db.get(FieldTeam, d.team_id)
    assert team is not None
    [row] = _dispatch_rows(db, actor, [d])
    steps = [(s, getattr(d, f"{s}_at")) for s in ("dispatched", "en_route", "on_scene", "done")]
    if d.cancelled_at is not None:
        steps.append(("cancelled", d.cancelled_at))
    evidence = [(ev, doc or proof) for ev, doc, proof in db.execute(
        select(DispatchEvidence, CaseDocument, Evidence)
        .outerjoin(CaseDocument, CaseDocument.id == DispatchEvidence.document_id)
        .outerjoin(Evidence, Evidence.id == DispatchEvidence.request_evidence_id)
        .where(DispatchEvidence.dispatch_id == d.id).order_by(DispatchEvidence.id)).tuples()]
    tip = db.get(Tip, d.tip_id) if d.tip_id else None
    assist = db.get(AssistanceRequest, d.request_id) if d.request_id else None
    desk = policy.is_desk_for(actor, d, team.court_id)
    return render(request, "field/dispatch.html", {
        "actor": actor, "r": row, "d": d, "team": team, "steps": steps, "evidence": evidence,
        "members": [m for m in resources.team_members(db, team.id)
                    if m.kind in (ResourceKind.BAILIFF, ResourceKind.VEHICLE)],
        "tip_visible": tip is not None and policy.can_see_tip(actor, tip),
        "assist": assist,
        "history": _history(db, actor, "dispatch", [d.id]),
        "history_labels": HISTORY_ACTIONS,
        "moves": [s.value for s in dispatches.NEXT[d.status]] if desk else [],
        "created_by": user_names(db, [d.created_by]).get(d.created_by or 0),
        "error": error, "terms": terms,
    }, status_code=error.status_code if error else 200)


@router.get("/field/dispatches/{dispatch_id}")
def dispatch_page(dispatch_id: RecordId, request: Request, actor: ConsoleUser,
                  db: DbSession) -> Response:
    """One dispatch order: the team and vehicle, its states with their times, the evidence
    from the scene, and who did what."""
    return _dispatch_page(request, actor, db, dispatches.get(db, actor, dispatch_id))


@router.post("/field/dispatches/{dispatch_id}/status")
async def move_dispatch(dispatch_id: RecordId, request: Request, actor: ConsoleUser,
                        db: DbSession) -> Response:
    """The desk moves a task on for a team that phoned in, or cancels it."""
    data = await _form(request)
    d = dispatches.get(db, actor, dispatch_id)
    try:
        body = MoveIn.model_validate({"to": data.get("to", ""), "note": data.get("note")})
        dispatches.move(db, actor, d, DispatchStatus(body.to), body.note)
    except (DomainError, ValidationError) as exc:
        db.rollback()
        return _dispatch_page(request, actor, db, dispatches.get(db, actor, dispatch_id),
                              form_error(exc))
    return RedirectResponse(f"/field/dispatches/{dispatch_id}", status_code=303)
