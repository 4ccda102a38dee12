"""API shapes of field work. Money is integer fen; coordinates are WGS-84 degrees."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, StrictInt

from zhixing.courts.schemas import StrictModel

Lon = Field(ge=-180, le=180)
Lat = Field(ge=-90, le=90)
Relation = Literal["applicant", "applicant_agent", "other", "unknown"]


class TipPublicIn(StrictModel):
    content: str = Field(min_length=1, max_length=4000)
    place: str | None = Field(default=None, max_length=255)
    lon: float | None = None
    lat: float | None = None
    court_code: str | None = Field(default=None, max_length=16,
                                   description="the court whose area has the asset or person")
    case_number: str | None = Field(default=None, max_length=48)
    query_code: str | None = Field(default=None, max_length=32)
    tipster_name: str | None = Field(default=None, max_length=64)
    tipster_phone: str | None = Field(default=None, max_length=32)
    relation: Relation = "unknown"


class TipReceipt(BaseModel):
    follow_code: str = Field(description="shown once: the tipster's key to the tip")
    status: str
    due_at: datetime


class TipCodeIn(StrictModel):
    code: str = Field(min_length=1, max_length=32)


class TipInformationIn(TipCodeIn):
    text: str = Field(min_length=1, max_length=4000)


class TipMessageRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    at: datetime
    from_tipster: bool
    text: str


class TipPublicStatus(BaseModel):
    status: str
    submitted_at: datetime
    checked: bool
    answer: str | None
    messages: list[TipMessageRead]


class TipTakeIn(TipPublicIn):
    channel: Literal["phone", "field"] = "phone"
    case_id: StrictInt | None = Field(default=None, ge=1, le=2**63 - 1)
    urgent: bool = False


class Tipster(BaseModel):
    name: str | None
    phone: str | None
    relation: str


class TipRead(BaseModel):
    id: int
    channel: str
    submitted_at: datetime
    content: str
    place: str | None
    lon: float | None
    lat: float | None
    court_code: str
    center_code: str
    case_id: int | None
    debtor_party_id: int | None
    urgent: bool
    status: str
    due_at: datetime
    overdue: bool
    checked_at: datetime | None
    outcome: str | None
    outcome_note: str | None
    answer: str | None
    merged_into_id: int | None
    anonymous: bool
    tipster: Tipster | None = Field(
        description="only for the handling court's own roles; null otherwise")
    messages: list[TipMessageRead] = []


class TipTaken(TipRead):
    follow_code: str


class TipList(BaseModel):
    items: list[TipRead]


class TriageIn(StrictModel):
    case_id: StrictInt | None = Field(default=None, ge=1, le=2**63 - 1)
    debtor_party_id: StrictInt | None = Field(default=None, ge=1, le=2**63 - 1)
    urgent: bool | None = None
    center_code: str | None = Field(default=None, max_length=16)
    relation: Relation | None = None


class MergeIn(StrictModel):
    into_id: StrictInt = Field(ge=1, le=2**63 - 1)


class OutcomeIn(StrictModel):
    outcome: Literal["confirmed", "partly", "unfounded"]
    note: str = Field(min_length=1, max_length=2000)
    answer: str | None = Field(default=None, max_length=2000)


class AnswerIn(StrictModel):
    text: str = Field(min_length=1, max_length=2000)


class RewardRequestIn(StrictModel):
    applicant_party_id: StrictInt = Field(ge=1, le=2**63 - 1)
    amount_fen: StrictInt | None = Field(default=None, ge=1, le=10**15)
    percent_bp: StrictInt | None = Field(default=None, ge=1, le=10_000,
                                         description="basis points of the recovery")


class RankedTip(BaseModel):
    rank: int
    tip_id: int
    submitted_at: datetime
    eligible: bool
    reason: str | None


class AwardRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    tip_id: int
    amount_fen: int
    recovered_fen: int
    awarded_at: datetime


class RewardRead(BaseModel):
    id: int
    case_id: int
    applicant_party_id: int
    amount_fen: int | None
    percent_bp: int | None
    status: str
    requested_at: datetime
    decide_by: datetime
    decision_overdue: bool
    decided_at: datetime | None
    published_at: datetime | None
    ranking: list[RankedTip] = []
    award: AwardRead | None = None


class DecisionIn(StrictModel):
    approve: bool
    note: str | None = Field(default=None, max_length=2000)


class AwardIn(StrictModel):
    tip_id: StrictInt = Field(ge=1, le=2**63 - 1)


class PublicReward(BaseModel):
    case_number: str
    court: str
    debtors: list[str]
    amount_fen: int | None
    percent_bp: int | None
    published_at: datetime | None


class PublicRewardList(BaseModel):
    items: list[PublicReward]


class ResourceRead(BaseModel):
    id: int
    code: str
    kind: str
    court_code: str
    label: str
    status: str
    team_id: int | None
    lon: float | None
    lat: float | None
    position_at: datetime | None


class ResourceList(BaseModel):
    items: list[ResourceRead]


class ResourceStatusIn(StrictModel):
    status: Literal["available", "on_task", "off_duty"]


class PositionIn(StrictModel):
    resource: str = Field(min_length=1, max_length=32, description="the resource's code")
    at: datetime
    lon: float
    lat: float
    accuracy_m: float | None = Field(default=None, ge=0, le=100_000)


class PositionBatch(StrictModel):
    reports: list[PositionIn] = Field(min_length=1, max_length=200)


class PositionsStored(BaseModel):
    stored: int


class NearbyRead(BaseModel):
    id: int
    label: str
    court_id: int
    distance_km: float
    lon: float
    lat: float
    at: datetime


class NearbyList(BaseModel):
    items: list[NearbyRead]


class DispatchIn(StrictModel):
    task: str = Field(min_length=1, max_length=255)
    place: str = Field(min_length=1, max_length=255)
    lon: float
    lat: float
    team_id: StrictInt | None = Field(default=None, ge=1, le=2**31 - 1,
                                      description="omit for the nearest available team")
    vehicle_id: StrictInt | None = Field(default=None, ge=1, le=2**31 - 1)
    case_id: StrictInt | None = Field(default=None, ge=1, le=2**63 - 1)
    tip_id: StrictInt | None = Field(default=None, ge=1, le=2**63 - 1)
    request_id: StrictInt | None = Field(
        default=None, ge=1, le=2**63 - 1,
        description="an assistance request this center holds: steps and evidence go back "
                    "along it to the asking center (not together with case_id)")


class DispatchRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    court_id: int
    task: str
    place: str
    lon: float
    lat: float
    team_id: int
    vehicle_id: int | None
    case_id: int | None
    tip_id: int | None
    request_id: int | None
    status: str
    dispatched_at: datetime
    en_route_at: datetime | None
    on_scene_at: datetime | None
    done_at: datetime | None
    cancelled_at: datetime | None
    result: str | None


class DispatchList(BaseModel):
    items: list[DispatchRead]


class MoveIn(StrictModel):
    to: Literal["en_route", "on_scene", "done", "cancelled"]
    note: str | None = Field(default=None, max_length=2000)


class EvidenceRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    dispatch_id: int
    document_id: int | None = Field(description="the document on the task's case (or on the "
                                    "asking case of an assistance request)")
    request_evidence_id: int | None = Field(description="the evidence on the assistance "
                                            "request, for a dispatch on one")
    sha256: str
    uploaded_at: datetime


class SosIn(StrictModel):
    lon: float | None = None
    lat: float | None = None
    note: str | None = Field(default=None, max_length=500)


class IncidentRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    court_id: int
    kind: str
    team_id: int | None
    dispatch_id: int | None
    lon: float | None
    lat: float | None
    note: str | None
    status: str
    reported_at: datetime
    acknowledged_at: datetime | None
    resolved_at: datetime | None


class IncidentList(BaseModel):
    items: list[IncidentRead]


class ResolveIn(StrictModel):
    note: str | None = Field(default=None, max_length=2000)


class CenterFiguresRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    court_code: str
    court_name: str
    tips_received: int
    tips_checked: int
    tips_checked_late: int
    median_hours_to_check_tip: float | None
    dispatches: int
    dispatches_done: int
    median_minutes_to_complete_dispatch: float | None
    incidents: int
    incidents_resolved: int
    median_minutes_to_acknowledge_incident: float | None


class FiguresRead(BaseModel):
    court_code: str
    start: str
    end: str
    total: CenterFiguresRead
    centers: list[CenterFiguresRead]
