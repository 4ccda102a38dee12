"""Who may see and do what at the command center. Decided here, never in routes.

The duty roles of a center act for it: acknowledging and handing down hops addressed to it,
answering roll calls, reporting results. Starting a roll call and managing the roster are for
duty leaders. Everything is seen within reach (the user's court and below); a request is also
seen by every center on its way, and a roll call by every center it calls. Outside: 404.
"""

from __future__ import annotations

from zhixing.command.network import CenterRef, Network
from zhixing.core.actor import Actor
from zhixing.core.errors import Forbidden, NotFound

DUTY_ROLES = ("duty_officer", "duty_leader")
LEADER_ROLES = ("duty_leader",)
ROSTER_ROLES = ("duty_leader", "admin")
ASKING_ROLES = (*DUTY_ROLES, "officer", "approver")  # an officer may ask for his own case
READING_ROLES = (*DUTY_ROLES, "officer", "approver", "auditor", "admin", "bailiff")


def require_read(actor: Actor) -> None:
    if not actor.has_role(*READING_ROLES):
        raise Forbidden("your role may not read the command center", code="role_forbidden")


def own_center(network: Network, actor: Actor) -> CenterRef:
    assert actor.court_id is not None
    return network.center_of_court[actor.court_id]


def require_duty(actor: Actor, center: CenterRef, *, leader: bool = False) -> None:
    """The actor is on the duty staff of ``center`` (its leader, if ``leader``)."""
    if actor.court_id != center.court_id:
        raise Forbidden("only the duty staff of the addressed center may do this",
                        code="not_your_center")
    if not actor.has_role(*(LEADER_ROLES if leader else DUTY_ROLES)):
        raise Forbidden("this needs the duty leader" if leader else "this needs a duty role",
                        code="role_forbidden")


def require_ask(actor: Actor) -> None:
    if not actor.has_role(*ASKING_ROLES):
        raise Forbidden("your role may not ask for assistance", code="role_forbidden")


def require_roster(actor: Actor, center: CenterRef) -> None:
    if not actor.can_see_court(center.court_id):
        raise NotFound("command center not found", code="court_not_found")
    if not actor.has_role(*ROSTER_ROLES):
        raise Forbidden("the roster is kept by duty leaders and administrators",
                        code="role_forbidden")


def visible_center_ids(network: Network, actor: Actor) -> frozenset[int]:
    return frozenset(c.id for c in network.centers.values()
                     if c.court_id in actor.visible_court_ids)
