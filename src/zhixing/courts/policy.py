"""Who may see and change what in the courts domain. Decided here, never in routes.

Rule: a user acts within their own court and the courts below it. Records outside that reach do
not exist for them (404); inside it, the role decides (403).
"""

from __future__ import annotations

from sqlalchemy import Select, select

from zhixing.core.actor import Actor
from zhixing.core.errors import Forbidden
from zhixing.core.models import AuditRecord
from zhixing.courts.models import Role, User

USER_ADMIN_ROLES = (Role.ADMIN,)
USER_READ_ROLES = (Role.ADMIN, Role.AUDITOR)
AUDIT_READ_ROLES = (Role.AUDITOR, Role.ADMIN)


def require_role(actor: Actor, roles: tuple[Role, ...], what: str) -> None:
    if not actor.has_role(*roles):
        raise Forbidden(f"your role may not {what}", code="role_forbidden")


def users_visible(actor: Actor) -> Select[tuple[User]]:
    return select(User).where(User.court_id.in_(actor.visible_court_ids))


def audit_visible(actor: Actor) -> Select[tuple[AuditRecord]]:
    return select(AuditRecord).where(AuditRecord.court_id.in_(actor.visible_court_ids))
