"""Request bodies of the command-center API."""

from __future__ import annotations

from datetime import date, datetime
from typing import Literal

from pydantic import AwareDatetime, ConfigDict, Field

from zhixing.command.models import AnswerStatus, DutyRole, RequestKind, ShiftPattern, Urgency
from zhixing.courts.schemas import StrictModel

CourtCode = Field(min_length=1, max_length=16, description="a court code, e.g. 桂0305")


class MemberIn(StrictModel):
    role: DutyRole
    username: str | None = Field(default=None, max_length=64,
                                 description="a platform user of the center (or give a name)")
    name: str | None = Field(default=None, min_length=1, max_length=64)
    phone: str | None = Field(default=None, max_length=32)


class ShiftIn(StrictModel):
    court_code: str = CourtCode
    starts_at: AwareDatetime
    ends_at: AwareDatetime
    pattern: ShiftPattern = ShiftPattern.FIXED
    team: str | None = Field(default=None, max_length=32)
    phone: str | None = Field(default=None, max_length=32)
    vehicles: str | None = Field(default=None, max_length=255)
    note: str | None = Field(default=None, max_length=255)
    members: list[MemberIn] = Field(min_length=1, max_length=40)


class TeamIn(StrictModel):
    name: str = Field(min_length=1, max_length=32)
    members: list[MemberIn] = Field(min_length=1, max_length=40)
    vehicles: str | None = Field(default=None, max_length=255)


class RosterIn(StrictModel):
    """A run of shifts: one team every shift (fixed) or the teams in turn (rotating)."""

    court_code: str = CourtCode
    first_day: date
    days: int = Field(ge=1, le=62)
    handover_hour: int = Field(default=8, ge=0, le=23, description="China time")
    shift_hours: int = Field(default=24, description="8, 12 or 24")
    pattern: ShiftPattern = ShiftPattern.ROTATING
    phone: str | None = Field(default=None, max_length=32)
    teams: list[TeamIn] = Field(min_length=1, max_length=8)


class HandoverIn(StrictModel):
    items: list[str] = Field(default_factory=list, max_length=50,
                             description="open items in the outgoing leader's words")
    note: str | None = Field(default=None, max_length=2000)
    carry_previous: bool = Field(default=True, description=(
        "carry over the previous handover's items (those not listed in resolved)"))
    resolved: list[str] = Field(default_factory=list, max_length=50)


class RollCallIn(StrictModel):
    answer_within_minutes: int | None = Field(default=None, ge=1, le=120)
    note: str | None = Field(default=None, max_length=255)


class RequestIn(StrictModel):
    kind: RequestKind
    urgency: Urgency = Urgency.NORMAL
    place_court_code: str = Field(min_length=1, max_length=16,
                                  description="the court whose area has the place")
    place: str = Field(min_length=2, max_length=255)
    subject: str = Field(min_length=2, max_length=128)
    details: str = Field(min_length=2, max_length=4000)
    case_id: int | None = Field(default=None, gt=0, lt=2**63,
                                description="the asking case: the result comes back to it")
    to_court_code: str | None = Field(default=None, max_length=16, description=(
        "the first center to ask (default: the next one on the way to the place)"))


class AnswerIn(StrictModel):
    status: AnswerStatus = Field(description="nothing or items")
    text: str | None = Field(default=None, max_length=2000)
    request: RequestIn | None = Field(default=None, description=(
        "an assistance request to open with the answer (sent to the calling center)"))


class ForwardIn(StrictModel):
    to_court_code: str | None = Field(default=None, max_length=16, description=(
        "default: the next center towards the place"))
    note: str | None = Field(default=None, max_length=255)


class AcknowledgeIn(StrictModel):
    note: str | None = Field(default=None, max_length=255)


class ResultIn(StrictModel):
    outcome: str = Field(pattern="^(done|failed)$")
    summary: str = Field(min_length=2, max_length=4000)


class WithdrawIn(StrictModel):
    reason: str = Field(min_length=2, max_length=2000, description=(
        "why the asking center takes the request back; shown to every center on its way"))


class PeriodIn(StrictModel):
    start: datetime | None = None
    end: datetime | None = None


# --- video calls -------------------------------------------------------------------------------


class SdpModel(StrictModel):
    # An SDP's lines end with CRLF, the last one too: kept exactly as the browser wrote it.
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=False)


class CallIn(SdpModel):
    to_court_code: str = Field(min_length=1, max_length=16, description=(
        "the center to call: your parent center, a child, or a peer under the same parent"))
    sdp: str = Field(min_length=1, description=(
        "the caller's SDP offer (RTCSessionDescription.sdp), at most 64 KB"))


class CallAnswerIn(SdpModel):
    sdp: str = Field(min_length=1, description="the callee's SDP answer, at most 64 KB")


class CandidateIn(StrictModel):
    """An ICE candidate as ``RTCIceCandidate.toJSON()`` gives it."""

    candidate: str = Field(max_length=1024, description="'' marks the end of candidates")
    sdpMid: str | None = Field(default=None, max_length=64)
    sdpMLineIndex: int | None = Field(default=None, ge=0, le=255)
    usernameFragment: str | None = Field(default=None, max_length=256)


class CandidatesIn(StrictModel):
    candidates: list[CandidateIn] = Field(min_length=1, max_length=200, description=(
        "at most 200 candidates per side over the whole call"))


class CallEndIn(StrictModel):
    reason: Literal["hangup", "decline", "failed"] = Field(default="hangup", description=(
        "hangup (or call off while ringing); decline (the called desk, while ringing); "
        "failed (the browser could not connect the media)"))
