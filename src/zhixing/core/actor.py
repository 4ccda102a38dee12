"""Who is acting: a person, a machine client, the platform itself, or the public."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

ActorKind = Literal["user", "machine", "system", "anonymous"]


@dataclass(frozen=True)
class Actor:
    kind: ActorKind
    id: str | None = None
    name: str | None = None
    roles: frozenset[str] = field(default_factory=frozenset)
    court_id: int | None = None
    court_code: str | None = None
    court_name: str | None = None
    # The actor's own court and every court below it; decided once at authentication.
    visible_court_ids: frozenset[int] = field(default_factory=frozenset)
    client_ip: str | None = None
    user_id: int | None = None
    scopes: frozenset[str] = field(default_factory=frozenset)

    def has_role(self, *roles: str) -> bool:
        return any(r in self.roles for r in roles)

    def can_see_court(self, court_id: int | None) -> bool:
        return court_id is not None and court_id in self.visible_court_ids


SYSTEM = Actor(kind="system", id="system", name="zhixing")


def anonymous(client_ip: str | None = None) -> Actor:
    return Actor(kind="anonymous", client_ip=client_ip)
