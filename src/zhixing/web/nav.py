"""Console navigation: each domain registers its sections here, shown by role."""

from __future__ import annotations

from dataclasses import dataclass

from zhixing.core.actor import Actor


@dataclass(frozen=True)
class NavItem:
    path: str
    label: str  # an English msgid, translated in the template
    roles: tuple[str, ...] = ()  # empty: every signed-in person

    def visible_to(self, actor: Actor) -> bool:
        return not self.roles or actor.has_role(*self.roles)


SECTIONS: list[NavItem] = [
    NavItem("/", "Workbench"),
    NavItem("/cases/queue", "My work"),
    NavItem("/cases", "Cases"),
    NavItem("/cases/new", "Register a case", ("officer", "approver")),
    NavItem("/indicators", "Indicators", ("officer", "approver", "duty_officer", "duty_leader",
                                          "auditor", "admin")),
    NavItem("/screen", "Big screen", ("duty_officer", "duty_leader", "approver", "admin")),
    NavItem("/network/units", "Network query & control", ("officer", "approver",
                                                          "duty_officer", "duty_leader",
                                                          "auditor", "admin")),
    NavItem("/credit", "Dishonest-debtor list", ("officer", "approver", "duty_officer",
                                                 "duty_leader", "auditor", "admin")),
    NavItem("/command", "Command center", ("duty_officer", "duty_leader", "approver", "admin")),
    NavItem("/field/map", "Command map", ("duty_officer", "duty_leader", "approver", "admin")),
    NavItem("/field/tips", "Tip desk", ("duty_officer", "duty_leader", "officer", "approver",
                                        "auditor", "admin")),
    NavItem("/field/dispatches", "Dispatch desk", ("duty_officer", "duty_leader", "approver",
                                                   "auditor", "admin")),
    NavItem("/field", "Field app", ("bailiff",)),
    NavItem("/courts", "Courts & command centers"),
    NavItem("/admin/users", "Users", ("admin", "auditor")),
    NavItem("/audit", "Audit trail", ("auditor", "admin")),
]


def for_actor(actor: Actor) -> list[NavItem]:
    return [item for item in SECTIONS if item.visible_to(actor)]
