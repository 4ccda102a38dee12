"""Keeping ``indicator_days`` true: mark what changed, recompute it, or rebuild everything."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from zhixing.analytics import indicators as ind
from zhixing.analytics.models import DAY_COMPONENTS, IndicatorDay, IndicatorDirty
from zhixing.cases.models import Case, LedgerEntry
from zhixing.core import jobs

REFRESH_EVERY = timedelta(seconds=5)
REFRESH_BATCH = 500


def mark_changed(session: Session, court_id: int, day: date) -> None:
    """Called in the transaction that changes a case, the ledger or a survey answer."""
    for _ in range(3):
        bumped = session.execute(update(IndicatorDirty)
                                 .where(IndicatorDirty.court_id == court_id,
                                        IndicatorDirty.day == day)
                                 .values(version=IndicatorDirty.version + 1))
        if bumped.rowcount:  # type: ignore[attr-defined]
            return
        try:
            with session.begin_nested():
                session.add(IndicatorDirty(court_id=court_id, day=day, version=1))
            return
        except IntegrityError:
            continue  # created concurrently: bump that one
    raise RuntimeError("indicator marker could not be written")


def _rows(session: Session, court_ids: list[int] | None, period: ind.Period) -> list[
        dict[str, Any]]:
    rows = []
    for (court_id, day), values in ind.additive(session, court_ids, period, by_day=True).items():
        if day is None or not any(values.values()):
            continue
        rows.append({"court_id": court_id, "day": day,
                     **{c: int(values.get(c, 0)) for c in DAY_COMPONENTS}})
    return rows


def refresh_day(session: Session, court_id: int, day: date) -> None:
    session.execute(delete(IndicatorDay).where(IndicatorDay.court_id == court_id,
                                               IndicatorDay.day == day))
    rows = _rows(session, [court_id], ind.Period(day, day))
    if rows:
        session.execute(insert(IndicatorDay), rows)


@jobs.handler("analytics.refresh_dirty")
def refresh_dirty(session: Session, _payload: dict[str, Any]) -> None:
    """Recompute every marked (court, day); keep markers that changed meanwhile."""
    markers = session.execute(select(IndicatorDirty.court_id, IndicatorDirty.day,
                                     IndicatorDirty.version)
                              .limit(REFRESH_BATCH)).tuples().all()
    for court_id, day, version in markers:
        refresh_day(session, court_id, day)
        session.execute(delete(IndicatorDirty).where(
            IndicatorDirty.court_id == court_id, IndicatorDirty.day == day,
            IndicatorDirty.version == version))


def rebuild(session: Session) -> int:
    """Recompute every row from the base tables (after a bulk load, or to repair)."""
    session.execute(delete(IndicatorDay))
    session.execute(delete(IndicatorDirty))
    bounds = [session.execute(select(func.min(c), func.max(c))).one()
              for c in (Case.filed_on, Case.concluded_on, LedgerEntry.on)]
    lows = [lo for lo, _hi in bounds if lo is not None]
    highs = [hi for _lo, hi in bounds if hi is not None]
    if not lows:
        return 0
    start, end = min(lows), max(highs) + timedelta(days=1)  # + surveys answered today
    written = 0
    year_start = start
    while year_start <= end:
        year_end = min(end, year_start + timedelta(days=365))
        rows = _rows(session, None, ind.Period(year_start, year_end))
        if rows:
            session.execute(insert(IndicatorDay), rows)
            written += len(rows)
        year_start = year_end + timedelta(days=1)
    return written


def schedule_recurring(session: Session) -> None:
    jobs.enqueue(session, "analytics.refresh_dirty", dedupe_key="recurring:analytics.refresh",
                 interval=REFRESH_EVERY)


_PENDING = "zhixing_indicator_marks"


def _collect(session: Session, _context: object, _instances: object) -> None:
    """before_flush: note which (court, day) rows the changes in this flush touch."""
    from zhixing.analytics.models import SatisfactionSurvey
    from zhixing.core.clock import CHINA_TZ

    marks: set[tuple[int, date]] = session.info.setdefault(_PENDING, set())
    for obj in list(session.new) + list(session.dirty):
        if isinstance(obj, Case):
            if obj.court_id is not None and obj.filed_on is not None and obj in session.new:
                marks.add((obj.court_id, obj.filed_on))
            if obj.concluded_on is not None:
                marks.add((obj.court_id, obj.concluded_on))
        elif isinstance(obj, LedgerEntry) and obj in session.new:
            case = session.get(Case, obj.case_id)
            if case is not None:
                marks.add((case.court_id, obj.on))
        elif isinstance(obj, SatisfactionSurvey) and obj.answered_at is not None:
            marks.add((obj.court_id, obj.answered_at.astimezone(CHINA_TZ).date()))


def _write_marks(session: Session) -> None:
    """before_commit: the markers join the transaction that made the change."""
    marks: set[tuple[int, date]] = session.info.pop(_PENDING, set())
    for court_id, day in sorted(marks):
        mark_changed(session, court_id, day)


def _forget(session: Session, _previous: object = None) -> None:
    session.info.pop(_PENDING, None)


def install_hooks() -> None:
    from sqlalchemy import event

    if not event.contains(Session, "before_flush", _collect):
        event.listen(Session, "before_flush", _collect)
        event.listen(Session, "before_commit", _write_marks)
        event.listen(Session, "after_rollback", _forget)
