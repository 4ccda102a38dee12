"""Console side of the duty desks' video calls: what the board shows (the ringing banner, your
calls, a video-link button per center you may call), the call page with its two videos, and
each side's signalling stream.

The stream is Server-Sent Events of JSON: one ``signal`` event per message of the other side
(or of the platform), its ``id`` the message's sequence number, so a reconnecting EventSource
resumes after the last one it saw (``Last-Event-ID``). It polls the call's messages (one
indexed query) each ``TICK`` on SQLite, and wakes on the ``calls`` signal on PostgreSQL. Once
the call is over and everything is delivered, the stream answers 204, which tells the browser
to stop reconnecting."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import RedirectResponse, Response
from sqlalchemy.orm import Session

from zhixing.command import calls, duty, policy, presenters, terms
from zhixing.command.models import CallSide, CallSignal, VideoCall
from zhixing.command.network import CenterRef, Network
from zhixing.core.actor import Actor
from zhixing.core.clock import utcnow
from zhixing.core.db import session_factory
from zhixing.core.errors import DomainError, Forbidden
from zhixing.core.settings import get_settings
from zhixing.web import i18n, sse
from zhixing.web.deps import ConsoleUser, DbSession, RecordId
from zhixing.web.templating import render
from zhixing.web.terms import N_

router = APIRouter(include_in_schema=False)

# ICE candidates trickle in: a quarter second a look keeps set-up quick; with PostgreSQL
# signals, every signalling message wakes the stream and it looks anyway every IDLE seconds.
TICK = 0.25
IDLE = 5.0
STREAM_SECONDS = 600  # then the EventSource reconnects, with Last-Event-ID
MAX_SEQ = 2**31 - 1
BATCH = 500


# --- the board ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Reachable:
    center: CenterRef
    relation: str  # parent / child / peer
    staffed: bool


def desk_calls(session: Session, actor: Actor, network: Network, center: CenterRef,
               now: datetime) -> dict[str, Any]:
    """What the board shows of calls: the calls ringing at this desk (for those on duty
    here), the actor's own calls in progress, and the centers the actor may call."""
    roles = duty.roster_roles(session, center.id, actor.user_id, now)
    answering = policy.may_answer(actor, center, roles)
    try:
        policy.require_caller(actor, center, roles)
        calling = True
    except Forbidden:
        calling = False
    ringing = calls.ringing_at(session, center, now) if answering else []
    mine = [c for c in calls.active_of(session, actor) if c.id not in {r.id for r in ringing}]
    reachable: list[Reachable] = []
    if calling:
        node = network.node(center)
        targets = policy.callable_centers(network, center)
        up = duty.staffed(session, [c.id for c in targets], now)
        for c in targets:
            other = network.node(c)
            relation = ("parent" if node.parent_id == other.court_id else
                        "child" if other.parent_id == node.court_id else "peer")
            reachable.append(Reachable(c, relation, c.id in up))
    names = presenters.user_names(session, [c.caller_id for c in ringing] +
                                  [c.answered_by for c in mine])
    return {"ringing_calls": [(c, network.center(c.caller_center_id)) for c in ringing],
            "my_calls": [(c, network.center(c.caller_center_id),
                          network.center(c.callee_center_id)) for c in mine],
            "call_names": names, "may_call": calling, "reachable": reachable}


# --- the call page -----------------------------------------------------------------------------


# What the page's script shows, in the page's language (the script has no catalog).
LABELS = {
    "dialling": N_("Calling…"), "ringing": N_("Ringing"), "connecting": N_("Connecting…"),
    "connected": N_("Connected"), "ended": N_("Call ended"),
    "declined": N_("Call declined"), "missed": N_("Call missed"), "failed": N_("Call failed"),
    "elsewhere": N_("Answered at another desk"),
    "no_media": N_("Camera or microphone not available"),
    "resume": N_("This call was opened in another window: hang up there, or here."),
    "mute": N_("Mute"), "unmute": N_("Unmute"), "camera_off": N_("Camera off"),
    "camera_on": N_("Camera on"), "play": N_("Play the other side's sound"),
    "refused": N_("The platform refused:"),
}


def _page_config(request: Request, actor: Actor, call: VideoCall | None, me: calls.Party | None,
                 to: CenterRef | None, accept: bool) -> str:
    settings = get_settings()
    config = {
        "call": call.id if call else None,
        "to": to.code if to else None,
        "side": str(me.side) if me and me.side else ("caller" if call is None else None),
        "mayAnswer": bool(me and me.may_answer),
        "state": str(call.state) if call else "dialling",
        "answeredAt": call.answered_at.isoformat() if call and call.answered_at else None,
        "endedAt": call.ended_at.isoformat() if call and call.ended_at else None,
        "duration": call.duration_seconds if call else None,
        "me": actor.user_id,
        "accept": accept,
        "iceServers": [s.model_dump(exclude_none=True) for s in settings.ice_servers],
        "csrf": getattr(request.state, "csrf_token", ""),
        "labels": {k: i18n.gettext(v) for k, v in LABELS.items()},
    }
    return json.dumps(config, ensure_ascii=False)


def _call_page(request: Request, actor: Actor, db: DbSession, call_id: int, *,
               accept: bool = False, error: DomainError | None = None) -> Response:
    network = Network(db)
    call = calls.get_call(db, actor, network, call_id)
    me = calls.party(db, actor, network, call)
    read = presenters.call_read(db, network, call, me)
    ctx = {"actor": actor, "call": read, "me": me, "error": error, "terms": terms,
           "config": _page_config(request, actor, call, me, None, accept),
           "caller_center": network.center(call.caller_center_id),
           "callee_center": network.center(call.callee_center_id),
           # the picture shows the other side: the caller's desk to the called one
           "peer_center": network.center(
               call.caller_center_id if me.side == CallSide.CALLEE or me.may_answer
               else call.callee_center_id)}
    return render(request, "command/call.html", ctx,
                  status_code=error.status_code if error else 200)


@router.get("/command/calls/new")
def dial_page(request: Request, actor: ConsoleUser, db: DbSession,
              to: Annotated[str, Query(min_length=1, max_length=16)]) -> Response:
    """The caller's page before the call exists: it opens the camera, makes the offer and
    places the call (then its address becomes the call's)."""
    network = Network(db)
    origin, target = calls.check_start(db, actor, network, to)
    ctx = {"actor": actor, "call": None, "me": None, "error": None, "terms": terms,
           "config": _page_config(request, actor, None, None, target, False),
           "caller_center": origin, "callee_center": target, "peer_center": target}
    return render(request, "command/call.html", ctx)


@router.get("/command/calls/{call_id}")
def call_page(call_id: RecordId, request: Request, actor: ConsoleUser, db: DbSession,
              accept: Annotated[bool, Query()] = False) -> Response:
    """The call: both videos, its state and length, mute, camera and hang-up; at the called
    desk while it rings, accept and decline."""
    return _call_page(request, actor, db, call_id, accept=accept)


@router.post("/command/calls/{call_id}/decline")
def decline_call(call_id: RecordId, request: Request, actor: ConsoleUser,
                 db: DbSession) -> Response:
    """Decline from the board's banner (no camera needed); back to the board."""
    try:
        calls.end(db, actor, Network(db), call_id, "decline")
    except DomainError as exc:
        db.rollback()
        return _call_page(request, actor, db, call_id, error=exc)
    return RedirectResponse("/command", status_code=303)


# --- the signalling stream ---------------------------------------------------------------------


def _reading_side(session: Session, actor: Actor, network: Network, call: VideoCall
                  ) -> CallSide:
    me = calls.party(session, actor, network, call)
    if me.side is not None:
        return me.side
    if me.may_answer:
        return CallSide.CALLEE  # the called desk reads the offer before it answers
    raise Forbidden("only the two sides of a call read its signalling", code="not_a_party")


def _message(signal: CallSignal) -> str:
    data = json.dumps({"seq": signal.seq, "side": str(signal.side), "kind": str(signal.kind),
                       "payload": signal.payload}, ensure_ascii=False, separators=(",", ":"))
    return sse.message("signal", data, signal.seq)


@dataclass
class _Poll:
    messages: list[str]
    last: int
    over: bool  # nothing more will come for this reader


def _poll(call_id: int, actor: Actor, side: CallSide, after: int) -> _Poll:
    with session_factory()() as session:
        call = session.get(VideoCall, call_id)
        if call is None:
            return _Poll([], after, True)
        network = Network(session)
        now = utcnow()
        # Rung out and no job has run yet: missed, for both sides. The other side gone quiet
        # (its page closed by a crash): failed. Else this page is here: recorded now and then.
        if (calls.expire_if_due(session, network, call, now)
                or calls.end_if_lost(session, network, call, now)
                or calls.touch(call, actor, side, now)):
            session.commit()
        rows = calls.signals_after(session, call.id, after, side, limit=BATCH)
        # Someone else at the called desk answered: this page learns so, and nothing more.
        elsewhere = side == CallSide.CALLEE and call.answered_by not in (None, actor.user_id)
        if elsewhere:
            rows = [r for r in rows if r.side == CallSide.PLATFORM]
        session.commit()
        last = rows[-1].seq if rows else after
        # A call's last message is the platform's word that it is over: once the call reads
        # over and a poll returns less than a full batch, the reader has everything.
        over = elsewhere or (call.state not in calls.ACTIVE and len(rows) < BATCH)
        return _Poll([_message(r) for r in rows], last, over)


def _event_id(value: str | None) -> int | None:
    if value is None or not value.isdigit() or len(value) > 10:
        return None
    seq = int(value)
    return seq if seq <= MAX_SEQ else None


@router.get("/command/calls/{call_id}/stream")
async def call_stream(call_id: RecordId, request: Request, actor: ConsoleUser, db: DbSession,
                      after: Annotated[int | None, Query(ge=0, le=MAX_SEQ)] = None
                      ) -> Response:
    """The other side's signalling messages, in order, as SSE ``signal`` events."""
    network = Network(db)
    call = calls.get_call(db, actor, network, call_id)
    side = _reading_side(db, actor, network, call)
    start = _event_id(request.headers.get("last-event-id")) or after or 0
    finished = call.state not in calls.ACTIVE and not calls.signals_after(
        db, call.id, start, side, limit=1)
    db.commit()
    if finished:
        return Response(status_code=204)

    last = start

    def look() -> sse.Polled:
        nonlocal last
        polled = _poll(call_id, actor, side, last)
        last = polled.last
        return sse.Polled(polled.messages, polled.over)

    return sse.response(sse.polling(request, look, sse.Pace(
        channel="calls", tick=TICK, idle=IDLE, retry_ms=2000, seconds=STREAM_SECONDS)))
