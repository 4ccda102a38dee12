"""HTTP API of partner agencies: what partners call (feed, snapshot, screening; API key only)
and what the high court's administrators and the courts call (the registry, the hit log).
See docs/partner-api.md."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import event, select
from sqlalchemy.orm import Session

from zhixing.cases import policy as case_policy
from zhixing.core.clock import utcnow
from zhixing.core.db import transaction
from zhixing.core.errors import Forbidden, Unauthenticated
from zhixing.core.security import constant_time_equal, token_digest
from zhixing.core.settings import get_settings
from zhixing.courts import identity
from zhixing.courts.models import ApiKey, ClientKind
from zhixing.credit import feed, follower, partner_keys, screening
from zhixing.credit import partners as registry
from zhixing.credit.models import Partner
from zhixing.web.deps import SESSION_COOKIE, CurrentUser, DbSession, SmallRecordId
from zhixing.web.errors import ERROR_RESPONSES

router = APIRouter(prefix="/api/v1", responses=ERROR_RESPONSES, tags=["partner"])
admin_router = APIRouter(prefix="/api/v1", responses=ERROR_RESPONSES, tags=["partners"])


# --- who is asking ------------------------------------------------------------------------------


def require_partner(request: Request, db: Session) -> Partner:
    """A partner's API key (``Authorization: Bearer zxk_….secret``), resolved with its partner
    in one indexed query and checked on every request, so a revoked key or a disabled partner
    stops at once. People are refused (403 ``machine_only``), as are other machine clients
    (403 ``partner_only``).

    Partner routes call it inside one transaction on one worker thread (:func:`_partner_work`),
    not as a dependency: on SQLite the first query waits for the write lock, and a request
    that holds the lock must not need another pool thread (or the event loop) to finish while
    the others wait for it."""
    scheme, _, value = request.headers.get("authorization", "").partition(" ")
    value = value.strip()
    if scheme.lower() == "bearer" and value.startswith("zxk_"):
        key_id, _, secret = value.partition(".")
        row = db.execute(
            select(ApiKey.secret_hash, ApiKey.revoked_at, ApiKey.client_kind, Partner)
            .outerjoin(Partner, (Partner.code == ApiKey.client_ref)
                       & (ApiKey.client_kind == ClientKind.PARTNER))
            .where(ApiKey.key_id == key_id)).first()
        if (row is None or row.revoked_at is not None or not secret
                or not constant_time_equal(token_digest(secret), row.secret_hash)):
            raise Unauthenticated("unknown or revoked API key", code="invalid_token")
        partner: Partner | None = row.Partner
        if row.client_kind != ClientKind.PARTNER or partner is None:
            raise Forbidden("this route is for partner agencies", code="partner_only")
        if not partner.enabled:
            raise Forbidden("this partner is switched off", code="partner_disabled")
        return partner
    person = False
    if scheme.lower() == "bearer" and value:
        person = identity.resolve_api_token(db, value) is not None
    elif not value and (cookie := request.cookies.get(SESSION_COOKIE)):
        person = identity.resolve_web_session(db, cookie) is not None
    if not person:
        raise Unauthenticated("a partner API key is required")
    raise Forbidden("this route is for partner agencies' API keys, not people",
                    code="machine_only")


# On SQLite every transaction takes the database's write lock (BEGIN IMMEDIATE), and threads
# that find it taken wait in SQLite's busy handler, which sleeps in growing steps: under a few
# hundred single-person screenings a second that turned milliseconds into seconds. Queueing the
# partner routes' transactions of this process on a lock hands the database over at once.
_SQLITE_GATE = threading.Lock()


@contextmanager
def _partner_work(request: Request) -> Iterator[tuple[Session, Partner]]:
    """The request's transaction (committed before the reply) and the calling partner."""
    with _SQLITE_GATE if get_settings().is_sqlite else nullcontext(), transaction() as db:
        yield db, require_partner(request, db)


# --- the feed -----------------------------------------------------------------------------------


class FeedItemRead(BaseModel):
    seq: int
    op: str = Field(description="add, change or delete, as this partner sees the change")
    entry_id: int
    at: datetime
    entry: dict[str, Any] = Field(description="the entry after the change (see the docs)")


class FeedRead(BaseModel):
    items: list[FeedItemRead]
    next_cursor: int = Field(description="pass as `after` next time (the last seq scanned)")
    has_more: bool
    head: int


@router.get("/partner/feed", response_model=FeedRead)
def read_feed(request: Request, after: Annotated[int, Query(ge=0, le=2**63 - 1)] = 0,
              limit: Annotated[int | None, Query()] = None) -> FeedRead:
    """Changes after the cursor that concern the partner's activities, in order, at most
    ``limit`` (1–1000). Cursor past the feed's end: 422 ``unknown_cursor``."""
    with _partner_work(request) as (db, partner):
        page = feed.fetch(db, partner, after, limit, utcnow())
    return FeedRead.model_validate({"items": page.items, "next_cursor": page.next_cursor,
                                    "has_more": page.has_more, "head": page.head})


class AckIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    cursor: int = Field(ge=0, le=2**63 - 1)


class AckRead(BaseModel):
    ack_seq: int
    fetched_seq: int
    last_ack_at: datetime | None


@router.post("/partner/feed/ack", response_model=AckRead)
def ack_feed(request: Request, body: AckIn) -> AckRead:
    """Everything up to ``cursor`` is applied on the partner's side. Never backwards, never
    past what was fetched (409 ``ack_out_of_order``)."""
    with _partner_work(request) as (db, partner):
        p = feed.acknowledge(db, partner, body.cursor, utcnow())
        return AckRead(ack_seq=p.ack_seq, fetched_seq=p.fetched_seq,
                       last_ack_at=p.last_ack_at)


class SnapshotRead(BaseModel):
    head: int = Field(description="the feed position this page is consistent with")
    items: list[dict[str, Any]]
    next_after: int | None
    has_more: bool


@router.get("/partner/snapshot", response_model=SnapshotRead)
def read_snapshot(request: Request, after: Annotated[int, Query(ge=0, le=2**63 - 1)] = 0,
                  limit: Annotated[int | None, Query()] = None) -> SnapshotRead:
    """Every active entry in the partner's subscription, by entry id, for reconciliation."""
    with _partner_work(request) as (db, partner):
        page = feed.snapshot(db, partner, after, limit)
    return SnapshotRead(head=page.head, items=page.items, next_after=page.next_after,
                        has_more=page.has_more)


# --- screening ----------------------------------------------------------------------------------


@router.post("/partner/screen", response_model=screening.ScreenOut)
async def screen(request: Request, body: screening.ScreenIn) -> Response:
    """Screen up to 1,000 people by identity number (exact) or name (scored) for the
    requested activities. Malformed numbers are answered per item; every hit is logged for
    the listing court."""
    # The hot path stays on the event loop with no database: the key from the cache, the
    # lookups in memory. Only a batch with candidates (or a cold cache) goes to a worker
    # thread for its one transaction.
    parsed = partner_keys.bearer_key(request.headers.get("authorization", ""))
    resolved = partner_keys.cached(parsed[0]) if parsed else None
    if parsed is None or resolved is None:
        partner = await run_in_threadpool(_resolve_partner, request)
    else:
        partner = partner_keys.check(resolved, parsed[1])
    indexes = follower.get_indexes()
    if not (indexes.loaded and indexes.running):
        await run_in_threadpool(_catch_up, indexes)
    batch = screening.prepare(partner, body, indexes)
    if batch.needs_database:
        content = await run_in_threadpool(_finish, partner, batch)
    else:
        content = screening.finish(None, partner, batch, utcnow())
    return Response(content, media_type="application/json")


def _resolve_partner(request: Request) -> partner_keys.PartnerView:
    parsed = partner_keys.bearer_key(request.headers.get("authorization", ""))
    with _SQLITE_GATE if get_settings().is_sqlite else nullcontext(), transaction() as db:
        if parsed is None:
            require_partner(request, db)  # answers people and anonymous callers
            raise Unauthenticated("a partner API key is required")
        return partner_keys.check(partner_keys.load(db, parsed[0]), parsed[1])


def _catch_up(indexes: follower.ScreeningIndexes) -> None:
    with _SQLITE_GATE if get_settings().is_sqlite else nullcontext(), transaction() as db:
        indexes.ensure_current(db)


def _finish(partner: partner_keys.PartnerView, batch: screening.Prepared) -> bytes:
    with _SQLITE_GATE if get_settings().is_sqlite else nullcontext(), transaction() as db:
        return screening.finish(db, partner, batch, utcnow())


# --- the registry (high court administrators) ------------------------------------------------


class KeyRead(BaseModel):
    key_id: str
    name: str
    created_at: datetime
    revoked_at: datetime | None


class PartnerRead(BaseModel):
    id: int
    code: str
    name_zh: str
    name_en: str
    kind: str
    activities: list[str]
    hashed_ids: bool
    enabled: bool
    fetched_seq: int
    ack_seq: int
    last_fetch_at: datetime | None
    last_ack_at: datetime | None
    head: int
    lag: int = Field(description="feed items after the partner's acknowledgement")
    overdue: bool = Field(description="behind the feed, last acknowledged over 24 hours ago")
    keys: list[KeyRead] | None = None


class PartnerList(BaseModel):
    items: list[PartnerRead]


class PartnerUpdated(PartnerRead):
    hashing_key: str | None = Field(
        default=None, description="hex; only when hashed ids were just switched on: hand it "
                                  "to the partner, it is not shown again")


class KeyIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(default=None, min_length=1, max_length=128)


class IssuedKeyRead(BaseModel):
    key_id: str
    secret: str
    token: str = Field(description="what the partner sends: Authorization: Bearer <token>")
    created_at: datetime


def _read(status: feed.DeliveryStatus, keys: list[ApiKey] | None = None) -> dict[str, Any]:
    p = status.partner
    return {"id": p.id, "code": p.code, "name_zh": p.name_zh, "name_en": p.name_en,
            "kind": str(p.kind), "activities": p.activities, "hashed_ids": p.hashed_ids,
            "enabled": p.enabled, "fetched_seq": p.fetched_seq, "ack_seq": p.ack_seq,
            "last_fetch_at": p.last_fetch_at, "last_ack_at": p.last_ack_at,
            "head": status.head, "lag": status.lag, "overdue": status.overdue,
            "keys": None if keys is None else [
                KeyRead(key_id=k.key_id, name=k.name, created_at=k.created_at,
                        revoked_at=k.revoked_at) for k in keys]}


def _detail(db: DbSession, partner: Partner) -> dict[str, Any]:
    status = feed.delivery_status(db, [partner], utcnow())[0]
    return _read(status, registry.keys_of(db, partner))


KeyId = Annotated[str, Path(min_length=1, max_length=32, description="the key id (zxk_…)")]


@admin_router.get("/partners", response_model=PartnerList)
def list_partners(actor: CurrentUser, db: DbSession) -> PartnerList:
    """Partners with their delivery status (fetched, acknowledged, lag, overdue)."""
    registry.require_admin(db, actor)
    statuses = feed.delivery_status(db, registry.list_partners(db), utcnow())
    return PartnerList.model_validate({"items": [_read(s) for s in statuses]})


@admin_router.get("/partners/{partner_id}", response_model=PartnerRead)
def get_partner(partner_id: SmallRecordId, actor: CurrentUser, db: DbSession) -> PartnerRead:
    registry.require_admin(db, actor)
    return PartnerRead.model_validate(_detail(db, registry.get_partner(db, partner_id)))


@admin_router.patch("/partners/{partner_id}", response_model=PartnerUpdated)
def update_partner(partner_id: SmallRecordId, body: registry.PartnerUpdate, actor: CurrentUser,
                   db: DbSession) -> PartnerUpdated:
    """Change the subscription, switch hashed ids or the partner on or off."""
    registry.require_admin(db, actor)
    result = registry.update_partner(db, actor, registry.get_partner(db, partner_id), body)
    _forget_keys_after_commit(db)
    return PartnerUpdated.model_validate({**_detail(db, result.partner),
                                          "hashing_key": result.hashing_key})


@admin_router.post("/partners/{partner_id}/keys", status_code=201, response_model=IssuedKeyRead)
def issue_key(partner_id: SmallRecordId, actor: CurrentUser, db: DbSession,
              body: KeyIn | None = None) -> IssuedKeyRead:
    """A new API key; the secret is shown this once. Older keys keep working until revoked."""
    registry.require_admin(db, actor)
    issued = registry.issue_key(db, actor, registry.get_partner(db, partner_id),
                                body.name if body else None)
    return IssuedKeyRead(key_id=issued.key_id, secret=issued.secret, token=issued.token,
                         created_at=issued.created_at)


@admin_router.post("/partners/{partner_id}/keys/{key_id}/revoke", response_model=KeyRead)
def revoke_key(partner_id: SmallRecordId, key_id: KeyId, actor: CurrentUser,
               db: DbSession) -> KeyRead:
    """The key stops working with the partner's next request."""
    registry.require_admin(db, actor)
    row = registry.revoke_key(db, actor, registry.get_partner(db, partner_id), key_id)
    _forget_keys_after_commit(db)
    return KeyRead(key_id=row.key_id, name=row.name, created_at=row.created_at,
                   revoked_at=row.revoked_at)


def _forget_keys_after_commit(db: Session) -> None:
    """This process's screening stops using the old key state as soon as the change is
    committed (other processes: when its commit signal arrives, see partner_keys)."""
    event.listen(db, "after_commit", lambda _s: partner_keys.forget(), once=True)


# --- the hit log (courts) -----------------------------------------------------------------------


class HitList(BaseModel):
    items: list[screening.HitRead]
    next_cursor: str | None


@admin_router.get("/screening-hits", response_model=HitList)
def list_hits(actor: CurrentUser, db: DbSession,
              court: Annotated[str | None, Query(max_length=16)] = None,
              limit: Annotated[int | None, Query()] = None,
              cursor: Annotated[str | None, Query(max_length=200)] = None) -> HitList:
    """Partners' screenings that found debtors of your courts (or of one court within your
    reach), newest first."""
    case_policy.require_read(actor)
    page = screening.list_hits(db, actor, court, limit, cursor)
    return HitList(items=page.items, next_cursor=page.next_cursor)
