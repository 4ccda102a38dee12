"""Network query and control records shaped for the console (read-only helpers: the rules stay
in inquiries.py and orders.py)."""

from __future__ import annotations

import secrets
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from zhixing.cases import policy
from zhixing.cases.models import Asset, AssetKind, Case, CaseState, Party
from zhixing.core.actor import Actor
from zhixing.core.errors import DomainError
from zhixing.courts.models import User
from zhixing.linkage import inquiries, orders, wire
from zhixing.linkage.models import (
    FINAL_TASK,
    ControlOrder,
    Inquiry,
    LinkageTask,
    LinkageUnit,
    OrderStatus,
    TaskStatus,
)

# What the forms offer before anyone types: the usual wording of an enforcement court.
INQUIRY_PURPOSE = "查明被执行人财产以供执行"
INQUIRY_BASIS = "《中华人民共和国民事诉讼法》第二百五十二条、第二百五十三条"
ORDER_PURPOSE = "控制、处分被执行人财产以履行生效法律文书确定的义务"
ORDER_BASIS = "《中华人民共和国民事诉讼法》第二百五十三条、第二百五十五条"
HOLDING_KINDS = ("freeze", "seal", "renew_freeze")  # orders that run for a period of days
AMOUNT_KINDS = ("freeze", "deduct", "release")  # orders that may state an amount
FINAL = frozenset(str(s) for s in FINAL_TASK)


def user_names(session: Session, ids: set[int | None]) -> dict[int, str]:
    wanted = {i for i in ids if i is not None}
    if not wanted:
        return {}
    return dict(session.execute(select(User.id, User.display_name)
                                .where(User.id.in_(wanted))).tuples().all())


def may(check: Any, *args: Any) -> bool:
    """Whether a policy check passes, without raising."""
    try:
        check(*args)
    except DomainError:
        return False
    return True


# --- inquiries ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class InquiryRow:
    inquiry: Inquiry
    requested_by: str | None
    total: int
    done: int
    found_count: int
    found_fen: int


def case_inquiries(session: Session, case: Case) -> list[InquiryRow]:
    """The case's inquiries with their progress, in one aggregate query for all of them."""
    items = inquiries.list_inquiries(session, case)
    if not items:
        return []
    totals: dict[int, list[int]] = defaultdict(lambda: [0, 0, 0, 0])
    for inquiry_id, status, count, found, fen in session.execute(
            select(LinkageTask.inquiry_id, LinkageTask.status, func.count(),
                   func.sum(LinkageTask.found_count), func.sum(LinkageTask.found_fen))
            .where(LinkageTask.inquiry_id.in_([i.id for i in items]))
            .group_by(LinkageTask.inquiry_id, LinkageTask.status)).tuples():
        row = totals[int(inquiry_id or 0)]
        row[0] += int(count)
        row[1] += int(count) if str(status) in FINAL else 0
        row[2] += int(found or 0)
        row[3] += int(fen or 0)
    names = user_names(session, {i.requested_by for i in items})
    return [InquiryRow(i, names.get(i.requested_by) if i.requested_by else None,
                       *totals[i.id]) for i in items]


@dataclass(frozen=True)
class DebtorChoice:
    id: int
    name: str
    askable: bool  # a unit can only be asked about someone with an identity number


def debtor_choices(session: Session, case: Case) -> list[DebtorChoice]:
    return [DebtorChoice(p.id, p.name, bool(p.id_number and p.id_kind))
            for p in inquiries.debtors_of(session, case)]


@dataclass(frozen=True)
class TaskRow:
    task: LinkageTask
    unit: LinkageUnit
    party: Party


def task_rows(session: Session, inquiry_id: int) -> list[TaskRow]:
    """Every task of the inquiry, in the order of the inquiry page."""
    return [TaskRow(t, u, p) for t, u, p in inquiries.tasks_of(session, inquiry_id)]


def task_rows_by_id(session: Session, ids: set[int], chunk: int = 500) -> list[TaskRow]:
    """The tasks with these ids (the ones a live view saw change)."""
    wanted = sorted(ids)
    rows: list[TaskRow] = []
    for at in range(0, len(wanted), chunk):
        rows += [TaskRow(t, u, p) for t, u, p in session.execute(
            select(LinkageTask, LinkageUnit, Party)
            .join(LinkageUnit, LinkageUnit.id == LinkageTask.unit_id)
            .join(Party, Party.id == LinkageTask.party_id)
            .where(LinkageTask.id.in_(wanted[at:at + chunk]))
            .order_by(LinkageTask.id)).tuples()]
    return rows


def all_final(progress: inquiries.Progress) -> bool:
    return progress.total > 0 and progress.done >= progress.total


Fingerprint = tuple[str, int, str | None, datetime | None, datetime | None, datetime | None, int]


def fingerprints(session: Session, inquiry_id: int
                 ) -> dict[int, tuple[Fingerprint, datetime | None]]:
    """Per task: what the page shows of it, and the latest moment anything about it moved."""
    out: dict[int, tuple[Fingerprint, datetime | None]] = {}
    for row in session.execute(
            select(LinkageTask.id, LinkageTask.status, LinkageTask.delivery_attempts,
                   LinkageTask.last_error, LinkageTask.delivered_at,
                   LinkageTask.acknowledged_at, LinkageTask.answered_at,
                   LinkageTask.found_count, LinkageTask.available_at)
            .where(LinkageTask.inquiry_id == inquiry_id)).tuples():
        task_id, status, attempts, error, delivered, acked, answered, found, available = row
        moments = [m for m in (delivered, acked, answered, available) if m is not None]
        out[int(task_id)] = ((str(status), int(attempts), error, delivered, acked, answered,
                              int(found)), max(moments) if moments else None)
    return out


def changed_since(current: dict[int, tuple[Fingerprint, datetime | None]],
                  since: datetime) -> set[int]:
    """Tasks that may have moved after ``since``: every change but an expiry stamps a moment
    (delivery, acknowledgement, answer, the next offer); an expiry stamps none, so expired and
    cancelled tasks always count."""
    return {task_id for task_id, (fp, moment) in current.items()
            if (moment is not None and moment >= since)
            or fp[0] in (TaskStatus.EXPIRED, TaskStatus.CANCELLED)}


# --- control orders ----------------------------------------------------------------------------


@dataclass(frozen=True)
class ControlForm:
    """The online control form of one asset a linked unit holds."""

    asset_id: int
    unit_name: str
    unit_enabled: bool
    kinds: list[str]
    held: bool  # frozen or sealed online now (a chain is active)
    amounts: dict[str, int | None]  # default amount in fen per order kind
    days: dict[str, int | None]  # default period per order kind
    request_key: str = field(default_factory=lambda: secrets.token_urlsafe(18))


def _kinds_for(asset_type: str, unit: LinkageUnit, held: bool, enforceable: bool
               ) -> list[str]:
    offered = set(unit.control_kinds)
    if not enforceable:  # a concluded or suspended case keeps its controls: renew or release
        return [k for k in ("renew_freeze", "release") if held and k in offered]
    kinds = []
    if not held:
        if asset_type in wire.FREEZABLE and "freeze" in offered:
            kinds.append("freeze")
        if asset_type in wire.SEALABLE and "seal" in offered:
            kinds.append("seal")
    else:
        kinds += [k for k in ("renew_freeze", "release") if k in offered]
    # A wealth product is frozen as such, never deducted online.
    if asset_type == "deposit_account" and unit.online_deduct and "deduct" in offered:
        kinds.append("deduct")
    return kinds


def control_forms(session: Session, case: Case) -> dict[int, ControlForm]:
    """A form per asset found through a linked unit: the orders that make sense for it now,
    with the amounts and periods an officer would usually give."""
    assets = list(session.scalars(select(Asset).where(Asset.case_id == case.id,
                                                      Asset.unit_id.is_not(None))
                                  .order_by(Asset.id)))
    if not assets:
        return {}
    unit_by_id = {u.id: u for u in session.scalars(select(LinkageUnit).where(
        LinkageUnit.id.in_({a.unit_id for a in assets})))}
    room = max(case.outstanding_fen - orders.frozen_money_fen(session, case.id), 0)
    enforceable = case.state not in (CaseState.CONCLUDED, CaseState.SUSPENDED)
    out = {}
    for asset in assets:
        unit = unit_by_id[asset.unit_id] if asset.unit_id is not None else None
        if unit is None:
            continue
        held = orders.active_chain(session, asset.id) is not None
        asset_type = orders.wire_asset_type(session, asset)
        limit = wire.MAX_PERIOD_DAYS[asset_type]
        money = asset.kind == AssetKind.DEPOSIT
        freeze = min(room, asset.value_fen) if asset.value_fen is not None else room
        base = asset.control_amount_fen if held else asset.value_fen
        deduct = min(base, case.outstanding_fen) if base is not None else case.outstanding_fen
        out[asset.id] = ControlForm(
            asset_id=asset.id, unit_name=unit.name_zh, unit_enabled=unit.enabled,
            kinds=_kinds_for(asset_type, unit, held, enforceable), held=held,
            amounts={"freeze": (freeze or None) if money else None,
                     "deduct": deduct or None, "release": None},
            days={k: limit for k in HOLDING_KINDS})
    return out


@dataclass(frozen=True)
class OrderRow:
    order: ControlOrder
    asset: str
    unit: str
    requested_by: str | None
    approved_by: str | None
    can_decide: bool


def case_orders(session: Session, actor: Actor, case: Case) -> list[OrderRow]:
    items = orders.list_orders(session, case)
    if not items:
        return []
    assets = dict(session.execute(select(Asset.id, Asset.description).where(
        Asset.id.in_({o.asset_id for o in items}))).tuples().all())
    unit_names = dict(session.execute(select(LinkageUnit.id, LinkageUnit.name_zh).where(
        LinkageUnit.id.in_({o.unit_id for o in items}))).tuples().all())
    names = user_names(session, {o.requested_by for o in items}
                       | {o.approved_by for o in items})
    approver = may(policy.require_approve, actor, case)
    return [OrderRow(
        o, assets.get(o.asset_id, ""), unit_names.get(o.unit_id, ""),
        names.get(o.requested_by) if o.requested_by else None,
        names.get(o.approved_by) if o.approved_by else None,
        approver and o.status == OrderStatus.AWAITING_APPROVAL
        and o.requested_by != actor.user_id) for o in items]
