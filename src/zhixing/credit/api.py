"""JSON API of credit discipline for court staff: listing decisions, restrictions, exceptions,
correction requests, and the list's figures. (Partners' routes are :mod:`partner_api`.)"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel

from zhixing.cases import policy as case_policy
from zhixing.cases import service as case_service
from zhixing.cases.models import Party
from zhixing.core.actor import Actor
from zhixing.credit import corrections, figures, listings, restrictions, schemas
from zhixing.credit.models import Correction, Listing, Restriction, RestrictionException
from zhixing.web.deps import CurrentUser, DbSession, RecordId
from zhixing.web.errors import ERROR_RESPONSES

router = APIRouter(prefix="/api/v1", responses=ERROR_RESPONSES, tags=["credit"])


class BoundPersonRead(BaseModel):
    party_id: int
    name: str
    role: str


class ListingRead(BaseModel):
    id: int
    case_id: int
    court_id: int
    party_id: int
    party_name: str
    ground: int
    conduct: str
    status: str
    origin: str
    requested_by_party_id: int | None
    request_received_on: date | None
    decide_by: date | None
    proposed_at: datetime
    decision_number: str | None
    decision_note: str | None
    effective_on: date | None
    ends_on: date | None
    publish_on: date | None
    published: bool
    extension_years: int
    grace_months: int
    deletion_ground: str | None
    deletion_detected_on: date | None
    deletion_due_on: date | None
    deleted_on: date | None
    revoked_on: date | None
    revoke_reason: str | None
    version: int
    bound_persons: list[BoundPersonRead]


class ListingVersionRead(BaseModel):
    version: int
    action: str
    at: datetime
    actor_name: str | None
    snapshot: dict[str, Any]


class ListingList(BaseModel):
    items: list[ListingRead]


class ExceptionRead(BaseModel):
    id: int
    person_id: int
    activities: list[str]
    reason: str
    approved_on: date
    valid_until: date | None
    withdrawn_on: date | None


class RestrictionRead(BaseModel):
    id: int
    case_id: int
    party_id: int
    party_name: str
    kind: str
    categories: list[str]
    listing_id: int | None
    status: str
    order_number: str
    issued_on: date
    lifted_on: date | None
    lift_reason: str | None
    bound_persons: list[BoundPersonRead]
    exceptions: list[ExceptionRead]


class RestrictionList(BaseModel):
    items: list[RestrictionRead]


class CorrectionRead(BaseModel):
    id: int
    listing_id: int
    filed_on: date
    filed_by_name: str
    grounds: str
    status: str
    review_due_on: date
    decided_on: date | None
    decision_note: str | None
    correction_due_on: date | None
    corrected_on: date | None
    higher_court_id: int | None
    higher_requested_on: date | None
    higher_due_on: date | None
    higher_decided_on: date | None
    higher_note: str | None


def _party_name(db: DbSession, party_id: int) -> str:
    party = db.get(Party, party_id)
    return party.name if party else ""


def listing_read(db: DbSession, listing: Listing) -> ListingRead:
    db.flush()
    return ListingRead(
        id=listing.id, case_id=listing.case_id, court_id=listing.court_id,
        party_id=listing.party_id, party_name=_party_name(db, listing.party_id),
        ground=listing.ground, conduct=listing.conduct, status=listing.status,
        origin=listing.origin, requested_by_party_id=listing.requested_by_party_id,
        request_received_on=listing.request_received_on, decide_by=listing.decide_by,
        proposed_at=listing.proposed_at, decision_number=listing.decision_number,
        decision_note=listing.decision_note, effective_on=listing.effective_on,
        ends_on=listing.ends_on, publish_on=listing.publish_on,
        published=listings.is_published(listing, case_service.today()),
        extension_years=listing.extension_years, grace_months=listing.grace_months,
        deletion_ground=listing.deletion_ground,
        deletion_detected_on=listing.deletion_detected_on,
        deletion_due_on=listing.deletion_due_on, deleted_on=listing.deleted_on,
        revoked_on=listing.revoked_on, revoke_reason=listing.revoke_reason,
        version=listing.version,
        bound_persons=[BoundPersonRead(party_id=p.id, name=p.name, role=r)
                       for p, r in listings.bound_of(db, listing)])


def restriction_read(db: DbSession, row: Restriction) -> RestrictionRead:
    db.flush()
    return RestrictionRead(
        id=row.id, case_id=row.case_id, party_id=row.party_id,
        party_name=_party_name(db, row.party_id), kind=row.kind, categories=row.categories,
        listing_id=row.listing_id, status=row.status, order_number=row.order_number,
        issued_on=row.issued_on, lifted_on=row.lifted_on, lift_reason=row.lift_reason,
        bound_persons=[BoundPersonRead(party_id=p.id, name=p.name, role=r)
                       for p, r in restrictions.bound_of(db, row)],
        exceptions=[_exception_read(e) for e in restrictions.exceptions_of(db, row)])


def _exception_read(e: RestrictionException) -> ExceptionRead:
    return ExceptionRead(id=e.id, person_id=e.person_id, activities=e.activities,
                         reason=e.reason, approved_on=e.approved_on, valid_until=e.valid_until,
                         withdrawn_on=e.withdrawn_on)


def correction_read(row: Correction) -> CorrectionRead:
    return CorrectionRead.model_validate(row, from_attributes=True)


def _listing(db: DbSession, actor: Actor, listing_id: int) -> Listing:
    case_policy.require_read(actor)
    return listings.get_listing(db, actor, listing_id)


# --- listings ---------------------------------------------------------------------------------


@router.post("/cases/{case_id}/listings", status_code=201, response_model=ListingRead)
def propose_listing(case_id: RecordId, body: schemas.ListingIn, actor: CurrentUser,
                    db: DbSession) -> ListingRead:
    """Propose listing a debtor as dishonest (or record the applicant's request, decided within
    15 days). A minor, or a ground-1 statutory exclusion, is refused with the reason."""
    case = case_service.get_case(db, actor, case_id)
    return listing_read(db, listings.propose(db, actor, case, body))


@router.get("/cases/{case_id}/listings", response_model=ListingList)
def list_case_listings(case_id: RecordId, actor: CurrentUser, db: DbSession) -> ListingList:
    case = case_service.get_case(db, actor, case_id)
    return ListingList(items=[listing_read(db, x) for x in listings.listings_of_case(db, case)])


@router.get("/listings/{listing_id}", response_model=ListingRead)
def get_listing(listing_id: RecordId, actor: CurrentUser, db: DbSession) -> ListingRead:
    return listing_read(db, _listing(db, actor, listing_id))


@router.get("/listings/{listing_id}/versions", response_model=list[ListingVersionRead])
def listing_versions(listing_id: RecordId, actor: CurrentUser, db: DbSession
                     ) -> list[ListingVersionRead]:
    """Every state the entry has been in, oldest first: the history is never lost."""
    listing = _listing(db, actor, listing_id)
    return [ListingVersionRead(version=v.version, action=v.action, at=v.at,
                               actor_name=v.actor_name, snapshot=v.snapshot)
            for v in listings.versions(db, listing)]


@router.post("/listings/{listing_id}/decision", response_model=ListingRead)
def decide_listing(listing_id: RecordId, body: schemas.ListingDecisionIn, actor: CurrentUser,
                   db: DbSession) -> ListingRead:
    """The approver (not the proposer) approves — effective that day, with the mandatory
    consumption restriction — or refuses with the reason."""
    listing = _listing(db, actor, listing_id)
    return listing_read(db, listings.decide(db, actor, listing, body))


@router.post("/listings/{listing_id}/deletion", response_model=ListingRead)
def delete_listing(listing_id: RecordId, body: schemas.ListingDeletionIn, actor: CurrentUser,
                   db: DbSession) -> ListingRead:
    """Delete on a deletion event (hidden from the public and partners; the record stays)."""
    listing = _listing(db, actor, listing_id)
    return listing_read(db, listings.delete(db, actor, listing, body))


@router.post("/listings/{listing_id}/revocation", response_model=ListingRead)
def revoke_listing(listing_id: RecordId, body: schemas.ListingRevocationIn,
                   actor: CurrentUser, db: DbSession) -> ListingRead:
    """Revoke a wrong listing."""
    listing = _listing(db, actor, listing_id)
    return listing_read(db, listings.revoke(db, actor, listing, body))


@router.post("/listings/{listing_id}/extension", response_model=ListingRead)
def extend_listing(listing_id: RecordId, body: schemas.ListingExtensionIn, actor: CurrentUser,
                   db: DbSession) -> ListingRead:
    """Extend a fixed period by 1-3 years (serious obstruction or repeated conduct)."""
    listing = _listing(db, actor, listing_id)
    return listing_read(db, listings.extend(db, actor, listing, body))


# --- corrections --------------------------------------------------------------------------


@router.post("/listings/{listing_id}/corrections", status_code=201,
             response_model=CorrectionRead)
def file_correction(listing_id: RecordId, body: schemas.CorrectionIn, actor: CurrentUser,
                    db: DbSession) -> CorrectionRead:
    """Register a correction request: reviewed within 15 days; the listing stays in force."""
    listing = _listing(db, actor, listing_id)
    row = corrections.file(db, actor, listing, body)
    return correction_read(row)


@router.get("/listings/{listing_id}/corrections", response_model=list[CorrectionRead])
def list_corrections(listing_id: RecordId, actor: CurrentUser, db: DbSession
                     ) -> list[CorrectionRead]:
    listing = _listing(db, actor, listing_id)
    return [correction_read(c) for c in corrections.corrections_of(db, listing)]


@router.post("/corrections/{correction_id}/decision", response_model=CorrectionRead)
def decide_correction(correction_id: RecordId, body: schemas.CorrectionDecisionIn,
                      actor: CurrentUser, db: DbSession) -> CorrectionRead:
    """The listing court's decision; upheld means the listing is corrected (revoked) now."""
    case_policy.require_read(actor)
    row = corrections.get_correction(db, actor, correction_id)
    return correction_read(corrections.decide(db, actor, row, body))


@router.post("/corrections/{correction_id}/higher-review", response_model=CorrectionRead)
def request_higher_review(correction_id: RecordId, body: schemas.HigherReviewIn,
                          actor: CurrentUser, db: DbSession) -> CorrectionRead:
    """The person asks the higher court to review a refusal, within 10 days of it."""
    case_policy.require_read(actor)
    row = corrections.get_correction(db, actor, correction_id)
    return correction_read(corrections.request_higher_review(db, actor, row, body))


@router.post("/corrections/{correction_id}/higher-decision", response_model=CorrectionRead)
def decide_higher_review(correction_id: RecordId, body: schemas.CorrectionDecisionIn,
                         actor: CurrentUser, db: DbSession) -> CorrectionRead:
    """The higher court's decision, within 15 days."""
    case_policy.require_read(actor)
    row = corrections.get_correction(db, actor, correction_id)
    return correction_read(corrections.decide_higher(db, actor, row, body))


# --- restrictions -------------------------------------------------------------------------


@router.post("/cases/{case_id}/restrictions", status_code=201, response_model=RestrictionRead)
def issue_restriction(case_id: RecordId, body: schemas.RestrictionIn, actor: CurrentUser,
                      db: DbSession) -> RestrictionRead:
    """Issue a consumption restriction (by behaviour; all nine by default) or an exit
    restriction. For an organisation it binds its responsible persons too."""
    case = case_service.get_case(db, actor, case_id)
    return restriction_read(db, restrictions.issue(db, actor, case, body))


@router.get("/cases/{case_id}/restrictions", response_model=RestrictionList)
def list_restrictions(case_id: RecordId, actor: CurrentUser, db: DbSession) -> RestrictionList:
    case = case_service.get_case(db, actor, case_id)
    return RestrictionList(items=[restriction_read(db, r)
                                  for r in restrictions.restrictions_of_case(db, case)])


@router.post("/restrictions/{restriction_id}/lift", response_model=RestrictionRead)
def lift_restriction(restriction_id: RecordId, body: schemas.RestrictionLiftIn,
                     actor: CurrentUser, db: DbSession) -> RestrictionRead:
    """Lift: security given or the applicant's consent (may), full performance (must)."""
    case_policy.require_read(actor)
    row = restrictions.get_restriction(db, actor, restriction_id)
    return restriction_read(db, restrictions.lift(db, actor, row, body))


@router.post("/restrictions/{restriction_id}/exceptions", status_code=201,
             response_model=RestrictionRead)
def approve_exception(restriction_id: RecordId, body: schemas.ExceptionIn, actor: CurrentUser,
                      db: DbSession) -> RestrictionRead:
    """An approved personal exception: a bound person spends their own money."""
    case_policy.require_read(actor)
    row = restrictions.get_restriction(db, actor, restriction_id)
    restrictions.add_exception(db, actor, row, body)
    return restriction_read(db, row)


# --- figures ------------------------------------------------------------------------------


@router.get("/credit/figures", response_model=figures.CreditFigures)
def credit_figures(actor: CurrentUser, db: DbSession) -> figures.CreditFigures:
    """Listed debtors, restrictions, deletions due and overdue, and voluntary performance after
    listing (the seed's 20%), over the courts the user reaches."""
    case_policy.require_read(actor)
    return figures.compute(db, actor.visible_court_ids)


