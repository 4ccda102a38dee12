"""Dispatch orders: a task at a place for a team (and a vehicle), maybe for a case, or for
another center's assistance request.

dispatched → en_route → on_scene → done, or cancelled before done. The team moves its own task
forward; the duty desk may do so for it (a team that phones in) and alone may cancel. Every
transition has its own timestamp column. On an assistance request each step is also on the
request's timeline, and the scene's evidence becomes the request's evidence, so the asking
center follows the team without seeing this court's dispatch desk.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from sqlalchemy import select
from sqlalchemy.orm import Session

from zhixing.cases import documents
from zhixing.cases.models import Case, CaseDocument
from zhixing.cases.service import event
from zhixing.command import assistance, board
from zhixing.command.models import AssistanceRequest
from zhixing.command.network import CenterRef, Network, center_of_court
from zhixing.core import audit
from zhixing.core.actor import Actor
from zhixing.core.clock import utcnow
from zhixing.core.db import lock_for_update
from zhixing.core.errors import Conflict, Forbidden, NotFound, ValidationFailed
from zhixing.core.settings import get_settings
from zhixing.field import policy, positions
from zhixing.field.models import (
    Dispatch,
    DispatchEvidence,
    DispatchStatus,
    FieldResource,
    FieldTeam,
    ResourceKind,
    ResourceStatus,
    Tip,
)

S = DispatchStatus
NEXT: dict[DispatchStatus, tuple[DispatchStatus, ...]] = {
    S.DISPATCHED: (S.EN_ROUTE, S.CANCELLED),
    S.EN_ROUTE: (S.ON_SCENE, S.CANCELLED),
    S.ON_SCENE: (S.DONE, S.CANCELLED),
    S.DONE: (),
    S.CANCELLED: (),
}
ACTIVE = (S.DISPATCHED, S.EN_ROUTE, S.ON_SCENE)
STAMP = {S.EN_ROUTE: "en_route_at", S.ON_SCENE: "on_scene_at", S.DONE: "done_at",
         S.CANCELLED: "cancelled_at"}
EVIDENCE_TYPES = ("image/jpeg", "image/png", "video/mp4")


def can_move(current: DispatchStatus, to: DispatchStatus) -> bool:
    return to in NEXT[current]


@dataclass(frozen=True)
class DispatchIn:
    task: str
    place: str
    lon: float
    lat: float
    team_id: int | None = None  # None: the nearest available team
    vehicle_id: int | None = None
    case_id: int | None = None
    tip_id: int | None = None
    request_id: int | None = None


STEP_WORDS = {S.DISPATCHED: "已派出", S.EN_ROUTE: "出发", S.ON_SCENE: "到达现场", S.DONE: "完成",
              S.CANCELLED: "取消"}


def _held_request(session: Session, actor: Actor, request_id: int) -> tuple[
        AssistanceRequest, CenterRef]:
    """The request, which the actor's center holds now (acknowledged, not handed on)."""
    network = Network(session)
    try:
        req = assistance.get_request(session, actor, network, request_id)
    except NotFound:
        raise ValidationFailed(f"assistance request {request_id} not found",
                               code="request_not_found", field="request_id") from None
    _, center = assistance.holding(session, actor, network, req)
    return req, center


def _on_request(session: Session, actor: Actor, d: Dispatch, word: str,
                center: CenterRef | None = None) -> None:
    """The step on the request's timeline, said by the dispatching center."""
    if d.request_id is None:
        return
    center = center or center_of_court(session, d.court_id)
    team = session.get(FieldTeam, d.team_id)
    assert team is not None
    board.post(session, actor, "dispatch", f"{center.name} 派警 #{d.id}（{team.name}）：{word}",
               request_id=d.request_id, center_id=center.id, dispatch_id=d.id,
               status=d.status.value)


def create(session: Session, actor: Actor, data: DispatchIn) -> Dispatch:
    policy.require_role(actor, policy.DESK_ROLES, "dispatch field teams")
    positions.check_point(data.lon, data.lat)
    if not data.task.strip() or not data.place.strip():
        raise ValidationFailed("name the task and the place", code="task_required",
                               field="task")
    if data.team_id is None:
        near = positions.nearest_teams(session, actor, data.lon, data.lat, limit=1)
        if not near:
            raise Conflict("no available team within reach has a known position",
                           code="no_team_available")
        team_id = near[0].id
    else:
        team_id = data.team_id
    team = session.get(FieldTeam, team_id)
    if team is None or not actor.can_see_court(team.court_id):
        raise ValidationFailed(f"team {team_id} not found", code="team_not_found",
                               field="team_id")
    if team.status != ResourceStatus.AVAILABLE:
        raise Conflict(f"the team is {team.status.value}", code="team_not_available")
    vehicle = None
    if data.vehicle_id is not None:
        vehicle = session.get(FieldResource, data.vehicle_id)
        if vehicle is None or vehicle.kind != ResourceKind.VEHICLE or \
                not actor.can_see_court(vehicle.court_id):
            raise ValidationFailed(f"vehicle {data.vehicle_id} not found",
                                   code="vehicle_not_found", field="vehicle_id")
        if vehicle.status != ResourceStatus.AVAILABLE:
            raise Conflict(f"the vehicle is {vehicle.status.value}",
                           code="vehicle_not_available")
    case = None
    if data.case_id is not None:
        case = session.get(Case, data.case_id)
        if case is None or not actor.can_see_court(case.court_id):
            raise ValidationFailed(f"case {data.case_id} not found", code="case_not_found",
                                   field="case_id")
    request, holder = None, None
    if data.request_id is not None:
        if case is not None:
            # The request carries its case (maybe another court's): evidence goes there.
            raise ValidationFailed("a dispatch serves a case or an assistance request, not both",
                                   code="case_and_request", field="case_id")
        request, holder = _held_request(session, actor, data.request_id)
    if data.tip_id is not None:
        tip = session.get(Tip, data.tip_id)
        if tip is None or not policy.can_see_tip(actor, tip):
            raise ValidationFailed(f"tip {data.tip_id} not found", code="tip_not_found",
                                   field="tip_id")
    now = utcnow()
    assert actor.court_id is not None
    d = Dispatch(court_id=actor.court_id, task=data.task.strip(), place=data.place.strip(),
                 lon=data.lon, lat=data.lat, team_id=team.id,
                 vehicle_id=vehicle.id if vehicle else None, case_id=case.id if case else None,
                 tip_id=data.tip_id, request_id=request.id if request else None,
                 status=S.DISPATCHED, dispatched_at=now,
                 created_by=actor.user_id, updated_at=now)
    session.add(d)
    team.status = ResourceStatus.ON_TASK
    team.updated_at = now
    if vehicle is not None:
        vehicle.status = ResourceStatus.ON_TASK
        vehicle.updated_at = now
    session.flush()
    if case is not None:
        event(session, case, actor, "dispatch", f"派警 #{d.id}: {d.task}"[:255],
              dispatch_id=d.id, team=team.name)
    _on_request(session, actor, d, f"{STEP_WORDS[S.DISPATCHED]}，{d.task}", holder)
    audit.record(session, actor, "dispatch.created", object_type="dispatch", object_id=d.id,
                 court_id=d.court_id, case_id=d.case_id,
                 details={"team_id": team.id, "vehicle_id": d.vehicle_id,
                          "request_id": d.request_id})
    return d


def get(session: Session, actor: Actor, dispatch_id: int) -> Dispatch:
    d = session.get(Dispatch, dispatch_id)
    if d is None:
        raise NotFound(f"dispatch {dispatch_id} not found", code="dispatch_not_found")
    team = session.get(FieldTeam, d.team_id)
    assert team is not None
    if not policy.dispatch_visible(session, actor, d, team.court_id):
        raise NotFound(f"dispatch {dispatch_id} not found", code="dispatch_not_found")
    return d


def _require_team_or_desk(session: Session, actor: Actor, d: Dispatch) -> bool:
    """True when the actor acts as the duty desk, False as a team member."""
    team = session.get(FieldTeam, d.team_id)
    assert team is not None
    if policy.is_desk_for(actor, d, team.court_id):
        return True
    if d.team_id in policy.teams_of(session, actor):
        return False
    raise Forbidden("this task is not yours", code="not_your_task")


def move(session: Session, actor: Actor, d: Dispatch, to: DispatchStatus,
         note: str | None = None) -> Dispatch:
    as_desk = _require_team_or_desk(session, actor, d)
    if to == S.CANCELLED and not as_desk:
        raise Forbidden("only the duty desk cancels a dispatch", code="desk_only")
    if not can_move(d.status, to):
        raise Conflict(f"a dispatch that is {d.status.value} cannot become {to.value}",
                       code="invalid_transition", details={"from": d.status.value})
    return _apply(session, actor, d, to, note, "desk" if as_desk else "team")


def call_off_for_request(session: Session, actor: Actor, request_id: int,
                         reason: str) -> list[Dispatch]:
    """The asking center withdrew the request: the teams still out on it are called off (the
    sending desk and the team see why; the withdrawing actor is the one audited)."""
    rows = list(session.scalars(select(Dispatch).where(
        Dispatch.request_id == request_id, Dispatch.status.in_(ACTIVE)).order_by(Dispatch.id)))
    for d in rows:
        lock_for_update(session, Dispatch, d.id)
        session.refresh(d)
        if d.status in ACTIVE:
            _apply(session, actor, d, S.CANCELLED, f"协助请求已撤回：{reason}"[:4000],
                   "request_withdrawn")
    return rows


def _apply(session: Session, actor: Actor, d: Dispatch, to: DispatchStatus, note: str | None,
           by: str) -> Dispatch:
    now = utcnow()
    before = d.status
    d.status = to
    setattr(d, STAMP[to], now)
    d.updated_at = now
    if note:
        d.result = note
    if to in (S.DONE, S.CANCELLED):
        team = session.get(FieldTeam, d.team_id)
        assert team is not None
        # Free the team unless another of its tasks is still active.
        busy = session.scalar(select(Dispatch.id).where(
            Dispatch.team_id == d.team_id, Dispatch.id != d.id, Dispatch.status.in_(ACTIVE)))
        if busy is None:
            team.status = ResourceStatus.AVAILABLE
            team.updated_at = now
        if d.vehicle_id is not None:
            vehicle = session.get(FieldResource, d.vehicle_id)
            assert vehicle is not None
            vehicle.status = ResourceStatus.AVAILABLE
            vehicle.updated_at = now
    session.flush()
    if d.case_id is not None:
        case = session.get(Case, d.case_id)
        assert case is not None
        event(session, case, actor, "dispatch", f"派警 #{d.id}: {to.value}",
              dispatch_id=d.id, before=before.value, after=to.value)
    _on_request(session, actor, d, STEP_WORDS[to] + (f"，{note}" if note else ""))
    audit.record(session, actor, "dispatch.moved", object_type="dispatch", object_id=d.id,
                 court_id=d.court_id, case_id=d.case_id,
                 details={"from": before.value, "to": to.value, "by": by})
    return d


def for_teams(session: Session, team_ids: set[int], active_only: bool = True) -> list[Dispatch]:
    if not team_ids:
        return []
    stmt = select(Dispatch).where(Dispatch.team_id.in_(team_ids))
    if active_only:
        stmt = stmt.where(Dispatch.status.in_(ACTIVE))
    return list(session.scalars(stmt.order_by(Dispatch.dispatched_at.desc()).limit(50)))


def add_evidence(session: Session, actor: Actor, d: Dispatch, stream: BinaryIO,
                 filename: str) -> DispatchEvidence:
    """A photo or video from the scene: stored and checked as every case document (type by
    content, size limit, SHA-256) and attached to the task's case and its timeline, or, on an
    assistance request, to the request (and so to the asking case)."""
    if d.team_id not in policy.teams_of(session, actor):
        team = session.get(FieldTeam, d.team_id)
        assert team is not None
        if not policy.is_desk_for(actor, d, team.court_id):
            raise Forbidden("this task is not yours", code="not_your_task")
    if d.case_id is None and d.request_id is None:
        raise Conflict("the task has no case to attach evidence to", code="no_case")
    req = session.get(AssistanceRequest, d.request_id) if d.request_id is not None else None
    if req is not None:
        assistance.require_open(req)  # before storing: a closed request takes nothing more
    clean = Path(filename or "evidence").name[:255] or "evidence"
    sha, size, kind = documents.store(stream, clean, get_settings().max_upload_bytes)
    if kind not in EVIDENCE_TYPES:
        raise ValidationFailed("field evidence is a JPEG or PNG photo or an MP4 video",
                               code="file_type_not_allowed", field="file")
    now = utcnow()
    if req is not None:
        center = center_of_court(session, d.court_id)
        proof = assistance.attach_evidence(
            session, actor, req, center, assistance.StoredFile(clean, sha, size, kind),
            note=f"现场取证 派警 #{d.id}")
        ev = DispatchEvidence(dispatch_id=d.id, document_id=proof.case_document_id,
                              request_evidence_id=proof.id, sha256=sha,
                              uploaded_by=actor.user_id, uploaded_at=now)
        session.add(ev)
        session.flush()
        audit.record(session, actor, "dispatch.evidence_added", object_type="dispatch",
                     object_id=d.id, court_id=d.court_id,
                     details={"sha256": sha, "request_id": d.request_id,
                              "request_evidence_id": proof.id})
        return ev
    case = session.get(Case, d.case_id)
    assert case is not None
    doc = CaseDocument(case_id=case.id, filename=clean, content_type=kind, size_bytes=size,
                       sha256=sha, uploaded_by=actor.user_id, uploaded_at=now,
                       note=f"现场取证 派警 #{d.id}")
    session.add(doc)
    session.flush()
    ev = DispatchEvidence(dispatch_id=d.id, document_id=doc.id, sha256=sha,
                          uploaded_by=actor.user_id, uploaded_at=now)
    session.add(ev)
    session.flush()
    event(session, case, actor, "document", f"现场取证: {clean}"[:255], document_id=doc.id,
          sha256=sha, size_bytes=size, dispatch_id=d.id)
    audit.record(session, actor, "dispatch.evidence_added", object_type="document",
                 object_id=doc.id, court_id=case.court_id, case_id=case.id,
                 details={"sha256": sha, "dispatch_id": d.id})
    return ev


def evidence_of(session: Session, d: Dispatch) -> list[DispatchEvidence]:
    return list(session.scalars(select(DispatchEvidence).where(
        DispatchEvidence.dispatch_id == d.id).order_by(DispatchEvidence.id)))
