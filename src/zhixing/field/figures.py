"""Figures of field work by command center and period: tips received and checked, dispatches,
incidents handled, and the median times to check a tip and to complete a dispatch."""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from zhixing.core.actor import Actor
from zhixing.core.clock import CHINA_TZ
from zhixing.core.errors import ValidationFailed
from zhixing.courts.models import Court
from zhixing.field import policy
from zhixing.field.models import Dispatch, DispatchStatus, Incident, Tip

MAX_PERIOD_DAYS = 3660


@dataclass
class CenterFigures:
    court_code: str
    court_name: str
    tips_received: int = 0
    tips_checked: int = 0
    tips_checked_late: int = 0
    median_hours_to_check_tip: float | None = None
    dispatches: int = 0
    dispatches_done: int = 0
    median_minutes_to_complete_dispatch: float | None = None
    incidents: int = 0
    incidents_resolved: int = 0
    median_minutes_to_acknowledge_incident: float | None = None
    _check: list[float] = field(default_factory=list, repr=False)
    _complete: list[float] = field(default_factory=list, repr=False)
    _ack: list[float] = field(default_factory=list, repr=False)

    def finish(self) -> None:
        def med(values: list[float]) -> float | None:
            return round(statistics.median(values), 2) if values else None

        self.median_hours_to_check_tip = med(self._check)
        self.median_minutes_to_complete_dispatch = med(self._complete)
        self.median_minutes_to_acknowledge_incident = med(self._ack)


def _bounds(start: date, end: date) -> tuple[datetime, datetime]:
    if end < start:
        raise ValidationFailed("the period ends before it starts", code="invalid_period",
                               field="end")
    if (end - start).days > MAX_PERIOD_DAYS:
        raise ValidationFailed("the period is at most ten years", code="invalid_period",
                               field="start")
    return (datetime.combine(start, time(), CHINA_TZ),
            datetime.combine(end + timedelta(days=1), time(), CHINA_TZ))


def report(session: Session, actor: Actor, root: Court, start: date,
           end: date) -> tuple[CenterFigures, list[CenterFigures]]:
    """The total for ``root`` and its subtree, and one row per center that had any work."""
    policy.require_role(actor, (*policy.TIP_ROLES, "auditor", "admin"), "read field figures")
    lo, hi = _bounds(start, end)
    courts = {c.id: c for c in session.scalars(select(Court).where(
        Court.path.startswith(root.path)))}
    ids = list(courts)
    rows: dict[int, CenterFigures] = {}
    total = CenterFigures(root.code, root.short_name_zh)

    def row(court_id: int) -> CenterFigures:
        if court_id not in rows:
            c = courts[court_id]
            rows[court_id] = CenterFigures(c.code, c.short_name_zh)
        return rows[court_id]

    for center, submitted, checked, due in session.execute(
            select(Tip.center_court_id, Tip.submitted_at, Tip.checked_at, Tip.due_at).where(
                Tip.center_court_id.in_(ids), Tip.submitted_at >= lo, Tip.submitted_at < hi)):
        for f in (row(center), total):
            f.tips_received += 1
            if checked is not None:
                f.tips_checked += 1
                f.tips_checked_late += int(checked > due)
                f._check.append((checked - submitted).total_seconds() / 3600)
    for court_id, status, at, done in session.execute(
            select(Dispatch.court_id, Dispatch.status, Dispatch.dispatched_at,
                   Dispatch.done_at).where(Dispatch.court_id.in_(ids),
                                           Dispatch.dispatched_at >= lo,
                                           Dispatch.dispatched_at < hi)):
        for f in (row(court_id), total):
            f.dispatches += 1
            if status == DispatchStatus.DONE and done is not None:
                f.dispatches_done += 1
                f._complete.append((done - at).total_seconds() / 60)
    for court_id, reported, acked, resolved in session.execute(
            select(Incident.court_id, Incident.reported_at, Incident.acknowledged_at,
                   Incident.resolved_at).where(Incident.court_id.in_(ids),
                                               Incident.reported_at >= lo,
                                               Incident.reported_at < hi)):
        for f in (row(court_id), total):
            f.incidents += 1
            f.incidents_resolved += int(resolved is not None)
            if acked is not None:
                f._ack.append((acked - reported).total_seconds() / 60)
    total.finish()
    for f in rows.values():
        f.finish()
    return total, sorted(rows.values(), key=lambda f: f.court_code)
