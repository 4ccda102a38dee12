"""Every time limit of the command center, in one place.

RULES.md (Command center) gives the statutory figures for entrusted matters; the minutes and
hours of urgent work and the roll call's answer time are local practice, marked *unverified*:
defaults a court may change here, not law.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, time, timedelta

from zhixing.command.models import RequestKind, Urgency
from zhixing.core.clock import CHINA_TZ, to_local
from zhixing.credit.rules import add_working_days


@dataclass(frozen=True)
class Limits:
    # Roll call: each called center answers within this (unverified: local practice).
    roll_call_answer: timedelta = timedelta(minutes=10)
    roll_call_max: timedelta = timedelta(hours=2)
    # Urgent matters (a car seen now): acknowledge each hop within minutes, act within hours
    # (both unverified: local practice, e.g. the Zeng story's car seized within about an hour).
    urgent_acknowledge: timedelta = timedelta(minutes=10)
    urgent_act: timedelta = timedelta(hours=4)
    # Normal matters: each hop acknowledged within 1 working day (unverified), acted on within
    # the statutory days: RULES.md, entrusted matters (a whole-case entrustment is filed within
    # 7 days, started within 15, reported at 30); an item entrustment is given the 15 days to
    # start (unverified reading); a lead is verified within 7 days (RULES.md, Cases).
    normal_acknowledge_working_days: int = 1
    normal_act_days: int = 15
    verify_lead_days: int = 7
    entrustment_filing_days: int = 7  # whole-case entrustment (not modelled yet)
    entrustment_start_days: int = 15
    entrustment_report_days: int = 30
    # How often the sweep looks for overdue answers and hops.
    sweep_interval: timedelta = timedelta(minutes=1)
    # A clock shows amber when less than this share of its time is left.
    warn_share: float = 0.25
    # A video call rings this long at the called desk, then it is missed (local practice:
    # about as long as a telephone rings before it gives up).
    call_ring: timedelta = timedelta(seconds=60)
    # A connected call ends (failed) when one side's page has not read its stream this long:
    # the page reads it at least every 5 s and records it every CALL_PRESENCE_EVERY.
    call_lost: timedelta = timedelta(seconds=60)
    call_presence_every: timedelta = timedelta(seconds=10)


LIMITS = Limits()


def acknowledge_by(urgency: Urgency, sent_at: datetime, limits: Limits = LIMITS) -> datetime:
    if urgency == Urgency.URGENT:
        return sent_at + limits.urgent_acknowledge
    local = to_local(sent_at)
    day = add_working_days(local.date(), limits.normal_acknowledge_working_days)
    return datetime.combine(day, local.time(), CHINA_TZ).astimezone(sent_at.tzinfo)


def act_by(urgency: Urgency, kind: RequestKind, created_at: datetime,
           limits: Limits = LIMITS) -> datetime:
    if urgency == Urgency.URGENT:
        return created_at + limits.urgent_act
    days = limits.verify_lead_days if kind == RequestKind.VERIFY_LEAD else limits.normal_act_days
    # Statutory days end at the end of the day (China time).
    last = to_local(created_at).date() + timedelta(days=days)
    return datetime.combine(last, time(23, 59, 59), CHINA_TZ).astimezone(created_at.tzinfo)
