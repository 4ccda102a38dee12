"""JSON API of network query and control for people: inquiries, control orders, units,
figures. (The units' own protocol is :mod:`zhixing.linkage.server`.)"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Query
from pydantic import BaseModel

from zhixing.cases import service as case_service
from zhixing.core import audit
from zhixing.core.actor import Actor
from zhixing.core.errors import ValidationFailed
from zhixing.courts.service import subordinate_court_ids
from zhixing.linkage import figures, inquiries, keys, orders, units
from zhixing.linkage.models import ControlOrder, Inquiry, LinkageUnit
from zhixing.web.deps import CurrentUser, DbSession, RecordId, SmallRecordId
from zhixing.web.errors import ERROR_RESPONSES

router = APIRouter(prefix="/api/v1", responses=ERROR_RESPONSES, tags=["network"])


class TaskRead(BaseModel):
    task_id: str
    unit_id: int
    unit_name: str
    kind: str
    party_id: int
    party_name: str
    status: str
    created_at: datetime
    delivered_at: datetime | None
    acknowledged_at: datetime | None
    answered_at: datetime | None
    delivery_attempts: int
    last_error: str | None
    found_count: int
    found_fen: int
    result: dict[str, Any] | None


class InquiryRead(BaseModel):
    id: int
    case_id: int
    origin: str
    purpose: str
    legal_basis: str
    kinds: list[str]
    party_ids: list[int]
    created_at: datetime
    task_count: int
    done: int
    by_status: dict[str, int]
    found_count: int
    found_fen: int
    tasks: list[TaskRead] | None = None


class InquiryList(BaseModel):
    items: list[InquiryRead]


class OrderRead(BaseModel):
    id: int
    task_id: str
    case_id: int
    asset_id: int
    unit_id: int
    kind: str
    origin: str
    status: str
    chain_id: str
    sequence: int
    amount_fen: int | None
    period_days: int | None
    document_number: str
    purpose: str
    legal_basis: str
    requested_by: int | None
    requested_at: datetime
    approved_by: int | None
    applied_amount_fen: int | None
    applied_at: datetime | None
    expires_on: date | None
    unit_reference: str | None
    refusal_code: str | None
    refusal_message: str | None


class OrderList(BaseModel):
    items: list[OrderRead]


def _inquiry(db: DbSession, inquiry: Inquiry, with_tasks: bool) -> InquiryRead:
    progress = inquiries.progress(db, inquiry.id)
    tasks = None
    if with_tasks:
        tasks = [TaskRead(task_id=t.task_id, unit_id=u.id, unit_name=u.name_zh, kind=t.kind,
                          party_id=p.id, party_name=p.name, status=str(t.status),
                          created_at=t.created_at, delivered_at=t.delivered_at,
                          acknowledged_at=t.acknowledged_at, answered_at=t.answered_at,
                          delivery_attempts=t.delivery_attempts, last_error=t.last_error,
                          found_count=t.found_count, found_fen=t.found_fen, result=t.result)
                 for t, u, p in inquiries.tasks_of(db, inquiry.id)]
    return InquiryRead(id=inquiry.id, case_id=inquiry.case_id, origin=inquiry.origin,
                       purpose=inquiry.purpose, legal_basis=inquiry.legal_basis,
                       kinds=inquiry.kinds, party_ids=inquiry.party_ids,
                       created_at=inquiry.created_at, task_count=inquiry.task_count,
                       done=progress.done, by_status=progress.by_status,
                       found_count=progress.found_count, found_fen=progress.found_fen,
                       tasks=tasks)


def order_read(order: ControlOrder) -> OrderRead:
    return OrderRead.model_validate({
        **{c: getattr(order, c) for c in OrderRead.model_fields}, "status": str(order.status)})


@router.post("/cases/{case_id}/inquiries", status_code=201, response_model=InquiryRead)
def create_inquiry(case_id: RecordId, body: inquiries.InquiryIn, actor: CurrentUser,
                   db: DbSession) -> InquiryRead:
    """网络查控: ask every able unit (or a chosen set) about the case's debtors, with the
    purpose and legal basis recorded."""
    case = case_service.get_case(db, actor, case_id)
    inquiry = inquiries.create(db, actor, case, body)
    db.flush()
    return _inquiry(db, inquiry, with_tasks=False)


@router.get("/cases/{case_id}/inquiries", response_model=InquiryList)
def list_inquiries(case_id: RecordId, actor: CurrentUser, db: DbSession) -> InquiryList:
    case = case_service.get_case(db, actor, case_id)
    return InquiryList(items=[_inquiry(db, i, False)
                              for i in inquiries.list_inquiries(db, case)])


def read_audited(db: DbSession, actor: Actor, inquiry: Inquiry) -> None:
    """Reading a debtor's property is audited like asking for it."""
    audit.record(db, actor, "linkage.inquiry_read", object_type="inquiry", object_id=inquiry.id,
                 court_id=inquiry.court_id, case_id=inquiry.case_id, purpose=inquiry.purpose)


@router.get("/cases/{case_id}/inquiries/{inquiry_id}", response_model=InquiryRead)
def get_inquiry(case_id: RecordId, inquiry_id: RecordId, actor: CurrentUser,
                db: DbSession) -> InquiryRead:
    """An inquiry with every unit task, its state and its answer."""
    case = case_service.get_case(db, actor, case_id)
    inquiry = inquiries.get_inquiry(db, case, inquiry_id)
    read_audited(db, actor, inquiry)
    return _inquiry(db, inquiry, with_tasks=True)


@router.post("/cases/{case_id}/assets/{asset_id}/orders", status_code=201,
             response_model=OrderRead)
def create_order(case_id: RecordId, asset_id: RecordId, body: orders.OrderIn,
                 actor: CurrentUser, db: DbSession) -> OrderRead:
    """An online control order on an asset a unit holds: freeze, seal, renew, release, deduct
    (a deduction waits for an approver's sign-off)."""
    case = case_service.get_case(db, actor, case_id)
    order = orders.create(db, actor, case, asset_id, body)
    db.flush()
    return order_read(order)


@router.get("/cases/{case_id}/orders", response_model=OrderList)
def list_orders(case_id: RecordId, actor: CurrentUser, db: DbSession) -> OrderList:
    case = case_service.get_case(db, actor, case_id)
    return OrderList(items=[order_read(o) for o in orders.list_orders(db, case)])


@router.post("/cases/{case_id}/orders/{order_id}/decision", response_model=OrderRead)
def decide_order(case_id: RecordId, order_id: RecordId, body: orders.DecisionIn,
                 actor: CurrentUser, db: DbSession) -> OrderRead:
    """The approver's sign-off on a deduction (a second person)."""
    case = case_service.get_case(db, actor, case_id)
    order = orders.decide(db, actor, case, order_id, body)
    db.flush()
    return order_read(order)


# --- units -------------------------------------------------------------------------------------


class UnitRead(BaseModel):
    id: int
    code: str
    name_zh: str
    name_en: str
    unit_type: str
    department: str | None
    query_kinds: list[str]
    control_kinds: list[str]
    online_deduct: bool
    delivery_mode: str
    push_url: str | None
    expected_response_minutes: int
    enabled: bool


class UnitHealthRead(BaseModel):
    unit: UnitRead
    tasks: int
    answered: int
    answer_rate: float | None
    open: int
    overdue: int
    expired: int
    median_answer_seconds: float | None
    last_answer_at: datetime | None


class UnitList(BaseModel):
    items: list[UnitHealthRead]


class IssuedKeysRead(BaseModel):
    unit_code: str
    key_id: str
    secret: str
    platform_key_id: str
    platform_secret: str


class RotatedKeyRead(BaseModel):
    key_id: str
    secret: str
    previous_valid_days: int


def unit_read(unit: LinkageUnit) -> UnitRead:
    return UnitRead.model_validate({
        **{c: getattr(unit, c) for c in UnitRead.model_fields},
        "unit_type": str(unit.unit_type), "delivery_mode": str(unit.delivery_mode)})


@router.get("/units", response_model=UnitList)
def list_units(actor: CurrentUser, db: DbSession) -> UnitList:
    """Linked units with their health over the last 7 days (for the command center)."""
    units.require_reader(actor)
    return UnitList(items=[UnitHealthRead(
        unit=unit_read(h.unit), tasks=h.tasks, answered=h.answered, answer_rate=h.answer_rate,
        open=h.open, overdue=h.overdue, expired=h.expired,
        median_answer_seconds=h.median_answer_seconds, last_answer_at=h.last_answer_at)
        for h in figures.health(db)])


@router.patch("/units/{unit_id}", response_model=UnitRead)
def update_unit(unit_id: SmallRecordId, body: units.UnitUpdate, actor: CurrentUser,
                db: DbSession) -> UnitRead:
    """Switch a unit on or off, or change how it is reached (administrators)."""
    units.require_admin(db, actor)
    unit = units.get_unit(db, unit_id)
    units.update_unit(db, actor, unit, body)
    return unit_read(unit)


@router.post("/units/{unit_id}/keys", status_code=201, response_model=IssuedKeysRead)
def issue_keys(unit_id: SmallRecordId, actor: CurrentUser, db: DbSession) -> IssuedKeysRead:
    """New keys for a unit (revoking its old ones). The secrets are shown this once."""
    units.require_admin(db, actor)
    issued = keys.issue(db, actor, units.get_unit(db, unit_id))
    return IssuedKeysRead(**issued.__dict__)


@router.post("/units/{unit_id}/keys/rotate", response_model=RotatedKeyRead)
def rotate_key(unit_id: SmallRecordId, actor: CurrentUser, db: DbSession) -> RotatedKeyRead:
    """A new secret for the unit's key; the previous one keeps working for 7 days."""
    units.require_admin(db, actor)
    key_id, secret = keys.rotate(db, actor, units.get_unit(db, unit_id))
    return RotatedKeyRead(key_id=key_id, secret=secret,
                          previous_valid_days=keys.ROTATION_OVERLAP.days)


@router.delete("/units/{unit_id}/keys", status_code=204)
def revoke_keys(unit_id: SmallRecordId, actor: CurrentUser, db: DbSession) -> None:
    """Every key of the unit stops working at once."""
    units.require_admin(db, actor)
    keys.revoke(db, actor, units.get_unit(db, unit_id))


class FiguresRead(BaseModel):
    start: date
    end: date
    requests_sent: int
    feedback_received: int
    cases_covered: int
    debtors_covered: int
    funds_found_fen: int
    frozen_fen: int
    deducted_fen: int
    orders_applied: int


@router.get("/network/figures", response_model=FiguresRead)
def network_figures(actor: CurrentUser, db: DbSession,
                    start: Annotated[date | None, Query()] = None,
                    end: Annotated[date | None, Query()] = None,
                    court_id: Annotated[int | None, Query(ge=1, le=2**31 - 1)] = None
                    ) -> FiguresRead:
    """Requests sent, feedback received, cases and debtors covered, funds found, frozen and
    deducted, for your courts (or one of them) over a period (default: the last 30 days)."""
    units.require_reader(actor)
    end = end or case_service.today()
    start = start or end - timedelta(days=29)
    if start > end or (end - start).days > 3660:
        raise ValidationFailed("start is on or before end, at most 10 years apart",
                               code="invalid_period", field="start")
    scope = actor.visible_court_ids
    if court_id is not None:
        if court_id not in scope:
            raise ValidationFailed("that court is outside your reach", code="court_out_of_reach",
                                   field="court_id")
        scope = subordinate_court_ids(db, court_id) & scope
    f = figures.figures(db, scope, start, end)
    return FiguresRead(start=start, end=end, **f.__dict__)
