"""Entries (one bound person of one measure) and the ordered change feed partners pull.

Every change of an entry appends one feed item in the same transaction. Sequence numbers are
taken from :class:`FeedHead` under its row lock, so they are handed out in commit order and
without gaps: a partner that reads ``seq > cursor`` can never see 12 before a still-uncommitted
11 (which an autoincrement column would allow on PostgreSQL), nor skip a number that a rolled-back
transaction took. The price is that list changes serialise on that lock, which is fine: courts
list thousands of people a day, not thousands a second.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from zhixing.cases.models import Case, Party
from zhixing.core.clock import utcnow
from zhixing.courts.models import Court
from zhixing.credit.activities import activities_of
from zhixing.credit.models import BoundRole, Entry, FeedHead, FeedItem, FeedOp, SourceKind


@dataclass(frozen=True)
class Binding:
    """A person a measure binds, with the activities it restricts for that person."""

    party: Party
    role: BoundRole
    mask: int


def _region_of(party: Party) -> str | None:
    number = party.id_number or ""
    if party.id_kind in ("ric", "ric15") and len(number) >= 6 and number[:6].isdigit():
        return number[:6]
    return None


def next_seqs(session: Session, count: int) -> range:
    """Reserve ``count`` feed numbers under the head's row lock (held until commit)."""
    dialect = session.get_bind().dialect.name
    ins = pg_insert if dialect == "postgresql" else sqlite_insert
    session.execute(ins(FeedHead).values(id=1, last_seq=0).on_conflict_do_nothing())
    last = session.execute(select(FeedHead.last_seq).where(FeedHead.id == 1)
                           .with_for_update()).scalar_one()
    session.execute(update(FeedHead).where(FeedHead.id == 1)
                    .values(last_seq=last + count))
    return range(last + 1, last + count + 1)


def payload_of(entry: Entry, case: Case, court: Court, extra: dict[str, Any]) -> dict[str, Any]:
    """What a partner receives about an entry (before its own filtering and hashing)."""
    return {
        "entry_id": entry.id,
        "version": entry.version,
        "active": entry.active,
        "name": entry.name,
        "id_kind": entry.id_kind,
        "id_number": entry.id_number,
        "birth_date": entry.birth_date.isoformat() if entry.birth_date else None,
        "region": entry.region,
        "role": str(entry.role),
        "source": str(entry.source_kind),
        "activities": [str(a) for a in activities_of(entry.mask)],
        "court_code": court.code,
        "court_name": court.name_zh,
        "case_number": case.case_number,
        **extra,
    }


def sync(session: Session, kind: SourceKind, source_id: int, case: Case,
         bindings: Sequence[Binding], *, active: bool, extra: dict[str, Any] | None = None
         ) -> list[Entry]:
    """Bring the entries of one measure to ``bindings`` (inactive ones get mask 0) and append a
    feed item for every entry that changed. Returns the measure's entries."""
    court = session.get(Court, case.court_id)
    assert court is not None
    existing = {(e.party_id, e.role): e for e in session.scalars(
        select(Entry).where(Entry.source_kind == kind, Entry.source_id == source_id))}
    wanted = {(b.party.id, b.role): b for b in bindings}
    changes: list[tuple[Entry, FeedOp, int]] = []
    now = utcnow()
    for key, b in wanted.items():
        mask = b.mask if active else 0
        entry = existing.get(key)
        if entry is None:
            if not mask:
                continue
            entry = Entry(source_kind=kind, source_id=source_id, party_id=b.party.id,
                          role=b.role, case_id=case.id, court_id=case.court_id,
                          name=b.party.name, id_kind=str(b.party.id_kind or "") or None,
                          id_number=b.party.id_number, birth_date=b.party.birth_date,
                          region=_region_of(b.party), mask=mask, active=True, version=1,
                          updated_at=now)
            session.add(entry)
            existing[key] = entry
            changes.append((entry, FeedOp.ADD, 0))
        elif entry.mask != mask or entry.active != bool(mask):
            prev = entry.mask
            entry.mask, entry.active = mask, bool(mask)
            entry.version += 1
            entry.updated_at = now
            changes.append((entry, FeedOp.CHANGE if mask else FeedOp.DELETE, prev))
    for key, entry in existing.items():
        if key not in wanted and entry.active:
            prev = entry.mask
            entry.mask, entry.active = 0, False
            entry.version += 1
            entry.updated_at = now
            changes.append((entry, FeedOp.DELETE, prev))
    if changes:
        session.flush()
        seqs = next_seqs(session, len(changes))
        for seq, (entry, op, prev) in zip(seqs, changes, strict=True):
            session.add(FeedItem(seq=seq, entry_id=entry.id, op=op, mask=entry.mask,
                                 prev_mask=prev, at=now,
                                 payload=payload_of(entry, case, court, extra or {})))
    return list(existing.values())


def entries_of(session: Session, kind: SourceKind, source_id: int) -> list[Entry]:
    return list(session.scalars(select(Entry).where(Entry.source_kind == kind,
                                                    Entry.source_id == source_id)
                                .order_by(Entry.id)))

