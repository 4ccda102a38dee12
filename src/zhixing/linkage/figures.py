"""The figures of network query and control, as the seed reports them, and unit health."""

from __future__ import annotations

import statistics
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from zhixing.core.clock import CHINA_TZ, utcnow
from zhixing.linkage.models import (
    OPEN_TASK,
    ControlOrder,
    Inquiry,
    LinkageTask,
    LinkageUnit,
    OrderStatus,
    TaskStatus,
)

ANSWERED = (TaskStatus.ANSWERED, TaskStatus.REFUSED, TaskStatus.FAILED)
APPLIED = (OrderStatus.APPLIED, OrderStatus.PARTIAL)
HEALTH_WINDOW = timedelta(days=7)
HEALTH_SAMPLE = 500


@dataclass(frozen=True)
class Figures:
    requests_sent: int
    feedback_received: int
    cases_covered: int
    debtors_covered: int
    funds_found_fen: int
    frozen_fen: int
    deducted_fen: int
    orders_applied: int


def _bounds(start: date, end: date) -> tuple[datetime, datetime]:
    lo = datetime.combine(start, datetime.min.time(), CHINA_TZ)
    hi = datetime.combine(end + timedelta(days=1), datetime.min.time(), CHINA_TZ)
    return lo, hi


def figures(session: Session, court_ids: frozenset[int], start: date, end: date) -> Figures:
    lo, hi = _bounds(start, end)
    queries = (LinkageTask.court_id.in_(court_ids), LinkageTask.order_id.is_(None),
               LinkageTask.created_at >= lo, LinkageTask.created_at < hi)
    sent, answered, debtors, found = session.execute(select(
        func.count(),
        func.count().filter(LinkageTask.status.in_(ANSWERED)),
        func.count(func.distinct(LinkageTask.party_id)),
        func.coalesce(func.sum(LinkageTask.found_fen), 0)).where(*queries)).one()
    cases = session.scalar(select(func.count(func.distinct(Inquiry.case_id))).where(
        Inquiry.court_id.in_(court_ids), Inquiry.created_at >= lo, Inquiry.created_at < hi))
    applied = (ControlOrder.court_id.in_(court_ids), ControlOrder.status.in_(APPLIED),
               ControlOrder.applied_at >= lo, ControlOrder.applied_at < hi)
    frozen, deducted, count = session.execute(select(
        func.coalesce(func.sum(ControlOrder.applied_amount_fen).filter(
            ControlOrder.kind == "freeze"), 0),
        func.coalesce(func.sum(ControlOrder.applied_amount_fen).filter(
            ControlOrder.kind == "deduct"), 0),
        func.count()).where(*applied)).one()
    return Figures(int(sent), int(answered), int(cases or 0), int(debtors), int(found),
                   int(frozen), int(deducted), int(count))


@dataclass(frozen=True)
class UnitHealth:
    unit: LinkageUnit
    tasks: int
    answered: int
    open: int
    overdue: int
    expired: int
    median_answer_seconds: float | None
    last_answer_at: datetime | None

    @property
    def answer_rate(self) -> float | None:
        return None if self.tasks == 0 else self.answered / self.tasks


def health(session: Session) -> list[UnitHealth]:
    """Per unit over the last 7 days: answer rate, median answer time, overdue tasks."""
    now = utcnow()
    since = now - HEALTH_WINDOW
    counts = {row[0]: row[1:] for row in session.execute(
        select(LinkageTask.unit_id, func.count(),
               func.count().filter(LinkageTask.status.in_(ANSWERED)),
               func.count().filter(LinkageTask.status.in_(OPEN_TASK)),
               func.count().filter(LinkageTask.status == TaskStatus.EXPIRED),
               func.max(LinkageTask.answered_at))
        .where(LinkageTask.created_at >= since).group_by(LinkageTask.unit_id))}
    out = []
    for unit in session.scalars(select(LinkageUnit).order_by(LinkageUnit.unit_type,
                                                             LinkageUnit.id)):
        tasks, answered, open_, expired, last = counts.get(unit.id, (0, 0, 0, 0, None))
        overdue = session.scalar(select(func.count()).select_from(LinkageTask).where(
            LinkageTask.unit_id == unit.id, LinkageTask.status.in_(OPEN_TASK),
            LinkageTask.created_at < now - timedelta(minutes=unit.expected_response_minutes)))
        pairs = session.execute(
            select(LinkageTask.created_at, LinkageTask.answered_at)
            .where(LinkageTask.unit_id == unit.id, LinkageTask.status.in_(ANSWERED),
                   LinkageTask.created_at >= since)
            .order_by(LinkageTask.id.desc()).limit(HEALTH_SAMPLE)).all()
        durations = [(b - a).total_seconds() for a, b in pairs if a and b]
        out.append(UnitHealth(unit, int(tasks), int(answered), int(open_), int(overdue or 0),
                              int(expired), statistics.median(durations) if durations else None,
                              last))
    return out
