"""Reward offers (悬赏): the applicant asks, the court decides within 10 days and publishes;
the reward comes out of the applicant's recovery, goes to tipsters ranked by submission time,
and never to the applicant's agent."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from zhixing.cases.models import Case, CaseParty
from zhixing.cases.service import event
from zhixing.core import audit
from zhixing.core.actor import Actor
from zhixing.core.clock import utcnow
from zhixing.core.errors import Conflict, Forbidden, NotFound, ValidationFailed
from zhixing.field import policy
from zhixing.field.models import (
    RewardAward,
    RewardOffer,
    RewardStatus,
    Tip,
    TipOutcome,
    TipStatus,
    TipsterRelation,
)

DECIDE_DAYS = 10  # RULES.md: reward offers decided within 10 days
MAX_PERCENT_BP = 10_000
REWARDED_OUTCOMES = (TipOutcome.CONFIRMED, TipOutcome.PARTLY)


def _require_case_court(actor: Actor, case: Case, roles: tuple[str, ...], what: str) -> None:
    if not actor.can_see_court(case.court_id):
        raise NotFound("case not found", code="case_not_found")
    if actor.court_id != case.court_id or not actor.has_role(*roles):
        raise Forbidden(f"only the case's court may {what}", code="role_forbidden")


def request_offer(session: Session, actor: Actor, case: Case, applicant_party_id: int,
                  amount_fen: int | None, percent_bp: int | None) -> RewardOffer:
    """Registers the applicant's request (taken by an officer of the case's court)."""
    _require_case_court(actor, case, policy.REWARD_ROLES, "register reward requests")
    if (amount_fen is None) == (percent_bp is None):
        raise ValidationFailed("give an amount or a percentage of the recovery, not both",
                               code="amount_or_percent", field="amount_fen")
    if amount_fen is not None and amount_fen <= 0:
        raise ValidationFailed("the amount must be positive", code="invalid_amount",
                               field="amount_fen")
    if percent_bp is not None and not 0 < percent_bp <= MAX_PERCENT_BP:
        raise ValidationFailed("the percentage is between 0.01% and 100%",
                               code="invalid_percent", field="percent_bp")
    if session.get(CaseParty, (case.id, applicant_party_id, "applicant")) is None:
        raise ValidationFailed("not an applicant of this case", code="not_an_applicant",
                               field="applicant_party_id")
    open_offer = session.scalar(select(RewardOffer.id).where(
        RewardOffer.case_id == case.id,
        RewardOffer.status.in_((RewardStatus.REQUESTED, RewardStatus.PUBLISHED))))
    if open_offer is not None:
        raise Conflict("the case already has an open reward offer", code="offer_exists")
    now = utcnow()
    offer = RewardOffer(case_id=case.id, court_id=case.court_id,
                        applicant_party_id=applicant_party_id, amount_fen=amount_fen,
                        percent_bp=percent_bp, requested_at=now,
                        decide_by=now + timedelta(days=DECIDE_DAYS),
                        status=RewardStatus.REQUESTED, created_by=actor.user_id)
    session.add(offer)
    session.flush()
    event(session, case, actor, "reward_requested", "悬赏申请", offer_id=offer.id)
    audit.record(session, actor, "reward.requested", object_type="reward_offer",
                 object_id=offer.id, court_id=case.court_id, case_id=case.id)
    return offer


def get(session: Session, actor: Actor, offer_id: int) -> RewardOffer:
    offer = session.get(RewardOffer, offer_id)
    if offer is None or not actor.can_see_court(offer.court_id):
        raise NotFound(f"reward offer {offer_id} not found", code="offer_not_found")
    policy.require_role(actor, policy.READ_ROLES, "read reward offers")
    return offer


def is_decision_overdue(offer: RewardOffer) -> bool:
    return offer.status == RewardStatus.REQUESTED and utcnow() > offer.decide_by


def decide(session: Session, actor: Actor, offer: RewardOffer, approve: bool,
           note: str | None) -> RewardOffer:
    case = session.get(Case, offer.case_id)
    assert case is not None
    _require_case_court(actor, case, ("approver",), "decide reward offers")
    if offer.status != RewardStatus.REQUESTED:
        raise Conflict(f"the offer is already {offer.status.value}", code="already_decided")
    now = utcnow()
    offer.status = RewardStatus.PUBLISHED if approve else RewardStatus.REFUSED
    offer.decided_at = now
    offer.decided_by = actor.user_id
    offer.decision_note = note
    if approve:
        offer.published_at = now
    session.flush()
    event(session, case, actor, "reward_decided", "悬赏发布" if approve else "悬赏不予准许",
          offer_id=offer.id, late=now > offer.decide_by)
    audit.record(session, actor, "reward.decided", object_type="reward_offer",
                 object_id=offer.id, court_id=case.court_id, case_id=case.id,
                 details={"approve": approve, "late": now > offer.decide_by})
    return offer


@dataclass(frozen=True)
class Ranked:
    rank: int
    tip: Tip
    eligible: bool
    reason: str | None  # why not eligible


def ranking(session: Session, offer: RewardOffer) -> list[Ranked]:
    """Tips on the offer's case after publication, by submission time: first come first."""
    tips = session.scalars(select(Tip).where(Tip.case_id == offer.case_id)
                           .order_by(Tip.submitted_at, Tip.id)).all()
    merged = session.scalars(select(Tip).where(
        Tip.merged_into_id.in_([t.id for t in tips]), Tip.case_id.is_(None))).all()
    out: list[Ranked] = []
    for tip in sorted([*tips, *merged], key=lambda t: (t.submitted_at, t.id)):
        root = tip if tip.merged_into_id is None else next(
            (t for t in tips if t.id == tip.merged_into_id), tip)
        reason = None
        if tip.tipster_relation == TipsterRelation.APPLICANT_AGENT:
            reason = "applicant_agent"
        elif root.status != TipStatus.CHECKED or root.outcome not in REWARDED_OUTCOMES:
            reason = "not_confirmed"
        out.append(Ranked(len(out) + 1, tip, reason is None, reason))
    return out


def reward_amount(offer: RewardOffer, recovered_fen: int) -> int:
    """Out of the applicant's recovery: never more than was recovered."""
    if offer.amount_fen is not None:
        return min(offer.amount_fen, recovered_fen)
    assert offer.percent_bp is not None
    return recovered_fen * offer.percent_bp // MAX_PERCENT_BP


def award(session: Session, actor: Actor, offer: RewardOffer, tip_id: int) -> RewardAward:
    case = session.get(Case, offer.case_id)
    assert case is not None
    _require_case_court(actor, case, ("approver",), "award rewards")
    if offer.status != RewardStatus.PUBLISHED:
        raise Conflict(f"the offer is {offer.status.value}", code="offer_not_published")
    ranked = ranking(session, offer)
    entry = next((r for r in ranked if r.tip.id == tip_id), None)
    if entry is None:
        raise ValidationFailed("the tip is not about this case", code="tip_not_on_case",
                               field="tip_id")
    if entry.reason == "applicant_agent":
        raise Conflict("no reward to the applicant's agent", code="applicant_agent")
    if not entry.eligible:
        raise Conflict("the tip was not confirmed", code="tip_not_confirmed")
    first = next(r for r in ranked if r.eligible)
    if first.tip.id != tip_id:
        raise Conflict(f"tip {first.tip.id} was submitted earlier", code="not_first_in_rank",
                       details={"first": first.tip.id})
    recovered = case.recovered_fen
    if recovered <= 0:
        raise Conflict("nothing has been recovered yet", code="nothing_recovered")
    now = utcnow()
    row = RewardAward(offer_id=offer.id, tip_id=tip_id, amount_fen=reward_amount(offer, recovered),
                      recovered_fen=recovered, awarded_at=now, awarded_by=actor.user_id)
    session.add(row)
    offer.status = RewardStatus.AWARDED
    session.flush()
    event(session, case, actor, "reward_awarded", f"悬赏兑现 线索 #{tip_id}",
          offer_id=offer.id, tip_id=tip_id, amount_fen=row.amount_fen)
    audit.record(session, actor, "reward.awarded", object_type="reward_offer",
                 object_id=offer.id, court_id=case.court_id, case_id=case.id,
                 details={"tip_id": tip_id, "amount_fen": row.amount_fen})
    return row


def published(session: Session, limit: int = 50) -> list[tuple[RewardOffer, Case]]:
    return [(o, c) for o, c in session.execute(
        select(RewardOffer, Case).join(Case, Case.id == RewardOffer.case_id)
        .where(RewardOffer.status == RewardStatus.PUBLISHED)
        .order_by(RewardOffer.published_at.desc()).limit(limit)).tuples()]
