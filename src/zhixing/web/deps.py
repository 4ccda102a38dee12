"""Request-scoped dependencies: the unit of work, who is asking, and CSRF.

A request owns its transaction: committed when the route returns (before the response is sent),
rolled back when it raises. People authenticate with a console session cookie (unsafe methods
then need the session's CSRF token) or a bearer API token; machine clients with an API key.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, Path, Request
from fastapi.concurrency import run_in_threadpool
from sqlalchemy.orm import Session

from zhixing.core.actor import Actor
from zhixing.core.db import session_factory, wait_for_database
from zhixing.core.errors import DomainError, Forbidden, Unauthenticated
from zhixing.core.security import constant_time_equal
from zhixing.core.settings import get_settings
from zhixing.courts import identity
from zhixing.courts.models import WebSession
from zhixing.web import i18n

SESSION_COOKIE = "zx_session"
CSRF_HEADER = "x-csrf-token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def get_db() -> Iterator[Session]:
    session = session_factory()()
    settings = get_settings()
    try:
        if settings.db_wait_seconds and not settings.is_sqlite:
            # A database restart costs the requests arriving meanwhile a few seconds' wait,
            # not a 503 (docs/reliability.md); one that stays down answers 503 after it.
            wait_for_database(session, settings.db_wait_seconds)
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


DbSession = Annotated[Session, Depends(get_db, scope="function")]


class LoginRequired(DomainError):
    """Raised on console pages; answered with a redirect to the login page."""

    status_code = 401
    code = "login_required"


def client_ip(request: Request) -> str | None:
    return request.client.host if request.client else None


async def _check_csrf(request: Request, ws: WebSession) -> None:
    if request.method in SAFE_METHODS:
        return
    sent = request.headers.get(CSRF_HEADER)
    if sent is None and request.headers.get("content-type", "").startswith(
        ("application/x-www-form-urlencoded", "multipart/form-data")
    ):
        form = await request.form()
        value = form.get("csrf_token")
        sent = value if isinstance(value, str) else None
    if not sent or not constant_time_equal(sent, ws.csrf_token):
        raise Forbidden("missing or wrong CSRF token", code="csrf_failed")


def _bearer_actor(request: Request, db: Session, value: str, ip: str | None) -> Actor:
    if value.startswith("zxk_"):
        key_id, _, secret = value.partition(".")
        key = identity.resolve_api_key(db, key_id, secret)
        if key is None:
            raise Unauthenticated("unknown or revoked API key", code="invalid_token")
        return identity.machine_actor(key, ip)
    token = identity.resolve_api_token(db, value)
    if token is None:
        raise Unauthenticated("unknown, expired or revoked token", code="invalid_token")
    request.state.api_token_id = token.id
    return identity.actor_for(db, token.user, ip)


def _web_session(db: Session, cookie: str) -> tuple[WebSession, str | None] | None:
    ws = identity.resolve_web_session(db, cookie)
    return None if ws is None else (ws, ws.user.locale)


async def _resolve(request: Request, db: Session) -> Actor | None:
    """Who is asking. The look-ups run on the thread pool, never on the event loop: a query
    that waits there (for a pooled connection, or for SQLite's write lock held by a request
    that itself needs the loop to finish) would stall every request of the process."""
    ip = client_ip(request)
    auth = request.headers.get("authorization", "")
    if auth:
        scheme, _, value = auth.partition(" ")
        if scheme.lower() != "bearer" or not value:
            raise Unauthenticated("use 'Authorization: Bearer <token>'", code="invalid_token")
        return await run_in_threadpool(_bearer_actor, request, db, value.strip(), ip)
    cookie = request.cookies.get(SESSION_COOKIE)
    if cookie:
        found = await run_in_threadpool(_web_session, db, cookie)
        if found is not None:
            ws, locale = found
            await _check_csrf(request, ws)
            request.state.web_session = ws
            request.state.csrf_token = ws.csrf_token  # plain copy: outlives the DB session
            if locale and not request.cookies.get(i18n.LANG_COOKIE):
                i18n.current_locale.set(locale)
            return await run_in_threadpool(identity.actor_for, db, ws.user, ip)
    return None


async def optional_actor(request: Request, db: DbSession) -> Actor | None:
    actor = await _resolve(request, db)
    request.state.actor = actor
    return actor


async def require_user(request: Request, db: DbSession) -> Actor:
    """A person (console session or API token). Machine clients are refused."""
    actor = await optional_actor(request, db)
    if actor is None:
        raise Unauthenticated("authentication required")
    if actor.kind != "user":
        raise Forbidden("this route is for people, not machine clients", code="machine_forbidden")
    return actor


async def require_console_user(request: Request, db: DbSession) -> Actor:
    actor = await optional_actor(request, db)
    if actor is None or actor.kind != "user":
        raise LoginRequired("please log in")
    return actor


# Ids past the column's integer width are no record, and would overflow the database: 64-bit
# for the big tables (cases and what hangs off them), 32-bit for the small ones (users).
RecordId = Annotated[int, Path(ge=1, le=2**63 - 1, description="record id")]
SmallRecordId = Annotated[int, Path(ge=1, le=2**31 - 1, description="record id")]

CurrentUser = Annotated[Actor, Depends(require_user)]
ConsoleUser = Annotated[Actor, Depends(require_console_user)]
