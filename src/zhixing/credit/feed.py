"""A partner's view of the change feed: its cursor, its subscription, its acknowledgements.

The feed (:mod:`zhixing.credit.entries`) numbers every change of every entry without gaps in
commit order, so "everything after my cursor" is exact: a partner never misses a change and never
gets one twice, whatever the platform's writers do concurrently. Each partner sees the feed
through its subscription: a change that touches none of its activities is skipped (the cursor
still moves past it), and a change is re-labelled by what it means *to that partner*: an airline
sees "add" when a listing first restricts flights, even if the entry was in the feed before for
loans only, and "delete" when flights are no longer restricted.

Partners acknowledge what they have applied; the command center watches for partners whose
acknowledgement lags (:func:`overdue_partners`), because a partner that stopped pulling still
lets listed people fly.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import Row, and_, case, func, or_, select, update
from sqlalchemy.orm import Session

from zhixing.cases.models import Case
from zhixing.core.db import get_engine
from zhixing.core.errors import Conflict, ValidationFailed
from zhixing.courts.models import Court
from zhixing.credit import partners as partner_registry
from zhixing.credit.activities import activities_of
from zhixing.credit.models import Entry, FeedHead, FeedItem, Partner

MAX_LIMIT = 1000
DEFAULT_LIMIT = 100
# A fetch scans at most this many sequence numbers, so a partner far behind with a narrow
# subscription gets a quick (maybe empty) page and a cursor that moves on, never a slow query.
SCAN_WINDOW = 50_000
DEFAULT_LAG = timedelta(hours=24)


def head_seq(session: Session) -> int:
    """The last sequence number given out (0 for an empty feed)."""
    return int(session.scalar(select(FeedHead.last_seq).where(FeedHead.id == 1)) or 0)


def check_limit(limit: int | None, *, maximum: int = MAX_LIMIT) -> int:
    if limit is None:
        return DEFAULT_LIMIT
    if not 1 <= limit <= maximum:
        raise ValidationFailed(f"limit is between 1 and {maximum}", code="invalid_limit",
                               field="limit")
    return limit


# --- what a partner sees of an entry -----------------------------------------------------------


@dataclass(frozen=True)
class View:
    """How one partner sees entries: its activity mask and, for hashed ids, its key."""

    mask: int
    hash_key: bytes | None

    @classmethod
    def of(cls, partner: Partner) -> View:
        key = partner_registry.hashing_key(partner.code) if partner.hashed_ids else None
        return cls(partner_registry.subscription_mask(partner), key)

    def entry(self, payload: dict[str, Any], mask: int) -> dict[str, Any]:
        """The entry as the partner receives it: only its activities; with hashed ids the
        number's keyed hash instead of the number, and no birth date."""
        out = dict(payload)
        out["activities"] = [str(a) for a in activities_of(mask & self.mask)]
        if self.hash_key is not None:
            number = out.pop("id_number", None)
            out.pop("birth_date", None)
            out["id_hash"] = partner_registry.hash_id(self.hash_key, number) if number else None
        return out


def partner_op(mask: int, prev_mask: int, sub: int) -> str | None:
    """The change as the partner sees it, or None when it does not concern the partner."""
    now, before = mask & sub, prev_mask & sub
    if not now and not before:
        return None
    if not now:
        return "delete"
    if not before:
        return "add"
    if now == before and mask != prev_mask:
        return None  # only activities the partner does not enforce changed
    return "change"


# --- pulling ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class FeedPage:
    items: list[dict[str, Any]]
    next_cursor: int  # the last sequence number scanned: the next ``after``
    has_more: bool
    head: int


def _concerns(sub: int) -> Any:
    """SQL for :func:`partner_op` is not None, so the database skips what the partner does not
    see (the Python check stays authoritative)."""
    now, before = FeedItem.mask.op("&")(sub), FeedItem.prev_mask.op("&")(sub)
    return or_(and_(now != before),
               and_(FeedItem.mask == FeedItem.prev_mask, now != 0))


def fetch(session: Session, partner: Partner, after: int, limit: int | None,
          now: datetime) -> FeedPage:
    """Changes with ``seq > after`` that concern the partner, in order, at most ``limit``.

    The head is read first: every number up to it belongs to a committed transaction (numbers
    are taken under the head's row lock and published at commit), so the scan up to the head
    sees a complete prefix of the feed and the cursor may move to its end."""
    size = check_limit(limit)
    head = head_seq(session)
    if after < 0 or after > head:
        raise ValidationFailed(f"cursor {after} does not exist: the feed ends at {head}",
                               code="unknown_cursor", field="after", details={"head": head})
    view = View.of(partner)
    upper = min(head, after + SCAN_WINDOW)
    rows = session.execute(
        select(FeedItem.seq, FeedItem.entry_id, FeedItem.mask, FeedItem.prev_mask, FeedItem.at,
               FeedItem.payload)
        .where(FeedItem.seq > after, FeedItem.seq <= upper, _concerns(view.mask))
        .order_by(FeedItem.seq).limit(size + 1)).all()
    full = len(rows) > size
    items = [_item(view, r) for r in rows[:size]]
    next_cursor = rows[size - 1].seq if full else upper
    page = FeedPage([i for i in items if i], next_cursor, full or upper < head, head)
    _record_fetch(session, partner, next_cursor, now)
    return page


def _item(view: View, row: Row[Any]) -> dict[str, Any]:
    op = partner_op(row.mask, row.prev_mask, view.mask)
    if op is None:
        return {}
    return {"seq": row.seq, "op": op, "entry_id": row.entry_id, "at": row.at,
            "entry": view.entry(row.payload, row.mask)}


def _record_fetch(session: Session, partner: Partner, cursor: int, now: datetime) -> None:
    # One statement that only moves forward: two concurrent fetches cannot lower it.
    session.execute(update(Partner).where(Partner.id == partner.id).values(
        fetched_seq=case((Partner.fetched_seq < cursor, cursor), else_=Partner.fetched_seq),
        last_fetch_at=now).execution_options(synchronize_session=False))


def acknowledge(session: Session, partner: Partner, cursor: int, now: datetime) -> Partner:
    """The partner has applied everything up to ``cursor``. An acknowledgement never goes
    backwards and never past what the partner was handed (409 ``ack_out_of_order``); repeating
    the last one is harmless."""
    session.refresh(partner, with_for_update=True)  # one acknowledgement at a time
    if cursor < partner.ack_seq or cursor > partner.fetched_seq:
        raise Conflict(
            f"acknowledgement {cursor} is out of order: acknowledged {partner.ack_seq}, "
            f"fetched up to {partner.fetched_seq}", code="ack_out_of_order", field="cursor",
            details={"ack_seq": partner.ack_seq, "fetched_seq": partner.fetched_seq})
    partner.ack_seq = cursor
    partner.last_ack_at = now
    session.flush()
    return partner


# --- the snapshot --------------------------------------------------------------------------------


@dataclass(frozen=True)
class SnapshotPage:
    head: int  # the feed position this page is consistent with
    items: list[dict[str, Any]]
    next_after: int | None
    has_more: bool


def snapshot(session: Session, partner: Partner, after: int, limit: int | None) -> SnapshotPage:
    """Active entries in the partner's subscription with ``id > after``, in id order, and the
    feed head they are consistent with (both read in one REPEATABLE READ transaction on
    PostgreSQL; on SQLite the request's transaction already holds the write lock)."""
    size = check_limit(limit)
    view = View.of(partner)
    if session.get_bind().dialect.name != "postgresql":
        return _snapshot(session, view, after, size)
    with get_engine().connect() as conn:
        conn = conn.execution_options(isolation_level="REPEATABLE READ")
        with Session(bind=conn) as own:
            page = _snapshot(own, view, after, size)
            own.rollback()
            return page


def _snapshot(session: Session, view: View, after: int, size: int) -> SnapshotPage:
    head = head_seq(session)
    rows = session.execute(
        select(Entry, Case.case_number, Court.code, Court.name_zh)
        .join(Case, Case.id == Entry.case_id).join(Court, Court.id == Entry.court_id)
        .where(Entry.active.is_(True), Entry.id > after, Entry.mask.op("&")(view.mask) != 0)
        .order_by(Entry.id).limit(size + 1)).all()
    full = len(rows) > size
    items = [view.entry(entry_payload(e, number, code, name), e.mask)
             for e, number, code, name in rows[:size]]
    last = rows[size - 1][0].id if full else (rows[-1][0].id if rows else None)
    return SnapshotPage(head, items, last, full)


def entry_payload(entry: Entry, case_number: str, court_code: str,
                  court_name: str) -> dict[str, Any]:
    """The same fields as a feed item's payload (:func:`zhixing.credit.entries.payload_of`)."""
    return {
        "entry_id": entry.id, "version": entry.version, "active": entry.active,
        "name": entry.name, "id_kind": entry.id_kind, "id_number": entry.id_number,
        "birth_date": _iso(entry.birth_date), "region": entry.region, "role": str(entry.role),
        "source": str(entry.source_kind), "activities": [str(a) for a in activities_of(entry.mask)],
        "court_code": court_code, "court_name": court_name, "case_number": case_number,
    }


def _iso(value: date | None) -> str | None:
    return value.isoformat() if value else None


# --- delivery status for the command center --------------------------------------------------


@dataclass(frozen=True)
class DeliveryStatus:
    partner: Partner
    head: int
    lag: int  # feed items not yet acknowledged (all of them, not only the partner's)
    overdue: bool


def _overdue(partner: Partner, head: int, now: datetime, lag: timedelta) -> bool:
    last = partner.last_ack_at or partner.created_at
    return partner.enabled and partner.ack_seq < head and last < now - lag


def delivery_status(session: Session, partners: Iterable[Partner], now: datetime,
                    lag: timedelta = DEFAULT_LAG) -> list[DeliveryStatus]:
    head = head_seq(session)
    return [DeliveryStatus(p, head, max(0, head - p.ack_seq), _overdue(p, head, now, lag))
            for p in partners]


def overdue_partners(session: Session, now: datetime,
                     lag: timedelta = DEFAULT_LAG) -> list[Partner]:
    """Enabled partners whose acknowledgement is behind the feed and whose last one (or their
    registration, if they never acknowledged) is older than ``lag``."""
    head = head_seq(session)
    cutoff = now - lag
    return list(session.scalars(
        select(Partner).where(Partner.enabled.is_(True), Partner.ack_seq < head,
                              func.coalesce(Partner.last_ack_at, Partner.created_at) < cutoff)
        .order_by(Partner.id)))
