"""Every transition rule and conclusion condition, and random walks through the machine."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from zhixing.cases import lifecycle
from zhixing.cases.lifecycle import (
    ADVANCES,
    CLOSED_FOR_NOW_CONDITIONS,
    OPEN_STATES,
    CaseView,
    TransitionRefused,
)
from zhixing.cases.models import CaseState as S
from zhixing.cases.models import Conclusion as C
from zhixing.core.errors import ValidationFailed

FILED = date(2025, 1, 6)
LATER = FILED + timedelta(days=120)
ALL_FACTS = frozenset(f for _, any_of in CLOSED_FOR_NOW_CONDITIONS for f in any_of[:1])


def view(state: S = S.INVESTIGATING, facts: frozenset[str] = ALL_FACTS, outstanding: int = 100,
         before: S | None = None) -> CaseView:
    return CaseView(state, FILED, facts, outstanding, before)


class TestAdvance:
    # sorted: a frozenset's order depends on the process's hash seed, and xdist-style runners
    # (and reruns) need the same test ids in every process
    @pytest.mark.parametrize(("src", "dst"), [
        (s, d) for s, ds in ADVANCES.items() for d in sorted(ds)])
    def test_allowed_moves(self, src: S, dst: S) -> None:
        assert lifecycle.advance(view(src), dst).state is dst

    @pytest.mark.parametrize(("src", "dst"), [
        (s, d) for s in S for d in (S.NOTICE_SERVED, S.INVESTIGATING, S.CONTROLLING, S.DISPOSING,
                                    S.DISBURSING) if d not in ADVANCES.get(s, frozenset())])
    def test_every_other_move_is_refused(self, src: S, dst: S) -> None:
        with pytest.raises(TransitionRefused):
            lifecycle.advance(view(src), dst)

    def test_entering_states_establishes_facts(self) -> None:
        out = lifecycle.advance(view(S.FILED), S.NOTICE_SERVED)
        assert out.facts_established == ("execution_notice", "property_report_order")
        assert lifecycle.advance(view(S.NOTICE_SERVED), S.INVESTIGATING).facts_established == (
            "asset_search_started",)


class TestSuspension:
    @pytest.mark.parametrize("state", sorted(OPEN_STATES))
    def test_suspend_and_resume_returns_to_the_state(self, state: S) -> None:
        out = lifecycle.suspend(view(state), "bankruptcy")
        assert out.state is S.SUSPENDED and out.state_before_suspension is state
        assert out.pause_starts
        back = lifecycle.resume(view(S.SUSPENDED, before=state))
        assert back.state is state and back.pause_ends

    def test_unknown_ground(self) -> None:
        with pytest.raises(ValidationFailed) as info:
            lifecycle.suspend(view(), "bored")
        assert info.value.field == "ground"

    @pytest.mark.parametrize("state", [S.SUSPENDED, S.CONCLUDED])
    def test_cannot_suspend_twice_or_after_conclusion(self, state: S) -> None:
        with pytest.raises(TransitionRefused):
            lifecycle.suspend(view(state, before=S.FILED), "retrial")

    def test_resume_needs_a_suspension(self) -> None:
        with pytest.raises(TransitionRefused):
            lifecycle.resume(view(S.INVESTIGATING))


class TestConclusions:
    def test_performed_needs_nothing_outstanding(self) -> None:
        with pytest.raises(TransitionRefused) as info:
            lifecycle.conclude(view(outstanding=1), C.PERFORMED, LATER)
        assert info.value.code == "outstanding_not_zero"
        assert lifecycle.conclude(view(outstanding=0), C.PERFORMED, LATER).state is S.CONCLUDED

    def test_performed_not_while_suspended(self) -> None:
        with pytest.raises(TransitionRefused):
            lifecycle.conclude(view(S.SUSPENDED, outstanding=0, before=S.FILED), C.PERFORMED,
                               LATER)

    def test_closed_for_now_with_every_condition(self) -> None:
        out = lifecycle.conclude(view(), C.CLOSED_FOR_NOW, LATER)
        assert out.conclusion is C.CLOSED_FOR_NOW

    @pytest.mark.parametrize(("code", "any_of"), CLOSED_FOR_NOW_CONDITIONS)
    def test_closed_for_now_names_each_missing_condition(self, code: str,
                                                         any_of: tuple[str, ...]) -> None:
        facts = frozenset(f for f in ALL_FACTS if f not in any_of)
        with pytest.raises(TransitionRefused) as info:
            lifecycle.conclude(view(facts=facts), C.CLOSED_FOR_NOW, LATER)
        assert info.value.code == "closed_for_now_conditions_missing"
        assert info.value.details["missing"] == [code]

    @pytest.mark.parametrize("alternative", ["debtor_located", "panel_review"])
    def test_alternatives_satisfy_a_condition(self, alternative: str) -> None:
        base = {"debtor_located": "debtor_search", "panel_review": "applicant_interview"}
        facts = (ALL_FACTS - {base[alternative]}) | {alternative}
        lifecycle.conclude(view(facts=facts), C.CLOSED_FOR_NOW, LATER)

    def test_closed_for_now_needs_three_months(self) -> None:
        with pytest.raises(TransitionRefused) as info:
            lifecycle.conclude(view(), C.CLOSED_FOR_NOW, FILED + timedelta(days=80))
        assert info.value.details["missing"] == ["three_months_since_filing"]

    @pytest.mark.parametrize("state", [S.FILED, S.NOTICE_SERVED, S.SUSPENDED])
    def test_closed_for_now_needs_an_investigated_case(self, state: S) -> None:
        with pytest.raises(TransitionRefused):
            lifecycle.conclude(view(state, before=S.INVESTIGATING), C.CLOSED_FOR_NOW, LATER)

    @pytest.mark.parametrize("ground", lifecycle.TERMINATION_GROUNDS)
    def test_terminated_with_a_statutory_ground(self, ground: str) -> None:
        out = lifecycle.conclude(view(S.SUSPENDED, before=S.FILED), C.TERMINATED, LATER, ground)
        assert out.ground == ground and out.pause_ends

    def test_terminated_without_ground(self) -> None:
        with pytest.raises(ValidationFailed):
            lifecycle.conclude(view(), C.TERMINATED, LATER, "felt like it")

    @pytest.mark.parametrize("conclusion", [C.NOT_ENFORCED, C.REJECTED, C.WITHDRAWN_TRANSFER])
    def test_other_conclusions_need_a_reason(self, conclusion: C) -> None:
        with pytest.raises(ValidationFailed):
            lifecycle.conclude(view(S.FILED), conclusion, LATER)
        assert lifecycle.conclude(view(S.FILED), conclusion, LATER, "裁定").state is S.CONCLUDED

    def test_concluded_is_final(self) -> None:
        for conclusion in C:
            with pytest.raises(TransitionRefused):
                lifecycle.conclude(view(S.CONCLUDED), conclusion, LATER, "x")

    def test_not_before_filing(self) -> None:
        with pytest.raises(ValidationFailed):
            lifecycle.conclude(view(outstanding=0), C.PERFORMED, FILED - timedelta(days=1))


actions = st.one_of(
    st.tuples(st.just("advance"), st.sampled_from([S.NOTICE_SERVED, S.INVESTIGATING,
                                                   S.CONTROLLING, S.DISPOSING, S.DISBURSING])),
    st.tuples(st.just("suspend"), st.sampled_from(["bankruptcy", "retrial", "nonsense"])),
    st.tuples(st.just("resume"), st.none()),
    st.tuples(st.just("conclude"), st.sampled_from(list(C))),
    st.tuples(st.just("pay"), st.none()),
)


@settings(max_examples=300)
@given(st.lists(actions, max_size=25), st.sets(st.sampled_from(sorted(ALL_FACTS))))
def test_random_walks_keep_the_invariants(steps: list[tuple[str, object]],
                                          facts: set[str]) -> None:
    state, before, outstanding = S.FILED, None, 500
    known = set(facts)
    concluded_with: C | None = None
    for kind, arg in steps:
        v = CaseView(state, FILED, frozenset(known), outstanding, before)
        try:
            if kind == "advance":
                assert isinstance(arg, S)
                out = lifecycle.advance(v, arg)
            elif kind == "suspend":
                out = lifecycle.suspend(v, str(arg))
            elif kind == "resume":
                out = lifecycle.resume(v)
            elif kind == "conclude":
                assert isinstance(arg, C)
                out = lifecycle.conclude(v, arg, LATER, "other")
            else:
                outstanding = 0
                continue
        except (TransitionRefused, ValidationFailed):
            continue  # a refused step changes nothing
        assert state is not S.CONCLUDED, "nothing leaves the concluded state"
        if out.conclusion is C.PERFORMED:
            assert outstanding == 0
        if out.conclusion is C.CLOSED_FOR_NOW:
            assert not lifecycle.missing_for_closed_for_now(v, LATER)
        if out.state is S.SUSPENDED:
            assert out.state_before_suspension in OPEN_STATES
        if state is S.SUSPENDED and out.state is not S.CONCLUDED:
            assert out.state is before
        known.update(out.facts_established)
        state, before = out.state, out.state_before_suspension
        concluded_with = out.conclusion or concluded_with
        assert (state is S.CONCLUDED) == (concluded_with is not None)


class TestDatedConditions:
    def test_a_fact_after_the_closure_does_not_support_it(self) -> None:
        dates = dict.fromkeys(ALL_FACTS, FILED + timedelta(days=10))
        dates["applicant_interview"] = LATER + timedelta(days=1)
        v = CaseView(S.INVESTIGATING, FILED, ALL_FACTS, 100, None, fact_dates=dates)
        with pytest.raises(TransitionRefused) as info:
            lifecycle.conclude(v, C.CLOSED_FOR_NOW, LATER)
        assert info.value.details["missing"] == ["applicant_interview_or_panel_review"]

    def test_exactly_three_months_is_not_more_than_three(self) -> None:
        three = date(2025, 4, 6)  # FILED is 2025-01-06
        with pytest.raises(TransitionRefused) as info:
            lifecycle.conclude(view(), C.CLOSED_FOR_NOW, three)
        assert info.value.details["missing"] == ["three_months_since_filing"]
        lifecycle.conclude(view(), C.CLOSED_FOR_NOW, three + timedelta(days=1))
