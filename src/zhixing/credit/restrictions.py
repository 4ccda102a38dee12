"""Consumption-restriction orders (限制消费令) and exit restrictions (限制出境).

A consumption restriction is mandatory with every listing and optional for a debtor who did not
pay within the notice; for an organisation it binds the organisation and its legal
representative, principal responsible person, person directly responsible and actual controller
(RULES.md). A bound person may be allowed to spend their own money privately: an approved
exception takes those activities out of that person's entry, and only that person's.
"""

from __future__ import annotations

from datetime import date

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from zhixing.cases import policy
from zhixing.cases.models import Case, CaseFact, CaseState, Party
from zhixing.cases.service import event, today
from zhixing.core import audit
from zhixing.core.actor import Actor
from zhixing.core.clock import utcnow
from zhixing.core.db import lock_for_update
from zhixing.core.errors import Conflict, NotFound, ValidationFailed
from zhixing.credit import entries
from zhixing.credit.activities import (
    ALL_CATEGORIES,
    EXIT_MASK,
    Category,
    category_mask,
    mask_of,
    parse_activities,
)
from zhixing.credit.listings import bound_persons_for, debtor_of
from zhixing.credit.models import (
    BoundPerson,
    BoundRole,
    Listing,
    Restriction,
    RestrictionException,
    RestrictionKind,
    RestrictionStatus,
    SourceKind,
)
from zhixing.credit.rules import LiftReason
from zhixing.credit.schemas import ExceptionIn, RestrictionIn, RestrictionLiftIn


def get_restriction(session: Session, actor: Actor, restriction_id: int) -> Restriction:
    row = session.get(Restriction, restriction_id)
    if row is None or not actor.can_see_court(row.court_id):
        raise NotFound("restriction not found", code="restriction_not_found")
    return row


def _case(session: Session, restriction: Restriction) -> Case:
    case = session.get(Case, restriction.case_id)
    assert case is not None
    return case


def parse_categories(values: list[str] | None) -> list[Category]:
    if values is None:
        return list(ALL_CATEGORIES)
    if not values:
        raise ValidationFailed("name at least one behaviour", code="required",
                               field="categories")
    out: list[Category] = []
    for v in values:
        try:
            out.append(Category(v))
        except ValueError:
            raise ValidationFailed(f"unknown behaviour {v!r}", code="unknown_category",
                                   field="categories",
                                   details={"allowed": [str(c) for c in Category]}) from None
    return sorted(set(out), key=list(Category).index)


def _order_number(session: Session, case: Case, kind: RestrictionKind) -> str:
    n = session.scalar(select(func.count()).select_from(Restriction).where(
        Restriction.case_id == case.id)) or 0
    prefix = "限消" if kind == RestrictionKind.CONSUMPTION else "限出"
    return f"{case.case_number}{prefix}{n + 1}"


def _create(session: Session, actor: Actor, case: Case, debtor: Party, kind: RestrictionKind,
            categories: list[Category], persons: list[tuple[Party, BoundRole]], day: date,
            listing: Listing | None) -> Restriction:
    row = Restriction(case_id=case.id, court_id=case.court_id, party_id=debtor.id, kind=kind,
                      categories=[str(c) for c in categories] if kind == "consumption" else [],
                      listing_id=listing.id if listing else None,
                      status=RestrictionStatus.ACTIVE,
                      order_number=_order_number(session, case, kind), issued_on=day,
                      issued_by=actor.user_id, version=1)
    session.add(row)
    session.flush()
    for person, role in persons:
        session.add(BoundPerson(restriction_id=row.id, person_id=person.id, role=role))
    if kind == RestrictionKind.CONSUMPTION and session.get(
            CaseFact, (case.id, "consumption_restriction")) is None:
        session.add(CaseFact(case_id=case.id, kind="consumption_restriction", on=day,
                             recorded_by=actor.user_id, recorded_at=utcnow()))
    sync_entries(session, row, case)
    label = "限制消费令" if kind == RestrictionKind.CONSUMPTION else "限制出境"
    event(session, case, actor, "credit", f"{label} {row.order_number}", restriction_id=row.id)
    audit.record(session, actor, f"credit.{kind}_restricted", object_type="restriction",
                 object_id=row.id, court_id=case.court_id, case_id=case.id,
                 details={"categories": row.categories, "listing_id": row.listing_id})
    return row


def issue(session: Session, actor: Actor, case: Case, body: RestrictionIn) -> Restriction:
    policy.require_act(actor, case)
    if case.state in (CaseState.CONCLUDED, CaseState.SUSPENDED, CaseState.FILED):
        # Before the notice is served the debtor has had no chance to pay.
        raise Conflict(f"the case is {case.state}", code=f"case_{case.state}")
    lock_for_update(session, Case, case.id)
    debtor = debtor_of(session, case, body.party_id)
    kind = RestrictionKind(body.kind)
    if kind == RestrictionKind.EXIT and body.categories is not None:
        raise ValidationFailed("an exit restriction has no behaviours", code="not_applicable",
                               field="categories")
    categories = parse_categories(body.categories) if kind == "consumption" else []
    existing = session.scalar(select(Restriction.id).where(
        Restriction.case_id == case.id, Restriction.party_id == debtor.id,
        Restriction.kind == kind, Restriction.status == RestrictionStatus.ACTIVE))
    if existing is not None:
        raise Conflict("this debtor already has such a restriction in force in this case",
                       code="already_restricted", details={"restriction_id": existing})
    day = body.on or today()
    if day > today() or day < case.filed_on:
        raise ValidationFailed("the date must lie between filing and today",
                               code="date_out_of_range", field="on")
    persons = bound_persons_for(session, debtor, body.bound_persons)
    return _create(session, actor, case, debtor, kind, categories, persons, day, None)


def issue_with_listing(session: Session, actor: Actor, case: Case, listing: Listing,
                       debtor: Party, persons: list[tuple[Party, BoundRole]], day: date
                       ) -> Restriction | None:
    """The consumption restriction every listed debtor gets; an order already in force in the
    case is kept rather than doubled."""
    existing = session.scalar(select(Restriction).where(
        Restriction.case_id == case.id, Restriction.party_id == debtor.id,
        Restriction.kind == RestrictionKind.CONSUMPTION,
        Restriction.status == RestrictionStatus.ACTIVE))
    if existing is not None:
        return None
    return _create(session, actor, case, debtor, RestrictionKind.CONSUMPTION,
                   list(ALL_CATEGORIES), persons, day, listing)


def bound_of(session: Session, restriction: Restriction) -> list[tuple[Party, BoundRole]]:
    rows = session.execute(select(Party, BoundPerson.role).join(
        BoundPerson, BoundPerson.person_id == Party.id).where(
        BoundPerson.restriction_id == restriction.id).order_by(BoundPerson.id)).all()
    return [(p, BoundRole(r)) for p, r in rows]


def exceptions_of(session: Session, restriction: Restriction) -> list[RestrictionException]:
    return list(session.scalars(select(RestrictionException).where(
        RestrictionException.restriction_id == restriction.id)
        .order_by(RestrictionException.id)))


def _excepted_mask(exceptions: list[RestrictionException], person_id: int, on: date) -> int:
    return mask_of(a for e in exceptions if e.person_id == person_id and e.withdrawn_on is None
                   and (e.valid_until is None or e.valid_until >= on) for a in e.activities)


def sync_entries(session: Session, restriction: Restriction, case: Case | None = None) -> None:
    case = case or _case(session, restriction)
    debtor = session.get(Party, restriction.party_id)
    assert debtor is not None
    base = (category_mask(restriction.categories)
            if restriction.kind == RestrictionKind.CONSUMPTION else EXIT_MASK)
    excepted = exceptions_of(session, restriction)
    on = today()
    bindings = [entries.Binding(debtor, BoundRole.DEBTOR, base)]
    bindings += [entries.Binding(p, role, base & ~_excepted_mask(excepted, p.id, on))
                 for p, role in bound_of(session, restriction)]
    entries.sync(session, SourceKind.RESTRICTION, restriction.id, case, bindings,
                 active=restriction.status == RestrictionStatus.ACTIVE,
                 extra={"order_number": restriction.order_number,
                        "restriction_kind": str(restriction.kind),
                        "issued_on": restriction.issued_on.isoformat()})


def _lift(session: Session, actor: Actor, row: Restriction, reason: LiftReason, day: date,
          note: str | None) -> None:
    case = _case(session, row)
    row.status, row.lifted_on = RestrictionStatus.LIFTED, day
    row.lift_reason, row.lifted_by = reason, actor.user_id
    row.version += 1
    sync_entries(session, row, case)
    event(session, case, actor, "credit", f"解除限制 {row.order_number}（{reason}）",
          restriction_id=row.id, reason=str(reason), note=note)
    audit.record(session, actor, "credit.restriction_lifted", object_type="restriction",
                 object_id=row.id, court_id=case.court_id, case_id=case.id,
                 details={"reason": str(reason)})


def lift(session: Session, actor: Actor, row: Restriction, body: RestrictionLiftIn
         ) -> Restriction:
    case = _case(session, row)
    policy.require_act(actor, case)
    lock_for_update(session, Restriction, row.id)
    session.refresh(row)
    if row.status != RestrictionStatus.ACTIVE:
        raise Conflict("the restriction is already lifted", code="already_lifted")
    if body.reason == LiftReason.LISTING_ENDED:
        raise ValidationFailed("that reason is given by the listing's deletion",
                               code="invalid_reason", field="reason")
    day = body.on or today()
    if day > today() or day < row.issued_on:
        raise ValidationFailed("the date must lie between the order and today",
                               code="date_out_of_range", field="on")
    _lift(session, actor, row, LiftReason(body.reason), day, body.note)
    return row


def end_with_listing(session: Session, actor: Actor, listing: Listing, day: date) -> None:
    """A listing's own restriction ends with it (a separately issued order stays)."""
    for row in session.scalars(select(Restriction).where(
            Restriction.listing_id == listing.id,
            Restriction.status == RestrictionStatus.ACTIVE)):
        _lift(session, actor, row, LiftReason.LISTING_ENDED, day, None)


def lift_all_on_performance(session: Session, actor: Actor, case: Case, party_id: int,
                            day: date) -> None:
    """Full performance: every restriction of the debtor in the case must be lifted."""
    for row in session.scalars(select(Restriction).where(
            Restriction.case_id == case.id, Restriction.party_id == party_id,
            Restriction.status == RestrictionStatus.ACTIVE)):
        _lift(session, actor, row, LiftReason.FULL_PERFORMANCE, day, None)


def add_exception(session: Session, actor: Actor, row: Restriction, body: ExceptionIn
                  ) -> RestrictionException:
    """An approved exception: a bound person may spend their own money on these activities."""
    case = _case(session, row)
    policy.require_approve(actor, case)
    if row.status != RestrictionStatus.ACTIVE or row.kind != RestrictionKind.CONSUMPTION:
        raise Conflict("exceptions apply to a consumption restriction in force",
                       code="not_applicable")
    if body.person_id not in {p.id for p, _ in bound_of(session, row)}:
        raise ValidationFailed("exceptions are for the persons an organisation's order binds",
                               code="not_a_bound_person", field="person_id")
    known, unknown = parse_activities(body.activities)
    if unknown:
        raise ValidationFailed(f"unknown activities: {', '.join(unknown)}",
                               code="unknown_activity", field="activities")
    if mask_of(known) & ~category_mask(row.categories):
        raise ValidationFailed("the order does not restrict those activities",
                               code="not_restricted", field="activities")
    if body.valid_until is not None and body.valid_until < today():
        raise ValidationFailed("that date is past", code="date_in_past", field="valid_until")
    exc = RestrictionException(restriction_id=row.id, person_id=body.person_id,
                               activities=[str(a) for a in known], reason=body.reason,
                               approved_by=actor.user_id or 0, approved_on=today(),
                               valid_until=body.valid_until)
    session.add(exc)
    session.flush()
    row.version += 1
    sync_entries(session, row, case)
    audit.record(session, actor, "credit.exception_approved", object_type="restriction",
                 object_id=row.id, court_id=case.court_id, case_id=case.id,
                 details={"person_id": body.person_id, "activities": exc.activities})
    return exc


def restrictions_of_case(session: Session, case: Case) -> list[Restriction]:
    return list(session.scalars(select(Restriction).where(Restriction.case_id == case.id)
                                .order_by(Restriction.id)))
