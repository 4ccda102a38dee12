"""Indicators on hand-built data: each expected figure is worked out here by hand."""

from __future__ import annotations

import random
from datetime import UTC, date, datetime, timedelta
from itertools import count
from typing import Any

import pytest
from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from zhixing.analytics import aggregates
from zhixing.analytics import indicators as ind
from zhixing.analytics.models import SatisfactionSurvey
from zhixing.cases.lifecycle import CLOSED_FOR_NOW_CONDITIONS
from zhixing.cases.models import (
    Case,
    CaseFact,
    CaseParty,
    CaseState,
    CaseType,
    Conclusion,
    LedgerEntry,
    Party,
    PartyKind,
)
from zhixing.core.db import transaction
from zhixing.courts.models import Court

YEAR = ind.Period(date(2024, 1, 1), date(2024, 12, 31))
TODAY = date(2025, 3, 1)
_serial = count(1)


def _court(session: Session, code: str) -> int:
    cid = session.scalar(select(Court.id).where(Court.code == code))
    assert cid is not None
    return cid


def _case(session: Session, court_id: int, filed: date, *, concluded: date | None = None,
          conclusion: Conclusion | None = None, deadline: date | None = None,
          applied: int = 10_000, recovered: int = 0, period_deadline: date | None = None,
          facts: tuple[str, ...] = ()) -> Case:
    n = next(_serial)
    c = Case(court_id=court_id, case_number=f"（{filed.year}）桂T执{n}号", year=filed.year,
             case_type=CaseType.ENFORCEMENT, serial=n, title_issuer="x",
             title_document_number="x", title_date=filed, title_effective_date=filed,
             principal_fen=applied, interest_fen=0, costs_fen=0, recovered_fen=recovered,
             disbursed_fen=0, filed_on=filed,
             state=CaseState.CONCLUDED if concluded else CaseState.INVESTIGATING,
             state_changed_at=datetime(2024, 1, 1, tzinfo=UTC), conclusion=conclusion,
             concluded_on=concluded, deadline_at_conclusion=deadline,
             period_deadline=None if concluded else period_deadline, extension_months=0)
    session.add(c)
    session.flush()
    for kind in facts:
        session.add(CaseFact(case_id=c.id, kind=kind, on=concluded or filed))
    return c


ALL_CONDITIONS = tuple(any_of[0] for _, any_of in CLOSED_FOR_NOW_CONDITIONS)


@pytest.fixture
def built(test_db: Any) -> dict[str, int]:
    """Qingxiu (桂0103) and Xingning (桂0102) under Nanning (桂01); Liunan (桂0204) elsewhere."""
    with transaction() as s:
        qx, xn, ln = _court(s, "桂0103"), _court(s, "桂0102"), _court(s, "桂0204")
        # Qingxiu: one case open since 2023 (open at start), still open -> pending, overdue
        _case(s, qx, date(2023, 6, 1), period_deadline=date(2023, 12, 1))
        # performed in time: filed 2024-01-10, concluded 2024-03-10 (60 days), deadline 07-10
        _case(s, qx, date(2024, 1, 10), concluded=date(2024, 3, 10),
              conclusion=Conclusion.PERFORMED, deadline=date(2024, 7, 10), applied=50_000,
              recovered=50_000)
        # terminated late: filed 2024-02-01, concluded 2024-09-01 (213 days), deadline 08-01
        _case(s, qx, date(2024, 2, 1), concluded=date(2024, 9, 1),
              conclusion=Conclusion.TERMINATED, deadline=date(2024, 8, 1), applied=20_000,
              recovered=5_000)
        # 终本 with every condition: filed 2024-03-01, concluded 2024-07-01 (122 days)
        _case(s, qx, date(2024, 3, 1), concluded=date(2024, 7, 1),
              conclusion=Conclusion.CLOSED_FOR_NOW, deadline=date(2024, 9, 1), applied=30_000,
              facts=ALL_CONDITIONS)
        # 终本 missing the interview: not compliant; filed 2024-04-01, concluded 08-01 (122 d)
        _case(s, qx, date(2024, 4, 1), concluded=date(2024, 8, 1),
              conclusion=Conclusion.CLOSED_FOR_NOW, deadline=date(2024, 10, 1), applied=40_000,
              facts=ALL_CONDITIONS[:-1])
        # filed in December 2024, concluded in 2025: pending at the end of 2024
        _case(s, qx, date(2024, 12, 20), concluded=date(2025, 1, 5),
              conclusion=Conclusion.PERFORMED, deadline=date(2025, 6, 20), applied=7_000)
        # Xingning: rejected (procedural, not a property case), filed and concluded in 2024
        _case(s, xn, date(2024, 5, 1), concluded=date(2024, 5, 11),
              conclusion=Conclusion.REJECTED, deadline=date(2024, 11, 1), applied=1_000)
        # Liunan: concluded in 2023, outside the period entirely
        _case(s, ln, date(2023, 1, 1), concluded=date(2023, 3, 1),
              conclusion=Conclusion.PERFORMED, deadline=date(2023, 7, 1))
        money_case = _case(s, ln, date(2024, 6, 1), period_deadline=date(2024, 12, 1))
        s.add_all([
            LedgerEntry(case_id=money_case.id, kind="recovered", amount_fen=3_000,
                        on=date(2024, 6, 5)),
            LedgerEntry(case_id=money_case.id, kind="disbursed", amount_fen=2_000,
                        on=date(2024, 6, 20)),
            LedgerEntry(case_id=money_case.id, kind="recovered", amount_fen=999,
                        on=date(2025, 1, 2)),  # outside the period
        ])
        party = Party(kind=PartyKind.PERSON, name="甲", id_kind=None, id_number=None)
        s.add(party)
        s.flush()
        s.add(CaseParty(case_id=money_case.id, party_id=party.id, role="applicant"))
        for i, score in enumerate((5, 4, 2)):
            s.add(SatisfactionSurvey(case_id=money_case.id, party_id=party.id, court_id=qx,
                                     code_hash=f"h{i}", sent_at=datetime(2024, 7, 1, tzinfo=UTC),
                                     expires_at=datetime(2024, 8, 1, tzinfo=UTC),
                                     answered_at=datetime(2024, 7, 2 + i, tzinfo=UTC),
                                     score=score))
        ids = {"qx": qx, "xn": xn, "ln": ln, "nn": _court(s, "桂01"), "gx": _court(s, "桂")}
    return ids


def refresh() -> None:
    """What the recurring job does, until every marked day is recomputed."""
    from zhixing.analytics.models import IndicatorDirty

    while True:
        with transaction() as s:
            if s.scalar(select(IndicatorDirty.day).limit(1)) is None:
                return
            aggregates.refresh_dirty(s, {})


def _figures(session: Session, ids: list[int]) -> dict[str, Any]:
    """From the pre-aggregated days, after checking they agree with the direct computation."""
    refresh()
    fast = ind.figures(ind.rollup(ind.components_by_court(session, ids, YEAR, TODAY), ids))
    direct = ind.figures(ind.rollup(ind.components_direct(session, ids, YEAR, TODAY), ids))
    assert fast == direct
    return fast


class TestOneCourt:
    def test_qingxiu(self, db: Session, built: dict[str, int]) -> None:
        f = _figures(db, [built["qx"]])
        assert f["received"] == 5  # filed in 2024: Jan, Feb, Mar, Apr, Dec
        assert f["concluded"] == 4  # Mar, Sep, Jul, Aug (the December case ends in 2025)
        assert f["pending_at_end"] == 2  # the 2023 case and the December case
        # conclusion rate: 4 / (1 open at start + 5 received)
        assert f["conclusion_rate"] == pytest.approx(4 / 6)
        # property cases: performed + terminated = 2, of which 1 in time
        assert f["property_cases_in_time_rate"] == pytest.approx(1 / 2)
        assert f["actual_enforcement_rate"] == pytest.approx(1 / 4)
        # recovery over the 4 concluded: (50,000 + 5,000) / (50,000 + 20,000 + 30,000 + 40,000)
        assert f["recovery_rate"] == pytest.approx(55_000 / 140_000)
        assert f["closed_for_now"] == 2
        assert f["closed_for_now_compliance_rate"] == pytest.approx(1 / 2)
        # days: 60, 213, 122, 122 -> average 129.25, median (122 + 122) / 2
        assert f["average_days_to_conclude"] == pytest.approx(517 / 4)
        assert f["median_days_to_conclude"] == 122
        assert f["overdue_open"] == 1
        assert f["applied_fen_received"] == 50_000 + 20_000 + 30_000 + 40_000 + 7_000
        assert f["satisfaction_rate"] == pytest.approx(2 / 3)

    def test_money_moves_by_ledger_date(self, db: Session, built: dict[str, int]) -> None:
        f = _figures(db, [built["ln"]])
        assert (f["recovered_fen"], f["disbursed_fen"]) == (3_000, 2_000)
        assert f["received"] == 1 and f["concluded"] == 0
        assert f["conclusion_rate"] == 0 and f["recovery_rate"] is None

    def test_no_cases_no_rates(self, db: Session, built: dict[str, int]) -> None:
        f = _figures(db, [_court(db, "桂1402")])
        assert f["received"] == 0 and f["conclusion_rate"] is None


class TestRollup:
    def test_city_is_the_sum_of_its_districts(self, db: Session, built: dict[str, int]) -> None:
        nanning = [c for c in db.scalars(select(Court.id).where(Court.path.startswith(
            "/桂/桂01/")))]
        f = _figures(db, nanning)
        assert f["received"] == 6 and f["concluded"] == 5  # + Xingning's rejected case
        assert f["conclusion_rate"] == pytest.approx(5 / 7)
        assert f["property_cases_in_time_rate"] == pytest.approx(1 / 2)  # rejected excluded
        assert f["median_days_to_conclude"] == 122  # 10, 60, 122, 122, 213

    def test_empty_period_is_refused(self) -> None:
        with pytest.raises(Exception, match="ends before"):
            ind.Period(date(2024, 2, 1), date(2024, 1, 1))


def test_median() -> None:
    from collections import Counter

    assert ind.median_days(Counter({5: 1})) == 5
    assert ind.median_days(Counter({1: 1, 3: 1})) == 2
    assert ind.median_days(Counter({1: 2, 9: 1})) == 1
    assert ind.median_days(Counter()) is None


def _days(c: Case) -> int:
    assert c.concluded_on is not None
    return (c.concluded_on - c.filed_on).days


def _brute_force(cases: list[Case], period: ind.Period) -> dict[str, Any]:
    """The same indicators by a plain loop over every case: the full recomputation."""
    def within(d: date | None) -> bool:
        return d is not None and period.start <= d <= period.end

    concluded = [c for c in cases if within(c.concluded_on)]
    prop = [c for c in concluded if c.conclusion in ind.PROPERTY_CONCLUSIONS]
    in_time = [c for c in prop if c.deadline_at_conclusion and c.concluded_on
               and c.concluded_on <= c.deadline_at_conclusion]
    open_start = [c for c in cases if c.filed_on < period.start
                  and (c.concluded_on is None or c.concluded_on >= period.start)]
    received = [c for c in cases if within(c.filed_on)]
    return {
        "received": len(received), "concluded": len(concluded),
        "conclusion_rate": (len(concluded) / (len(open_start) + len(received))
                            if open_start or received else None),
        "property_cases_in_time_rate": len(in_time) / len(prop) if prop else None,
        "average_days_to_conclude": (
            sum(_days(c) for c in concluded) / len(concluded) if concluded else None),
    }


def test_rollup_equals_full_recomputation(db: Session, test_db: Any) -> None:
    rng = random.Random(7)
    with transaction() as s:
        courts = list(s.scalars(select(Court.id)))
        for _ in range(400):
            filed = date(2023, 1, 1) + timedelta(days=rng.randrange(0, 700))
            done = rng.random() < 0.6
            concluded = filed + timedelta(days=rng.randrange(1, 400)) if done else None
            _case(s, rng.choice(courts), filed, concluded=concluded,
                  conclusion=rng.choice(list(Conclusion)) if done else None,
                  deadline=filed + timedelta(days=rng.randrange(150, 250)) if done else None)
    all_cases = list(db.scalars(select(Case)))
    expected = _brute_force(all_cases, YEAR)
    got = _figures(db, courts)
    for key, value in expected.items():
        assert got[key] == pytest.approx(value), key
    with transaction() as s:
        s.execute(delete(CaseFact))


class TestPreAggregation:
    def test_rebuild_and_incremental_agree_with_direct(self, db: Session, test_db: Any) -> None:
        rng = random.Random(11)
        with transaction() as s:
            courts = list(s.scalars(select(Court.id)))[:20]
            for _ in range(150):
                filed = date(2024, 1, 1) + timedelta(days=rng.randrange(0, 500))
                done = rng.random() < 0.5
                _case(s, rng.choice(courts), filed,
                      concluded=filed + timedelta(days=rng.randrange(1, 300)) if done else None,
                      conclusion=rng.choice(list(Conclusion)) if done else None,
                      deadline=filed + timedelta(days=200) if done else None,
                      facts=ALL_CONDITIONS if rng.random() < 0.5 else ())
        refresh()  # incremental: only the marked days
        periods = [YEAR, ind.Period(date(2024, 3, 5), date(2024, 3, 5)),
                   ind.Period(date(2023, 6, 1), date(2025, 6, 30))]
        for period in periods:
            fast = ind.components_by_court(db, courts, period, TODAY)
            direct = ind.components_direct(db, courts, period, TODAY)
            assert {c: (v.values, v.durations) for c, v in fast.items()} == {
                c: (v.values, v.durations) for c, v in direct.items()}
        with transaction() as s:
            written = aggregates.rebuild(s)
        assert written > 0
        rebuilt = ind.components_by_court(db, courts, YEAR, TODAY)
        direct = ind.components_direct(db, courts, YEAR, TODAY)
        assert {c: v.values for c, v in rebuilt.items()} == {c: v.values for c, v in
                                                             direct.items()}

    def test_a_change_during_a_refresh_is_not_lost(self, db: Session, test_db: Any) -> None:
        from zhixing.analytics.models import IndicatorDirty

        with transaction() as s:
            qx = _court(s, "桂0103")
            _case(s, qx, date(2024, 5, 6))
        with transaction() as s:
            marker = s.scalars(select(IndicatorDirty)).one()
            seen = marker.version
            aggregates.refresh_day(s, qx, date(2024, 5, 6))
            # another transaction changes the same day before this refresh commits
            aggregates.mark_changed(s, qx, date(2024, 5, 6))
            s.execute(delete(IndicatorDirty).where(IndicatorDirty.version == seen))
        left = db.scalars(select(IndicatorDirty)).all()
        assert [(m.court_id, m.day) for m in left] == [(qx, date(2024, 5, 6))]
