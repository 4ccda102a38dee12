"""Enforcement cases: registration, the lifecycle, facts, the statutory clock, the timeline.

Services flush, never commit; the request or worker owns the transaction.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from dateutil.relativedelta import relativedelta
from sqlalchemy import select
from sqlalchemy.orm import Session

from zhixing.cases import lifecycle, numbering, parties, policy, statutory
from zhixing.cases.lifecycle import CaseView, TransitionRefused
from zhixing.cases.models import (
    Case,
    CaseEvent,
    CaseExtension,
    CaseFact,
    CaseParty,
    CasePause,
    CaseState,
    CaseType,
    Conclusion,
)
from zhixing.cases.schemas import CaseCreate, FactIn, TransitionIn
from zhixing.core import audit, jobs
from zhixing.core.actor import Actor
from zhixing.core.clock import to_local, utcnow
from zhixing.core.errors import Conflict, NotFound, ValidationFailed
from zhixing.courts.models import Court, User


def today() -> date:
    """Court business happens on China's calendar."""
    return to_local(utcnow()).date()


def event(session: Session, case: Case, actor: Actor | None, kind: str, summary: str,
          **data: Any) -> CaseEvent:
    return event_on(session, case.id, actor, kind, summary, **data)


def event_on(session: Session, case_id: int, actor: Actor | None, kind: str, summary: str,
             **data: Any) -> CaseEvent:
    """:func:`event` by the case's id, for the hot paths that never load the case (a bank's
    answers: loading it would load its parties too)."""
    ev = CaseEvent(case_id=case_id, occurred_at=utcnow(), kind=kind,
                   actor_id=actor.user_id if actor else None,
                   actor_name=actor.name if actor else None, summary=summary[:255], data=data)
    session.add(ev)
    return ev


def get_case(session: Session, actor: Actor, case_id: int) -> Case:
    policy.require_read(actor)
    case = session.scalar(policy.visible(actor).where(Case.id == case_id))
    if case is None:
        raise NotFound(f"case {case_id} not found", code="case_not_found")
    return case


def get_case_by_number(session: Session, actor: Actor, number: str) -> Case:
    policy.require_read(actor)
    case = session.scalar(policy.visible(actor).where(Case.case_number == number.strip()))
    if case is None:
        raise NotFound(f"case {number} not found", code="case_not_found")
    return case


def facts_of(session: Session, case: Case) -> dict[str, date]:
    return {f.kind: f.on for f in session.scalars(
        select(CaseFact).where(CaseFact.case_id == case.id))}


def clock_of(session: Session, case: Case, on: date | None = None) -> statutory.Clock:
    pauses = [statutory.Interval(p.started_on, p.ended_on) for p in session.scalars(
        select(CasePause).where(CasePause.case_id == case.id))]
    return statutory.compute(case.filed_on, facts_of(session, case), pauses,
                             case.extension_months, on or today(),
                             concluded_on=case.concluded_on)


def refresh_clock(session: Session, case: Case) -> statutory.Clock:
    """Store the deadlines the work queue and the overdue filter read."""
    session.flush()
    clock = clock_of(session, case)
    open_case = case.state != CaseState.CONCLUDED
    case.period_deadline = clock.period.due_on if (clock.period and open_case) else None
    nxt = clock.next_due if open_case else None
    case.next_due_on = nxt.due_on if nxt else None
    case.next_due_kind = nxt.kind if nxt else None
    return clock


def _user_in_court(session: Session, username: str, court_id: int, roles: tuple[str, ...],
                   field: str) -> User:
    user = session.scalar(select(User).where(User.username == username.strip().lower()))
    if user is None or user.court_id != court_id or not user.is_active:
        raise ValidationFailed(f"{username} is not an active user of this court",
                               code="user_not_in_court", field=field)
    if not any(r.value in roles for r in user.roles):
        raise ValidationFailed(f"{username} does not hold the role {' or '.join(roles)}",
                               code="user_lacks_role", field=field)
    return user


def _check_dates(data: CaseCreate) -> None:
    now = today()
    if data.filed_on > now:
        raise ValidationFailed("the filing date is in the future", code="date_in_future",
                               field="filed_on")
    if data.title_date > data.title_effective_date:
        raise ValidationFailed("a title takes effect on or after its date",
                               code="effective_before_title", field="title_effective_date")
    if data.title_effective_date > data.filed_on:
        raise ValidationFailed("a title must be in effect before enforcement is filed",
                               code="title_not_yet_effective", field="title_effective_date")
    if data.filed_on.year < 1990:
        raise ValidationFailed("the filing date is implausible", code="implausible_date",
                               field="filed_on")


def register(session: Session, actor: Actor, data: CaseCreate) -> Case:
    """立案: number the case in the court's register, record the title, parties and amounts."""
    court_code = data.court_code or actor.court_code
    court = session.scalar(select(Court).where(Court.code == court_code))
    if court is None:
        raise NotFound(f"court {court_code} not found", code="court_not_found",
                       field="court_code")
    policy.require_register(actor, court.id)
    _check_dates(data)
    case_type = CaseType(data.case_type)
    if data.case_number:
        number = numbering.parse(data.case_number)
        if number.court_code != court.code or number.case_type is not case_type:
            raise ValidationFailed("the case number's court or type does not match the case",
                                   code="case_number_mismatch", field="case_number")
        if session.scalar(select(Case.id).where(Case.case_number == str(number))):
            raise Conflict(f"case number {number} already exists",
                           code="duplicate_case_number", field="case_number")
        numbering.reserve_serial(session, court.id, number.year, case_type, number.serial)
    else:
        year = data.filed_on.year
        number = numbering.CaseNumber(year, court.code, case_type,
                                      numbering.next_serial(session, court.id, year, case_type))
    officer = (_user_in_court(session, data.officer_username, court.id, ("officer", "approver"),
                              "officer_username") if data.officer_username else None)
    approver = (_user_in_court(session, data.approver_username, court.id, ("approver",),
                               "approver_username") if data.approver_username else None)
    roles: dict[int, str] = {}
    for role, people in (("applicant", data.applicants), ("debtor", data.debtors)):
        for i, p in enumerate(people):
            party = parties.resolve(session, p, f"{role}s.{i}")
            if roles.get(party.id, role) != role:
                raise ValidationFailed(f"{party.name} cannot be both applicant and debtor",
                                       code="party_on_both_sides", field=f"{role}s.{i}")
            roles[party.id] = role
    case = Case(
        court_id=court.id, case_number=str(number), year=number.year, case_type=case_type,
        serial=number.serial, title_issuer=data.title_issuer.strip(),
        title_document_number=data.title_document_number.strip(), title_date=data.title_date,
        title_effective_date=data.title_effective_date, principal_fen=data.principal_fen,
        interest_fen=data.interest_fen, costs_fen=data.costs_fen, recovered_fen=0,
        disbursed_fen=0, filed_on=data.filed_on, officer_id=officer.id if officer else None,
        approver_id=approver.id if approver else None, state=CaseState.FILED,
        state_changed_at=utcnow(), extension_months=0, created_at=utcnow())
    session.add(case)
    session.flush()
    for party_id, role in roles.items():
        session.add(CaseParty(case_id=case.id, party_id=party_id, role=role))
    if officer is not None:
        session.add(CaseFact(case_id=case.id, kind="officer_assigned", on=data.filed_on,
                             recorded_by=actor.user_id, recorded_at=utcnow()))
    event(session, case, actor, "registered", f"立案 {case.case_number}",
          applied_fen=case.applied_fen)
    refresh_clock(session, case)
    audit.record(session, actor, "case.registered", object_type="case", object_id=case.id,
                 court_id=court.id, case_id=case.id, details={"case_number": case.case_number})
    return case


def view_of(session: Session, case: Case) -> CaseView:
    facts = facts_of(session, case)
    return CaseView(case.state, case.filed_on, frozenset(facts), case.outstanding_fen,
                    case.state_before_suspension, fact_dates=facts)


def last_step_on(session: Session, case: Case) -> date | None:
    """The legal date of the case's latest transition (history must not run backwards)."""
    data = session.scalar(select(CaseEvent.data).where(CaseEvent.case_id == case.id,
                                                       CaseEvent.kind == "transition")
                          .order_by(CaseEvent.id.desc()).limit(1))
    return date.fromisoformat(data["on"]) if data and data.get("on") else None


def _action_date(case: Case, on: date | None, field: str = "on") -> date:
    when = on or today()
    if when > today():
        raise ValidationFailed("that date is in the future", code="date_in_future", field=field)
    if when < case.filed_on:
        raise ValidationFailed("that date is before the case was filed",
                               code="date_before_filing", field=field)
    return when


def transition(session: Session, actor: Actor, case: Case, body: TransitionIn) -> Case:
    policy.require_act(actor, case)
    on = _action_date(case, body.on)
    previous = last_step_on(session, case)
    if previous is not None and on < previous:
        raise ValidationFailed(f"that date is before the case's previous step ({previous})",
                               code="date_before_previous_step", field="on")
    view = view_of(session, case)
    if body.action == "advance":
        if body.to is None:
            raise ValidationFailed("say which state to move to", code="required", field="to")
        outcome = lifecycle.advance(view, CaseState(body.to))
    elif body.action == "suspend":
        outcome = lifecycle.suspend(view, body.ground or "")
    elif body.action == "resume":
        outcome = lifecycle.resume(view)
    else:
        if body.conclusion is None:
            raise ValidationFailed("say how the case concludes", code="required",
                                   field="conclusion")
        outcome = lifecycle.conclude(view, Conclusion(body.conclusion), on, body.ground)
    before = case.state
    case.state = outcome.state
    case.state_before_suspension = outcome.state_before_suspension
    case.state_changed_at = utcnow()
    known = view.facts
    for kind in outcome.facts_established:
        if kind not in known:
            session.add(CaseFact(case_id=case.id, kind=kind, on=on, recorded_by=actor.user_id,
                                 recorded_at=utcnow()))
    if outcome.pause_starts:
        session.add(CasePause(case_id=case.id, reason="suspension", started_on=on))
    if outcome.pause_ends:
        for pause in session.scalars(select(CasePause).where(
                CasePause.case_id == case.id, CasePause.ended_on.is_(None))):
            pause.ended_on = on
    if outcome.conclusion is not None:
        clock = clock_of(session, case, on)
        case.conclusion = outcome.conclusion
        case.conclusion_ground = outcome.ground
        case.concluded_on = on
        case.deadline_at_conclusion = clock.period.due_on if clock.period else None
    elif body.action == "suspend":
        case.conclusion_ground = None
    event(session, case, actor, "transition", f"{before} → {case.state}",
          before=before, after=case.state, conclusion=outcome.conclusion, ground=outcome.ground,
          on=on.isoformat(), note=body.note)
    audit.record(session, actor, "case.transition", object_type="case", object_id=case.id,
                 court_id=case.court_id, case_id=case.id,
                 details={"from": before, "to": case.state, "conclusion": outcome.conclusion})
    refresh_clock(session, case)
    if outcome.conclusion == Conclusion.CLOSED_FOR_NOW:
        schedule_requeries(session, case, on)
        # The parties rate the handling of a case without property (analytics' surveys).
        jobs.enqueue(session, "analytics.open_surveys", {"case_id": case.id},
                     dedupe_key=f"surveys:{case.id}")
    return case


def schedule_requeries(session: Session, case: Case, closed_on: date) -> None:
    """After 终本: look at the debtor's assets again every 6 months for 5 years."""
    rules = statutory.RULES
    count = rules.requery_for_years * 12 // rules.requery_interval_months
    rounds = [(i, closed_on + relativedelta(months=rules.requery_interval_months * i))
              for i in range(1, count + 1)]
    past = [r for r in rounds if r[1] <= today()]
    # Rounds already past (a closure entered late) collapse into one reminder due now.
    for i, due in ([past[-1]] if past else []) + [r for r in rounds if r[1] > today()]:
        jobs.enqueue(session, "cases.requery_due", {"case_id": case.id, "round": i},
                     run_at=utcnow() + (due - today()) if due > today() else utcnow(),
                     dedupe_key=f"requery:{case.id}:{i}")


def record_fact(session: Session, actor: Actor, case: Case, body: FactIn) -> CaseFact:
    policy.require_act(actor, case)
    if body.kind not in lifecycle.FACT_KINDS:
        raise ValidationFailed(f"unknown fact {body.kind!r}", code="unknown_fact", field="kind",
                               details={"allowed": list(lifecycle.FACT_KINDS)})
    if case.state == CaseState.CONCLUDED:
        raise TransitionRefused("the case is concluded", code="case_concluded")
    on = _action_date(case, body.on)
    if session.get(CaseFact, (case.id, body.kind)) is not None:
        raise Conflict(f"{body.kind} is already recorded", code="fact_already_recorded",
                       field="kind")
    fact = CaseFact(case_id=case.id, kind=body.kind, on=on, recorded_by=actor.user_id,
                    recorded_at=utcnow(), note=body.note)
    session.add(fact)
    event(session, case, actor, "fact", body.kind, kind_of_fact=body.kind, on=on.isoformat(),
          note=body.note)
    audit.record(session, actor, "case.fact", object_type="case", object_id=case.id,
                 court_id=case.court_id, case_id=case.id, details={"fact": body.kind})
    refresh_clock(session, case)
    return fact


def extend_period(session: Session, actor: Actor, case: Case, months: int,
                  reason: str) -> CaseExtension:
    policy.require_approve(actor, case)
    if case.state == CaseState.CONCLUDED:
        raise TransitionRefused("the case is concluded", code="case_concluded")
    ext = CaseExtension(case_id=case.id, months=months, approved_by=actor.user_id or 0,
                        approved_on=today(), reason=reason)
    session.add(ext)
    case.extension_months += months
    reported = case.extension_months > statutory.RULES.president_extension_months
    event(session, case, actor, "extension", f"+{months} months",
          months=months, reason=reason, total_months=case.extension_months,
          reported_to_high_court=reported)
    audit.record(session, actor, "case.extension", object_type="case", object_id=case.id,
                 court_id=case.court_id, case_id=case.id, details={"months": months})
    refresh_clock(session, case)
    return ext


def start_pause(session: Session, actor: Actor, case: Case, reason: str, on: date) -> None:
    policy.require_act(actor, case)
    if case.state == CaseState.CONCLUDED:
        raise TransitionRefused("the case is concluded", code="case_concluded")
    on = _action_date(case, on)
    if session.scalar(select(CasePause.id).where(CasePause.case_id == case.id,
                                                 CasePause.reason == reason,
                                                 CasePause.ended_on.is_(None))):
        raise Conflict(f"a {reason} pause is already running", code="pause_running")
    session.add(CasePause(case_id=case.id, reason=reason, started_on=on))
    event(session, case, actor, "pause", f"clock stopped: {reason}", reason=reason,
          on=on.isoformat())
    refresh_clock(session, case)


def end_pause(session: Session, actor: Actor, case: Case, reason: str, on: date) -> None:
    policy.require_act(actor, case)
    on = _action_date(case, on)
    pause = session.scalar(select(CasePause).where(CasePause.case_id == case.id,
                                                   CasePause.reason == reason,
                                                   CasePause.ended_on.is_(None)))
    if pause is None:
        raise Conflict(f"no {reason} pause is running", code="no_pause_running")
    if on < pause.started_on:
        raise ValidationFailed("a pause cannot end before it started", code="end_before_start",
                               field="on")
    pause.ended_on = on
    event(session, case, actor, "pause_end", f"clock restarted: {reason}", reason=reason,
          on=on.isoformat())
    refresh_clock(session, case)


def assign_officer(session: Session, actor: Actor, case: Case, username: str) -> None:
    policy.require_act(actor, case)
    officer = _user_in_court(session, username, case.court_id, ("officer", "approver"),
                             "officer_username")
    case.officer_id = officer.id
    if session.get(CaseFact, (case.id, "officer_assigned")) is None:
        session.add(CaseFact(case_id=case.id, kind="officer_assigned", on=today(),
                             recorded_by=actor.user_id, recorded_at=utcnow()))
    event(session, case, actor, "assigned", f"承办人: {officer.display_name}",
          officer=officer.username)
    audit.record(session, actor, "case.assigned", object_type="case", object_id=case.id,
                 court_id=case.court_id, case_id=case.id, details={"officer": officer.username})
    refresh_clock(session, case)


def add_note(session: Session, actor: Actor, case: Case, text: str) -> CaseEvent:
    policy.require_act(actor, case)
    return event(session, case, actor, "note", text[:120], text=text)


def resume_closed_for_now(session: Session, actor: Actor, case: Case, reason: str) -> Case:
    """恢复执行: a 终本 case is not reopened; a linked 执恢 case enforces what is left."""
    policy.require_act(actor, case)
    if case.conclusion != Conclusion.CLOSED_FOR_NOW:
        raise TransitionRefused("only a case closed for now (终本) can be resumed",
                                code="not_closed_for_now")
    open_child = session.scalar(select(Case.id).where(Case.resumed_from_id == case.id,
                                                      Case.state != CaseState.CONCLUDED))
    if open_child is not None:
        raise Conflict("this case has already been resumed", code="already_resumed")
    when = today()
    serial = numbering.next_serial(session, case.court_id, when.year, CaseType.RESUMED)
    court = session.get(Court, case.court_id)
    assert court is not None
    number = numbering.CaseNumber(when.year, court.code, CaseType.RESUMED, serial)
    child = Case(
        court_id=case.court_id, case_number=str(number), year=when.year,
        case_type=CaseType.RESUMED, serial=serial, title_issuer=case.title_issuer,
        title_document_number=case.title_document_number, title_date=case.title_date,
        title_effective_date=case.title_effective_date, principal_fen=case.outstanding_fen,
        interest_fen=0, costs_fen=0, recovered_fen=0, disbursed_fen=0, filed_on=when,
        officer_id=case.officer_id, approver_id=case.approver_id, state=CaseState.FILED,
        state_changed_at=utcnow(), extension_months=0, resumed_from_id=case.id,
        created_at=utcnow())
    session.add(child)
    session.flush()
    for cp in case.parties:
        session.add(CaseParty(case_id=child.id, party_id=cp.party_id, role=cp.role))
    if case.officer_id:
        session.add(CaseFact(case_id=child.id, kind="officer_assigned", on=when,
                             recorded_by=actor.user_id, recorded_at=utcnow()))
    event(session, child, actor, "registered", f"恢复执行，原案 {case.case_number}",
          resumed_from=case.case_number, reason=reason)
    event(session, case, actor, "resumed", f"已恢复执行: {child.case_number}",
          resumed_as=child.case_number, reason=reason)
    audit.record(session, actor, "case.resumed", object_type="case", object_id=child.id,
                 court_id=case.court_id, case_id=child.id,
                 details={"from": case.case_number, "reason": reason})
    refresh_clock(session, child)
    return child


def allowed_actions(session: Session, actor: Actor, case: Case) -> list[str]:
    """What the case page offers: the moves the lifecycle allows and the role permits."""
    if actor.court_id != case.court_id or not actor.has_role(*policy.ACTING_ROLES):
        return []
    if case.state == CaseState.CONCLUDED:
        return ["resume_as_new_case"] if case.conclusion == Conclusion.CLOSED_FOR_NOW else []
    if case.state == CaseState.SUSPENDED:
        return ["resume", "conclude:terminated", "conclude:not_enforced", "conclude:rejected",
                "conclude:closed_after_transfer"]
    actions = [f"advance:{s}" for s in sorted(lifecycle.ADVANCES.get(case.state, ()))]
    actions += ["suspend", "conclude:performed", "conclude:terminated",
                "conclude:not_enforced", "conclude:rejected", "conclude:closed_after_transfer"]
    if case.state not in (CaseState.FILED, CaseState.NOTICE_SERVED):
        actions.append("conclude:closed_for_now")
    return actions


