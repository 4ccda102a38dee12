"""Control orders sent online: freeze, renewal, release, deduction, seal — each applied once.

Orders on one asset form a chain (protocol section 7). An order's place in the chain
(``sequence`` and the order it supersedes) is fixed when it is *sent*, and only one order of a
chain is ever with the unit at a time: a later order waits until the one before it has been
applied, so a release can never overtake the freeze it releases. The asset row is locked while
a chain moves, and a partial unique index on ``(chain_id, sequence)`` over sent and applied
orders makes a second order at the same place impossible even if that reasoning had a hole.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from zhixing.cases import policy
from zhixing.cases.ledger import get_asset
from zhixing.cases.models import (
    Asset,
    AssetKind,
    Case,
    CaseState,
    ControlState,
    LedgerEntry,
    Party,
)
from zhixing.cases.service import event, refresh_clock
from zhixing.core import audit
from zhixing.core.actor import SYSTEM, Actor
from zhixing.core.clock import utcnow
from zhixing.core.db import lock_for_update
from zhixing.core.errors import Conflict, Forbidden, NotFound, ValidationFailed
from zhixing.courts.models import Court, User
from zhixing.linkage import messages, wire
from zhixing.linkage.inquiries import notify_push
from zhixing.linkage.models import (
    OPEN_ORDER,
    STANDING_ORDER,
    ControlOrder,
    DeliveryMode,
    LinkageTask,
    LinkageUnit,
    OrderStatus,
    TaskStatus,
)

OrderKind = Literal["freeze", "seal", "renew_freeze", "release", "deduct"]
WIRE_ASSET: dict[AssetKind, str] = {
    AssetKind.DEPOSIT: "deposit_account",
    AssetKind.SECURITIES: "securities_account",
    AssetKind.EQUITY: "equity",
    AssetKind.REAL_ESTATE: "real_estate",
    AssetKind.VEHICLE: "vehicle",
    AssetKind.OTHER: "other_right",
}
WATCH_PURPOSE = "冻结被执行人账户新到账资金（已冻结账户的持续冻结）"


class OrderIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    kind: OrderKind
    amount_fen: int | None = Field(default=None, ge=1, le=wire.MAX_FEN)
    period_days: int | None = Field(default=None, ge=1, le=1095)
    document_number: str = Field(min_length=1, max_length=64,
                                 description="the ruling / assistance notice number")
    purpose: str = Field(max_length=255)
    legal_basis: str = Field(max_length=255)
    request_key: str | None = Field(default=None, pattern=r"^[A-Za-z0-9_-]{8,64}$",
                                    description="idempotency key: the same key returns the "
                                    "same order instead of making a second one")

    @field_validator("purpose", "legal_basis", "document_number")
    @classmethod
    def _text(cls, value: str) -> str:
        value = " ".join(value.split())
        if len(value) < 2:
            raise ValueError("must not be blank")
        return value


class DecisionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    approve: bool
    note: str | None = Field(default=None, max_length=255)


# --- reading chains ----------------------------------------------------------------------------


def _chain_orders(session: Session, chain_id: str) -> list[ControlOrder]:
    return list(session.scalars(select(ControlOrder).where(ControlOrder.chain_id == chain_id)
                                .order_by(ControlOrder.id)))


def active_chain(session: Session, asset_id: int) -> str | None:
    """The freeze or seal that holds the asset now (sent or applied, not released)."""
    return session.scalar(
        select(ControlOrder.chain_id).where(
            ControlOrder.asset_id == asset_id, ControlOrder.chain_id == ControlOrder.task_id,
            ControlOrder.kind.in_(("freeze", "seal")), ControlOrder.released.is_(False),
            ControlOrder.status.in_((OrderStatus.SENT, *STANDING_ORDER)))
        .order_by(ControlOrder.id.desc()).limit(1))


def _last_applied(orders: list[ControlOrder]) -> ControlOrder | None:
    applied = [o for o in orders if o.status in STANDING_ORDER and o.sequence]
    return max(applied, key=lambda o: o.sequence) if applied else None


def frozen_money_fen(session: Session, case_id: int) -> int:
    """Money frozen for the case now, over all its deposit assets."""
    total = session.scalar(select(func.sum(Asset.control_amount_fen)).where(
        Asset.case_id == case_id, Asset.kind == AssetKind.DEPOSIT,
        Asset.control_state == ControlState.FROZEN))
    return int(total or 0)


# --- creating ----------------------------------------------------------------------------------


def _unit_for(session: Session, asset: Asset, kind: str) -> LinkageUnit:
    if asset.unit_id is None:
        raise Conflict("this asset was not found through a linked unit; control it at the "
                       "counter and record it on the asset", code="asset_not_online")
    unit = session.get(LinkageUnit, asset.unit_id)
    assert unit is not None
    if not unit.enabled:
        raise Conflict(f"{unit.name_zh} is switched off", code="unit_disabled")
    if kind == "deduct" and not unit.online_deduct:
        raise Conflict(f"{unit.name_zh} does not deduct online: it is a counter task (柜台扣划)",
                       code="online_unsupported")
    if kind not in unit.control_kinds:
        raise Conflict(f"{unit.name_zh} does not take {kind} orders online",
                       code="unit_unsupported")
    return unit


def wire_asset_type(session: Session, asset: Asset) -> str:
    """The protocol's asset type: a bank account found by a query may be a wealth product,
    which the bank freezes as such (and never deducts online)."""
    if asset.kind == AssetKind.DEPOSIT and asset.source_ref:
        result = session.scalar(select(LinkageTask.result).where(
            LinkageTask.task_id == asset.source_ref))
        payload = (result or {}).get("payload") or {}
        for account in payload.get("accounts") or ():
            if account.get("account_number") == asset.identifier:
                return "wealth_product" if account.get("account_type") == "wealth_product" \
                    else "deposit_account"
    return WIRE_ASSET[asset.kind]


def _check_amounts(session: Session, case: Case, asset: Asset, body: OrderIn,
                   chain: str | None) -> None:
    asset_type = wire_asset_type(session, asset)
    limit = wire.MAX_PERIOD_DAYS[asset_type]
    if body.kind in ("freeze", "seal", "renew_freeze"):
        if (body.period_days or limit) > limit:
            raise ValidationFailed(f"a {asset.kind} is held for at most {limit} days per order",
                                   code="period_too_long", field="period_days")
    elif body.period_days is not None:
        raise ValidationFailed(f"a {body.kind} has no period", code="not_allowed",
                               field="period_days")
    if body.kind == "freeze" and asset_type not in wire.FREEZABLE:
        raise ValidationFailed(f"a {asset.kind} is sealed, not frozen", code="wrong_control",
                               field="kind")
    if body.kind == "seal" and asset_type not in wire.SEALABLE:
        raise ValidationFailed(f"a {asset.kind} is frozen, not sealed", code="wrong_control",
                               field="kind")
    money = asset.kind == AssetKind.DEPOSIT
    if body.kind in ("freeze", "deduct"):
        if money and body.amount_fen is None:
            raise ValidationFailed(f"a {body.kind} of money states the amount", code="required",
                                   field="amount_fen")
        if body.kind == "deduct" and asset_type != "deposit_account":
            raise ValidationFailed("only deposit accounts are deducted online",
                                   code="wrong_control", field="kind")
    if body.kind == "freeze" and body.amount_fen is not None:
        room = case.outstanding_fen - frozen_money_fen(session, case.id)
        if body.amount_fen > room:
            raise ValidationFailed("a freeze may not exceed the outstanding amount less what is "
                                   "already frozen", code="exceeds_outstanding",
                                   field="amount_fen", details={"room_fen": max(room, 0)})
    if body.kind == "deduct" and body.amount_fen is not None:
        if body.amount_fen > case.outstanding_fen:
            raise ValidationFailed("a deduction may not exceed the outstanding amount",
                                   code="exceeds_outstanding", field="amount_fen",
                                   details={"outstanding_fen": case.outstanding_fen})
        if chain is not None and body.amount_fen > (asset.control_amount_fen or 0):
            raise ValidationFailed("a deduction from a frozen account takes at most the frozen "
                                   "amount", code="exceeds_frozen", field="amount_fen",
                                   details={"frozen_fen": asset.control_amount_fen or 0})
    if body.kind == "release" and body.amount_fen is not None and asset.control_amount_fen \
            and body.amount_fen > asset.control_amount_fen:
        raise ValidationFailed("more than is frozen cannot be released", code="exceeds_frozen",
                               field="amount_fen")


def create(session: Session, actor: Actor, case: Case, asset_id: int, body: OrderIn,
           *, origin: str = "officer") -> ControlOrder:
    if origin == "officer":
        policy.require_act(actor, case)
    # Controls outlive the case (a 终本 case keeps its freezes): renew and release them.
    if body.kind not in ("renew_freeze", "release") and case.state in (CaseState.CONCLUDED,
                                                                       CaseState.SUSPENDED):
        raise Conflict(f"the case is {case.state}", code=f"case_{case.state}")
    asset = get_asset(session, case, asset_id)
    # Orders on one asset queue here; a second submit of the same request (a double click
    # racing the first) then finds the first one committed.
    lock_for_update(session, Asset, asset.id)
    if body.request_key is not None:
        existing = session.scalar(select(ControlOrder).where(
            ControlOrder.case_id == case.id, ControlOrder.request_key == body.request_key))
        if existing is not None:
            if (existing.asset_id, existing.kind, existing.amount_fen) != (
                    asset_id, body.kind, body.amount_fen):
                raise Conflict("this request_key was used for another order",
                               code="request_key_reused")
            return existing
    unit = _unit_for(session, asset, body.kind)
    chain = active_chain(session, asset.id)
    if body.kind in ("freeze", "seal") and chain is not None and origin != "watch":
        raise Conflict("the asset is already frozen or sealed; renew or release it",
                       code="already_controlled")
    if body.kind in ("renew_freeze", "release") and chain is None:
        raise Conflict("the asset is not frozen or sealed online", code="not_controlled")
    if body.kind == "deduct" and chain is not None:
        pending = [o for o in _chain_orders(session, chain) if o.status in OPEN_ORDER
                   and o.task_id != chain]
        if pending:
            raise Conflict("another order on this asset is still in progress",
                           code="order_in_progress")
    _check_amounts(session, case, asset, body, chain)
    if chain is not None and body.kind in ("renew_freeze", "release", "deduct") and any(
            o.status in (OrderStatus.WAITING, OrderStatus.AWAITING_APPROVAL)
            for o in _chain_orders(session, chain)):
        raise Conflict("another order on this asset is still waiting", code="order_in_progress")
    task_id = messages.new_task_id()
    starts_chain = body.kind in ("freeze", "seal") or (body.kind == "deduct" and chain is None)
    period = body.period_days
    if body.kind in ("freeze", "seal", "renew_freeze") and period is None:
        period = wire.MAX_PERIOD_DAYS[wire_asset_type(session, asset)]
    order = ControlOrder(
        task_id=task_id, case_id=case.id, court_id=case.court_id, asset_id=asset.id,
        unit_id=unit.id, party_id=asset.debtor_id, kind=body.kind,
        chain_id=task_id if starts_chain else chain, sequence=0,
        amount_fen=body.amount_fen, period_days=period,
        document_number=body.document_number, purpose=body.purpose,
        legal_basis=body.legal_basis, origin=origin, request_key=body.request_key,
        status=(OrderStatus.AWAITING_APPROVAL if body.kind == "deduct" and origin != "watch"
                else OrderStatus.WAITING),
        requested_by=actor.user_id, requested_at=utcnow(), released=False)
    try:
        with session.begin_nested():
            session.add(order)
            session.flush()
    except IntegrityError:
        # The same request key raced in on another asset of the case: the first one stands.
        raise Conflict("this request_key was used for another order",
                       code="request_key_reused") from None
    if order.status == OrderStatus.WAITING:
        advance_chain(session, order.chain_id)
    event(session, case, actor if actor.kind == "user" else None, "order",
          f"{_LABEL[body.kind]}: {asset.description}" + (
              f" {body.amount_fen / 100:,.2f} 元" if body.amount_fen else ""),
          order_id=order.id, asset_id=asset.id, order_kind=body.kind, origin=origin)
    audit.record(session, actor, f"linkage.order.{body.kind}", object_type="control_order",
                 object_id=order.id, court_id=case.court_id, case_id=case.id,
                 purpose=body.purpose, details={
                     "legal_basis": body.legal_basis, "asset_id": asset.id,
                     "amount_fen": body.amount_fen, "period_days": period,
                     "document_number": body.document_number, "origin": origin})
    return order


_LABEL = {"freeze": "网络冻结", "seal": "网络查封", "renew_freeze": "续冻", "release": "解除",
          "deduct": "网络扣划"}


def decide(session: Session, actor: Actor, case: Case, order_id: int, body: DecisionIn
           ) -> ControlOrder:
    """The second person's sign-off on a deduction (审批)."""
    policy.require_approve(actor, case)
    order = get_order(session, case, order_id)
    if order.status != OrderStatus.AWAITING_APPROVAL:
        raise Conflict("the order is not awaiting approval", code="not_awaiting_approval")
    if body.approve and order.requested_by == actor.user_id:
        # Declining one's own request is withdrawing it; approving it would be one person.
        raise Forbidden("a deduction is approved by someone other than who asked for it",
                        code="same_person")
    lock_for_update(session, Asset, order.asset_id)
    order.approved_by, order.approved_at = actor.user_id, utcnow()
    order.decision_note = body.note
    if body.approve:
        if order.amount_fen and order.amount_fen > case.outstanding_fen:
            raise Conflict("the outstanding amount fell below the deduction; decline it and "
                           "ask again", code="exceeds_outstanding")
        order.status = OrderStatus.WAITING
        advance_chain(session, order.chain_id)
    else:
        order.status = OrderStatus.DECLINED
    event(session, case, actor, "order_decision",
          f"扣划审批: {'同意' if body.approve else '不同意'}", order_id=order.id)
    audit.record(session, actor, "linkage.order.approved" if body.approve
                 else "linkage.order.declined", object_type="control_order",
                 object_id=order.id, court_id=case.court_id, case_id=case.id,
                 details={"note": body.note})
    return order


def get_order(session: Session, case: Case, order_id: int) -> ControlOrder:
    order = session.get(ControlOrder, order_id)
    if order is None or order.case_id != case.id:
        raise NotFound(f"order {order_id} not found in this case", code="order_not_found")
    return order


def list_orders(session: Session, case: Case) -> list[ControlOrder]:
    return list(session.scalars(select(ControlOrder).where(ControlOrder.case_id == case.id)
                                .order_by(ControlOrder.id.desc()).limit(200)))


# --- moving a chain ----------------------------------------------------------------------------


def advance_chain(session: Session, chain_id: str) -> None:
    """Send the chain's waiting order if nothing of the chain is with the unit; cancel it if
    there is nothing left for it to follow."""
    orders = _chain_orders(session, chain_id)
    if any(o.status == OrderStatus.SENT for o in orders):
        return
    waiting = [o for o in orders if o.status == OrderStatus.WAITING]
    if not waiting:
        return
    order = waiting[0]
    if order.task_id == chain_id:
        _send(session, order, None)
        return
    before = _last_applied(orders)
    start = next((o for o in orders if o.task_id == chain_id), None)
    if before is None or start is None or start.released:
        order.status = OrderStatus.CANCELLED
        order.refusal_message = "the order it follows was not applied"
        return
    _send(session, order, before)


def _send(session: Session, order: ControlOrder, before: ControlOrder | None) -> None:
    case = session.get(Case, order.case_id)
    asset = session.get(Asset, order.asset_id)
    party = session.get(Party, order.party_id)
    court = session.get(Court, order.court_id)
    unit = session.get(LinkageUnit, order.unit_id)
    assert case and asset and party and court and unit
    user = session.get(User, order.requested_by) if order.requested_by else None
    order.sequence = 1 if before is None else before.sequence + 1
    order.supersedes_id = before.id if before else None
    now = utcnow()
    control = wire.ControlOrder(
        chain_id=order.chain_id, sequence=order.sequence,
        supersedes_task_id=before.task_id if before else None,
        document_number=order.document_number,
        asset=wire.AssetRef(asset_type=wire_asset_type(session, asset),  # type: ignore[arg-type]
                            reference=(asset.identifier or str(asset.id))[:64],
                            institution=(asset.holder or None) and asset.holder[:128],
                            description=asset.description[:255]),
        amount_fen=order.amount_fen, period_days=order.period_days)
    envelope = messages.Envelope(case, court, user, order.purpose, order.legal_basis, now)
    message = envelope.task(order.task_id, order.kind, messages.subject_of(party),
                            messages.CONTROL_DUE, control)
    session.add(LinkageTask(
        task_id=order.task_id, unit_id=unit.id, kind=order.kind, case_id=case.id,
        court_id=case.court_id, party_id=party.id, order_id=order.id, status=TaskStatus.QUEUED,
        message=message, created_at=now, available_at=now, due_at=now + messages.CONTROL_DUE,
        delivery_attempts=0))
    order.status = OrderStatus.SENT
    session.flush()
    if unit.delivery_mode == DeliveryMode.PUSH:
        notify_push(session, {unit.id})


# --- outcomes ----------------------------------------------------------------------------------


def apply_outcome(session: Session, task: LinkageTask, result: wire.Result) -> None:
    """A unit's final answer to an order: update the order, the asset, the money, the chain."""
    order = session.get(ControlOrder, task.order_id)
    assert order is not None
    case = session.get(Case, order.case_id)
    asset = session.get(Asset, order.asset_id)
    assert case is not None and asset is not None
    payload = result.payload
    if result.status != "answered" or not isinstance(payload, wire.ControlOutcome):
        refusal = result.refusal
        order.status = OrderStatus.REFUSED if result.status == "refused" else OrderStatus.FAILED
        order.refusal_code = refusal.code if refusal else None
        order.refusal_message = refusal.message if refusal else None
        event(session, case, None, "order_refused",
              f"{_LABEL[order.kind]}未执行: {order.refusal_code} {order.refusal_message or ''}",
              order_id=order.id, asset_id=asset.id)
        advance_chain(session, order.chain_id)
        return
    applied = payload.amount_applied_fen
    order.applied_amount_fen = applied
    order.applied_at = payload.applied_at
    order.unit_reference = payload.unit_reference
    order.expires_on = payload.expires_on
    order.status = (OrderStatus.PARTIAL if applied is not None and payload.amount_ordered_fen
                    and applied < payload.amount_ordered_fen else OrderStatus.APPLIED)
    applied_on = payload.applied_at.date()
    if order.kind in ("freeze", "seal"):
        state = ControlState.FROZEN if order.kind == "freeze" else ControlState.SEALED
        if asset.control_state == state and order.origin == "watch":
            asset.control_amount_fen = (asset.control_amount_fen or 0) + (applied or 0)
        else:
            asset.control_state = state
            asset.control_amount_fen = applied
            asset.control_started_on = applied_on
            asset.control_expires_on = payload.expires_on
    elif order.kind == "renew_freeze":
        asset.control_expires_on = payload.expires_on
        for other in _chain_orders(session, order.chain_id):
            if other.kind in ("freeze", "seal") and other.task_id == order.chain_id:
                other.expires_on = payload.expires_on
    elif order.kind == "release":
        remaining = (asset.control_amount_fen or 0) - (applied or 0)
        if applied is None or remaining <= 0:
            for other in _chain_orders(session, order.chain_id):
                other.released = True
            asset.control_state = ControlState.RELEASED
            asset.control_amount_fen = None
            asset.control_expires_on = None
        else:
            asset.control_amount_fen = remaining
    elif order.kind == "deduct":
        _record_deduction(session, case, asset, order, applied or 0)
    event(session, case, None, "order_applied",
          f"{_LABEL[order.kind]}已执行: {asset.description}" + (
              f" {applied / 100:,.2f} 元" if applied is not None else ""),
          order_id=order.id, asset_id=asset.id, applied_fen=applied,
          expires_on=payload.expires_on.isoformat() if payload.expires_on else None)
    advance_chain(session, order.chain_id)


def _record_deduction(session: Session, case: Case, asset: Asset, order: ControlOrder,
                      amount: int) -> None:
    if amount <= 0:
        return
    if order.sequence > 1 and asset.control_amount_fen:
        asset.control_amount_fen = max(0, asset.control_amount_fen - amount)
    # The money is in the court's case account whatever the case says: record all of it, and
    # flag what exceeds the debt, to be paid back to the debtor.
    excess = max(0, amount - case.outstanding_fen)
    case.recovered_fen += amount
    session.add(LedgerEntry(case_id=case.id, kind="recovered", amount_fen=amount,
                            on=order.applied_at.date() if order.applied_at else utcnow().date(),
                            asset_id=asset.id, note=f"网络扣划 {order.unit_reference or ''}"[:255],
                            recorded_by=None, recorded_at=utcnow()))
    if excess:
        event(session, case, None, "over_recovery", f"扣划超出未履行金额 {excess / 100:,.2f} 元，"
              "需退还被执行人", order_id=order.id, excess_fen=excess)
    session.flush()
    refresh_clock(session, case)


def on_funds_arrived(session: Session, order: ControlOrder, event_row_amount: int,
                     frozen_by_unit: int) -> ControlOrder | None:
    """Money landed in an account under a standing freeze (the watch order). The bank froze
    ``frozen_by_unit`` of it under the standing order; the platform orders the rest frozen, up
    to what the case still needs, and alerts the officer."""
    case = session.get(Case, order.case_id)
    asset = session.get(Asset, order.asset_id)
    assert case is not None and asset is not None
    lock_for_update(session, Asset, asset.id)
    if frozen_by_unit:
        order.applied_amount_fen = (order.applied_amount_fen or 0) + frozen_by_unit
        asset.control_amount_fen = (asset.control_amount_fen or 0) + frozen_by_unit
    if order.origin == "watch":
        # One arrival is reported once per freeze standing on the account: only the report of
        # the officer's own freeze (the watch) may lead to a follow-up, or the same money
        # would be ordered frozen once per follow-up freeze already standing.
        return None
    room = case.outstanding_fen - frozen_money_fen(session, case.id)
    more = min(event_row_amount - frozen_by_unit, room)
    follow_up = None
    if more > 0 and case.state != CaseState.CONCLUDED:
        follow_up = create(session, SYSTEM, case, asset.id, OrderIn(
            kind="freeze", amount_fen=more, period_days=order.period_days,
            document_number=order.document_number, purpose=WATCH_PURPOSE,
            legal_basis=order.legal_basis), origin="watch")
        follow_up.requested_by = order.requested_by
    event(session, case, None, "funds_arrived",
          f"监控账户到账 {event_row_amount / 100:,.2f} 元: "
          f"银行已冻结 {frozen_by_unit / 100:,.2f} 元"
          + (f"，追加冻结 {more / 100:,.2f} 元" if follow_up else ""),
          order_id=order.id, asset_id=asset.id, amount_fen=event_row_amount,
          frozen_fen=frozen_by_unit, follow_up_order_id=follow_up.id if follow_up else None)
    return follow_up

