"""The statutory rules of the dishonest-debtor list and the restrictions, as pure functions
(RULES.md: Dishonest-debtor list, Consumption restriction). No database here: the services feed
facts in and act on the verdicts, and the tests walk every rule directly.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, timedelta
from functools import lru_cache

import holidays
from dateutil.relativedelta import relativedelta

GROUNDS = (1, 2, 3, 4, 5, 6)
FIXED_PERIOD_YEARS = 2  # grounds 2-6
EXTENSION_YEARS = (1, 2, 3)  # serious obstruction or repeated conduct
GRACE_MONTHS = (0, 1, 2, 3)  # optional wait before publication
REQUEST_DECISION_DAYS = 15  # an applicant's request is decided within 15 days
DELETION_WORKING_DAYS = 3
CORRECTION_REVIEW_DAYS = 15
HIGHER_REVIEW_REQUEST_DAYS = 10
HIGHER_REVIEW_DAYS = 15
REQUESTER_BLOCK_MONTHS = 6  # after deletion at the applicant's request
ADULT_AGE = 18


class Exclusion(enum.StrEnum):
    """Why a debtor may not be listed on ground 1 (RULES.md)."""

    FULL_SECURITY = "full_security"  # full security given
    PROPERTY_COVERS_DEBT = "property_covers_debt"  # property already controlled covers the debt
    NOT_YET_LIABLE = "not_yet_liable"  # not yet liable in the order of liability


class DeletionGround(enum.StrEnum):
    """The events after which a listing is deleted within 3 working days (RULES.md)."""

    FULL_PERFORMANCE = "full_performance"
    SETTLEMENT_PERFORMED = "settlement_performed"
    APPLICANT_REQUEST = "applicant_request"  # then no new request from that applicant for 6 months
    NOTHING_FOUND_AFTER_CLOSURE = "nothing_found_after_closure"  # 终本, two empty searches, no lead
    SUSPENDED_RETRIAL = "suspended_retrial"
    SUSPENDED_BANKRUPTCY = "suspended_bankruptcy"
    NOT_ENFORCED = "not_enforced"  # 不予执行
    TERMINATED = "terminated"  # 终结执行
    PERIOD_ENDED = "period_ended"
    ACTIVE_PERFORMANCE = "active_performance"  # early deletion for active performance


class LiftReason(enum.StrEnum):
    """Why a restriction ends (RULES.md, Consumption restriction)."""

    SECURITY = "security"  # may: effective security given
    APPLICANT_CONSENT = "applicant_consent"  # may
    FULL_PERFORMANCE = "full_performance"  # must
    LISTING_ENDED = "listing_ended"  # the listing it was issued with was deleted or revoked
    WRONG = "wrong"  # issued in error


@dataclass(frozen=True)
class Refusal:
    code: str
    message: str


def age_on(birth: date, on: date) -> int:
    return on.year - birth.year - ((on.month, on.day) < (birth.month, birth.day))


def listing_refusals(*, ground: int, is_person: bool, birth_date: date | None, on: date,
                     exclusions: Iterable[Exclusion | str] = ()) -> list[Refusal]:
    """Every reason the listing may not be made (empty: it may). A minor is never listed; a
    person whose age is unknown cannot be shown not to be a minor, so is refused too."""
    out: list[Refusal] = []
    if ground not in GROUNDS:
        out.append(Refusal("unknown_ground", "the ground must be one of 1 to 6"))
    if is_person:
        if birth_date is None:
            out.append(Refusal("age_unknown", "the debtor's birth date is unknown: a minor may "
                                              "never be listed"))
        elif age_on(birth_date, on) < ADULT_AGE:
            out.append(Refusal("minor", "a minor may never be listed"))
    if ground == 1:
        for ex in exclusions:
            ex = Exclusion(ex)
            out.append(Refusal(f"excluded_{ex}", {
                Exclusion.FULL_SECURITY: "full security has been given",
                Exclusion.PROPERTY_COVERS_DEBT: "property already controlled covers the debt",
                Exclusion.NOT_YET_LIABLE: "the debtor is not yet liable in the order of "
                                          "liability",
            }[ex]))
    return out


def check_extension(ground: int, years: int) -> None:
    if years and ground == 1:
        raise ValueError("ground 1 has no fixed period to extend")
    if years and years not in EXTENSION_YEARS:
        raise ValueError("an extension is 1 to 3 years")


def ends_on(ground: int, effective_on: date, extension_years: int = 0) -> date | None:
    """The end of the listing period: none for ground 1 (only a deletion event ends it);
    2 years (+ 1-3 years' extension) for grounds 2-6."""
    check_extension(ground, extension_years)
    if ground == 1:
        return None
    return effective_on + relativedelta(years=FIXED_PERIOD_YEARS + extension_years)


def publish_on(effective_on: date, grace_months: int) -> date:
    if grace_months not in GRACE_MONTHS:
        raise ValueError("a grace period is 0 to 3 months")
    return effective_on + relativedelta(months=grace_months)


def request_decide_by(received_on: date) -> date:
    return received_on + timedelta(days=REQUEST_DECISION_DAYS)


@lru_cache(maxsize=64)
def _calendar(year: int) -> holidays.HolidayBase:
    # The State Council's holiday notice, with the make-up working days (调休) on weekends.
    calendar: holidays.HolidayBase = holidays.country_holidays("CN", years=year)
    return calendar


def is_working_day(day: date) -> bool:
    return bool(_calendar(day.year).is_working_day(day))


def add_working_days(start: date, n: int) -> date:
    """The n-th working day after ``start`` (weekends and public holidays skipped, make-up
    working Saturdays and Sundays counted)."""
    day = start
    while n > 0:
        day += timedelta(days=1)
        if is_working_day(day):
            n -= 1
    return day


def deletion_due(detected_on: date) -> date:
    return add_working_days(detected_on, DELETION_WORKING_DAYS)


def correction_review_due(filed_on: date) -> date:
    return filed_on + timedelta(days=CORRECTION_REVIEW_DAYS)


def higher_review_request_by(decided_on: date) -> date:
    return decided_on + timedelta(days=HIGHER_REVIEW_REQUEST_DAYS)


def higher_review_due(requested_on: date) -> date:
    return requested_on + timedelta(days=HIGHER_REVIEW_DAYS)


def requester_blocked_until(deleted_on: date) -> date:
    return deleted_on + relativedelta(months=REQUESTER_BLOCK_MONTHS)


@dataclass(frozen=True)
class CaseFacts:
    """What the deletion rules need to know about the listing's case on a day."""

    conclusion: str | None  # performed, closed_for_now, terminated, not_enforced, …
    conclusion_ground: str | None
    suspension_ground: str | None  # when the case is suspended
    outstanding_fen: int
    empty_searches_after_closure: int  # network searches after 终本 that found nothing
    open_leads: int  # leads not yet checked (tips, assets found but not dealt with)


def deletion_event(facts: CaseFacts, *, ends: date | None, today: date) -> DeletionGround | None:
    """The deletion event a case's facts show, if any (the first in the order of RULES.md)."""
    if facts.conclusion == "performed" or facts.outstanding_fen <= 0:
        if facts.conclusion_ground == "settlement_performed":
            return DeletionGround.SETTLEMENT_PERFORMED
        return DeletionGround.FULL_PERFORMANCE
    if (facts.conclusion == "closed_for_now" and facts.empty_searches_after_closure >= 2
            and facts.open_leads == 0):
        return DeletionGround.NOTHING_FOUND_AFTER_CLOSURE
    if facts.suspension_ground == "retrial":
        return DeletionGround.SUSPENDED_RETRIAL
    if facts.suspension_ground == "bankruptcy":
        return DeletionGround.SUSPENDED_BANKRUPTCY
    if facts.conclusion == "not_enforced":
        return DeletionGround.NOT_ENFORCED
    if facts.conclusion == "terminated":
        return DeletionGround.TERMINATED
    if ends is not None and today >= ends:
        return DeletionGround.PERIOD_ENDED
    return None


# Deletion grounds an officer may invoke by hand (the others are detected from the case).
MANUAL_DELETION = (DeletionGround.APPLICANT_REQUEST, DeletionGround.ACTIVE_PERFORMANCE,
                   DeletionGround.SETTLEMENT_PERFORMED, DeletionGround.FULL_PERFORMANCE)
# Restrictions must be lifted on these; on the others they may be.
MUST_LIFT = (LiftReason.FULL_PERFORMANCE,)
