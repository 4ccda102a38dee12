"""The duty desk's lists: tips (执行线索) and dispatch orders (派警), filtered, searched and paged.

What a list may hold is decided by the field policy, as for single records: a tip is seen by
the courts within reach of its handling court or of its center (``tips.visible``), a dispatch
by those within reach of its issuing court or of its team's court. Pages are keyset pages
(``limit + 1`` rows past an opaque cursor), no ``COUNT`` over the table.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TypeVar

from sqlalchemy import ColumnElement, Select, or_, select
from sqlalchemy.orm import Session

from zhixing.cases.models import Case, CaseParty, Party
from zhixing.core.actor import Actor
from zhixing.core.clock import utcnow
from zhixing.core.errors import ValidationFailed
from zhixing.core.pagination import Page, clamp_limit, decode_cursor, encode_cursor
from zhixing.courts.models import Court
from zhixing.field import dispatch as dispatches
from zhixing.field import policy
from zhixing.field import tips as tipsvc
from zhixing.field.models import Dispatch, FieldTeam, Tip, TipStatus

TIP_STATUSES = ("open", *(s.value for s in TipStatus))
URGENCIES = ("urgent", "normal")
RECEIVED_WITHIN_DAYS = (1, 3, 7, 30, 90)
DISPATCH_STATUSES = ("active", *(s.value for s in dispatches.S))
MAX_ID = 2**63 - 1


@dataclass(frozen=True)
class TipFilter:
    status: str | None = "open"  # a tip status, "open" (received or triaged), or None: all
    urgency: str | None = None  # urgent / normal
    court: str | None = None  # a court code: tips handled there or routed to its center, and below
    within_days: int | None = None  # received within the last N days
    overdue: bool = False  # open and past the check-by date
    q: str | None = None  # a case number, a debtor's name, a tip number, or words of the tip


@dataclass(frozen=True)
class DispatchFilter:
    status: str | None = "active"  # a dispatch status, "active" (not done or cancelled), or None
    court: str | None = None  # issued by that court or sent to its teams, and below
    q: str | None = None  # a case number, a dispatch number, or words of the task or place


def _subtree(session: Session, actor: Actor, code: str) -> Select[tuple[int]]:
    court = session.scalar(select(Court).where(Court.code == code.strip()))
    if court is None or not actor.can_see_court(court.id):
        raise ValidationFailed(f"no court {code!r} within your reach", code="court_not_found",
                               field="court")
    return select(Court.id).where(Court.path.startswith(court.path))


def _record_number(q: str) -> int | None:
    """``#12`` or ``12``: a record number typed into the search box."""
    digits = q.removeprefix("#").strip()
    if digits.isascii() and digits.isdigit() and 0 < int(digits) <= MAX_ID:
        return int(digits)
    return None


def _case_number(q: str) -> str:
    return q.replace("(", "（").replace(")", "）")


def _after(cursor: str | None) -> tuple[datetime, int] | None:
    """The (moment, id) key a keyset page continues after."""
    values = decode_cursor(cursor)
    if values is None:
        return None
    if len(values) == 2 and isinstance(values[0], str) and isinstance(values[1], int) \
            and not isinstance(values[1], bool):
        try:
            moment = datetime.fromisoformat(values[0])
        except ValueError:
            moment = None
        if moment is not None and moment.tzinfo is not None:
            return moment, values[1]
    raise ValidationFailed("cursor is not valid", code="invalid_cursor", field="cursor")


R = TypeVar("R", Tip, Dispatch)


def _page(rows: list[R], limit: int, key: Callable[[R], datetime]) -> Page[R]:
    items = rows[:limit]
    nxt = None
    if len(rows) > limit and items:
        nxt = encode_cursor([key(items[-1]).isoformat(), items[-1].id])
    return Page(items, nxt)


# --- tips --------------------------------------------------------------------------------------


def tip_query(session: Session, actor: Actor, f: TipFilter,
              now: datetime | None = None) -> Select[tuple[Tip]]:
    """The tips the filter selects among those the actor may see; bad filters are refused."""
    policy.require_role(actor, policy.READ_ROLES, "read tips")
    now = now or utcnow()
    if f.status and f.status not in TIP_STATUSES:
        raise ValidationFailed(f"unknown status {f.status!r}", code="invalid_status",
                               field="status")
    stmt = tipsvc.visible(actor, f.status or None, f.overdue, now)
    if f.urgency:
        if f.urgency not in URGENCIES:
            raise ValidationFailed(f"unknown urgency {f.urgency!r}", code="invalid_urgency",
                                   field="urgency")
        stmt = stmt.where(Tip.urgent.is_(f.urgency == "urgent"))
    if f.court:
        ids = _subtree(session, actor, f.court)
        stmt = stmt.where(Tip.court_id.in_(ids) | Tip.center_court_id.in_(ids))
    if f.within_days is not None:
        if f.within_days not in RECEIVED_WITHIN_DAYS:
            raise ValidationFailed("received within 1, 3, 7, 30 or 90 days",
                                   code="invalid_period", field="within")
        stmt = stmt.where(Tip.submitted_at >= now - timedelta(days=f.within_days))
    q = (f.q or "").strip()
    if q:
        debtors = select(Party.id).where(Party.name == q)
        matches: list[ColumnElement[bool]] = [
            Tip.content.contains(q, autoescape=True), Tip.place.contains(q, autoescape=True),
            Tip.case_id.in_(select(Case.id).where(Case.case_number == _case_number(q))),
            Tip.debtor_party_id.in_(debtors),
            Tip.case_id.in_(select(CaseParty.case_id).where(
                CaseParty.role == "debtor", CaseParty.party_id.in_(debtors))),
        ]
        number = _record_number(q)
        if number is not None:
            matches.append(Tip.id == number)
        stmt = stmt.where(or_(*matches))
    return stmt


def tip_page(session: Session, actor: Actor, f: TipFilter, limit: int | None = None,
             cursor: str | None = None) -> Page[Tip]:
    """Tips by their check-by date, the most pressing first."""
    n = clamp_limit(limit)
    stmt = tip_query(session, actor, f)
    after = _after(cursor)
    if after is not None:
        due, tid = after
        stmt = stmt.where((Tip.due_at > due) | ((Tip.due_at == due) & (Tip.id > tid)))
    rows = list(session.scalars(stmt.order_by(Tip.due_at, Tip.id).limit(n + 1)))
    return _page(rows, n, lambda t: t.due_at)


def possible_duplicates(session: Session, actor: Actor, tip: Tip, limit: int = 5) -> list[Tip]:
    """Other open tips on the same case or debtor: what the desk may want to merge."""
    if tip.case_id is None and tip.debtor_party_id is None:
        return []
    same: list[ColumnElement[bool]] = []
    if tip.case_id is not None:
        same.append(Tip.case_id == tip.case_id)
    if tip.debtor_party_id is not None:
        same.append(Tip.debtor_party_id == tip.debtor_party_id)
    return list(session.scalars(tipsvc.visible(actor, "open").where(
        Tip.id != tip.id, or_(*same)).order_by(Tip.submitted_at, Tip.id).limit(limit)))


# --- dispatches --------------------------------------------------------------------------------


def dispatch_query(session: Session, actor: Actor, f: DispatchFilter) -> Select[tuple[Dispatch]]:
    policy.require_role(actor, policy.READ_ROLES, "read dispatches")
    reach = actor.visible_court_ids
    stmt = select(Dispatch).where(
        Dispatch.court_id.in_(reach)
        | Dispatch.team_id.in_(select(FieldTeam.id).where(FieldTeam.court_id.in_(reach))))
    if f.status == "active":
        stmt = stmt.where(Dispatch.status.in_(dispatches.ACTIVE))
    elif f.status:
        if f.status not in DISPATCH_STATUSES:
            raise ValidationFailed(f"unknown status {f.status!r}", code="invalid_status",
                                   field="status")
        stmt = stmt.where(Dispatch.status == f.status)
    if f.court:
        ids = _subtree(session, actor, f.court)
        stmt = stmt.where(Dispatch.court_id.in_(ids) | Dispatch.team_id.in_(
            select(FieldTeam.id).where(FieldTeam.court_id.in_(ids))))
    q = (f.q or "").strip()
    if q:
        matches: list[ColumnElement[bool]] = [
            Dispatch.task.contains(q, autoescape=True), Dispatch.place.contains(q, autoescape=True),
            Dispatch.case_id.in_(select(Case.id).where(Case.case_number == _case_number(q))),
        ]
        number = _record_number(q)
        if number is not None:
            matches.append(Dispatch.id == number)
        stmt = stmt.where(or_(*matches))
    return stmt


def dispatch_page(session: Session, actor: Actor, f: DispatchFilter, limit: int | None = None,
                  cursor: str | None = None) -> Page[Dispatch]:
    """Dispatch orders, the newest first."""
    n = clamp_limit(limit)
    stmt = dispatch_query(session, actor, f)
    after = _after(cursor)
    if after is not None:
        at, did = after
        stmt = stmt.where((Dispatch.dispatched_at < at)
                          | ((Dispatch.dispatched_at == at) & (Dispatch.id < did)))
    rows = list(session.scalars(stmt.order_by(Dispatch.dispatched_at.desc(),
                                              Dispatch.id.desc()).limit(n + 1)))
    return _page(rows, n, lambda d: d.dispatched_at)
