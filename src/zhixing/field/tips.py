"""Tips (执行线索): taken from the public form, by phone at the duty desk, or from the field;
triaged, routed, checked within the statutory days, answered.

The tipster gets a follow-up code once; only its SHA-256 is stored, so the code is the only key
to the tip from outside and cannot be recovered from the database.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Select, select
from sqlalchemy.orm import Session

from zhixing.cases import documents
from zhixing.cases.models import Case, CaseParty
from zhixing.cases.service import event
from zhixing.core import audit
from zhixing.core.actor import Actor
from zhixing.core.clock import utcnow
from zhixing.core.errors import Conflict, NotFound, ValidationFailed
from zhixing.courts.models import Court
from zhixing.field import policy
from zhixing.field.models import (
    Tip,
    TipChannel,
    TipMessage,
    TipOutcome,
    TipStatus,
    TipsterRelation,
)
from zhixing.field.positions import check_point

CHECK_DAYS = 7  # RULES.md, Command center: a specific lead is checked within 7 days
CHECK_DAYS_URGENT = 3
OPEN = (TipStatus.RECEIVED, TipStatus.TRIAGED)
CODE_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"  # no 0/O, 1/I: read over the phone
CODE_LENGTH = 12  # 60 bits: guessing is hopeless, and look-ups are rate-limited


def due_for(submitted_at: datetime, urgent: bool) -> datetime:
    return submitted_at + timedelta(days=CHECK_DAYS_URGENT if urgent else CHECK_DAYS)


def is_overdue(tip: Tip, now: datetime | None = None) -> bool:
    return tip.status in OPEN and (now or utcnow()) > tip.due_at


def new_follow_code() -> str:
    return "".join(secrets.choice(CODE_ALPHABET) for _ in range(CODE_LENGTH))


def normal_code(code: str) -> str:
    return code.strip().upper().replace(" ", "").replace("-", "")


def code_hash(code: str) -> str:
    return hashlib.sha256(f"tip-follow:{normal_code(code)}".encode()).hexdigest()


def format_code(code: str) -> str:
    return "-".join(code[i:i + 4] for i in range(0, len(code), 4))


@dataclass(frozen=True)
class TipIn:
    content: str
    place: str | None = None
    lon: float | None = None
    lat: float | None = None
    urgent: bool = False
    tipster_name: str | None = None
    tipster_phone: str | None = None
    relation: TipsterRelation = TipsterRelation.UNKNOWN
    case_number: str | None = None
    query_code: str | None = None
    court_code: str | None = None  # where the asset or person is, if known


def _court(session: Session, code: str | None, field: str = "court_code") -> Court | None:
    if not code:
        return None
    court = session.scalar(select(Court).where(Court.code == code.strip()))
    if court is None:
        raise ValidationFailed(f"no court {code!r}", code="court_not_found", field=field)
    return court


def _high_court(session: Session) -> Court:
    court = session.scalar(select(Court).where(Court.parent_id.is_(None)).order_by(Court.id))
    assert court is not None, "courts are not loaded"
    return court


def _check_content(data: TipIn) -> None:
    if not data.content.strip():
        raise ValidationFailed("describe what you know", code="content_required",
                               field="content")
    if (data.lon is None) != (data.lat is None):
        raise ValidationFailed("give both longitude and latitude, or neither",
                               code="position_incomplete", field="lon")
    if data.lon is not None and data.lat is not None:
        check_point(data.lon, data.lat)


def _create(session: Session, data: TipIn, channel: TipChannel, court: Court,
            center: Court, case: Case | None, created_by: int | None) -> tuple[Tip, str]:
    now = utcnow()
    code = new_follow_code()
    anonymous = not (data.tipster_name or data.tipster_phone)
    tip = Tip(follow_code_hash=code_hash(code), channel=channel, submitted_at=now,
              content=data.content.strip(), place=(data.place or "").strip() or None,
              lon=data.lon, lat=data.lat, anonymous=anonymous,
              tipster_name=data.tipster_name or None, tipster_phone=data.tipster_phone or None,
              tipster_relation=data.relation, court_id=court.id, center_court_id=center.id,
              case_id=case.id if case else None, urgent=data.urgent,
              status=TipStatus.RECEIVED, due_at=due_for(now, data.urgent),
              created_by=created_by, updated_at=now)
    session.add(tip)
    session.flush()
    if case is not None:
        event(session, case, None, "tip", f"线索 #{tip.id}", tip_id=tip.id)
    return tip, code


def submit_public(session: Session, actor: Actor, data: TipIn) -> tuple[Tip, str]:
    """The public form. With a case number the query code must match (one answer for a wrong
    number and a wrong code: the form cannot be used to find out which cases exist)."""
    _check_content(data)
    case: Case | None = None
    if data.case_number or data.query_code:
        number = (data.case_number or "").strip().replace("(", "（").replace(")", "）")
        case = session.scalar(select(Case).where(Case.case_number == number))
        if case is None or not documents.query_code_matches(case.case_number,
                                                            data.query_code or ""):
            raise NotFound("no case matches this number and query code", code="no_match")
    center = _court(session, data.court_code) or (
        session.get(Court, case.court_id) if case else None) or _high_court(session)
    court = session.get(Court, case.court_id) if case else center
    assert court is not None and center is not None
    tip, code = _create(session, data, TipChannel.WEB, court, center, case, None)
    audit.record(session, actor, "tip.submitted", object_type="tip", object_id=tip.id,
                 court_id=court.id, case_id=tip.case_id, details={"channel": "web"})
    return tip, code


def take(session: Session, actor: Actor, data: TipIn, channel: TipChannel,
         case_id: int | None = None) -> tuple[Tip, str]:
    """A tip taken by the duty desk from a phone call, or reported by a field team."""
    roles = policy.TIP_ROLES if channel == TipChannel.PHONE else (*policy.TIP_ROLES, "bailiff")
    policy.require_role(actor, roles, "take tips")
    _check_content(data)
    case = None
    if case_id is not None:
        case = session.get(Case, case_id)
        if case is None or not actor.can_see_court(case.court_id):
            raise ValidationFailed(f"case {case_id} not found", code="case_not_found",
                                   field="case_id")
    own = session.get(Court, actor.court_id)
    assert own is not None
    center = _court(session, data.court_code) or own
    court = session.get(Court, case.court_id) if case else own
    assert court is not None
    tip, code = _create(session, data, channel, court, center, case, actor.user_id)
    audit.record(session, actor, "tip.taken", object_type="tip", object_id=tip.id,
                 court_id=court.id, case_id=tip.case_id, details={"channel": channel.value})
    return tip, code


def get(session: Session, actor: Actor, tip_id: int) -> Tip:
    tip = session.get(Tip, tip_id)
    if tip is None:
        raise NotFound(f"tip {tip_id} not found", code="tip_not_found")
    policy.require_tip_read(actor, tip)
    return tip


def by_code(session: Session, code: str) -> Tip:
    """The tipster's view: the code is the key. Unknown and malformed codes get one answer."""
    normal = normal_code(code)
    tip = None
    if len(normal) == CODE_LENGTH and normal.isascii():
        tip = session.scalar(select(Tip).where(Tip.follow_code_hash == code_hash(normal)))
    if tip is None:
        raise NotFound("no tip matches this code", code="no_match")
    return tip


def messages(session: Session, tip: Tip) -> list[TipMessage]:
    return list(session.scalars(select(TipMessage).where(TipMessage.tip_id == tip.id)
                                .order_by(TipMessage.id)))


def add_information(session: Session, actor: Actor, tip: Tip, text: str) -> TipMessage:
    """The tipster adds to their tip (with the follow-up code)."""
    if not text.strip():
        raise ValidationFailed("write what you want to add", code="content_required",
                               field="text")
    target = root_of(session, tip)
    msg = TipMessage(tip_id=tip.id, at=utcnow(), from_tipster=True, text=text.strip())
    session.add(msg)
    target.updated_at = utcnow()
    session.flush()
    audit.record(session, actor, "tip.information_added", object_type="tip", object_id=tip.id,
                 court_id=tip.court_id, case_id=tip.case_id)
    return msg


def root_of(session: Session, tip: Tip) -> Tip:
    """The tip a merged tip was merged into (merges point at an open tip, never a chain)."""
    if tip.merged_into_id is None:
        return tip
    root = session.get(Tip, tip.merged_into_id)
    assert root is not None
    return root


@dataclass(frozen=True)
class Triage:
    case_id: int | None = None
    debtor_party_id: int | None = None
    urgent: bool | None = None
    center_code: str | None = None
    relation: TipsterRelation | None = None


def triage(session: Session, actor: Actor, tip: Tip, data: Triage) -> Tip:
    """Link to a case and debtor, set urgency (the due date follows), route to the court
    handling the case and to the center where the asset or person is."""
    policy.require_tip_act(actor, tip)
    if tip.status not in OPEN:
        raise Conflict(f"the tip is {tip.status.value}", code="tip_closed")
    changes: dict[str, object] = {}
    if data.case_id is not None and data.case_id != tip.case_id:
        case = session.get(Case, data.case_id)
        if case is None or not actor.can_see_court(case.court_id):
            raise ValidationFailed(f"case {data.case_id} not found", code="case_not_found",
                                   field="case_id")
        tip.case_id = case.id
        tip.court_id = case.court_id  # routed to the court handling the case
        event(session, case, actor, "tip", f"线索 #{tip.id}", tip_id=tip.id)
        changes["case_id"] = case.id
    if data.debtor_party_id is not None:
        if tip.case_id is None or session.get(CaseParty, (tip.case_id, data.debtor_party_id,
                                                          "debtor")) is None:
            raise ValidationFailed("not a debtor of the tip's case", code="not_a_debtor",
                                   field="debtor_party_id")
        tip.debtor_party_id = data.debtor_party_id
        changes["debtor_party_id"] = data.debtor_party_id
    if data.urgent is not None and data.urgent != tip.urgent:
        tip.urgent = data.urgent
        tip.due_at = due_for(tip.submitted_at, data.urgent)
        changes["urgent"] = data.urgent
    if data.center_code:
        center = _court(session, data.center_code, "center_code")
        assert center is not None
        tip.center_court_id = center.id
        changes["center"] = center.code
    if data.relation is not None:
        tip.tipster_relation = data.relation
        changes["relation"] = data.relation.value
    tip.status = TipStatus.TRIAGED
    tip.triaged_at = tip.triaged_at or utcnow()
    tip.updated_at = utcnow()
    session.flush()
    audit.record(session, actor, "tip.triaged", object_type="tip", object_id=tip.id,
                 court_id=tip.court_id, case_id=tip.case_id, details=changes)
    return tip


def merge(session: Session, actor: Actor, duplicate: Tip, into: Tip) -> Tip:
    """A duplicate is handled with the tip it repeats; it keeps its own submission time (the
    reward ranking) and its follow-up code shows the other tip's answer."""
    policy.require_tip_act(actor, duplicate)
    policy.require_tip_act(actor, into)
    if duplicate.id == into.id:
        raise Conflict("a tip cannot be merged into itself", code="merge_into_self")
    for t in (duplicate, into):
        if t.status not in OPEN:
            raise Conflict(f"tip {t.id} is {t.status.value}", code="tip_closed")
    if duplicate.case_id and into.case_id and duplicate.case_id != into.case_id:
        raise Conflict("the tips are about different cases", code="different_cases")
    duplicate.status = TipStatus.MERGED
    duplicate.merged_into_id = into.id
    duplicate.updated_at = utcnow()
    # Tips merged into the duplicate follow it.
    for t in session.scalars(select(Tip).where(Tip.merged_into_id == duplicate.id)):
        t.merged_into_id = into.id
    if duplicate.urgent and not into.urgent:
        into.urgent = True
        into.due_at = min(into.due_at, due_for(into.submitted_at, True))
    into.updated_at = utcnow()
    session.flush()
    audit.record(session, actor, "tip.merged", object_type="tip", object_id=duplicate.id,
                 court_id=duplicate.court_id, case_id=into.case_id,
                 details={"into": into.id})
    return into


def record_outcome(session: Session, actor: Actor, tip: Tip, outcome: TipOutcome,
                   note: str, answer: str | None) -> Tip:
    policy.require_tip_act(actor, tip)
    if tip.status not in OPEN:
        raise Conflict(f"the tip is {tip.status.value}", code="tip_closed")
    now = utcnow()
    tip.status = TipStatus.CHECKED
    tip.checked_at = now
    tip.outcome = outcome
    tip.outcome_note = note
    tip.answer = answer
    tip.updated_at = now
    if answer:
        session.add(TipMessage(tip_id=tip.id, at=now, from_tipster=False, text=answer,
                               author_id=actor.user_id))
    session.flush()
    if tip.case_id is not None:
        case = session.get(Case, tip.case_id)
        assert case is not None
        event(session, case, actor, "tip_checked", f"线索 #{tip.id} 核查: {outcome.value}",
              tip_id=tip.id, outcome=outcome.value, late=now > tip.due_at)
    audit.record(session, actor, "tip.checked", object_type="tip", object_id=tip.id,
                 court_id=tip.court_id, case_id=tip.case_id,
                 details={"outcome": outcome.value, "late": now > tip.due_at})
    return tip


def answer(session: Session, actor: Actor, tip: Tip, text: str) -> TipMessage:
    policy.require_tip_act(actor, tip)
    if not text.strip():
        raise ValidationFailed("write the answer", code="content_required", field="text")
    msg = TipMessage(tip_id=tip.id, at=utcnow(), from_tipster=False, text=text.strip(),
                     author_id=actor.user_id)
    session.add(msg)
    tip.answer = text.strip()
    tip.updated_at = utcnow()
    session.flush()
    audit.record(session, actor, "tip.answered", object_type="tip", object_id=tip.id,
                 court_id=tip.court_id, case_id=tip.case_id)
    return msg


def visible(actor: Actor, status: str | None = None, overdue: bool = False,
            now: datetime | None = None) -> Select[tuple[Tip]]:
    stmt = select(Tip).where(Tip.court_id.in_(actor.visible_court_ids)
                             | Tip.center_court_id.in_(actor.visible_court_ids))
    if status == "open":
        stmt = stmt.where(Tip.status.in_(OPEN))
    elif status:
        stmt = stmt.where(Tip.status == status)
    if overdue:
        stmt = stmt.where(Tip.status.in_(OPEN), Tip.due_at < (now or utcnow()))
    return stmt
