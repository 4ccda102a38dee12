"""Figures of credit discipline: how many are listed and restricted, how many deletions are due
or late, and *voluntary performance*: the share of listed or restricted debtors who paid after
the measure (the seed reports about 20% for Guangxi), by measure and by the activity on which a
partner stopped them.

A payment counts as voluntary when it is a recovery not taken from a controlled asset (a ledger
entry of kind ``recovered`` without an asset), made on or after the measure's effective date
(for a screening refusal: within 30 days after the first refusal).
"""

from __future__ import annotations

from collections.abc import Collection
from datetime import timedelta
from typing import Any

from pydantic import BaseModel
from sqlalchemy import and_, exists, func, select
from sqlalchemy.orm import Session
from sqlalchemy.sql.selectable import Exists

from zhixing.cases.models import LedgerEntry
from zhixing.cases.service import today
from zhixing.credit.activities import Category
from zhixing.credit.models import (
    Entry,
    Listing,
    ListingStatus,
    Restriction,
    RestrictionKind,
    RestrictionStatus,
    ScreeningHit,
)

AFTER_REFUSAL = timedelta(days=30)


class Effect(BaseModel):
    measure: str  # listing, exit, a consumption behaviour, or "refused:<activity>"
    debtors: int
    paid: int
    share: float | None


class CreditFigures(BaseModel):
    listed_active: int
    listed_published: int
    listed_ever: int
    proposals_pending: int
    requests_overdue: int  # applicants' requests past their 15 days
    deletions_due: int  # detected, not yet deleted
    deletions_overdue: int  # past the 3 working days
    deleted: int
    revoked: int
    restrictions_active: int
    exits_active: int
    voluntary_share: float | None  # of everyone ever listed
    effects: list[Effect]


def _paid_after(case_col: Any, day_col: Any) -> Exists:
    return exists().where(LedgerEntry.case_id == case_col, LedgerEntry.kind == "recovered",
                          LedgerEntry.asset_id.is_(None), LedgerEntry.on >= day_col)


def _share(paid: int, total: int) -> float | None:
    return round(paid / total, 4) if total else None


def compute(session: Session, court_ids: Collection[int]) -> CreditFigures:
    on = today()
    courts = list(court_ids)
    lst = Listing.court_id.in_(courts)

    def count(*where: Any) -> int:
        return session.scalar(select(func.count()).select_from(Listing).where(lst, *where)) or 0

    active = Listing.status == ListingStatus.ACTIVE
    ever = Listing.effective_on.is_not(None)
    listed_ever = count(ever)
    paid_listing = count(ever, _paid_after(Listing.case_id, Listing.effective_on))
    effects = [Effect(measure="listing", debtors=listed_ever, paid=paid_listing,
                      share=_share(paid_listing, listed_ever))]
    restr = Restriction.court_id.in_(courts)
    for kind, label in ((RestrictionKind.EXIT, "exit"),):
        total = session.scalar(select(func.count()).select_from(Restriction).where(
            restr, Restriction.kind == kind)) or 0
        paid = session.scalar(select(func.count()).select_from(Restriction).where(
            restr, Restriction.kind == kind,
            _paid_after(Restriction.case_id, Restriction.issued_on))) or 0
        effects.append(Effect(measure=label, debtors=total, paid=paid, share=_share(paid, total)))
    consumption = session.execute(select(Restriction.categories, _paid_after(
        Restriction.case_id, Restriction.issued_on)).where(
        restr, Restriction.kind == RestrictionKind.CONSUMPTION)).all()
    for category in Category:
        rows = [bool(paid) for cats, paid in consumption if str(category) in (cats or [])]
        effects.append(Effect(measure=f"consumption:{category}", debtors=len(rows),
                              paid=sum(rows), share=_share(sum(rows), len(rows))))
    first_refusal = (select(ScreeningHit.activity, ScreeningHit.entry_id,
                            func.min(ScreeningHit.at).label("first_at"))
                     .where(ScreeningHit.court_id.in_(courts), ScreeningHit.restricted.is_(True))
                     .group_by(ScreeningHit.activity, ScreeningHit.entry_id).subquery())
    refusals = session.execute(select(first_refusal.c.activity, Entry.case_id,
                                      first_refusal.c.first_at)
                               .join(Entry, Entry.id == first_refusal.c.entry_id)).all()
    by_activity: dict[str, list[bool]] = {}
    if refusals:
        for activity, case_id, first_at in refusals:
            day = first_at.date()
            was_paid = session.scalar(select(exists().where(and_(
                LedgerEntry.case_id == case_id, LedgerEntry.kind == "recovered",
                LedgerEntry.asset_id.is_(None), LedgerEntry.on >= day,
                LedgerEntry.on <= day + AFTER_REFUSAL))))
            by_activity.setdefault(str(activity), []).append(bool(was_paid))
    for activity, flags in sorted(by_activity.items()):
        effects.append(Effect(measure=f"refused:{activity}", debtors=len(flags),
                              paid=sum(flags), share=_share(sum(flags), len(flags))))
    return CreditFigures(
        listed_active=count(active),
        listed_published=count(active, Listing.publish_on <= on),
        listed_ever=listed_ever,
        proposals_pending=count(Listing.status == ListingStatus.PROPOSED),
        requests_overdue=count(Listing.status == ListingStatus.PROPOSED,
                               Listing.decide_by < on),
        deletions_due=count(active, Listing.deletion_due_on.is_not(None)),
        deletions_overdue=count(active, Listing.deletion_due_on < on),
        deleted=count(Listing.status == ListingStatus.DELETED),
        revoked=count(Listing.status == ListingStatus.REVOKED),
        restrictions_active=session.scalar(select(func.count()).select_from(Restriction).where(
            restr, Restriction.status == RestrictionStatus.ACTIVE,
            Restriction.kind == RestrictionKind.CONSUMPTION)) or 0,
        exits_active=session.scalar(select(func.count()).select_from(Restriction).where(
            restr, Restriction.status == RestrictionStatus.ACTIVE,
            Restriction.kind == RestrictionKind.EXIT)) or 0,
        voluntary_share=_share(paid_listing, listed_ever),
        effects=effects,
    )
