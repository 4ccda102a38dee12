"""Console pages for enforcement cases: work queue, list, registration, the case page,
printable notices, and the public progress look-up."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, File, Form, Query, Request, UploadFile
from fastapi.responses import RedirectResponse, Response
from pydantic import ValidationError
from sqlalchemy import select

from zhixing.cases import (
    api,
    documents,
    ledger,
    lifecycle,
    notices,
    policy,
    presenters,
    queries,
    service,
    statutory,
)
from zhixing.cases.models import Case, CaseEvent
from zhixing.cases.schemas import (
    AssetIn,
    CaseCreate,
    ControlIn,
    ExtensionIn,
    FactIn,
    MoneyIn,
    PauseIn,
    TransitionIn,
)
from zhixing.core import audit, ratelimit
from zhixing.core.actor import Actor
from zhixing.core.errors import DomainError, ValidationFailed
from zhixing.web.deps import ConsoleUser, DbSession, RecordId, client_ip
from zhixing.web.templating import render

router = APIRouter(include_in_schema=False)


def survey_links(db: DbSession, case_id: int) -> list[dict[str, Any]]:
    # Imported here: analytics builds on cases, not the other way round.
    from zhixing.analytics.surveys import links_for_case

    return links_for_case(db, case_id)


def credit_panel(db: DbSession, actor: Actor, case: Case) -> dict[str, Any]:
    # Imported here: credit builds on cases, not the other way round.
    from zhixing.credit.views import case_panel

    return case_panel(db, actor, case)


def network_panel(db: DbSession, actor: Actor, case: Case, allowed_actions: list[str],
                  form: dict[str, Any] | None) -> dict[str, Any]:
    # Imported here: linkage builds on cases, not the other way round.
    from zhixing.linkage.views import case_panel

    return case_panel(db, actor, case, allowed_actions, form)


Filter = Annotated[queries.CaseFilter, Depends(api.case_filter)]


def _pydantic_error(exc: ValidationError) -> ValidationFailed:
    first = exc.errors()[0]
    field = ".".join(str(p) for p in first.get("loc", ()))
    return ValidationFailed(f"{field}: {first.get('msg')}", code="validation_failed", field=field)


@router.get("/cases/queue")
def queue_page(request: Request, actor: ConsoleUser, db: DbSession) -> Response:
    q = queries.work_queue(db, actor)
    expiring = ledger.expiring_controls(db, actor.visible_court_ids,
                                        statutory.RULES.freeze_warn_days, officer_id=actor.user_id)
    return render(request, "cases/queue.html", {
        "actor": actor, "overdue": presenters.summaries(db, q.overdue),
        "due_soon": presenters.summaries(db, q.due_soon),
        "open_cases": presenters.summaries(db, q.open_cases), "expiring": expiring,
        "overview": presenters.summaries(db, queries.court_overview(db, actor, 20)),
        "today": service.today()})


@router.get("/cases")
def list_page(request: Request, actor: ConsoleUser, db: DbSession, f: Filter,
              cursor: Annotated[str | None, Query(max_length=200)] = None) -> Response:
    page = queries.page(db, actor, f, 50, cursor)
    params = {k: v for k, v in request.query_params.items() if k != "cursor" and v}
    return render(request, "cases/list.html", {
        "actor": actor, "items": presenters.summaries(db, page.items),
        "next_cursor": page.next_cursor, "f": f, "params": params,
        "query": urlencode(params), "states": [s for s in lifecycle.S] + ["open"],
        "types": ["执", "执恢", "执保", "执异", "执复", "执监", "执协"],
        "today": service.today()})


def _new_form(request: Request, actor: Actor, values: dict[str, Any],
              error: DomainError | None = None) -> Response:
    return render(request, "cases/new.html", {"actor": actor, "v": values, "error": error,
                                              "today": service.today()},
                  status_code=error.status_code if error else 200)


@router.get("/cases/new")
def new_case_form(request: Request, actor: ConsoleUser) -> Response:
    """The registration form, for those who may register a case at their court."""
    assert actor.court_id is not None  # a console user always belongs to a court
    policy.require_register(actor, actor.court_id)
    return _new_form(request, actor, {"filed_on": service.today().isoformat(),
                                      "officer_username": actor.name})


def _party_from_form(form: dict[str, str], prefix: str) -> dict[str, Any] | None:
    name = form.get(f"{prefix}_name", "").strip()
    if not name:
        return None
    kind = form.get(f"{prefix}_kind", "person")
    party: dict[str, Any] = {
        "kind": kind, "name": name, "id_kind": form.get(f"{prefix}_id_kind") or (
            "ric" if kind == "person" else "uscc"),
        "id_number": form.get(f"{prefix}_id_number", "").strip(),
        "address": form.get(f"{prefix}_address") or None,
        "id_region_confirmed": form.get(f"{prefix}_confirm") == "on",
    }
    if kind == "organisation" and form.get(f"{prefix}_legal_rep"):
        party["legal_representative"] = form[f"{prefix}_legal_rep"]
    return party


def _yuan_to_fen(value: str, field: str) -> int:
    text = value.replace(",", "").strip() or "0"
    try:
        whole, _, frac = text.partition(".")
        if not whole.isdigit() or (frac and (not frac.isdigit() or len(frac) > 2)):
            raise ValueError
        return int(whole) * 100 + int((frac + "00")[:2])
    except ValueError:
        raise ValidationFailed("an amount in yuan, at most two decimals", code="invalid_amount",
                               field=field) from None


@router.post("/cases/new")
async def create_case(request: Request, actor: ConsoleUser, db: DbSession) -> Response:
    form = {k: v for k, v in (await request.form()).items() if isinstance(v, str)}
    try:
        payload = {
            "case_type": form.get("case_type", "执"),
            "case_number": form.get("case_number") or None,
            "title_issuer": form.get("title_issuer", ""),
            "title_document_number": form.get("title_document_number", ""),
            "title_date": form.get("title_date") or None,
            "title_effective_date": form.get("title_effective_date") or None,
            "principal_fen": _yuan_to_fen(form.get("principal", ""), "principal"),
            "interest_fen": _yuan_to_fen(form.get("interest", ""), "interest"),
            "costs_fen": _yuan_to_fen(form.get("costs", ""), "costs"),
            "filed_on": form.get("filed_on") or None,
            "officer_username": form.get("officer_username") or None,
            "applicants": [p for p in (_party_from_form(form, f"a{i}") for i in range(3)) if p],
            "debtors": [p for p in (_party_from_form(form, f"d{i}") for i in range(3)) if p],
        }
        data = CaseCreate.model_validate(payload)
        case = service.register(db, actor, data)
    except ValidationError as exc:
        db.rollback()
        return _new_form(request, actor, form, _pydantic_error(exc))
    except DomainError as exc:
        db.rollback()
        return _new_form(request, actor, form, exc)
    return RedirectResponse(f"/cases/{case.id}", status_code=303)


def _case_page(request: Request, actor: Actor, db: DbSession, case_id: int,
               error: DomainError | None = None,
               network_form: dict[str, Any] | None = None) -> Response:
    case = service.get_case(db, actor, case_id)
    detail = presenters.detail(db, actor, case)
    events = db.scalars(select(CaseEvent).where(CaseEvent.case_id == case.id)
                        .order_by(CaseEvent.id.desc()).limit(100)).all()
    audit.record(db, actor, "case.read", object_type="case", object_id=case.id,
                 court_id=case.court_id, case_id=case.id, purpose="case page")
    missing = (lifecycle.missing_for_closed_for_now(service.view_of(db, case), service.today())
               if "conclude:closed_for_now" in detail.allowed_actions else [])
    return render(request, "cases/detail.html", {
        "actor": actor, "c": detail, "events": events, "error": error,
        "fact_kinds": [k for k in lifecycle.FACT_KINDS if k not in detail.facts],
        "termination_grounds": lifecycle.TERMINATION_GROUNDS,
        "suspension_grounds": lifecycle.SUSPENSION_GROUNDS, "missing_for_closure": missing,
        "debtors": [p for p in detail.parties if p.role == "debtor"],
        "applicants": [p for p in detail.parties if p.role == "applicant"],
        "today": service.today(), "query_code": documents.query_code(case.case_number),
        "can_act": bool(detail.allowed_actions),
        "survey_links": survey_links(db, case.id) if detail.conclusion == "closed_for_now" else [],
        "network": network_panel(db, actor, case, detail.allowed_actions, network_form),
        "credit": credit_panel(db, actor, case),
    }, status_code=error.status_code if error else 200)


@router.get("/cases/{case_id}")
def case_page(case_id: RecordId, request: Request, actor: ConsoleUser, db: DbSession) -> Response:
    return _case_page(request, actor, db, case_id)


async def _act(request: Request, actor: Actor, db: DbSession, case_id: int,
               action: str) -> Response:
    form = {k: v for k, v in (await request.form()).items() if isinstance(v, str)}
    values: dict[str, Any] = {k: v for k, v in form.items() if k != "csrf_token" and v != ""}
    try:
        case = service.get_case(db, actor, case_id)
        if action == "transition":
            service.transition(db, actor, case, TransitionIn.model_validate(values))
        elif action == "fact":
            service.record_fact(db, actor, case, FactIn.model_validate(values))
        elif action == "note":
            service.add_note(db, actor, case, values.get("text", ""))
        elif action == "extension":
            body = ExtensionIn.model_validate({**values, "months": int(values.get("months", 0))})
            service.extend_period(db, actor, case, body.months, body.reason)
        elif action == "pause":
            p = PauseIn.model_validate(values)
            service.start_pause(db, actor, case, p.reason, p.on)
        elif action == "pause_end":
            service.end_pause(db, actor, case, values.get("reason", ""),
                              date.fromisoformat(values.get("on") or service.today().isoformat()))
        elif action == "asset":
            if "value" in values:
                values["value_fen"] = _yuan_to_fen(values.pop("value"), "value")
            ledger.add_asset(db, actor, case, AssetIn.model_validate(
                {**values, "debtor_id": int(values.get("debtor_id", 0))}))
        elif action == "control":
            asset_id = int(values.pop("asset_id", "0"))
            if "amount" in values:
                values["amount_fen"] = _yuan_to_fen(values.pop("amount"), "amount")
            if "days" in values:
                values["days"] = int(values["days"])
            ledger.control(db, actor, case, asset_id, ControlIn.model_validate(values))
        elif action == "money":
            values["amount_fen"] = _yuan_to_fen(values.pop("amount", ""), "amount")
            for key in ("asset_id", "party_id"):
                if key in values:
                    values[key] = int(values[key])
            ledger.record_money(db, actor, case, MoneyIn.model_validate(values))
        elif action == "resume_case":
            child = service.resume_closed_for_now(db, actor, case, values.get("reason") or "")
            return RedirectResponse(f"/cases/{child.id}", status_code=303)
        else:
            raise ValidationFailed(f"unknown action {action}", code="unknown_action")
    except ValidationError as exc:
        db.rollback()
        return _case_page(request, actor, db, case_id, _pydantic_error(exc))
    except (DomainError, ValueError) as exc:
        db.rollback()
        err = exc if isinstance(exc, DomainError) else ValidationFailed(
            "a value is not valid", code="validation_failed")
        return _case_page(request, actor, db, case_id, err)
    return RedirectResponse(f"/cases/{case_id}", status_code=303)


@router.post("/cases/{case_id}/actions/{action}")
async def case_action(case_id: RecordId, action: str, request: Request, actor: ConsoleUser,
                      db: DbSession) -> Response:
    return await _act(request, actor, db, case_id, action)


@router.post("/cases/{case_id}/documents")
def upload(case_id: RecordId, request: Request, actor: ConsoleUser, db: DbSession,
           file: Annotated[UploadFile, File()],
           note: Annotated[str | None, Form(max_length=500)] = None) -> Response:
    try:
        case = service.get_case(db, actor, case_id)
        documents.add_document(db, actor, case, file.file, file.filename or "document", note)
    except DomainError as exc:
        db.rollback()
        return _case_page(request, actor, db, case_id, exc)
    return RedirectResponse(f"/cases/{case_id}", status_code=303)


@router.get("/cases/{case_id}/notices/{kind}")
def notice(case_id: RecordId, kind: str, request: Request, actor: ConsoleUser,
           db: DbSession) -> Response:
    case = service.get_case(db, actor, case_id)
    audit.record(db, actor, "case.read", object_type="case", object_id=case.id,
                 court_id=case.court_id, case_id=case.id, purpose=f"generate {kind}")
    return notices.render_notice(request, db, case, kind)


@router.get("/lookup")
def lookup_form(request: Request) -> Response:
    return render(request, "cases/lookup.html", {})


@router.post("/lookup")
def lookup(request: Request, db: DbSession,
           case_number: Annotated[str, Form(max_length=48)] = "",
           query_code: Annotated[str, Form(max_length=32)] = "") -> Response:
    try:
        ratelimit.consume(db, f"lookup:{client_ip(request)}", api.LOOKUP_LIMIT,
                          timedelta(minutes=api.LOOKUP_WINDOW_MINUTES),
                          "too many look-ups; try again later")
    except DomainError as exc:
        return render(request, "cases/lookup.html", {"error": exc}, status_code=429)
    db.commit()  # the attempt counts even when the answer is "no match"
    try:
        progress = api.progress_for(db, case_number, query_code, client_ip(request))
    except DomainError as exc:
        return render(request, "cases/lookup.html", {"error": exc, "case_number": case_number},
                      status_code=exc.status_code)
    return render(request, "cases/lookup.html", {"progress": progress,
                                                 "case_number": case_number})
