"""Append-only, hash-chained audit log.

Services call :func:`record` inside their unit of work. The records are chained when the
transaction commits (``before_commit``), under a lock, so the chain order is the commit order and
a rolled-back change leaves no audit record behind. Each record's hash covers its fields and the
previous record's hash: altering or removing any record breaks every link after it, and
``zhixing audit verify`` names the first broken one.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import event, select, text
from sqlalchemy.orm import Session

from zhixing.core.actor import Actor
from zhixing.core.clock import utcnow
from zhixing.core.models import AuditRecord

GENESIS_HASH = "0" * 64
_PENDING_KEY = "zhixing_audit_pending"
# Arbitrary constant naming the audit chain's advisory lock on PostgreSQL.
_PG_LOCK_ID = 7_301_001


@dataclass(frozen=True)
class _Pending:
    occurred_at: datetime
    actor: Actor
    action: str
    object_type: str | None
    object_id: str | None
    court_id: int | None
    case_id: int | None
    purpose: str | None
    details: dict[str, Any]


def record(
    session: Session,
    actor: Actor,
    action: str,
    *,
    object_type: str | None = None,
    object_id: str | int | None = None,
    court_id: int | None = None,
    case_id: int | None = None,
    purpose: str | None = None,
    details: dict[str, Any] | None = None,
) -> None:
    """Queue an audit record; it is chained and written when ``session`` commits."""
    pending: list[_Pending] = session.info.setdefault(_PENDING_KEY, [])
    pending.append(
        _Pending(
            occurred_at=utcnow(),
            actor=actor,
            action=action,
            object_type=object_type,
            object_id=None if object_id is None else str(object_id),
            court_id=court_id if court_id is not None else actor.court_id,
            case_id=case_id,
            purpose=purpose,
            details=details or {},
        )
    )


def canonical_payload(rec: AuditRecord) -> str:
    """The exact bytes a record's hash covers (stable key order, UTC microseconds)."""
    fields = {
        "seq": rec.seq,
        "occurred_at": rec.occurred_at.isoformat(timespec="microseconds"),
        "actor_kind": rec.actor_kind,
        "actor_id": rec.actor_id,
        "actor_name": rec.actor_name,
        "actor_roles": rec.actor_roles,
        "court_id": rec.court_id,
        "action": rec.action,
        "object_type": rec.object_type,
        "object_id": rec.object_id,
        "case_id": rec.case_id,
        "purpose": rec.purpose,
        "client_ip": rec.client_ip,
        "details": rec.details,
        "prev_hash": rec.prev_hash,
    }
    return json.dumps(fields, sort_keys=True, ensure_ascii=False, separators=(",", ":"))


def compute_hash(rec: AuditRecord) -> str:
    return hashlib.sha256(canonical_payload(rec).encode()).hexdigest()


def flush_pending(session: Session) -> None:
    """Chain and add the queued records. Runs from the ``before_commit`` hook, after the other
    commit hooks (:func:`zhixing.hooks.install` installs it last)."""
    pending: list[_Pending] = session.info.pop(_PENDING_KEY, [])
    if not pending:
        return
    # Write the transaction's own changes first: the chain's lock is held from here to the end
    # of COMMIT, and every audited commit of every process waits for it, so nothing but the
    # chain's own row may be written while it is held (a bank's results post used to flush its
    # task updates and assets under it, and the posts queued behind each other).
    session.flush()
    bind = session.get_bind()
    if bind.dialect.name == "postgresql":
        session.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _PG_LOCK_ID})
    # On SQLite the transaction already holds the write lock (BEGIN IMMEDIATE).
    head = session.execute(
        select(AuditRecord.seq, AuditRecord.hash).order_by(AuditRecord.seq.desc()).limit(1)
    ).first()
    seq, prev = (head[0], head[1]) if head else (0, GENESIS_HASH)
    for p in pending:
        seq += 1
        rec = AuditRecord(
            seq=seq,
            occurred_at=p.occurred_at,
            actor_kind=p.actor.kind,
            actor_id=p.actor.id,
            actor_name=p.actor.name,
            actor_roles=",".join(sorted(p.actor.roles)) or None,
            court_id=p.court_id,
            action=p.action,
            object_type=p.object_type,
            object_id=p.object_id,
            case_id=p.case_id,
            purpose=p.purpose,
            client_ip=p.actor.client_ip,
            details=p.details,
            prev_hash=prev,
        )
        rec.hash = compute_hash(rec)
        prev = rec.hash
        session.add(rec)


def discard_pending(session: Session) -> None:
    session.info.pop(_PENDING_KEY, None)


@dataclass(frozen=True)
class VerifyResult:
    ok: bool
    checked: int
    first_bad_seq: int | None = None
    problem: str | None = None
    head_hash: str | None = None


def _stream(session: Session, batch: int = 5000) -> Iterator[AuditRecord]:
    last = 0
    while True:
        rows = session.scalars(
            select(AuditRecord).where(AuditRecord.seq > last).order_by(AuditRecord.seq)
            .limit(batch)
        ).all()
        if not rows:
            return
        yield from rows
        last = rows[-1].seq
        session.expunge_all()


def verify_chain(session: Session) -> VerifyResult:
    """Walk the whole chain; report the first record altered, removed or reordered."""
    expected_seq = 1
    prev = GENESIS_HASH
    checked = 0
    for rec in _stream(session):
        if rec.seq != expected_seq:
            return VerifyResult(False, checked, expected_seq,
                                f"record {expected_seq} is missing (next present is {rec.seq})")
        if rec.prev_hash != prev:
            return VerifyResult(False, checked, rec.seq,
                                f"record {rec.seq} does not link to record {rec.seq - 1}")
        if compute_hash(rec) != rec.hash:
            return VerifyResult(False, checked, rec.seq,
                                f"record {rec.seq} was altered (its hash does not match)")
        prev = rec.hash
        expected_seq += 1
        checked += 1
    return VerifyResult(True, checked, head_hash=prev if checked else None)


def install_hooks() -> None:
    """Chain queued records at commit; forget them on rollback. Idempotent."""
    if not event.contains(Session, "before_commit", flush_pending):
        event.listen(Session, "before_commit", flush_pending)
        event.listen(Session, "after_rollback", discard_pending)
