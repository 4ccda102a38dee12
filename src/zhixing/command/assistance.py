"""Assistance requests (协助执行 / 事项委托): opened by a center, carried hop by hop through the
hierarchy to the center that has the place, acknowledged at every hop, acted on, and answered
with the result and its evidence, which land on the asking case.

Every hop is a row; every change is a board event (the request's one timeline) and an audit
record. Refusals change nothing: they raise before the first write.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import BinaryIO

from sqlalchemy import Select, exists, or_, select
from sqlalchemy.orm import Session

from zhixing.cases import documents
from zhixing.cases.models import Case, CaseDocument
from zhixing.cases.service import event as case_event
from zhixing.command import board, limits, policy, routing
from zhixing.command.models import (
    AssistanceRequest,
    Evidence,
    Hop,
    RequestStatus,
)
from zhixing.command.network import CenterRef, Network
from zhixing.command.schemas import RequestIn, ResultIn
from zhixing.core import audit
from zhixing.core.actor import Actor
from zhixing.core.clock import utcnow
from zhixing.core.db import lock_for_update
from zhixing.core.errors import Conflict, Forbidden, NotFound, ValidationFailed
from zhixing.core.settings import get_settings

KIND_ZH = {"freeze": "冻结", "seal": "查封", "seize_vehicle": "扣押车辆",
           "find_person": "查找被执行人", "serve_document": "送达文书", "verify_lead": "核查线索",
           "other": "其他事项"}


def visible(network: Network, actor: Actor) -> Select[tuple[AssistanceRequest]]:
    """Requests whose way touches a center within the actor's reach."""
    ids = policy.visible_center_ids(network, actor)
    return select(AssistanceRequest).where(or_(
        AssistanceRequest.origin_center_id.in_(ids),
        exists().where(Hop.request_id == AssistanceRequest.id, Hop.to_center_id.in_(ids))))


def get_request(session: Session, actor: Actor, network: Network,
                request_id: int) -> AssistanceRequest:
    policy.require_read(actor)
    row = session.scalar(visible(network, actor).where(AssistanceRequest.id == request_id))
    if row is None:
        raise NotFound(f"request {request_id} not found", code="request_not_found")
    return row


def hops_of(session: Session, request_id: int) -> list[Hop]:
    return list(session.scalars(select(Hop).where(Hop.request_id == request_id)
                                .order_by(Hop.seq)))


def current_hop(session: Session, req: AssistanceRequest) -> Hop | None:
    return session.get(Hop, req.current_hop_id) if req.current_hop_id else None


def require_open(req: AssistanceRequest) -> None:
    """Nothing more happens on a closed request; a withdrawn one says so, so that a center
    still holding it knows to stand down rather than retry."""
    if req.status == RequestStatus.WITHDRAWN:
        raise Conflict("the asking center has withdrawn this request", code="request_withdrawn")
    if req.status != RequestStatus.OPEN:
        raise Conflict("the request is closed", code="request_closed")


def _check_route(network: Network, sender: CenterRef, receiver: CenterRef, place: CenterRef,
                 field: str) -> None:
    why = routing.refusal(network.tree, network.node(sender), network.node(receiver),
                          network.node(place))
    if why is not None:
        messages = {
            "same_center": "a center does not send a request to itself",
            "place_outside_receiver": "the place is outside the receiving center's area",
            "route_not_allowed": "requests go up to the parent center, down to a child center "
                                 "or across between city centers",
        }
        raise ValidationFailed(messages[why], code=why, field=field,
                               details={"from": sender.code, "to": receiver.code,
                                        "place": place.code})


def _receiver(network: Network, sender: CenterRef, place: CenterRef, code: str | None,
              field: str) -> CenterRef:
    if code:
        receiver = network.by_code(code, field)
    else:
        step = routing.next_center(network.tree, network.node(sender), network.node(place))
        if step is None:
            raise ValidationFailed("the place is in your own area: act on it yourself",
                                   code="place_is_own_area", field="place_court_code")
        receiver = network.of_node(step)
    _check_route(network, sender, receiver, place, field)
    return receiver


def _send(session: Session, actor: Actor, req: AssistanceRequest, seq: int, sender: CenterRef,
          receiver: CenterRef, note: str | None = None) -> Hop:
    now = utcnow()
    hop = Hop(request_id=req.id, seq=seq, from_center_id=sender.id, to_center_id=receiver.id,
              sent_at=now, sent_by=actor.user_id, ack_by=limits.acknowledge_by(req.urgency, now),
              note=note)
    session.add(hop)
    session.flush()
    req.current_hop_id = hop.id
    return hop


def open_request(session: Session, actor: Actor, network: Network, body: RequestIn, *,
                 to_center: CenterRef | None = None,
                 roll_call_answer_id: int | None = None) -> AssistanceRequest:
    """Open a request from the actor's center and send its first hop."""
    policy.require_ask(actor)
    origin = policy.own_center(network, actor)
    place = network.by_code(body.place_court_code, "place_court_code")
    if to_center is not None:
        _check_route(network, origin, to_center, place, "to_court_code")
        receiver = to_center
    else:
        receiver = _receiver(network, origin, place, body.to_court_code, "to_court_code")
    case: Case | None = None
    if body.case_id is not None:
        case = session.get(Case, body.case_id)
        if case is None or not actor.can_see_court(case.court_id):
            raise ValidationFailed("no such case within your reach", code="case_not_found",
                                   field="case_id")
    now = utcnow()
    req = AssistanceRequest(
        kind=body.kind, urgency=body.urgency, status=RequestStatus.OPEN,
        origin_center_id=origin.id, place_court_id=place.court_id, place=body.place,
        case_id=case.id if case else None, subject=body.subject, details=body.details,
        created_by=actor.user_id, created_at=now,
        act_by=limits.act_by(body.urgency, body.kind, now), escalations=0,
        roll_call_answer_id=roll_call_answer_id)
    session.add(req)
    session.flush()
    hop = _send(session, actor, req, 1, origin, receiver)
    label = KIND_ZH.get(str(req.kind), str(req.kind))
    board.post(session, actor, "request_opened",
               f"{origin.name} 请求协助（{label}）：{req.subject}", request_id=req.id,
               center_id=origin.id, to_center_id=receiver.id, hop_id=hop.id,
               urgency=str(req.urgency))
    if case is not None:
        case_event(session, case, actor, "assistance",
                   f"请求协助执行（{label}）：{req.subject}，送 {receiver.name}",
                   request_id=req.id)
    audit.record(session, actor, "command.request_opened", object_type="assistance_request",
                 object_id=req.id, court_id=origin.court_id,
                 case_id=case.id if case else None,
                 details={"kind": str(req.kind), "urgency": str(req.urgency),
                          "to": receiver.code, "place": place.code})
    return req


def get_hop(session: Session, actor: Actor, network: Network, hop_id: int) -> tuple[
        Hop, AssistanceRequest]:
    hop = session.get(Hop, hop_id)
    if hop is None:
        raise NotFound(f"hop {hop_id} not found", code="hop_not_found")
    try:
        req = get_request(session, actor, network, hop.request_id)
    except NotFound:
        raise NotFound(f"hop {hop_id} not found", code="hop_not_found") from None
    return hop, req


def _addressed(actor: Actor, network: Network, hop: Hop) -> CenterRef:
    center = network.center(hop.to_center_id)
    if actor.court_id != center.court_id:
        raise Forbidden("this hop is addressed to another center", code="not_your_hop")
    policy.require_duty(actor, center)
    return center


def acknowledge(session: Session, actor: Actor, network: Network, hop_id: int,
                note: str | None = None) -> Hop:
    hop, req = get_hop(session, actor, network, hop_id)
    center = _addressed(actor, network, hop)
    # The request first (as a withdrawal locks it), then the hop: acknowledging cannot slip
    # past a withdrawal committed meanwhile.
    lock_for_update(session, AssistanceRequest, req.id)
    lock_for_update(session, Hop, hop.id)
    session.refresh(req)
    session.refresh(hop)
    require_open(req)
    if hop.acknowledged_at is not None:
        raise Conflict("this hop is already acknowledged", code="already_acknowledged")
    hop.acknowledged_at = utcnow()
    hop.acknowledged_by = actor.user_id
    board.post(session, actor, "hop_acknowledged", f"{center.name} 已签收", request_id=req.id,
               center_id=center.id, hop_id=hop.id,
               late=hop.acknowledged_at > hop.ack_by, note=note)
    audit.record(session, actor, "command.hop_acknowledged", object_type="assistance_hop",
                 object_id=hop.id, court_id=center.court_id, case_id=req.case_id,
                 details={"request_id": req.id})
    return hop


def holding(session: Session, actor: Actor, network: Network, req: AssistanceRequest) -> tuple[
        Hop, CenterRef]:
    """The current hop, which the actor's center holds (acknowledged, not passed on)."""
    require_open(req)
    hop = current_hop(session, req)
    assert hop is not None
    center = _addressed(actor, network, hop)
    if hop.acknowledged_at is None:
        raise Conflict("acknowledge the request first", code="not_acknowledged")
    return hop, center


def forward(session: Session, actor: Actor, network: Network, hop_id: int,
            to_code: str | None, note: str | None = None) -> Hop:
    """Hand the request on from the center holding it: down towards the place (or across or
    up, when the place is outside its area)."""
    hop, req = get_hop(session, actor, network, hop_id)
    _addressed(actor, network, hop)
    lock_for_update(session, AssistanceRequest, req.id)
    session.refresh(req)
    require_open(req)
    if req.current_hop_id != hop.id:
        raise Conflict("this hop was already handed on", code="already_handed_down")
    _, center = holding(session, actor, network, req)
    place = network.center_of_court[req.place_court_id]
    receiver = _receiver(network, center, place, to_code, "to_court_code")
    hop.handed_down_at = utcnow()
    new = _send(session, actor, req, hop.seq + 1, center, receiver, note)
    board.post(session, actor, "hop_forwarded", f"{center.name} 转 {receiver.name}",
               request_id=req.id, center_id=center.id, to_center_id=receiver.id, hop_id=new.id)
    audit.record(session, actor, "command.hop_forwarded", object_type="assistance_hop",
                 object_id=new.id, court_id=center.court_id, case_id=req.case_id,
                 details={"request_id": req.id, "to": receiver.code})
    return new


def add_evidence(session: Session, actor: Actor, network: Network, request_id: int,
                 stream: BinaryIO, filename: str, note: str | None = None) -> Evidence:
    """A photo, video or document from the acting center; stored once by SHA-256 (the cases'
    storage and checks) and attached to the asking case as a document."""
    req = get_request(session, actor, network, request_id)
    _, center = holding(session, actor, network, req)
    clean = Path(filename or "evidence").name[:255] or "evidence"
    sha, size, kind = documents.store(stream, clean, get_settings().max_upload_bytes)
    return attach_evidence(session, actor, req, center, StoredFile(clean, sha, size, kind), note)


@dataclass(frozen=True)
class StoredFile:
    """A file already in the content-addressed store (``cases.documents.store``)."""

    filename: str
    sha256: str
    size_bytes: int
    content_type: str


def attach_evidence(session: Session, actor: Actor, req: AssistanceRequest, center: CenterRef,
                    file: StoredFile, note: str | None = None) -> Evidence:
    """Evidence on an open request, from ``center`` (the caller has checked that it acts
    there: its duty desk, or one of its field teams on a dispatch for the request)."""
    require_open(req)
    doc_id = None
    case = session.get(Case, req.case_id) if req.case_id else None
    if case is not None:
        doc = CaseDocument(case_id=case.id, filename=file.filename,
                           content_type=file.content_type, size_bytes=file.size_bytes,
                           sha256=file.sha256, uploaded_by=actor.user_id, uploaded_at=utcnow(),
                           note=f"协助执行证据（{center.name}）" + (f"：{note}" if note else ""))
        session.add(doc)
        session.flush()
        doc_id = doc.id
        case_event(session, case, actor, "document",
                   f"协助执行证据: {file.filename}（{center.name}）", document_id=doc.id,
                   sha256=file.sha256, size_bytes=file.size_bytes, request_id=req.id)
    ev = Evidence(request_id=req.id, center_id=center.id, filename=file.filename,
                  content_type=file.content_type, size_bytes=file.size_bytes,
                  sha256=file.sha256, case_document_id=doc_id, uploaded_by=actor.user_id,
                  uploaded_at=utcnow(), note=note)
    session.add(ev)
    session.flush()
    board.post(session, actor, "evidence", f"{center.name} 上传证据：{file.filename}",
               request_id=req.id, center_id=center.id, evidence_id=ev.id, sha256=file.sha256)
    audit.record(session, actor, "command.evidence_added", object_type="assistance_evidence",
                 object_id=ev.id, court_id=center.court_id, case_id=req.case_id,
                 details={"request_id": req.id, "sha256": file.sha256,
                          "size_bytes": file.size_bytes})
    return ev


def evidence_of(session: Session, request_id: int) -> list[Evidence]:
    return list(session.scalars(select(Evidence).where(Evidence.request_id == request_id)
                                .order_by(Evidence.id)))


def report_result(session: Session, actor: Actor, network: Network, request_id: int,
                  body: ResultIn) -> AssistanceRequest:
    """The acting center reports the result; it goes back to the asking case."""
    req = get_request(session, actor, network, request_id)
    lock_for_update(session, AssistanceRequest, req.id)
    session.refresh(req)
    _, center = holding(session, actor, network, req)
    now = utcnow()
    req.status = RequestStatus.DONE if body.outcome == "done" else RequestStatus.FAILED
    req.result_at = now
    req.result_by = actor.user_id
    req.result_center_id = center.id
    req.result_summary = body.summary
    files = evidence_of(session, req.id)
    word = "完成" if req.status == RequestStatus.DONE else "未能完成"
    board.post(session, actor, "result", f"{center.name} 协助{word}：{body.summary}",
               request_id=req.id, center_id=center.id, outcome=body.outcome,
               evidence=[e.id for e in files], late=now > req.act_by)
    case = session.get(Case, req.case_id) if req.case_id else None
    if case is not None:
        case_event(session, case, actor, "assistance",
                   f"协助执行结果（{center.name}，{word}）：{body.summary}", request_id=req.id,
                   outcome=body.outcome, document_ids=[e.case_document_id for e in files])
    audit.record(session, actor, "command.result_reported", object_type="assistance_request",
                 object_id=req.id, court_id=center.court_id, case_id=req.case_id,
                 details={"outcome": body.outcome, "evidence": [e.sha256 for e in files]})
    return req


def deadline_of(hop: Hop | None, req: AssistanceRequest) -> tuple[str, datetime] | None:
    """The clock the request runs against now: acknowledging its current hop, or acting."""
    if req.status != RequestStatus.OPEN or hop is None:
        return None
    if hop.acknowledged_at is None:
        return "acknowledge", min(hop.ack_by, req.act_by)
    return "act", req.act_by


def withdraw(session: Session, actor: Actor, network: Network, request_id: int,
             reason: str) -> AssistanceRequest:
    """The asking center takes its open request back (the debtor paid, the car left...).

    Every hop still open is closed with it: the centers holding or awaiting it see the
    withdrawal on their board, the sweep no longer escalates it (it watches open requests
    only), and later acknowledgements, evidence and results are refused with
    ``request_withdrawn``. A request whose result is back cannot be withdrawn.
    """
    req = get_request(session, actor, network, request_id)
    origin = network.center(req.origin_center_id)
    if actor.court_id != origin.court_id:
        raise Forbidden("only the asking center may withdraw its request",
                        code="not_your_request")
    policy.require_ask(actor)
    text = reason.strip()
    if len(text) < 2:
        raise ValidationFailed("say why the request is withdrawn", code="reason_required",
                               field="reason")
    lock_for_update(session, AssistanceRequest, req.id)
    session.refresh(req)
    if req.status == RequestStatus.WITHDRAWN:
        raise Conflict("the request is already withdrawn", code="request_withdrawn")
    if req.status != RequestStatus.OPEN:
        raise Conflict(f"the request is finished ({req.status.value}): its result is back",
                       code="request_finished", details={"status": req.status.value})
    now = utcnow()
    req.status = RequestStatus.WITHDRAWN
    # The closing moment and reason go where a result would: the request has one end.
    # result_center_id stays empty, so the figures never count a withdrawal as completed.
    req.result_at = now
    req.result_by = actor.user_id
    req.result_summary = text
    open_hops = [h for h in hops_of(session, req.id) if h.handed_down_at is None]
    board.post(session, actor, "withdrawn", f"{origin.name} 撤回协助请求：{text}",
               request_id=req.id, center_id=origin.id, reason=text,
               closed_hops=[h.id for h in open_hops])
    for hop in open_hops:
        # One event per closed hop, on the board of the center that held or awaited it.
        holder = network.center(hop.to_center_id)
        state = "已签收" if hop.acknowledged_at is not None else "未签收"
        board.post(session, actor, "hop_closed", f"{holder.name} 待办关闭（{state}，请求已撤回）",
                   request_id=req.id, center_id=holder.id, hop_id=hop.id)
    case = session.get(Case, req.case_id) if req.case_id else None
    if case is not None:
        label = KIND_ZH.get(str(req.kind), str(req.kind))
        case_event(session, case, actor, "assistance", f"撤回协助请求（{label}）：{text}",
                   request_id=req.id)
    audit.record(session, actor, "command.request_withdrawn", object_type="assistance_request",
                 object_id=req.id, court_id=origin.court_id, case_id=req.case_id,
                 details={"reason": text, "closed_hops": [h.id for h in open_hops],
                          "holder": network.center(open_hops[-1].to_center_id).code
                          if open_hops else None})
    return req
