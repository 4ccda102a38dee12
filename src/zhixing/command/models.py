"""Tables of the 24-hour command center (执行指挥中心): the duty roster, shift handovers, roll
calls, assistance requests (协助执行 / 事项委托) with their hops and escalations, the board's
event log, and video calls between duty desks with their signalling messages.

A request travels the hierarchy hop by hop; each hop is a row with its own timestamps
(``sent_at``, ``acknowledged_at``, ``handed_down_at``), so time-in-state and the figures are
plain queries. Every change also appends a :class:`BoardEvent`: the request's timeline, and the
one table the live board polls.
"""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from zhixing.cases.models import BigId
from zhixing.core.db import Base, EnumText, utcnow_column_default


class ShiftPattern(enum.StrEnum):
    FIXED = "fixed"  # the same team every day
    ROTATING = "rotating"  # teams take turns


class DutyRole(enum.StrEnum):
    LEADER = "leader"  # 值班领导
    OFFICER = "officer"  # 值班员
    STANDBY = "standby"  # 备勤


class RequestKind(enum.StrEnum):
    FREEZE = "freeze"
    SEAL = "seal"
    SEIZE_VEHICLE = "seize_vehicle"
    FIND_PERSON = "find_person"
    SERVE_DOCUMENT = "serve_document"
    VERIFY_LEAD = "verify_lead"
    OTHER = "other"


class Urgency(enum.StrEnum):
    URGENT = "urgent"
    NORMAL = "normal"


class RequestStatus(enum.StrEnum):
    OPEN = "open"  # travelling or being acted on
    DONE = "done"  # the result is back
    FAILED = "failed"  # acted on, could not be done (the result says why)
    WITHDRAWN = "withdrawn"  # the asking center took it back


class AnswerStatus(enum.StrEnum):
    PENDING = "pending"
    NOTHING = "nothing"  # 无事项
    ITEMS = "items"  # 有需协调事项


class EscalationKind(enum.StrEnum):
    NOT_ACKNOWLEDGED = "not_acknowledged"
    NOT_DONE = "not_done"


class DutyShift(Base):
    """One shift of a center's roster (start inclusive, end exclusive)."""

    __tablename__ = "duty_shifts"
    __table_args__ = (Index("ix_duty_shifts_center_time", "center_id", "starts_at", "ends_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    center_id: Mapped[int] = mapped_column(ForeignKey("command_centers.id"))
    starts_at: Mapped[datetime]
    ends_at: Mapped[datetime]
    pattern: Mapped[ShiftPattern] = mapped_column(EnumText(ShiftPattern, 16))
    team: Mapped[str | None] = mapped_column(String(32))  # a rotating pattern's team name
    phone: Mapped[str | None] = mapped_column(String(32))
    vehicles: Mapped[str | None] = mapped_column(String(255))  # plates, free text for now
    note: Mapped[str | None] = mapped_column(String(255))
    created_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow_column_default)


class DutyMember(Base):
    """A person on a shift: leader, officer or standby; a user of the platform or a name."""

    __tablename__ = "duty_members"
    __table_args__ = (Index("ix_duty_members_shift", "shift_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    shift_id: Mapped[int] = mapped_column(ForeignKey("duty_shifts.id", ondelete="CASCADE"))
    role: Mapped[DutyRole] = mapped_column(EnumText(DutyRole, 16))
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    name: Mapped[str] = mapped_column(String(64))
    phone: Mapped[str | None] = mapped_column(String(32))


class Handover(Base):
    """交接班: the outgoing leader lists the open items; the incoming one acknowledges them."""

    __tablename__ = "duty_handovers"
    __table_args__ = (Index("ix_duty_handovers_center", "center_id", "id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    center_id: Mapped[int] = mapped_column(ForeignKey("command_centers.id"))
    from_shift_id: Mapped[int | None] = mapped_column(ForeignKey("duty_shifts.id"))
    to_shift_id: Mapped[int | None] = mapped_column(ForeignKey("duty_shifts.id"))
    # [{"text": ..., "request_id": ...?}]: free-text items and the center's open requests
    items: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    note: Mapped[str | None] = mapped_column(Text)
    handed_over_by: Mapped[int] = mapped_column(ForeignKey("users.id"))
    handed_over_at: Mapped[datetime]
    acknowledged_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    acknowledged_at: Mapped[datetime | None]
    carried_from_id: Mapped[int | None] = mapped_column(ForeignKey("duty_handovers.id"))


class RollCall(Base):
    """点名: a duty leader calls every center directly below his."""

    __tablename__ = "roll_calls"
    __table_args__ = (Index("ix_roll_calls_center", "center_id", "id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    center_id: Mapped[int] = mapped_column(ForeignKey("command_centers.id"))
    started_by: Mapped[int] = mapped_column(ForeignKey("users.id"))
    started_at: Mapped[datetime]
    answer_by: Mapped[datetime]
    note: Mapped[str | None] = mapped_column(String(255))


class RollCallAnswer(Base):
    __tablename__ = "roll_call_answers"
    __table_args__ = (
        UniqueConstraint("roll_call_id", "center_id"),
        Index("ix_roll_call_answers_pending", "status", "answer_by"),
        Index("ix_roll_call_answers_center", "center_id", "id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    roll_call_id: Mapped[int] = mapped_column(ForeignKey("roll_calls.id"))
    center_id: Mapped[int] = mapped_column(ForeignKey("command_centers.id"))
    status: Mapped[AnswerStatus] = mapped_column(EnumText(AnswerStatus, 16))
    answer_by: Mapped[datetime]
    answered_at: Mapped[datetime | None]
    answered_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    text: Mapped[str | None] = mapped_column(Text)
    request_id: Mapped[int | None] = mapped_column(ForeignKey("assistance_requests.id"))
    overdue_at: Mapped[datetime | None]  # flagged by the sweep; stays set if answered late


class AssistanceRequest(Base):
    """协助执行 / 事项委托: one center asks another to act in its area."""

    __tablename__ = "assistance_requests"
    __table_args__ = (
        Index("ix_assistance_requests_status", "status", "id"),
        Index("ix_assistance_requests_origin", "origin_center_id", "id"),
        Index("ix_assistance_requests_case", "case_id"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    kind: Mapped[RequestKind] = mapped_column(EnumText(RequestKind, 16))
    urgency: Mapped[Urgency] = mapped_column(EnumText(Urgency, 16))
    status: Mapped[RequestStatus] = mapped_column(EnumText(RequestStatus, 16))
    origin_center_id: Mapped[int] = mapped_column(ForeignKey("command_centers.id"))
    # The court whose area holds the place (where the act happens): a district, or a city.
    place_court_id: Mapped[int] = mapped_column(ForeignKey("courts.id"))
    place: Mapped[str] = mapped_column(String(255))
    case_id: Mapped[int | None] = mapped_column(ForeignKey("cases.id"))
    subject: Mapped[str] = mapped_column(String(128))  # e.g. the debtor and the car
    details: Mapped[str] = mapped_column(Text)
    created_by: Mapped[int] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime]
    act_by: Mapped[datetime]  # the act's deadline, from the urgency
    current_hop_id: Mapped[int | None] = mapped_column(BigInteger)
    escalations: Mapped[int] = mapped_column(Integer, default=0)
    result_at: Mapped[datetime | None]
    result_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    result_center_id: Mapped[int | None] = mapped_column(ForeignKey("command_centers.id"))
    result_summary: Mapped[str | None] = mapped_column(Text)
    roll_call_answer_id: Mapped[int | None] = mapped_column(Integer)


class Hop(Base):
    """One step of a request's way: sent by one center, acknowledged by the next."""

    __tablename__ = "assistance_hops"
    __table_args__ = (
        UniqueConstraint("request_id", "seq"),
        Index("ix_assistance_hops_to", "to_center_id", "acknowledged_at"),
        Index("ix_assistance_hops_ack_due", "acknowledged_at", "ack_by"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    request_id: Mapped[int] = mapped_column(ForeignKey("assistance_requests.id"))
    seq: Mapped[int] = mapped_column(Integer)
    from_center_id: Mapped[int] = mapped_column(ForeignKey("command_centers.id"))
    to_center_id: Mapped[int] = mapped_column(ForeignKey("command_centers.id"))
    sent_at: Mapped[datetime]
    sent_by: Mapped[int] = mapped_column(ForeignKey("users.id"))
    ack_by: Mapped[datetime]
    acknowledged_at: Mapped[datetime | None]
    acknowledged_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    handed_down_at: Mapped[datetime | None]
    note: Mapped[str | None] = mapped_column(String(255))


class Escalation(Base):
    """An overdue hop raised to the duty leader of the next level up."""

    __tablename__ = "assistance_escalations"
    __table_args__ = (
        UniqueConstraint("hop_id", "kind"),
        Index("ix_assistance_escalations_to", "to_center_id", "acknowledged_at"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    request_id: Mapped[int] = mapped_column(ForeignKey("assistance_requests.id"))
    hop_id: Mapped[int] = mapped_column(ForeignKey("assistance_hops.id"))
    kind: Mapped[EscalationKind] = mapped_column(EnumText(EscalationKind, 20))
    late_center_id: Mapped[int] = mapped_column(ForeignKey("command_centers.id"))
    to_center_id: Mapped[int] = mapped_column(ForeignKey("command_centers.id"))
    # The duty leader on duty at ``to_center`` when it was raised (if the roster names one).
    to_user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    due_at: Mapped[datetime]
    escalated_at: Mapped[datetime]
    acknowledged_at: Mapped[datetime | None]
    acknowledged_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))


class Evidence(Base):
    """A file that comes back with a result; the same file is a document of the asking case."""

    __tablename__ = "assistance_evidence"
    __table_args__ = (Index("ix_assistance_evidence_request", "request_id"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    request_id: Mapped[int] = mapped_column(ForeignKey("assistance_requests.id"))
    center_id: Mapped[int] = mapped_column(ForeignKey("command_centers.id"))
    filename: Mapped[str] = mapped_column(String(255))
    content_type: Mapped[str] = mapped_column(String(128))
    size_bytes: Mapped[int] = mapped_column(BigInteger)
    sha256: Mapped[str] = mapped_column(String(64))
    case_document_id: Mapped[int | None] = mapped_column(ForeignKey("case_documents.id"))
    uploaded_by: Mapped[int] = mapped_column(ForeignKey("users.id"))
    uploaded_at: Mapped[datetime] = mapped_column(default=utcnow_column_default)
    note: Mapped[str | None] = mapped_column(String(255))


class BoardEvent(Base):
    """What happened on the command network, in order: a request's timeline, roll calls,
    handovers, escalations. The live board polls its head (one query per process)."""

    __tablename__ = "duty_board_events"
    __table_args__ = (Index("ix_duty_board_events_request", "request_id", "id"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    occurred_at: Mapped[datetime]
    kind: Mapped[str] = mapped_column(String(32))
    request_id: Mapped[int | None] = mapped_column(ForeignKey("assistance_requests.id"))
    roll_call_id: Mapped[int | None] = mapped_column(ForeignKey("roll_calls.id"))
    center_id: Mapped[int | None] = mapped_column(ForeignKey("command_centers.id"))
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    actor_name: Mapped[str | None] = mapped_column(String(64))
    summary: Mapped[str] = mapped_column(String(255))
    data: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


class CallState(enum.StrEnum):
    RINGING = "ringing"  # offered, waiting for the callee center to answer
    CONNECTED = "connected"  # answered: the browsers connect to each other
    ENDED = "ended"  # hung up (or called off by the caller while ringing)
    DECLINED = "declined"  # the callee center declined
    MISSED = "missed"  # nobody answered in time
    FAILED = "failed"  # a browser reported that the media connection failed


class CallSide(enum.StrEnum):
    CALLER = "caller"
    CALLEE = "callee"
    PLATFORM = "platform"  # state changes, sent to both sides


class SignalKind(enum.StrEnum):
    OFFER = "offer"
    ANSWER = "answer"
    CANDIDATE = "candidate"
    STATE = "state"


class VideoCall(Base):
    """A video call from one center's duty desk to another's. The media go browser to browser
    (WebRTC); the platform carries only the signalling and keeps the record: who called whom,
    who answered, each state's time, who ended it and how long it lasted."""

    __tablename__ = "video_calls"
    __table_args__ = (
        Index("ix_video_calls_callee_state", "callee_center_id", "state"),
        Index("ix_video_calls_caller_state", "caller_center_id", "state"),
        Index("ix_video_calls_caller_user", "caller_id", "state"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    caller_center_id: Mapped[int] = mapped_column(ForeignKey("command_centers.id"))
    caller_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    callee_center_id: Mapped[int] = mapped_column(ForeignKey("command_centers.id"))
    state: Mapped[CallState] = mapped_column(EnumText(CallState, 16))
    created_at: Mapped[datetime]
    ring_until: Mapped[datetime]  # then it is missed
    answered_at: Mapped[datetime | None]
    answered_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    ended_at: Mapped[datetime | None]
    ended_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))  # None: the platform
    ended_side: Mapped[CallSide | None] = mapped_column(EnumText(CallSide, 16))
    duration_seconds: Mapped[int | None] = mapped_column(Integer)  # answered to ended
    # The last signal's sequence number, and the ICE candidates each side has sent: counted
    # on the row, which every signal locks, so the limits hold under concurrent posts.
    last_seq: Mapped[int] = mapped_column(Integer, default=0)
    caller_candidates: Mapped[int] = mapped_column(Integer, default=0)
    callee_candidates: Mapped[int] = mapped_column(Integer, default=0)
    # When each side's page last read its signalling stream: a connected call whose side has
    # gone quiet (a browser that crashed or lost the network hangs up nothing) is ended.
    caller_seen_at: Mapped[datetime | None]
    callee_seen_at: Mapped[datetime | None]


class CallSignal(Base):
    """One signalling message of a call, numbered in order within the call: the offer, the
    answer, ICE candidates, and the platform's state changes. Each side's stream delivers the
    other side's (and the platform's) messages in ``seq`` order and resumes after the last
    ``seq`` it saw."""

    __tablename__ = "video_call_signals"
    __table_args__ = (UniqueConstraint("call_id", "seq"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    call_id: Mapped[int] = mapped_column(ForeignKey("video_calls.id", ondelete="CASCADE"))
    seq: Mapped[int] = mapped_column(Integer)
    side: Mapped[CallSide] = mapped_column(EnumText(CallSide, 16))
    kind: Mapped[SignalKind] = mapped_column(EnumText(SignalKind, 16))
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[datetime]


__all__ = [
    "AnswerStatus", "AssistanceRequest", "BoardEvent", "CallSide", "CallSignal", "CallState",
    "DutyMember", "DutyRole", "DutyShift", "Escalation", "EscalationKind", "Evidence",
    "Handover", "Hop", "RequestKind", "RequestStatus", "RollCall", "RollCallAnswer",
    "ShiftPattern", "SignalKind", "Urgency", "VideoCall",
]
