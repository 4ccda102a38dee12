"""Demo cases: seeded through the services into a scratch database of their own.

The seed creates cases, parties and users that the shared test database's clean-up does not
remove, so this module makes its own database (SQLite or PostgreSQL, as the suite runs), points
the process at it for the seeding, and puts the shared engine back afterwards.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import pytest
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session, sessionmaker
from stdnum.cn import ric, uscc

import zhixing.core.db as core_db
from tests.support.database import ScratchDatabase, create_test_database
from zhixing.cases import lifecycle, service
from zhixing.cases.models import (
    Asset,
    Case,
    CaseFact,
    CaseParty,
    LedgerEntry,
    Party,
    ResponsiblePerson,
)
from zhixing.core.db import make_engine, set_engine
from zhixing.core.migrate import upgrade
from zhixing.core.security import verify_password
from zhixing.courts.models import Court, User, UserRole
from zhixing.courts.service import sync_courts
from zhixing.demo import DEMO_PASSWORD, DEMO_USERS, seed_users
from zhixing.demo_data.cases import (
    FIRST_FILING,
    SeedReport,
    officer_username,
    party_specs,
    plan_cases,
    seed_cases,
)

COUNT = 120


@dataclass
class Seeded:
    report: SeedReport
    engine: Engine
    today: date


@pytest.fixture(scope="module")
def seeded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Seeded]:
    scratch: ScratchDatabase = create_test_database(
        Path(tmp_path_factory.mktemp("demo_cases")), "demo_")
    saved: tuple[Engine | None, sessionmaker[Session] | None] = (
        core_db._engine, core_db._session_factory)
    engine = make_engine(scratch.url)
    try:
        set_engine(engine)
        upgrade(engine)
        with core_db.session_factory()() as session:
            sync_courts(session)
            seed_users(session)
            session.commit()
            report = seed_cases(session, count=COUNT, seed=2014)
        yield Seeded(report, engine, service.today())
    finally:
        core_db._engine, core_db._session_factory = saved
        engine.dispose()
        scratch.destroy()


@pytest.fixture
def s(seeded: Seeded) -> Iterator[Session]:
    with Session(seeded.engine) as session:
        yield session


def _case(s: Session, number: str) -> Case:
    case = s.scalar(select(Case).where(Case.case_number == number))
    assert case is not None, number
    return case


def _court_code(s: Session, case: Case) -> str:
    return s.scalar(select(Court.code).where(Court.id == case.court_id)) or ""


def _officer(s: Session, case: Case) -> str | None:
    return s.scalar(select(User.username).where(User.id == case.officer_id))


def _party_names(s: Session, case: Case, role: str) -> list[str]:
    return list(s.scalars(select(Party.name).join(CaseParty, CaseParty.party_id == Party.id)
                          .where(CaseParty.case_id == case.id, CaseParty.role == role)))


class TestReport:
    def test_counts_add_up(self, seeded: Seeded, s: Session) -> None:
        r = seeded.report
        assert r.cases == COUNT == s.scalar(select(func.count()).select_from(Case))
        assert sum(r.states.values()) == COUNT
        assert r.states["concluded"] == sum(r.conclusions.values())
        assert set(r.stories) == {"liu", "li", "zeng"}

    def test_a_realistic_mix(self, seeded: Seeded) -> None:
        r = seeded.report
        assert r.states["concluded"] > COUNT // 2
        for state in ("investigating", "controlling", "suspended"):
            assert r.states.get(state, 0) > 0, state
        for conclusion in ("performed", "closed_for_now", "terminated"):
            assert r.conclusions.get(conclusion, 0) > 0, conclusion
        assert 0 < r.overdue < COUNT // 4
        assert r.controlled_assets > 0
        assert r.recovered_fen >= r.disbursed_fen > 0


class TestStories:
    def test_liu_deposit_frozen_at_qingxiu(self, seeded: Seeded, s: Session) -> None:
        case = _case(s, seeded.report.liu_case)
        assert _court_code(s, case) == "桂0103"
        assert _officer(s, case) == "qingxiu.officer"
        assert case.state == "controlling"
        assert [n[0] for n in _party_names(s, case, "debtor")] == ["刘"]
        assets = s.scalars(select(Asset).where(Asset.case_id == case.id)).all()
        assert [(a.kind, a.control_state) for a in assets] == [("deposit", "frozen")]
        assert assets[0].holder is not None and "银行" in assets[0].holder

    def test_li_paid_in_full_at_liunan(self, seeded: Seeded, s: Session) -> None:
        case = _case(s, seeded.report.li_case)
        assert _court_code(s, case) == "桂0204"
        assert _officer(s, case) == "liunan.officer"
        assert (case.state, case.conclusion) == ("concluded", "performed")
        assert case.applied_fen >= 60_000_000
        assert case.recovered_fen == case.applied_fen == case.disbursed_fen
        assert [n[0] for n in _party_names(s, case, "debtor")] == ["李"]
        facts = {f.kind for f in s.scalars(select(CaseFact).where(CaseFact.case_id == case.id))}
        assert {"consumption_restriction", "dishonest_listing_decided"} <= facts

    def test_zeng_car_tipped_by_yang_in_liuzhou(self, seeded: Seeded, s: Session) -> None:
        case = _case(s, seeded.report.zeng_case)
        assert _court_code(s, case).startswith("桂02")
        assert case.state == "investigating"
        assert [n[0] for n in _party_names(s, case, "debtor")] == ["曾"]
        assert [n[0] for n in _party_names(s, case, "applicant")] == ["杨"]
        (car,) = s.scalars(select(Asset).where(Asset.case_id == case.id)).all()
        assert car.kind == "vehicle" and car.provenance == "tip"
        assert car.identifier is not None and car.identifier.startswith("桂C")


class TestRules:
    def test_identity_numbers_are_valid(self, s: Session) -> None:
        rows = s.execute(select(Party.kind, Party.id_kind, Party.id_number,
                                Party.id_region_unverified)).tuples().all()
        assert rows
        for kind, id_kind, number, unverified in rows:
            assert number is not None
            if kind == "person":
                assert id_kind == "ric" and ric.is_valid(number), number
                assert not unverified
            else:
                assert id_kind == "uscc" and uscc.is_valid(number), number

    def test_stored_deadlines_match_the_clock(self, seeded: Seeded, s: Session) -> None:
        for case in s.scalars(select(Case)):
            clock = service.clock_of(s, case, seeded.today)
            if case.state == "concluded":
                assert (case.period_deadline, case.next_due_on) == (None, None), case.case_number
                continue
            expected = clock.period.due_on if clock.period else None
            assert case.period_deadline == expected, case.case_number
            nxt = clock.next_due
            assert case.next_due_on == (nxt.due_on if nxt else None), case.case_number
            assert case.next_due_kind == (nxt.kind if nxt else None), case.case_number

    def test_closed_for_now_only_with_every_condition(self, s: Session) -> None:
        closed = s.scalars(select(Case).where(Case.conclusion == "closed_for_now")).all()
        assert closed
        for case in closed:
            assert case.concluded_on is not None
            facts = dict(s.execute(select(CaseFact.kind, CaseFact.on)
                                   .where(CaseFact.case_id == case.id)).tuples().all())
            view = lifecycle.CaseView(case.state, case.filed_on, frozenset(facts),
                                      case.outstanding_fen)
            assert lifecycle.missing_for_closed_for_now(view, case.concluded_on) == []
            # Every condition held on the day of the closure, not only later.
            assert max(facts.values()) <= case.concluded_on, case.case_number

    def test_money_never_exceeds_the_debt(self, s: Session) -> None:
        sums = {(cid, kind): int(total) for cid, kind, total in s.execute(
            select(LedgerEntry.case_id, LedgerEntry.kind, func.sum(LedgerEntry.amount_fen))
            .group_by(LedgerEntry.case_id, LedgerEntry.kind)).tuples()}
        for case in s.scalars(select(Case)):
            assert 0 <= case.disbursed_fen <= case.recovered_fen <= case.applied_fen
            assert case.outstanding_fen == case.applied_fen - case.recovered_fen >= 0
            assert sums.get((case.id, "recovered"), 0) == case.recovered_fen
            assert sums.get((case.id, "disbursed"), 0) == case.disbursed_fen
            if case.conclusion == "performed":
                assert case.outstanding_fen == 0

    def test_no_date_in_the_future_or_before_filing(self, seeded: Seeded, s: Session) -> None:
        today = seeded.today
        for case in s.scalars(select(Case)):
            assert FIRST_FILING <= case.filed_on <= today
            assert case.title_effective_date <= case.filed_on
            if case.concluded_on:
                assert case.filed_on <= case.concluded_on <= today
        for on, filed in s.execute(select(CaseFact.on, Case.filed_on)
                                   .join(Case, Case.id == CaseFact.case_id)).tuples():
            assert filed <= on <= today
        for on, filed in s.execute(select(LedgerEntry.on, Case.filed_on)
                                   .join(Case, Case.id == LedgerEntry.case_id)).tuples():
            assert filed <= on <= today

    def test_controls_within_their_lawful_period(self, s: Session) -> None:
        for asset in s.scalars(select(Asset).where(Asset.control_started_on.is_not(None))):
            assert asset.control_started_on is not None
            if asset.control_state in ("frozen", "sealed", "seized"):
                assert asset.control_expires_on is not None
                assert asset.control_expires_on > asset.control_started_on


class TestParties:
    def test_some_debtors_recur(self, s: Session) -> None:
        per_debtor = Counter(s.scalars(select(CaseParty.party_id)
                                       .where(CaseParty.role == "debtor")))
        assert max(per_debtor.values()) >= 2
        assert max(per_debtor.values()) <= 3

    def test_organisations_have_a_responsible_person(self, s: Session) -> None:
        orgs = s.scalars(select(Party).where(Party.kind == "organisation")).all()
        assert orgs
        for org in orgs:
            roles = {r.role for r in s.scalars(select(ResponsiblePerson).where(
                ResponsiblePerson.organisation_id == org.id))}
            # Companies name their legal representative, bank branches their principal.
            expected = "principal" if org.name.endswith("分行") else "legal_representative"
            assert expected in roles, org.name
            assert org.legal_representative


class TestOfficers:
    def test_every_court_has_an_officer(self, s: Session) -> None:
        courts = set(s.scalars(select(Court.id)))
        with_officer = set(s.scalars(select(User.court_id).join(
            UserRole, UserRole.user_id == User.id).where(UserRole.role == "officer")))
        assert courts == with_officer

    def test_bulk_officers_log_in_with_the_demo_password(self, s: Session) -> None:
        user = s.scalar(select(User).where(User.username == officer_username("桂0305")))
        assert user is not None
        assert verify_password(user.password_hash, DEMO_PASSWORD)
        hashes = set(s.scalars(select(User.password_hash)
                               .where(User.username.like("officer.%"))))
        assert len(hashes) == 1  # hashed once, reused

    def test_named_demo_users_unchanged(self, s: Session) -> None:
        for demo in DEMO_USERS:
            user = s.scalar(select(User).where(User.username == demo.username))
            assert user is not None
            assert user.display_name == demo.display_name
            assert sorted(r.value for r in user.roles) == sorted(demo.roles)

    def test_cases_are_handled_in_their_own_court(self, s: Session) -> None:
        wrong = s.scalar(select(func.count()).select_from(Case)
                         .join(User, User.id == Case.officer_id)
                         .where(User.court_id != Case.court_id))
        assert wrong == 0


class TestPlans:
    """The pure planner: no database, deterministic for a seed and a day."""

    DAY = date(2026, 6, 30)

    def test_same_seed_same_parties_and_histories(self) -> None:
        a = plan_cases(count=40, seed=7, today=self.DAY)
        b = plan_cases(count=40, seed=7, today=self.DAY)
        assert [(p.name, p.id_number) for p in party_specs(a)] == [
            (p.name, p.id_number) for p in party_specs(b)]
        assert [p.steps for p in a] == [p.steps for p in b]
        assert [p.create for p in a] == [p.create for p in b]

    def test_another_seed_other_parties(self) -> None:
        a = plan_cases(count=40, seed=7, today=self.DAY)
        c = plan_cases(count=40, seed=8, today=self.DAY)
        assert {p.id_number for p in party_specs(a)} != {p.id_number for p in party_specs(c)}

    def test_planned_identity_numbers_are_valid_and_distinct_per_party(self) -> None:
        people: dict[str, str] = {}
        for p in party_specs(plan_cases(count=200, seed=11, today=self.DAY)):
            if p.id_kind == "ric":
                assert ric.is_valid(p.id_number), p.id_number
            else:
                assert uscc.is_valid(p.id_number), p.id_number
            # One number, one name: a recurring party is the same party.
            assert people.setdefault(p.id_number, p.name) == p.name

    def test_nothing_planned_after_today(self) -> None:
        for plan in plan_cases(count=200, seed=3, today=self.DAY):
            assert plan.create.filed_on <= self.DAY
            dates = [step.on for step in plan.steps]
            assert all(plan.create.filed_on <= d <= self.DAY for d in dates)

    def test_at_least_the_three_stories(self) -> None:
        with pytest.raises(ValueError, match="three story"):
            plan_cases(count=2, today=self.DAY)
        stories = {p.story for p in plan_cases(count=3, today=self.DAY)}
        assert stories == {"liu", "li", "zeng"}
