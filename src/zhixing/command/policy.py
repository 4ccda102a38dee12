"""Who may see and do what at the command center. Decided here, never in routes.

The duty roles of a center act for it: acknowledging and handing down hops addressed to it,
answering roll calls, reporting results. Starting a roll call and managing the roster are for
duty leaders. Everything is seen within reach (the user's court and below); a request is also
seen by every center on its way, and a roll call by every center it calls. Outside: 404.

A video call is placed by a duty leader or officer on duty now (or an administrator of the
center) to the parent center, a child or a peer under the same parent; anyone on duty at the
called center answers it. It is seen within reach of either center.
"""

from __future__ import annotations

from collections.abc import Collection

from zhixing.command.network import CenterRef, Network
from zhixing.command.routing import Node
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


# --- video calls between duty desks ------------------------------------------------------------

CALL_ROSTER_ROLES = ("leader", "officer")  # the roster's roles that may place a call
CENTER_ADMIN_ROLES = ("admin",)


def call_refusal(caller: Node, callee: Node) -> str | None:
    """Why the duty desk of ``caller`` may not call the one of ``callee`` (an error code), or
    None. A desk calls its parent, its children, and its peers under the same parent (the
    region's cities one another, a city's districts one another): the centers it works with
    directly. Further away, the call goes through the center in between, as requests do."""
    if caller.court_id == callee.court_id:
        return "same_center"
    if caller.parent_id == callee.court_id or callee.parent_id == caller.court_id:
        return None
    if caller.parent_id is not None and caller.parent_id == callee.parent_id:
        return None
    return "call_route_not_allowed"


def callable_centers(network: Network, center: CenterRef) -> list[CenterRef]:
    """The centers ``center``'s desk may call: parent first, then children, then peers."""
    node = network.node(center)
    parent = network.tree.parent(node)
    peers = [n for n in network.tree.children(parent) if n.court_id != node.court_id] \
        if parent is not None else []
    ordered = ([parent] if parent is not None else []) + network.tree.children(node) + peers
    return [network.of_node(n) for n in ordered if n.court_id in network.center_of_court]


def require_caller(actor: Actor, center: CenterRef, roster_roles: Collection[str]) -> None:
    """The actor may place a call from ``center``: its duty leader or a duty officer on the
    roster now, or an administrator of the center's court."""
    if actor.court_id != center.court_id:
        raise Forbidden("calls are placed from your own center", code="not_your_center")
    if actor.has_role(*CENTER_ADMIN_ROLES):
        return
    if not any(r in CALL_ROSTER_ROLES for r in roster_roles):
        raise Forbidden("only the duty leader or a duty officer on duty now may place a call",
                        code="not_on_duty")


def may_answer(actor: Actor, center: CenterRef, roster_roles: Collection[str]) -> bool:
    """The actor answers calls to ``center``: anyone on its roster now, or an administrator of
    the center's court (who may also place calls from it)."""
    return actor.court_id == center.court_id and (
        bool(roster_roles) or actor.has_role(*CENTER_ADMIN_ROLES))
