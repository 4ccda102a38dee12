"""Case records shaped for the API and the console (one place, so both say the same)."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.orm import Session

from zhixing.cases import service
from zhixing.cases.models import (
    Asset,
    Case,
    CaseDocument,
    CaseFact,
    LedgerEntry,
    Party,
)
from zhixing.cases.schemas import (
    AssetRead,
    CaseDetail,
    CaseSummary,
    ClockRead,
    DeadlineRead,
    DocumentRead,
    LedgerRead,
    PartyRead,
)
from zhixing.cases.statutory import Clock, Deadline
from zhixing.core.actor import Actor
from zhixing.courts.models import Court, User


def _names(session: Session, user_ids: set[int]) -> dict[int, str]:
    if not user_ids:
        return {}
    return dict(session.execute(select(User.id, User.display_name)
                                .where(User.id.in_(user_ids))).tuples().all())


def _court_codes(session: Session, court_ids: set[int]) -> dict[int, str]:
    return dict(session.execute(select(Court.id, Court.code)
                                .where(Court.id.in_(court_ids))).tuples().all())


def summaries(session: Session, cases: Sequence[Case]) -> list[CaseSummary]:
    """Summaries for a page of cases: parties come with the cases (selectin), names and court
    codes in one query each, so a page costs a fixed number of queries."""
    users = _names(session, {c.officer_id for c in cases if c.officer_id})
    courts = _court_codes(session, {c.court_id for c in cases})
    out = []
    for c in cases:
        out.append(CaseSummary(
            id=c.id, case_number=c.case_number, court_code=courts.get(c.court_id, ""),
            case_type=c.case_type, state=c.state, conclusion=c.conclusion, filed_on=c.filed_on,
            officer=users.get(c.officer_id) if c.officer_id else None,
            applicants=[cp.party.name for cp in c.parties if cp.role == "applicant"],
            debtors=[cp.party.name for cp in c.parties if cp.role == "debtor"],
            applied_fen=c.applied_fen, outstanding_fen=c.outstanding_fen,
            period_deadline=c.period_deadline, next_due_on=c.next_due_on,
            next_due_kind=c.next_due_kind))
    return out


def _deadline(d: Deadline) -> DeadlineRead:
    return DeadlineRead(kind=d.kind, due_on=d.due_on, done_on=d.done_on,
                        status=d.status(service.today()))


def clock_read(clock: Clock) -> ClockRead:
    deadlines = [*clock.nodes, *([clock.period] if clock.period else [])]
    return ClockRead(period_deadline=clock.period.due_on if clock.period else None,
                     paused=clock.paused_now, paused_days=clock.paused_days,
                     extension_months=clock.extension_months,
                     deadlines=[_deadline(d) for d in deadlines],
                     warnings=[_deadline(d) for d in clock.warnings])


def _party(p: Party, role: str) -> PartyRead:
    return PartyRead(id=p.id, kind=p.kind, name=p.name, id_kind=p.id_kind,
                     id_number=p.id_number, sex=p.sex, birth_date=p.birth_date, role=role,
                     responsible_persons=[{"role": r.role, "name": r.person.name,
                                           "id_number": r.person.id_number}
                                          for r in p.responsible_persons])


def detail(session: Session, actor: Actor, case: Case) -> CaseDetail:
    summary = summaries(session, [case])[0]
    facts = {f.kind: f.on for f in session.scalars(
        select(CaseFact).where(CaseFact.case_id == case.id))}
    assets = session.scalars(select(Asset).where(Asset.case_id == case.id)
                             .order_by(Asset.id)).all()
    ledger = session.scalars(select(LedgerEntry).where(LedgerEntry.case_id == case.id)
                             .order_by(LedgerEntry.id)).all()
    documents = session.scalars(select(CaseDocument).where(CaseDocument.case_id == case.id)
                                .order_by(CaseDocument.id)).all()
    approver = _names(session, {case.approver_id} if case.approver_id else set())
    resumed_from = (session.scalar(select(Case.case_number)
                                   .where(Case.id == case.resumed_from_id))
                    if case.resumed_from_id else None)
    return CaseDetail(
        **summary.model_dump(),
        title_issuer=case.title_issuer, title_document_number=case.title_document_number,
        title_date=case.title_date, title_effective_date=case.title_effective_date,
        principal_fen=case.principal_fen, interest_fen=case.interest_fen,
        costs_fen=case.costs_fen, recovered_fen=case.recovered_fen,
        disbursed_fen=case.disbursed_fen,
        approver=approver.get(case.approver_id) if case.approver_id else None,
        concluded_on=case.concluded_on, conclusion_ground=case.conclusion_ground,
        resumed_from=resumed_from,
        parties=[_party(cp.party, cp.role) for cp in
                 sorted(case.parties, key=lambda cp: (cp.role != "applicant", cp.party_id))],
        facts=facts, clock=clock_read(service.clock_of(session, case)),
        assets=[AssetRead.model_validate(a) for a in assets],
        ledger=[LedgerRead.model_validate(e) for e in ledger],
        documents=[DocumentRead.model_validate(d) for d in documents],
        allowed_actions=service.allowed_actions(session, actor, case))
