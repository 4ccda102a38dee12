"""Users, logins, console sessions, API tokens and machine keys."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, joinedload
from sqlalchemy.orm.interfaces import LoaderOption

from zhixing.core import audit, metrics, ratelimit
from zhixing.core.actor import Actor
from zhixing.core.clock import utcnow
from zhixing.core.errors import Conflict, NotFound, Unauthenticated, ValidationFailed
from zhixing.core.security import (
    MIN_PASSWORD_LENGTH,
    hash_password,
    new_token,
    password_needs_rehash,
    token_digest,
    verify_password,
)
from zhixing.core.settings import get_settings
from zhixing.courts import policy
from zhixing.courts.models import (
    ApiKey,
    ApiToken,
    ClientKind,
    Court,
    Role,
    User,
    UserRole,
    WebSession,
)
from zhixing.courts.service import court_ids_under

USERNAME_RE = re.compile(r"^[a-z0-9][a-z0-9._-]{2,63}$")
API_TOKEN_TTL = timedelta(days=30)
# Console sessions record activity at most this often, so page views are not all writes.
TOUCH_EVERY = timedelta(seconds=60)


def _with_user(user: Any) -> tuple[LoaderOption, ...]:
    """Load a credential's user, court and roles in the same statement: every request
    authenticates, and lazy loads made that five round trips (docs/benchmarks.md)."""
    return (joinedload(user).joinedload(User.court), joinedload(user).joinedload(User.role_rows))


def actor_for(session: Session, user: User, client_ip: str | None) -> Actor:
    return Actor(
        kind="user",
        id=str(user.id),
        name=user.username,
        roles=frozenset(r.value for r in user.roles),
        court_id=user.court_id,
        court_code=user.court.code,
        court_name=user.court.short_name_zh,
        visible_court_ids=court_ids_under(session, user.court.path),
        client_ip=client_ip,
        user_id=user.id,
    )


def _bad_credentials() -> Unauthenticated:
    # One answer for an unknown user and a wrong password.
    return Unauthenticated("wrong username or password", code="invalid_credentials")


def authenticate(session: Session, username: str, password: str, client_ip: str | None) -> User:
    """Check a password. Failures are counted per name and per address and throttled.

    The caller must commit even when this raises, so failures are counted.
    """
    settings = get_settings()
    window = timedelta(seconds=settings.login_window_seconds)
    name = username.strip().lower()
    user_key, ip_key = f"login:user:{name}", f"login:ip:{client_ip or '-'}"
    message = "too many failed logins; try again later"
    ratelimit.check(session, user_key, settings.login_max_failures, window, message)
    ratelimit.check(session, ip_key, settings.login_max_failures * 4, window, message)
    user = session.scalar(select(User).where(User.username == name))
    ok = verify_password(user.password_hash if user else None, password)
    if not ok or user is None or not user.is_active:
        ratelimit.hit(session, user_key, window)
        ratelimit.hit(session, ip_key, window)
        metrics.LOGIN_FAILURES.inc()
        audit.record(session, Actor(kind="anonymous", name=name, client_ip=client_ip),
                     "auth.login_failed", object_type="user",
                     object_id=user.id if user else None,
                     court_id=user.court_id if user else None)
        raise _bad_credentials()
    ratelimit.reset(session, user_key)
    if password_needs_rehash(user.password_hash):
        user.password_hash = hash_password(password)
    user.last_login_at = utcnow()
    return user


def start_web_session(
    session: Session, user: User, client_ip: str | None
) -> tuple[str, WebSession]:
    """A fresh session on every login (never reuse a pre-login identifier)."""
    settings = get_settings()
    token = new_token()
    now = utcnow()
    ws = WebSession(
        token_hash=token_digest(token),
        user_id=user.id,
        csrf_token=new_token(24),
        created_at=now,
        last_seen_at=now,
        expires_at=now + timedelta(hours=settings.session_absolute_hours),
        client_ip=client_ip,
    )
    session.add(ws)
    audit.record(session, actor_for(session, user, client_ip), "auth.login",
                 object_type="user", object_id=user.id)
    session.flush()
    return token, ws


def resolve_web_session(session: Session, token: str) -> WebSession | None:
    ws = session.scalars(select(WebSession).options(*_with_user(WebSession.user)).where(
        WebSession.token_hash == token_digest(token))).unique().first()
    if ws is None or ws.revoked_at is not None or not ws.user.is_active:
        return None
    now = utcnow()
    idle = timedelta(minutes=get_settings().session_idle_minutes)
    if now >= ws.expires_at or now - ws.last_seen_at > idle:
        return None
    if now - ws.last_seen_at > TOUCH_EVERY:
        ws.last_seen_at = now
    return ws


def end_web_session(session: Session, ws: WebSession, actor: Actor) -> None:
    ws.revoked_at = utcnow()
    audit.record(session, actor, "auth.logout", object_type="user", object_id=ws.user_id)


def issue_api_token(session: Session, user: User, name: str, actor: Actor) -> tuple[str, ApiToken]:
    token = new_token()
    row = ApiToken(user_id=user.id, name=name[:64] or "api", token_hash=token_digest(token),
                   created_at=utcnow(), expires_at=utcnow() + API_TOKEN_TTL)
    session.add(row)
    session.flush()
    audit.record(session, actor, "auth.token_issued", object_type="api_token", object_id=row.id)
    return "zxt_" + token, row


def resolve_api_token(session: Session, raw: str) -> ApiToken | None:
    if not raw.startswith("zxt_"):
        return None
    row = session.scalars(select(ApiToken).options(*_with_user(ApiToken.user)).where(
        ApiToken.token_hash == token_digest(raw[4:]))).unique().first()
    if row is None or row.revoked_at is not None or row.expires_at <= utcnow():
        return None
    if not row.user.is_active:
        return None
    return row


def revoke_api_token(session: Session, row: ApiToken, actor: Actor) -> None:
    row.revoked_at = utcnow()
    audit.record(session, actor, "auth.token_revoked", object_type="api_token", object_id=row.id)


def issue_api_key(session: Session, kind: ClientKind, client_ref: str, name: str,
                  scopes: list[str], actor: Actor) -> tuple[str, str, ApiKey]:
    """A machine client's key id and secret. The secret is shown once."""
    key_id = "zxk_" + new_token(9)
    secret = new_token()
    row = ApiKey(key_id=key_id, secret_hash=token_digest(secret), client_kind=kind,
                 client_ref=client_ref, name=name, scopes=scopes, created_at=utcnow())
    session.add(row)
    session.flush()
    audit.record(session, actor, "auth.key_issued", object_type="api_key", object_id=key_id)
    return key_id, secret, row


def resolve_api_key(session: Session, key_id: str, secret: str) -> ApiKey | None:
    row = session.scalar(select(ApiKey).where(ApiKey.key_id == key_id))
    if row is None or row.revoked_at is not None:
        return None
    if token_digest(secret) != row.secret_hash:
        return None
    return row


def machine_actor(key: ApiKey, client_ip: str | None) -> Actor:
    return Actor(kind="machine", id=key.key_id, name=key.name, client_ip=client_ip,
                 scopes=frozenset(key.scopes), roles=frozenset({str(key.client_kind)}))


def validate_password(password: str) -> None:
    if len(password) < MIN_PASSWORD_LENGTH:
        raise ValidationFailed(
            f"password must have at least {MIN_PASSWORD_LENGTH} characters",
            code="password_too_short", field="password")


def _parse_roles(roles: list[str]) -> list[Role]:
    parsed = []
    for r in roles:
        try:
            parsed.append(Role(r))
        except ValueError:
            raise ValidationFailed(f"unknown role {r!r}", code="unknown_role",
                                   field="roles") from None
    if not parsed:
        raise ValidationFailed("a user needs at least one role", code="no_roles", field="roles")
    return sorted(set(parsed))


def create_user(session: Session, actor: Actor, *, username: str, display_name: str,
                court_code: str, password: str, roles: list[str]) -> User:
    """Create a user in a court within the acting administrator's reach."""
    if actor.kind != "system":
        policy.require_role(actor, policy.USER_ADMIN_ROLES, "create users")
    name = username.strip().lower()
    if not USERNAME_RE.match(name):
        raise ValidationFailed(
            "username must be 3-64 characters: lower-case letters, digits, '.', '_' or '-'",
            code="invalid_username", field="username")
    if not display_name.strip():
        raise ValidationFailed("display name is required", code="required", field="display_name")
    validate_password(password)
    parsed = _parse_roles(roles)
    court = session.scalar(select(Court).where(Court.code == court_code))
    if court is None or (actor.kind != "system" and not actor.can_see_court(court.id)):
        raise NotFound(f"court {court_code} not found", code="court_not_found", field="court_code")
    if session.scalar(select(User.id).where(User.username == name)) is not None:
        raise Conflict(f"username {name} is taken", code="username_taken", field="username")
    user = User(username=name, display_name=display_name.strip(), court_id=court.id,
                password_hash=hash_password(password), is_active=True, created_at=utcnow(),
                failed_logins=0)
    user.role_rows = [UserRole(role=r.value) for r in parsed]
    session.add(user)
    session.flush()
    audit.record(session, actor, "user.created", object_type="user", object_id=user.id,
                 court_id=court.id, details={"username": name, "roles": [r.value for r in parsed]})
    return user


def get_user(session: Session, actor: Actor, user_id: int) -> User:
    user = session.scalar(policy.users_visible(actor).where(User.id == user_id))
    if user is None:
        raise NotFound(f"user {user_id} not found", code="user_not_found")
    return user


def update_user(session: Session, actor: Actor, user_id: int, *, display_name: str | None,
                roles: list[str] | None, is_active: bool | None, password: str | None) -> User:
    user = get_user(session, actor, user_id)
    policy.require_role(actor, policy.USER_ADMIN_ROLES, "change users")
    changes: dict[str, object] = {}
    if display_name is not None:
        if not display_name.strip():
            raise ValidationFailed("display name is required", code="required",
                                   field="display_name")
        user.display_name = display_name.strip()
        changes["display_name"] = user.display_name
    if roles is not None:
        parsed = _parse_roles(roles)
        user.role_rows = [UserRole(role=r.value) for r in parsed]
        changes["roles"] = [r.value for r in parsed]
    if is_active is not None:
        if user.id == actor.user_id and not is_active:
            raise ValidationFailed("you cannot deactivate yourself", code="self_deactivation",
                                   field="is_active")
        user.is_active = is_active
        changes["is_active"] = is_active
    if password is not None:
        validate_password(password)
        user.password_hash = hash_password(password)
        changes["password_changed"] = True
    session.flush()
    audit.record(session, actor, "user.updated", object_type="user", object_id=user.id,
                 court_id=user.court_id, details=changes)
    return user
