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
    literal,
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


Key = tuple[int, date | None]  # (court id, day) — day None when grouped by court only


def additive(session: Session, court_ids: Collection[int] | None, period: Period,
             *, by_day: bool) -> dict[Key, Counter[str]]:
    """The day-additive components (everything but open/pending, overdue and durations),
    grouped by court, or by court and day. ``court_ids`` None means every court."""
    dialect = session.get_bind().dialect.name
    out: dict[Key, Counter[str]] = {}

    def put(court_id: int, day: date | None, values: dict[str, Any]) -> None:
        bucket = out.setdefault((court_id, day if by_day else None), Counter())
        for key, value in values.items():
            bucket[key] += int(value or 0)

    def scoped(stmt: Any, court_col: Any) -> Any:
        return stmt if court_ids is None else stmt.where(court_col.in_(court_ids))

    def count_if(cond: ColumnElement[bool]) -> ColumnElement[int]:
        return func.sum(case((cond, 1), else_=0))

    def sum_if(cond: ColumnElement[bool], value: Any) -> ColumnElement[int]:
        return func.sum(case((cond, value), else_=0))

    applied = Case.principal_fen + Case.interest_fen + Case.costs_fen
    filed_day: Any = Case.filed_on if by_day else literal(None)
    filed = scoped(select(Case.court_id, filed_day, func.count(), func.sum(applied))
                   .where(_in(Case.filed_on, period)), Case.court_id
                   ).group_by(Case.court_id, *([Case.filed_on] if by_day else []))
    for court_id, day, n, total in session.execute(filed).tuples():
        put(court_id, day, {"received": n, "applied_fen_received": total})

    prop = Case.conclusion.in_(PROPERTY_CONCLUSIONS)
    concluded_day: Any = Case.concluded_on if by_day else literal(None)
    measures: dict[str, Any] = {
        "concluded": func.count(),
        "performed": count_if(Case.conclusion == Conclusion.PERFORMED),
        "concluded_with_property": count_if(prop),
        "concluded_with_property_in_time": count_if(
            and_(prop, Case.concluded_on <= Case.deadline_at_conclusion)),
        "closed_for_now": count_if(Case.conclusion == Conclusion.CLOSED_FOR_NOW),
        "days_to_conclude_sum": func.sum(_days_between(Case.concluded_on, Case.filed_on,
                                                       dialect)),
        "applied_fen_concluded": func.sum(applied),
        "recovered_fen_concluded": func.sum(Case.recovered_fen),
    }
    concluded = scoped(select(Case.court_id, concluded_day, *measures.values())
                       .where(_in(Case.concluded_on, period)), Case.court_id
                       ).group_by(Case.court_id, *([Case.concluded_on] if by_day else []))
    for court_id, day, *values in session.execute(concluded).tuples():
        put(court_id, day, dict(zip(measures, values, strict=True)))

    compliant = _compliant_closures(court_ids, period, dialect, by_day=by_day)
    for court_id, day, n in session.execute(compliant).tuples():
        put(court_id, day, {"closed_for_now_compliant": n})

    ledger_day: Any = LedgerEntry.on if by_day else literal(None)
    money = scoped(select(Case.court_id, ledger_day, LedgerEntry.kind,
                          func.sum(LedgerEntry.amount_fen))
                   .join(Case, Case.id == LedgerEntry.case_id)
                   .where(_in(LedgerEntry.on, period)), Case.court_id)
    money = money.group_by(Case.court_id, LedgerEntry.kind, *([LedgerEntry.on] if by_day else []))
    for court_id, day, kind, total in session.execute(money).tuples():
        put(court_id, day, {"recovered_fen" if kind == "recovered" else "disbursed_fen": total})

    # The period is in China's calendar; answers are stamped in UTC. Surveys are few: the
    # China date is taken in Python, the same way on every database.
    first = datetime.combine(period.start, time(0), tzinfo=CHINA_TZ)
    after = datetime.combine(period.end + timedelta(days=1), time(0), tzinfo=CHINA_TZ)
    answers = scoped(select(SatisfactionSurvey.court_id, SatisfactionSurvey.answered_at,
                            SatisfactionSurvey.score)
                     .where(SatisfactionSurvey.answered_at >= first,
                            SatisfactionSurvey.answered_at < after),
                     SatisfactionSurvey.court_id)
    for court_id, answered_at, score in session.execute(answers).tuples():
        put(court_id, answered_at.astimezone(CHINA_TZ).date(),
            {"surveys_answered": 1, "surveys_satisfied": int((score or 0) >= SATISFIED_SCORE)})
    return out


def _durations(session: Session, court_ids: Collection[int], period: Period,
               out: dict[int, Components]) -> None:
    dialect = session.get_bind().dialect.name
    days = _days_between(Case.concluded_on, Case.filed_on, dialect)
    stmt = (select(Case.court_id, days, func.count())
            .where(Case.court_id.in_(court_ids), _in(Case.concluded_on, period))
            .group_by(Case.court_id, days))
    for court_id, n_days, n in session.execute(stmt).tuples():
        out[court_id].durations[int(n_days)] += int(n)


def _overdue(session: Session, court_ids: Collection[int], today: date,
             out: dict[int, Components]) -> None:
    stmt = (select(Case.court_id, func.count())
            .where(Case.court_id.in_(court_ids), Case.state != CaseState.CONCLUDED,
                   Case.period_deadline < today)
            .group_by(Case.court_id))
    for court_id, n in session.execute(stmt).tuples():
        out[court_id].values["overdue_open"] += int(n)


def components_direct(session: Session, court_ids: Collection[int], period: Period,
                      today: date) -> dict[int, Components]:
    """Every component straight from the base tables: the reference computation."""
    out: dict[int, Components] = {cid: Components() for cid in court_ids}
    if not court_ids:
        return out
    for (court_id, _day), values in additive(session, court_ids, period, by_day=False).items():
        out[court_id].values.update(values)
    stock = (
        select(Case.court_id,
               func.sum(case((and_(Case.filed_on < period.start,
                                   or_(Case.concluded_on.is_(None),
                                       Case.concluded_on >= period.start)), 1), else_=0)),
               func.sum(case((or_(Case.concluded_on.is_(None),
                                  Case.concluded_on > period.end), 1), else_=0)))
        .where(Case.court_id.in_(court_ids), Case.filed_on <= period.end)
        .group_by(Case.court_id))
    for court_id, at_start, at_end in session.execute(stock).tuples():
        out[court_id].values["open_at_start"] += int(at_start or 0)
        out[court_id].values["pending_at_end"] += int(at_end or 0)
    _durations(session, court_ids, period, out)
    _overdue(session, court_ids, today, out)
    return out


def components_by_court(session: Session, court_ids: Collection[int], period: Period,
                        today: date) -> dict[int, Components]:
    """The components from the pre-aggregated days (``indicator_days``): sums over at most
    courts × days rows, however many cases there are. Open and pending counts come from the
    running totals (received − concluded up to a day); durations and overdue from cases."""
    from zhixing.analytics.models import DAY_COMPONENTS, IndicatorDay

    out: dict[int, Components] = {cid: Components() for cid in court_ids}
    if not court_ids:
        return out
    cols = [getattr(IndicatorDay, c) for c in DAY_COMPONENTS]
    in_period = (select(IndicatorDay.court_id, *[func.sum(c) for c in cols])
                 .where(IndicatorDay.court_id.in_(court_ids),
                        _in(IndicatorDay.day, period))
                 .group_by(IndicatorDay.court_id))
    for court_id, *sums in session.execute(in_period).tuples():
        for name, value in zip(DAY_COMPONENTS, sums, strict=True):
            out[court_id].values[name] += int(value or 0)
    running = (select(IndicatorDay.court_id,
                      func.sum(case((IndicatorDay.day < period.start,
                                     IndicatorDay.received - IndicatorDay.concluded), else_=0)),
                      func.sum(IndicatorDay.received - IndicatorDay.concluded))
               .where(IndicatorDay.court_id.in_(court_ids), IndicatorDay.day <= period.end)
               .group_by(IndicatorDay.court_id))
    for court_id, at_start, at_end in session.execute(running).tuples():
        out[court_id].values["open_at_start"] += int(at_start or 0)
        out[court_id].values["pending_at_end"] += int(at_end or 0)
    _durations(session, court_ids, period, out)
    _overdue(session, court_ids, today, out)
    return out


def _compliant_closures(court_ids: Collection[int] | None, period: Period, dialect: str,
                        *, by_day: bool) -> Select[tuple[int, date | None, int]]:
    """终本 closures in the period that met every statutory condition when they were made:
    each condition's fact recorded on or before the closure, and three months since filing."""
    conditions = []
    for _code, any_of in CLOSED_FOR_NOW_CONDITIONS:
        conditions.append(exists().where(CaseFact.case_id == Case.id,
                                         CaseFact.kind.in_(any_of),
                                         CaseFact.on <= Case.concluded_on))
    if dialect == "sqlite":
        three_months = func.date(Case.filed_on, "+3 months") < Case.concluded_on
    else:
        three_months = (Case.filed_on + func.make_interval(0, 3)) < Case.concluded_on
    day: Any = Case.concluded_on if by_day else literal(None)
    stmt = (select(Case.court_id, day, func.count())
            .where(_in(Case.concluded_on, period),
                   Case.conclusion == Conclusion.CLOSED_FOR_NOW, three_months, *conditions)
            .group_by(Case.court_id, *([Case.concluded_on] if by_day else [])))
    return stmt if court_ids is None else stmt.where(Case.court_id.in_(court_ids))


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
