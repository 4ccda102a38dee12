"""Console pages of the courts domain: the hierarchy, user administration, the audit trail."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import RedirectResponse, Response
from sqlalchemy import select
from sqlalchemy.orm import joinedload

from zhixing.core import audit
from zhixing.core.errors import DomainError
from zhixing.core.models import AuditRecord
from zhixing.core.pagination import clamp_limit, cursor_int, page_from
from zhixing.courts import identity, policy
from zhixing.courts.models import Court, Role, User
from zhixing.web.deps import ConsoleUser, DbSession
from zhixing.web.templating import render

router = APIRouter(include_in_schema=False)


@router.get("/courts")
def hierarchy(request: Request, actor: ConsoleUser, db: DbSession,
              q: Annotated[str | None, Query(max_length=32)] = None) -> Response:
    stmt = select(Court).options(joinedload(Court.command_center)).order_by(Court.path)
    if q:
        stmt = stmt.where(Court.name_zh.contains(q) | Court.code.contains(q)
                          | Court.name_en.ilike(f"%{q}%"))
    courts = list(db.scalars(stmt))
    return render(request, "courts/hierarchy.html",
                  {"actor": actor, "courts": courts, "q": q or ""})


def _users_page(request: Request, actor: ConsoleUser, db: DbSession, cursor: str | None,
                error: DomainError | None = None, form: dict[str, str] | None = None) -> Response:
    policy.require_role(actor, policy.USER_READ_ROLES, "list users")
    stmt = policy.users_visible(actor).options(joinedload(User.court)).order_by(User.id)
    after = cursor_int(cursor)
    if after is not None:
        stmt = stmt.where(User.id > after)
    n = clamp_limit(50)
    rows = db.scalars(stmt.limit(n + 1)).unique().all()
    page = page_from(rows, n, lambda u: [u.id])
    courts = db.scalars(select(Court).where(Court.id.in_(actor.visible_court_ids))
                        .order_by(Court.path)).all()
    return render(request, "courts/users.html", {
        "actor": actor, "page": page, "courts": courts, "roles": list(Role),
        "can_admin": actor.has_role(*policy.USER_ADMIN_ROLES), "error": error,
        "form": form or {},
    }, status_code=error.status_code if error else 200)


@router.get("/admin/users")
def users(request: Request, actor: ConsoleUser, db: DbSession,
          cursor: Annotated[str | None, Query(max_length=200)] = None) -> Response:
    return _users_page(request, actor, db, cursor)


@router.post("/admin/users")
def create_user(
    request: Request, actor: ConsoleUser, db: DbSession,
    username: Annotated[str, Form(max_length=64)],
    display_name: Annotated[str, Form(max_length=64)],
    court_code: Annotated[str, Form(max_length=16)],
    password: Annotated[str, Form(max_length=256)],
    roles: Annotated[list[str] | None, Form()] = None,
) -> Response:
    try:
        identity.create_user(db, actor, username=username, display_name=display_name,
                             court_code=court_code, password=password, roles=roles or [])
    except DomainError as exc:
        db.rollback()
        return _users_page(request, actor, db, None, exc, {
            "username": username, "display_name": display_name, "court_code": court_code})
    return RedirectResponse("/admin/users", status_code=303)


@router.get("/audit")
def audit_trail(request: Request, actor: ConsoleUser, db: DbSession,
                cursor: Annotated[str | None, Query(max_length=200)] = None,
                action: Annotated[str | None, Query(max_length=64)] = None) -> Response:
    policy.require_role(actor, policy.AUDIT_READ_ROLES, "read the audit trail")
    stmt = policy.audit_visible(actor).order_by(AuditRecord.seq.desc())
    after = cursor_int(cursor)
    if after is not None:
        stmt = stmt.where(AuditRecord.seq < after)
    if action:
        stmt = stmt.where(AuditRecord.action == action)
    n = 50
    rows = db.scalars(stmt.limit(n + 1)).all()
    page = page_from(rows, n, lambda r: [r.seq])
    audit.record(db, actor, "audit.read", details={"filter": {"action": action}})
    return render(request, "courts/audit.html", {"actor": actor, "page": page,
                                                 "action": action or ""})
