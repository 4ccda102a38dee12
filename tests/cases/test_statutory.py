from __future__ import annotations

from datetime import date, timedelta

from hypothesis import given
from hypothesis import strategies as st

from zhixing.cases import statutory
from zhixing.cases.statutory import Interval, compute, paused_days, period_deadline

FILED = date(2025, 3, 10)


class TestPeriod:
    def test_six_months_from_filing(self) -> None:
        assert period_deadline(FILED, 0, 0) == date(2025, 9, 10)

    def test_extension_and_pauses_move_it(self) -> None:
        assert period_deadline(FILED, 3, 0) == date(2025, 12, 10)
        assert period_deadline(FILED, 0, 20) == date(2025, 9, 30)

    def test_month_end_is_clamped(self) -> None:
        assert period_deadline(date(2025, 8, 31), 0, 0) == date(2026, 2, 28)

    def test_clock_stops_while_paused(self) -> None:
        clock = compute(FILED, {}, [Interval(date(2025, 4, 1), None)], 0, date(2025, 5, 1))
        assert clock.paused_now and clock.period is None and clock.paused_days == 30

    def test_pause_that_ended_counts(self) -> None:
        pauses = [Interval(date(2025, 4, 1), date(2025, 4, 11))]
        clock = compute(FILED, {}, pauses, 0, date(2025, 5, 1))
        assert clock.period is not None and clock.period.due_on == date(2025, 9, 20)


class TestNodes:
    def test_node_deadlines_from_filing(self) -> None:
        clock = compute(FILED, {}, [], 0, FILED)
        due = {n.kind: n.due_on for n in clock.nodes}
        assert due == {"officer_assigned": FILED + timedelta(days=7),
                       "execution_notice": FILED + timedelta(days=5),
                       "property_report_order": FILED + timedelta(days=5),
                       "asset_search": FILED + timedelta(days=5)}

    def test_warnings_due_soon_then_overdue(self) -> None:
        soon = compute(FILED, {}, [], 0, FILED)
        assert {w.kind for w in soon.warnings} == {"officer_assigned", "execution_notice",
                                                    "property_report_order", "asset_search"}
        assert all(w.status(FILED) == "due_soon" for w in soon.warnings)
        later = compute(FILED, {}, [], 0, FILED + timedelta(days=6))
        assert {w.kind for w in later.warnings if w.status(FILED + timedelta(days=6))
                == "overdue"} == {"execution_notice", "property_report_order", "asset_search"}

    def test_done_nodes_do_not_warn(self) -> None:
        facts = {"officer_assigned": FILED, "execution_notice": FILED,
                 "property_report_order": FILED, "asset_search_started": FILED}
        clock = compute(FILED, facts, [], 0, FILED + timedelta(days=30))
        assert clock.warnings == []
        assert clock.next_due is not None and clock.next_due.kind == "period"

    def test_late_node_is_marked(self) -> None:
        clock = compute(FILED, {"execution_notice": FILED + timedelta(days=9)}, [], 0, FILED)
        node = next(n for n in clock.nodes if n.kind == "execution_notice")
        assert node.status(FILED + timedelta(days=10)) == "done_late"

    def test_period_warning_near_the_end(self) -> None:
        facts = dict.fromkeys(("officer_assigned", "execution_notice", "property_report_order",
                               "asset_search_started"), FILED)
        near = date(2025, 9, 5)
        clock = compute(FILED, facts, [], 0, near)
        assert [w.kind for w in clock.warnings] == ["period"]


class TestFreezeLimits:
    def test_limits_by_kind(self) -> None:
        assert statutory.freeze_limit_days("deposit") == 365
        assert statutory.freeze_limit_days("vehicle") == 730
        assert statutory.freeze_limit_days("real_estate") == 1095


intervals = st.lists(
    st.tuples(st.integers(0, 400), st.integers(0, 60), st.booleans()), max_size=8)


@given(intervals)
def test_paused_days_counts_each_day_once(spec: list[tuple[int, int, bool]]) -> None:
    today = FILED + timedelta(days=500)
    pauses = [Interval(FILED + timedelta(days=s), None if open_ else
                       FILED + timedelta(days=s + n)) for s, n, open_ in spec]
    days: set[date] = set()
    for p in pauses:
        end = p.end or today
        days.update(p.start + timedelta(days=i) for i in range((end - p.start).days))
    assert paused_days(pauses, today) == len(days)
