"""The credit sweep (a recurring job): publish listings whose grace period is over, detect
deletion events from the cases' facts and set their 3-working-day due date, delete listings
whose fixed period has ended, and end personal exceptions past their date.

Deletion on the other events is the officer's act (he confirms the facts), but the due date is
visible from the moment the event is detected, on the case page and to the command center.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from sqlalchemy import and_, func, or_, select
from sqlalchemy import case as sql_case
from sqlalchemy.orm import Session

from zhixing.cases.models import Asset, Case, CaseEvent, CaseState
from zhixing.cases.service import event, today
from zhixing.core import audit, jobs
from zhixing.core.actor import SYSTEM
from zhixing.credit import listings, restrictions, rules
from zhixing.credit.models import (
    BoundRole,
    Entry,
    Listing,
    ListingStatus,
    Restriction,
    RestrictionException,
    SourceKind,
)
from zhixing.linkage.models import OPEN_TASK, Inquiry, LinkageTask

SWEEP_INTERVAL = timedelta(minutes=1)
BATCH = 500


@dataclass
class SweepResult:
    published: int = 0
    detected: int = 0
    deleted: int = 0
    exceptions_ended: int = 0


def _suspension_ground(session: Session, case: Case) -> str | None:
    if case.state != CaseState.SUSPENDED:
        return None
    data = session.scalar(select(CaseEvent.data).where(
        CaseEvent.case_id == case.id, CaseEvent.kind == "transition")
        .order_by(CaseEvent.id.desc()).limit(1))
    ground = (data or {}).get("ground")
    return str(ground) if ground else None


def _searches_after(session: Session, case: Case) -> tuple[int, int]:
    """Network searches after 终本 that found nothing, and assets found since (open leads)."""
    if case.concluded_on is None:
        return 0, 0
    since = case.concluded_on
    found = func.coalesce(func.sum(LinkageTask.found_count), 0)
    open_tasks = func.sum(sql_case((LinkageTask.status.in_(OPEN_TASK), 1), else_=0))
    rows = session.execute(select(Inquiry.id, found, open_tasks).join(
        LinkageTask, LinkageTask.inquiry_id == Inquiry.id).where(
        Inquiry.case_id == case.id, func.date(Inquiry.created_at) > since)
        .group_by(Inquiry.id)).all()
    empty = sum(1 for _, f, o in rows if not f and not o)
    leads = session.scalar(select(func.count()).select_from(Asset).where(
        Asset.case_id == case.id, func.date(Asset.created_at) > since)) or 0
    return empty, int(leads)


def facts_for(session: Session, case: Case) -> rules.CaseFacts:
    empty, leads = (_searches_after(session, case)
                    if case.conclusion == "closed_for_now" else (0, 0))
    return rules.CaseFacts(conclusion=str(case.conclusion) if case.conclusion else None,
                           conclusion_ground=case.conclusion_ground,
                           suspension_ground=_suspension_ground(session, case),
                           outstanding_fen=case.outstanding_fen,
                           empty_searches_after_closure=empty, open_leads=leads)


def detect(session: Session, listing: Listing, case: Case, on: date) -> rules.DeletionGround | None:
    """Record a newly detected deletion event with its due date. Returns it."""
    if listing.status != ListingStatus.ACTIVE or listing.deletion_ground is not None:
        return None
    ground = rules.deletion_event(facts_for(session, case), ends=listing.ends_on, today=on)
    if ground is None:
        return None
    listing.deletion_ground = ground
    listing.deletion_detected_on = on
    listing.deletion_due_on = rules.deletion_due(on)
    listing.version += 1
    listings.record_version(session, SYSTEM, listing, "deletion_detected")
    event(session, case, SYSTEM, "credit", f"失信名单：应当删除（{ground}），"
          f"期限 {listing.deletion_due_on.isoformat()}", listing_id=listing.id,
          ground=str(ground), due_on=listing.deletion_due_on.isoformat())
    audit.record(session, SYSTEM, "credit.deletion_detected", object_type="listing",
                 object_id=listing.id, court_id=case.court_id, case_id=case.id,
                 details={"ground": str(ground), "due_on": listing.deletion_due_on.isoformat()})
    return ground


def candidates(session: Session, on: date) -> list[Listing]:
    """Active listings whose case shows something a deletion rule looks at."""
    applied = Case.principal_fen + Case.interest_fen + Case.costs_fen
    q = (select(Listing).join(Case, Case.id == Listing.case_id).where(
        Listing.status == ListingStatus.ACTIVE, Listing.deletion_ground.is_(None),
        or_(Case.conclusion.is_not(None), Case.state == CaseState.SUSPENDED,
            Case.recovered_fen >= applied,
            and_(Listing.ends_on.is_not(None), Listing.ends_on <= on)))
         .order_by(Listing.id).limit(BATCH))
    return list(session.scalars(q))


def sweep(session: Session, on: date | None = None) -> SweepResult:
    on = on or today()
    out = SweepResult()
    # 1. publication after the grace period
    published_debtor = select(Entry.source_id).where(
        Entry.source_kind == SourceKind.LISTING, Entry.role == BoundRole.DEBTOR,
        Entry.active.is_(True))
    for listing in session.scalars(select(Listing).where(
            Listing.status == ListingStatus.ACTIVE, Listing.publish_on <= on,
            Listing.id.not_in(published_debtor)).limit(BATCH)):
        listings.publish_if_due(session, listing, on=on)
        out.published += 1
    # 2. deletion events, and the period's end (deleted by the platform: no judgment needed)
    for listing in candidates(session, on):
        case = listings.case_of(session, listing)
        ground = detect(session, listing, case, on)
        if ground is None:
            continue
        out.detected += 1
        if ground == rules.DeletionGround.PERIOD_ENDED:
            listings.delete_now(session, SYSTEM, listing, ground, on, "期限届满")
            out.deleted += 1
    # 3. personal exceptions past their date
    for exc in session.scalars(select(RestrictionException).where(
            RestrictionException.withdrawn_on.is_(None),
            RestrictionException.valid_until < on).limit(BATCH)):
        exc.withdrawn_on = on
        row = session.get(Restriction, exc.restriction_id)
        assert row is not None
        restrictions.sync_entries(session, row)
        out.exceptions_ended += 1
    return out


def overdue_deletions(session: Session, court_ids: frozenset[int], on: date | None = None,
                      limit: int = 100) -> list[Listing]:
    """Listings whose deletion is past its 3-working-day due date (for the command center)."""
    on = on or today()
    return list(session.scalars(select(Listing).where(
        Listing.status == ListingStatus.ACTIVE, Listing.deletion_due_on < on,
        Listing.court_id.in_(court_ids)).order_by(Listing.deletion_due_on).limit(limit)))


@jobs.handler("credit.sweep")
def run(session: Session, _payload: dict[str, Any]) -> None:
    sweep(session)


def schedule_recurring(session: Session) -> None:
    jobs.enqueue(session, "credit.sweep", dedupe_key="recurring:credit.sweep",
                 interval=SWEEP_INTERVAL)
