"""Listing decisions (失信决定): proposal, approval, publication, extension, deletion, revocation.

Every change bumps the listing's version and stores a snapshot (:class:`ListingVersion`), so
the history of an entry is never lost; what partners receive follows from the listing's state
through :func:`zhixing.credit.entries.sync`. A listing is effective when approved, and reaches
partners and the public once its optional grace period is over (``publish_on``); the sweep job
publishes the listings whose day has come.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from zhixing.cases import policy
from zhixing.cases.models import Case, CaseFact, CaseParty, CaseState, Party, PartyKind
from zhixing.cases.service import event, today
from zhixing.core import audit
from zhixing.core.actor import Actor
from zhixing.core.clock import utcnow
from zhixing.core.db import lock_for_update
from zhixing.core.errors import Conflict, Forbidden, NotFound, ValidationFailed
from zhixing.credit import entries, rules
from zhixing.credit.activities import LISTING_MASK
from zhixing.credit.models import (
    BoundPerson,
    BoundRole,
    Listing,
    ListingOrigin,
    ListingStatus,
    ListingVersion,
    SourceKind,
)
from zhixing.credit.schemas import (
    BoundPersonIn,
    ListingDecisionIn,
    ListingDeletionIn,
    ListingExtensionIn,
    ListingIn,
    ListingRevocationIn,
)

OPEN_LISTING = (ListingStatus.PROPOSED, ListingStatus.ACTIVE)
_NUMERALS = "一二三四五六七八九十"


def get_listing(session: Session, actor: Actor, listing_id: int) -> Listing:
    listing = session.get(Listing, listing_id)
    if listing is None or not actor.can_see_court(listing.court_id):
        raise NotFound("listing not found", code="listing_not_found")
    return listing


def case_of(session: Session, listing: Listing) -> Case:
    case = session.get(Case, listing.case_id)
    assert case is not None
    return case


def snapshot(listing: Listing) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for col in Listing.__table__.columns:
        value = getattr(listing, col.key)
        out[col.key] = value.isoformat() if hasattr(value, "isoformat") else (
            str(value) if isinstance(value, str) else value)
    return out


def record_version(session: Session, actor: Actor, listing: Listing, action: str) -> None:
    """Record the listing's new state as a version (the first call records version 1)."""
    session.flush()
    session.add(ListingVersion(listing_id=listing.id, version=listing.version, action=action,
                               at=utcnow(), actor_id=actor.user_id, actor_name=actor.name,
                               snapshot=snapshot(listing)))


def _bump(session: Session, actor: Actor, listing: Listing, action: str) -> None:
    listing.version += 1
    record_version(session, actor, listing, action)


def _action_day(on: date | None, not_before: date | None, field: str = "on") -> date:
    day = on or today()
    if day > today():
        raise ValidationFailed("that date is in the future", code="date_in_future", field=field)
    if not_before is not None and day < not_before:
        raise ValidationFailed(f"that date is before {not_before}", code="date_too_early",
                               field=field)
    return day


def debtor_of(session: Session, case: Case, party_id: int, field: str = "party_id") -> Party:
    link = session.get(CaseParty, (case.id, party_id, "debtor"))
    if link is None:
        raise ValidationFailed("that party is not a debtor of this case", code="not_a_debtor",
                               field=field)
    party = session.get(Party, party_id)
    assert party is not None
    return party


def bound_persons_for(session: Session, debtor: Party, given: list[BoundPersonIn] | None
                      ) -> list[tuple[Party, BoundRole]]:
    """The persons an organisation's measure binds: as given, or its recorded responsible
    persons. A person debtor binds only himself."""
    if debtor.kind != PartyKind.ORGANISATION:
        if given:
            raise ValidationFailed("only an organisation's measure binds other persons",
                                   code="not_an_organisation", field="bound_persons")
        return []
    if given is None:
        return [(rp.person, BoundRole(rp.role)) for rp in debtor.responsible_persons]
    out: list[tuple[Party, BoundRole]] = []
    for i, b in enumerate(given):
        person = session.get(Party, b.party_id)
        if person is None or person.kind != PartyKind.PERSON:
            raise ValidationFailed("a bound person must be a recorded natural person",
                                   code="unknown_person", field=f"bound_persons.{i}.party_id")
        if b.role == BoundRole.DEBTOR:
            raise ValidationFailed("choose the person's role in the organisation",
                                   code="invalid_role", field=f"bound_persons.{i}.role")
        out.append((person, b.role))
    return out


def _refuse_if_any(refusals: list[rules.Refusal]) -> None:
    if refusals:
        first = refusals[0]
        raise ValidationFailed(first.message, code=first.code,
                               details={"refusals": [r.code for r in refusals]})


def propose(session: Session, actor: Actor, case: Case, body: ListingIn) -> Listing:
    """An officer proposes a listing, or records the applicant's request (decided within 15
    days). A proposal the rules already refuse (a minor, a ground-1 exclusion) is refused here
    with the reason, and nothing is stored."""
    policy.require_act(actor, case)
    if case.state in (CaseState.CONCLUDED, CaseState.SUSPENDED):
        raise Conflict(f"the case is {case.state}", code=f"case_{case.state}")
    lock_for_update(session, Case, case.id)
    debtor = debtor_of(session, case, body.party_id)
    received: date | None = None
    if body.origin == "applicant":
        if body.requested_by_party_id is None:
            raise ValidationFailed("name the applicant who asks", code="required",
                                   field="requested_by_party_id")
        if session.get(CaseParty, (case.id, body.requested_by_party_id, "applicant")) is None:
            raise ValidationFailed("that party is not an applicant of this case",
                                   code="not_an_applicant", field="requested_by_party_id")
        received = _action_day(body.request_received_on, case.filed_on, "request_received_on")
        blocked = session.scalar(select(func.max(Listing.requester_blocked_until)).where(
            Listing.case_id == case.id, Listing.party_id == debtor.id,
            Listing.requested_by_party_id == body.requested_by_party_id))
        if blocked is not None and received < blocked:
            raise Conflict(f"this applicant asked for deletion; no new request before {blocked}",
                           code="requester_blocked", details={"until": blocked.isoformat()})
    elif body.requested_by_party_id is not None or body.request_received_on is not None:
        raise ValidationFailed("only an applicant's request names a requester",
                               code="not_a_request", field="requested_by_party_id")
    existing = session.scalar(select(Listing.id).where(
        Listing.case_id == case.id, Listing.party_id == debtor.id,
        Listing.status.in_(OPEN_LISTING)))
    if existing is not None:
        raise Conflict("this debtor is already listed or proposed in this case",
                       code="already_listed", details={"listing_id": existing})
    try:
        rules.check_extension(body.ground, body.extension_years)
    except ValueError as exc:
        raise ValidationFailed(str(exc), code="invalid_extension",
                               field="extension_years") from exc
    if body.extension_years and not body.extension_reason:
        raise ValidationFailed("say why the period is extended", code="required",
                               field="extension_reason")
    if body.origin == "officer":
        _refuse_if_any(rules.listing_refusals(
            ground=body.ground, is_person=debtor.kind == PartyKind.PERSON,
            birth_date=debtor.birth_date, on=today(), exclusions=body.exclusions))
    persons = bound_persons_for(session, debtor, body.bound_persons)
    listing = Listing(
        case_id=case.id, court_id=case.court_id, party_id=debtor.id, ground=body.ground,
        conduct=body.conduct, status=ListingStatus.PROPOSED, origin=ListingOrigin(body.origin),
        requested_by_party_id=body.requested_by_party_id, request_received_on=received,
        decide_by=rules.request_decide_by(received) if received else None,
        proposed_by=actor.user_id, proposed_at=utcnow(),
        extension_years=body.extension_years, extension_reason=body.extension_reason,
        grace_months=body.grace_months, version=1)
    session.add(listing)
    session.flush()
    for person, role in persons:
        session.add(BoundPerson(listing_id=listing.id, person_id=person.id, role=role))
    by_officer = body.origin == "officer"
    record_version(session, actor, listing, "proposed" if by_officer else "requested")
    event(session, case, actor, "credit",
          f"失信名单：{'提出' if by_officer else '申请人申请'}（第{body.ground}项）",
          listing_id=listing.id, ground=body.ground)
    audit.record(session, actor, "credit.listing_proposed", object_type="listing",
                 object_id=listing.id, court_id=case.court_id, case_id=case.id,
                 details={"ground": body.ground, "origin": body.origin,
                          "exclusions": [str(e) for e in body.exclusions]})
    return listing


def bound_of(session: Session, listing: Listing) -> list[tuple[Party, BoundRole]]:
    rows = session.execute(select(Party, BoundPerson.role).join(
        BoundPerson, BoundPerson.person_id == Party.id).where(
        BoundPerson.listing_id == listing.id).order_by(BoundPerson.id)).all()
    return [(p, BoundRole(r)) for p, r in rows]


def _decision_number(session: Session, case: Case) -> str:
    n = session.scalar(select(func.count()).select_from(Listing).where(
        Listing.case_id == case.id, Listing.decision_number.is_not(None))) or 0
    suffix = _NUMERALS[n] if n < len(_NUMERALS) else str(n + 1)
    return f"{case.case_number}之{suffix}"


def _record_fact(session: Session, actor: Actor, case: Case, kind: str, on: date) -> None:
    if session.get(CaseFact, (case.id, kind)) is None:
        session.add(CaseFact(case_id=case.id, kind=kind, on=on, recorded_by=actor.user_id,
                             recorded_at=utcnow()))


def decide(session: Session, actor: Actor, listing: Listing, body: ListingDecisionIn
           ) -> Listing:
    """The approver's decision. Approval makes the listing effective that day, issues the
    mandatory consumption restriction, and publishes it (now, or after the grace period)."""
    from zhixing.credit import restrictions  # the restriction issued with a listing

    case = case_of(session, listing)
    policy.require_approve(actor, case)
    lock_for_update(session, Listing, listing.id)
    session.refresh(listing)
    if listing.status != ListingStatus.PROPOSED:
        raise Conflict(f"the listing is {listing.status}", code=f"listing_{listing.status}")
    if listing.proposed_by is not None and listing.proposed_by == actor.user_id:
        raise Forbidden("a listing is approved by someone other than its proposer",
                        code="same_person")
    day = _action_day(body.on, listing.request_received_on or case.filed_on)
    debtor = session.get(Party, listing.party_id)
    assert debtor is not None
    listing.decided_by, listing.decided_at = actor.user_id, utcnow()
    if not body.approve:
        if not body.note:
            raise ValidationFailed("say why the listing is refused", code="required",
                                   field="note")
        listing.status, listing.decision_note = ListingStatus.REFUSED, body.note
        _bump(session, actor, listing, "refused")
        event(session, case, actor, "credit", "失信名单：不予纳入", listing_id=listing.id)
        audit.record(session, actor, "credit.listing_refused", object_type="listing",
                     object_id=listing.id, court_id=case.court_id, case_id=case.id)
        return listing
    if case.state in (CaseState.CONCLUDED, CaseState.SUSPENDED):
        raise Conflict(f"the case is {case.state}", code=f"case_{case.state}")
    _refuse_if_any(rules.listing_refusals(
        ground=listing.ground, is_person=debtor.kind == PartyKind.PERSON,
        birth_date=debtor.birth_date, on=day))
    listing.status = ListingStatus.ACTIVE
    listing.decision_note = body.note
    listing.decision_number = _decision_number(session, case)
    listing.effective_on = day
    listing.ends_on = rules.ends_on(listing.ground, day, listing.extension_years)
    listing.publish_on = rules.publish_on(day, listing.grace_months)
    _record_fact(session, actor, case, "dishonest_listing_decided", day)
    _bump(session, actor, listing, "approved")
    restrictions.issue_with_listing(session, actor, case, listing, debtor,
                                    bound_of(session, listing), day)
    publish_if_due(session, listing, case)
    event(session, case, actor, "credit", f"失信名单：决定纳入 {listing.decision_number}",
          listing_id=listing.id, effective_on=day.isoformat(),
          ends_on=listing.ends_on.isoformat() if listing.ends_on else None)
    audit.record(session, actor, "credit.listing_approved", object_type="listing",
                 object_id=listing.id, court_id=case.court_id, case_id=case.id,
                 details={"effective_on": day.isoformat(),
                          "publish_on": listing.publish_on.isoformat()})
    return listing


def is_published(listing: Listing, on: date) -> bool:
    return (listing.status == ListingStatus.ACTIVE and listing.publish_on is not None
            and listing.publish_on <= on)


def sync_entries(session: Session, listing: Listing, case: Case, on: date | None = None
                 ) -> None:
    """Partners see a listing from its publication until its deletion or revocation."""
    debtor = session.get(Party, listing.party_id)
    assert debtor is not None
    bindings = [entries.Binding(debtor, BoundRole.DEBTOR, LISTING_MASK)]
    bindings += [entries.Binding(p, role, LISTING_MASK) for p, role in bound_of(session, listing)]
    entries.sync(session, SourceKind.LISTING, listing.id, case, bindings,
                 active=is_published(listing, on or today()),
                 extra={"ground": listing.ground, "decision_number": listing.decision_number,
                        "effective_on": _iso(listing.effective_on),
                        "ends_on": _iso(listing.ends_on)})


def _iso(d: date | None) -> str | None:
    return d.isoformat() if d else None


def publish_if_due(session: Session, listing: Listing, case: Case | None = None,
                   on: date | None = None) -> None:
    sync_entries(session, listing, case or case_of(session, listing), on)


def end_listing(session: Session, actor: Actor, listing: Listing, status: ListingStatus, on: date,
         action: str) -> Case:
    from zhixing.credit import restrictions

    case = case_of(session, listing)
    listing.status = status
    _bump(session, actor, listing, action)
    sync_entries(session, listing, case, on)
    restrictions.end_with_listing(session, actor, listing, on)
    return case


def delete(session: Session, actor: Actor, listing: Listing, body: ListingDeletionIn
           ) -> Listing:
    """Delete on a deletion event: hidden from the public and partners, kept here."""
    case = case_of(session, listing)
    policy.require_act(actor, case)
    lock_for_update(session, Listing, listing.id)
    session.refresh(listing)
    if listing.status != ListingStatus.ACTIVE:
        raise Conflict(f"the listing is {listing.status}", code=f"listing_{listing.status}")
    if listing.deletion_ground is not None and body.ground != listing.deletion_ground and (
            body.ground not in rules.MANUAL_DELETION):
        raise ValidationFailed("that ground was not detected for this listing",
                               code="ground_not_detected", field="ground")
    if listing.deletion_ground is None and body.ground not in rules.MANUAL_DELETION:
        raise ValidationFailed("this ground is detected from the case's facts, which do not "
                               "show it yet", code="ground_not_detected", field="ground")
    day = _action_day(body.on, listing.effective_on)
    return delete_now(session, actor, listing, rules.DeletionGround(body.ground), day, body.note)


def delete_now(session: Session, actor: Actor, listing: Listing, ground: rules.DeletionGround,
            day: date, note: str | None) -> Listing:
    if listing.deletion_ground is None:
        listing.deletion_ground = ground
        listing.deletion_detected_on = day
        listing.deletion_due_on = rules.deletion_due(day)
    listing.deletion_ground = ground
    listing.deleted_on, listing.deleted_by = day, actor.user_id
    if ground == rules.DeletionGround.APPLICANT_REQUEST and listing.requested_by_party_id:
        listing.requester_blocked_until = rules.requester_blocked_until(day)
    case = end_listing(session, actor, listing, ListingStatus.DELETED, day, "deleted")
    if ground in (rules.DeletionGround.FULL_PERFORMANCE,
                  rules.DeletionGround.SETTLEMENT_PERFORMED):
        from zhixing.credit import restrictions

        restrictions.lift_all_on_performance(session, actor, case, listing.party_id, day)
    late = listing.deletion_due_on is not None and day > listing.deletion_due_on
    event(session, case, actor, "credit", f"失信名单：删除（{ground}）", listing_id=listing.id,
          ground=str(ground), late=late, note=note)
    audit.record(session, actor, "credit.listing_deleted", object_type="listing",
                 object_id=listing.id, court_id=case.court_id, case_id=case.id,
                 details={"ground": str(ground), "due_on": _iso(listing.deletion_due_on),
                          "late": late})
    return listing


def revoke(session: Session, actor: Actor, listing: Listing, body: ListingRevocationIn
           ) -> Listing:
    """Undo a wrong listing (within 3 working days of finding the error)."""
    case = case_of(session, listing)
    policy.require_approve(actor, case)
    lock_for_update(session, Listing, listing.id)
    session.refresh(listing)
    if listing.status != ListingStatus.ACTIVE:
        raise Conflict(f"the listing is {listing.status}", code=f"listing_{listing.status}")
    day = _action_day(body.on, listing.effective_on)
    listing.revoked_on, listing.revoke_reason = day, body.reason
    end_listing(session, actor, listing, ListingStatus.REVOKED, day, "revoked")
    event(session, case, actor, "credit", "失信名单：撤销（错误纳入）", listing_id=listing.id)
    audit.record(session, actor, "credit.listing_revoked", object_type="listing",
                 object_id=listing.id, court_id=case.court_id, case_id=case.id,
                 details={"reason": body.reason})
    return listing


def extend(session: Session, actor: Actor, listing: Listing, body: ListingExtensionIn
           ) -> Listing:
    """Extend a fixed period by 1-3 years (serious obstruction or repeated conduct)."""
    case = case_of(session, listing)
    policy.require_approve(actor, case)
    lock_for_update(session, Listing, listing.id)
    session.refresh(listing)
    if listing.status != ListingStatus.ACTIVE or listing.effective_on is None:
        raise Conflict(f"the listing is {listing.status}", code=f"listing_{listing.status}")
    if listing.ground == 1:
        raise Conflict("ground 1 has no fixed period", code="no_fixed_period")
    if listing.extension_years + body.years > max(rules.EXTENSION_YEARS):
        raise ValidationFailed("a period is extended by 3 years at most", code="invalid_extension",
                               field="years")
    listing.extension_years += body.years
    listing.extension_reason = body.reason
    listing.ends_on = rules.ends_on(listing.ground, listing.effective_on,
                                    listing.extension_years)
    _bump(session, actor, listing, "extended")
    sync_entries(session, listing, case)
    audit.record(session, actor, "credit.listing_extended", object_type="listing",
                 object_id=listing.id, court_id=case.court_id, case_id=case.id,
                 details={"years": body.years, "ends_on": _iso(listing.ends_on)})
    return listing


def versions(session: Session, listing: Listing) -> list[ListingVersion]:
    return list(session.scalars(select(ListingVersion).where(
        ListingVersion.listing_id == listing.id).order_by(ListingVersion.version)))


def listings_of_case(session: Session, case: Case) -> list[Listing]:
    return list(session.scalars(select(Listing).where(Listing.case_id == case.id)
                                .order_by(Listing.id)))
