"""JSON API of the duty desks' video calls: placing a call with its SDP offer, answering,
relaying ICE candidates, ending; each side then reads the other's messages from its stream
(``/command/calls/{id}/stream``, see :mod:`call_views`). The media never pass the platform."""

from __future__ import annotations

from fastapi import APIRouter
from pydantic import BaseModel, Field

from zhixing.command import calls, presenters, schemas
from zhixing.command.models import VideoCall
from zhixing.command.network import Network
from zhixing.core.actor import Actor
from zhixing.web.deps import CurrentUser, DbSession, RecordId
from zhixing.web.errors import ERROR_RESPONSES

router = APIRouter(prefix="/api/v1/command", responses=ERROR_RESPONSES, tags=["command"])


class CandidatesAck(BaseModel):
    call_id: int
    side: str
    accepted: int
    total: int = Field(description=f"candidates this side has sent (at most "
                                   f"{calls.MAX_CANDIDATES})")
    last_seq: int


def _read(db: DbSession, actor: Actor, network: Network, call: VideoCall) -> presenters.CallRead:
    return presenters.call_read(db, network, call, calls.party(db, actor, network, call))


@router.post("/calls", response_model=presenters.CallRead, status_code=201)
def start_call(body: schemas.CallIn, actor: CurrentUser, db: DbSession) -> presenters.CallRead:
    """Call another center's duty desk (the parent center, a child, or a peer under the same
    parent) with the caller's SDP offer. The caller is the duty leader or a duty officer on
    duty now, or an administrator of the center (403 otherwise); nobody on duty there: 409
    ``nobody_on_duty``. It rings on the called center's board for 60 s, then it is missed."""
    network = Network(db)
    return _read(db, actor, network, calls.start(db, actor, network, body))


@router.get("/calls/{call_id}", response_model=presenters.CallRead)
def get_call(call_id: RecordId, actor: CurrentUser, db: DbSession) -> presenters.CallRead:
    """A call within reach of either center: its state, times, who ended it, how long it
    lasted."""
    network = Network(db)
    return _read(db, actor, network, calls.get_call(db, actor, network, call_id))


@router.post("/calls/{call_id}/answer", response_model=presenters.CallRead)
def answer_call(call_id: RecordId, body: schemas.CallAnswerIn, actor: CurrentUser,
                db: DbSession) -> presenters.CallRead:
    """Someone on duty at the called center answers with the SDP answer. Answered already:
    409 ``call_already_answered``; over (ended, declined, missed, failed): 409 ``call_ended``."""
    network = Network(db)
    return _read(db, actor, network, calls.answer(db, actor, network, call_id, body.sdp))


@router.post("/calls/{call_id}/candidates", response_model=CandidatesAck)
def add_call_candidates(call_id: RecordId, body: schemas.CandidatesIn, actor: CurrentUser,
                        db: DbSession) -> CandidatesAck:
    """ICE candidates of your side, relayed to the other side in order (at most 200 per side:
    422 ``too_many_candidates``). The called desk answers first (409 ``answer_first``)."""
    network = Network(db)
    call, side, total = calls.add_candidates(db, actor, network, call_id, body.candidates)
    return CandidatesAck(call_id=call.id, side=str(side), accepted=len(body.candidates),
                         total=total, last_seq=call.last_seq)


@router.post("/calls/{call_id}/end", response_model=presenters.CallRead)
def end_call(call_id: RecordId, actor: CurrentUser, db: DbSession,
             body: schemas.CallEndIn | None = None) -> presenters.CallRead:
    """Hang up (either party), call off a ringing call (the caller), decline it (anyone on
    duty at the called center while it rings), or report that the media failed. Over
    already: 409 ``call_ended``."""
    network = Network(db)
    reason = body.reason if body else "hangup"
    return _read(db, actor, network, calls.end(db, actor, network, call_id, reason))
