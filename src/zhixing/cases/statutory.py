"""The statutory clock (RULES.md, Cases): node deadlines and the 6-month period.

Pure functions over a case's facts, pauses and extensions, so the rules are testable on their
own and the same code computes the stored deadlines and the page's explanation. Periods that
RULES.md gives as ranges or marks unverified are defaults in :class:`StatutoryRules`.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, timedelta

from dateutil.relativedelta import relativedelta


@dataclass(frozen=True)
class StatutoryRules:
    period_months: int = 6  # conclude within 6 months of filing
    president_extension_months: int = 3  # +3 with the president's approval
    officer_assignment_days: int = 7
    notice_days: int = 5  # execution notice and property-report order: 3-5 days
    asset_search_days: int = 5
    closed_for_now_min_months: int = 3  # 终本 only after 3 months
    warn_days: int = 7  # "due soon" within this many days
    requery_interval_months: int = 6  # after 终本: re-query every 6 months
    requery_for_years: int = 5  # ... for 5 years
    # Maximum control periods (RULES.md, Network query and control).
    freeze_deposit_days: int = 365
    freeze_movable_days: int = 730
    freeze_other_days: int = 1095
    freeze_warn_days: int = 30


RULES = StatutoryRules()

# Node facts and which fact satisfies each node deadline.
NODE_FACTS: dict[str, str] = {
    "officer_assigned": "officer_assigned",
    "execution_notice": "execution_notice",
    "property_report_order": "property_report_order",
    "asset_search": "asset_search_started",
}


@dataclass(frozen=True)
class Interval:
    start: date
    end: date | None  # None: still running


@dataclass(frozen=True)
class Deadline:
    kind: str  # a node name, or "period"
    due_on: date
    done_on: date | None = None

    def status(self, today: date, rules: StatutoryRules = RULES) -> str:
        if self.done_on is not None:
            return "done_late" if self.done_on > self.due_on else "done"
        if today > self.due_on:
            return "overdue"
        if (self.due_on - today).days <= rules.warn_days:
            return "due_soon"
        return "open"


@dataclass(frozen=True)
class Clock:
    nodes: list[Deadline]
    period: Deadline | None  # None while the clock is stopped
    paused_days: int
    paused_now: bool
    extension_months: int
    warnings: list[Deadline] = field(default_factory=list)

    @property
    def next_due(self) -> Deadline | None:
        open_items = [d for d in self.nodes if d.done_on is None]
        if self.period is not None:
            open_items.append(self.period)
        return min(open_items, key=lambda d: d.due_on) if open_items else None


def paused_days(pauses: Iterable[Interval], today: date) -> int:
    """Days the clock stood still. Overlapping pauses count once."""
    spans = sorted((p.start, p.end or today) for p in pauses)
    total = 0
    cur_start: date | None = None
    cur_end: date | None = None
    for start, end in spans:
        if cur_end is None or start > cur_end:
            if cur_start is not None and cur_end is not None:
                total += (cur_end - cur_start).days
            cur_start, cur_end = start, end
        else:
            cur_end = max(cur_end, end)
    if cur_start is not None and cur_end is not None:
        total += (cur_end - cur_start).days
    return total


def period_deadline(filed_on: date, extension_months: int, paused: int,
                    rules: StatutoryRules = RULES) -> date:
    return (filed_on + relativedelta(months=rules.period_months + extension_months)
            + timedelta(days=paused))


def compute(filed_on: date, facts: dict[str, date], pauses: list[Interval],
            extension_months: int, today: date, *, concluded_on: date | None = None,
            rules: StatutoryRules = RULES) -> Clock:
    node_days = {
        "officer_assigned": rules.officer_assignment_days,
        "execution_notice": rules.notice_days,
        "property_report_order": rules.notice_days,
        "asset_search": rules.asset_search_days,
    }
    nodes = [Deadline(kind, filed_on + timedelta(days=days), facts.get(NODE_FACTS[kind]))
             for kind, days in node_days.items()]
    paused_now = any(p.end is None for p in pauses)
    pdays = paused_days(pauses, concluded_on or today)
    period: Deadline | None = None
    if not paused_now:
        period = Deadline("period", period_deadline(filed_on, extension_months, pdays, rules),
                          concluded_on)
    if concluded_on is not None:
        nodes = [n if n.done_on else Deadline(n.kind, n.due_on, concluded_on) for n in nodes]
    check_day = concluded_on or today
    warnings = [d for d in [*nodes, *([period] if period else [])]
                if d.done_on is None and d.status(check_day, rules) in ("overdue", "due_soon")]
    return Clock(nodes, period, pdays, paused_now, extension_months, warnings)


def freeze_limit_days(asset_kind: str, rules: StatutoryRules = RULES) -> int:
    """Longest control period for one order: deposits 1 year, movables 2, the rest 3."""
    if asset_kind == "deposit":
        return rules.freeze_deposit_days
    if asset_kind == "vehicle":
        return rules.freeze_movable_days
    return rules.freeze_other_days
