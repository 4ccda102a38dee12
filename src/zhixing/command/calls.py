"""Video calls between duty desks (视频连线): a duty leader or officer on duty at one command
center calls another center's desk from the browser.

The media go browser to browser over WebRTC; the platform carries the signalling only (no
third-party service): the caller's SDP offer, the callee's answer, each side's ICE candidates,
and the platform's own state changes, stored as numbered messages of the call
(:class:`CallSignal`). Each side's stream (``/command/calls/{id}/stream``) delivers the other
side's messages in order and resumes after the last one it saw.

A call rings at the called center's desk for anyone on duty there; unanswered for
``LIMITS.call_ring`` it is missed (a job at the ring's end, and checked again whenever the call
is touched). A connected call whose side's page stopped reading its stream for
``LIMITS.call_lost`` (a crashed browser, a lost network: nothing hangs up) is ended as failed,
by the other side's stream or by the command center's sweep. Every start, answer and end is a
board event and an audit record; refusals raise before the first write.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Select, func, or_, select
from sqlalchemy.orm import Session

from zhixing.command import board, duty, policy
from zhixing.command.limits import LIMITS
from zhixing.command.models import CallSide, CallSignal, CallState, SignalKind, VideoCall
from zhixing.command.network import CenterRef, Network
from zhixing.command.schemas import CallIn, CandidateIn
from zhixing.core import audit, jobs
from zhixing.core.actor import SYSTEM, Actor
from zhixing.core.clock import utcnow
from zhixing.core.db import lock_for_update
from zhixing.core.errors import Conflict, Forbidden, NotFound, ValidationFailed

MAX_SDP_BYTES = 64 * 1024
MAX_CANDIDATES = 200  # per side, over the whole call
ACTIVE = frozenset({CallState.RINGING, CallState.CONNECTED})
STATE_ZH = {CallState.ENDED: "已结束", CallState.DECLINED: "已拒接", CallState.MISSED: "未接听",
            CallState.FAILED: "连接失败"}
UNANSWERED_JOB = "command.call_unanswered"


@dataclass(frozen=True)
class Party:
    """How the actor stands to a call: the side they speak for (None: an onlooker within
    reach), and whether they may answer it (on duty at the called center while it rings)."""

    side: CallSide | None
    may_answer: bool
    may_call: bool  # a desk at the caller's center that may place calls (to call back)


# --- reading -----------------------------------------------------------------------------------


def visible(network: Network, actor: Actor) -> Select[tuple[VideoCall]]:
    """Calls from or to a center within the actor's reach."""
    ids = policy.visible_center_ids(network, actor)
    return select(VideoCall).where(or_(VideoCall.caller_center_id.in_(ids),
                                       VideoCall.callee_center_id.in_(ids)))


def get_call(session: Session, actor: Actor, network: Network, call_id: int, *,
             lock: bool = False) -> VideoCall:
    """The call (404 outside reach), locked for a change when ``lock``; a call that has rung
    out is marked missed first."""
    policy.require_read(actor)
    call = session.scalar(visible(network, actor).where(VideoCall.id == call_id))
    if call is None:
        raise NotFound(f"call {call_id} not found", code="call_not_found")
    if lock:
        lock_for_update(session, VideoCall, call.id)
        session.refresh(call)
    expire_if_due(session, network, call)
    return call


def party(session: Session, actor: Actor, network: Network, call: VideoCall,
          now: datetime | None = None) -> Party:
    now = now or utcnow()
    callee = network.center(call.callee_center_id)
    caller = network.center(call.caller_center_id)
    if actor.user_id is not None and actor.user_id == call.caller_id:
        side: CallSide | None = CallSide.CALLER
    elif actor.user_id is not None and actor.user_id == call.answered_by:
        side = CallSide.CALLEE
    else:
        side = None
    answering = call.state == CallState.RINGING and actor.court_id == callee.court_id and \
        policy.may_answer(actor, callee, duty.roster_roles(session, callee.id, actor.user_id,
                                                           now))
    calling = actor.court_id == caller.court_id and _may_call(session, actor, caller, now)
    return Party(side, answering, calling)


def _may_call(session: Session, actor: Actor, center: CenterRef, now: datetime) -> bool:
    try:
        policy.require_caller(actor, center, duty.roster_roles(session, center.id,
                                                               actor.user_id, now))
    except Forbidden:
        return False
    return True


def signals_after(session: Session, call_id: int, after: int, exclude: CallSide,
                  limit: int = 500) -> list[CallSignal]:
    """The call's messages after ``seq`` ``after`` that are not the reader's own, in order."""
    return list(session.scalars(select(CallSignal).where(
        CallSignal.call_id == call_id, CallSignal.seq > after, CallSignal.side != exclude)
        .order_by(CallSignal.seq).limit(limit)))


def ringing_at(session: Session, center: CenterRef, now: datetime | None = None
               ) -> list[VideoCall]:
    """Calls ringing at ``center``'s desk now, oldest first."""
    now = now or utcnow()
    return list(session.scalars(select(VideoCall).where(
        VideoCall.callee_center_id == center.id, VideoCall.state == CallState.RINGING,
        VideoCall.ring_until > now).order_by(VideoCall.id).limit(20)))


def active_of(session: Session, actor: Actor) -> list[VideoCall]:
    """The actor's own calls still ringing or connected (placed, or answered by them)."""
    if actor.user_id is None:
        return []
    return list(session.scalars(select(VideoCall).where(
        VideoCall.state.in_(ACTIVE),
        or_(VideoCall.caller_id == actor.user_id, VideoCall.answered_by == actor.user_id))
        .order_by(VideoCall.id.desc()).limit(10)))


# --- changing ----------------------------------------------------------------------------------


def _storable(text: str) -> bool:
    """Text the database keeps as sent: UTF-8 without NUL (PostgreSQL refuses both)."""
    try:
        text.encode()
    except UnicodeEncodeError:  # a lone surrogate from a JSON escape
        return False
    return "\x00" not in text


def _check_sdp(sdp: str, field: str = "sdp") -> None:
    if not _storable(sdp):
        raise ValidationFailed("not a session description (it is not plain text)",
                               code="sdp_invalid", field=field)
    size = len(sdp.encode())
    if size > MAX_SDP_BYTES:
        raise ValidationFailed(f"an SDP is at most {MAX_SDP_BYTES} bytes (this one: {size})",
                               code="sdp_too_large", field=field,
                               details={"limit": MAX_SDP_BYTES, "size": size})
    if not sdp.startswith("v=0"):
        raise ValidationFailed("not a session description (it starts with v=0)",
                               code="sdp_invalid", field=field)


def _signal(session: Session, call: VideoCall, side: CallSide, kind: SignalKind,
            payload: dict[str, Any], now: datetime) -> CallSignal:
    """The call's next message; the caller holds the call's row lock (or has just made it),
    so sequence numbers are gap-free and in commit order within the call."""
    call.last_seq = (call.last_seq or 0) + 1
    row = CallSignal(call_id=call.id, seq=call.last_seq, side=side, kind=kind, payload=payload,
                     created_at=now)
    session.add(row)
    return row


def check_start(session: Session, actor: Actor, network: Network, to_code: str,
                now: datetime | None = None) -> tuple[CenterRef, CenterRef]:
    """The actor's center and the one named, when the actor may call it now (else the
    refusal): the dialling page checks before it opens the camera."""
    policy.require_read(actor)
    now = now or utcnow()
    origin = policy.own_center(network, actor)
    policy.require_caller(actor, origin, duty.roster_roles(session, origin.id, actor.user_id,
                                                           now))
    target = network.by_code(to_code, "to_court_code")
    why = policy.call_refusal(network.node(origin), network.node(target))
    if why is not None:
        messages = {"same_center": "a desk does not call itself",
                    "call_route_not_allowed": "a desk calls its parent center, its child "
                                              "centers and its peers under the same parent"}
        raise ValidationFailed(messages[why], code=why, field="to_court_code",
                               details={"from": origin.code, "to": target.code})
    if not duty.staffed(session, [target.id], now):
        raise Conflict(f"nobody is on duty at {target.name} now", code="nobody_on_duty",
                       details={"to": target.code})
    return origin, target


def start(session: Session, actor: Actor, network: Network, body: CallIn) -> VideoCall:
    """Place a call from the actor's center to another, with the caller's SDP offer."""
    now = utcnow()
    origin, target = check_start(session, actor, network, body.to_court_code, now)
    _check_sdp(body.sdp)
    call = VideoCall(caller_center_id=origin.id, caller_id=actor.user_id,
                     callee_center_id=target.id, state=CallState.RINGING, created_at=now,
                     ring_until=now + LIMITS.call_ring, last_seq=0, caller_candidates=0,
                     callee_candidates=0, caller_seen_at=now)
    session.add(call)
    session.flush()
    _signal(session, call, CallSide.CALLER, SignalKind.OFFER, {"type": "offer", "sdp": body.sdp},
            now)
    jobs.enqueue(session, UNANSWERED_JOB, {"call_id": call.id}, run_at=call.ring_until,
                 dedupe_key=f"call:{call.id}:unanswered")
    board.post(session, actor, "call_started", f"{origin.name} 呼叫 {target.name}：视频连线",
               center_id=target.id, call_id=call.id, caller_center_id=origin.id)
    audit.record(session, actor, "command.call_started", object_type="video_call",
                 object_id=call.id, court_id=origin.court_id,
                 details={"from": origin.code, "to": target.code})
    session.flush()
    return call


def _refuse_unless_active(call: VideoCall) -> None:
    if call.state not in ACTIVE:
        raise Conflict(f"the call is over ({call.state})", code="call_ended",
                       details={"state": str(call.state)})


def answer(session: Session, actor: Actor, network: Network, call_id: int,
           sdp: str) -> VideoCall:
    """Someone on duty at the called center answers, with the SDP answer (the first answer
    wins; 409 after)."""
    call = get_call(session, actor, network, call_id, lock=True)
    now = utcnow()
    callee = network.center(call.callee_center_id)
    if actor.user_id == call.caller_id or actor.court_id != callee.court_id:
        raise Forbidden("the called center's desk answers the call", code="not_callee")
    _refuse_unless_active(call)
    if call.state == CallState.CONNECTED:
        raise Conflict("the call was answered already", code="call_already_answered")
    if not policy.may_answer(actor, callee, duty.roster_roles(session, callee.id, actor.user_id,
                                                              now)):
        raise Forbidden("only someone on duty at the called center answers",
                        code="not_on_duty")
    _check_sdp(sdp)
    call.state = CallState.CONNECTED
    call.answered_at = now
    call.answered_by = actor.user_id
    call.callee_seen_at = now
    _signal(session, call, CallSide.CALLEE, SignalKind.ANSWER, {"type": "answer", "sdp": sdp},
            now)
    _signal(session, call, CallSide.PLATFORM, SignalKind.STATE, {
        "state": str(call.state), "answered_by": actor.user_id, "by": actor.name,
        "at": now.isoformat()}, now)
    board.post(session, actor, "call_answered", f"{callee.name} 已接听视频连线",
               center_id=callee.id, call_id=call.id, caller_center_id=call.caller_center_id)
    audit.record(session, actor, "command.call_answered", object_type="video_call",
                 object_id=call.id, court_id=callee.court_id,
                 details={"from": network.center(call.caller_center_id).code,
                          "to": callee.code, "rang_seconds": _seconds(call.created_at, now)})
    session.flush()
    return call


def _speaking_side(session: Session, actor: Actor, network: Network, call: VideoCall
                   ) -> CallSide:
    me = party(session, actor, network, call)
    if me.side is not None:
        return me.side
    if me.may_answer:
        raise Conflict("answer the call before sending candidates", code="answer_first")
    raise Forbidden("you are not a party to this call", code="not_a_party")


def add_candidates(session: Session, actor: Actor, network: Network, call_id: int,
                   candidates: Sequence[CandidateIn]) -> tuple[VideoCall, CallSide, int]:
    """ICE candidates from one side, relayed to the other in order. At most
    ``MAX_CANDIDATES`` per side over the call. Returns the call, the side and its count."""
    call = get_call(session, actor, network, call_id, lock=True)
    side = _speaking_side(session, actor, network, call)
    _refuse_unless_active(call)
    have = call.caller_candidates if side == CallSide.CALLER else call.callee_candidates
    if have + len(candidates) > MAX_CANDIDATES:
        raise ValidationFailed(f"at most {MAX_CANDIDATES} ICE candidates per side",
                               code="too_many_candidates", field="candidates",
                               details={"limit": MAX_CANDIDATES, "sent_before": have,
                                        "in_this_request": len(candidates)})
    for i, c in enumerate(candidates):
        if not all(_storable(v) for v in (c.candidate, c.sdpMid or "", c.usernameFragment or "")):
            raise ValidationFailed("an ICE candidate is plain text", code="candidate_invalid",
                                   field=f"candidates[{i}]")
    now = utcnow()
    for c in candidates:
        _signal(session, call, side, SignalKind.CANDIDATE,
                c.model_dump(exclude_none=True), now)
    total = have + len(candidates)
    if side == CallSide.CALLER:
        call.caller_candidates = total
    else:
        call.callee_candidates = total
    session.flush()
    return call, side, total


def end(session: Session, actor: Actor, network: Network, call_id: int,
        reason: str = "hangup") -> VideoCall:
    """Hang up (either party; the caller also calls off a ringing call), decline (the called
    desk while it rings), or report that the media could not connect (``failed``)."""
    call = get_call(session, actor, network, call_id, lock=True)
    me = party(session, actor, network, call)
    _refuse_unless_active(call)
    if me.side is not None:
        side = me.side
        state = CallState.FAILED if reason == "failed" else CallState.ENDED
    elif me.may_answer:
        side = CallSide.CALLEE
        state = CallState.FAILED if reason == "failed" else CallState.DECLINED
    else:
        raise Forbidden("you are not a party to this call", code="not_a_party")
    _finish(session, network, call, state, actor, side)
    return call


def _seconds(start_at: datetime, end_at: datetime) -> int:
    return max(0, int((end_at - start_at).total_seconds()))


def _finish(session: Session, network: Network, call: VideoCall, state: CallState,
            actor: Actor, side: CallSide) -> None:
    now = utcnow()
    call.state = state
    call.ended_at = now
    call.ended_by = actor.user_id
    call.ended_side = side
    call.duration_seconds = _seconds(call.answered_at, now) if call.answered_at else None
    _signal(session, call, CallSide.PLATFORM, SignalKind.STATE, {
        "state": str(state), "by": actor.name, "side": str(side), "at": now.isoformat(),
        "duration_seconds": call.duration_seconds}, now)
    caller = network.center(call.caller_center_id)
    callee = network.center(call.callee_center_id)
    court = caller.court_id if side == CallSide.CALLER else callee.court_id
    length = f"（{call.duration_seconds} 秒）" if call.duration_seconds is not None else ""
    board.post(session, actor, f"call_{state}",
               f"{caller.name} 与 {callee.name} 视频连线{STATE_ZH[state]}{length}",
               center_id=callee.id, call_id=call.id, caller_center_id=caller.id)
    audit.record(session, actor, "command.call_ended", object_type="video_call",
                 object_id=call.id, court_id=court,
                 details={"state": str(state), "side": str(side), "from": caller.code,
                          "to": callee.code, "duration_seconds": call.duration_seconds})
    session.flush()


def expire_if_due(session: Session, network: Network, call: VideoCall,
                  now: datetime | None = None) -> bool:
    """Mark a call that rang out as missed (locking it first). True when it did."""
    now = now or utcnow()
    if call.state != CallState.RINGING or now < call.ring_until:
        return False
    lock_for_update(session, VideoCall, call.id)
    session.refresh(call)
    if call.state != CallState.RINGING:
        return False
    _finish(session, network, call, CallState.MISSED, SYSTEM, CallSide.PLATFORM)
    return True


def touch(call: VideoCall, actor: Actor, side: CallSide, now: datetime) -> bool:
    """The actor's page read its stream: recorded (at most every ``call_presence_every``) for a
    party to a live call. True when it wrote."""
    if call.state not in ACTIVE:
        return False
    if side == CallSide.CALLER and actor.user_id == call.caller_id:
        seen = call.caller_seen_at
    elif side == CallSide.CALLEE and actor.user_id == call.answered_by:
        seen = call.callee_seen_at
    else:
        return False  # an onlooker, or a desk member who did not answer
    if seen is not None and now - seen < LIMITS.call_presence_every:
        return False
    setattr(call, f"{side}_seen_at", now)
    return True


def lost_side(call: VideoCall, now: datetime) -> CallSide | None:
    """The side of a connected call whose page has gone quiet, if one has."""
    if call.state != CallState.CONNECTED:
        return None
    # (a call connected before presence was recorded counts from its answer)
    for side, seen in ((CallSide.CALLER, call.caller_seen_at or call.answered_at),
                       (CallSide.CALLEE, call.callee_seen_at or call.answered_at)):
        if seen is None or now - seen >= LIMITS.call_lost:
            return side
    return None


def end_if_lost(session: Session, network: Network, call: VideoCall,
                now: datetime | None = None) -> bool:
    """End a connected call one side of which has gone (locking it first). True when it did."""
    now = now or utcnow()
    if lost_side(call, now) is None:
        return False
    lock_for_update(session, VideoCall, call.id)
    session.refresh(call)
    if lost_side(call, now) is None:
        return False
    _finish(session, network, call, CallState.FAILED, SYSTEM, CallSide.PLATFORM)
    return True


def end_lost(session: Session, network: Network | None, now: datetime | None = None) -> int:
    """The sweep's part: connected calls a side of which has gone quiet, ended (the network
    is loaded only when there is one)."""
    now = now or utcnow()
    quiet = now - LIMITS.call_lost
    rows = session.scalars(select(VideoCall).where(
        VideoCall.state == CallState.CONNECTED,
        or_(func.coalesce(VideoCall.caller_seen_at, VideoCall.answered_at) < quiet,
            func.coalesce(VideoCall.callee_seen_at, VideoCall.answered_at) < quiet))
        .order_by(VideoCall.id).limit(100)).all()
    if not rows:
        return 0
    network = network or Network(session)
    return sum(end_if_lost(session, network, call, now) for call in rows)


@jobs.handler(UNANSWERED_JOB)
def unanswered(session: Session, payload: dict[str, Any]) -> None:
    """At the end of the ring: missed, unless answered or ended meanwhile."""
    call = session.get(VideoCall, int(payload["call_id"]))
    if call is not None:
        expire_if_due(session, Network(session), call)
