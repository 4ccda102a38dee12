"""Who may ask whom, and where a request goes next: pure functions over the court tree.

A request names the court whose area holds the place. A hop from center A to center B is
allowed when B is A's parent (anyone may ask upward); when B is A's child and the place is in
B's area (handing down); or when A and B are both city centers (peers) and the place is in B's
area. A district cannot ask a peer district directly: it asks its city. The receiving center
hands the request down, one level at a time, to the center whose court has the place.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

INTERMEDIATE = "intermediate"


@dataclass(frozen=True)
class Node:
    court_id: int
    code: str
    level: str  # high / intermediate / basic
    parent_id: int | None
    path: str  # "/桂/桂03/桂0305/"

    def holds(self, other: Node) -> bool:
        """``other`` is this court or below it."""
        return other.path.startswith(self.path)


class Tree:
    def __init__(self, nodes: Iterable[Node]) -> None:
        self.by_id = {n.court_id: n for n in nodes}
        self.by_code = {n.code: n for n in self.by_id.values()}

    def parent(self, node: Node) -> Node | None:
        return self.by_id.get(node.parent_id) if node.parent_id is not None else None

    def children(self, node: Node) -> list[Node]:
        return sorted((n for n in self.by_id.values() if n.parent_id == node.court_id),
                      key=lambda n: n.code)

    def child_towards(self, holder: Node, place: Node) -> Node | None:
        """The child of ``holder`` whose area holds ``place`` (None if ``place`` is not
        strictly below ``holder``)."""
        if holder.court_id == place.court_id or not holder.holds(place):
            return None
        step = place
        while step.parent_id is not None and step.parent_id != holder.court_id:
            step = self.by_id[step.parent_id]
        return step if step.parent_id == holder.court_id else None

    def city_of(self, node: Node) -> Node | None:
        step: Node | None = node
        while step is not None and step.level != INTERMEDIATE:
            step = self.parent(step)
        return step


def refusal(tree: Tree, sender: Node, receiver: Node, place: Node) -> str | None:
    """Why ``sender`` may not send a request about ``place`` to ``receiver`` (an error code),
    or None when the hop is allowed."""
    if sender.court_id == receiver.court_id:
        return "same_center"
    if sender.parent_id == receiver.court_id:
        return None  # upward: always
    if receiver.parent_id == sender.court_id:
        return None if receiver.holds(place) else "place_outside_receiver"
    if sender.level == INTERMEDIATE and receiver.level == INTERMEDIATE:
        return None if receiver.holds(place) else "place_outside_receiver"
    return "route_not_allowed"


def next_center(tree: Tree, holder: Node, place: Node) -> Node | None:
    """Where ``holder`` sends the request by default: down towards the place, across to the
    place's city (from a city), or up; None when ``holder`` has the place itself."""
    if holder.court_id == place.court_id:
        return None
    down = tree.child_towards(holder, place)
    if down is not None:
        return down
    if holder.level == INTERMEDIATE:
        city = tree.city_of(place)
        if city is not None and city.court_id != holder.court_id:
            return city
    return tree.parent(holder)


def escalation_target(tree: Tree, late: Node) -> Node:
    """The next level up from a late center (the region escalates to itself)."""
    return tree.parent(late) or late
