"""Inquiries: one action on a case fans out to every unit able to answer, for its debtors.

RULES.md: a query is only for a filed case, by a named authorised officer, against a debtor of
that case (never a third party), with its purpose and legal basis recorded and logged. The
platform makes the opposite impossible: there is no way to create a task without an inquiry or
order, and none of those without a case, a debtor of it, a purpose and a legal basis.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from zhixing.cases import policy
from zhixing.cases.models import Case, CaseParty, CaseState, Conclusion, Party
from zhixing.cases.service import event
from zhixing.core import audit, signals
from zhixing.core.actor import SYSTEM, Actor
from zhixing.core.clock import utcnow
from zhixing.core.db import copy_rows
from zhixing.core.errors import Conflict, NotFound, ValidationFailed
from zhixing.courts.models import Court, User
from zhixing.linkage import delivery, messages, wire
from zhixing.linkage.models import (
    TASKS,
    DeliveryMode,
    Inquiry,
    LinkageTask,
    LinkageUnit,
    TaskStatus,
)
from zhixing.linkage.units import able_units

MAX_DEBTORS = 20
REQUERY_PURPOSE = "终结本次执行程序后定期查询被执行人财产"
REQUERY_BASIS = "《最高人民法院关于严格规范终结本次执行程序的规定（试行）》第九条"


def _text(value: str) -> str:
    value = " ".join(value.split())
    if len(value) < 4:
        raise ValueError("state it in at least 4 characters")
    return value


class InquiryIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    purpose: str = Field(max_length=255, description="why the debtor's property is looked for")
    legal_basis: str = Field(max_length=255, description="the provision (and ruling) relied on")
    party_ids: list[int] | None = Field(default=None, max_length=MAX_DEBTORS,
                                        description="debtors to ask about; all by default")
    kinds: list[wire.QueryKind] | None = Field(default=None, description="all by default")
    unit_ids: list[int] | None = Field(default=None, max_length=200,
                                       description="a chosen set of units; all able by default")

    _purpose = field_validator("purpose", "legal_basis")(_text)


def debtors_of(session: Session, case: Case) -> list[Party]:
    return list(session.scalars(select(Party).join(CaseParty, CaseParty.party_id == Party.id)
                                .where(CaseParty.case_id == case.id, CaseParty.role == "debtor")
                                .order_by(Party.id)))


def _subjects(session: Session, case: Case, party_ids: list[int] | None
              ) -> list[tuple[Party, wire.Subject]]:
    debtors = {p.id: p for p in debtors_of(session, case)}
    chosen = list(debtors) if party_ids is None else list(dict.fromkeys(party_ids))
    if not chosen:
        raise ValidationFailed("the case has no debtor to ask about", code="no_debtor")
    outsiders = [pid for pid in chosen if pid not in debtors]
    if outsiders:
        # Never a third party: only a debtor of this very case can be looked up.
        raise ValidationFailed("only debtors of this case can be queried", code="not_a_debtor",
                               field="party_ids", details={"party_ids": outsiders})
    return [(debtors[pid], messages.subject_of(debtors[pid])) for pid in chosen]


def _units(session: Session, kinds: set[str], unit_ids: list[int] | None) -> list[LinkageUnit]:
    able = able_units(session, kinds)
    if unit_ids is None:
        if not able:
            raise Conflict("no enabled unit answers these kinds", code="no_unit_available")
        return able
    by_id = {u.id: u for u in able}
    missing = [uid for uid in dict.fromkeys(unit_ids) if uid not in by_id]
    if missing:
        raise ValidationFailed("these units are unknown, switched off or answer none of the "
                               "kinds asked", code="unit_not_available", field="unit_ids",
                               details={"unit_ids": missing})
    return [by_id[uid] for uid in dict.fromkeys(unit_ids)]


def _check_case(case: Case, origin: str) -> None:
    if case.state == CaseState.SUSPENDED:
        raise Conflict("enforcement is suspended; resume the case first", code="case_suspended")
    if case.state == CaseState.CONCLUDED and not (
            origin == "requery" and case.conclusion == Conclusion.CLOSED_FOR_NOW):
        raise Conflict("the case is concluded", code="case_concluded")


def create(session: Session, actor: Actor, case: Case, body: InquiryIn, *,
           origin: str = "officer") -> Inquiry:
    """Fan the request out: one task per (debtor, unit, kind the unit answers)."""
    if origin == "officer":
        policy.require_act(actor, case)
    _check_case(case, origin)
    kinds = set(body.kinds or wire.QUERY_KINDS)
    subjects = _subjects(session, case, body.party_ids)
    units = _units(session, kinds, body.unit_ids)
    now = utcnow()
    court = session.get(Court, case.court_id)
    assert court is not None
    user = session.get(User, actor.user_id) if actor.user_id else None
    inquiry = Inquiry(case_id=case.id, court_id=case.court_id, origin=origin,
                      requested_by=actor.user_id, purpose=body.purpose,
                      legal_basis=body.legal_basis, kinds=sorted(kinds),
                      party_ids=[p.id for p, _ in subjects], created_at=now)
    session.add(inquiry)
    session.flush()
    envelope = messages.Envelope(case, court, user, body.purpose, body.legal_basis, now)
    rows: list[dict[str, Any]] = []
    for party, subject in subjects:
        for unit in units:
            for kind in sorted(kinds & set(unit.query_kinds)):
                task_id = messages.new_task_id()
                rows.append(dict(
                    task_id=task_id, unit_id=unit.id, kind=kind, case_id=case.id,
                    court_id=case.court_id, party_id=party.id, inquiry_id=inquiry.id,
                    status=TaskStatus.QUEUED, created_at=now, available_at=now,
                    due_at=now + messages.QUERY_DUE, delivery_attempts=0,
                    message=envelope.task(task_id, kind, subject, messages.QUERY_DUE)))
    # One stream (COPY on PostgreSQL), without RETURNING: the ids are not needed.
    copy_rows(session, TASKS, rows)
    signals.changed(session, TASKS.name)  # wakes the long polls of every process
    inquiry.task_count = len(rows)
    session.flush()
    notify_push(session, {u.id for u in units if u.delivery_mode == DeliveryMode.PUSH})
    event(session, case, actor if actor.kind == "user" else None, "inquiry",
          f"网络查控: {len(subjects)} 名被执行人, {len(units)} 家单位, {len(rows)} 项查询",
          inquiry_id=inquiry.id, origin=origin, task_count=len(rows))
    # The property read itself is audited with its purpose: who looked, at whom, and why.
    audit.record(session, actor, "linkage.inquiry", object_type="inquiry", object_id=inquiry.id,
                 court_id=case.court_id, case_id=case.id, purpose=body.purpose,
                 details={"legal_basis": body.legal_basis, "party_ids": inquiry.party_ids,
                          "kinds": inquiry.kinds, "units": len(units), "tasks": len(rows),
                          "origin": origin})
    return inquiry


def notify_push(session: Session, unit_ids: set[int]) -> None:
    """Wake the push delivery if any of these units is in push mode."""
    if unit_ids:
        delivery.wake_pushes(session)


def requery(session: Session, case: Case, round_number: int) -> Inquiry | None:
    """The periodic look after 终本 (every 6 months for 5 years), on the court's behalf."""
    if case.state != CaseState.CONCLUDED or case.conclusion != Conclusion.CLOSED_FOR_NOW:
        return None
    if not able_units(session, set(wire.QUERY_KINDS)):
        return None
    try:
        subjects = [p.id for p in debtors_of(session, case) if p.id_number]
        if not subjects:
            return None
        return create(session, SYSTEM, case, InquiryIn(
            purpose=f"{REQUERY_PURPOSE}（第{round_number}次）", legal_basis=REQUERY_BASIS,
            party_ids=subjects), origin="requery")
    except (ValidationFailed, Conflict):
        return None


def get_inquiry(session: Session, case: Case, inquiry_id: int) -> Inquiry:
    inquiry = session.get(Inquiry, inquiry_id)
    if inquiry is None or inquiry.case_id != case.id:
        raise NotFound(f"inquiry {inquiry_id} not found in this case", code="inquiry_not_found")
    return inquiry


@dataclass(frozen=True)
class Progress:
    total: int
    by_status: dict[str, int]
    found_count: int
    found_fen: int
    last_change: datetime | None

    @property
    def done(self) -> int:
        return sum(n for s, n in self.by_status.items()
                   if s in ("answered", "refused", "failed", "expired", "cancelled"))


def progress(session: Session, inquiry_id: int) -> Progress:
    rows = session.execute(
        select(LinkageTask.status, func.count(), func.sum(LinkageTask.found_count),
               func.sum(LinkageTask.found_fen), func.max(LinkageTask.answered_at))
        .where(LinkageTask.inquiry_id == inquiry_id).group_by(LinkageTask.status)).all()
    by_status = {str(r[0]): int(r[1]) for r in rows}
    moments = [r[4] for r in rows if r[4] is not None]
    return Progress(total=sum(by_status.values()), by_status=by_status,
                    found_count=sum(int(r[2] or 0) for r in rows),
                    found_fen=sum(int(r[3] or 0) for r in rows),
                    last_change=max(moments) if moments else None)


def tasks_of(session: Session, inquiry_id: int) -> list[tuple[LinkageTask, LinkageUnit, Party]]:
    return [(t, u, p) for t, u, p in session.execute(
        select(LinkageTask, LinkageUnit, Party)
        .join(LinkageUnit, LinkageUnit.id == LinkageTask.unit_id)
        .join(Party, Party.id == LinkageTask.party_id)
        .where(LinkageTask.inquiry_id == inquiry_id)
        .order_by(LinkageTask.party_id, LinkageUnit.unit_type, LinkageUnit.id,
                  LinkageTask.id)).tuples()]


def list_inquiries(session: Session, case: Case) -> list[Inquiry]:
    return list(session.scalars(select(Inquiry).where(Inquiry.case_id == case.id)
                                .order_by(Inquiry.id.desc()).limit(100)))
