"""The command network as loaded from the database: courts as routing nodes, and the command
center of each court (one per court). 126 rows; read once per request."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from zhixing.command.routing import Node, Tree
from zhixing.core.errors import ValidationFailed
from zhixing.courts.models import CommandCenter, Court


@dataclass(frozen=True)
class CenterRef:
    id: int
    court_id: int
    code: str
    name: str  # the court's short Chinese name
    name_en: str
    level: str
    duty_phone: str | None


def _ref(cc: CommandCenter, court: Court) -> CenterRef:
    return CenterRef(cc.id, court.id, court.code, court.short_name_zh, court.name_en,
                     str(court.level), cc.duty_phone)


def center_of_court(session: Session, court_id: int) -> CenterRef:
    """One court's command center, in one statement, where the whole network is not needed."""
    cc, court = session.execute(select(CommandCenter, Court).join(
        Court, Court.id == CommandCenter.court_id).where(CommandCenter.court_id == court_id)
    ).tuples().one()
    return _ref(cc, court)


class Network:
    def __init__(self, session: Session) -> None:
        courts = session.scalars(select(Court)).all()
        self.tree = Tree(Node(c.id, c.code, str(c.level), c.parent_id, c.path) for c in courts)
        by_court = {c.id: c for c in courts}
        self.centers: dict[int, CenterRef] = {}
        self.center_of_court: dict[int, CenterRef] = {}
        for cc in session.scalars(select(CommandCenter)):
            ref = _ref(cc, by_court[cc.court_id])
            self.centers[cc.id] = ref
            self.center_of_court[cc.court_id] = ref

    def node(self, center: CenterRef) -> Node:
        return self.tree.by_id[center.court_id]

    def center(self, center_id: int) -> CenterRef:
        return self.centers[center_id]

    def by_code(self, code: str, field: str) -> CenterRef:
        node = self.tree.by_code.get(code)
        if node is None or node.court_id not in self.center_of_court:
            raise ValidationFailed(f"no court or command center {code!r}",
                                   code="court_not_found", field=field)
        return self.center_of_court[node.court_id]

    def of_node(self, node: Node) -> CenterRef:
        return self.center_of_court[node.court_id]

    def parent(self, center: CenterRef) -> CenterRef | None:
        up = self.tree.parent(self.node(center))
        return self.of_node(up) if up is not None else None

    def subordinates(self, center: CenterRef) -> list[CenterRef]:
        """The centers directly below (region: the 14 cities; city: its districts)."""
        return [self.of_node(n) for n in self.tree.children(self.node(center))]

    def in_reach(self, court_ids: frozenset[int]) -> list[CenterRef]:
        return sorted((c for c in self.centers.values() if c.court_id in court_ids),
                      key=lambda c: self.tree.by_id[c.court_id].path)
