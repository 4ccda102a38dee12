"""The list's statutory rules as pure functions (RULES.md, Dishonest-debtor list)."""

from __future__ import annotations

from datetime import date, timedelta

from hypothesis import given
from hypothesis import strategies as st

from zhixing.credit import rules
from zhixing.credit.activities import (
    ALL_MASK,
    CONSUMPTION_MASK,
    EXIT_MASK,
    LISTING_MASK,
    Activity,
    Category,
    activities_of,
    category_mask,
    mask_of,
)
from zhixing.credit.rules import CaseFacts, DeletionGround

DAYS = st.dates(min_value=date(2015, 1, 1), max_value=date(2035, 12, 31))


def test_a_minor_is_never_listed_on_any_ground() -> None:
    on = date(2026, 11, 26)
    for ground in rules.GROUNDS:
        refusals = rules.listing_refusals(ground=ground, is_person=True,
                                          birth_date=date(2008, 11, 27), on=on)
        assert [r.code for r in refusals] == ["minor"]
    assert rules.listing_refusals(ground=2, is_person=True, birth_date=date(2008, 11, 26),
                                  on=on) == []


def test_an_unknown_birth_date_cannot_prove_adulthood() -> None:
    refusals = rules.listing_refusals(ground=2, is_person=True, birth_date=None,
                                      on=date(2026, 1, 1))
    assert [r.code for r in refusals] == ["age_unknown"]
    assert rules.listing_refusals(ground=2, is_person=False, birth_date=None,
                                  on=date(2026, 1, 1)) == []


def test_ground_one_exclusions_refuse_only_ground_one() -> None:
    on = date(2026, 1, 1)
    for exclusion in rules.Exclusion:
        codes = [r.code for r in rules.listing_refusals(
            ground=1, is_person=False, birth_date=None, on=on, exclusions=[exclusion])]
        assert codes == [f"excluded_{exclusion}"]
        assert rules.listing_refusals(ground=3, is_person=False, birth_date=None, on=on,
                                      exclusions=[exclusion]) == []


@given(DAYS, st.sampled_from((2, 3, 4, 5, 6)), st.sampled_from((0, 1, 2, 3)))
def test_grounds_two_to_six_last_two_years_plus_the_extension(day: date, ground: int,
                                                               ext: int) -> None:
    end = rules.ends_on(ground, day, ext)
    assert end is not None
    years = 2 + ext
    assert (end.year - day.year) == years
    assert end.month == day.month
    assert end.day == day.day or (day.month, day.day) == (2, 29)


def test_ground_one_has_no_period_and_no_extension() -> None:
    assert rules.ends_on(1, date(2026, 1, 1)) is None
    for bad in ((1, 1), (2, 4)):
        try:
            rules.ends_on(bad[0], date(2026, 1, 1), bad[1])
        except ValueError:
            continue
        raise AssertionError(f"extension {bad} accepted")


def test_grace_period_is_zero_to_three_months() -> None:
    assert rules.publish_on(date(2026, 1, 31), 1) == date(2026, 2, 28)
    assert rules.publish_on(date(2026, 1, 31), 0) == date(2026, 1, 31)
    try:
        rules.publish_on(date(2026, 1, 31), 4)
    except ValueError:
        return
    raise AssertionError("a 4-month grace period was accepted")


def test_deletion_is_due_three_working_days_later_on_china_s_calendar() -> None:
    assert rules.deletion_due(date(2026, 11, 26)) == date(2026, 12, 1)  # Thu → Tue
    # National Day week: 1-7 October 2026 are holidays; Sunday 10 October is a make-up day.
    assert rules.deletion_due(date(2026, 9, 30)) == date(2026, 10, 10)
    assert rules.is_working_day(date(2026, 10, 10))
    assert not rules.is_working_day(date(2026, 10, 5))


@given(DAYS, st.integers(min_value=1, max_value=10))
def test_working_days_skip_weekends_and_holidays(day: date, n: int) -> None:
    due = rules.add_working_days(day, n)
    between = [day + timedelta(days=i) for i in range(1, (due - day).days + 1)]
    assert sum(rules.is_working_day(d) for d in between) == n
    assert rules.is_working_day(due)


def test_time_limits() -> None:
    d = date(2026, 3, 1)
    assert rules.request_decide_by(d) == date(2026, 3, 16)
    assert rules.correction_review_due(d) == date(2026, 3, 16)
    assert rules.higher_review_request_by(d) == date(2026, 3, 11)
    assert rules.higher_review_due(d) == date(2026, 3, 16)
    assert rules.requester_blocked_until(d) == date(2026, 9, 1)


def _facts(**kw: object) -> CaseFacts:
    base: dict[str, object] = {"conclusion": None, "conclusion_ground": None,
                               "suspension_ground": None, "outstanding_fen": 100,
                               "empty_searches_after_closure": 0, "open_leads": 0}
    base.update(kw)
    return CaseFacts(**base)  # type: ignore[arg-type]


def test_deletion_events_from_case_facts() -> None:
    today = date(2026, 6, 1)
    cases = [
        (_facts(), None),
        (_facts(outstanding_fen=0), DeletionGround.FULL_PERFORMANCE),
        (_facts(conclusion="performed"), DeletionGround.FULL_PERFORMANCE),
        (_facts(conclusion="performed", conclusion_ground="settlement_performed"),
         DeletionGround.SETTLEMENT_PERFORMED),
        (_facts(conclusion="closed_for_now", empty_searches_after_closure=1), None),
        (_facts(conclusion="closed_for_now", empty_searches_after_closure=2, open_leads=1),
         None),
        (_facts(conclusion="closed_for_now", empty_searches_after_closure=2),
         DeletionGround.NOTHING_FOUND_AFTER_CLOSURE),
        (_facts(suspension_ground="retrial"), DeletionGround.SUSPENDED_RETRIAL),
        (_facts(suspension_ground="bankruptcy"), DeletionGround.SUSPENDED_BANKRUPTCY),
        (_facts(suspension_ground="applicant_agreed"), None),
        (_facts(conclusion="not_enforced"), DeletionGround.NOT_ENFORCED),
        (_facts(conclusion="terminated"), DeletionGround.TERMINATED),
    ]
    for facts, expected in cases:
        assert rules.deletion_event(facts, ends=None, today=today) == expected, facts
    assert rules.deletion_event(_facts(), ends=today, today=today) == (
        DeletionGround.PERIOD_ENDED)
    assert rules.deletion_event(_facts(), ends=today + timedelta(days=1), today=today) is None


def test_activity_masks() -> None:
    assert activities_of(mask_of([Activity.FLIGHT, Activity.EXIT])) == [Activity.FLIGHT,
                                                                        Activity.EXIT]
    assert CONSUMPTION_MASK & EXIT_MASK == 0 and CONSUMPTION_MASK & LISTING_MASK == 0
    assert CONSUMPTION_MASK | EXIT_MASK | LISTING_MASK == ALL_MASK
    assert activities_of(category_mask([Category.TRAINS])) == [Activity.HIGH_SPEED_TRAIN,
                                                               Activity.OTHER_SPENDING]
    assert ALL_MASK < 2**32  # the screening index keeps 32-bit masks
