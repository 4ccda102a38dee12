"""Templates escape everything (issue #8, web security).

One world is built through the real JSON API (and the linkage protocol, for the units'
answers), with every free-text field of every record the consoles show set to hostile text: a
script tag, an image with an ``onerror`` handler, an SQL injection and a %-format, each with its
own marker (``zx001``...) so that a failure names the field. Then every console page, the public
pages and the first messages of the live streams are read by users who see the records; each
must answer 200, never contain the raw ``<script>alert("zx`` or ``<img src=x onerror``, and
show the escaped text of the fields it shows (which proves the field was rendered at all).
Input the pages echo (filters, refused forms, look-ups) is checked the same way.

The store and the JSON API keep the text verbatim (escaping is the template's job); the SQL
text changed nothing (every table holds what the world made; searches for injections and
wildcards find nothing); the spreadsheet exports keep names that start with ``=`` as text, not
formulas. In Chromium no hostile script runs and no hostile image is made, the command map's
tooltips included (ECharts renders them as HTML).

``test_every_text_field_is_covered`` walks the API's request schemas and
``test_every_console_route_is_read`` the router: a new free-text field or page fails them until
the world fills it or a page list names it (or ``EXEMPT`` / ``NOT_PAGES`` says why not).

The tests share the one world (built in about 4 s), so this module replaces the per-test
emptying of the database with one at its end.
"""

from __future__ import annotations

import io
import json
import random
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from markupsafe import escape
from openpyxl import load_workbook
from sqlalchemy import func, select, text

from tests.cases.factories import case_payload, company, person
from tests.conftest import PASSWORD, AuthHeaders, empty_database
from tests.linkage.support import onboard, sdk
from tests.support.database import ScratchDatabase
from tests.web.test_console import login
from zhixing.analytics import surveys
from zhixing.analytics.models import SatisfactionSurvey
from zhixing.app import create_app
from zhixing.cases.service import today
from zhixing.core.db import transaction
from zhixing.courts.models import Court
from zhixing.credit import partners
from zhixing.credit.models import Partner
from zhixing.demo_data.identities import resident_id
from zhixing.field import resources
from zhixing.field.models import FieldTeam
from zhixing.linkage import wire
from zhixing.linkage.models import LinkageUnit
from zhixing.models_registry import Base
from zhixing.web.deps import SESSION_COOKIE

SQL = "' OR '1'='1'; DROP TABLE cases; --"
FORMAT = " %(zx)s%"  # a %-format would fail on it: data must never be a format string
# What must never reach a page unescaped; ``<b>zx`` is the short form for fields of fewer than
# 31 characters.
RAW_SIGNS = ('<script>alert("zx', "<img src=x onerror", "<b>zx")
POWERFUL = ["admin", "auditor", "officer", "approver", "duty_leader", "duty_officer", "bailiff"]
PDF = b"%PDF-1.4 hostile\n"
JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + b"\x00" * 200


def hostile(marker: str, limit: int, *, slashless: bool = False) -> str:
    """The longest hostile text that fits ``limit`` characters, with ``marker`` in it; without
    a slash for a file name (whose path the platform cuts off)."""
    if slashless:
        # Single quotes: a client percent-encodes double quotes in a multipart file name.
        return f"<img src=x onerror=alert('{marker}')>{SQL}"[:limit]
    script = f'<script>alert("{marker}")</script>'
    for candidate in (f"{script}<img src=x onerror=alert(1)>{SQL}{FORMAT}",
                      f"{script}<img src=x onerror=alert(1)>{SQL}",
                      f"{script}<img src=x onerror=alert(1)>%", f"{script}%",
                      f"<b>{marker}</b>%"):
        if len(candidate) <= limit:
            return candidate
    raise AssertionError(f"no hostile text fits {limit} characters")


class Hostile:
    """Hostile text per field (``Schema.field``, with ``#where`` when one schema field is filled
    in several places), each with its own marker."""

    def __init__(self) -> None:
        self.texts: dict[str, str] = {}

    def __call__(self, name: str, limit: int = 4000, *, slashless: bool = False) -> str:
        if name not in self.texts:
            self.texts[name] = hostile(f"zx{len(self.texts) + 1:03d}", limit,
                                       slashless=slashless)
        return self.texts[name]

    def field_of(self, snippet: str) -> str:
        found = re.search(r"zx\d{3}", snippet[:120])
        if found:
            for name, value in self.texts.items():
                if found.group(0) in value:
                    return name
        return "?"

    def fields(self) -> set[str]:
        return {name.split("#")[0] for name in self.texts}


def ok(resp: Any, *status: int) -> Any:
    assert resp.status_code in (status or (200, 201)), resp.text
    return resp.json()


@dataclass
class World:
    client: TestClient
    auth: AuthHeaders
    text: Hostile
    ids: dict[str, int] = field(default_factory=dict)
    sessions: dict[str, str] = field(default_factory=dict)
    follow_codes: dict[str, str] = field(default_factory=dict)
    survey_code: str = ""
    counts: dict[str, int] = field(default_factory=dict)

    def as_user(self, username: str) -> None:
        """Switch the client's console session (one login per user)."""
        if username not in self.sessions:
            self.client.cookies.clear()
            login(self.client, username)
            self.sessions[username] = self.client.cookies[SESSION_COOKIE]
        self.client.cookies.clear()
        self.client.cookies.set(SESSION_COOKIE, self.sessions[username])


# --- building the world ------------------------------------------------------------------------


def _user(w: World, username: str, court: str, roles: list[str], display: str) -> int:
    return int(ok(w.client.post("/api/v1/users", headers=w.auth("admin"), json={
        "username": username, "display_name": display, "court_code": court,
        "password": PASSWORD, "roles": roles}))["id"])


def _adult(rng_seed: int) -> str:
    """A grown-up's identity number (a minor is never listed)."""
    return resident_id(random.Random(rng_seed), born=date(1985, 5, 1))


def build(client: TestClient, auth: AuthHeaders) -> World:
    w = World(client, auth, Hostile())
    t = w.text
    admin = auth("admin")
    w.ids["boss"] = _user(w, "zx.boss", "桂0103", POWERFUL, "老板")
    w.ids["approver"] = _user(w, "zx.approver", "桂0103", ["approver", "officer"],
                              t("UserCreate.display_name", 64))
    w.ids["nanning"] = _user(w, "zx.nanning", "桂01", POWERFUL, t("UserCreate.display_name#2", 64))
    ok(client.patch(f"/api/v1/users/{w.ids['boss']}", headers=admin,
                    json={"display_name": t("UserUpdate.display_name", 64)}))
    boss, approver, nanning = auth("zx.boss"), auth("zx.approver"), auth("zx.nanning")
    _case(w, boss, approver)
    _linkage(w, boss, approver)
    _credit(w, boss, approver, nanning)
    _command(w, boss, nanning, admin)
    _field(w, boss, approver)
    _conclusions(w, boss, approver)
    _registries(w, admin)
    _formula_cases(w, boss)
    w.counts = counts()
    return w


def _party(w: World, role: str, kind: str, seed: int) -> dict[str, Any]:
    t = w.text
    common = {"address": t(f"PartyIn.address#{role}", 255),
              "phone": t(f"PartyIn.phone#{role}", 32)}
    if kind == "person":  # 64 characters at most: the public list searches such names
        return person(t(f"PartyIn.name#{role}", 64), id_number=_adult(seed), **common)
    return company(t(f"PartyIn.name#{role}", 128), legal_representative=t(
        f"PartyIn.legal_representative#{role}", 64), responsible_persons=[{
            "role": "actual_controller",
            "person": person(t(f"PartyIn.name#{role}-controller", 128), id_number=_adult(seed + 1),
                             address=t(f"PartyIn.address#{role}-controller", 255))}], **common)


def _case(w: World, boss: dict[str, str], approver: dict[str, str]) -> None:
    t, client = w.text, w.client
    body = case_payload(
        filed_days_ago=120, officer_username="zx.boss", approver_username="zx.approver",
        title_issuer=t("CaseCreate.title_issuer", 128),
        title_document_number=t("CaseCreate.title_document_number", 64),
        applicants=[_party(w, "applicant", "organisation", 1)],
        debtors=[_party(w, "debtor", "person", 3), _party(w, "debtor2", "organisation", 5)])
    case = ok(client.post("/api/v1/cases", headers=boss, json=body), 201)
    cid = w.ids["case"] = case["id"]
    debtors = [p for p in case["parties"] if p["role"] == "debtor"]
    w.ids["debtor"], w.ids["debtor2"] = debtors[0]["id"], debtors[1]["id"]
    w.ids["applicant"] = next(p["id"] for p in case["parties"] if p["role"] == "applicant")
    url = f"/api/v1/cases/{cid}"
    ok(client.post(f"{url}/notes", headers=boss, json={"text": t("NoteIn.text", 2000)}), 201)
    ok(client.post(f"{url}/transitions", headers=boss, json={
        "action": "advance", "to": "notice_served", "note": t("TransitionIn.note", 255)}))
    ok(client.post(f"{url}/facts", headers=boss, json={
        "kind": "debtor_search", "on": today().isoformat(), "note": t("FactIn.note", 255)}))
    ok(client.post(f"{url}/transitions", headers=boss, json={"action": "advance",
                                                              "to": "investigating"}))
    asset = ok(client.post(f"{url}/assets", headers=boss, json={
        "debtor_id": w.ids["debtor"], "kind": "vehicle",
        "description": t("AssetIn.description", 255), "identifier": t("AssetIn.identifier", 64),
        "holder": t("AssetIn.holder", 128), "value_fen": 10_000_000}), 201)
    w.ids["asset"] = asset["id"]
    ok(client.post(f"{url}/money", headers=boss, json={
        "kind": "recovered", "amount_fen": 100, "on": today().isoformat(),
        "note": t("MoneyIn.note", 255)}), 201)
    doc = ok(client.post(f"{url}/documents", headers=boss, data={
        "note": t("Body_cases-upload_document.note", 500)}, files={
        "file": (t("filename#case", 120, slashless=True) + ".pdf", PDF, "application/pdf")}), 201)
    w.ids["document"] = doc["id"]
    ok(client.post(f"{url}/extensions", headers=approver, json={
        "months": 3, "reason": t("ExtensionIn.reason", 255)}), 201, 200)


def _answer(w: World, kind: str) -> wire.ResultPayload:
    """A unit's answer of ``kind`` with every text hostile (units are outsiders too)."""
    t = w.text
    if kind == "deposits":
        return wire.DepositsPayload(kind="deposits", accounts=[
            wire.DepositAccount(
                account_number="6222000011112222", bank=t("DepositAccount.bank", 128),
                branch=t("DepositAccount.branch", 128), balance_fen=5_000_000, currency="CNY",
                account_type="demand"),
            wire.DepositAccount(
                account_number="6222000011113333", bank="中国工商银行", branch="南宁分行",
                balance_fen=1_000, currency="CNY", account_type="wealth_product",
                wealth_product=wire.WealthProduct(
                    product_code="WP1", product_name=t("WealthProduct.product_name", 128),
                    value_fen=1_000))])
    if kind == "real_estate":
        return wire.RealEstatePayload(kind="real_estate", properties=[wire.Property(
            certificate_number=t("Property.certificate_number", 64),
            address=t("Property.address", 255), area_m2="88.5", usage=t("Property.usage", 64),
            co_owners=[t("Property.co_owners", 128)])])
    if kind == "vehicles":
        return wire.VehiclesPayload(kind="vehicles", vehicles=[wire.Vehicle(
            plate_number=t("Vehicle.plate_number", 16), model=t("Vehicle.model", 128),
            vin="LSVAM4187C2184847", registered_on=date(2020, 1, 2))])
    if kind == "business_registration":
        return wire.BusinessRegistrationPayload(kind="business_registration", roles=[
            wire.BusinessRole(company_name=t("BusinessRole.company_name", 128), role="director")])
    if kind == "securities":
        return wire.SecuritiesPayload(kind="securities", accounts=[wire.SecuritiesAccount(
            account="A123", broker=t("SecuritiesAccount.broker", 128), holdings=[
                wire.Holding(code="600000", name=t("Holding.name", 64), quantity=100)])])
    if kind == "household_registration":
        return wire.HouseholdRegistrationPayload(
            kind="household_registration", record=wire.HouseholdRecord(
                address=t("HouseholdRecord.address", 255),
                household_head=t("HouseholdRecord.household_head", 128),
                members=[wire.HouseholdMember(name=t("HouseholdMember.name", 128),
                                              relation=t("HouseholdMember.relation", 32))]))
    if kind == "marriage_registration":
        return wire.MarriageRegistrationPayload(
            kind="marriage_registration", record=wire.MarriageRecord(
                status="married", spouse_name=t("MarriageRecord.spouse_name", 128),
                registered_on=date(2010, 1, 1)))
    assert kind == "lodging"
    return wire.LodgingPayload(kind="lodging", stays=[wire.Stay(
        hotel=t("Stay.hotel", 128), address=t("Stay.address", 255),
        check_in_at=datetime.now(UTC) - timedelta(days=1))])


def _linkage(w: World, boss: dict[str, str], approver: dict[str, str]) -> None:
    """An inquiry answered by one unit of each kind with hostile text (and refused by one);
    a freeze of the account found, and a deduction the approver refuses."""
    t, client, cid = w.text, w.client, w.ids["case"]
    issued = onboard()
    with transaction() as session:
        units = list(session.scalars(select(LinkageUnit).order_by(LinkageUnit.id)))
        by_kind = {kind: [u.code for u in units if kind in u.query_kinds]
                   for kind in wire.QUERY_KINDS}
        codes = {kind: found[0] for kind, found in by_kind.items()}
        refusing = by_kind["deposits"][1]
        ids = {u.code: u.id for u in units}
    inquiry = ok(client.post(f"/api/v1/cases/{cid}/inquiries", headers=boss, json={
        "purpose": t("InquiryIn.purpose", 255), "legal_basis": t("InquiryIn.legal_basis", 255),
        "party_ids": [w.ids["debtor"]], "kinds": list(wire.QUERY_KINDS),
        "unit_ids": sorted({ids[c] for c in [*codes.values(), refusing]})}), 201)
    w.ids["inquiry"] = inquiry["id"]
    now = datetime.now(UTC)
    for code in codes.values():
        unit = sdk(client, issued[code])
        for task in unit.fetch_tasks(50).tasks:
            unit.post_results([wire.Result(schema_version="1", task_id=task.task_id,
                                           status="answered", reported_at=now,
                                           payload=_answer(w, task.kind))])
    unit = sdk(client, issued[refusing])
    [task] = unit.fetch_tasks(50).tasks
    unit.post_results([wire.Result(
        schema_version="1", task_id=task.task_id, status="refused", reported_at=now,
        refusal=wire.Refusal(code="other", message=t("Refusal.message", 500)))])
    detail = ok(client.get(f"/api/v1/cases/{cid}", headers=boss))
    account = next(a for a in detail["assets"] if a["kind"] == "deposit"
                   and a["identifier"] == "6222000011112222")
    freeze = ok(client.post(f"/api/v1/cases/{cid}/assets/{account['id']}/orders", headers=boss,
                            json={"kind": "freeze", "amount_fen": 2_000_000,
                                  "document_number": t("OrderIn.document_number", 64),
                                  "purpose": t("OrderIn.purpose", 255),
                                  "legal_basis": t("OrderIn.legal_basis", 255)}), 201)
    w.ids["order"] = freeze["id"]
    bank = sdk(client, issued[codes["deposits"]])
    [task] = bank.fetch_tasks(50).tasks
    assert task.control is not None
    bank.post_results([wire.Result(
        schema_version="1", task_id=task.task_id, status="answered", reported_at=now,
        payload=wire.ControlOutcome(kind="freeze", unit_reference="ICBC-1", applied_at=now,
                                    amount_ordered_fen=2_000_000, amount_applied_fen=2_000_000,
                                    expires_on=today() + timedelta(days=300)))])
    deduct = ok(client.post(f"/api/v1/cases/{cid}/assets/{account['id']}/orders", headers=boss,
                            json={"kind": "deduct", "amount_fen": 1_000_000,
                                  "document_number": "（2026）桂0103执1号之二",
                                  "purpose": "扣划存款",
                                  "legal_basis": "民事诉讼法第二百四十九条"}), 201)
    ok(client.post(f"/api/v1/cases/{cid}/orders/{deduct['id']}/decision", headers=approver,
                   json={"approve": False, "note": t("zhixing__linkage__orders__DecisionIn.note",
                                                     255)}))


def _credit(w: World, boss: dict[str, str], approver: dict[str, str],
            nanning: dict[str, str]) -> None:
    """Two listings (one approved, extended, its correction refused up to the higher court;
    one revoked), a consumption restriction with an exception, an exit restriction lifted."""
    t, client, cid = w.text, w.client, w.ids["case"]
    listing = ok(client.post(f"/api/v1/cases/{cid}/listings", headers=boss, json={
        "party_id": w.ids["debtor"], "ground": 2, "conduct": t("ListingIn.conduct", 500),
        "extension_years": 1, "extension_reason": t("ListingIn.extension_reason", 255)}), 201)
    lid = w.ids["listing"] = listing["id"]
    ok(client.post(f"/api/v1/listings/{lid}/decision", headers=approver, json={
        "approve": True, "note": t("ListingDecisionIn.note", 500)}))
    ok(client.post(f"/api/v1/listings/{lid}/extension", headers=approver, json={
        "years": 1, "reason": t("ListingExtensionIn.reason", 255)}))
    corr = ok(client.post(f"/api/v1/listings/{lid}/corrections", headers=boss, json={
        "filed_by_name": t("CorrectionIn.filed_by_name", 128),
        "grounds": t("CorrectionIn.grounds", 4000)}), 201)
    w.ids["correction"] = corr["id"]
    ok(client.post(f"/api/v1/corrections/{corr['id']}/decision", headers=approver, json={
        "upheld": False, "note": t("CorrectionDecisionIn.note", 500)}))
    ok(client.post(f"/api/v1/corrections/{corr['id']}/higher-review", headers=boss, json={}))
    ok(client.post(f"/api/v1/corrections/{corr['id']}/higher-decision", headers=nanning, json={
        "upheld": False, "note": t("CorrectionDecisionIn.note#higher", 500)}))
    second = ok(client.post(f"/api/v1/cases/{cid}/listings", headers=boss, json={
        "party_id": w.ids["debtor2"], "ground": 3, "conduct": t("ListingIn.conduct#2", 500)}),
        201)
    ok(client.post(f"/api/v1/listings/{second['id']}/decision", headers=approver,
                   json={"approve": True}))
    ok(client.post(f"/api/v1/listings/{second['id']}/revocation", headers=approver, json={
        "reason": t("ListingRevocationIn.reason", 500)}))
    restriction = ok(client.post(f"/api/v1/cases/{cid}/restrictions", headers=boss, json={
        "party_id": w.ids["debtor2"], "kind": "consumption"}), 201)
    w.ids["restriction"] = restriction["id"]
    controller = next(b["party_id"] for b in restriction["bound_persons"] if b["role"] != "debtor")
    ok(client.post(f"/api/v1/restrictions/{restriction['id']}/exceptions", headers=approver,
                   json={"person_id": controller, "activities": ["flight"],
                         "reason": t("ExceptionIn.reason", 500)}), 201, 200)
    exit_r = ok(client.post(f"/api/v1/cases/{cid}/restrictions", headers=boss, json={
        "party_id": w.ids["debtor"], "kind": "exit"}), 201)
    ok(client.post(f"/api/v1/restrictions/{exit_r['id']}/lift", headers=boss, json={
        "reason": "security", "note": t("RestrictionLiftIn.note", 500)}))


def _command(w: World, boss: dict[str, str], nanning: dict[str, str],
             admin: dict[str, str]) -> None:
    """Duty for Qingxiu (a shift) and Nanning (a roster); two requests (one carried out, one
    handed on and withdrawn), a roll call answered with a request, a handover, a video call."""
    t, client = w.text, w.client
    now = datetime.now(UTC).replace(microsecond=0)
    ok(client.post("/api/v1/command/shifts", headers=admin, json={
        "court_code": "桂0103", "starts_at": (now - timedelta(hours=1)).isoformat(),
        "ends_at": (now + timedelta(hours=23)).isoformat(), "team": t("ShiftIn.team", 32),
        "phone": t("ShiftIn.phone", 32), "vehicles": t("ShiftIn.vehicles", 255),
        "note": t("ShiftIn.note", 255), "members": [
            {"role": "leader", "username": "zx.boss"},
            {"role": "officer", "name": t("MemberIn.name", 64),
             "phone": t("MemberIn.phone", 32)}]}), 201)
    ok(client.post("/api/v1/command/rosters", headers=admin, json={
        "court_code": "桂01", "first_day": (today() - timedelta(days=1)).isoformat(),
        "days": 3, "handover_hour": 8, "shift_hours": 24, "phone": t("RosterIn.phone", 32),
        "teams": [{"name": t("TeamIn.name", 32), "vehicles": t("TeamIn.vehicles", 255),
                   "members": [{"role": "leader", "username": "zx.nanning"},
                               {"role": "standby", "name": t("MemberIn.name#roster", 64)}]}]}),
       201)

    def ask(tag: str) -> dict[str, Any]:
        return dict(ok(client.post("/api/v1/command/requests", headers=boss, json={
            "kind": "verify_lead", "place_court_code": "桂0102", "to_court_code": "桂01",
            "case_id": w.ids["case"], "place": t(f"RequestIn.place#{tag}", 255),
            "subject": t(f"RequestIn.subject#{tag}", 128),
            "details": t(f"RequestIn.details#{tag}", 4000)}), 201))

    done = ask("done")
    w.ids["request"] = done["id"]
    ok(client.post(f"/api/v1/command/hops/{done['hops'][0]['id']}/acknowledge", headers=nanning,
                   json={"note": t("AcknowledgeIn.note", 255)}))
    ok(client.post(f"/api/v1/command/requests/{done['id']}/documents", headers=nanning,
                   data={"note": t("Body_command-add_evidence.note", 255)},
                   files={"file": (t("filename#evidence", 120, slashless=True) + ".pdf", PDF,
                                   "application/pdf")}), 201)
    ok(client.post(f"/api/v1/command/requests/{done['id']}/result", headers=nanning, json={
        "outcome": "done", "summary": t("ResultIn.summary", 4000)}))
    passed = ask("withdrawn")
    w.ids["request2"] = passed["id"]
    ok(client.post(f"/api/v1/command/hops/{passed['hops'][0]['id']}/acknowledge",
                   headers=nanning))
    ok(client.post(f"/api/v1/command/hops/{passed['hops'][0]['id']}/hand-down", headers=nanning,
                   json={"to_court_code": "桂0102", "note": t("ForwardIn.note", 255)}))
    ok(client.post(f"/api/v1/command/requests/{passed['id']}/withdraw", headers=boss, json={
        "reason": t("WithdrawIn.reason", 2000)}))
    call = ok(client.post("/api/v1/command/roll-calls", headers=nanning, json={
        "answer_within_minutes": 30, "note": t("RollCallIn.note", 255)}), 201)
    w.ids["roll_call"] = call["id"]
    answer = ok(client.post(f"/api/v1/command/roll-calls/{call['id']}/answer", headers=boss,
                            json={"status": "items",
                                  "text": t("zhixing__command__schemas__AnswerIn.text", 2000),
                                  "request": {
                                      "kind": "find_person", "place_court_code": "桂0103",
                                      "place": t("RequestIn.place#roll-call", 255),
                                      "subject": t("RequestIn.subject#roll-call", 128),
                                      "details": t("RequestIn.details#roll-call", 4000)}}))
    w.ids["request3"] = answer["request_id"]
    handover = ok(client.post("/api/v1/command/handovers", headers=boss, json={
        "items": [t("HandoverIn.items", 2000)], "note": t("HandoverIn.note", 2000)}), 201)
    w.ids["handover"] = handover["id"]
    video = ok(client.post("/api/v1/command/calls", headers=boss, json={
        "to_court_code": "桂01", "sdp": "v=0\r\ns=-\r\n"}), 201)
    w.ids["call"] = video["id"]


def _field(w: World, boss: dict[str, str], approver: dict[str, str]) -> None:
    """Tips (the desk's and the public's), a reward offer, a dispatch with evidence, SOS."""
    t, client, cid = w.text, w.client, w.ids["case"]
    with transaction() as session:
        # Every bailiff user joins their court's team, labelled with the display name.
        resources.seed_field(session)
        court = session.scalar(select(Court).where(Court.code == "桂0103"))
        assert court is not None and court.lon is not None and court.lat is not None
        team = session.scalar(select(FieldTeam).where(FieldTeam.court_id == court.id))
        assert team is not None
        team_id, lon, lat = team.id, court.lon, court.lat
    tip = ok(client.post("/api/v1/field/tips", headers=boss, json={
        "content": t("TipTakeIn.content", 4000), "place": t("TipTakeIn.place", 255),
        "tipster_name": t("TipTakeIn.tipster_name", 64),
        "tipster_phone": t("TipTakeIn.tipster_phone", 32), "lon": lon, "lat": lat,
        "case_id": cid, "urgent": True}), 201)
    w.ids["tip"] = tip["id"]
    w.follow_codes["desk"] = tip["follow_code"]
    ok(client.post(f"/api/v1/field/tips/{tip['id']}/outcome", headers=boss, json={
        "outcome": "confirmed", "note": t("OutcomeIn.note", 2000),
        "answer": t("OutcomeIn.answer", 2000)}))
    ok(client.post(f"/api/v1/field/tips/{tip['id']}/answers", headers=boss, json={
        "text": t("zhixing__field__schemas__AnswerIn.text", 2000)}), 201)
    public = ok(client.post("/api/v1/public/tips", json={
        "content": t("TipPublicIn.content", 4000), "place": t("TipPublicIn.place", 255),
        "tipster_name": t("TipPublicIn.tipster_name", 64),
        "tipster_phone": t("TipPublicIn.tipster_phone", 32), "court_code": "桂0103",
        "relation": "other"}), 201)
    w.follow_codes["public"] = public["follow_code"]
    ok(client.post("/api/v1/public/tips/information", json={
        "code": public["follow_code"], "text": t("TipInformationIn.text", 4000)}), 200, 201)
    with transaction() as session:
        from zhixing.field.models import Tip

        w.ids["public_tip"] = int(session.scalar(select(func.max(Tip.id))) or 0)
    offer = ok(client.post(f"/api/v1/cases/{cid}/reward-offers", headers=boss, json={
        "applicant_party_id": w.ids["applicant"], "amount_fen": 100_000}), 201)
    w.ids["offer"] = offer["id"]
    ok(client.post(f"/api/v1/field/reward-offers/{offer['id']}/decision", headers=approver,
                   json={"approve": True, "note": t("zhixing__field__schemas__DecisionIn.note",
                                                    2000)}))
    dispatch = ok(client.post("/api/v1/field/dispatches", headers=boss, json={
        "task": t("DispatchIn.task", 255), "place": t("DispatchIn.place", 255), "lon": lon,
        "lat": lat, "team_id": team_id, "case_id": cid, "tip_id": tip["id"]}), 201)
    w.ids["dispatch"] = dispatch["id"]
    ok(client.post(f"/api/v1/field/dispatches/{dispatch['id']}/status", headers=boss, json={
        "to": "en_route", "note": t("MoveIn.note", 2000)}))
    ok(client.post(f"/api/v1/field/dispatches/{dispatch['id']}/documents", headers=boss,
                   files={"file": (t("filename#dispatch", 120, slashless=True) + ".jpg", JPEG,
                                   "image/jpeg")}), 201)
    sos = ok(client.post("/api/v1/field/incidents", headers=boss, json={
        "lon": lon, "lat": lat, "note": t("SosIn.note", 500)}), 201)
    w.ids["incident"] = sos["id"]
    resolved = ok(client.post("/api/v1/field/incidents", headers=boss, json={
        "lon": lon, "lat": lat, "note": t("SosIn.note#resolved", 500)}), 201)
    ok(client.post(f"/api/v1/field/incidents/{resolved['id']}/acknowledge", headers=boss))
    ok(client.post(f"/api/v1/field/incidents/{resolved['id']}/resolve", headers=boss, json={
        "note": t("ResolveIn.note", 2000)}))


def _conclusions(w: World, boss: dict[str, str], approver: dict[str, str]) -> None:
    """A case closed for now (终本: its survey, a listing deleted) and resumed (执恢); a case
    concluded as rejected with a stated reason."""
    t, client = w.text, w.client
    case = ok(client.post("/api/v1/cases", headers=boss, json=case_payload(
        filed_days_ago=150, officer_username="zx.boss",
        debtors=[person("赵某", id_number=_adult(11))])), 201)
    cid = w.ids["closed_case"] = case["id"]
    url = f"/api/v1/cases/{cid}"
    for step in ("notice_served", "investigating"):
        ok(client.post(f"{url}/transitions", headers=boss, json={"action": "advance",
                                                                  "to": step}))
    for kind in ("execution_notice", "property_report_order", "consumption_restriction",
                 "dishonest_listing_decided", "network_query_done", "debtor_search",
                 "applicant_interview"):  # some come with the steps or the listing
        ok(client.post(f"{url}/facts", headers=boss, json={
            "kind": kind, "on": today().isoformat()}), 200, 201, 409)
    debtor = next(p["id"] for p in case["parties"] if p["role"] == "debtor")
    listing = ok(client.post(f"{url}/listings", headers=boss, json={
        "party_id": debtor, "ground": 2, "conduct": "拒不申报财产"}), 201)
    ok(client.post(f"/api/v1/listings/{listing['id']}/decision", headers=approver,
                   json={"approve": True}))
    ok(client.post(f"/api/v1/listings/{listing['id']}/deletion", headers=boss, json={
        "ground": "active_performance", "note": t("ListingDeletionIn.note", 500)}))
    ok(client.post(f"{url}/transitions", headers=boss, json={
        "action": "conclude", "conclusion": "closed_for_now", "on": today().isoformat(),
        "note": t("TransitionIn.note#closed-for-now", 255)}))
    with transaction() as session:
        surveys.open_surveys(session, {"case_id": cid})
        first = session.scalar(select(func.min(SatisfactionSurvey.id))
                               .where(SatisfactionSurvey.case_id == cid))
        assert first is not None
        w.survey_code = surveys.survey_code(first)
    resumed = ok(client.post(f"{url}/resume", headers=boss, json={
        "reason": t("ResumeIn.reason", 255)}), 201)
    w.ids["resumed_case"] = resumed["id"]
    rejected = ok(client.post("/api/v1/cases", headers=boss, json=case_payload(
        filed_days_ago=10, officer_username="zx.boss",
        debtors=[person("钱某", id_number=_adult(13))])), 201)
    w.ids["rejected_case"] = rejected["id"]
    ok(client.post(f"/api/v1/cases/{rejected['id']}/transitions", headers=boss, json={
        "action": "conclude", "conclusion": "rejected", "on": today().isoformat(),
        "ground": t("TransitionIn.ground", 64)}))


def _registries(w: World, admin: dict[str, str]) -> None:
    """A linked unit's push URL and a partner's key name, set by the region's administrator."""
    t, client = w.text, w.client
    with transaction() as session:
        unit = session.scalar(select(func.min(LinkageUnit.id)))
        partners.sync_partners(session)
        partner = session.scalar(select(func.min(Partner.id)))
    w.ids["unit"], w.ids["partner"] = int(unit or 0), int(partner or 0)
    ok(client.patch(f"/api/v1/units/{unit}", headers=admin, json={
        "push_url": "https://units.example/" + t("UnitUpdate.push_url", 200)}))
    ok(client.post(f"/api/v1/partners/{partner}/keys", headers=admin, json={
        "name": t("KeyIn.name", 128)}), 201)


# Names a spreadsheet would take for formulas; the case list export must keep them as text.
FORMULAS = {"officer": "-2+3+cmd|' /C calc'!A0", "applicant": '=HYPERLINK("http://x.example")',
            "debtor": "+1+1", "applicant2": "@SUM(1+1)*cmd|' /C calc'!A0", "debtor2": "=1+1"}


def _formula_cases(w: World, boss: dict[str, str]) -> None:
    _user(w, "zx.formula", "桂0103", ["officer"], FORMULAS["officer"])
    for officer, applicant, debtor, seed in (("zx.formula", "applicant", "debtor", 21),
                                             ("zx.boss", "applicant2", "debtor2", 23)):
        ok(w.client.post("/api/v1/cases", headers=boss, json=case_payload(
            filed_days_ago=5, officer_username=officer,
            applicants=[company(FORMULAS[applicant])],
            debtors=[person(FORMULAS[debtor], id_number=_adult(seed))])), 201)


# Tables whose rows the SQL text must not have touched (reading a page adds none to them).
COUNTED = ("cases", "parties", "case_parties", "assets", "case_documents", "credit_listings",
           "credit_restrictions", "credit_corrections", "linkage_inquiries", "linkage_tasks",
           "linkage_orders", "assistance_requests", "duty_shifts", "duty_handovers",
           "roll_calls", "field_tips", "field_tip_messages", "field_dispatches",
           "field_incidents", "field_reward_offers", "users", "video_calls")


def counts() -> dict[str, int]:
    with transaction() as session:
        return {name: int(session.scalar(text(f"SELECT count(*) FROM {name}")) or 0)  # noqa: S608
                for name in COUNTED}


# --- fixtures ----------------------------------------------------------------------------------


@pytest.fixture(autouse=True)
def _clean_state() -> None:
    """Replaces the per-test emptying of tests/conftest.py: the tests of this module read the
    one world built for them (``world``), which empties the database after the last one."""


@pytest.fixture(scope="module")
def world(test_db: object, seeded_users: dict[str, tuple[int, str]]) -> Iterator[World]:
    try:
        with TestClient(create_app(start_worker=False)) as client:
            yield build(client, AuthHeaders(client))
    finally:
        empty_database(seeded_users)


# --- the checks --------------------------------------------------------------------------------


def assert_escaped(w: World, body: str, where: str) -> None:
    """No hostile text reaches ``body`` as markup."""
    for sign in RAW_SIGNS:
        at = body.find(sign)
        assert at < 0, (f"{where}: unescaped {body[max(0, at - 40):at + 80]!r} "
                        f"(field {w.text.field_of(body[at:])})")


def head(value: str) -> str:
    """The text up to its marker: what a page shows even when it cuts a long text short."""
    marker = re.search(r"zx\d{3}", value)
    assert marker is not None
    return value[:marker.end()]


def shown(w: World, body: str) -> set[str]:
    """The fields whose text ``body`` shows, escaped (at least up to the marker)."""
    return {name for name, value in w.text.texts.items() if str(escape(head(value))) in body}


@dataclass(frozen=True)
class Page:
    route: str  # the router's path
    url: str  # with the world's ids in braces
    user: str | None  # who reads it; None: anyone
    shows: tuple[str, ...] = ()  # fields whose escaped text the page must show


CASE_PAGE = (
    "CaseCreate.title_issuer", "CaseCreate.title_document_number", "PartyIn.name#applicant",
    "PartyIn.name#debtor", "PartyIn.name#debtor2", "PartyIn.name#applicant-controller",
    "PartyIn.name#debtor2-controller", "UserCreate.display_name", "UserUpdate.display_name",
    "NoteIn.text", "FactIn.note", "AssetIn.description", "AssetIn.identifier", "AssetIn.holder",
    "filename#case", "OrderIn.document_number", "zhixing__linkage__orders__DecisionIn.note",
    "DepositAccount.bank", "DepositAccount.branch", "WealthProduct.product_name",
    "Property.address", "Property.certificate_number", "Property.usage", "Vehicle.model",
    "Vehicle.plate_number", "SecuritiesAccount.broker", "Holding.name",
    "RequestIn.subject#done", "RequestIn.subject#withdrawn", "ResultIn.summary",
    "WithdrawIn.reason", "DispatchIn.task", "filename#evidence", "filename#dispatch")
NOTICE = ("CaseCreate.title_issuer", "CaseCreate.title_document_number",
          "PartyIn.name#applicant", "PartyIn.name#debtor", "PartyIn.name#debtor2",
          "PartyIn.legal_representative#debtor2")
CASE_LIST = ("PartyIn.name#applicant", "PartyIn.name#debtor", "PartyIn.name#debtor2",
             "UserUpdate.display_name")
UNIT_ANSWERS = (
    "DepositAccount.bank", "DepositAccount.branch", "WealthProduct.product_name",
    "Property.address", "Property.certificate_number", "Property.usage", "Property.co_owners",
    "Vehicle.model", "Vehicle.plate_number", "BusinessRole.company_name",
    "SecuritiesAccount.broker", "Holding.name", "HouseholdRecord.address",
    "HouseholdRecord.household_head", "MarriageRecord.spouse_name", "Stay.hotel",
    "Stay.address", "Refusal.message")
DESK = ("RequestIn.subject#done", "RequestIn.subject#withdrawn", "RequestIn.subject#roll-call",
        "ResultIn.summary", "WithdrawIn.reason", "zhixing__command__schemas__AnswerIn.text",
        "ShiftIn.phone", "ShiftIn.vehicles", "MemberIn.name", "UserUpdate.display_name",
        "filename#evidence")

PAGES = (
    Page("/login", "/login", None),
    Page("/", "/", "zx.boss", ("UserUpdate.display_name",)),
    Page("/courts", "/courts", "zx.boss"),
    Page("/admin/users", "/admin/users", "admin",
         ("UserCreate.display_name", "UserCreate.display_name#2", "UserUpdate.display_name")),
    Page("/audit", "/audit?action=linkage.inquiry", "zx.boss", ("InquiryIn.purpose",)),
    Page("/audit", "/audit?action=linkage.order.freeze", "zx.boss", ("OrderIn.purpose",)),
    Page("/cases/queue", "/cases/queue", "zx.boss", CASE_LIST),
    Page("/cases", "/cases", "zx.boss", CASE_LIST),
    Page("/cases/new", "/cases/new", "zx.boss"),
    Page("/cases/{case_id}", "/cases/{case}", "zx.boss", CASE_PAGE),
    Page("/cases/{case_id}", "/cases/{case}", "zx.nanning", CASE_PAGE),
    Page("/cases/{case_id}", "/cases/{closed_case}", "zx.boss"),
    Page("/cases/{case_id}", "/cases/{resumed_case}", "zx.boss"),
    Page("/cases/{case_id}", "/cases/{rejected_case}", "zx.boss", ("TransitionIn.ground",)),
    Page("/cases/{case_id}/notices/{kind}", "/cases/{case}/notices/execution_notice",
         "zx.boss", NOTICE),
    Page("/cases/{case_id}/notices/{kind}", "/cases/{case}/notices/property_report_order",
         "zx.boss", NOTICE),
    Page("/lookup", "/lookup", None),
    Page("/dishonest", "/dishonest?name={debtor_name}", None,
         ("PartyIn.name#debtor", "ListingIn.conduct", "CaseCreate.title_issuer",
          "CaseCreate.title_document_number")),
    Page("/credit", "/credit", "zx.boss", ("PartyIn.name#debtor",)),
    Page("/credit/listings/{listing_id}/decision", "/credit/listings/{listing}/decision",
         "zx.boss", ("ListingIn.conduct", "PartyIn.name#debtor", "PartyIn.name#applicant",
                     "CaseCreate.title_issuer", "CaseCreate.title_document_number")),
    Page("/indicators", "/indicators", "zx.boss"),
    Page("/screen", "/screen", "zx.boss"),
    Page("/survey/{code}", "/survey/{survey}", None),
    Page("/cases/{case_id}/inquiries/{inquiry_id}", "/cases/{case}/inquiries/{inquiry}",
         "zx.boss", ("InquiryIn.purpose", "InquiryIn.legal_basis", "PartyIn.name#debtor",
                     "UserUpdate.display_name", *UNIT_ANSWERS)),
    Page("/network/units", "/network/units", "admin"),
    Page("/command", "/command", "zx.boss", (*DESK, "HandoverIn.items",
                                             "RequestIn.place#roll-call")),
    Page("/command", "/command", "zx.nanning", (*DESK, "RosterIn.phone", "TeamIn.vehicles",
                                                "MemberIn.name#roster",
                                                "UserCreate.display_name#2")),
    Page("/command/requests/{request_id}", "/command/requests/{request}", "zx.boss",
         ("RequestIn.subject#done", "RequestIn.place#done", "RequestIn.details#done",
          "ResultIn.summary", "UserCreate.display_name#2", "filename#evidence")),
    Page("/command/requests/{request_id}", "/command/requests/{request2}", "zx.nanning",
         ("RequestIn.subject#withdrawn", "RequestIn.place#withdrawn",
          "RequestIn.details#withdrawn", "WithdrawIn.reason", "UserCreate.display_name#2")),
    Page("/command/requests/{request_id}", "/command/requests/{request3}", "zx.nanning",
         ("RequestIn.subject#roll-call", "RequestIn.place#roll-call",
          "RequestIn.details#roll-call", "zhixing__command__schemas__AnswerIn.text")),
    Page("/command/calls/new", "/command/calls/new?to=桂01", "zx.boss"),
    Page("/command/calls/{call_id}", "/command/calls/{call}", "zx.nanning",
         ("UserUpdate.display_name",)),
    Page("/field", "/field", "zx.boss", ("DispatchIn.task", "DispatchIn.place")),
    Page("/field/map", "/field/map", "zx.boss"),
    Page("/field/tips", "/field/tips", "zx.boss", ("TipPublicIn.content", "TipPublicIn.place")),
    Page("/field/tips/{tip_id}", "/field/tips/{tip}", "zx.boss",
         ("TipTakeIn.content", "TipTakeIn.place", "TipTakeIn.tipster_name",
          "TipTakeIn.tipster_phone", "OutcomeIn.note", "OutcomeIn.answer",
          "zhixing__field__schemas__AnswerIn.text", "DispatchIn.task",
          "UserUpdate.display_name")),
    Page("/field/tips/{tip_id}", "/field/tips/{public_tip}", "zx.boss",
         ("TipPublicIn.content", "TipPublicIn.place", "TipPublicIn.tipster_name",
          "TipPublicIn.tipster_phone", "TipInformationIn.text")),
    Page("/field/dispatches", "/field/dispatches", "zx.boss",
         ("DispatchIn.task", "DispatchIn.place")),
    Page("/field/dispatches/new", "/field/dispatches/new?tip_id={tip}", "zx.boss",
         ("TipTakeIn.content", "TipTakeIn.place")),
    Page("/field/dispatches/new", "/field/dispatches/new?request_id={request}", "zx.boss",
         ("RequestIn.subject#done", "RequestIn.place#done")),
    Page("/field/dispatches/nearest", "/field/dispatches/nearest?lon=108.3&lat=22.8",
         "zx.boss"),
    Page("/field/dispatches/{dispatch_id}", "/field/dispatches/{dispatch}", "zx.boss",
         ("DispatchIn.task", "DispatchIn.place", "MoveIn.note", "UserUpdate.display_name",
          "filename#dispatch")),
    Page("/tips/new", "/tips/new", None,  # with the published reward offers
         ("PartyIn.name#debtor", "PartyIn.name#debtor2")),
    Page("/tips/follow", "/tips/follow", None),
)


def url_of(w: World, template: str) -> str:
    values = {**{k: str(v) for k, v in w.ids.items()}, "survey": w.survey_code,
              "debtor_name": w.text.texts["PartyIn.name#debtor"]}
    return re.sub(r"\{(\w+)\}", lambda m: values[m.group(1)], template)


@pytest.mark.parametrize("page", PAGES, ids=[f"{p.url}@{p.user}" for p in PAGES])
def test_page_escapes_every_field(world: World, page: Page) -> None:
    w = world
    if page.user:
        w.as_user(page.user)
    else:
        w.client.cookies.clear()
    resp = w.client.get(url_of(w, page.url))
    assert resp.status_code == 200, resp.text[:500]
    assert resp.headers["content-type"].startswith("text/html")
    # The second line of defence: no inline script runs, whatever a page lets through.
    csp = resp.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp
    assert_escaped(w, resp.text, page.url)
    missing = set(page.shows) - shown(w, resp.text)
    assert not missing, f"{page.url} does not show (escaped): {sorted(missing)}"


# --- live streams and data for scripts ---------------------------------------------------------


@dataclass(frozen=True)
class Stream:
    route: str
    url: str
    user: str
    html: bool  # messages of HTML (htmx swaps them in) or of JSON (scripts read them)
    shows: tuple[str, ...] = ()


STREAMS = (
    Stream("/command/stream", "/command/stream", "zx.boss", True, DESK),
    Stream("/command/requests/{request_id}/stream", "/command/requests/{request}/stream",
           "zx.boss", True, ("RequestIn.subject#done", "RequestIn.details#done",
                             "ResultIn.summary")),
    Stream("/cases/{case_id}/inquiries/{inquiry_id}/stream",
           "/cases/{case}/inquiries/{inquiry}/stream?since=1", "zx.boss", True, UNIT_ANSWERS),
    Stream("/screen/stream", "/screen/stream?after=0", "zx.boss", False),
    Stream("/field/map/stream", "/field/map/stream", "zx.boss", False),
    Stream("/command/calls/{call_id}/stream", "/command/calls/{call}/stream", "zx.nanning",
           False),
)
STREAM_WAIT_SECONDS = 20.0  # a stream sends something (a heartbeat at least) every 15 s


def sse_data(body: str) -> list[str]:
    """The data of each complete message of an event stream."""
    messages = []
    for chunk in body.split("\n\n")[:-1]:
        lines = [line[len("data: "):] for line in chunk.split("\n") if line.startswith("data: ")]
        if lines:
            messages.append("\n".join(lines))
    return messages


@pytest.mark.parametrize("stream", STREAMS, ids=[s.url for s in STREAMS])
def test_stream_messages_escape_every_field(world: World, stream: Stream) -> None:
    """The first messages of each live stream, read as they come (the test client cancels
    the endless stream when the test leaves it)."""
    w = world
    w.as_user(stream.user)
    body = ""
    with w.client.stream("GET", url_of(w, stream.url)) as resp:
        assert resp.status_code == 200
        assert resp.headers["content-type"].startswith("text/event-stream")
        deadline = time.monotonic() + STREAM_WAIT_SECONDS
        for chunk in resp.iter_text():
            body += chunk
            enough = set(stream.shows) <= shown(w, body) if stream.html else sse_data(body)
            if enough or time.monotonic() > deadline:
                break
    data = sse_data(body)
    assert data, f"{stream.url} sent no message"
    if stream.html:
        assert_escaped(w, body, stream.url)
        missing = set(stream.shows) - shown(w, body)
        assert not missing, f"{stream.url} does not show (escaped): {sorted(missing)}"
    else:  # data for a script, which must put it in the page as text (test_browser below)
        for message in data:
            json.loads(message)


def test_data_for_scripts_is_json(world: World) -> None:
    """What the big screen and the map draw: JSON (never a page), the text verbatim (the
    scripts put it in as text: test_no_hostile_script_runs_in_a_browser)."""
    w = world
    w.as_user("zx.boss")
    texts: set[str] = set()
    for url in ("/screen/data", "/field/map/data"):
        resp = w.client.get(url)
        assert resp.status_code == 200 and resp.headers["content-type"] == "application/json"
        texts |= set(leaves(resp.json()))
    assert w.text.texts["DispatchIn.task"] in texts


# --- input a page echoes -----------------------------------------------------------------------


def _csrf(html: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert found, "no CSRF field on the page"
    return found.group(1)


ECHO = hostile("zx900", 32)  # fits every echoed field (the shortest takes 32 characters)


# (user, path, query, whether the page shows the value back); refusals (422, 404) included.
ECHOING_GETS: tuple[tuple[str | None, str, dict[str, str], bool], ...] = (
    ("zx.boss", "/cases", {"q": ECHO}, True), ("zx.boss", "/cases", {"court": ECHO}, False),
    ("zx.boss", "/cases/queue", {"q": ECHO}, False),
    ("zx.boss", "/field/tips", {"q": ECHO}, True),
    ("zx.boss", "/field/tips", {"status": ECHO}, True),
    ("zx.boss", "/field/dispatches", {"q": ECHO}, True),
    ("zx.boss", "/field/dispatches/new", {"tip_id": ECHO}, False),
    ("zx.boss", "/field/dispatches/nearest", {"lon": ECHO, "lat": "1"}, False),
    ("zx.boss", "/courts", {"q": ECHO}, True), ("zx.boss", "/audit", {"action": ECHO}, True),
    ("zx.boss", "/command/calls/new", {"to": ECHO}, False),
    ("zx.boss", "/screen", {"court": ECHO}, False),
    ("zx.boss", "/indicators", {"court": ECHO}, False),
    (None, "/login", {"next": "/" + ECHO}, True), (None, "/dishonest", {"name": ECHO}, True),
    (None, "/dishonest", {"name": "某某", "id_number": ECHO}, True),
    (None, "/survey/" + hostile("zx901", 40, slashless=True), {}, False),  # one path segment
)


def test_echoed_input_is_escaped(world: World) -> None:
    """Query strings and forms a page shows back (filters, refused forms, look-ups)."""
    w, client = world, world.client
    x = ECHO
    for user, path, query, echoes in ECHOING_GETS:
        if user:
            w.as_user(user)
        else:
            client.cookies.clear()
        resp = client.get(path, params=query)
        assert resp.status_code < 500, (path, query, resp.text[:300])
        if resp.headers["content-type"] == "application/json":  # a refusal as data, not a page
            assert resp.status_code in (404, 422) and not echoes, (path, query)
            continue
        assert_escaped(w, resp.text, f"{path} {query}")
        assert (str(escape(x)) in resp.text) == echoes, (path, query)
    client.cookies.clear()
    login_page = client.get("/login")
    refused = client.post("/login", data={"username": x, "password": x, "next": f"/{x}",
                                          "csrf_token": _csrf(login_page.text)})
    assert refused.status_code == 401
    assert_escaped(w, refused.text, "POST /login")
    lookup = client.post("/lookup", data={"case_number": x, "query_code": x})
    assert lookup.status_code == 404
    assert_escaped(w, lookup.text, "POST /lookup")
    assert str(escape(x)) in lookup.text  # the number asked about is shown back
    form = client.get("/tips/new")
    fields = {"content": x, "place": x, "court_code": "桂9999", "case_number": x,
              "query_code": x, "tipster_name": x, "tipster_phone": x, "relation": "other"}
    tip = client.post("/tips/new", data={**fields, "csrf_token": _csrf(form.text)})
    assert tip.status_code == 404, tip.text[:300]  # no case with that number and code
    assert_escaped(w, tip.text, "POST /tips/new")
    assert str(escape(x)) in tip.text  # the refused form comes back filled in
    follow = client.get("/tips/follow")
    unknown = client.post("/tips/follow", data={"code": x, "csrf_token": _csrf(follow.text)})
    assert unknown.status_code == 404
    assert_escaped(w, unknown.text, "POST /tips/follow")
    answered = client.post("/tips/follow", data={"code": w.follow_codes["desk"],
                                                 "csrf_token": _csrf(follow.text)})
    assert answered.status_code == 200
    assert_escaped(w, answered.text, "POST /tips/follow")
    missing = {"OutcomeIn.answer", "zhixing__field__schemas__AnswerIn.text"} - shown(
        w, answered.text)
    assert not missing, f"the tipster's page does not show {sorted(missing)}"
    survey = client.post(f"/survey/{w.survey_code}", data={"score": "3", "comment": x})
    assert survey.status_code == 200 and "survey-thanks" in survey.text


# --- storage and the JSON API ------------------------------------------------------------------


JSON_READS = (
    ("admin", "/api/v1/users?limit=200"),
    ("zx.boss", "/api/v1/cases/{case}"),
    ("zx.boss", "/api/v1/cases/{case}/events?limit=200"),
    ("zx.boss", "/api/v1/cases/{closed_case}/events?limit=200"),
    ("zx.boss", "/api/v1/cases/{resumed_case}/events?limit=200"),
    ("zx.boss", "/api/v1/cases/{rejected_case}"),
    ("zx.boss", "/api/v1/cases/{case}/listings"),
    ("zx.boss", "/api/v1/cases/{closed_case}/listings"),
    ("zx.boss", "/api/v1/listings/{listing}/versions"),
    ("zx.boss", "/api/v1/listings/{listing}/corrections"),
    ("zx.boss", "/api/v1/cases/{case}/restrictions"),
    ("zx.boss", "/api/v1/cases/{case}/inquiries/{inquiry}"),
    ("zx.boss", "/api/v1/cases/{case}/orders"),
    ("zx.boss", "/api/v1/command/requests/{request}"),
    ("zx.boss", "/api/v1/command/requests/{request}/timeline?limit=200"),
    ("zx.boss", "/api/v1/command/requests/{request2}"),
    ("zx.boss", "/api/v1/command/requests/{request3}"),
    ("zx.nanning", "/api/v1/command/roll-calls/{roll_call}"),
    ("zx.boss", "/api/v1/command/handovers/{handover}"),
    ("admin", "/api/v1/command/shifts?court=桂0103"),
    ("admin", "/api/v1/command/shifts?court=桂01"),
    ("zx.boss", "/api/v1/field/tips/{tip}"),
    ("zx.boss", "/api/v1/field/tips/{public_tip}"),
    ("zx.boss", "/api/v1/field/dispatches/{dispatch}"),
    ("zx.boss", "/api/v1/field/incidents?open_only=false"),
    ("admin", "/api/v1/partners/{partner}"),
    ("admin", "/api/v1/units"),
    ("zx.boss", "/api/v1/audit?limit=200"),
)
# Kept, but no read of the API returns them (only the database has them).
NOT_IN_API = {
    "AcknowledgeIn.note": "an event of the duty board",
    "Body_cases-upload_document.note": "DocumentRead has no note",
    "PartyIn.address": "PartyRead has no address", "PartyIn.phone": "nor a phone",
    "PartyIn.legal_representative": "nor the representative (the notices show it)",
    "zhixing__field__schemas__DecisionIn.note": "RewardRead has no decision note",
}


def leaves(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for v in value.values():
            yield from leaves(v)
    elif isinstance(value, list):
        for v in value:
            yield from leaves(v)


def database_text() -> str:
    """Every value of every table, as text (JSON values as their JSON)."""
    parts: list[str] = []
    with transaction() as session:
        for table in Base.metadata.sorted_tables:
            for row in session.execute(table.select()):
                for value in row:
                    if isinstance(value, str):
                        parts.append(value)
                    elif isinstance(value, dict | list):
                        parts.append(json.dumps(value))
    return "\n".join(parts)


def test_text_is_stored_and_returned_verbatim(world: World) -> None:
    """Escaping is the template's job: the store and the JSON API keep the text as typed."""
    w = world
    returned: list[str] = []
    for user, url in JSON_READS:
        resp = w.client.get(url_of(w, url), headers=w.auth(user))
        assert resp.status_code == 200, (url, resp.text[:300])
        returned += leaves(resp.json())
    for code in w.follow_codes.values():
        resp = w.client.post("/api/v1/public/tips/status", json={"code": code})
        assert resp.status_code == 200, resp.text
        returned += leaves(resp.json())
    api = "\n".join(returned)
    assert "&lt;" not in api and "&#34;" not in api and "&#39;" not in api  # not escaped
    not_returned = {name.split("#")[0] for name, value in w.text.texts.items()
                    if value not in api}
    assert not_returned == set(NOT_IN_API), sorted(not_returned ^ set(NOT_IN_API))
    stored = database_text()
    lost = [name for name, value in w.text.texts.items()
            if value not in stored and json.dumps(value)[1:-1] not in stored]
    assert not lost, f"not stored verbatim: {lost}"


def test_sql_text_changed_nothing(world: World) -> None:
    """The SQL in every field was data: every table still holds what the world made; searches
    for injections and wildcards find nothing, and the exact hostile name finds its case."""
    w, boss = world, world.auth("zx.boss")
    assert counts() == w.counts
    nothing = ("zz' OR '1'='1", "zz' OR 1=1 --", "%%", "__")  # no record has these
    for q in (SQL, *nothing):
        found = w.client.get("/api/v1/cases", params={"q": q}, headers=boss)
        assert found.status_code == 200 and found.json()["items"] == [], q
        listed = w.client.get("/api/v1/public/dishonest", params={"name": q})
        assert listed.status_code == 200 and listed.json()["entries"] == [], q
    name = w.text.texts["PartyIn.name#debtor"]
    [case] = w.client.get("/api/v1/cases", params={"q": name}, headers=boss).json()["items"]
    assert case["id"] == w.ids["case"] and name in case["debtors"]
    public = w.client.get("/api/v1/public/dishonest", params={"name": name}).json()
    assert [e["name"] for e in public["entries"]] == [name]
    w.as_user("zx.boss")
    for q in nothing:
        for desk, row in (("/field/tips", "data-tip-id"), ("/field/dispatches",
                                                             "data-dispatch-id")):
            page = w.client.get(desk, params={"q": q})
            assert page.status_code == 200 and f'{row}="' not in page.text, (desk, q)
    users = w.client.get("/api/v1/users", params={"q": "zz' OR '1'='1"}, headers=boss)
    assert users.status_code == 200 and users.json()["items"] == []


# --- spreadsheets ------------------------------------------------------------------------------


def _cells(data: bytes) -> list[Any]:
    book = load_workbook(io.BytesIO(data))
    return [cell for sheet in book.worksheets for row in sheet.iter_rows() for cell in row]


def test_exports_keep_text_as_text(world: World) -> None:
    """A name a spreadsheet would take for a formula (=, +, -, @) stays text in the export."""
    w, boss = world, world.auth("zx.boss")
    resp = w.client.get("/api/v1/cases/export.xlsx", headers=boss)
    assert resp.status_code == 200
    cells = _cells(resp.content)
    formulas = [c.coordinate for c in cells if c.data_type == "f"]
    assert not formulas, f"formula cells: {formulas}"
    values = {str(c.value) for c in cells if c.value is not None}
    for name in (*FORMULAS.values(), w.text.texts["PartyIn.name#debtor"]):
        assert any(name in v for v in values), name
    report = w.client.get("/api/v1/indicators/report.xlsx", headers=boss)
    assert report.status_code == 200
    assert not [c.coordinate for c in _cells(report.content) if c.data_type == "f"]


# --- what the checks cover ---------------------------------------------------------------------

# Free-text fields of the API's request bodies that the world does not fill, and why.
LOOKED_UP = "a code or name looked up in reference data or among users (unknown: 422)"
KEY = "a look-up key, never stored; the pages that echo it: test_echoed_input_is_escaped"
EXEMPT = {
    "TokenCreate.username": "a credential", "TokenCreate.password": "a credential",
    "TokenCreate.name": "a token's label, which no page shows",
    "UserCreate.username": "lower-case letters, digits, '.', '_' and '-' only",
    "UserCreate.password": "a credential", "UserUpdate.password": "a credential",
    "UserCreate.roles": "role names from a fixed list", "UserUpdate.roles": "role names",
    "RestrictionIn.categories": "behaviours from a fixed list",
    "PartnerUpdate.activities": "activity names from a fixed list",
    "ScreenIn.activities": "activity names (a partner's screening query)",
    "UserCreate.court_code": LOOKED_UP, "CaseCreate.court_code": LOOKED_UP,
    "CaseCreate.officer_username": LOOKED_UP, "CaseCreate.approver_username": LOOKED_UP,
    "AssignIn.officer_username": LOOKED_UP, "MemberIn.username": LOOKED_UP,
    "ShiftIn.court_code": LOOKED_UP, "RosterIn.court_code": LOOKED_UP,
    "RequestIn.place_court_code": LOOKED_UP, "RequestIn.to_court_code": LOOKED_UP,
    "ForwardIn.to_court_code": LOOKED_UP, "CallIn.to_court_code": LOOKED_UP,
    "TipTakeIn.court_code": LOOKED_UP, "TipPublicIn.court_code": LOOKED_UP,
    "TriageIn.center_code": LOOKED_UP, "PositionIn.resource": LOOKED_UP,
    "CaseCreate.case_number": "parsed as a case number (anything else: 422)",
    "PartyIn.id_number": "an identity number with its check digit",
    "ResponsiblePersonIn.role": "one of four roles", "FactIn.kind": "one of the fact kinds",
    "ExceptionIn.activities": "activity names from a fixed list",
    "HandoverIn.resolved": "names items of the previous handover; nothing new is stored",
    "ProgressQuery.case_number": KEY, "ProgressQuery.query_code": KEY,
    "TipTakeIn.case_number": KEY, "TipTakeIn.query_code": KEY,
    "TipPublicIn.case_number": KEY, "TipPublicIn.query_code": KEY,
    "TipCodeIn.code": KEY, "TipInformationIn.code": KEY,
    "Body_cases-upload_document.file": "the file; its name is filled (filename#case)",
    "Body_command-add_evidence.file": "the file; its name is filled (filename#evidence)",
    "Body_field-upload_evidence.file": "the file; its name is filled (filename#dispatch)",
    "CallIn.sdp": "WebRTC signalling, relayed to the other browser as JSON, never shown",
    "CallAnswerIn.sdp": "WebRTC signalling", "CandidateIn.candidate": "WebRTC signalling",
    "CandidateIn.sdpMid": "WebRTC signalling", "CandidateIn.usernameFragment": "WebRTC",
    "PersonIn.ref": "a partner's screening query: answered in JSON, never stored or shown",
    "PersonIn.id_number": "a partner's screening query", "PersonIn.name": "a screening query",
    "DepositAccount.currency": "an ISO 4217 code", "Event.currency": "an ISO 4217 code",
    "BusinessRole.credit_code": "a credit code with its check character",
}


def _is_text(prop: dict[str, Any]) -> bool:
    for alt in prop.get("anyOf", [prop]):
        if alt.get("type") == "array":
            alt = alt.get("items", {})
        if alt.get("type") == "string" and not {"enum", "const", "pattern", "format"} & set(alt):
            return True
    return False


def _refs(schema: dict[str, Any]) -> Iterator[str]:
    if "$ref" in schema:
        yield schema["$ref"].rsplit("/", 1)[-1]
    for key in ("anyOf", "allOf", "oneOf"):
        for alt in schema.get(key, []):
            yield from _refs(alt)
    if "items" in schema:
        yield from _refs(schema["items"])


def text_fields() -> set[str]:
    """``Schema.field`` for every free-text field of every request body of the API."""
    spec = create_app(start_worker=False).openapi()
    schemas = spec["components"]["schemas"]
    seen: set[str] = set()
    fields: set[str] = set()

    def walk(name: str) -> None:
        if name in seen:
            return
        seen.add(name)
        for prop_name, prop in schemas[name].get("properties", {}).items():
            if _is_text(prop):
                fields.add(f"{name}.{prop_name}")
            for ref in _refs(prop):
                walk(ref)

    for item in spec["paths"].values():
        for method, operation in item.items():
            if method in ("post", "put", "patch"):
                for content in operation.get("requestBody", {}).get("content", {}).values():
                    for ref in _refs(content.get("schema", {})):
                        walk(ref)
    return fields


def test_every_text_field_is_covered(world: World) -> None:
    """A new free-text field fails this until the world fills it (or EXEMPT says why not)."""
    fields = text_fields()
    assert len(fields) > 100, "the enumeration itself is broken"
    filled = {name for name in world.text.fields() if "." in name}
    assert filled <= fields, f"filled, but not in the API: {sorted(filled - fields)}"
    assert not filled & set(EXEMPT)
    assert fields - filled == set(EXEMPT), sorted((fields - filled) ^ set(EXEMPT))


# Routes that serve no page with data.
NOT_PAGES = {"/docs/oauth2-redirect": "Swagger UI's sign-in helper",
             "/healthz": "operations", "/readyz": "operations", "/metrics": "operations",
             "/favicon.ico": "an icon", "/lang/{code}": "a redirect back to a local path"}


def _routes(routes: list[Any]) -> Iterator[Any]:
    for route in routes:
        if hasattr(route, "original_router"):
            yield from _routes(route.original_router.routes)
        else:
            yield route


def test_every_console_route_is_read() -> None:
    """A new page or stream fails this until PAGES, STREAMS or NOT_PAGES names it."""
    app = create_app(start_worker=False)
    routes = {r.path for r in _routes(app.router.routes)
              if "GET" in (getattr(r, "methods", None) or set())
              and not r.path.startswith("/api/")}
    assert "/cases/{case_id}" in routes, "the enumeration itself is broken"
    read = ({p.route for p in PAGES} | {s.route for s in STREAMS} | set(NOT_PAGES)
            | {"/screen/data", "/field/map/data"})  # test_data_for_scripts_is_json
    assert routes == read, sorted(routes ^ read)


# --- in a browser ------------------------------------------------------------------------------


@pytest.mark.browser
def test_no_hostile_script_runs_in_a_browser(world: World, test_db: ScratchDatabase) -> None:
    """Chromium reads the pages (their scripts, live swaps and the map's tooltips included):
    no hostile ``alert`` ever opens a dialog, and no hostile image is made."""
    from playwright.sync_api import Dialog

    from tests.support.browser import chromium, console_page
    from tests.support.server import running_server

    w = world
    dialogs: list[str] = []

    def opened(dialog: Dialog) -> None:
        dialogs.append(dialog.message)
        dialog.dismiss()

    with running_server(test_db.url) as base, chromium() as browser:
        page, _errors = console_page(browser, base, "zx.boss", PASSWORD, width=1440,
                                     height=900, next_path="/field/map")
        page.on("dialog", opened)
        page.locator("[data-testid=dispatches] li").first.wait_for(timeout=10_000)
        # The map's tooltip (an ECharts formatter returns HTML) over the dispatch.
        tip = page.evaluate("""() => {
            const chart = echarts.getInstanceByDom(document.getElementById("fieldmap"));
            const series = chart.getOption().series.findIndex(s => s.id === "dispatches");
            chart.dispatchAction({type: "showTip", seriesIndex: series, dataIndex: 0});
            const box = [...document.querySelectorAll("#fieldmap div")]
                .find(d => d.textContent.includes("zx"));
            return box ? box.textContent : "";
        }""")
        assert head(w.text.texts["DispatchIn.task"]) in tip  # shown as text
        page.wait_for_timeout(300)
        assert page.evaluate("document.querySelectorAll('img[src=x]').length") == 0
        for p in PAGES:
            if p.user in ("zx.boss", None):
                page.goto(base + url_of(w, p.url))
                page.wait_for_timeout(200)  # scripts and the first live messages
                made = page.evaluate("document.querySelectorAll('img[src=x]').length")
                assert made == 0, f"{p.url}: a hostile image was made"
        assert dialogs == [], dialogs
