"""Console pages of credit discipline: the case page's panel (listings, restrictions and their
forms), the court's list desk (proposals to decide, deletions due and late, figures) and the
printable listing decision (失信决定书)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response
from pydantic import ValidationError
from sqlalchemy import select

from zhixing.cases import policy as case_policy
from zhixing.cases import service as case_service
from zhixing.cases import views as case_views
from zhixing.cases.models import Case, CaseState, Party
from zhixing.core.actor import Actor
from zhixing.core.errors import DomainError, Forbidden
from zhixing.courts.models import Court
from zhixing.credit import figures, listings, restrictions, schemas, terms
from zhixing.credit.activities import ALL_CATEGORIES
from zhixing.credit.models import Listing, ListingStatus
from zhixing.credit.rules import MANUAL_DELETION, LiftReason
from zhixing.web.deps import ConsoleUser, DbSession, RecordId
from zhixing.web.templating import render

router = APIRouter(include_in_schema=False)

GROUND_NAMES = dict(enumerate(terms.GROUNDS, start=1))


def _may(check: Callable[..., None], *args: Any) -> bool:
    try:
        check(*args)
    except DomainError:
        return False
    return True


def case_panel(db: DbSession, actor: Actor, case: Case) -> dict[str, Any]:
    """What the case page shows of credit discipline."""
    rows = listings.listings_of_case(db, case)
    names = {p.id: p.name for p in db.scalars(select(Party).where(
        Party.id.in_({x.party_id for x in rows})))} if rows else {}
    return {
        "listings": [(x, names.get(x.party_id, "")) for x in rows],
        "restrictions": [(r, restrictions.bound_of(db, r))
                         for r in restrictions.restrictions_of_case(db, case)],
        "can_act": _may(case_policy.require_act, actor, case)
        and case.state not in (CaseState.CONCLUDED, CaseState.SUSPENDED),
        "can_delete": _may(case_policy.require_act, actor, case),
        "can_approve": _may(case_policy.require_approve, actor, case),
        "grounds": GROUND_NAMES, "categories": [str(c) for c in ALL_CATEGORIES],
        "deletion_grounds": [str(g) for g in MANUAL_DELETION],
        "lift_reasons": [str(r) for r in LiftReason if r != LiftReason.LISTING_ENDED],
        "user_id": actor.user_id,
    }


async def _form(request: Request) -> dict[str, Any]:
    form = await request.form()
    out: dict[str, Any] = {}
    for key in form:
        values = [v for v in form.getlist(key) if isinstance(v, str)]
        if key == "csrf_token":
            continue
        out[key] = values if key == "categories" else (values[0] if values else "")
    return {k: v for k, v in out.items() if v != ""}


def _done(request: Request, actor: Actor, db: DbSession, case_id: int,
          act: Callable[[], object]) -> Response:
    try:
        act()
    except ValidationError as exc:
        db.rollback()
        return case_views._case_page(request, actor, db, case_id, case_views._pydantic_error(exc))
    except DomainError as exc:
        db.rollback()
        return case_views._case_page(request, actor, db, case_id, exc)
    return RedirectResponse(f"/cases/{case_id}#credit", status_code=303)


def _listing_in_case(db: DbSession, actor: Actor, case_id: int, listing_id: int) -> Listing:
    listing = listings.get_listing(db, actor, listing_id)
    if listing.case_id != case_id:
        raise Forbidden("that listing belongs to another case", code="wrong_case")
    return listing


@router.post("/cases/{case_id}/credit/listings")
async def propose(case_id: RecordId, request: Request, actor: ConsoleUser,
                  db: DbSession) -> Response:
    data = await _form(request)

    def act() -> object:
        case = case_service.get_case(db, actor, case_id)
        return listings.propose(db, actor, case, schemas.ListingIn.model_validate(data))
    return _done(request, actor, db, case_id, act)


@router.post("/cases/{case_id}/credit/listings/{listing_id}/{action}")
async def listing_action(case_id: RecordId, listing_id: RecordId, action: str,
                         request: Request, actor: ConsoleUser, db: DbSession) -> Response:
    data = await _form(request)

    def act() -> object:
        listing = _listing_in_case(db, actor, case_id, listing_id)
        if action == "approve":
            return listings.decide(db, actor, listing, schemas.ListingDecisionIn(
                approve=True, note=data.get("note")))
        if action == "refuse":
            return listings.decide(db, actor, listing, schemas.ListingDecisionIn(
                approve=False, note=data.get("note")))
        if action == "delete":
            return listings.delete(db, actor, listing,
                                   schemas.ListingDeletionIn.model_validate(data))
        if action == "revoke":
            return listings.revoke(db, actor, listing,
                                   schemas.ListingRevocationIn.model_validate(data))
        raise Forbidden("unknown action", code="unknown_action")
    return _done(request, actor, db, case_id, act)


@router.post("/cases/{case_id}/credit/restrictions")
async def issue_restriction(case_id: RecordId, request: Request, actor: ConsoleUser,
                            db: DbSession) -> Response:
    data = await _form(request)
    if data.get("kind") == "exit":
        data.pop("categories", None)

    def act() -> object:
        case = case_service.get_case(db, actor, case_id)
        return restrictions.issue(db, actor, case, schemas.RestrictionIn.model_validate(data))
    return _done(request, actor, db, case_id, act)


@router.post("/cases/{case_id}/credit/restrictions/{restriction_id}/lift")
async def lift_restriction(case_id: RecordId, restriction_id: RecordId, request: Request,
                           actor: ConsoleUser, db: DbSession) -> Response:
    data = await _form(request)

    def act() -> object:
        row = restrictions.get_restriction(db, actor, restriction_id)
        if row.case_id != case_id:
            raise Forbidden("that restriction belongs to another case", code="wrong_case")
        return restrictions.lift(db, actor, row, schemas.RestrictionLiftIn.model_validate(data))
    return _done(request, actor, db, case_id, act)


@router.get("/credit")
def desk(request: Request, actor: ConsoleUser, db: DbSession) -> Response:
    """The court's list desk: what waits for a decision or a deletion, and the figures."""
    case_policy.require_read(actor)
    reach = actor.visible_court_ids
    base = select(Listing, Case.case_number, Party.name).join(
        Case, Case.id == Listing.case_id).join(Party, Party.id == Listing.party_id).where(
        Listing.court_id.in_(reach))
    pending = db.execute(base.where(Listing.status == ListingStatus.PROPOSED)
                         .order_by(Listing.decide_by.is_(None), Listing.decide_by,
                                   Listing.id).limit(200)).all()
    due = db.execute(base.where(Listing.status == ListingStatus.ACTIVE,
                                Listing.deletion_due_on.is_not(None))
                     .order_by(Listing.deletion_due_on).limit(200)).all()
    recent = db.execute(base.where(Listing.status == ListingStatus.ACTIVE)
                        .order_by(Listing.effective_on.desc(), Listing.id.desc()).limit(50)).all()
    return render(request, "credit/desk.html", {
        "actor": actor, "pending": pending, "due": due, "recent": recent,
        "figures": figures.compute(db, reach), "today": case_service.today(),
        "grounds": GROUND_NAMES})


@router.get("/credit/listings/{listing_id}/decision")
def decision_document(listing_id: RecordId, request: Request, actor: ConsoleUser,
                      db: DbSession) -> Response:
    """The printable listing decision (失信决定书)."""
    case_policy.require_read(actor)
    listing = listings.get_listing(db, actor, listing_id)
    if listing.decision_number is None:
        raise Forbidden("the listing has not been decided", code="not_decided")
    case = listings.case_of(db, listing)
    court = db.get(Court, case.court_id)
    debtor = db.get(Party, listing.party_id)
    applicants = [cp.party for cp in case.parties if cp.role == "applicant"]
    return render(request, "credit/decision.html", {
        "listing": listing, "case": case, "court": court, "debtor": debtor,
        "applicants": applicants, "bound": listings.bound_of(db, listing),
        "ground_name": GROUND_NAMES[listing.ground]})
