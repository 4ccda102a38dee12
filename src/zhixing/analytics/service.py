"""Indicator reports over the court hierarchy, trends, and the big screen's live feed."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import date
from typing import Any

from dateutil.relativedelta import relativedelta
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from zhixing.analytics import indicators as ind
from zhixing.analytics.models import IndicatorDay
from zhixing.cases.models import Case, CaseEvent, CaseState
from zhixing.cases.service import today
from zhixing.core.actor import Actor
from zhixing.core.errors import Forbidden, NotFound
from zhixing.courts.models import Court

READ_ROLES = ("officer", "approver", "duty_officer", "duty_leader", "auditor", "admin")


@dataclass(frozen=True)
class Row:
    court: Court
    figures: dict[str, float | int | None]


@dataclass(frozen=True)
class Report:
    court: Court
    period: ind.Period
    total: dict[str, float | int | None]
    children: list[Row]


def court_in_reach(session: Session, actor: Actor, code: str | None) -> Court:
    if not actor.has_role(*READ_ROLES):
        raise Forbidden("your role may not read indicators", code="role_forbidden")
    court = session.scalar(select(Court).where(Court.code == (code or actor.court_code)))
    if court is None or not actor.can_see_court(court.id):
        raise NotFound(f"court {code} not found", code="court_not_found", field="court")
    return court


def report(session: Session, actor: Actor, code: str | None, period: ind.Period) -> Report:
    """A court's figures and each of its direct subordinates' (their subtrees rolled up)."""
    court = court_in_reach(session, actor, code)
    subtree = list(session.scalars(select(Court).where(Court.path.startswith(court.path))))
    per = ind.components_by_court(session, [c.id for c in subtree], period, today())
    rows = []
    for child in sorted((c for c in subtree if c.parent_id == court.id), key=lambda c: c.code):
        members = [c.id for c in subtree if c.path.startswith(child.path)]
        rows.append(Row(child, ind.figures(ind.rollup(per, members))))
    total = ind.figures(ind.rollup(per, [c.id for c in subtree]))
    return Report(court, period, total, rows)


def monthly_trend(session: Session, actor: Actor, code: str | None,
                  months: int = 12) -> list[dict[str, Any]]:
    """Cases received and concluded per month, for the last ``months`` months (from the
    pre-aggregated days: one grouped query however many cases there are)."""
    court = court_in_reach(session, actor, code)
    ids = list(session.scalars(select(Court.id).where(Court.path.startswith(court.path))))
    first = today().replace(day=1) - relativedelta(months=months - 1)
    per_day = session.execute(
        select(IndicatorDay.day, func.sum(IndicatorDay.received),
               func.sum(IndicatorDay.concluded))
        .where(IndicatorDay.court_id.in_(ids), IndicatorDay.day >= first)
        .group_by(IndicatorDay.day)).tuples().all()
    out = {(first + relativedelta(months=i)).strftime("%Y-%m"): [0, 0] for i in range(months)}
    for day, received, concluded in per_day:
        bucket = out.get(day.strftime("%Y-%m"))
        if bucket is not None:
            bucket[0] += int(received or 0)
            bucket[1] += int(concluded or 0)
    return [{"month": m, "received": r, "concluded": c} for m, (r, c) in out.items()]


def live_counters(session: Session, court_ids: list[int]) -> dict[str, int]:
    """Today's activity (exact, from today's records) and the standing position."""
    now = today()
    open_cases = session.scalar(
        select(func.sum(IndicatorDay.received - IndicatorDay.concluded))
        .where(IndicatorDay.court_id.in_(court_ids), IndicatorDay.day < now)) or 0
    day: Counter[str] = Counter()
    for values in ind.additive(session, court_ids, ind.Period(now, now), by_day=False).values():
        day.update(values)
    overdue = session.scalar(select(func.count()).select_from(Case).where(
        Case.court_id.in_(court_ids), Case.state != CaseState.CONCLUDED,
        Case.period_deadline < now)) or 0
    return {"open_cases": int(open_cases) + day["received"] - day["concluded"],
            "overdue": overdue, "received_today": day["received"],
            "concluded_today": day["concluded"], "recovered_fen_today": day["recovered_fen"]}


def ticker(session: Session, court_ids: list[int], after_id: int,
           limit: int = 50) -> list[dict[str, Any]]:
    """Case events after ``after_id`` within these courts: the big screen's live ticker."""
    rows = session.execute(
        select(CaseEvent.id, CaseEvent.occurred_at, CaseEvent.kind, CaseEvent.data,
               Case.case_number, Court.short_name_zh)
        .join(Case, Case.id == CaseEvent.case_id).join(Court, Court.id == Case.court_id)
        .where(CaseEvent.id > after_id, Case.court_id.in_(court_ids))
        .order_by(CaseEvent.id).limit(limit)).tuples().all()
    return [{"id": i, "at": at.isoformat(), "kind": kind, "case_number": number,
             "court": court, "after": (data or {}).get("after"),
             "conclusion": (data or {}).get("conclusion")}
            for i, at, kind, data, number, court in rows]


def last_event_id(session: Session) -> int:
    return session.scalar(select(func.max(CaseEvent.id))) or 0


def city_shading(rep: Report, figure: str) -> list[dict[str, Any]]:
    """One value per prefecture (the region report's rows) for the Guangxi map."""
    return [{"court_code": r.court.code, "name": r.court.name_zh.replace("中级人民法院", ""),
             "value": r.figures.get(figure)} for r in rep.children]


def parse_period(start: date | None, end: date | None) -> ind.Period:
    now = today()
    return ind.Period(start or now.replace(month=1, day=1), end or now)
