"""Tables of the command center's field work: tips and rewards, resources, dispatch orders,
positions and incidents.

Each lifecycle state has its own timestamp column, so time-in-state and the figures are plain
queries. Every table the live map follows carries an indexed ``updated_at``: the map's one poll
per process reads what changed since its last look.
"""

from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import BigInteger, Boolean, Float, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from zhixing.core.db import Base, EnumText, utcnow_column_default

BigId = BigInteger().with_variant(Integer, "sqlite")


class TipChannel(enum.StrEnum):
    WEB = "web"  # the public form
    PHONE = "phone"  # taken by the duty officer
    FIELD = "field"  # reported by a field team


class TipStatus(enum.StrEnum):
    RECEIVED = "received"
    TRIAGED = "triaged"
    CHECKED = "checked"
    MERGED = "merged"


class TipOutcome(enum.StrEnum):
    CONFIRMED = "confirmed"  # the lead was true: property or person found
    PARTLY = "partly"
    UNFOUNDED = "unfounded"


class TipsterRelation(enum.StrEnum):
    APPLICANT = "applicant"
    APPLICANT_AGENT = "applicant_agent"  # never rewarded
    OTHER = "other"
    UNKNOWN = "unknown"


class Tip(Base):
    """执行线索. The tipster's identity is confidential: only the handling court's roles see it."""

    __tablename__ = "field_tips"
    __table_args__ = (
        Index("ix_field_tips_court_status", "court_id", "status", "due_at"),
        Index("ix_field_tips_center_status", "center_court_id", "status"),
        Index("ix_field_tips_case", "case_id", "submitted_at"),
        Index("ix_field_tips_updated", "updated_at"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    # SHA-256 of the follow-up code given to the tipster once; the code itself is never stored.
    follow_code_hash: Mapped[str] = mapped_column(String(64), unique=True)
    channel: Mapped[TipChannel] = mapped_column(EnumText(TipChannel, 8))
    submitted_at: Mapped[datetime]
    content: Mapped[str] = mapped_column(Text)
    place: Mapped[str | None] = mapped_column(String(255))
    lon: Mapped[float | None] = mapped_column(Float)
    lat: Mapped[float | None] = mapped_column(Float)
    anonymous: Mapped[bool] = mapped_column(Boolean, default=True)
    tipster_name: Mapped[str | None] = mapped_column(String(64))
    tipster_phone: Mapped[str | None] = mapped_column(String(32))
    tipster_relation: Mapped[TipsterRelation] = mapped_column(EnumText(TipsterRelation, 16),
                                                              default=TipsterRelation.UNKNOWN)
    # The court handling the case, and the court whose center has the place (asset or person).
    court_id: Mapped[int] = mapped_column(ForeignKey("courts.id"))
    center_court_id: Mapped[int] = mapped_column(ForeignKey("courts.id"))
    case_id: Mapped[int | None] = mapped_column(ForeignKey("cases.id"))
    debtor_party_id: Mapped[int | None] = mapped_column(ForeignKey("parties.id"))
    urgent: Mapped[bool] = mapped_column(Boolean, default=False)
    status: Mapped[TipStatus] = mapped_column(EnumText(TipStatus, 12))
    due_at: Mapped[datetime]
    triaged_at: Mapped[datetime | None]
    checked_at: Mapped[datetime | None]
    outcome: Mapped[TipOutcome | None] = mapped_column(EnumText(TipOutcome, 12))
    outcome_note: Mapped[str | None] = mapped_column(Text)
    answer: Mapped[str | None] = mapped_column(Text)  # what the tipster reads
    merged_into_id: Mapped[int | None] = mapped_column(ForeignKey("field_tips.id"))
    created_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    updated_at: Mapped[datetime] = mapped_column(default=utcnow_column_default)


class TipMessage(Base):
    """More information from the tipster, or the court's answer, in order."""

    __tablename__ = "field_tip_messages"
    __table_args__ = (Index("ix_field_tip_messages_tip", "tip_id", "id"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    tip_id: Mapped[int] = mapped_column(ForeignKey("field_tips.id"))
    at: Mapped[datetime]
    from_tipster: Mapped[bool] = mapped_column(Boolean)
    text: Mapped[str] = mapped_column(Text)
    author_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))


class RewardStatus(enum.StrEnum):
    REQUESTED = "requested"
    PUBLISHED = "published"
    REFUSED = "refused"
    AWARDED = "awarded"


class RewardOffer(Base):
    """悬赏: the applicant asks, the court decides within 10 days and publishes. The reward is
    paid out of the applicant's recovery, to tipsters ranked by submission time."""

    __tablename__ = "field_reward_offers"
    __table_args__ = (Index("ix_field_reward_offers_case", "case_id"),
                      Index("ix_field_reward_offers_status", "status", "decide_by"))

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id"))
    court_id: Mapped[int] = mapped_column(ForeignKey("courts.id"))
    applicant_party_id: Mapped[int] = mapped_column(ForeignKey("parties.id"))
    amount_fen: Mapped[int | None] = mapped_column(BigInteger)
    percent_bp: Mapped[int | None] = mapped_column(Integer)  # basis points of the recovery
    requested_at: Mapped[datetime]
    decide_by: Mapped[datetime]
    status: Mapped[RewardStatus] = mapped_column(EnumText(RewardStatus, 12))
    decided_at: Mapped[datetime | None]
    decided_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    decision_note: Mapped[str | None] = mapped_column(Text)
    published_at: Mapped[datetime | None]
    created_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))


class RewardAward(Base):
    __tablename__ = "field_reward_awards"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    offer_id: Mapped[int] = mapped_column(ForeignKey("field_reward_offers.id"), unique=True)
    tip_id: Mapped[int] = mapped_column(ForeignKey("field_tips.id"))
    amount_fen: Mapped[int] = mapped_column(BigInteger)
    recovered_fen: Mapped[int] = mapped_column(BigInteger)
    awarded_at: Mapped[datetime]
    awarded_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))


class ResourceKind(enum.StrEnum):
    BAILIFF = "bailiff"  # 法警 (or an officer in the field)
    VEHICLE = "vehicle"  # 指挥车
    FIELD_DEVICE = "field_device"  # 单兵
    VEHICLE_SYSTEM = "vehicle_system"  # 车载系统


class ResourceStatus(enum.StrEnum):
    AVAILABLE = "available"
    ON_TASK = "on_task"
    OFF_DUTY = "off_duty"


class FieldTeam(Base):
    """A field team of a command center: the unit a dispatch order goes to."""

    __tablename__ = "field_teams"
    __table_args__ = (Index("ix_field_teams_court_status", "court_id", "status"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    court_id: Mapped[int] = mapped_column(ForeignKey("courts.id"))  # the center's court
    name: Mapped[str] = mapped_column(String(64))
    status: Mapped[ResourceStatus] = mapped_column(EnumText(ResourceStatus, 12))
    updated_at: Mapped[datetime] = mapped_column(default=utcnow_column_default)


class FieldResource(Base):
    """A person, vehicle or device assigned to a command center (and maybe to a team)."""

    __tablename__ = "field_resources"
    __table_args__ = (Index("ix_field_resources_court_kind", "court_id", "kind", "status"),
                      Index("ix_field_resources_team", "team_id"),
                      Index("ix_field_resources_user", "user_id"),
                      Index("ix_field_resources_updated", "updated_at"))

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(32), unique=True)  # plate, serial, badge
    kind: Mapped[ResourceKind] = mapped_column(EnumText(ResourceKind, 16))
    court_id: Mapped[int] = mapped_column(ForeignKey("courts.id"))
    label: Mapped[str] = mapped_column(String(64))
    status: Mapped[ResourceStatus] = mapped_column(EnumText(ResourceStatus, 12))
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    team_id: Mapped[int | None] = mapped_column(ForeignKey("field_teams.id"))
    # A vehicle system is mounted in a vehicle; a field device is carried by a bailiff.
    carrier_id: Mapped[int | None] = mapped_column(ForeignKey("field_resources.id"))
    updated_at: Mapped[datetime] = mapped_column(default=utcnow_column_default)


class LatestPosition(Base):
    """The last plausible position of each reporting resource: one small row, updated."""

    __tablename__ = "field_positions_latest"
    __table_args__ = (Index("ix_field_positions_latest_lat_lon", "lat", "lon"),
                      Index("ix_field_positions_latest_received", "received_at"))

    resource_id: Mapped[int] = mapped_column(ForeignKey("field_resources.id"), primary_key=True)
    at: Mapped[datetime]
    lon: Mapped[float] = mapped_column(Float)
    lat: Mapped[float] = mapped_column(Float)
    accuracy_m: Mapped[float | None] = mapped_column(Float)
    received_at: Mapped[datetime]


class PositionTrack(Base):
    """Every accepted report, appended (the track of a resource)."""

    __tablename__ = "field_position_track"
    __table_args__ = (Index("ix_field_position_track_resource", "resource_id", "at"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    resource_id: Mapped[int] = mapped_column(ForeignKey("field_resources.id"))
    at: Mapped[datetime]
    lon: Mapped[float] = mapped_column(Float)
    lat: Mapped[float] = mapped_column(Float)
    accuracy_m: Mapped[float | None] = mapped_column(Float)
    received_at: Mapped[datetime]


class DispatchStatus(enum.StrEnum):
    DISPATCHED = "dispatched"
    EN_ROUTE = "en_route"
    ON_SCENE = "on_scene"
    DONE = "done"
    CANCELLED = "cancelled"


class Dispatch(Base):
    """派警 / 调度指令: a task at a place for a team (and vehicle), maybe for a case."""

    __tablename__ = "field_dispatches"
    __table_args__ = (Index("ix_field_dispatches_court_status", "court_id", "status"),
                      Index("ix_field_dispatches_team_status", "team_id", "status"),
                      Index("ix_field_dispatches_updated", "updated_at"),
                      Index("ix_field_dispatches_request", "request_id"))

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    court_id: Mapped[int] = mapped_column(ForeignKey("courts.id"))  # the issuing center's court
    task: Mapped[str] = mapped_column(String(255))
    place: Mapped[str] = mapped_column(String(255))
    lon: Mapped[float] = mapped_column(Float)
    lat: Mapped[float] = mapped_column(Float)
    team_id: Mapped[int] = mapped_column(ForeignKey("field_teams.id"))
    vehicle_id: Mapped[int | None] = mapped_column(ForeignKey("field_resources.id"))
    case_id: Mapped[int | None] = mapped_column(ForeignKey("cases.id"))
    tip_id: Mapped[int | None] = mapped_column(ForeignKey("field_tips.id"))
    # The assistance request (协助执行) this team acts on for another center: the scene's
    # evidence and the team's progress go back along the request to the asking case.
    request_id: Mapped[int | None] = mapped_column(ForeignKey("assistance_requests.id"))
    status: Mapped[DispatchStatus] = mapped_column(EnumText(DispatchStatus, 12))
    dispatched_at: Mapped[datetime]
    en_route_at: Mapped[datetime | None]
    on_scene_at: Mapped[datetime | None]
    done_at: Mapped[datetime | None]
    cancelled_at: Mapped[datetime | None]
    result: Mapped[str | None] = mapped_column(Text)
    created_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    updated_at: Mapped[datetime] = mapped_column(default=utcnow_column_default)


class DispatchEvidence(Base):
    """A photo or video a field team took on a task. The file is a document of the task's
    case, or, on an assistance request, the request's evidence (and so a document of the
    asking case, which the team's court may not see)."""

    __tablename__ = "field_dispatch_evidence"
    __table_args__ = (Index("ix_field_dispatch_evidence_dispatch", "dispatch_id"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    dispatch_id: Mapped[int] = mapped_column(ForeignKey("field_dispatches.id"))
    document_id: Mapped[int | None] = mapped_column(ForeignKey("case_documents.id"))
    request_evidence_id: Mapped[int | None] = mapped_column(
        ForeignKey("assistance_evidence.id"))
    sha256: Mapped[str] = mapped_column(String(64))
    uploaded_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    uploaded_at: Mapped[datetime]


class IncidentStatus(enum.StrEnum):
    OPEN = "open"
    ACKNOWLEDGED = "acknowledged"
    RESOLVED = "resolved"


class Incident(Base):
    """突发事件: opened at once by a field team's SOS, handled by the duty desk."""

    __tablename__ = "field_incidents"
    __table_args__ = (Index("ix_field_incidents_court_status", "court_id", "status"),
                      Index("ix_field_incidents_updated", "updated_at"))

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    court_id: Mapped[int] = mapped_column(ForeignKey("courts.id"))
    kind: Mapped[str] = mapped_column(String(16))  # sos, report
    team_id: Mapped[int | None] = mapped_column(ForeignKey("field_teams.id"))
    dispatch_id: Mapped[int | None] = mapped_column(ForeignKey("field_dispatches.id"))
    reported_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    lon: Mapped[float | None] = mapped_column(Float)
    lat: Mapped[float | None] = mapped_column(Float)
    note: Mapped[str | None] = mapped_column(Text)
    status: Mapped[IncidentStatus] = mapped_column(EnumText(IncidentStatus, 12))
    reported_at: Mapped[datetime]
    acknowledged_at: Mapped[datetime | None]
    acknowledged_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    resolved_at: Mapped[datetime | None]
    resolved_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    updated_at: Mapped[datetime] = mapped_column(default=utcnow_column_default)
