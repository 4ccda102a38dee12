"""Who may see and do what in field work. Decided here, never in routes.

Records belong to a court (its command center). A record outside the actor's reach answers 404,
as if it did not exist; inside the reach the role decides (403). A field team's members act on
their own team's tasks wherever the task came from.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from zhixing.core.actor import Actor
from zhixing.core.errors import Forbidden, NotFound
from zhixing.field.models import Dispatch, FieldResource, ResourceKind, Tip

DESK_ROLES = ("duty_officer", "duty_leader")
FIELD_ROLES = ("bailiff",)
TIP_ROLES = ("duty_officer", "duty_leader", "officer", "approver")
READ_ROLES = (*TIP_ROLES, "bailiff", "auditor", "admin")
REWARD_ROLES = ("officer", "approver")
POSITION_ROLES = (*DESK_ROLES, *FIELD_ROLES)


def require_role(actor: Actor, roles: tuple[str, ...], what: str) -> None:
    if not actor.has_role(*roles):
        raise Forbidden(f"your role may not {what}", code="role_forbidden")


def teams_of(session: Session, actor: Actor) -> set[int]:
    """The teams the actor is a member of (as a person resource)."""
    if actor.user_id is None:
        return set()
    return {t for t in session.scalars(
        select(FieldResource.team_id).where(FieldResource.user_id == actor.user_id,
                                            FieldResource.kind == ResourceKind.BAILIFF))
        if t is not None}


def can_see_tip(actor: Actor, tip: Tip) -> bool:
    return actor.can_see_court(tip.court_id) or actor.can_see_court(tip.center_court_id)


def require_tip_read(actor: Actor, tip: Tip) -> None:
    if not can_see_tip(actor, tip):
        raise NotFound(f"tip {tip.id} not found", code="tip_not_found")
    require_role(actor, READ_ROLES, "read tips")


def require_tip_act(actor: Actor, tip: Tip) -> None:
    require_tip_read(actor, tip)
    require_role(actor, TIP_ROLES, "handle tips")


def may_see_tipster(actor: Actor, tip: Tip) -> bool:
    """Tipsters are confidential: only the handling court's own roles see who they are."""
    return actor.court_id == tip.court_id and actor.has_role(*TIP_ROLES)


def dispatch_visible(session: Session, actor: Actor, dispatch: Dispatch,
                     team_court_id: int) -> bool:
    return (actor.can_see_court(dispatch.court_id) or actor.can_see_court(team_court_id)
            or dispatch.team_id in teams_of(session, actor))


def is_desk_for(actor: Actor, dispatch: Dispatch, team_court_id: int) -> bool:
    return actor.has_role(*DESK_ROLES) and (actor.can_see_court(dispatch.court_id)
                                            or actor.can_see_court(team_court_id))
