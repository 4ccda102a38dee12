"""JSON API of the courts domain: tokens, the court hierarchy, users, the audit trail."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request, Response
from sqlalchemy import select
from sqlalchemy.orm import joinedload

from zhixing.core import audit
from zhixing.core.errors import NotFound, Unauthenticated
from zhixing.core.models import AuditRecord
from zhixing.core.pagination import clamp_limit, cursor_int, page_from
from zhixing.courts import identity, policy
from zhixing.courts.models import ApiToken, Court, User
from zhixing.courts.schemas import (
    AuditList,
    AuditRead,
    CourtList,
    CourtRead,
    MeRead,
    TokenCreate,
    TokenRead,
    UserCreate,
    UserList,
    UserRead,
    UserUpdate,
)
from zhixing.web.deps import CurrentUser, DbSession, SmallRecordId, client_ip
from zhixing.web.errors import ERROR_RESPONSES

router = APIRouter(prefix="/api/v1", responses=ERROR_RESPONSES)

Limit = Annotated[int | None, Query(description="page size, 1-200 (default 50)")]
Cursor = Annotated[str | None, Query(description="opaque cursor from the previous page")]


@router.post("/auth/tokens", tags=["auth"], status_code=201, response_model=TokenRead)
def create_token(body: TokenCreate, request: Request, db: DbSession) -> TokenRead:
    """Exchange a username and password for a bearer token (30 days)."""
    try:
        user = identity.authenticate(db, body.username, body.password, client_ip(request))
    except Unauthenticated:
        db.commit()  # the failure counters must persist even though the request fails
        raise
    actor = identity.actor_for(db, user, client_ip(request))
    token, row = identity.issue_api_token(db, user, body.name, actor)
    return TokenRead(token=token, expires_at=row.expires_at)


@router.delete("/auth/tokens/current", tags=["auth"], status_code=204)
def revoke_current_token(request: Request, actor: CurrentUser, db: DbSession) -> Response:
    """Revoke the bearer token used for this request."""
    token_id = getattr(request.state, "api_token_id", None)
    if token_id is None:
        raise NotFound("this request was not made with an API token", code="no_token")
    row = db.get(ApiToken, token_id)
    assert row is not None
    identity.revoke_api_token(db, row, actor)
    return Response(status_code=204)


@router.get("/me", tags=["auth"], response_model=MeRead)
def me(actor: CurrentUser, db: DbSession) -> MeRead:
    user = db.get(User, actor.user_id)
    assert user is not None
    return MeRead(id=user.id, username=user.username, display_name=user.display_name,
                  court_code=user.court.code, court_name=user.court.name_zh,
                  roles=sorted(r.value for r in user.roles))


def _court_read(court: Court, parent_code: str | None) -> CourtRead:
    return CourtRead(code=court.code, division_code=court.division_code, name_zh=court.name_zh,
                     name_en=court.name_en, short_name_zh=court.short_name_zh,
                     level=court.level, parent_code=parent_code, lon=court.lon, lat=court.lat,
                     command_center=court.command_center.name_zh)


@router.get("/courts", tags=["courts"], response_model=CourtList)
def list_courts(actor: CurrentUser, db: DbSession,
                level: Annotated[str | None, Query(pattern="^(high|intermediate|basic)$")] = None,
                parent: Annotated[str | None, Query(max_length=16)] = None) -> CourtList:
    """The court hierarchy (public reference data, the same for every user)."""
    courts = list(db.scalars(select(Court).options(joinedload(Court.command_center))
                             .order_by(Court.path)))
    codes = {c.id: c.code for c in courts}
    items = [_court_read(c, codes.get(c.parent_id) if c.parent_id else None) for c in courts]
    if level:
        items = [i for i in items if i.level == level]
    if parent:
        items = [i for i in items if i.parent_code == parent]
    return CourtList(items=items)


@router.get("/courts/{code}", tags=["courts"], response_model=CourtRead)
def get_court(code: str, actor: CurrentUser, db: DbSession) -> CourtRead:
    court = db.scalar(select(Court).where(Court.code == code))
    if court is None:
        raise NotFound(f"court {code} not found", code="court_not_found")
    return _court_read(court, court.parent.code if court.parent else None)


def _user_read(user: User) -> UserRead:
    return UserRead(id=user.id, username=user.username, display_name=user.display_name,
                    court_code=user.court.code, roles=sorted(r.value for r in user.roles),
                    is_active=user.is_active, created_at=user.created_at,
                    last_login_at=user.last_login_at)


@router.get("/users", tags=["users"], response_model=UserList)
def list_users(actor: CurrentUser, db: DbSession, limit: Limit = None, cursor: Cursor = None,
               court: Annotated[str | None, Query(max_length=16)] = None,
               q: Annotated[str | None, Query(max_length=64)] = None) -> UserList:
    """Users of your court and the courts below it."""
    policy.require_role(actor, policy.USER_READ_ROLES, "list users")
    n = clamp_limit(limit)
    stmt = policy.users_visible(actor).options(joinedload(User.court)).order_by(User.id)
    after = cursor_int(cursor)
    if after is not None:
        stmt = stmt.where(User.id > after)
    if court:
        stmt = stmt.join(Court, Court.id == User.court_id).where(Court.code == court)
    if q:
        like = f"%{q.lower()}%"
        stmt = stmt.where(User.username.like(like) | User.display_name.like(f"%{q}%"))
    rows = db.scalars(stmt.limit(n + 1)).unique().all()
    page = page_from(rows, n, lambda u: [u.id])
    return UserList(items=[_user_read(u) for u in page.items], next_cursor=page.next_cursor)


@router.post("/users", tags=["users"], status_code=201, response_model=UserRead)
def create_user(body: UserCreate, actor: CurrentUser, db: DbSession) -> UserRead:
    user = identity.create_user(db, actor, username=body.username,
                                display_name=body.display_name, court_code=body.court_code,
                                password=body.password, roles=body.roles)
    return _user_read(user)


@router.get("/users/{user_id}", tags=["users"], response_model=UserRead)
def get_user(user_id: SmallRecordId, actor: CurrentUser, db: DbSession) -> UserRead:
    user = identity.get_user(db, actor, user_id)
    policy.require_role(actor, policy.USER_READ_ROLES, "read users")
    return _user_read(user)


@router.patch("/users/{user_id}", tags=["users"], response_model=UserRead)
def update_user(user_id: SmallRecordId, body: UserUpdate, actor: CurrentUser,
                db: DbSession) -> UserRead:
    user = identity.update_user(db, actor, user_id, display_name=body.display_name,
                                roles=body.roles, is_active=body.is_active,
                                password=body.password)
    return _user_read(user)


@router.get("/audit", tags=["audit"], response_model=AuditList)
def list_audit(actor: CurrentUser, db: DbSession, limit: Limit = None, cursor: Cursor = None,
               action: Annotated[str | None, Query(max_length=64)] = None,
               object_type: Annotated[str | None, Query(max_length=64)] = None,
               object_id: Annotated[str | None, Query(max_length=64)] = None) -> AuditList:
    """Audit records of your court and the courts below it, newest first."""
    policy.require_role(actor, policy.AUDIT_READ_ROLES, "read the audit trail")
    n = clamp_limit(limit)
    stmt = policy.audit_visible(actor).order_by(AuditRecord.seq.desc())
    after = cursor_int(cursor)
    if after is not None:
        stmt = stmt.where(AuditRecord.seq < after)
    if action:
        stmt = stmt.where(AuditRecord.action == action)
    if object_type:
        stmt = stmt.where(AuditRecord.object_type == object_type)
    if object_id:
        stmt = stmt.where(AuditRecord.object_id == object_id)
    rows = db.scalars(stmt.limit(n + 1)).all()
    page = page_from(rows, n, lambda r: [r.seq])
    audit.record(db, actor, "audit.read", details={"filter": {"action": action,
                                                               "object_type": object_type,
                                                               "object_id": object_id}})
    return AuditList(items=[AuditRead.model_validate(r) for r in page.items],
                     next_cursor=page.next_cursor)
