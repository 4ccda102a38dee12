"""Screening: a partner asks, for a batch of people, whether the list restricts what they are about
to do (board a flight, take a loan), and the court learns that its debtor was stopped.

The hot path is a batch of up to 1,000 people with identity numbers (an airline's passenger list):
:func:`~zhixing.credit.screening_index.cheap_check` per number (malformed numbers are answered per
item, the rest of the batch still is), one vectorised
:meth:`~zhixing.credit.screening_index.ExactIndex.lookup_many` from memory, and database work only
for the few people who are hits: one query loading those entries (the index holds keys, not
numbers, so the number is compared here, which also drops an entry lifted a moment ago), one
INSERT of the hit log. People without a number are screened by name
(:class:`~zhixing.credit.names.NameIndex`), with a score, a match flag and why.

A partner only ever learns about the activities it enforces: an entry that restricts none of the
requested activities is no hit (an airline does not learn that someone may not take a loan).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from json.encoder import encode_basestring
from typing import Annotated, Any, Protocol

from pydantic import BaseModel, ConfigDict, Field, StringConstraints
from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from zhixing.cases.models import Case
from zhixing.core.actor import Actor
from zhixing.core.errors import Forbidden, ValidationFailed
from zhixing.core.pagination import Page, clamp_limit, cursor_int, page_from
from zhixing.courts.models import CommandCenter, Court
from zhixing.credit import partners as partner_registry
from zhixing.credit.activities import BIT, Activity, mask_of
from zhixing.credit.follower import ScreeningIndexes
from zhixing.credit.models import Entry, Partner, ScreeningHit
from zhixing.credit.screening_index import cheap_check_many, normalise_number

MAX_BATCH = 1000
NAME_HITS = 5  # candidates shown per name query, best first

ISSUES = {
    "invalid_id_format": "not a resident ID, credit code or other identity number",
    "invalid_id_checksum": "the check character does not match",
    "id_or_name_required": "give an id_number or a name",
}


# --- request ----------------------------------------------------------------------------------

Region = Annotated[str, StringConstraints(pattern=r"^\d{2}(?:\d{2}){0,2}$")]


class PersonIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    ref: str = Field(min_length=1, max_length=64, description="the partner's own reference")
    id_number: str | None = Field(default=None, max_length=64)
    name: str | None = Field(default=None, max_length=128)
    birth_date: date | None = None
    region: Region | None = Field(default=None, description="2-, 4- or 6-digit division code")


class ScreenIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    activities: list[str] | None = Field(
        default=None, max_length=64,
        description="activities to screen for; default: the partner's whole subscription")
    exclude: list[int] = Field(default_factory=list, max_length=10_000,
                               description="entry ids the partner has already cleared")
    people: list[PersonIn] = Field(description=f"1 to {MAX_BATCH} people")


# --- response (documentation; the hot path writes the same shape as plain JSON) ---------------


class IssueOut(BaseModel):
    code: str
    message: str


class HitOut(BaseModel):
    entry_id: int
    name: str = Field(description="the name as listed")
    id_number_masked: str | None
    court_code: str
    court_name: str
    court_phone: str | None = Field(description="the court's command-center duty phone")
    case_number: str
    activities: list[str] = Field(description="requested activities this entry restricts")
    matched_by: str = Field(description="id or name")
    score: float
    match: bool
    explanation: dict[str, str] | None = Field(description="name screening: why it scored")


class PersonOut(BaseModel):
    ref: str
    screened_by: str | None = Field(description="id, name, or null when not screened")
    restricted: bool | None = Field(description="any requested activity restricted; null when "
                                                "the item has an error")
    activities: dict[str, bool] | None
    hits: list[HitOut]
    error: IssueOut | None


class ScreenOut(BaseModel):
    activities: list[str]
    index_seq: int = Field(description="feed position the index had applied")
    results: list[PersonOut]


# --- activities -------------------------------------------------------------------------------


def requested(partner: PartnerLike, activities: list[str] | None) -> list[Activity]:
    """The activities to answer for: the partner's subscription unless it asks for fewer.
    Unknown names are 422 ``unknown_activity``; others' activities 403
    ``activity_not_subscribed``."""
    subscribed = set(partner_registry.check_activities(partner.activities))
    if activities is None:
        chosen = [a for a in Activity if a in subscribed]
    else:
        chosen = partner_registry.check_activities(activities)
        if others := [str(a) for a in chosen if a not in subscribed]:
            raise Forbidden(f"not subscribed to: {', '.join(others)}",
                            code="activity_not_subscribed", field="activities",
                            details={"not_subscribed": others,
                                     "subscribed": partner.activities})
        chosen = [a for a in Activity if a in set(chosen)]
    if not chosen:
        raise ValidationFailed("no activities to screen for", code="no_activities",
                               field="activities")
    return chosen


# --- the screening -----------------------------------------------------------------------------


# (entry id, matched_by, score, match, explanation)
Candidate = tuple[int, str, float, bool, dict[str, str] | None]


@dataclass(frozen=True)
class _Listed:
    """An entry as the answer cites it (loaded for the hits only)."""

    entry_id: int
    name: str
    id_number: str | None
    mask: int
    active: bool
    court_id: int
    court_code: str
    court_name: str
    court_phone: str | None
    case_number: str


class PartnerLike(Protocol):
    """What screening needs of the calling partner (an ORM row or a cached view of it)."""

    @property
    def id(self) -> int: ...
    @property
    def activities(self) -> list[str]: ...


@dataclass
class Prepared:
    """A batch after the in-memory phase: what is left is database work for the hits only."""

    people: list[PersonIn]
    names: list[str]
    want: int
    bits: list[tuple[str, int]]
    clear: dict[str, bool]
    results: list[dict[str, Any]]
    by_id: list[int]
    numbers: list[str]
    by_name: list[int]
    candidates: dict[int, list[Candidate]]
    applied_seq: int

    @property
    def needs_database(self) -> bool:
        return bool(self.candidates)


def prepare(partner: PartnerLike, body: ScreenIn, indexes: ScreeningIndexes) -> Prepared:
    """Validate the batch and look everyone up in memory (no database)."""
    chosen = requested(partner, body.activities)
    people = body.people
    if not people:
        raise ValidationFailed("people is empty", code="empty_batch", field="people")
    if len(people) > MAX_BATCH:
        raise ValidationFailed(f"at most {MAX_BATCH} people a request, got {len(people)}",
                               code="batch_too_large", field="people",
                               details={"max": MAX_BATCH})
    want = mask_of(chosen)
    names = [str(a) for a in chosen]
    bits = [(name, 1 << BIT[a]) for name, a in zip(names, chosen, strict=True)]
    exclude = frozenset(body.exclude)
    clear = dict.fromkeys(names, False)  # shared by every person without a hit

    results: list[dict[str, Any]] = [{}] * len(people)
    by_id: list[int] = []
    numbers: list[str] = []
    by_name: list[int] = []
    given = [p.id_number for p in people if p.id_number is not None]
    checked, errors = cheap_check_many(given)
    k = 0
    for i, person in enumerate(people):
        if person.id_number is not None:
            error = errors[k]
            if error is not None:
                results[i] = _error(person.ref, "id", error)
            else:
                by_id.append(i)
                numbers.append(checked[k])
            k += 1
        elif person.name and person.name.strip():
            by_name.append(i)
        else:
            results[i] = _error(person.ref, None, "id_or_name_required")

    # candidates: person index -> [(entry id, matched_by, score, match, explanation)]
    candidates: dict[int, list[Candidate]] = {}
    applied_seq = indexes.applied_seq  # read before the lookups: the answer is at least this new
    if numbers:
        found = indexes.exact.lookup_many(numbers, normalised=True)
        for i, rows in zip(by_id, found, strict=True):
            if rows:
                hits: list[Candidate] = [(e, "id", 1.0, True, None) for e, m in rows
                                         if m & want and e not in exclude]
                if hits:
                    candidates[i] = hits
    for i in by_name:
        person = people[i]
        assert person.name is not None
        named = indexes.names.search(person.name, birth_date=person.birth_date,
                                     region=person.region, exclude=exclude, limit=NAME_HITS)
        if named:
            candidates[i] = [(h.entry_id, "name", h.score, h.match, h.explanation)
                             for h in named]
    return Prepared(people, names, want, bits, clear, results, by_id, numbers, by_name,
                    candidates, applied_seq)


def finish(session: Session | None, partner: PartnerLike, batch: Prepared, now: datetime
           ) -> bytes:
    """The answer as JSON bytes (:class:`ScreenOut`). With candidates, ``session`` loads them
    and logs every hit; a batch without candidates needs no session."""
    if batch.needs_database and session is None:
        raise ValueError("a batch with candidates needs a session")
    people, results, candidates = batch.people, batch.results, batch.candidates
    listed = _load(session, {c[0] for hits in candidates.values() for c in hits}) \
        if session is not None else {}
    log: list[dict[str, Any]] = []
    number_of = dict(zip(batch.by_id, batch.numbers, strict=True))
    # Most people of a batch are no hit: their answer differs only in ``ref``, so it is
    # written from one pre-encoded template instead of a dict per person through json.dumps.
    clean_head = '{"ref":'
    clean_tail = ',"screened_by":"%s","restricted":false,"activities":' + _dumps(batch.clear) \
        + ',"hits":[],"error":null}'
    parts: list[str] = [""] * len(people)
    for kind, indexes in (("id", batch.by_id), ("name", batch.by_name)):
        tail = clean_tail % kind
        for i in indexes:
            found = candidates.get(i)
            if not found:
                parts[i] = clean_head + _dumps(people[i].ref) + tail
                continue
            answer = _answer(people[i].ref, kind, found, listed, batch.want, batch.bits,
                             batch.clear, log, number_of.get(i, ""))
            parts[i] = _dumps(answer)
    for i, result in enumerate(results):
        if not parts[i]:
            parts[i] = _dumps(result)  # the per-item errors
    if log:
        assert session is not None
        for row in log:
            row.update(partner_id=partner.id, at=now)
        session.execute(insert(ScreeningHit), log)
    return ('{"activities":' + _dumps(batch.names) + ',"index_seq":' + str(batch.applied_seq)
            + ',"results":[' + ",".join(parts) + "]}").encode()


_ENCODER = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"))


def _dumps(value: Any) -> str:
    if isinstance(value, str):
        return encode_basestring(value)  # the C encoder: no encoder object per call
    return _ENCODER.encode(value)


def screen(session: Session, partner: PartnerLike, body: ScreenIn, indexes: ScreeningIndexes,
           now: datetime) -> bytes:
    """Both phases in one session (callers that hold a transaction anyway)."""
    return finish(session, partner, prepare(partner, body, indexes), now)


def _error(ref: str, screened_by: str | None, code: str) -> dict[str, Any]:
    return {"ref": ref, "screened_by": screened_by, "restricted": None, "activities": None,
            "hits": [], "error": {"code": code, "message": ISSUES[code]}}


def _answer(ref: str, screened_by: str,
            found: Sequence[Candidate],
            listed: dict[int, _Listed], want: int, bits: list[tuple[str, int]],
            clear: dict[str, bool], log: list[dict[str, Any]], number: str) -> dict[str, Any]:
    hits: list[dict[str, Any]] = []
    restricted_mask = 0
    for entry_id, matched_by, score, match, explanation in found:
        entry = listed.get(entry_id)
        if entry is None or not entry.active or not entry.mask & want:
            continue  # lifted since the index saw it, or nothing the partner enforces
        if matched_by == "id" and normalise_number(entry.id_number or "") != number:
            continue  # a 64-bit key collision, or a corrected number
        mask = entry.mask & want
        if match:
            restricted_mask |= mask
            for activity, bit in bits:
                log.append({"entry_id": entry_id, "court_id": entry.court_id,
                            "activity": activity, "restricted": bool(mask & bit),
                            "matched_by": matched_by, "score": score, "reference": ref})
        hits.append({
            "entry_id": entry_id, "name": entry.name,
            "id_number_masked": mask_number(entry.id_number),
            "court_code": entry.court_code, "court_name": entry.court_name,
            "court_phone": entry.court_phone, "case_number": entry.case_number,
            "activities": [a for a, bit in bits if mask & bit], "matched_by": matched_by,
            "score": score, "match": match, "explanation": explanation})
    if not hits:
        return {"ref": ref, "screened_by": screened_by, "restricted": False,
                "activities": clear, "hits": [], "error": None}
    return {"ref": ref, "screened_by": screened_by, "restricted": bool(restricted_mask),
            "activities": {a: bool(restricted_mask & bit) for a, bit in bits},
            "hits": hits, "error": None}


def _load(session: Session, entry_ids: set[int]) -> dict[int, _Listed]:
    if not entry_ids:
        return {}
    rows = session.execute(
        select(Entry.id, Entry.name, Entry.id_number, Entry.mask, Entry.active,
               Entry.court_id, Court.code, Court.name_zh, CommandCenter.duty_phone,
               Case.case_number)
        .join(Court, Court.id == Entry.court_id).join(Case, Case.id == Entry.case_id)
        .outerjoin(CommandCenter, CommandCenter.court_id == Entry.court_id)
        .where(Entry.id.in_(sorted(entry_ids)))).all()
    return {r[0]: _Listed(*r) for r in rows}


def mask_number(number: str | None) -> str | None:
    """As the list is published: the first six and the last four characters."""
    if not number:
        return None
    if len(number) <= 8:
        return number[:2] + "*" * (len(number) - 2)
    return number[:6] + "*" * (len(number) - 10) + number[-4:]


# --- the hit log, for the courts ----------------------------------------------------------------


class HitRead(BaseModel):
    id: int
    at: datetime
    partner_code: str
    partner_name: str
    entry_id: int
    entry_name: str
    court_code: str
    case_number: str
    activity: str | None
    restricted: bool
    matched_by: str
    score: float
    reference: str | None


def list_hits(session: Session, actor: Actor, court_code: str | None, limit: int | None,
              cursor: str | None) -> Page[HitRead]:
    """Screening hits of entries of the actor's courts (or of one court within reach), newest
    first, keyset-paginated."""
    scope = actor.visible_court_ids
    if court_code:
        court_id = session.scalar(select(Court.id).where(Court.code == court_code))
        if court_id is None or not actor.can_see_court(court_id):
            raise ValidationFailed(f"court {court_code} is not within your reach",
                                   code="court_not_found", field="court")
        scope = frozenset({court_id})
    n = clamp_limit(limit)
    stmt = (select(ScreeningHit, Partner.code, Partner.name_zh, Entry.name, Court.code,
                   Case.case_number)
            .join(Partner, Partner.id == ScreeningHit.partner_id)
            .join(Entry, Entry.id == ScreeningHit.entry_id)
            .join(Court, Court.id == ScreeningHit.court_id)
            .join(Case, Case.id == Entry.case_id)
            .where(ScreeningHit.court_id.in_(sorted(scope)))
            .order_by(ScreeningHit.id.desc()))
    before = cursor_int(cursor)
    if before is not None:
        stmt = stmt.where(ScreeningHit.id < before)
    rows = session.execute(stmt.limit(n + 1)).all()
    items = [HitRead(id=h.id, at=h.at, partner_code=pcode, partner_name=pname, entry_id=h.entry_id,
                     entry_name=ename, court_code=ccode, case_number=number, activity=h.activity,
                     restricted=h.restricted, matched_by=h.matched_by, score=h.score,
                     reference=h.reference)
             for h, pcode, pname, ename, ccode, number in rows]
    return page_from(items, n, lambda h: [h.id])
