"""Who may see and act on enforcement cases. Decided here, never in routes.

A case is visible to users of its court and of every court above it (404 otherwise). Acting
on a case (transitions, facts, ledger, documents) is for officers and approvers of the case's
own court; higher courts supervise and read. Approvals (extensions) need an approver.
"""

from __future__ import annotations

from sqlalchemy import Select, select

from zhixing.cases.models import Case
from zhixing.core.actor import Actor
from zhixing.core.errors import Forbidden, NotFound

ACTING_ROLES = ("officer", "approver")
APPROVING_ROLES = ("approver",)
READING_ROLES = ("officer", "approver", "duty_officer", "duty_leader", "auditor", "admin",
                 "bailiff")


def visible(actor: Actor) -> Select[tuple[Case]]:
    return select(Case).where(Case.court_id.in_(actor.visible_court_ids))


def require_read(actor: Actor) -> None:
    if not actor.has_role(*READING_ROLES):
        raise Forbidden("your role may not read enforcement cases", code="role_forbidden")


def require_act(actor: Actor, case: Case) -> None:
    if not actor.can_see_court(case.court_id):
        raise NotFound("case not found", code="case_not_found")
    if actor.court_id != case.court_id or not actor.has_role(*ACTING_ROLES):
        raise Forbidden("only officers and approvers of the case's court may act on it",
                        code="role_forbidden")


def require_approve(actor: Actor, case: Case) -> None:
    require_act(actor, case)
    if not actor.has_role(*APPROVING_ROLES):
        raise Forbidden("this needs an approver", code="approver_required")


def require_register(actor: Actor, court_id: int) -> None:
    if not actor.can_see_court(court_id):
        raise NotFound("court not found", code="court_not_found", field="court_code")
    if actor.court_id != court_id or not actor.has_role(*ACTING_ROLES):
        raise Forbidden("cases are registered by officers of the receiving court",
                        code="role_forbidden", field="court_code")
