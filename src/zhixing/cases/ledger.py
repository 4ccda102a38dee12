"""The property ledger: a debtor's assets in a case, their control, and the money.

The outstanding amount is derived (applied for − recovered), never typed. Control periods are
capped by asset kind (deposits 1 year, movables 2, real estate and other rights 3).
"""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from zhixing.cases import policy, statutory
from zhixing.cases.lifecycle import TransitionRefused
from zhixing.cases.models import (
    Asset,
    AssetKind,
    Case,
    CaseParty,
    CaseState,
    ControlState,
    LedgerEntry,
)
from zhixing.cases.schemas import AssetIn, ControlIn, MoneyIn
from zhixing.cases.service import event, refresh_clock, today
from zhixing.core import audit
from zhixing.core.actor import Actor
from zhixing.core.clock import utcnow
from zhixing.core.errors import Conflict, NotFound, ValidationFailed

# Which control each asset kind takes: deposits and rights are frozen, land sealed, cars seized.
CONTROL_FOR_KIND: dict[AssetKind, set[str]] = {
    AssetKind.DEPOSIT: {"freeze"},
    AssetKind.SECURITIES: {"freeze"},
    AssetKind.EQUITY: {"freeze"},
    AssetKind.REAL_ESTATE: {"seal"},
    AssetKind.VEHICLE: {"seal", "seize"},
    AssetKind.OTHER: {"freeze", "seal", "seize"},
}
_STATE_FOR_ACTION = {"freeze": ControlState.FROZEN, "seal": ControlState.SEALED,
                     "seize": ControlState.SEIZED}
UNDER_CONTROL = (ControlState.FROZEN, ControlState.SEALED, ControlState.SEIZED)


def _open(case: Case) -> None:
    if case.state == CaseState.CONCLUDED:
        raise TransitionRefused("the case is concluded", code="case_concluded")


def _role_of(session: Session, case: Case, party_id: int) -> str | None:
    return session.scalar(select(CaseParty.role).where(CaseParty.case_id == case.id,
                                                       CaseParty.party_id == party_id))


def add_asset(session: Session, actor: Actor, case: Case, body: AssetIn,
              *, provenance: str | None = None, source_ref: str | None = None) -> Asset:
    """Record an asset. Network query results (a later module) pass their own provenance."""
    policy.require_act(actor, case)
    _open(case)
    if _role_of(session, case, body.debtor_id) != "debtor":
        raise ValidationFailed("assets are recorded against a debtor of this case",
                               code="not_a_debtor", field="debtor_id")
    asset = Asset(case_id=case.id, debtor_id=body.debtor_id, kind=AssetKind(body.kind),
                  description=body.description.strip(), identifier=body.identifier,
                  holder=body.holder, value_fen=body.value_fen,
                  provenance=provenance or body.provenance, source_ref=source_ref,
                  control_state=ControlState.NONE, created_at=utcnow())
    session.add(asset)
    session.flush()
    event(session, case, actor, "asset", f"财产: {asset.description}", asset_id=asset.id,
          asset_kind=asset.kind, provenance=asset.provenance, value_fen=asset.value_fen)
    audit.record(session, actor, "case.asset_added", object_type="asset", object_id=asset.id,
                 court_id=case.court_id, case_id=case.id)
    return asset


def get_asset(session: Session, case: Case, asset_id: int) -> Asset:
    asset = session.get(Asset, asset_id)
    if asset is None or asset.case_id != case.id:
        raise NotFound(f"asset {asset_id} not found in this case", code="asset_not_found")
    return asset


def control(session: Session, actor: Actor, case: Case, asset_id: int, body: ControlIn) -> Asset:
    """Freeze, seal or seize an asset for a lawful period; renew before expiry; release."""
    policy.require_act(actor, case)
    if body.action not in ("renew", "release"):
        _open(case)  # controls outlive the case (a 终本 case keeps its freezes): renew, release
    asset = get_asset(session, case, asset_id)
    on = body.on
    if on > today() or on < case.filed_on:
        raise ValidationFailed("the control date must lie between filing and today",
                               code="invalid_date", field="on")
    limit = statutory.freeze_limit_days(asset.kind)
    days = body.days or limit
    if days > limit:
        raise ValidationFailed(f"a {asset.kind} may be controlled for at most {limit} days "
                               "per order", code="period_too_long", field="days")
    if body.action in _STATE_FOR_ACTION:
        if body.action not in CONTROL_FOR_KIND[asset.kind]:
            raise ValidationFailed(f"a {asset.kind} is not controlled by {body.action}",
                                   code="wrong_control_for_kind", field="action")
        if asset.control_state in UNDER_CONTROL:
            raise Conflict("the asset is already under control; renew or release it",
                           code="already_controlled")
        amount = body.amount_fen
        if asset.kind == AssetKind.DEPOSIT:
            if amount is None:
                raise ValidationFailed("a freeze of deposits states the amount",
                                       code="required", field="amount_fen")
            if amount > case.outstanding_fen:
                raise ValidationFailed("a freeze may not exceed the outstanding amount",
                                       code="exceeds_outstanding", field="amount_fen",
                                       details={"outstanding_fen": case.outstanding_fen})
        asset.control_state = _STATE_FOR_ACTION[body.action]
        asset.control_amount_fen = amount
        asset.control_started_on = on
        asset.control_expires_on = on + timedelta(days=days)
    elif body.action == "renew":
        if asset.control_state not in UNDER_CONTROL or asset.control_expires_on is None:
            raise Conflict("only a controlled asset can be renewed", code="not_controlled")
        if asset.control_expires_on < on:
            raise Conflict("the control lapsed; a new order is needed", code="control_lapsed")
        asset.control_expires_on = asset.control_expires_on + timedelta(days=days)
    else:  # release
        if asset.control_state not in UNDER_CONTROL:
            raise Conflict("the asset is not under control", code="not_controlled")
        asset.control_state = ControlState.RELEASED
        asset.control_expires_on = None
    event(session, case, actor, "control", f"{body.action}: {asset.description}",
          asset_id=asset.id, action=body.action, amount_fen=asset.control_amount_fen,
          expires_on=asset.control_expires_on.isoformat() if asset.control_expires_on else None)
    audit.record(session, actor, f"case.control.{body.action}", object_type="asset",
                 object_id=asset.id, court_id=case.court_id, case_id=case.id,
                 details={"amount_fen": body.amount_fen, "days": days})
    session.flush()
    return asset


def record_money(session: Session, actor: Actor, case: Case, body: MoneyIn) -> LedgerEntry:
    """执行到位 into the case account, or payment out to an applicant (一案一账号)."""
    policy.require_act(actor, case)
    _open(case)
    if body.on > today() or body.on < case.filed_on:
        raise ValidationFailed("the date must lie between filing and today",
                               code="invalid_date", field="on")
    if body.asset_id is not None:
        get_asset(session, case, body.asset_id)
    if body.kind == "recovered":
        if body.amount_fen > case.outstanding_fen:
            raise ValidationFailed("more than the outstanding amount cannot be recovered",
                                   code="exceeds_outstanding", field="amount_fen",
                                   details={"outstanding_fen": case.outstanding_fen})
        case.recovered_fen += body.amount_fen
    else:
        if body.party_id is None or _role_of(session, case, body.party_id) != "applicant":
            raise ValidationFailed("money is paid out to an applicant of this case",
                                   code="not_an_applicant", field="party_id")
        if body.amount_fen > case.recovered_fen - case.disbursed_fen:
            raise ValidationFailed("more than the money held for the case cannot be paid out",
                                   code="exceeds_held", field="amount_fen",
                                   details={"held_fen": case.recovered_fen - case.disbursed_fen})
        case.disbursed_fen += body.amount_fen
    entry = LedgerEntry(case_id=case.id, kind=body.kind, amount_fen=body.amount_fen, on=body.on,
                        asset_id=body.asset_id, party_id=body.party_id, note=body.note,
                        recorded_by=actor.user_id, recorded_at=utcnow())
    session.add(entry)
    session.flush()
    event(session, case, actor, "money", f"{body.kind}: {body.amount_fen / 100:,.2f} 元",
          entry_id=entry.id, money_kind=body.kind, amount_fen=body.amount_fen)
    audit.record(session, actor, f"case.money.{body.kind}", object_type="ledger_entry",
                 object_id=entry.id, court_id=case.court_id, case_id=case.id,
                 details={"amount_fen": body.amount_fen})
    refresh_clock(session, case)
    return entry


def expiring_controls(session: Session, court_ids: frozenset[int], within_days: int,
                      officer_id: int | None = None, limit: int = 50) -> list[tuple[Asset, Case]]:
    """Controls that lapse soon: renew them or the applicant loses the property."""
    horizon = today() + timedelta(days=within_days)
    stmt = (select(Asset, Case).join(Case, Case.id == Asset.case_id)
            .where(Asset.control_state.in_(UNDER_CONTROL), Asset.control_expires_on <= horizon,
                   Asset.control_expires_on >= today(),
                   Case.court_id.in_(court_ids))
            .order_by(Asset.control_expires_on).limit(limit))
    if officer_id is not None:
        stmt = stmt.where(Case.officer_id == officer_id)
    return [(a, c) for a, c in session.execute(stmt).tuples()]


