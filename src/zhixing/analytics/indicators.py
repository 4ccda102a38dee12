"""The indicators a court is judged by (RULES.md, Quality indicators; docs/indicators.md).

Every indicator is a ratio or a sum of *components*, and every component is additive over
courts: the figures are computed per court in a few grouped queries, and any court's figure is
the sum over its subtree. So the region's figure equals the rollup of its courts by
construction, and a rate is never an average of rates.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Collection, Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Integer,
    and_,
    case,
    cast,
    exists,
    func,
    or_,
    select,
)
from sqlalchemy.orm import Session
from sqlalchemy.sql import Select

from zhixing.analytics.models import SatisfactionSurvey
from zhixing.cases.lifecycle import CLOSED_FOR_NOW_CONDITIONS
from zhixing.cases.models import Case, CaseFact, CaseState, Conclusion, LedgerEntry
from zhixing.core.clock import CHINA_TZ
from zhixing.core.errors import ValidationFailed

# Concluded cases where property was available to enforce: everything but 终本 (no property)
# and the procedural endings (不予执行, 驳回申请, 销案).
PROPERTY_CONCLUSIONS = (Conclusion.PERFORMED, Conclusion.TERMINATED)
SATISFIED_SCORE = 4  # 4 (satisfied) and 5 (very satisfied) count as satisfied


@dataclass(frozen=True)
class Period:
    start: date
    end: date  # inclusive

    def __post_init__(self) -> None:
        if self.end < self.start:
            raise ValidationFailed("the period ends before it starts", code="invalid_period",
                                   field="end")
        if (self.end - self.start).days > 3660:
            raise ValidationFailed("a period of at most ten years", code="period_too_long",
                                   field="start")


COMPONENTS = (
    "received", "concluded", "open_at_start", "pending_at_end", "performed",
    "concluded_with_property", "concluded_with_property_in_time", "closed_for_now",
    "closed_for_now_compliant", "days_to_conclude_sum", "applied_fen_received",
    "applied_fen_concluded", "recovered_fen_concluded", "recovered_fen", "disbursed_fen",
    "overdue_open", "surveys_answered", "surveys_satisfied",
)


@dataclass
class Components:
    values: Counter[str] = field(default_factory=Counter)
    durations: Counter[int] = field(default_factory=Counter)  # days to conclude → cases

    def add(self, other: Components) -> None:
        self.values.update(other.values)
        self.durations.update(other.durations)

    def __getitem__(self, key: str) -> int:
        return self.values[key]


def _days_between(later: Any, earlier: Any, dialect: str) -> ColumnElement[int]:
    if dialect == "sqlite":
        return cast(func.julianday(later) - func.julianday(earlier), Integer)
    return cast(later - earlier, Integer)  # date - date is a whole number of days in PG


def _in(col: Any, period: Period) -> ColumnElement[bool]:
    return and_(col >= period.start, col <= period.end)


def components_by_court(session: Session, court_ids: Collection[int], period: Period,
                        today: date) -> dict[int, Components]:
    """The additive components of every indicator, per court."""
    dialect = session.get_bind().dialect.name
    out: dict[int, Components] = {cid: Components() for cid in court_ids}
    if not court_ids:
        return out
    concluded_in = _in(Case.concluded_on, period)
    applied = Case.principal_fen + Case.interest_fen + Case.costs_fen

    def count_if(cond: ColumnElement[bool]) -> ColumnElement[int]:
        return func.sum(case((cond, 1), else_=0))

    def sum_if(cond: ColumnElement[bool], value: Any) -> ColumnElement[int]:
        return func.sum(case((cond, value), else_=0))

    property_concluded = and_(concluded_in, Case.conclusion.in_(PROPERTY_CONCLUSIONS))
    main = (
        select(
            Case.court_id,
            count_if(_in(Case.filed_on, period)).label("received"),
            count_if(concluded_in).label("concluded"),
            count_if(and_(Case.filed_on < period.start,
                          or_(Case.concluded_on.is_(None),
                              Case.concluded_on >= period.start))).label("open_at_start"),
            count_if(and_(Case.filed_on <= period.end,
                          or_(Case.concluded_on.is_(None),
                              Case.concluded_on > period.end))).label("pending_at_end"),
            count_if(and_(concluded_in, Case.conclusion == Conclusion.PERFORMED)
                     ).label("performed"),
            count_if(property_concluded).label("concluded_with_property"),
            count_if(and_(property_concluded,
                          Case.concluded_on <= Case.deadline_at_conclusion)
                     ).label("concluded_with_property_in_time"),
            count_if(and_(concluded_in, Case.conclusion == Conclusion.CLOSED_FOR_NOW)
                     ).label("closed_for_now"),
            sum_if(concluded_in, _days_between(Case.concluded_on, Case.filed_on, dialect)
                   ).label("days_to_conclude_sum"),
            sum_if(_in(Case.filed_on, period), applied).label("applied_fen_received"),
            sum_if(concluded_in, applied).label("applied_fen_concluded"),
            sum_if(concluded_in, Case.recovered_fen).label("recovered_fen_concluded"),
            count_if(and_(Case.state != CaseState.CONCLUDED, Case.period_deadline < today)
                     ).label("overdue_open"),
        )
        .where(Case.court_id.in_(court_ids), Case.filed_on <= period.end,
               or_(Case.concluded_on.is_(None), Case.concluded_on >= period.start))
        .group_by(Case.court_id)
    )
    for row in session.execute(main).mappings():
        comp = out[row["court_id"]]
        for key, value in row.items():
            if key != "court_id":
                comp.values[key] += int(value or 0)

    days = _days_between(Case.concluded_on, Case.filed_on, dialect)
    durations = (
        select(Case.court_id, days, func.count())
        .where(Case.court_id.in_(court_ids), concluded_in)
        .group_by(Case.court_id, days)
    )
    for court_id, n_days, n in session.execute(durations).tuples():
        out[court_id].durations[int(n_days)] += int(n)

    for court_id, n in session.execute(_compliant_closures(court_ids, period, dialect)).tuples():
        out[court_id].values["closed_for_now_compliant"] += int(n)

    money = (
        select(Case.court_id, LedgerEntry.kind, func.sum(LedgerEntry.amount_fen))
        .join(Case, Case.id == LedgerEntry.case_id)
        .where(Case.court_id.in_(court_ids), _in(LedgerEntry.on, period))
        .group_by(Case.court_id, LedgerEntry.kind)
    )
    for court_id, kind, total in session.execute(money).tuples():
        key = "recovered_fen" if kind == "recovered" else "disbursed_fen"
        out[court_id].values[key] += int(total or 0)

    # The period is in China's calendar; answers are stamped in UTC.
    first = datetime.combine(period.start, time(0), tzinfo=CHINA_TZ)
    after = datetime.combine(period.end + timedelta(days=1), time(0), tzinfo=CHINA_TZ)
    answered = and_(SatisfactionSurvey.answered_at >= first,
                    SatisfactionSurvey.answered_at < after)
    surveys = (
        select(SatisfactionSurvey.court_id, func.count(),
               func.sum(case((SatisfactionSurvey.score >= SATISFIED_SCORE, 1), else_=0)))
        .where(SatisfactionSurvey.court_id.in_(court_ids), answered)
        .group_by(SatisfactionSurvey.court_id)
    )
    for court_id, n, satisfied in session.execute(surveys).tuples():
        out[court_id].values["surveys_answered"] += int(n)
        out[court_id].values["surveys_satisfied"] += int(satisfied or 0)
    return out


def _compliant_closures(court_ids: Collection[int], period: Period,
                        dialect: str) -> Select[tuple[int, int]]:
    """终本 closures in the period that met every statutory condition when they were made:
    each condition's fact recorded on or before the closure, and three months since filing."""
    conditions = []
    for _code, any_of in CLOSED_FOR_NOW_CONDITIONS:
        conditions.append(exists().where(CaseFact.case_id == Case.id,
                                         CaseFact.kind.in_(any_of),
                                         CaseFact.on <= Case.concluded_on))
    if dialect == "sqlite":
        three_months = func.date(Case.filed_on, "+3 months") <= Case.concluded_on
    else:
        three_months = (Case.filed_on + func.make_interval(0, 3)) <= Case.concluded_on
    return (
        select(Case.court_id, func.count())
        .where(Case.court_id.in_(court_ids), _in(Case.concluded_on, period),
               Case.conclusion == Conclusion.CLOSED_FOR_NOW, three_months, *conditions)
        .group_by(Case.court_id)
    )


def _ratio(num: int, den: int) -> float | None:
    return None if den == 0 else num / den


def median_days(durations: Counter[int]) -> float | None:
    total = sum(durations.values())
    if total == 0:
        return None
    ordered = sorted(durations.items())
    lower_rank, upper_rank = (total - 1) // 2, total // 2
    seen, lower, upper = 0, None, None
    for days, n in ordered:
        if lower is None and seen + n > lower_rank:
            lower = days
        if seen + n > upper_rank:
            upper = days
            break
        seen += n
    assert lower is not None and upper is not None
    return (lower + upper) / 2


# One function per indicator, over the components of a court or a subtree.
def conclusion_rate(c: Components) -> float | None:
    """结案率: concluded ÷ (open at the start + received)."""
    return _ratio(c["concluded"], c["open_at_start"] + c["received"])


def property_cases_in_time_rate(c: Components) -> float | None:
    """有财产可供执行案件法定期限内实际执结率 (target ≥ 90%)."""
    return _ratio(c["concluded_with_property_in_time"], c["concluded_with_property"])


def actual_enforcement_rate(c: Components) -> float | None:
    """实际执行率: closed by performance (incl. voluntary payment, settlement) ÷ closed."""
    return _ratio(c["performed"], c["concluded"])


def recovery_rate(c: Components) -> float | None:
    """执行到位率: recovered ÷ applied for, over cases concluded in the period."""
    return _ratio(c["recovered_fen_concluded"], c["applied_fen_concluded"])


def closed_for_now_compliance_rate(c: Components) -> float | None:
    """终本合格率: 终本 closures meeting every condition ÷ 终本 closures (target ≥ 90%)."""
    return _ratio(c["closed_for_now_compliant"], c["closed_for_now"])


def average_days_to_conclude(c: Components) -> float | None:
    return _ratio(c["days_to_conclude_sum"], c["concluded"])


def median_days_to_conclude(c: Components) -> float | None:
    return median_days(c.durations)


def satisfaction_rate(c: Components) -> float | None:
    """Parties satisfied (4 or 5 of 5) ÷ parties who answered, after 终本."""
    return _ratio(c["surveys_satisfied"], c["surveys_answered"])


RATES = {
    "conclusion_rate": conclusion_rate,
    "property_cases_in_time_rate": property_cases_in_time_rate,
    "actual_enforcement_rate": actual_enforcement_rate,
    "recovery_rate": recovery_rate,
    "closed_for_now_compliance_rate": closed_for_now_compliance_rate,
    "average_days_to_conclude": average_days_to_conclude,
    "median_days_to_conclude": median_days_to_conclude,
    "satisfaction_rate": satisfaction_rate,
}
COUNTS = ("received", "concluded", "pending_at_end", "overdue_open", "closed_for_now",
          "applied_fen_received", "recovered_fen", "disbursed_fen")
TARGETS = {"property_cases_in_time_rate": 0.9, "closed_for_now_compliance_rate": 0.9,
           "conclusion_rate": 0.8}


def figures(c: Components) -> dict[str, float | int | None]:
    out: dict[str, float | int | None] = {k: c[k] for k in COUNTS}
    out.update({name: fn(c) for name, fn in RATES.items()})
    return out


def rollup(per_court: dict[int, Components], members: Iterable[int]) -> Components:
    total = Components()
    for cid in members:
        comp = per_court.get(cid)
        if comp is not None:
            total.add(comp)
    return total
