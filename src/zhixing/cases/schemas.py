"""API shapes of the cases domain. Money is integer fen; floats are refused."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictInt

from zhixing.courts.schemas import StrictModel

Fen = StrictInt


class ResponsiblePersonIn(StrictModel):
    role: str = Field(max_length=32, description="legal_representative, principal, "
                      "directly_responsible or actual_controller")
    person: PartyIn


class PartyIn(StrictModel):
    kind: Literal["person", "organisation"]
    name: str = Field(min_length=1, max_length=128)
    id_kind: Literal["ric", "ric15", "uscc", "org_code", "other"]
    id_number: str = Field(min_length=1, max_length=32)
    id_region_confirmed: bool = Field(
        default=False, description="record a resident ID whose region code was not in use in "
        "the birth year (as printed on the title)")
    address: str | None = Field(default=None, max_length=255)
    phone: str | None = Field(default=None, max_length=32)
    legal_representative: str | None = Field(default=None, max_length=64)
    responsible_persons: list[ResponsiblePersonIn] = Field(default_factory=list, max_length=10)


ResponsiblePersonIn.model_rebuild()


class CaseCreate(StrictModel):
    court_code: str | None = Field(default=None, max_length=16,
                                   description="defaults to your court")
    case_type: Literal["执", "执恢", "执保", "执异", "执复", "执监", "执协"] = "执"
    case_number: str | None = Field(default=None, max_length=48, description=(
        "only when entering an existing case; otherwise the court's register assigns it"))
    title_issuer: str = Field(min_length=1, max_length=128)
    title_document_number: str = Field(min_length=1, max_length=64)
    title_date: date
    title_effective_date: date
    principal_fen: Fen = Field(ge=0, le=10**15)
    interest_fen: Fen = Field(default=0, ge=0, le=10**15)
    costs_fen: Fen = Field(default=0, ge=0, le=10**15)
    filed_on: date
    officer_username: str | None = Field(default=None, max_length=64)
    approver_username: str | None = Field(default=None, max_length=64)
    applicants: list[PartyIn] = Field(min_length=1, max_length=50)
    debtors: list[PartyIn] = Field(min_length=1, max_length=50)


class TransitionIn(StrictModel):
    action: Literal["advance", "suspend", "resume", "conclude"]
    to: Literal["notice_served", "investigating", "controlling", "disposing",
                "disbursing"] | None = None
    conclusion: Literal["performed", "closed_for_now", "terminated", "not_enforced",
                        "rejected", "closed_after_transfer"] | None = None
    ground: str | None = Field(default=None, max_length=64)
    on: date | None = None
    note: str | None = Field(default=None, max_length=255)


class FactIn(StrictModel):
    kind: str = Field(max_length=32)
    on: date
    note: str | None = Field(default=None, max_length=255)


class ExtensionIn(StrictModel):
    months: StrictInt = Field(ge=1, le=12)
    reason: str = Field(min_length=1, max_length=255)


class PauseIn(StrictModel):
    reason: Literal["audit", "valuation", "auction", "settlement"]
    on: date


class NoteIn(StrictModel):
    text: str = Field(min_length=1, max_length=2000)


class AssignIn(StrictModel):
    officer_username: str = Field(max_length=64)


class AssetIn(StrictModel):
    debtor_id: StrictInt
    kind: Literal["deposit", "real_estate", "vehicle", "equity", "securities", "other"]
    description: str = Field(min_length=1, max_length=255)
    identifier: str | None = Field(default=None, max_length=64)
    holder: str | None = Field(default=None, max_length=128)
    value_fen: Fen | None = Field(default=None, ge=0, le=10**15)
    provenance: Literal["tip", "manual"] = "manual"


class ControlIn(StrictModel):
    action: Literal["freeze", "seal", "seize", "renew", "release"]
    on: date
    amount_fen: Fen | None = Field(default=None, ge=1, le=10**15)
    days: StrictInt | None = Field(default=None, ge=1, le=1095)


class MoneyIn(StrictModel):
    kind: Literal["recovered", "disbursed"]
    amount_fen: Fen = Field(ge=1, le=10**15)
    on: date
    asset_id: StrictInt | None = None
    party_id: StrictInt | None = None
    note: str | None = Field(default=None, max_length=255)


class PartyRead(BaseModel):
    id: int
    kind: str
    name: str
    id_kind: str | None
    id_number: str | None
    sex: str | None
    birth_date: date | None
    role: str
    responsible_persons: list[dict[str, Any]] = Field(default_factory=list)


class DeadlineRead(BaseModel):
    kind: str
    due_on: date
    done_on: date | None
    status: str


class ClockRead(BaseModel):
    period_deadline: date | None
    paused: bool
    paused_days: int
    extension_months: int
    deadlines: list[DeadlineRead]
    warnings: list[DeadlineRead]


class AssetRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    debtor_id: int
    kind: str
    description: str
    identifier: str | None
    holder: str | None
    value_fen: int | None
    provenance: str
    control_state: str
    control_amount_fen: int | None
    control_started_on: date | None
    control_expires_on: date | None


class LedgerRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    kind: str
    amount_fen: int
    on: date
    asset_id: int | None
    party_id: int | None
    note: str | None


class EventRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    occurred_at: datetime
    kind: str
    actor_name: str | None
    summary: str
    data: dict[str, Any]


class DocumentRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    filename: str
    content_type: str
    size_bytes: int
    sha256: str
    uploaded_at: datetime


class CaseSummary(BaseModel):
    id: int
    case_number: str
    court_code: str
    case_type: str
    state: str
    conclusion: str | None
    filed_on: date
    officer: str | None
    applicants: list[str]
    debtors: list[str]
    applied_fen: int
    outstanding_fen: int
    period_deadline: date | None
    next_due_on: date | None
    next_due_kind: str | None


class CaseList(BaseModel):
    items: list[CaseSummary]
    next_cursor: str | None


class CaseDetail(CaseSummary):
    title_issuer: str
    title_document_number: str
    title_date: date
    title_effective_date: date
    principal_fen: int
    interest_fen: int
    costs_fen: int
    recovered_fen: int
    disbursed_fen: int
    approver: str | None
    concluded_on: date | None
    conclusion_ground: str | None
    resumed_from: str | None
    parties: list[PartyRead]
    facts: dict[str, date]
    clock: ClockRead
    assets: list[AssetRead]
    ledger: list[LedgerRead]
    documents: list[DocumentRead]
    allowed_actions: list[str]


class EventList(BaseModel):
    items: list[EventRead]
    next_cursor: str | None


class WorkQueue(BaseModel):
    overdue: list[CaseSummary]
    due_soon: list[CaseSummary]
    freezes_expiring: list[dict[str, Any]]
    my_open_cases: list[CaseSummary]
