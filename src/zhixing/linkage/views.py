"""Console pages of network query and control (网络查控): the panel on the case page, the
inquiry page that fills in live (Server-Sent Events with htmx fragments), online control orders
and their sign-off, and the linked units with the network's figures."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import RedirectResponse, Response, StreamingResponse
from pydantic import ValidationError
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from zhixing.cases import policy as case_policy
from zhixing.cases import service as case_service
from zhixing.cases import views as case_views
from zhixing.cases.models import Case, CaseState, Party
from zhixing.core.actor import Actor
from zhixing.core.clock import utcnow
from zhixing.core.db import session_factory
from zhixing.core.errors import DomainError, ValidationFailed
from zhixing.linkage import figures, inquiries, orders, presenters, terms, units, wire
from zhixing.linkage.api import read_audited
from zhixing.linkage.models import ControlOrder
from zhixing.web import i18n, sse
from zhixing.web.deps import ConsoleUser, DbSession, RecordId, SmallRecordId
from zhixing.web.templating import render, templates

router = APIRouter(include_in_schema=False)

STREAM_SECONDS = 600  # then the browser's EventSource reconnects (with Last-Event-ID)
# Answers are not signalled (too many: core/signals.py), so a stream looks every tick; a signal
# (a re-query's new tasks) only makes it look sooner, but not sooner than SETTLE_SECONDS.
TICK_SECONDS = 0.5
SETTLE_SECONDS = 0.25
RESYNC_MARGIN = timedelta(seconds=30)  # a write stamped before a poll may commit after it
MAX_MOMENT_MS = 2**53
FIGURES_DAYS = 30


# --- the case page -----------------------------------------------------------------------------


def case_panel(db: DbSession, actor: Actor, case: Case, allowed_actions: list[str],
               form: dict[str, Any] | None = None) -> dict[str, Any]:
    """What the case page shows of the network: inquiries, the form to start one, a control
    form per asset a linked unit holds, and the control orders. ``form`` holds the values of
    an inquiry form sent back with an error."""
    debtors = presenters.debtor_choices(db, case)
    can_order = presenters.may(case_policy.require_act, actor, case)
    values = form or {
        "purpose": presenters.INQUIRY_PURPOSE, "legal_basis": presenters.INQUIRY_BASIS,
        "party_ids": [d.id for d in debtors if d.askable], "kinds": list(wire.QUERY_KINDS)}
    return {
        "inquiries": presenters.case_inquiries(db, case),
        "orders": presenters.case_orders(db, actor, case),
        "controls": presenters.control_forms(db, case) if can_order else {},
        # The same test as the case's other actions, and a case that can still be enforced.
        "can_inquire": bool(allowed_actions) and case.state not in (CaseState.CONCLUDED,
                                                                    CaseState.SUSPENDED),
        "can_order": can_order, "debtors": debtors, "kinds": list(wire.QUERY_KINDS),
        "form": values, "form_sent": form is not None, "terms": terms,
        "order_purpose": presenters.ORDER_PURPOSE, "order_basis": presenters.ORDER_BASIS,
    }


def _error_page(request: Request, actor: Actor, db: DbSession, case_id: int,
                exc: DomainError | ValidationError, form: dict[str, Any] | None = None
                ) -> Response:
    db.rollback()
    error = case_views._pydantic_error(exc) if isinstance(exc, ValidationError) else exc
    return case_views._case_page(request, actor, db, case_id, error, network_form=form)


def _ids(values: list[Any], field: str) -> list[int]:
    try:
        return [int(v) for v in values if isinstance(v, str)]
    except ValueError:
        raise ValidationFailed("not a record id", code="validation_failed",
                               field=field) from None


@router.post("/cases/{case_id}/inquiries")
async def start_inquiry(case_id: RecordId, request: Request, actor: ConsoleUser,
                        db: DbSession) -> Response:
    form = await request.form()
    values: dict[str, Any] = {
        "purpose": str(form.get("purpose") or ""), "legal_basis": str(form.get("legal_basis")
                                                                       or ""),
        "party_ids": [], "kinds": [k for k in form.getlist("kinds") if isinstance(k, str)]}
    try:
        case = case_service.get_case(db, actor, case_id)
        values["party_ids"] = _ids(form.getlist("party_ids"), "party_ids")
        if not values["party_ids"]:
            raise ValidationFailed("choose at least one debtor", code="no_debtor_chosen",
                                   field="party_ids")
        if not values["kinds"]:
            raise ValidationFailed("choose at least one kind of property",
                                   code="no_kind_chosen", field="kinds")
        inquiry = inquiries.create(db, actor, case, inquiries.InquiryIn.model_validate(values))
    except (ValidationError, DomainError) as exc:
        return _error_page(request, actor, db, case_id, exc, values)
    return RedirectResponse(f"/cases/{case_id}/inquiries/{inquiry.id}", status_code=303)


# --- the inquiry page and its live stream ------------------------------------------------------


def _debtor_names(db: DbSession, party_ids: list[int]) -> list[str]:
    if not party_ids:
        return []
    names = dict(db.execute(select(Party.id, Party.name).where(Party.id.in_(party_ids)))
                 .tuples().all())
    return [names[i] for i in party_ids if i in names]


def _ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


@router.get("/cases/{case_id}/inquiries/{inquiry_id}")
def inquiry_page(case_id: RecordId, inquiry_id: RecordId, request: Request, actor: ConsoleUser,
                 db: DbSession) -> Response:
    rendered_at = utcnow()  # before reading: the stream resends what moved after this
    case = case_service.get_case(db, actor, case_id)
    inquiry = inquiries.get_inquiry(db, case, inquiry_id)
    read_audited(db, actor, inquiry)
    progress = inquiries.progress(db, inquiry.id)
    names = presenters.user_names(db, {inquiry.requested_by})
    return render(request, "linkage/inquiry.html", {
        "actor": actor, "case": case, "inquiry": inquiry, "progress": progress,
        "rows": presenters.task_rows(db, inquiry.id), "terms": terms,
        "requested_by": names.get(inquiry.requested_by) if inquiry.requested_by else None,
        "debtors": _debtor_names(db, inquiry.party_ids),
        "live": not presenters.all_final(progress), "since": _ms(rendered_at)})


def _fragment(name: str, **context: Any) -> str:
    return templates.env.get_template(name).render(terms=terms, **context)


@dataclass
class _Tick:
    messages: list[str]
    seen: dict[int, presenters.Fingerprint]
    final: bool


def _poll(inquiry_id: int, seen: dict[int, presenters.Fingerprint] | None, since: datetime,
          locale: str) -> _Tick:
    """One look at the inquiry in a short session of its own: the rows that changed since the
    last look (on the first look: since ``since``), and the counters when anything did."""
    token = i18n.current_locale.set(locale)
    try:
        with session_factory()() as session:
            polled_at = utcnow()
            current = presenters.fingerprints(session, inquiry_id)
            if seen is None:
                changed = presenters.changed_since(current, since)
            else:
                changed = {i for i, (fp, _) in current.items() if seen.get(i) != fp}
            event_id = str(_ms(polled_at))
            messages = [sse.message(f"task-{row.task.id}", _fragment(
                "linkage/_task_row.html", r=row, locale=locale), event_id)
                for row in presenters.task_rows_by_id(session, changed)]
            final = False
            if changed or seen is None:
                progress = inquiries.progress(session, inquiry_id)
                messages.append(sse.message("progress", _fragment("linkage/_progress.html",
                                                           progress=progress), event_id))
                final = presenters.all_final(progress)
                if final:
                    messages.append(sse.message("done", _fragment("linkage/_live_state.html",
                                                           live=False), event_id))
            session.commit()
    finally:
        i18n.current_locale.reset(token)
    return _Tick(messages, {i: fp for i, (fp, _) in current.items()}, final)


def _moment(value: str | int | None) -> datetime | None:
    """A moment in epoch milliseconds (an event id, or the page's render time)."""
    if value is None or (isinstance(value, str) and not value.isdigit()):
        return None
    ms = int(value)
    if not 0 < ms < MAX_MOMENT_MS:
        return None
    try:
        return datetime.fromtimestamp(ms / 1000, UTC)
    except (OverflowError, OSError, ValueError):
        return None


@router.get("/cases/{case_id}/inquiries/{inquiry_id}/stream")
async def inquiry_stream(case_id: RecordId, inquiry_id: RecordId, request: Request,
                         actor: ConsoleUser, db: DbSession,
                         since: Annotated[int | None, Query(ge=0, le=MAX_MOMENT_MS)] = None
                         ) -> StreamingResponse:
    """Live rows and counters of an inquiry as SSE messages of HTML (htmx ``sse-swap``): an
    event ``task-<id>`` per changed task, ``progress`` for the counters, ``done`` once every
    task is final (then the stream ends)."""
    case = case_service.get_case(db, actor, case_id)
    inquiry = inquiries.get_inquiry(db, case, inquiry_id)
    read_audited(db, actor, inquiry)  # what the stream shows is the same property record
    db.commit()
    # A reconnecting EventSource names the last poll it saw; a first connection, the page.
    start = (_moment(request.headers.get("last-event-id")) or _moment(since) or utcnow()
             ) - RESYNC_MARGIN
    locale = i18n.current_locale.get()
    the_inquiry = inquiry.id

    seen: dict[int, presenters.Fingerprint] | None = None

    def look() -> sse.Polled:
        nonlocal seen
        result = _poll(the_inquiry, seen, start, locale)
        seen = result.seen
        return sse.Polled(result.messages, result.final)

    return sse.response(sse.polling(request, look, sse.Pace(
        channel="linkage", tick=TICK_SECONDS, idle=TICK_SECONDS, settle=SETTLE_SECONDS,
        seconds=STREAM_SECONDS)))


# --- control orders ----------------------------------------------------------------------------


def _order_body(form: dict[str, str]) -> dict[str, Any]:
    kind = form.get("kind", "")
    body: dict[str, Any] = {
        "kind": kind, "document_number": form.get("document_number", ""),
        "purpose": form.get("purpose", ""), "legal_basis": form.get("legal_basis", ""),
        "request_key": form.get("request_key") or None}
    amount = form.get("amount", "").strip()
    if kind in presenters.AMOUNT_KINDS and amount:
        body["amount_fen"] = case_views._yuan_to_fen(amount, "amount_fen")
    days = form.get("period_days", "").strip()
    if kind in presenters.HOLDING_KINDS and days:
        if not days.isdigit() or len(days) > 5:
            raise ValidationFailed("a whole number of days", code="validation_failed",
                                   field="period_days")
        body["period_days"] = int(days)
    return body


@router.post("/cases/{case_id}/assets/{asset_id}/orders")
async def send_order(case_id: RecordId, asset_id: RecordId, request: Request,
                     actor: ConsoleUser, db: DbSession) -> Response:
    """An online control order on an asset; the hidden request_key of the form makes a second
    submission of the same form return the first order."""
    form = {k: v for k, v in (await request.form()).items() if isinstance(v, str)}
    try:
        case = case_service.get_case(db, actor, case_id)
        body = orders.OrderIn.model_validate(_order_body(form))
        try:
            orders.create(db, actor, case, asset_id, body)
            db.flush()
        except IntegrityError:
            # The same form sent twice at once: the other request stored the order first.
            db.rollback()
            case = case_service.get_case(db, actor, case_id)
            existing = db.scalar(select(ControlOrder.id).where(
                ControlOrder.case_id == case.id, ControlOrder.request_key == body.request_key))
            if existing is None or body.request_key is None:
                raise
    except (ValidationError, DomainError) as exc:
        return _error_page(request, actor, db, case_id, exc)
    return RedirectResponse(f"/cases/{case_id}#network-orders", status_code=303)


@router.post("/cases/{case_id}/orders/{order_id}/decision")
def decide_order(case_id: RecordId, order_id: RecordId, request: Request, actor: ConsoleUser,
                 db: DbSession, approve: Annotated[str, Form(max_length=5)] = "",
                 note: Annotated[str, Form(max_length=255)] = "") -> Response:
    """The approver's sign-off on a deduction (never the person who asked for it)."""
    try:
        if approve not in ("true", "false"):
            raise ValidationFailed("approve or decline", code="validation_failed",
                                   field="approve")
        case = case_service.get_case(db, actor, case_id)
        orders.decide(db, actor, case, order_id,
                      orders.DecisionIn(approve=approve == "true", note=note.strip() or None))
    except (ValidationError, DomainError) as exc:
        return _error_page(request, actor, db, case_id, exc)
    return RedirectResponse(f"/cases/{case_id}#network-orders", status_code=303)


# --- linked units ------------------------------------------------------------------------------


def _period(start: date | None, end: date | None) -> tuple[date, date]:
    end = end or case_service.today()
    start = start or end - timedelta(days=FIGURES_DAYS - 1)
    if start > end or (end - start).days > 3660:
        raise ValidationFailed("start is on or before end, at most 10 years apart",
                               code="invalid_period", field="start")
    return start, end


def _units_page(request: Request, actor: Actor, db: DbSession, start: date | None = None,
                end: date | None = None, error: DomainError | None = None) -> Response:
    units.require_reader(actor)
    try:
        period = _period(start, end)
    except ValidationFailed as exc:
        error = error or exc
        period = _period(None, None)
    return render(request, "linkage/units.html", {
        "actor": actor, "health": figures.health(db), "terms": terms,
        "figures": figures.figures(db, actor.visible_court_ids, *period),
        "start": period[0], "end": period[1], "error": error,
        "can_admin": presenters.may(units.require_admin, db, actor)},
        status_code=error.status_code if error else 200)


@router.get("/network/units")
def units_page(request: Request, actor: ConsoleUser, db: DbSession,
               start: date | None = None, end: date | None = None) -> Response:
    return _units_page(request, actor, db, start, end)


@router.post("/network/units/{unit_id}/enabled")
def switch_unit(unit_id: SmallRecordId, request: Request, actor: ConsoleUser, db: DbSession,
                enabled: Annotated[str, Form(max_length=5)] = "") -> Response:
    """Switch a unit on or off (administrators of the high court)."""
    try:
        units.require_admin(db, actor)
        if enabled not in ("true", "false"):
            raise ValidationFailed("on or off", code="validation_failed", field="enabled")
        unit = units.get_unit(db, unit_id)
        units.update_unit(db, actor, unit, units.UnitUpdate(enabled=enabled == "true"))
    except DomainError as exc:
        db.rollback()
        return _units_page(request, actor, db, error=exc)
    return RedirectResponse(f"/network/units#unit-{unit_id}", status_code=303)
