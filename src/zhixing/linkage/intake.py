"""What the platform does with what units send: acknowledgements, results and events.

Every item of a batch gets its own outcome; the first result for a task is stored and every
copy is a ``duplicate``; a different answer for an answered task is a ``result_conflict`` and
changes nothing. Query results land in the case's property ledger with their provenance (the
unit, the task); control outcomes move the order chain (:mod:`zhixing.linkage.orders`).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any, cast

from sqlalchemy import Row, Table, bindparam, func, insert, select, update
from sqlalchemy.orm import Session

from zhixing.cases.models import Asset, AssetKind, ControlState
from zhixing.cases.service import event_on
from zhixing.core import audit
from zhixing.core.actor import Actor
from zhixing.core.clock import utcnow
from zhixing.core.db import among
from zhixing.linkage import orders, wire
from zhixing.linkage.models import (
    STANDING_ORDER,
    TASKS,
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
    """One statement for the whole batch (two when some ids are repeats or unknown):
    acknowledging is the commonest call of all."""
    now = utcnow()
    tasks = TASKS.c
    done = set(session.scalars(
        update(TASKS).where(tasks.unit_id == unit_id, among(tasks.task_id, task_ids),
                            tasks.status.in_((TaskStatus.QUEUED, TaskStatus.DELIVERED)))
        .values(status=TaskStatus.ACKNOWLEDGED, acknowledged_at=now,
                delivered_at=func.coalesce(tasks.delivered_at, now))
        .returning(tasks.task_id)))
    # The usual case, every task newly acknowledged, needs no second look.
    known = done if done.issuperset(task_ids) else set(session.scalars(
        select(tasks.task_id).where(tasks.unit_id == unit_id, among(tasks.task_id, task_ids))))
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


def _store_assets(session: Session, landed: list[tuple[Row[Any], Found]]) -> dict[int, int]:
    """Insert new assets, refresh the value of ones seen before (a re-query finds the same
    account again: it is one asset). Returns the number of assets per case.

    Core statements, one per kind of change: the ORM's unit of work (an object per asset, an
    INSERT ... RETURNING for ids nobody reads) was a third of a results post's CPU."""
    keys = {(t.case_id, t.party_id, str(a["kind"]), a["identifier"])
            for t, f in landed for a in f.assets}
    if not keys:
        return {}
    table = cast(Table, Asset.__table__)
    existing = {(r.case_id, r.debtor_id, str(r.kind), r.identifier): r.id
                for r in session.execute(select(table.c.id, table.c.case_id, table.c.debtor_id,
                                                table.c.kind, table.c.identifier).where(
                    among(table.c.case_id, sorted({k[0] for k in keys})),
                    among(table.c.identifier, sorted({k[3] for k in keys}))))}
    per_case: dict[int, int] = defaultdict(int)
    fresh: dict[tuple[int, int, str, str], dict[str, Any]] = {}
    seen_again: dict[int, dict[str, Any]] = {}
    now = utcnow()
    for task, found in landed:
        for item in found.assets:
            key = (task.case_id, task.party_id, str(item["kind"]), item["identifier"])
            asset_id = existing.get(key)
            if asset_id is not None:
                seen_again[asset_id] = {"b_id": asset_id, "b_value": item["value_fen"],
                                        "b_description": item["description"],
                                        "b_source": task.task_id, "b_unit": task.unit_id}
            elif key in fresh:  # twice in one batch: the later answer's figures
                fresh[key].update(item, source_ref=task.task_id)
            else:
                fresh[key] = dict(case_id=task.case_id, debtor_id=task.party_id,
                                  provenance="network_query", source_ref=task.task_id,
                                  unit_id=task.unit_id, control_state=ControlState.NONE,
                                  created_at=now, **item)
            per_case[task.case_id] += 1
    if fresh:
        session.execute(insert(table), list(fresh.values()))
    if seen_again:
        session.execute(update(table).where(table.c.id == bindparam("b_id")).values(
            value_fen=bindparam("b_value"), description=bindparam("b_description"),
            source_ref=bindparam("b_source"),
            unit_id=func.coalesce(table.c.unit_id, bindparam("b_unit"))),
            list(seen_again.values()))
    return per_case


def accept_results(session: Session, actor: Actor, unit_id: int,
                   results: list[wire.Result]) -> list[wire.ItemOutcome]:
    """Check each result against its task (locked), store the accepted ones and what they
    found, move the orders of control tasks. A handful of statements whatever the batch."""
    tasks = TASKS.c
    rows = {r.task_id: r for r in session.execute(
        select(tasks.id, tasks.task_id, tasks.kind, tasks.unit_id, tasks.case_id,
               tasks.party_id, tasks.order_id, tasks.result,
               tasks.message["control"].label("control"))
        .where(tasks.unit_id == unit_id, among(tasks.task_id, [r.task_id for r in results]))
        .with_for_update())}
    now = utcnow()
    out: list[wire.ItemOutcome] = []
    taken: dict[str, wire.Result] = {}
    answered: list[dict[str, Any]] = []
    landed: list[tuple[Row[Any], Found]] = []
    controls: list[tuple[int, wire.Result]] = []
    for result in results:
        task = rows.get(result.task_id)
        if task is None:
            out.append(_rejected(result.task_id, "unknown_task", "no such task for this unit"))
            continue
        first = taken.get(task.task_id) or (
            None if task.result is None else wire.Result.model_validate(task.result,
                                                                        strict=False))
        if first is not None:
            if wire.same_content(first, result):
                out.append(_ok(result.task_id, "duplicate"))
            else:
                out.append(_rejected(result.task_id, "result_conflict",
                                     "a different result for this task was already accepted"))
            continue
        control = task.control or {}
        try:
            wire.check_result_for(task.task_id, task.kind, result,
                                  ordered_fen=control.get("amount_fen"),
                                  period_days=control.get("period_days"),
                                  is_control=bool(control))
        except wire.WireError as exc:
            out.append(_rejected(result.task_id, exc.code, exc.message))
            continue
        taken[task.task_id] = result
        found = Found()
        if task.order_id is not None:
            controls.append((task.id, result))
        elif result.payload is not None:
            found = normalize(result.payload)
            landed.append((task, found))
        answered.append({"b_id": task.id, "b_result": result.model_dump(mode="json"),
                         "b_status": _FINAL_FOR[result.status],
                         "b_count": len(found.assets) + found.leads, "b_fen": found.cny_fen})
        out.append(_ok(result.task_id))
    if answered:
        session.execute(update(TASKS).where(tasks.id == bindparam("b_id")).values(
            result=bindparam("b_result", type_=tasks.result.type),
            status=bindparam("b_status", type_=tasks.status.type),
            found_count=bindparam("b_count"), found_fen=bindparam("b_fen"), answered_at=now,
            delivered_at=func.coalesce(tasks.delivered_at, now),
            acknowledged_at=func.coalesce(tasks.acknowledged_at, now)), answered)
    per_case = _store_assets(session, landed)
    for task_id, result in controls:
        task_row = session.get(LinkageTask, task_id)
        assert task_row is not None
        orders.apply_outcome(session, task_row, result)
    for case_id, count in per_case.items():
        event_on(session, case_id, None, "inquiry_result", f"网络查控反馈: 发现 {count} 项财产",
                 unit_id=unit_id, assets=count)
    if answered:
        audit.record(session, actor, "linkage.results", object_type="linkage_unit",
                     object_id=unit_id, court_id=None, details={
                         "accepted": len(answered), "rejected": sum(o.outcome == "rejected"
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

