"""What the platform does with what units send: acknowledgements, results and events.

Every item of a batch gets its own outcome; the first result for a task is stored and every
copy is a ``duplicate``; a different answer for an answered task is a ``result_conflict`` and
changes nothing. Query results land in the case's property ledger with their provenance (the
unit, the task); control outcomes move the order chain (:mod:`zhixing.linkage.orders`).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from zhixing.cases.models import Asset, AssetKind, Case, ControlState
from zhixing.cases.service import event
from zhixing.core import audit
from zhixing.core.actor import Actor
from zhixing.core.clock import utcnow
from zhixing.linkage import orders, wire
from zhixing.linkage.models import (
    STANDING_ORDER,
    ControlOrder,
    LinkageTask,
    TaskStatus,
    UnitEvent,
)

_FINAL_FOR = {"answered": TaskStatus.ANSWERED, "refused": TaskStatus.REFUSED,
              "failed": TaskStatus.FAILED}


def _ok(item_id: str, outcome: str = "accepted") -> wire.ItemOutcome:
    return wire.ItemOutcome(id=item_id, outcome=outcome)  # type: ignore[arg-type]


def _rejected(item_id: str, code: str, message: str) -> wire.ItemOutcome:
    return wire.ItemOutcome(id=item_id, outcome="rejected",
                            error=wire.ErrorDetail(code=code, message=message))


def acknowledge(session: Session, unit_id: int, task_ids: list[str]) -> list[wire.ItemOutcome]:
    """Two statements for the whole batch: acknowledging is the commonest call of all."""
    now = utcnow()
    done = set(session.scalars(
        update(LinkageTask).where(LinkageTask.unit_id == unit_id,
                                  LinkageTask.task_id.in_(task_ids),
                                  LinkageTask.status.in_((TaskStatus.QUEUED,
                                                          TaskStatus.DELIVERED)))
        .values(status=TaskStatus.ACKNOWLEDGED, acknowledged_at=now,
                delivered_at=func.coalesce(LinkageTask.delivered_at, now))
        .returning(LinkageTask.task_id)))
    known = set(session.scalars(select(LinkageTask.task_id).where(
        LinkageTask.unit_id == unit_id, LinkageTask.task_id.in_(task_ids))))
    out = []
    for task_id in task_ids:
        if task_id in done:
            out.append(_ok(task_id))
        elif task_id in known:
            out.append(_ok(task_id, "duplicate"))
        else:
            out.append(_rejected(task_id, "unknown_task", "no such task for this unit"))
    return out


# --- results -----------------------------------------------------------------------------------


@dataclass
class Found:
    """Assets one result adds to the ledger, and leads (records that are not property)."""

    assets: list[dict[str, Any]] = field(default_factory=list)
    leads: int = 0
    cny_fen: int = 0


def normalize(payload: Any) -> Found:
    """A query payload as ledger rows: one asset per account, property, vehicle, share."""
    found = Found()
    if isinstance(payload, wire.DepositsPayload):
        for acc in payload.accounts:
            cny = acc.currency == "CNY"
            product = f" {acc.wealth_product.product_name}" if acc.wealth_product else ""
            found.assets.append(dict(
                kind=AssetKind.DEPOSIT, identifier=acc.account_number,
                holder=f"{acc.bank} {acc.branch}"[:128],
                value_fen=acc.balance_fen if cny else None,
                description=(f"{acc.bank}{acc.branch} 账户 {acc.account_number}{product}"
                             + ("" if cny else f" ({acc.currency} {acc.balance_fen})"))[:255]))
            found.cny_fen += acc.balance_fen if cny else 0
    elif isinstance(payload, wire.RealEstatePayload):
        for prop in payload.properties:
            found.assets.append(dict(
                kind=AssetKind.REAL_ESTATE, identifier=prop.certificate_number, holder=None,
                value_fen=None,
                description=f"{prop.address} {prop.area_m2}㎡ {prop.usage}"[:255]))
    elif isinstance(payload, wire.VehiclesPayload):
        for car in payload.vehicles:
            found.assets.append(dict(
                kind=AssetKind.VEHICLE, identifier=car.plate_number, holder=None, value_fen=None,
                description=f"{car.plate_number} {car.model} VIN {car.vin}"[:255]))
    elif isinstance(payload, wire.BusinessRegistrationPayload):
        for role in payload.roles:
            if role.role != "shareholder":
                found.leads += 1
                continue
            found.assets.append(dict(
                kind=AssetKind.EQUITY, identifier=(role.credit_code or role.company_name)[:64],
                holder=role.company_name, value_fen=role.capital_fen,
                description=f"{role.company_name} 股权 {role.share_percent}%"[:255]))
    elif isinstance(payload, wire.SecuritiesPayload):
        for account in payload.accounts:
            names = "、".join(h.name for h in account.holdings[:5])
            found.assets.append(dict(
                kind=AssetKind.SECURITIES, identifier=account.account, holder=account.broker,
                value_fen=None,
                description=f"证券账户 {account.account} {names}"[:255]))
    elif isinstance(payload, wire.LodgingPayload):
        found.leads = len(payload.stays)
    elif isinstance(payload, wire.HouseholdRegistrationPayload | wire.MarriageRegistrationPayload):
        found.leads = 0 if payload.record is None else 1
    return found


def _store_assets(session: Session, landed: list[tuple[LinkageTask, Found]]) -> dict[int, int]:
    """Insert new assets, refresh the value of ones seen before (a re-query finds the same
    account again: it is one asset). Returns the number of assets per case."""
    keys = {(t.case_id, t.party_id, str(a["kind"]), a["identifier"])
            for t, f in landed for a in f.assets}
    if not keys:
        return {}
    case_ids = {k[0] for k in keys}
    idents = {k[3] for k in keys}
    existing = {(a.case_id, a.debtor_id, str(a.kind), a.identifier): a
                for a in session.scalars(select(Asset).where(Asset.case_id.in_(case_ids),
                                                             Asset.identifier.in_(idents)))}
    per_case: dict[int, int] = defaultdict(int)
    now = utcnow()
    for task, found in landed:
        for item in found.assets:
            key = (task.case_id, task.party_id, str(item["kind"]), item["identifier"])
            asset = existing.get(key)
            if asset is None:
                asset = Asset(case_id=task.case_id, debtor_id=task.party_id,
                              provenance="network_query", source_ref=task.task_id,
                              unit_id=task.unit_id, control_state=ControlState.NONE,
                              created_at=now, **item)
                session.add(asset)
                existing[key] = asset
            else:
                asset.value_fen = item["value_fen"]
                asset.description = item["description"]
                asset.source_ref = task.task_id
                asset.unit_id = asset.unit_id or task.unit_id
            per_case[task.case_id] += 1
    return per_case


def accept_results(session: Session, actor: Actor, unit_id: int,
                   results: list[wire.Result]) -> list[wire.ItemOutcome]:
    ids = [r.task_id for r in results]
    tasks = {t.task_id: t for t in session.scalars(
        select(LinkageTask).where(LinkageTask.unit_id == unit_id, LinkageTask.task_id.in_(ids))
        .with_for_update())}
    now = utcnow()
    out: list[wire.ItemOutcome] = []
    landed: list[tuple[LinkageTask, Found]] = []
    controls: list[tuple[LinkageTask, wire.Result]] = []
    for result in results:
        task = tasks.get(result.task_id)
        if task is None:
            out.append(_rejected(result.task_id, "unknown_task", "no such task for this unit"))
            continue
        if task.result is not None:
            first = wire.Result.model_validate(task.result, strict=False)
            if wire.same_content(first, result):
                out.append(_ok(result.task_id, "duplicate"))
            else:
                out.append(_rejected(result.task_id, "result_conflict",
                                     "a different result for this task was already accepted"))
            continue
        control = task.message.get("control") or {}
        try:
            wire.check_result_for(task.task_id, task.kind, result,
                                  ordered_fen=control.get("amount_fen"),
                                  period_days=control.get("period_days"),
                                  is_control=bool(control))
        except wire.WireError as exc:
            out.append(_rejected(result.task_id, exc.code, exc.message))
            continue
        task.result = result.model_dump(mode="json")
        task.status = _FINAL_FOR[result.status]
        task.answered_at = now
        task.delivered_at = task.delivered_at or now
        task.acknowledged_at = task.acknowledged_at or now
        if task.order_id is not None:
            controls.append((task, result))
        elif result.payload is not None:
            found = normalize(result.payload)
            task.found_count = len(found.assets) + found.leads
            task.found_fen = found.cny_fen
            landed.append((task, found))
        out.append(_ok(result.task_id))
    per_case = _store_assets(session, landed)
    session.flush()
    for task, result in controls:
        orders.apply_outcome(session, task, result)
    for case_id, count in per_case.items():
        case = session.get(Case, case_id)
        if case is not None:
            event(session, case, None, "inquiry_result", f"网络查控反馈: 发现 {count} 项财产",
                  unit_id=unit_id, assets=count)
    accepted = sum(1 for o in out if o.outcome == "accepted")
    if accepted:
        audit.record(session, actor, "linkage.results", object_type="linkage_unit",
                     object_id=unit_id, court_id=None, details={
                         "accepted": accepted, "rejected": sum(o.outcome == "rejected"
                                                               for o in out),
                         "task_ids": [o.id for o in out if o.outcome == "accepted"][:100]})
    return out


# --- events ------------------------------------------------------------------------------------


def accept_events(session: Session, actor: Actor, unit_id: int,
                  events: list[wire.Event]) -> list[wire.ItemOutcome]:
    out = []
    for ev in events:
        out.append(_accept_event(session, actor, unit_id, ev))
    return out


def _accept_event(session: Session, actor: Actor, unit_id: int, ev: wire.Event
                  ) -> wire.ItemOutcome:
    message = ev.model_dump(mode="json")
    seen = session.scalar(select(UnitEvent).where(UnitEvent.unit_id == unit_id,
                                                  UnitEvent.event_id == ev.event_id))
    if seen is not None:
        if wire.same_content(wire.Event.model_validate(seen.message, strict=False), ev,
                             frozenset()):
            return _ok(ev.event_id, "duplicate")
        return _rejected(ev.event_id, "event_conflict",
                         "a different event with this id was already accepted")
    related = session.scalar(select(ControlOrder).join(
        LinkageTask, LinkageTask.order_id == ControlOrder.id).where(
        LinkageTask.task_id == ev.related_task_id, LinkageTask.unit_id == unit_id))
    # The event names the freeze or its latest renewal: the watch is the chain's freeze.
    order = None if related is None else session.scalar(select(ControlOrder).where(
        ControlOrder.task_id == related.chain_id))
    asset = session.get(Asset, order.asset_id) if order is not None else None
    if (order is None or asset is None or order.kind != "freeze"
            or order.status not in STANDING_ORDER or order.released
            or asset.identifier != ev.account_number):
        return _rejected(ev.event_id, "not_a_freeze", "related_task_id is not a standing "
                         "freeze of this unit on that account")
    row = UnitEvent(unit_id=unit_id, event_id=ev.event_id, case_id=order.case_id,
                    order_id=order.id, message=message, amount_fen=ev.amount_fen,
                    amount_frozen_fen=ev.amount_frozen_fen, received_at=utcnow())
    session.add(row)
    session.flush()
    follow_up = orders.on_funds_arrived(session, order, ev.amount_fen, ev.amount_frozen_fen)
    row.follow_up_order_id = follow_up.id if follow_up else None
    audit.record(session, actor, "linkage.funds_arrived", object_type="control_order",
                 object_id=order.id, court_id=order.court_id, case_id=order.case_id,
                 details={"event_id": ev.event_id, "amount_fen": ev.amount_fen,
                          "frozen_fen": ev.amount_frozen_fen,
                          "follow_up_order_id": row.follow_up_order_id})
    return _ok(ev.event_id)

