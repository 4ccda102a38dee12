"""The case's state machine: which transitions are legal, and what each conclusion requires.

Pure rules over a :class:`CaseView`, so every rule is testable without a database; the service
applies the :class:`Outcome` and records the history.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date

from dateutil.relativedelta import relativedelta

from zhixing.cases.models import CaseState, Conclusion
from zhixing.cases.statutory import RULES, StatutoryRules
from zhixing.core.errors import Conflict, ValidationFailed

S = CaseState
OPEN_STATES = frozenset({S.FILED, S.NOTICE_SERVED, S.INVESTIGATING, S.CONTROLLING,
                         S.DISPOSING, S.DISBURSING})

# Forward moves of the enforcement process; a case may go back to investigation when the
# property found does not cover the debt.
ADVANCES: dict[CaseState, frozenset[CaseState]] = {
    S.FILED: frozenset({S.NOTICE_SERVED}),
    S.NOTICE_SERVED: frozenset({S.INVESTIGATING}),
    S.INVESTIGATING: frozenset({S.CONTROLLING}),
    S.CONTROLLING: frozenset({S.DISPOSING, S.DISBURSING, S.INVESTIGATING}),
    S.DISPOSING: frozenset({S.DISBURSING, S.CONTROLLING}),
    S.DISBURSING: frozenset({S.INVESTIGATING, S.CONTROLLING}),
}

# Facts that entering a state establishes (recorded by the transition if not yet known).
FACTS_ON_ENTRY: dict[CaseState, tuple[str, ...]] = {
    S.NOTICE_SERVED: ("execution_notice", "property_report_order"),
    S.INVESTIGATING: ("asset_search_started",),
}

FACT_KINDS: tuple[str, ...] = (
    "officer_assigned", "execution_notice", "property_report_order", "asset_search_started",
    "network_query_done", "consumption_restriction", "dishonest_listing_decided",
    "debtor_search", "debtor_located", "applicant_interview", "panel_review",
    "audit_started", "valuation_started", "auction_started",
)

# 终结执行 grounds (CPL): applicant withdraws, title revoked, deceased debtor without estate or
# successor, maintenance creditor died, debtor destitute, other.
TERMINATION_GROUNDS = ("applicant_withdrew", "title_revoked", "debtor_died_no_estate",
                       "maintenance_creditor_died", "debtor_destitute", "other")
SUSPENSION_GROUNDS = ("applicant_agreed", "third_party_objection", "party_died_awaiting_heir",
                      "organisation_dissolved_awaiting_successor", "retrial", "bankruptcy",
                      "settlement", "other")

# 终本 conditions, each a code the refusal names when it is missing.
CLOSED_FOR_NOW_CONDITIONS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("execution_notice", ("execution_notice",)),
    ("property_report_order", ("property_report_order",)),
    ("consumption_restriction", ("consumption_restriction",)),
    ("dishonest_listing_decided", ("dishonest_listing_decided",)),
    ("network_query_done", ("network_query_done",)),
    ("debtor_search", ("debtor_search", "debtor_located")),
    ("applicant_interview_or_panel_review", ("applicant_interview", "panel_review")),
)


class TransitionRefused(Conflict):
    code = "transition_refused"


@dataclass(frozen=True)
class CaseView:
    state: CaseState
    filed_on: date
    facts: frozenset[str]
    outstanding_fen: int
    state_before_suspension: CaseState | None = None
    # When each fact happened; a fact dated after a decision does not support it.
    fact_dates: Mapping[str, date] = field(default_factory=dict)


@dataclass(frozen=True)
class Outcome:
    state: CaseState
    state_before_suspension: CaseState | None
    conclusion: Conclusion | None = None
    ground: str | None = None
    facts_established: tuple[str, ...] = ()
    pause_starts: bool = False
    pause_ends: bool = False


def missing_for_closed_for_now(view: CaseView, on: date,
                               rules: StatutoryRules = RULES) -> list[str]:
    """The 终本 conditions not met on ``on``: a fact counts only if it happened by then, and
    more than three months must have passed since filing."""
    def held(fact: str) -> bool:
        known = view.fact_dates.get(fact)
        return fact in view.facts and (known is None or known <= on)

    missing = [code for code, any_of in CLOSED_FOR_NOW_CONDITIONS
               if not any(held(f) for f in any_of)]
    if on <= view.filed_on + relativedelta(months=rules.closed_for_now_min_months):
        missing.append("three_months_since_filing")
    return missing


def advance(view: CaseView, target: CaseState) -> Outcome:
    if view.state not in OPEN_STATES:
        raise TransitionRefused(f"a {view.state} case cannot move to {target}",
                                details={"from": view.state, "to": target})
    if target not in ADVANCES.get(view.state, frozenset()):
        allowed = sorted(ADVANCES.get(view.state, frozenset()))
        raise TransitionRefused(f"cannot move from {view.state} to {target}",
                                details={"from": view.state, "to": target, "allowed": allowed})
    return Outcome(target, None, facts_established=FACTS_ON_ENTRY.get(target, ()))


def suspend(view: CaseView, ground: str) -> Outcome:
    if view.state not in OPEN_STATES:
        raise TransitionRefused(f"a {view.state} case cannot be suspended")
    if ground not in SUSPENSION_GROUNDS:
        raise ValidationFailed(f"unknown suspension ground {ground!r}", code="unknown_ground",
                               field="ground", details={"allowed": list(SUSPENSION_GROUNDS)})
    return Outcome(S.SUSPENDED, view.state, ground=ground, pause_starts=True)


def resume(view: CaseView) -> Outcome:
    if view.state != S.SUSPENDED or view.state_before_suspension is None:
        raise TransitionRefused("only a suspended case can be resumed")
    return Outcome(view.state_before_suspension, None, pause_ends=True)


def conclude(view: CaseView, conclusion: Conclusion, on: date, ground: str | None = None,
             rules: StatutoryRules = RULES) -> Outcome:
    if view.state == S.CONCLUDED:
        raise TransitionRefused("the case is already concluded")
    if on < view.filed_on:
        raise ValidationFailed("a case cannot conclude before it was filed",
                               code="date_before_filing", field="on")
    suspended = view.state == S.SUSPENDED
    if conclusion == Conclusion.PERFORMED:
        if suspended:
            raise TransitionRefused("resume the case before concluding it as performed")
        if view.outstanding_fen > 0:
            raise TransitionRefused("the debt is not fully recovered",
                                    code="outstanding_not_zero",
                                    details={"outstanding_fen": view.outstanding_fen})
    elif conclusion == Conclusion.CLOSED_FOR_NOW:
        if suspended or view.state in (S.FILED, S.NOTICE_SERVED):
            raise TransitionRefused("终本 needs an investigated case",
                                    details={"state": view.state})
        missing = missing_for_closed_for_now(view, on, rules)
        if missing:
            raise TransitionRefused(
                "终本 refused: conditions missing: " + ", ".join(missing),
                code="closed_for_now_conditions_missing", details={"missing": missing})
    elif conclusion == Conclusion.TERMINATED:
        if ground not in TERMINATION_GROUNDS:
            raise ValidationFailed("终结执行 needs one of the statutory grounds",
                                   code="unknown_ground", field="ground",
                                   details={"allowed": list(TERMINATION_GROUNDS)})
    elif not ground:
        raise ValidationFailed("state the reason for this conclusion", code="required",
                               field="ground")
    return Outcome(S.CONCLUDED, None, conclusion=conclusion, ground=ground,
                   pause_ends=suspended)
