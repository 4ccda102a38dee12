"""Append-only, hash-chained audit log.

Services call :func:`record` inside their unit of work. The records are chained when the
transaction commits (``before_commit``), under the lock of the chain's head row, so the chain
order is the commit order and a rolled-back change leaves no audit record behind. Each record
carries the digest of its own fields, and its hash covers the previous record's hash, its place
and that digest: altering or removing any record breaks every link after it, removing the
newest ones disagrees with the head row, and ``zhixing audit verify`` names the first problem.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import event, insert, select
from sqlalchemy.orm import Session

from zhixing.core.actor import Actor
from zhixing.core.clock import utcnow
from zhixing.core.models import AuditHead, AuditPending, AuditRecord

GENESIS_HASH = "0" * 64
_PENDING_KEY = "zhixing_audit_pending"


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


_BODY_FIELDS = ("occurred_at", "actor_kind", "actor_id", "actor_name", "actor_roles",
                "court_id", "action", "object_type", "object_id", "case_id", "purpose",
                "client_ip", "details")


def _canonical(fields: dict[str, Any]) -> str:
    return json.dumps(fields, sort_keys=True, ensure_ascii=False, separators=(",", ":"))


def canonical_body(rec: AuditRecord) -> str:
    """The exact text a record's ``body_digest`` covers: its own fields (stable key order,
    UTC microseconds), not its place in the chain."""
    fields: dict[str, Any] = {name: getattr(rec, name) for name in _BODY_FIELDS}
    fields["occurred_at"] = rec.occurred_at.isoformat(timespec="microseconds")
    return _canonical(fields)


def body_digest(rec: AuditRecord) -> str:
    return hashlib.sha256(canonical_body(rec).encode()).hexdigest()


def link_hash(prev_hash: str, seq: int, digest: str) -> str:
    """A record's hash: its link to the previous record, its place, and its digest. Simple
    enough for PostgreSQL to compute at commit (``sha256`` over the same text)."""
    return hashlib.sha256(f"{prev_hash}:{seq}:{digest}".encode()).hexdigest()


def legacy_hash(rec: AuditRecord) -> str:
    """The hash of records chained before 0014: every field and the link in one text."""
    fields: dict[str, Any] = {name: getattr(rec, name) for name in _BODY_FIELDS}
    fields.update(seq=rec.seq, prev_hash=rec.prev_hash,
                  occurred_at=rec.occurred_at.isoformat(timespec="microseconds"))
    return hashlib.sha256(_canonical(fields).encode()).hexdigest()


def expected_hash(rec: AuditRecord) -> str:
    if rec.body_digest is None:
        return legacy_hash(rec)
    return link_hash(rec.prev_hash, rec.seq, rec.body_digest)


def flush_pending(session: Session) -> None:
    """Chain and add the queued records. Runs from the ``before_commit`` hook, after the other
    commit hooks (:func:`zhixing.hooks.install` installs it last)."""
    pending: list[_Pending] = session.info.pop(_PENDING_KEY, [])
    if not pending:
        return
    rows = [_row(p) for p in pending]
    if session.get_bind().dialect.name == "postgresql":
        # PostgreSQL chains them itself, in a trigger deferred to this transaction's COMMIT
        # (migration 0014): the chain's lock, which every audited commit of every process
        # waits for, is then held only while the database appends and commits, never while
        # this process gets round to its next statement.
        session.execute(insert(AuditPending), rows)
        return
    # SQLite: the transaction already holds the database's write lock (BEGIN IMMEDIATE).
    head = session.get(AuditHead, 1)
    if head is None:
        raise RuntimeError("the audit chain has no head row; run `zhixing migrate`")
    for row in rows:
        seq = head.seq + 1
        record = AuditRecord(seq=seq, prev_hash=head.hash, **row)
        record.hash = link_hash(head.hash, seq, row["body_digest"])
        session.add(record)
        head.seq, head.hash = seq, record.hash


def _row(p: _Pending) -> dict[str, Any]:
    rec = AuditRecord(
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
    )
    # The digest is of the values as they will read back: a JSON round trip of the details.
    rec.details = json.loads(json.dumps(rec.details, ensure_ascii=False))
    row = {name: getattr(rec, name) for name in _BODY_FIELDS}
    row["body_digest"] = body_digest(rec)
    return row


def discard_pending(session: Session) -> None:
    session.info.pop(_PENDING_KEY, None)


@dataclass(frozen=True)
class VerifyResult:
    ok: bool
    checked: int
    first_bad_seq: int | None = None
    problem: str | None = None
    head_hash: str | None = None


class ChainCheck:
    """Checks records fed in chain order (``zhixing audit verify``, and an export)."""

    def __init__(self) -> None:
        self.checked = 0
        self.prev = GENESIS_HASH
        self.digested = False  # a record with a digest was seen: none without may follow

    def feed(self, rec: AuditRecord) -> tuple[int, str] | None:
        """The next record; None if it holds, else the first bad record's seq and why."""
        expected_seq = self.checked + 1
        if rec.seq != expected_seq:
            return expected_seq, f"record {expected_seq} is missing (next present is {rec.seq})"
        if rec.prev_hash != self.prev:
            return rec.seq, f"record {rec.seq} does not link to record {rec.seq - 1}"
        if rec.body_digest is None and self.digested:
            return rec.seq, f"record {rec.seq} was altered (it lost its digest)"
        if rec.body_digest is not None and body_digest(rec) != rec.body_digest:
            return rec.seq, f"record {rec.seq} was altered (its digest does not match)"
        if expected_hash(rec) != rec.hash:
            return rec.seq, f"record {rec.seq} was altered (its hash does not match)"
        self.digested = self.digested or rec.body_digest is not None
        self.prev = rec.hash
        self.checked = expected_seq
        return None

    @property
    def head(self) -> str | None:
        return self.prev if self.checked else None


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
    """Walk the whole chain; report the first record altered, removed or reordered, and a
    head row that does not name the newest record (records removed from the end)."""
    check = ChainCheck()
    for rec in _stream(session):
        broken = check.feed(rec)
        if broken is not None:
            return VerifyResult(False, check.checked, *broken)
    head = session.get(AuditHead, 1)
    if head is not None and (head.seq, head.hash) != (check.checked, check.prev):
        return VerifyResult(False, check.checked, check.checked + 1,
                            f"the chain's head names record {head.seq}, the newest present is "
                            f"record {check.checked}: records were removed from the end")
    return VerifyResult(True, check.checked, head_hash=check.head)


def install_hooks() -> None:
    """Chain queued records at commit; forget them on rollback. Idempotent."""
    if not event.contains(Session, "before_commit", flush_pending):
        event.listen(Session, "before_commit", flush_pending)
        event.listen(Session, "after_rollback", discard_pending)
