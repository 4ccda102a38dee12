"""Tables of network query and control (网络查控): units, their keys, inquiries, unit tasks,
control orders and the events units report.

A *task* is one message to one unit (a query of one kind about one debtor, or one control
order); its public ``task_id`` is the idempotency key of everything done for it, on both sides.
The task's message is stored as sent, so a redelivery is byte-for-byte the same task.
"""

from __future__ import annotations

import enum
from datetime import date, datetime
from typing import Any, cast

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Date,
    ForeignKey,
    Index,
    Integer,
    String,
    Table,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from zhixing.cases.models import BigId
from zhixing.core.db import Base, EnumText, utcnow_column_default


class UnitType(enum.StrEnum):
    BANK = "bank"
    DEPARTMENT = "department"


class DeliveryMode(enum.StrEnum):
    PULL = "pull"  # the unit fetches its tasks
    PUSH = "push"  # the platform posts them to the unit's URL


class KeyRole(enum.StrEnum):
    UNIT = "unit"  # the unit signs its requests with it
    PLATFORM = "platform"  # the platform signs its answers and pushes to this unit with it


class TaskStatus(enum.StrEnum):
    QUEUED = "queued"
    DELIVERED = "delivered"  # fetched (or pushed) but not yet acknowledged
    ACKNOWLEDGED = "acknowledged"
    ANSWERED = "answered"
    REFUSED = "refused"
    FAILED = "failed"
    EXPIRED = "expired"  # no answer by the deadline (plus grace); visible, never silent
    CANCELLED = "cancelled"  # a release whose order was refused, a unit switched off


OPEN_TASK = (TaskStatus.QUEUED, TaskStatus.DELIVERED, TaskStatus.ACKNOWLEDGED)
FINAL_TASK = (TaskStatus.ANSWERED, TaskStatus.REFUSED, TaskStatus.FAILED, TaskStatus.EXPIRED,
              TaskStatus.CANCELLED)


class OrderStatus(enum.StrEnum):
    AWAITING_APPROVAL = "awaiting_approval"  # a deduction waits for the second person
    DECLINED = "declined"  # the approver said no
    WAITING = "waiting"  # for the order it follows to be applied (never overtakes it)
    SENT = "sent"  # its task is with the unit
    APPLIED = "applied"
    PARTIAL = "partial"  # applied for less than ordered (insufficient balance)
    REFUSED = "refused"
    FAILED = "failed"
    EXPIRED = "expired"
    CANCELLED = "cancelled"


STANDING_ORDER = (OrderStatus.APPLIED, OrderStatus.PARTIAL)
OPEN_ORDER = (OrderStatus.AWAITING_APPROVAL, OrderStatus.WAITING, OrderStatus.SENT)


class LinkageUnit(Base):
    """A bank or department linked to the platform (联动单位)."""

    __tablename__ = "linkage_units"

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(58), unique=True)
    name_zh: Mapped[str] = mapped_column(String(128), unique=True)
    name_en: Mapped[str] = mapped_column(String(160))
    unit_type: Mapped[UnitType] = mapped_column(EnumText(UnitType, 16))
    department: Mapped[str | None] = mapped_column(String(32))
    query_kinds: Mapped[list[str]] = mapped_column(JSON, default=list)
    control_kinds: Mapped[list[str]] = mapped_column(JSON, default=list)
    online_deduct: Mapped[bool] = mapped_column(Boolean, default=False)
    delivery_mode: Mapped[DeliveryMode] = mapped_column(EnumText(DeliveryMode, 8))
    push_url: Mapped[str | None] = mapped_column(String(255))
    expected_response_minutes: Mapped[int] = mapped_column(Integer, default=240)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow_column_default)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow_column_default)


class UnitKey(Base):
    """A signing key of a unit (its own, or the platform's key towards it). Secrets are sealed
    at rest (:mod:`zhixing.linkage.keys`); during a rotation the previous secret of a unit key
    is accepted until ``previous_valid_until``."""

    __tablename__ = "linkage_keys"

    id: Mapped[int] = mapped_column(primary_key=True)
    unit_id: Mapped[int] = mapped_column(ForeignKey("linkage_units.id"), index=True)
    key_id: Mapped[str] = mapped_column(String(64), unique=True)
    role: Mapped[KeyRole] = mapped_column(EnumText(KeyRole, 16))
    sealed_secret: Mapped[str] = mapped_column(String(255))
    sealed_previous: Mapped[str | None] = mapped_column(String(255))
    previous_valid_until: Mapped[datetime | None] = mapped_column()
    revoked_at: Mapped[datetime | None] = mapped_column()
    created_at: Mapped[datetime] = mapped_column(default=utcnow_column_default)
    rotated_at: Mapped[datetime | None] = mapped_column()


class SeenNonce(Base):
    """Nonces accepted per key, kept for as long as their request could still be replayed."""

    __tablename__ = "linkage_nonces"
    __table_args__ = (Index("ix_linkage_nonces_keep_until", "keep_until"),)

    key_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    nonce: Mapped[str] = mapped_column(String(128), primary_key=True)
    keep_until: Mapped[datetime] = mapped_column()


class Inquiry(Base):
    """One officer's request (or a scheduled re-query) fanned out to many units."""

    __tablename__ = "linkage_inquiries"
    __table_args__ = (Index("ix_linkage_inquiries_case", "case_id", "id"),
                      Index("ix_linkage_inquiries_court_created", "court_id", "created_at"))

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id"))
    court_id: Mapped[int] = mapped_column(ForeignKey("courts.id"))
    origin: Mapped[str] = mapped_column(String(16))  # officer, requery
    requested_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    purpose: Mapped[str] = mapped_column(String(255))
    legal_basis: Mapped[str] = mapped_column(String(255))
    kinds: Mapped[list[str]] = mapped_column(JSON, default=list)
    party_ids: Mapped[list[int]] = mapped_column(JSON, default=list)
    task_count: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(default=utcnow_column_default)


class ControlOrder(Base):
    """A freeze, renewal, release, deduction or seal sent to a unit, applied exactly once.

    Orders on one asset form a chain (protocol section 7): ``(chain_id, sequence)`` is unique,
    so two orders can never claim the same place, and an order is sent only once the one it
    follows has been applied.
    """

    __tablename__ = "linkage_orders"
    __table_args__ = (
        # One order per place in a chain among those sent or applied (a refused order frees
        # its place: the next one is sent there again, superseding the same applied order).
        Index("uq_linkage_orders_chain_place", "chain_id", "sequence", unique=True,
              postgresql_where=text("status IN ('sent', 'applied', 'partial')"),
              sqlite_where=text("status IN ('sent', 'applied', 'partial')")),
        UniqueConstraint("case_id", "request_key"),
        Index("ix_linkage_orders_case", "case_id", "id"),
        Index("ix_linkage_orders_asset", "asset_id", "id"),
        Index("ix_linkage_orders_status", "status"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    task_id: Mapped[str] = mapped_column(String(64), unique=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id"))
    court_id: Mapped[int] = mapped_column(ForeignKey("courts.id"))
    asset_id: Mapped[int] = mapped_column(ForeignKey("assets.id"))
    unit_id: Mapped[int] = mapped_column(ForeignKey("linkage_units.id"))
    party_id: Mapped[int] = mapped_column(ForeignKey("parties.id"))
    kind: Mapped[str] = mapped_column(String(16))
    chain_id: Mapped[str] = mapped_column(String(64))
    sequence: Mapped[int] = mapped_column(Integer)
    supersedes_id: Mapped[int | None] = mapped_column(ForeignKey("linkage_orders.id"))
    amount_fen: Mapped[int | None] = mapped_column(BigInteger)
    period_days: Mapped[int | None] = mapped_column(Integer)
    document_number: Mapped[str] = mapped_column(String(64))
    purpose: Mapped[str] = mapped_column(String(255))
    legal_basis: Mapped[str] = mapped_column(String(255))
    origin: Mapped[str] = mapped_column(String(16))  # officer, watch
    request_key: Mapped[str | None] = mapped_column(String(64))
    status: Mapped[OrderStatus] = mapped_column(EnumText(OrderStatus, 24))
    requested_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    requested_at: Mapped[datetime] = mapped_column(default=utcnow_column_default)
    approved_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    approved_at: Mapped[datetime | None] = mapped_column()
    decision_note: Mapped[str | None] = mapped_column(String(255))
    applied_amount_fen: Mapped[int | None] = mapped_column(BigInteger)
    applied_at: Mapped[datetime | None] = mapped_column()
    expires_on: Mapped[date | None] = mapped_column(Date)
    unit_reference: Mapped[str | None] = mapped_column(String(64))
    refusal_code: Mapped[str | None] = mapped_column(String(32))
    refusal_message: Mapped[str | None] = mapped_column(String(500))
    released: Mapped[bool] = mapped_column(Boolean, default=False)


class LinkageTask(Base):
    """One message to one unit, tracked queued → delivered → acknowledged → final."""

    __tablename__ = "linkage_tasks"
    __table_args__ = (
        Index("ix_linkage_tasks_pending", "unit_id", "status", "available_at", "id"),
        Index("ix_linkage_tasks_inquiry", "inquiry_id", "id"),
        Index("ix_linkage_tasks_case", "case_id", "id"),
        Index("ix_linkage_tasks_due", "status", "due_at"),
        Index("ix_linkage_tasks_court_created", "court_id", "created_at"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    task_id: Mapped[str] = mapped_column(String(64), unique=True)
    unit_id: Mapped[int] = mapped_column(ForeignKey("linkage_units.id"))
    kind: Mapped[str] = mapped_column(String(24))
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id"))
    court_id: Mapped[int] = mapped_column(ForeignKey("courts.id"))
    party_id: Mapped[int] = mapped_column(ForeignKey("parties.id"))
    inquiry_id: Mapped[int | None] = mapped_column(ForeignKey("linkage_inquiries.id"))
    order_id: Mapped[int | None] = mapped_column(ForeignKey("linkage_orders.id"))
    status: Mapped[TaskStatus] = mapped_column(EnumText(TaskStatus, 16))
    message: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(default=utcnow_column_default)
    due_at: Mapped[datetime] = mapped_column()
    # Pull: not offered again before this (a fetched task is held back from other fetches).
    # Push: the next delivery attempt (backoff after a failed push).
    available_at: Mapped[datetime] = mapped_column()
    delivered_at: Mapped[datetime | None] = mapped_column()
    acknowledged_at: Mapped[datetime | None] = mapped_column()
    answered_at: Mapped[datetime | None] = mapped_column()
    delivery_attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(String(255))
    result: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    found_count: Mapped[int] = mapped_column(Integer, default=0)
    found_fen: Mapped[int] = mapped_column(BigInteger, default=0)


# The table itself, for the protocol's hot statements: Core statements skip the ORM's bulk
# machinery, which costs more than the statement on an acknowledgement or a fetch.
TASKS = cast(Table, LinkageTask.__table__)


class UnitEvent(Base):
    """An unsolicited report of a unit: money arrived in an account under a standing freeze."""

    __tablename__ = "linkage_events"
    __table_args__ = (UniqueConstraint("unit_id", "event_id"),
                      Index("ix_linkage_events_case", "case_id", "id"))

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    unit_id: Mapped[int] = mapped_column(ForeignKey("linkage_units.id"))
    event_id: Mapped[str] = mapped_column(String(64))
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id"))
    order_id: Mapped[int] = mapped_column(ForeignKey("linkage_orders.id"))  # the standing freeze
    follow_up_order_id: Mapped[int | None] = mapped_column(ForeignKey("linkage_orders.id"))
    message: Mapped[dict[str, Any]] = mapped_column(JSON)
    amount_fen: Mapped[int] = mapped_column(BigInteger)
    amount_frozen_fen: Mapped[int] = mapped_column(BigInteger)
    received_at: Mapped[datetime] = mapped_column(default=utcnow_column_default)
