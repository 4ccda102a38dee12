"""Tables every domain shares: the audit chain, the job queue, rate-limit counters."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, Index, Integer, String, Text, text
from sqlalchemy.orm import Mapped, mapped_column

from zhixing.core.db import Base, utcnow_column_default


class _AuditFields:
    """What an audit record says: when, who, what, on what, why."""

    occurred_at: Mapped[datetime]
    actor_kind: Mapped[str] = mapped_column(String(16))  # user, machine, system, anonymous
    actor_id: Mapped[str | None] = mapped_column(String(64))
    actor_name: Mapped[str | None] = mapped_column(String(128))
    actor_roles: Mapped[str | None] = mapped_column(String(128))
    court_id: Mapped[int | None] = mapped_column(Integer)
    object_type: Mapped[str | None] = mapped_column(String(64))
    object_id: Mapped[str | None] = mapped_column(String(64))
    case_id: Mapped[int | None] = mapped_column(BigInteger().with_variant(Integer, "sqlite"))
    purpose: Mapped[str | None] = mapped_column(String(255))
    client_ip: Mapped[str | None] = mapped_column(String(64))
    details: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


class AuditRecord(_AuditFields, Base):
    """One link of the append-only, hash-chained audit log."""

    __tablename__ = "audit_records"
    __table_args__ = (
        Index("ix_audit_records_court_seq", "court_id", "seq"),
        Index("ix_audit_records_object", "object_type", "object_id"),
    )

    # Assigned under a lock in the committing transaction: gaps mean a removed record.
    seq: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"),
                                     primary_key=True, autoincrement=False)
    action: Mapped[str] = mapped_column(String(64), index=True)
    prev_hash: Mapped[str] = mapped_column(String(64))
    # SHA-256 of the record's own fields (docs/architecture.md, "Audit chain"); None on the
    # records chained before 0014, whose hash covers their fields and the link at once.
    body_digest: Mapped[str | None] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))


class AuditPending(_AuditFields, Base):
    """A record on its way into the chain (PostgreSQL): written by the transaction that audits,
    moved into ``audit_records`` by a trigger deferred to that transaction's COMMIT (migration
    0014), so the chain's lock is held only while the database itself appends. Always empty
    between transactions."""

    __tablename__ = "audit_pending"

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"),
                                    primary_key=True, autoincrement=True)
    action: Mapped[str] = mapped_column(String(64))
    body_digest: Mapped[str] = mapped_column(String(64))


class AuditHead(Base):
    """The chain's newest link, one row: the committing transaction that appends locks it
    until its commit ends (the chain's order is the commit order) and moves it."""

    __tablename__ = "audit_head"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    seq: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"))
    hash: Mapped[str] = mapped_column(String(64))


class Job(Base):
    """A durable unit of background work, written in the transaction that causes it."""

    __tablename__ = "jobs"
    __table_args__ = (
        Index("ix_jobs_claimable", "state", "run_at"),
        # The enqueue-time duplicate check (SQLite cannot use the partial index below for it).
        Index("ix_jobs_dedupe_key", "dedupe_key"),
        # At most one pending job per dedupe key (recurring schedules, idempotent enqueue).
        Index(
            "uq_jobs_pending_dedupe",
            "dedupe_key",
            unique=True,
            postgresql_where=text("state IN ('queued', 'running')"),
            sqlite_where=text("state IN ('queued', 'running')"),
        ),
    )

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"),
                                    primary_key=True)
    kind: Mapped[str] = mapped_column(String(64))
    payload: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    state: Mapped[str] = mapped_column(String(16), default="queued")  # queued running done dead
    run_at: Mapped[datetime]
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    max_attempts: Mapped[int] = mapped_column(Integer, default=8)
    dedupe_key: Mapped[str | None] = mapped_column(String(128))
    interval_seconds: Mapped[int | None] = mapped_column(Integer)
    lease_owner: Mapped[str | None] = mapped_column(String(64))
    lease_token: Mapped[str | None] = mapped_column(String(32))
    lease_expires_at: Mapped[datetime | None]
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow_column_default)
    started_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]


class RateBucket(Base):
    """Fixed-window counter shared by all processes (login throttling, public endpoints)."""

    __tablename__ = "rate_buckets"

    key: Mapped[str] = mapped_column(String(160), primary_key=True)
    window_start: Mapped[datetime]
    count: Mapped[int] = mapped_column(Integer, default=0)
