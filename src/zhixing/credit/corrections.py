"""Correction requests (纠正申请) against a listing: reviewed by the listing court within 15
days and, if justified, corrected (revoked) within 3 working days; a refused person may ask the
higher court within 10 days, which decides within 15. The listing stays in force meanwhile.
"""

from __future__ import annotations

from datetime import date

from sqlalchemy import select
from sqlalchemy.orm import Session

from zhixing.cases import policy
from zhixing.cases.service import event, today
from zhixing.core import audit
from zhixing.core.actor import Actor
from zhixing.core.db import lock_for_update
from zhixing.core.errors import Conflict, Forbidden, NotFound, ValidationFailed
from zhixing.courts.models import Court
from zhixing.credit import listings, rules
from zhixing.credit.models import Correction, CorrectionStatus, Listing, ListingStatus
from zhixing.credit.schemas import (
    CorrectionDecisionIn,
    CorrectionIn,
    HigherReviewIn,
    ListingRevocationIn,
)

OPEN = (CorrectionStatus.PENDING, CorrectionStatus.HIGHER_PENDING)


def get_correction(session: Session, actor: Actor, correction_id: int) -> Correction:
    row = session.get(Correction, correction_id)
    if row is None:
        raise NotFound("correction request not found", code="correction_not_found")
    listing = session.get(Listing, row.listing_id)
    assert listing is not None
    if not (actor.can_see_court(listing.court_id)
            or (row.higher_court_id is not None and actor.can_see_court(row.higher_court_id))):
        raise NotFound("correction request not found", code="correction_not_found")
    return row


def _day(on: date | None, not_before: date, field: str = "on") -> date:
    day = on or today()
    if day > today() or day < not_before:
        raise ValidationFailed(f"the date must lie between {not_before} and today",
                               code="date_out_of_range", field=field)
    return day


def file(session: Session, actor: Actor, listing: Listing, body: CorrectionIn) -> Correction:
    """Register a person's correction request (taken by the listing court's staff)."""
    case = listings.case_of(session, listing)
    policy.require_act(actor, case)
    if listing.status != ListingStatus.ACTIVE:
        raise Conflict(f"the listing is {listing.status}", code=f"listing_{listing.status}")
    if session.scalar(select(Correction.id).where(Correction.listing_id == listing.id,
                                                  Correction.status.in_(OPEN))) is not None:
        raise Conflict("a correction request for this listing is already under review",
                       code="correction_pending")
    filed = _day(body.filed_on, listing.effective_on or case.filed_on, "filed_on")
    row = Correction(listing_id=listing.id, filed_on=filed, filed_by_name=body.filed_by_name,
                     grounds=body.grounds, status=CorrectionStatus.PENDING,
                     review_due_on=rules.correction_review_due(filed))
    session.add(row)
    session.flush()
    event(session, case, actor, "credit", "失信名单：纠正申请", listing_id=listing.id,
          correction_id=row.id)
    audit.record(session, actor, "credit.correction_filed", object_type="correction",
                 object_id=row.id, court_id=case.court_id, case_id=case.id)
    return row


def _correct(session: Session, actor: Actor, listing: Listing, day: date, note: str) -> None:
    if listing.status == ListingStatus.ACTIVE:
        listings.revoke(session, actor, listing, ListingRevocationIn(
            reason=f"纠正：{note}"[:500], on=day))


def decide(session: Session, actor: Actor, row: Correction, body: CorrectionDecisionIn
           ) -> Correction:
    listing = session.get(Listing, row.listing_id)
    assert listing is not None
    case = listings.case_of(session, listing)
    policy.require_approve(actor, case)
    lock_for_update(session, Correction, row.id)
    session.refresh(row)
    if row.status != CorrectionStatus.PENDING:
        raise Conflict("this request has been decided", code="already_decided")
    day = _day(body.on, row.filed_on)
    row.decided_on, row.decided_by, row.decision_note = day, actor.user_id, body.note
    if body.upheld:
        row.status = CorrectionStatus.UPHELD
        row.correction_due_on = rules.add_working_days(day, rules.DELETION_WORKING_DAYS)
        _correct(session, actor, listing, day, body.note)
        row.corrected_on = day
    else:
        row.status = CorrectionStatus.REJECTED
    audit.record(session, actor, "credit.correction_decided", object_type="correction",
                 object_id=row.id, court_id=case.court_id, case_id=case.id,
                 details={"upheld": body.upheld})
    return row


def request_higher_review(session: Session, actor: Actor, row: Correction, body: HigherReviewIn
                          ) -> Correction:
    """The person asks the higher court to review a refusal (within 10 days of it)."""
    listing = session.get(Listing, row.listing_id)
    assert listing is not None
    court = session.get(Court, listing.court_id)
    assert court is not None
    if court.parent_id is None:
        raise Conflict("the high court's decision has no higher review here",
                       code="no_higher_court")
    if not actor.can_see_court(court.parent_id) and not actor.can_see_court(listing.court_id):
        raise NotFound("correction request not found", code="correction_not_found")
    if row.status != CorrectionStatus.REJECTED or row.decided_on is None:
        raise Conflict("only a refused request goes to the higher court", code="not_refused")
    day = _day(body.on, row.decided_on)
    if day > rules.higher_review_request_by(row.decided_on):
        raise Conflict("the 10 days to ask the higher court have passed", code="too_late",
                       details={"last_day": rules.higher_review_request_by(
                           row.decided_on).isoformat()})
    case = listings.case_of(session, listing)
    if not actor.has_role("officer", "approver", "duty_officer"):
        raise Forbidden("your role may not register this request", code="role_forbidden")
    row.status = CorrectionStatus.HIGHER_PENDING
    row.higher_court_id = court.parent_id
    row.higher_requested_on = day
    row.higher_due_on = rules.higher_review_due(day)
    audit.record(session, actor, "credit.correction_to_higher_court", object_type="correction",
                 object_id=row.id, court_id=case.court_id, case_id=case.id)
    return row


def decide_higher(session: Session, actor: Actor, row: Correction, body: CorrectionDecisionIn
                  ) -> Correction:
    listing = session.get(Listing, row.listing_id)
    assert listing is not None
    # get_correction has found the request within the actor's reach (the listing court's or
    # the higher court's): from here on a refusal is a 403, never a 404 that would pretend it
    # does not exist.
    if row.higher_court_id is None or actor.court_id != row.higher_court_id:
        raise Forbidden("the higher court decides", code="role_forbidden")
    if not actor.has_role("approver"):
        raise Forbidden("this needs an approver of the higher court", code="approver_required")
    lock_for_update(session, Correction, row.id)
    session.refresh(row)
    if row.status != CorrectionStatus.HIGHER_PENDING or row.higher_requested_on is None:
        raise Conflict("this request is not with the higher court", code="already_decided")
    day = _day(body.on, row.higher_requested_on)
    row.higher_decided_on, row.higher_decided_by, row.higher_note = day, actor.user_id, body.note
    row.status = (CorrectionStatus.HIGHER_UPHELD if body.upheld
                  else CorrectionStatus.HIGHER_REJECTED)
    if body.upheld:
        row.correction_due_on = rules.add_working_days(day, rules.DELETION_WORKING_DAYS)
        # The higher court's decision binds: the listing is corrected now, in its name.
        _correct_by_higher(session, actor, listing, day, body.note)
        row.corrected_on = day
    audit.record(session, actor, "credit.correction_higher_decided", object_type="correction",
                 object_id=row.id, court_id=listing.court_id, case_id=listing.case_id,
                 details={"upheld": body.upheld})
    return row


def _correct_by_higher(session: Session, actor: Actor, listing: Listing, day: date,
                       note: str) -> None:
    if listing.status != ListingStatus.ACTIVE:
        return
    listing.revoked_on, listing.revoke_reason = day, f"上级法院纠正：{note}"[:500]
    listings.end_listing(session, actor, listing, ListingStatus.REVOKED, day,
                         "revoked_by_higher_court")


def corrections_of(session: Session, listing: Listing) -> list[Correction]:
    return list(session.scalars(select(Correction).where(Correction.listing_id == listing.id)
                                .order_by(Correction.id)))
