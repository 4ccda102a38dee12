"""The role matrix (issue #8, access control): every API route × every role, and every console
page × every role, against one rule table.

``RULES`` below is that table: for each route of the published API, which roles may call it.
Its counterpart for the console is ``PAGES``. Both say what the platform should allow (read from
DESIGN.md, RULES.md and each domain's ``policy.py``); where the code does something else today,
the entry says so with ``today=`` and why, so a disagreement is visible here and the test fails
once it is resolved (then ``today=`` goes).

Who asks (one user per role and court, made through the admin API):

- *own*: a user of Qingxiu (桂0103), the court every record of the matrix belongs to (or, for
  a route without a record in its path, the court the user acts for);
- *higher*: a user of Nanning (桂01), the court above, on the same records (``higher``: the
  roles that may; records within reach but refused answer 403, never 404);
- *unrelated*: a user of Liunan (桂0204), outside the reach: 404 as if the record did not
  exist, or 403 when the role could not call the route anywhere (that leaks nothing);
- anonymous callers: 401 on everything but the public routes;
- a machine client's API key: 403 ``machine_forbidden`` on every route for people;
- people's tokens on the machine protocols (linkage units, partner agencies): refused, while a
  partner's key opens the partner routes (the control that the refusal is not a broken route);
- the region's administrator (the high court's): the only one who manages units and partners.

Routes without a record in their path are asked by the users of Qingxiu only: the courts above
and beside see their own lists there (tests/courts/test_access.py checks that lists stay
within reach).

An allowed role must get past authorisation: no 401, 403 or 404 (the records are real), no
5xx; a 409 or 422 is fine (the record's state may refuse the act). A refused role gets 403 with
the shared error body and a refusal code. Every route's callers are sent in one go, refusals
first, and the answers cached: the parametrized tests only read them. A route whose callers
change its record gives every caller it lets through a record of his own (one earlier caller's
act, closing or answering it, could otherwise hide a refusal checked after the record's state);
the refused share one.

The tests share one world (users, cases, listings, requests, calls ...) built once for this
module through the API, so ``_clean_state`` is replaced here and the database is emptied after
the module's last test.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

import pytest
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient
from sqlalchemy import delete, select, update

from tests.cases.factories import case_payload
from tests.command.support import on_duty
from tests.conftest import PASSWORD, empty_database
from tests.linkage.support import onboard, sdk
from tests.linkage.test_inquiries import PURPOSE, deposits_result
from tests.linkage.test_orders import outcome
from tests.web.test_console import login
from zhixing.analytics import views as analytics_views
from zhixing.app import create_app
from zhixing.cases.documents import query_code
from zhixing.cases.service import today
from zhixing.command import escalation
from zhixing.command import views as command_views
from zhixing.core.actor import SYSTEM
from zhixing.core.db import transaction
from zhixing.core.models import RateBucket
from zhixing.courts import identity
from zhixing.courts.models import ClientKind, Court, Role
from zhixing.credit import partners as partner_registry
from zhixing.credit.models import Partner
from zhixing.field import resources
from zhixing.field import views as field_views
from zhixing.field.models import FieldResource, FieldTeam, ResourceKind, ResourceStatus
from zhixing.linkage.models import LinkageUnit
from zhixing.web.deps import SESSION_COOKIE

Route = tuple[str, str]
Roles = frozenset[str]

ROLES = ("admin", "auditor", "officer", "approver", "duty_leader", "duty_officer", "bailiff")

# --- role sets, named as the policies name them ---------------------------------------------------

EVERYONE: Roles = frozenset(ROLES)
NOBODY: Roles = frozenset()
ADMIN: Roles = frozenset({"admin"})
USER_READERS: Roles = frozenset({"admin", "auditor"})  # courts.policy.USER_READ_ROLES
AUDIT_READERS: Roles = frozenset({"auditor", "admin"})  # courts.policy.AUDIT_READ_ROLES
ACTING: Roles = frozenset({"officer", "approver"})  # cases.policy.ACTING_ROLES
APPROVER: Roles = frozenset({"approver"})
NO_BAILIFF: Roles = EVERYONE - {"bailiff"}  # indicators, linked units, figures, the map
DUTY: Roles = frozenset({"duty_officer", "duty_leader"})  # command DUTY_ROLES, field DESK_ROLES
LEADER: Roles = frozenset({"duty_leader"})
ROSTER: Roles = frozenset({"duty_leader", "admin"})  # command.policy.ROSTER_ROLES
ASKING: Roles = DUTY | ACTING  # command.policy.ASKING_ROLES
TIPS: Roles = DUTY | ACTING  # field.policy.TIP_ROLES
FIELD: Roles = DUTY | {"bailiff"}  # positions, SOS, the field app
# A correction request taken to the higher court is registered by the listing court's (or the
# higher court's) officers, approvers and duty officers (credit.corrections).
REVIEW_DESK: Roles = frozenset({"officer", "approver", "duty_officer"})
# Video calls are placed and answered by the duty staff on the roster now (the matrix puts its
# duty leader and duty officer of Qingxiu on it) or an administrator of the center's court.
DESK_ON_DUTY: Roles = DUTY | ADMIN
# A dispatch is moved and documented by the duty desk or the members of its team (the
# matrix's bailiff of Qingxiu is a member of the team dispatched).
DESK_OR_TEAM: Roles = DUTY | {"bailiff"}

Kind = Literal["people", "public", "machine", "region_admin"]


@dataclass(frozen=True)
class Access:
    """Who may call a route.

    ``own``: the roles, at the court whose record it is (or for whom a collection route acts),
    that may call it. ``higher``: for a route naming a record, the roles of the court above
    that may (None: the route names no record). ``unrelated``: roles of a court outside the
    reach that get an answer (reference data only). ``today``: what the code allows at the
    own court when it disagrees with ``own``, and ``why`` it should not.
    """

    own: Roles
    higher: Roles | None = None
    unrelated: Roles = NOBODY
    kind: Kind = "people"
    today: Roles | None = None
    why: str = ""


def anyone(roles: Roles) -> Access:
    """A collection route (no record in its path): the roles at one's own court."""
    return Access(roles)


def read(roles: Roles = EVERYONE) -> Access:
    """Reading a record: the same roles at its court and at the courts above (supervision)."""
    return Access(roles, higher=roles)


def act(own: Roles, higher: Roles = NOBODY) -> Access:
    """Acting on a record: by default only its own court acts, the courts above read."""
    return Access(own, higher=higher)


PUBLIC = Access(EVERYONE, kind="public")  # anyone, signed in or not
MACHINE = Access(NOBODY, kind="machine")  # a machine protocol: people and anonymous refused
# Linked units and partner agencies serve the whole region: only the high court's
# administrators manage them; every role of a lower court is refused.
REGION_ADMIN = Access(NOBODY, kind="region_admin")

RULES: dict[Route, Access] = {
    # --- courts: tokens, the hierarchy, users, the audit trail
    ("post", "/api/v1/auth/tokens"): PUBLIC,
    ("delete", "/api/v1/auth/tokens/current"): anyone(EVERYONE),
    ("get", "/api/v1/me"): anyone(EVERYONE),
    ("get", "/api/v1/courts"): anyone(EVERYONE),
    ("get", "/api/v1/courts/{code}"): Access(EVERYONE, higher=EVERYONE, unrelated=EVERYONE),
    ("get", "/api/v1/users"): anyone(USER_READERS),
    ("post", "/api/v1/users"): anyone(ADMIN),
    ("get", "/api/v1/users/{user_id}"): read(USER_READERS),
    ("patch", "/api/v1/users/{user_id}"): act(ADMIN, higher=ADMIN),
    ("get", "/api/v1/audit"): anyone(AUDIT_READERS),
    # --- cases: every role reads the cases within reach (cases.policy.READING_ROLES); the
    # case's own court's officers and approvers act; approvals need an approver
    ("post", "/api/v1/cases"): anyone(ACTING),
    ("get", "/api/v1/cases"): anyone(EVERYONE),
    ("get", "/api/v1/cases/export.xlsx"): anyone(EVERYONE),
    ("get", "/api/v1/cases/queue"): anyone(EVERYONE),
    ("get", "/api/v1/cases/by-number"): anyone(EVERYONE),
    ("get", "/api/v1/cases/{case_id}"): read(),
    ("get", "/api/v1/cases/{case_id}/events"): read(),
    ("post", "/api/v1/cases/{case_id}/transitions"): act(ACTING),
    ("post", "/api/v1/cases/{case_id}/facts"): act(ACTING),
    ("post", "/api/v1/cases/{case_id}/extensions"): act(APPROVER),
    ("post", "/api/v1/cases/{case_id}/pauses"): act(ACTING),
    ("post", "/api/v1/cases/{case_id}/pauses/{reason}/end"): act(ACTING),
    ("post", "/api/v1/cases/{case_id}/officer"): act(ACTING),
    ("post", "/api/v1/cases/{case_id}/notes"): act(ACTING),
    ("post", "/api/v1/cases/{case_id}/resume"): act(ACTING),
    ("post", "/api/v1/cases/{case_id}/assets"): act(ACTING),
    ("post", "/api/v1/cases/{case_id}/assets/{asset_id}/control"): act(ACTING),
    ("post", "/api/v1/cases/{case_id}/money"): act(ACTING),
    ("post", "/api/v1/cases/{case_id}/documents"): act(ACTING),
    ("get", "/api/v1/cases/{case_id}/documents/{doc_id}"): read(),
    ("post", "/api/v1/public/case-progress"): PUBLIC,
    # --- the dishonest-debtor list and restrictions
    ("post", "/api/v1/cases/{case_id}/listings"): act(ACTING),
    ("get", "/api/v1/cases/{case_id}/listings"): read(),
    ("get", "/api/v1/listings/{listing_id}"): read(),
    ("get", "/api/v1/listings/{listing_id}/versions"): read(),
    ("post", "/api/v1/listings/{listing_id}/decision"): act(APPROVER),
    ("post", "/api/v1/listings/{listing_id}/deletion"): act(ACTING),
    ("post", "/api/v1/listings/{listing_id}/revocation"): act(APPROVER),
    ("post", "/api/v1/listings/{listing_id}/extension"): act(APPROVER),
    ("post", "/api/v1/listings/{listing_id}/corrections"): act(ACTING),
    ("get", "/api/v1/listings/{listing_id}/corrections"): read(),
    ("post", "/api/v1/corrections/{correction_id}/decision"): act(APPROVER),
    ("post", "/api/v1/corrections/{correction_id}/higher-review"): act(REVIEW_DESK,
                                                                      higher=REVIEW_DESK),
    # The higher court decides: none of the listing court, an approver of the court above.
    ("post", "/api/v1/corrections/{correction_id}/higher-decision"): act(NOBODY,
                                                                        higher=APPROVER),
    ("post", "/api/v1/cases/{case_id}/restrictions"): act(ACTING),
    ("get", "/api/v1/cases/{case_id}/restrictions"): read(),
    ("post", "/api/v1/restrictions/{restriction_id}/lift"): act(ACTING),
    ("post", "/api/v1/restrictions/{restriction_id}/exceptions"): act(APPROVER),
    ("get", "/api/v1/credit/figures"): anyone(EVERYONE),
    ("get", "/api/v1/public/dishonest"): PUBLIC,
    # --- indicators: not for bailiffs (analytics.service.READ_ROLES)
    ("get", "/api/v1/indicators"): anyone(NO_BAILIFF),
    ("get", "/api/v1/indicators/trend"): anyone(NO_BAILIFF),
    ("get", "/api/v1/indicators/report.xlsx"): anyone(NO_BAILIFF),
    # --- network query and control
    ("post", "/api/v1/cases/{case_id}/inquiries"): act(ACTING),
    ("get", "/api/v1/cases/{case_id}/inquiries"): read(),
    ("get", "/api/v1/cases/{case_id}/inquiries/{inquiry_id}"): read(),
    ("post", "/api/v1/cases/{case_id}/assets/{asset_id}/orders"): act(ACTING),
    ("get", "/api/v1/cases/{case_id}/orders"): read(),
    ("post", "/api/v1/cases/{case_id}/orders/{order_id}/decision"): act(APPROVER),
    # The linked units and the network figures: the same readers as the console's units page
    # (linkage.units.READ_ROLES).
    ("get", "/api/v1/units"): anyone(NO_BAILIFF),
    ("patch", "/api/v1/units/{unit_id}"): REGION_ADMIN,
    ("post", "/api/v1/units/{unit_id}/keys"): REGION_ADMIN,
    ("delete", "/api/v1/units/{unit_id}/keys"): REGION_ADMIN,
    ("post", "/api/v1/units/{unit_id}/keys/rotate"): REGION_ADMIN,
    ("get", "/api/v1/network/figures"): anyone(NO_BAILIFF),
    ("get", "/api/v1/linkage/tasks"): MACHINE,
    ("post", "/api/v1/linkage/tasks/ack"): MACHINE,
    ("post", "/api/v1/linkage/results"): MACHINE,
    ("post", "/api/v1/linkage/events"): MACHINE,
    # --- partner agencies
    ("get", "/api/v1/partners"): REGION_ADMIN,
    ("get", "/api/v1/partners/{partner_id}"): REGION_ADMIN,
    ("patch", "/api/v1/partners/{partner_id}"): REGION_ADMIN,
    ("post", "/api/v1/partners/{partner_id}/keys"): REGION_ADMIN,
    ("post", "/api/v1/partners/{partner_id}/keys/{key_id}/revoke"): REGION_ADMIN,
    ("get", "/api/v1/screening-hits"): anyone(EVERYONE),
    ("get", "/api/v1/partner/feed"): MACHINE,
    ("post", "/api/v1/partner/feed/ack"): MACHINE,
    ("get", "/api/v1/partner/snapshot"): MACHINE,
    ("post", "/api/v1/partner/screen"): MACHINE,
    # --- the command center: every role reads (command.policy.READING_ROLES); the duty roles
    # act for their own center; leaders start roll calls; leaders and admins keep the roster
    ("get", "/api/v1/command/duty"): anyone(EVERYONE),
    ("get", "/api/v1/command/shifts"): anyone(EVERYONE),
    ("post", "/api/v1/command/shifts"): anyone(ROSTER),
    ("post", "/api/v1/command/rosters"): anyone(ROSTER),
    ("post", "/api/v1/command/handovers"): anyone(DUTY),
    ("get", "/api/v1/command/handovers/{handover_id}"): read(),
    # One handover is pending at a time: the callers acknowledge the one every test reads.
    ("post", "/api/v1/command/handovers/{handover_id}/acknowledge"): act(DUTY),
    ("post", "/api/v1/command/roll-calls"): anyone(LEADER),
    ("get", "/api/v1/command/roll-calls"): anyone(EVERYONE),
    # A roll call of Nanning's: read by both; answered by the duty staff of Qingxiu (called),
    # by nobody of Nanning (the caller, not called).
    ("get", "/api/v1/command/roll-calls/{roll_call_id}"): read(),
    ("post", "/api/v1/command/roll-calls/{roll_call_id}/answer"): act(DUTY),
    ("post", "/api/v1/command/requests"): anyone(ASKING),
    ("get", "/api/v1/command/requests"): anyone(EVERYONE),
    ("get", "/api/v1/command/requests/{request_id}"): read(),
    ("get", "/api/v1/command/requests/{request_id}/timeline"): read(),
    # Requests from Nanning held by Qingxiu: its duty staff act; Nanning (the asker) does not.
    ("post", "/api/v1/command/requests/{request_id}/documents"): act(DUTY),
    ("post", "/api/v1/command/requests/{request_id}/result"): act(DUTY),
    # A request Qingxiu asked: it withdraws it, Nanning (asked) does not.
    ("post", "/api/v1/command/requests/{request_id}/withdraw"): act(ASKING),
    ("post", "/api/v1/command/hops/{hop_id}/acknowledge"): act(DUTY),
    ("post", "/api/v1/command/hops/{hop_id}/hand-down"): act(DUTY),
    # Qingxiu was late: the escalation goes to Nanning's duty leader.
    ("post", "/api/v1/command/escalations/{escalation_id}/acknowledge"): act(NOBODY,
                                                                            higher=LEADER),
    ("get", "/api/v1/command/figures"): anyone(EVERYONE),
    # A call from Nanning's desk to Qingxiu's, ringing: Qingxiu's desk answers, declines or
    # must answer before sending candidates; Nanning's other people are no party to it.
    ("post", "/api/v1/command/calls"): anyone(DESK_ON_DUTY),
    ("get", "/api/v1/command/calls/{call_id}"): read(),
    ("post", "/api/v1/command/calls/{call_id}/answer"): act(DESK_ON_DUTY),
    ("post", "/api/v1/command/calls/{call_id}/candidates"): act(DESK_ON_DUTY),
    ("post", "/api/v1/command/calls/{call_id}/end"): act(DESK_ON_DUTY),
    # --- field work: every role reads (field.policy.READ_ROLES); tips are handled by the duty
    # desks, officers and approvers, at any court within reach; rewards by the case's court
    ("post", "/api/v1/field/tips"): anyone(TIPS),
    ("get", "/api/v1/field/tips"): anyone(EVERYONE),
    ("get", "/api/v1/field/tips/{tip_id}"): read(),
    ("post", "/api/v1/field/tips/{tip_id}/triage"): act(TIPS, higher=TIPS),
    ("post", "/api/v1/field/tips/{tip_id}/merge"): act(TIPS, higher=TIPS),
    ("post", "/api/v1/field/tips/{tip_id}/outcome"): act(TIPS, higher=TIPS),
    ("post", "/api/v1/field/tips/{tip_id}/answers"): act(TIPS, higher=TIPS),
    ("post", "/api/v1/cases/{case_id}/reward-offers"): act(ACTING),
    ("get", "/api/v1/field/reward-offers/{offer_id}"): read(),
    ("post", "/api/v1/field/reward-offers/{offer_id}/decision"): act(APPROVER),
    ("post", "/api/v1/field/reward-offers/{offer_id}/awards"): act(APPROVER),
    ("get", "/api/v1/field/resources"): anyone(EVERYONE),
    # A vehicle of Qingxiu: the duty desks within reach set its status (a bailiff only his own).
    ("patch", "/api/v1/field/resources/{resource_id}"): act(DUTY, higher=DUTY),
    ("post", "/api/v1/field/positions"): anyone(FIELD),
    ("get", "/api/v1/field/teams/nearest"): anyone(DUTY),
    ("get", "/api/v1/field/vehicles/nearest"): anyone(DUTY),
    ("post", "/api/v1/field/dispatches"): anyone(DUTY),
    ("get", "/api/v1/field/dispatches"): anyone(EVERYONE),
    ("get", "/api/v1/field/dispatches/{dispatch_id}"): read(),
    ("post", "/api/v1/field/dispatches/{dispatch_id}/status"): act(DESK_OR_TEAM, higher=DUTY),
    ("post", "/api/v1/field/dispatches/{dispatch_id}/documents"): act(DESK_OR_TEAM,
                                                                      higher=DUTY),
    ("post", "/api/v1/field/incidents"): anyone(FIELD),
    ("get", "/api/v1/field/incidents"): anyone(EVERYONE),
    ("post", "/api/v1/field/incidents/{incident_id}/acknowledge"): act(DUTY, higher=DUTY),
    ("post", "/api/v1/field/incidents/{incident_id}/resolve"): act(DUTY, higher=DUTY),
    ("get", "/api/v1/field/figures"): anyone(NO_BAILIFF),
    ("post", "/api/v1/public/tips"): PUBLIC,
    ("post", "/api/v1/public/tips/status"): PUBLIC,
    ("post", "/api/v1/public/tips/information"): PUBLIC,
    ("get", "/api/v1/public/reward-offers"): PUBLIC,
}

# The codes a refusal of a person may carry: the role, or the person's place (another center,
# not on duty, no party to the call, not the team's task ...). Anything else (``csrf_failed``,
# ``same_person``) would be a refusal for a reason the matrix does not mean to test.
REFUSALS = frozenset({
    "role_forbidden", "approver_required", "not_your_center", "not_your_hop",
    "not_your_request", "not_called", "not_on_duty", "not_callee", "not_a_party",
    "not_your_task", "not_your_resource"})


@dataclass(frozen=True)
class Page:
    """A console page (GET, no path parameter): the roles that see it (200); others 403;
    anonymous visitors are sent to the login page. ``today``/``why`` as in :class:`Access`."""

    roles: Roles
    kind: Literal["console", "public", "ops"] = "console"
    query: str = ""
    today: Roles | None = None
    why: str = ""


PUBLIC_PAGE = Page(EVERYONE, kind="public")
OPS = Page(NOBODY, kind="ops")  # process endpoints for operators and probes, no console page

PAGES: dict[str, Page] = {
    "/": Page(EVERYONE),
    "/courts": Page(EVERYONE),
    "/admin/users": Page(USER_READERS),
    "/audit": Page(AUDIT_READERS),
    "/cases/queue": Page(EVERYONE),
    "/cases": Page(EVERYONE),
    "/cases/new": Page(ACTING),  # the form registers a case, as only they may
    "/credit": Page(EVERYONE),
    "/indicators": Page(NO_BAILIFF),
    "/screen": Page(NO_BAILIFF),
    "/screen/data": Page(NO_BAILIFF),
    "/screen/stream": Page(NO_BAILIFF),
    "/network/units": Page(NO_BAILIFF),
    "/command": Page(EVERYONE),
    "/command/stream": Page(EVERYONE),
    "/command/calls/new": Page(DESK_ON_DUTY, query="?to=桂01"),
    "/field": Page(FIELD),
    "/field/map": Page(NO_BAILIFF),
    "/field/map/data": Page(NO_BAILIFF),
    "/field/map/stream": Page(NO_BAILIFF),
    "/field/tips": Page(EVERYONE),
    "/field/dispatches": Page(EVERYONE),
    "/field/dispatches/new": Page(DUTY),
    "/field/dispatches/nearest": Page(DUTY, query="?lon=108.38&lat=22.82"),
    "/login": PUBLIC_PAGE,
    "/lookup": PUBLIC_PAGE,
    "/dishonest": PUBLIC_PAGE,
    "/tips/new": PUBLIC_PAGE,
    "/tips/follow": PUBLIC_PAGE,
    "/healthz": OPS,
    "/readyz": OPS,
    "/metrics": OPS,
    "/favicon.ico": OPS,
}

# --- who asks ------------------------------------------------------------------------------------

COURTS = {"own": "桂0103", "higher": "桂01", "unrelated": "桂0204"}
Place = Literal["own", "higher", "unrelated"]


@dataclass(frozen=True)
class Caller:
    kind: Literal["anonymous", "machine", "person", "region_admin"]
    place: Place = "own"
    role: str = ""

    @property
    def username(self) -> str:
        return {"region_admin": "admin"}.get(self.kind, f"rm.{self.place}.{self.role}")

    def __str__(self) -> str:
        return self.username if self.kind in ("person", "region_admin") else self.kind


ANONYMOUS = Caller("anonymous")
MACHINE_KEY = Caller("machine")
REGION = Caller("region_admin")


def person(place: Place, role: str) -> Caller:
    return Caller("person", place, role)


def names_record(path: str) -> bool:
    return "{" in path


def allowed(access: Access, caller: Caller) -> bool:
    """Whether the table lets ``caller`` through (what the code does today, where the entry
    records a disagreement)."""
    if caller.kind == "region_admin":
        return access.kind == "region_admin"
    if caller.kind != "person" or access.kind in ("machine", "region_admin"):
        return access.kind == "public"
    if access.kind == "public":
        return True
    roles = {"own": access.today if access.today is not None else access.own,
             "higher": access.higher or NOBODY, "unrelated": access.unrelated}[caller.place]
    return caller.role in roles


def callers_of(route: Route) -> list[Caller]:
    """Everyone who asks, refusals first: no allowed call may change the record before the
    refusals have been seen."""
    access = RULES[route]
    places: tuple[Place, ...] = (
        ("own", "higher", "unrelated") if names_record(route[1]) and access.kind == "people"
        else ("own", "higher") if access.kind == "region_admin" else ("own",))
    everyone = [ANONYMOUS, MACHINE_KEY, *(person(p, r) for p in places for r in ROLES)]
    if access.kind == "region_admin":
        everyone.append(REGION)
    return sorted(everyone, key=lambda c: allowed(access, c))


# --- how each route is called --------------------------------------------------------------------

SDP = "v=0\r\ns=-\r\n"
PNG = (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x06\x00\x00"
       b"\x00\x1f\x15\xc4\x89\x00\x00\x00\rIDATx\x9cc\xf8\x0f\x00\x00\x01\x01\x00\x05\x18\xd8N"
       b"\x00\x00\x00\x00IEND\xaeB`\x82")
PDF = b"%PDF-1.4 role matrix\n"

Body = dict[str, Any] | Callable[["World", Caller, dict[str, str]], dict[str, Any]] | None
Ids = Callable[["World"], dict[str, str]]


@dataclass(frozen=True)
class Call:
    """How a route is called: its JSON body (or one made per caller), a file upload, query
    parameters, a record made for this route alone (``ids``, when its callers change it), a
    token of its own per caller (a route that revokes the token it is called with)."""

    body: Body = None
    upload: bytes | None = None
    params: Callable[[World], dict[str, str]] | None = None
    ids: Ids | None = None
    fresh_token: bool = False


def _today() -> str:
    return today().isoformat()


CALLS: dict[Route, Call] = {}


def calls(route: Route, **kw: Any) -> None:
    CALLS[route] = Call(**kw)


# Each route's own record, for the routes whose allowed callers change it.
def _case(w: World) -> dict[str, str]:
    return w.new_case()


def _case_with_asset(w: World) -> dict[str, str]:
    ids = w.new_case()
    asset = w.ok("qingxiu.officer", "post", f"/api/v1/cases/{ids['case_id']}/assets", json={
        "debtor_id": int(ids["debtor"]), "kind": "deposit", "description": "工商银行存款"})
    return {**ids, "asset_id": str(asset["id"])}


def _paused_case(w: World) -> dict[str, str]:
    ids = w.new_case()
    w.ok("qingxiu.officer", "post", f"/api/v1/cases/{ids['case_id']}/pauses",
         json={"reason": "audit", "on": _today()})
    return {**ids, "reason": "audit"}


calls(("post", "/api/v1/auth/tokens"),
      body=lambda w, c, i: {"password": PASSWORD,
                            "username": c.username if c.kind == "person" else "rm.own.officer"})
calls(("delete", "/api/v1/auth/tokens/current"), fresh_token=True)
calls(("post", "/api/v1/users"), body=lambda w, c, i: {
    "username": f"rm.made.{next(w.serial)}", "display_name": "新用户", "court_code": "桂0103",
    "password": PASSWORD, "roles": ["officer"]})
calls(("patch", "/api/v1/users/{user_id}"), body={"display_name": "改名"})
calls(("post", "/api/v1/cases"), body=lambda w, c, i: case_payload(filed_days_ago=30))
calls(("get", "/api/v1/cases/by-number"), params=lambda w: {"number": w.ids["case_number"]})
calls(("post", "/api/v1/cases/{case_id}/transitions"), ids=_case,
      body={"action": "advance", "to": "notice_served"})
calls(("post", "/api/v1/cases/{case_id}/facts"), ids=_case,
      body=lambda w, c, i: {"kind": "debtor_search", "on": _today()})
calls(("post", "/api/v1/cases/{case_id}/extensions"), ids=_case,
      body={"months": 3, "reason": "案情复杂"})
calls(("post", "/api/v1/cases/{case_id}/pauses"), ids=_case,
      body=lambda w, c, i: {"reason": "audit", "on": _today()})
calls(("post", "/api/v1/cases/{case_id}/pauses/{reason}/end"), ids=_paused_case)
calls(("post", "/api/v1/cases/{case_id}/officer"), ids=_case,
      body={"officer_username": "qingxiu.officer"})
calls(("post", "/api/v1/cases/{case_id}/notes"), ids=_case, body={"text": "约谈申请人"})
calls(("post", "/api/v1/cases/{case_id}/resume"), ids=_case, body={"reason": "发现财产"})
calls(("post", "/api/v1/cases/{case_id}/assets"), ids=_case, body=lambda w, c, i: {
    "debtor_id": int(i["debtor"]), "kind": "deposit", "description": "存款"})
calls(("post", "/api/v1/cases/{case_id}/assets/{asset_id}/control"), ids=_case_with_asset,
      body=lambda w, c, i: {"action": "freeze", "on": _today(), "amount_fen": 100})
calls(("post", "/api/v1/cases/{case_id}/money"), ids=_case,
      body=lambda w, c, i: {"kind": "recovered", "amount_fen": 1, "on": _today()})
calls(("post", "/api/v1/cases/{case_id}/documents"), ids=_case, upload=PDF)
calls(("post", "/api/v1/public/case-progress"),
      body=lambda w, c, i: {"case_number": w.ids["case_number"],
                            "query_code": query_code(w.ids["case_number"])})
calls(("post", "/api/v1/cases/{case_id}/listings"), ids=_case, body=lambda w, c, i: {
    "party_id": int(i["debtor"]), "ground": 2, "conduct": "拒不申报财产"})
calls(("post", "/api/v1/listings/{listing_id}/decision"),
      ids=lambda w: w.new_listing(approved=False), body={"approve": False, "note": "不予纳入"})
calls(("post", "/api/v1/listings/{listing_id}/deletion"), ids=lambda w: w.new_listing(),
      body={"ground": "active_performance"})
calls(("post", "/api/v1/listings/{listing_id}/revocation"), ids=lambda w: w.new_listing(),
      body={"reason": "纳入错误"})
calls(("post", "/api/v1/listings/{listing_id}/extension"), ids=lambda w: w.new_listing(),
      body={"years": 1, "reason": "多次违反"})
calls(("post", "/api/v1/listings/{listing_id}/corrections"), ids=lambda w: w.new_listing(),
      body={"filed_by_name": "李某", "grounds": "已履行"})
calls(("post", "/api/v1/corrections/{correction_id}/decision"),
      ids=lambda w: w.new_correction("pending"), body={"upheld": False, "note": "理由不成立"})
calls(("post", "/api/v1/corrections/{correction_id}/higher-review"),
      ids=lambda w: w.new_correction("rejected"), body={})
calls(("post", "/api/v1/corrections/{correction_id}/higher-decision"),
      ids=lambda w: w.new_correction("higher_pending"),
      body={"upheld": False, "note": "理由不成立"})
calls(("post", "/api/v1/cases/{case_id}/restrictions"), ids=_case, body=lambda w, c, i: {
    "party_id": int(i["debtor"]), "kind": "exit"})
calls(("post", "/api/v1/restrictions/{restriction_id}/lift"),
      ids=lambda w: w.new_restriction(), body={"reason": "security"})
calls(("post", "/api/v1/restrictions/{restriction_id}/exceptions"),
      ids=lambda w: w.new_restriction(), body=lambda w, c, i: {
          "person_id": int(i["debtor"]), "activities": ["exit"], "reason": "出境就医"})
calls(("get", "/api/v1/public/dishonest"), params=lambda w: {"name": "刘建国"})
calls(("post", "/api/v1/cases/{case_id}/inquiries"), ids=_case, body=PURPOSE)
calls(("post", "/api/v1/cases/{case_id}/assets/{asset_id}/orders"), ids=_case_with_asset,
      body={"kind": "freeze", "amount_fen": 100, "document_number": "（2026）桂0103执1号之一",
            **PURPOSE})
calls(("post", "/api/v1/cases/{case_id}/orders/{order_id}/decision"),
      body={"approve": False, "note": "改由他人申请"})
calls(("patch", "/api/v1/units/{unit_id}"), body={"enabled": True})
calls(("patch", "/api/v1/partners/{partner_id}"), body={"enabled": True})
calls(("post", "/api/v1/linkage/tasks/ack"), body={"task_ids": ["x"]})
calls(("post", "/api/v1/linkage/results"), body={"results": []})
calls(("post", "/api/v1/linkage/events"), body={"events": []})
calls(("post", "/api/v1/partner/feed/ack"), body={"cursor": 0})
calls(("post", "/api/v1/partner/screen"),
      body={"activities": ["flight"], "people": [{"ref": "1", "name": "刘建国"}]})
calls(("post", "/api/v1/command/shifts"), body=lambda w, c, i: w.shift_body())
calls(("post", "/api/v1/command/rosters"), body=lambda w, c, i: {
    "court_code": "桂0103", "first_day": (today() + timedelta(days=400 + next(w.serial)))
    .isoformat(), "days": 1, "teams": [{"name": "一组", "members": [
        {"role": "leader", "name": "值班领导 某"}]}]})
calls(("post", "/api/v1/command/handovers"), body={"items": ["核查线索"]})
calls(("post", "/api/v1/command/roll-calls"), body={})
calls(("post", "/api/v1/command/roll-calls/{roll_call_id}/answer"),
      ids=lambda w: w.new_roll_call(), body={"status": "nothing"})
calls(("post", "/api/v1/command/requests"), body=lambda w, c, i: w.request_body("桂01"))
calls(("post", "/api/v1/command/requests/{request_id}/documents"),
      ids=lambda w: w.request_to_qingxiu(acknowledged=True), upload=PDF)
calls(("post", "/api/v1/command/requests/{request_id}/result"),
      ids=lambda w: w.request_to_qingxiu(acknowledged=True),
      body={"outcome": "done", "summary": "已办结"})
calls(("post", "/api/v1/command/requests/{request_id}/withdraw"),
      ids=lambda w: w.request_from_qingxiu(), body={"reason": "申请人撤回"})
calls(("post", "/api/v1/command/hops/{hop_id}/acknowledge"),
      ids=lambda w: w.request_to_qingxiu(acknowledged=False))
calls(("post", "/api/v1/command/hops/{hop_id}/hand-down"),
      ids=lambda w: w.request_to_qingxiu(acknowledged=True))
calls(("post", "/api/v1/command/calls"), body={"to_court_code": "桂01", "sdp": SDP})
calls(("post", "/api/v1/command/calls/{call_id}/answer"), ids=lambda w: w.call_to_qingxiu(),
      body={"sdp": SDP})
calls(("post", "/api/v1/command/calls/{call_id}/candidates"),
      ids=lambda w: w.call_to_qingxiu(),
      body={"candidates": [{"candidate": "candidate:1 1 udp 1 192.0.2.2 5000 typ host"}]})
calls(("post", "/api/v1/command/calls/{call_id}/end"), ids=lambda w: w.call_to_qingxiu(),
      body={})
calls(("post", "/api/v1/field/tips"), body={"content": "被执行人的车停在酒店"})
calls(("post", "/api/v1/field/tips/{tip_id}/triage"), ids=lambda w: w.new_tip(),
      body={"urgent": True})
calls(("post", "/api/v1/field/tips/{tip_id}/merge"), ids=lambda w: w.new_tip(),
      body=lambda w, c, i: {"into_id": int(w.ids["tip_id"])})
calls(("post", "/api/v1/field/tips/{tip_id}/outcome"), ids=lambda w: w.new_tip(),
      body={"outcome": "unfounded", "note": "查无此车"})
calls(("post", "/api/v1/field/tips/{tip_id}/answers"), ids=lambda w: w.new_tip(),
      body={"text": "已核查"})
calls(("post", "/api/v1/cases/{case_id}/reward-offers"), ids=_case, body=lambda w, c, i: {
    "applicant_party_id": int(i["applicant"]), "amount_fen": 100_000})
calls(("post", "/api/v1/field/reward-offers/{offer_id}/decision"),
      ids=lambda w: w.new_offer(), body={"approve": True})
calls(("post", "/api/v1/field/reward-offers/{offer_id}/awards"),
      ids=lambda w: w.new_offer(), body=lambda w, c, i: {"tip_id": int(w.ids["tip_id"])})
calls(("patch", "/api/v1/field/resources/{resource_id}"), body={"status": "available"})
calls(("post", "/api/v1/field/positions"), body=lambda w, c, i: {"reports": [{
    "resource": w.ids["device"], "at": datetime.now(UTC).isoformat(),
    "lon": w.lon, "lat": w.lat}]})
calls(("get", "/api/v1/field/teams/nearest"),
      params=lambda w: {"lon": str(w.lon), "lat": str(w.lat)})
calls(("get", "/api/v1/field/vehicles/nearest"),
      params=lambda w: {"lon": str(w.lon), "lat": str(w.lat)})
calls(("post", "/api/v1/field/dispatches"), body=lambda w, c, i: {
    "task": "核查线索", "place": "青秀区某酒店", "lon": w.lon, "lat": w.lat})
calls(("post", "/api/v1/field/dispatches/{dispatch_id}/status"),
      ids=lambda w: w.new_dispatch(), body={"to": "en_route"})
calls(("post", "/api/v1/field/dispatches/{dispatch_id}/documents"),
      ids=lambda w: w.new_dispatch(), upload=PNG)
calls(("post", "/api/v1/field/incidents"), body={})
calls(("post", "/api/v1/field/incidents/{incident_id}/acknowledge"),
      ids=lambda w: w.new_incident())
calls(("post", "/api/v1/field/incidents/{incident_id}/resolve"),
      ids=lambda w: w.new_incident(), body={})
calls(("post", "/api/v1/public/tips"), body={"content": "被执行人在青秀区某小区"})
calls(("post", "/api/v1/public/tips/status"), body=lambda w, c, i: {"code": w.ids["follow_code"]})
calls(("post", "/api/v1/public/tips/information"),
      body=lambda w, c, i: {"code": w.ids["follow_code"], "text": "补充：车牌桂A"})


# --- the world -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Seen:
    status: int
    body: Any
    text: str

    def __str__(self) -> str:
        return f"{self.status} {self.text[:300]}"


@dataclass
class World:
    client: TestClient
    ids: dict[str, str] = field(default_factory=dict)
    machine_key: str = ""
    lon: float = 108.38
    lat: float = 22.82
    serial: Iterator[int] = field(default_factory=lambda: itertools.count(1))
    _tokens: dict[str, dict[str, str]] = field(default_factory=dict)
    _fresh: dict[Route, dict[str, str]] = field(default_factory=dict)
    _seen: dict[Route, dict[Caller, Seen]] = field(default_factory=dict)
    _sessions: dict[str, str] = field(default_factory=dict)

    # -- plumbing

    def token(self, username: str, *, fresh: bool = False) -> dict[str, str]:
        if fresh or username not in self._tokens:
            resp = self.client.post("/api/v1/auth/tokens",
                                    json={"username": username, "password": PASSWORD})
            assert resp.status_code == 201, resp.text
            headers = {"Authorization": f"Bearer {resp.json()['token']}"}
            if fresh:
                return headers
            self._tokens[username] = headers
        return self._tokens[username]

    def ok(self, username: str, method: str, url: str, **kw: Any) -> dict[str, Any]:
        resp = self.client.request(method.upper(), url, headers=self.token(username), **kw)
        assert resp.status_code in (200, 201), f"{method} {url} as {username}: {resp.text}"
        result: dict[str, Any] = resp.json()
        return result

    def session_cookie(self, username: str) -> str:
        """A console session of ``username`` (logged in through the form)."""
        if username not in self._sessions:
            self.client.cookies.clear()
            login(self.client, username)
            value = self.client.cookies.get(SESSION_COOKIE)
            assert value, "no session cookie after logging in"
            self._sessions[username] = value
            self.client.cookies.clear()
        return self._sessions[username]

    # -- records made for one route

    def fresh_ids(self, route: Route) -> dict[str, str]:
        if route not in self._fresh:
            made = CALLS[route].ids
            assert made is not None
            self._fresh[route] = made(self)
        return self._fresh[route]

    def new_case(self) -> dict[str, str]:
        case = self.ok("qingxiu.officer", "post", "/api/v1/cases",
                       json=case_payload(filed_days_ago=30))
        return {"case_id": str(case["id"]), "case_number": case["case_number"],
                "debtor": str(next(p["id"] for p in case["parties"] if p["role"] == "debtor")),
                "applicant": str(next(p["id"] for p in case["parties"]
                                      if p["role"] == "applicant"))}

    def new_listing(self, *, approved: bool = True) -> dict[str, str]:
        """A listing of Qingxiu proposed by its officer (and approved by its approver: active)."""
        ids = self.new_case()
        listing = self.ok("qingxiu.officer", "post", f"/api/v1/cases/{ids['case_id']}/listings",
                          json={"party_id": int(ids["debtor"]), "ground": 2,
                                "conduct": "拒不申报财产"})
        if approved:
            listing = self.ok("qingxiu.approver", "post",
                              f"/api/v1/listings/{listing['id']}/decision",
                              json={"approve": True})
            assert listing["status"] == "active", listing
        return {**ids, "listing_id": str(listing["id"])}

    def new_correction(self, status: str) -> dict[str, str]:
        ids = self.new_listing()
        corr = self.ok("qingxiu.officer", "post",
                       f"/api/v1/listings/{ids['listing_id']}/corrections",
                       json={"filed_by_name": "李某", "grounds": "已提供担保"})
        if status in ("rejected", "higher_pending"):
            corr = self.ok("qingxiu.approver", "post",
                           f"/api/v1/corrections/{corr['id']}/decision",
                           json={"upheld": False, "note": "担保不足额"})
        if status == "higher_pending":
            corr = self.ok("qingxiu.officer", "post",
                           f"/api/v1/corrections/{corr['id']}/higher-review", json={})
        assert corr["status"] == status, corr
        return {**ids, "correction_id": str(corr["id"])}

    def new_restriction(self) -> dict[str, str]:
        ids = self.new_case()
        self.ok("qingxiu.officer", "post", f"/api/v1/cases/{ids['case_id']}/transitions",
                json={"action": "advance", "to": "notice_served"})
        row = self.ok("qingxiu.officer", "post",
                      f"/api/v1/cases/{ids['case_id']}/restrictions",
                      json={"party_id": int(ids["debtor"]), "kind": "exit"})
        return {**ids, "restriction_id": str(row["id"])}

    def request_body(self, to: str, place: str = "桂0102") -> dict[str, Any]:
        return {"kind": "verify_lead", "place_court_code": place, "place": "某小区",
                "subject": "核查线索", "details": "核查被执行人住址", "to_court_code": to}

    def request_from_qingxiu(self) -> dict[str, str]:
        """A request Qingxiu's desk asks of Nanning."""
        req = self.ok("rm.own.desk", "post", "/api/v1/command/requests",
                      json=self.request_body("桂01"))
        return {"request_id": str(req["id"]), "hop_id": str(req["hops"][0]["id"])}

    def request_to_qingxiu(self, *, acknowledged: bool) -> dict[str, str]:
        """A request Nanning's desk sends down to Qingxiu (the place is in its area),
        acknowledged there by its desk when ``acknowledged``."""
        req = self.ok("rm.higher.desk", "post", "/api/v1/command/requests",
                      json=self.request_body("桂0103", place="桂0103"))
        hop = req["hops"][-1]
        assert hop["to_center"]["court_code"] == "桂0103", req
        if acknowledged:
            self.ok("rm.own.desk", "post", f"/api/v1/command/hops/{hop['id']}/acknowledge")
        return {"request_id": str(req["id"]), "hop_id": str(hop["id"])}

    def new_handover(self) -> dict[str, str]:
        row = self.ok("rm.own.desk", "post", "/api/v1/command/handovers",
                      json={"items": ["核查线索"]})
        return {"handover_id": str(row["id"])}

    def new_roll_call(self) -> dict[str, str]:
        """Nanning's leader calls its districts, Qingxiu among them."""
        row = self.ok("rm.higher.desk", "post", "/api/v1/command/roll-calls", json={})
        return {"roll_call_id": str(row["id"])}

    def call_to_qingxiu(self) -> dict[str, str]:
        """Nanning's desk (on duty) calls Qingxiu's; it rings."""
        row = self.ok("rm.higher.desk", "post", "/api/v1/command/calls",
                      json={"to_court_code": "桂0103", "sdp": SDP})
        return {"call_id": str(row["id"])}

    def shift_body(self) -> dict[str, Any]:
        """A shift of Qingxiu's far in the future (shifts of one center may not overlap)."""
        start = datetime.now(UTC).replace(microsecond=0) + timedelta(days=300 + next(
            self.serial))
        return {"court_code": "桂0103", "starts_at": start.isoformat(),
                "ends_at": (start + timedelta(hours=12)).isoformat(),
                "members": [{"role": "leader", "name": "值班领导 某"}]}

    def new_tip(self) -> dict[str, str]:
        tip = self.ok("rm.own.desk", "post", "/api/v1/field/tips",
                      json={"content": "被执行人的车停在酒店"})
        return {"tip_id": str(tip["id"])}

    def new_offer(self) -> dict[str, str]:
        ids = self.new_case()
        offer = self.ok("qingxiu.officer", "post",
                        f"/api/v1/cases/{ids['case_id']}/reward-offers",
                        json={"applicant_party_id": int(ids["applicant"]),
                              "amount_fen": 100_000})
        return {**ids, "offer_id": str(offer["id"])}

    def new_dispatch(self) -> dict[str, str]:
        """Qingxiu's team (its bailiff among the members) sent on a case of Qingxiu's."""
        ids = self.new_case()
        team_id = int(self.ids["team_id"])
        with transaction() as session:  # free again after the previous test dispatch
            session.execute(update(FieldTeam).where(FieldTeam.id == team_id)
                            .values(status=ResourceStatus.AVAILABLE))
        row = self.ok("rm.own.desk", "post", "/api/v1/field/dispatches", json={
            "task": "扣押车辆", "place": "青秀区某酒店", "lon": self.lon, "lat": self.lat,
            "team_id": team_id, "case_id": int(ids["case_id"])})
        return {**ids, "dispatch_id": str(row["id"])}

    def new_incident(self) -> dict[str, str]:
        row = self.ok("rm.own.desk", "post", "/api/v1/field/incidents", json={})
        return {"incident_id": str(row["id"])}

    # -- asking

    def headers_of(self, caller: Caller, *, fresh: bool = False) -> dict[str, str]:
        if caller.kind == "anonymous":
            return {}
        if caller.kind == "machine":
            return {"Authorization": f"Bearer {self.machine_key}"}
        return self.token(caller.username, fresh=fresh)

    def send(self, route: Route, caller: Caller) -> Seen:
        method, path = route
        call = CALLS.get(route, Call())
        ids = dict(self.ids)
        if call.ids is not None:
            # A caller who may act gets a record of his own: what an earlier one did to it
            # (closed, answered, withdrawn) cannot hide a refusal checked after the record's
            # state. The refused share one, which they cannot change.
            ids.update(call.ids(self) if allowed(RULES[route], caller)
                       else self.fresh_ids(route))
        url = path
        for key, value in ids.items():
            url = url.replace("{" + key + "}", value)
        assert "{" not in url, f"no record for {url}"
        headers = self.headers_of(caller, fresh=call.fresh_token)
        if RULES[route].kind == "public":
            with transaction() as session:  # the public routes' per-address budgets
                session.execute(delete(RateBucket))
        params = call.params(self) if call.params else None
        if call.upload is not None:
            resp = self.client.request(method.upper(), url, headers=headers, files={
                "file": ("evidence.png" if call.upload == PNG else "a.pdf", call.upload,
                         "image/png" if call.upload == PNG else "application/pdf")})
        else:
            body = call.body(self, caller, ids) if callable(call.body) else call.body
            resp = self.client.request(method.upper(), url, headers=headers, json=body,
                                       params=params)
        try:
            parsed = resp.json()
        except ValueError:
            parsed = None
        return Seen(resp.status_code, parsed, resp.text)

    def seen(self, route: Route) -> dict[Caller, Seen]:
        """Every caller's answer on ``route``, asked once, refusals first."""
        if route not in self._seen:
            self._seen[route] = {c: self.send(route, c) for c in callers_of(route)}
        return self._seen[route]


def build(client: TestClient) -> World:
    w = World(client)
    for place, code in COURTS.items():
        for role in ROLES:
            w.ok("admin", "post", "/api/v1/users", json={
                "username": f"rm.{place}.{role}", "display_name": f"{place} {role}",
                "court_code": code, "password": PASSWORD, "roles": [role]})
    for name, code, roles in (("rm.own.desk", "桂0103", ["duty_officer", "duty_leader"]),
                              ("rm.higher.desk", "桂01", ["duty_officer", "duty_leader"]),
                              ("rm.own.target", "桂0103", ["officer"])):
        w.ok("admin", "post", "/api/v1/users", json={
            "username": name, "display_name": name, "court_code": code, "password": PASSWORD,
            "roles": roles})
    target = w.ok("rm.own.admin", "get", "/api/v1/users", params={"q": "rm.own.target"})
    w.ids["user_id"] = str(target["items"][0]["id"])
    w.ids["code"] = "桂0103"

    # Field resources after the users: every bailiff joins his court's team.
    with transaction() as session:
        resources.seed_field(session)
        court = session.scalar(select(Court).where(Court.code == "桂0103"))
        assert court is not None and court.lon is not None and court.lat is not None
        w.lon, w.lat = court.lon, court.lat
        team = session.scalar(select(FieldTeam).where(FieldTeam.court_id == court.id))
        assert team is not None
        w.ids["team_id"] = str(team.id)
        w.ids["device"] = f"D-{court.code}-1"
        vehicle = session.scalar(select(FieldResource.id).where(
            FieldResource.court_id == court.id, FieldResource.kind == ResourceKind.VEHICLE))
        w.ids["resource_id"] = str(vehicle)

    # Machine clients: the partner agencies (one key for the matrix, one to revoke) and the
    # linked units with their keys.
    with transaction() as session:
        partner_registry.sync_partners(session)
        partner = session.scalars(select(Partner).order_by(Partner.id)).first()
        assert partner is not None
        key_id, secret, _ = identity.issue_api_key(session, ClientKind.PARTNER, partner.code,
                                                   "matrix", [], SYSTEM)
        spare, _, _ = identity.issue_api_key(session, ClientKind.PARTNER, partner.code,
                                             "to revoke", [], SYSTEM)
        w.machine_key = f"{key_id}.{secret}"
        w.ids.update(partner_id=str(partner.id), key_id=spare)
    issued = onboard()
    with transaction() as session:
        unit = session.scalar(select(LinkageUnit.id).where(LinkageUnit.code != "bank-icbc")
                              .order_by(LinkageUnit.id))
        w.ids["unit_id"] = str(unit)

    # Duty now: Qingxiu's leader and duty officer of the matrix, Nanning's desk.
    on_duty(client, w.token, "桂0103", ("leader", "rm.own.duty_leader"),
            ("officer", "rm.own.duty_officer"))
    on_duty(client, w.token, "桂01", ("leader", "rm.higher.desk"))

    # A deduction awaiting an approver: the bank finds an account, the officer freezes it
    # and asks for a deduction (before any other inquiry: the bank answers all it is sent).
    bank = sdk(client, issued["bank-icbc"])
    ids = w.new_case()
    inquiry = w.ok("qingxiu.officer", "post", f"/api/v1/cases/{ids['case_id']}/inquiries",
                   json={**PURPOSE, "kinds": ["deposits"]})
    bank.post_results([deposits_result(t) for t in bank.fetch_tasks(50).tasks])
    [asset] = w.ok("qingxiu.officer", "get", f"/api/v1/cases/{ids['case_id']}")["assets"]
    order = {"document_number": "（2026）桂0103执1号之一", **PURPOSE}
    w.ok("qingxiu.officer", "post",
         f"/api/v1/cases/{ids['case_id']}/assets/{asset['id']}/orders",
         json={**order, "kind": "freeze", "amount_fen": 2_000_000})
    [freeze] = bank.fetch_tasks(50).tasks
    bank.post_results([outcome(freeze, 2_000_000, expires=today() + timedelta(days=365))])
    deduct = w.ok("qingxiu.officer", "post",
                  f"/api/v1/cases/{ids['case_id']}/assets/{asset['id']}/orders",
                  json={**order, "kind": "deduct", "amount_fen": 1_000_000})
    assert deduct["status"] == "awaiting_approval", deduct

    # The shared case of Qingxiu (read by the routes that only read): a document, an asset,
    # the inquiry and the deduction above, a listing, a restriction, a reward offer.
    w.ids.update(ids, inquiry_id=str(inquiry["id"]), order_id=str(deduct["id"]),
                 asset_id=str(asset["id"]))
    case_url = f"/api/v1/cases/{ids['case_id']}"
    doc = w.ok("qingxiu.officer", "post", f"{case_url}/documents",
               files={"file": ("a.pdf", PDF, "application/pdf")})
    w.ids["doc_id"] = str(doc["id"])
    w.ids["listing_id"] = w.new_listing(approved=False)["listing_id"]
    w.ids["restriction_id"] = w.new_restriction()["restriction_id"]
    w.ids["offer_id"] = w.new_offer()["offer_id"]

    # Command: first a request left unacknowledged past its time, escalated by the sweep to
    # Nanning's duty leader (before the other requests exist: the sweep takes every late one).
    late = w.request_to_qingxiu(acknowledged=False)
    with transaction() as session:
        escalation.sweep(session, now=datetime.now(UTC) + timedelta(days=60))
    detail = w.ok("rm.higher.desk", "get", f"/api/v1/command/requests/{late['request_id']}")
    [esc] = detail["escalations"]
    w.ids["escalation_id"] = str(esc["id"])
    w.ids.update(w.request_from_qingxiu())
    w.ids.update(w.new_handover())
    w.ids.update(w.new_roll_call())
    w.ids.update(w.call_to_qingxiu())

    # Field: a tip taken by Qingxiu's desk, one from the public (its follow-up code), a
    # dispatch of Qingxiu's team.
    w.ids.update(w.new_tip())
    public = client.post("/api/v1/public/tips", json={"content": "被执行人在青秀区某小区"})
    assert public.status_code == 201, public.text
    w.ids["follow_code"] = public.json()["follow_code"]
    w.ids["dispatch_id"] = w.new_dispatch()["dispatch_id"]
    return w


@pytest.fixture(autouse=True)
def _clean_state() -> None:
    """Replaces the per-test emptying of tests/conftest.py: this module's tests read the one
    world built for them (``world``), which empties the database after the last one."""


@pytest.fixture(scope="module")
def world(test_db: object, seeded_users: dict[str, tuple[int, str]]) -> Iterator[World]:
    try:
        with TestClient(create_app(start_worker=False)) as client:
            yield build(client)
    finally:
        empty_database(seeded_users)


# --- checks --------------------------------------------------------------------------------------


def _error_code(seen: Seen) -> str:
    """The shared error body (``{"error": {"code", "message", "field"?, "details"?}}``)."""
    assert isinstance(seen.body, dict) and set(seen.body) == {"error"}, str(seen)
    error = seen.body["error"]
    assert isinstance(error, dict), str(seen)
    assert set(error) <= {"code", "message", "field", "details"}, str(seen)
    assert isinstance(error.get("code"), str) and error["code"], str(seen)
    assert isinstance(error.get("message"), str) and error["message"], str(seen)
    code: str = error["code"]
    return code


def assert_allowed(seen: Seen, what: str, *, public: bool = False) -> None:
    """Past authorisation: no 401/403 (nor 404: the records are real), no 5xx."""
    refused = (401, 403) if public else (401, 403, 404)
    assert seen.status not in refused and seen.status < 500, f"{what} should pass: {seen}"


def assert_refused(seen: Seen, what: str) -> None:
    assert seen.status == 403, f"{what} should be refused with 403: {seen}"
    code = _error_code(seen)
    assert code in REFUSALS, f"{what}: refused for another reason: {seen}"


def _route_id(route: Route) -> str:
    return f"{route[0].upper()} {route[1]}"


ALL_ROUTES = sorted(RULES)


def _openapi_routes() -> set[Route]:
    spec = create_app(start_worker=False).openapi()
    return {(method, path) for path, item in spec["paths"].items() for method in item
            if path.startswith("/api/")}


def test_every_route_has_a_rule() -> None:
    """A route added to the API without an entry in RULES fails here."""
    routes = _openapi_routes()
    assert len(routes) > 100, "the enumeration itself is broken"
    assert sorted(routes - set(RULES)) == [], "routes without a rule"
    assert sorted(set(RULES) - routes) == [], "rules for routes that do not exist"
    assert set(CALLS) <= set(RULES)


def test_rules_are_well_formed() -> None:
    assert set(ROLES) == {r.value for r in Role}, "a role the matrix does not ask as"
    for (method, path), access in RULES.items():
        if access.kind == "people":
            # A route naming a record says what the court above may do with it.
            assert (access.higher is not None) == names_record(path), (method, path)
        assert access.today is None or access.today != access.own, (method, path)
        assert (access.today is None) == (not access.why), (method, path)
        assert access.own <= EVERYONE and (access.higher or NOBODY) <= EVERYONE


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("route", ALL_ROUTES, ids=_route_id)
def test_route_by_role(world: World, route: Route, role: str) -> None:
    """One role on one route: at its own court, at the court above and at an unrelated one."""
    access = RULES[route]
    seen = world.seen(route)
    mine = seen[person("own", role)]
    what = f"{_route_id(route)} as {role} of Qingxiu"
    if access.today is not None:
        what += " (the entry's today= says what the code did; fixed?)"
    if access.kind == "public":
        assert_allowed(mine, what, public=True)
    elif access.kind == "machine":
        # People's tokens are no key of a unit or a partner.
        assert mine.status in (401, 403), f"{what}: {mine}"
        code = _error_code(mine)
        assert mine.status == 401 or code == "machine_only", f"{what}: {mine}"
    elif access.kind == "region_admin":
        # No administrator below the high court manages them: Qingxiu's nor Nanning's.
        assert_refused(mine, what)
        assert_refused(seen[person("higher", role)], f"{_route_id(route)} as {role} of Nanning")
    elif allowed(access, person("own", role)):
        assert_allowed(mine, what)
    else:
        assert_refused(mine, what)
    if access.kind != "people" or not names_record(route[1]):
        return
    higher = seen[person("higher", role)]
    what = f"{_route_id(route)} as {role} of Nanning"
    if allowed(access, person("higher", role)):
        assert_allowed(higher, what)
    else:
        assert_refused(higher, what)  # within reach: a refusal, never a 404
    unrelated = seen[person("unrelated", role)]
    what = f"{_route_id(route)} as {role} of Liunan"
    if allowed(access, person("unrelated", role)):
        assert_allowed(unrelated, what)
    elif unrelated.status == 403:
        # Refused for the role alone (it may not do this anywhere): that leaks nothing.
        assert role not in access.own | (access.higher or NOBODY), f"{what}: {unrelated}"
        assert_refused(unrelated, what)
    else:
        assert unrelated.status == 404, f"{what} should not find the record: {unrelated}"
        _error_code(unrelated)


@pytest.mark.parametrize("route", ALL_ROUTES, ids=_route_id)
def test_route_anonymous(world: World, route: Route) -> None:
    seen = world.seen(route)[ANONYMOUS]
    what = f"{_route_id(route)} anonymously"
    if RULES[route].kind == "public":
        assert_allowed(seen, what, public=True)
    else:
        assert seen.status == 401, f"{what}: {seen}"
        _error_code(seen)


PEOPLE_ROUTES = [r for r in ALL_ROUTES if RULES[r].kind in ("people", "region_admin")]


@pytest.mark.parametrize("route", PEOPLE_ROUTES, ids=_route_id)
def test_machine_keys_are_refused(world: World, route: Route) -> None:
    """A partner agency's API key is no person's token."""
    seen = world.seen(route)[MACHINE_KEY]
    assert seen.status == 403 and _error_code(seen) == "machine_forbidden", \
        f"{_route_id(route)} with a machine key: {seen}"


@pytest.mark.parametrize("route", [r for r in ALL_ROUTES if RULES[r].kind == "machine"],
                         ids=_route_id)
def test_machine_routes_know_their_clients(world: World, route: Route) -> None:
    """The control for the refusals of people above: a partner's key opens the partner routes;
    the units' routes take requests signed with a unit's key only (the world's bank speaks
    to them through the SDK), never a bearer key."""
    seen = world.seen(route)[MACHINE_KEY]
    if route[1].startswith("/api/v1/partner/"):
        assert seen.status < 400, f"{_route_id(route)} with a partner's key: {seen}"
    else:
        assert seen.status == 401, f"{_route_id(route)} with a partner's key: {seen}"
        _error_code(seen)


@pytest.mark.parametrize("route", [r for r in ALL_ROUTES if RULES[r].kind == "region_admin"],
                         ids=_route_id)
def test_region_admin_manages_units_and_partners(world: World, route: Route) -> None:
    assert_allowed(world.seen(route)[REGION], f"{_route_id(route)} as the region's admin")


# --- the console ---------------------------------------------------------------------------------


def _console_pages() -> set[str]:
    """GET pages outside the API without a path parameter."""
    app = create_app(start_worker=False)

    def walk(routes: list[Any]) -> Iterator[APIRoute]:
        for r in routes:
            inner = getattr(r, "original_router", None)
            if inner is not None:
                yield from walk(inner.routes)
            elif isinstance(r, APIRoute):
                yield r

    return {r.path for r in walk(list(app.routes))
            if "GET" in (r.methods or ()) and "{" not in r.path
            and not r.path.startswith(("/api/", "/docs", "/redoc", "/openapi"))}


def test_every_page_has_a_rule() -> None:
    pages = _console_pages()
    assert len(pages) > 20, "the enumeration itself is broken"
    assert sorted(pages - set(PAGES)) == [], "pages without a rule"
    assert sorted(set(PAGES) - pages) == [], "rules for pages that do not exist"
    for path, page in PAGES.items():
        assert page.today is None or page.today != page.roles, path
        assert (page.today is None) == (not page.why), path


CONSOLE = sorted(p for p, page in PAGES.items() if page.kind == "console")
PUBLIC_PAGES = sorted(p for p, page in PAGES.items() if page.kind == "public")


@pytest.fixture
def quick_streams(monkeypatch: pytest.MonkeyPatch) -> None:
    """Live streams end at once (after their first message) instead of after minutes."""
    for module in (analytics_views, command_views, field_views):
        monkeypatch.setattr(module, "STREAM_SECONDS", 0)


@dataclass(frozen=True)
class Answer:
    status: int
    location: str
    text: str


def _page(world: World, path: str, cookie: str | None) -> Answer:
    headers = {"Cookie": f"{SESSION_COOKIE}={cookie}"} if cookie else {}
    world.client.cookies.clear()  # the session named here, or none
    resp = world.client.get(path + PAGES[path].query, headers=headers, follow_redirects=False)
    return Answer(resp.status_code, resp.headers.get("location", ""), resp.text[:300])


@pytest.mark.usefixtures("quick_streams")
@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("path", CONSOLE)
def test_page_by_role(world: World, path: str, role: str) -> None:
    page = PAGES[path]
    resp = _page(world, path, world.session_cookie(f"rm.own.{role}"))
    roles = page.today if page.today is not None else page.roles
    hint = "" if page.today is None else " (the entry's today= says what the code did; fixed?)"
    if role in roles:
        assert resp.status == 200, f"{path} as {role}: {resp.status}{hint} {resp.text}"
    else:
        assert resp.status == 403, f"{path} as {role}: {resp.status}{hint} {resp.text}"


@pytest.mark.usefixtures("quick_streams")
@pytest.mark.parametrize("path", CONSOLE)
def test_page_anonymous_goes_to_login(world: World, path: str) -> None:
    resp = _page(world, path, None)
    assert resp.status == 303, f"{path}: {resp.status}"
    assert resp.location.startswith("/login?next="), resp.location


@pytest.mark.parametrize("path", PUBLIC_PAGES)
def test_public_page(world: World, path: str) -> None:
    with transaction() as session:
        session.execute(delete(RateBucket))
    assert _page(world, path, None).status == 200, path
    assert _page(world, path, world.session_cookie("rm.own.bailiff")).status in (200, 303)
