"""JSON API of field work: tips, reward offers, resources and positions, dispatch orders,
incidents and figures; and the public routes for tipsters."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Annotated

from fastapi import APIRouter, File, Query, Request, UploadFile
from sqlalchemy import select
from sqlalchemy.orm import Session

from zhixing.cases import service as cases
from zhixing.cases.models import Case, CaseParty
from zhixing.core import audit, ratelimit
from zhixing.core.actor import Actor, anonymous
from zhixing.core.clock import to_local, utcnow
from zhixing.core.errors import NotFound, ValidationFailed
from zhixing.courts.models import Court
from zhixing.field import dispatch as dispatches
from zhixing.field import figures as figs
from zhixing.field import incidents, policy, positions, resources, rewards
from zhixing.field import tips as tipsvc
from zhixing.field.models import (
    Dispatch,
    DispatchStatus,
    FieldResource,
    LatestPosition,
    ResourceStatus,
    RewardAward,
    RewardOffer,
    Tip,
    TipChannel,
    TipOutcome,
    TipsterRelation,
)
from zhixing.field.schemas import (
    AnswerIn,
    AwardIn,
    AwardRead,
    CenterFiguresRead,
    DecisionIn,
    DispatchIn,
    DispatchList,
    DispatchRead,
    EvidenceRead,
    FiguresRead,
    IncidentList,
    IncidentRead,
    MergeIn,
    MoveIn,
    NearbyList,
    NearbyRead,
    OutcomeIn,
    PositionBatch,
    PositionsStored,
    PublicReward,
    PublicRewardList,
    RankedTip,
    ResolveIn,
    ResourceList,
    ResourceRead,
    ResourceStatusIn,
    RewardRead,
    RewardRequestIn,
    SosIn,
    TipCodeIn,
    TipInformationIn,
    TipList,
    TipMessageRead,
    TipPublicIn,
    TipPublicStatus,
    TipRead,
    TipReceipt,
    Tipster,
    TipTakeIn,
    TipTaken,
    TriageIn,
)
from zhixing.web.deps import CurrentUser, DbSession, RecordId, SmallRecordId, client_ip
from zhixing.web.errors import ERROR_RESPONSES

router = APIRouter(prefix="/api/v1", responses=ERROR_RESPONSES, tags=["field"])
public_router = APIRouter(prefix="/api/v1/public", responses=ERROR_RESPONSES,
                          tags=["public"])

# Tipsters: submissions and follow-ups share one budget per client address.
TIP_LIMIT = 10
TIP_WINDOW = timedelta(minutes=10)


def count_public(db: Session, request: Request) -> None:
    """Counted (and committed) before the input is looked at: a wrong code costs as much as a
    right one, so codes and case numbers cannot be tried in bulk."""
    ratelimit.consume(db, f"tips:{client_ip(request)}", TIP_LIMIT, TIP_WINDOW,
                      "too many requests; try again later")
    db.commit()


def tip_in(body: TipPublicIn, urgent: bool = False) -> tipsvc.TipIn:
    return tipsvc.TipIn(content=body.content, place=body.place, lon=body.lon, lat=body.lat,
                        urgent=urgent, tipster_name=body.tipster_name,
                        tipster_phone=body.tipster_phone,
                        relation=TipsterRelation(body.relation), case_number=body.case_number,
                        query_code=body.query_code, court_code=body.court_code)


def public_status(db: Session, tip: Tip) -> TipPublicStatus:
    root = tipsvc.root_of(db, tip)
    msgs = tipsvc.messages(db, tip)
    if root.id != tip.id:  # the answer given on the tip this one was merged into
        msgs = sorted([*msgs, *(m for m in tipsvc.messages(db, root) if not m.from_tipster)],
                      key=lambda m: m.at)
    return TipPublicStatus(status=root.status.value if root.id != tip.id else tip.status.value,
                           submitted_at=tip.submitted_at, checked=root.checked_at is not None,
                           answer=root.answer,
                           messages=[TipMessageRead.model_validate(m) for m in msgs])


@public_router.post("/tips", response_model=TipReceipt, status_code=201)
def submit_tip(body: TipPublicIn, request: Request, db: DbSession) -> TipReceipt:
    """For anyone: a tip about a debtor or their property, anonymous or with the case number
    and the query code on the notice. The follow-up code is shown once."""
    count_public(db, request)
    tip, code = tipsvc.submit_public(db, anonymous(client_ip(request)), tip_in(body))
    return TipReceipt(follow_code=tipsvc.format_code(code), status=tip.status.value,
                      due_at=tip.due_at)


@public_router.post("/tips/status", response_model=TipPublicStatus)
def tip_status(body: TipCodeIn, request: Request, db: DbSession) -> TipPublicStatus:
    """The tipster's view with the follow-up code: status and the court's answer."""
    count_public(db, request)
    return public_status(db, tipsvc.by_code(db, body.code))


@public_router.post("/tips/information", response_model=TipPublicStatus, status_code=201)
def tip_information(body: TipInformationIn, request: Request,
                    db: DbSession) -> TipPublicStatus:
    count_public(db, request)
    tip = tipsvc.by_code(db, body.code)
    tipsvc.add_information(db, anonymous(client_ip(request)), tip, body.text)
    return public_status(db, tip)


@public_router.get("/reward-offers", response_model=PublicRewardList)
def public_rewards(db: DbSession) -> PublicRewardList:
    """Published reward offers (悬赏公告)."""
    return PublicRewardList(items=public_reward_items(db))


def public_reward_items(db: Session) -> list[PublicReward]:
    out = []
    for offer, case in rewards.published(db):
        court = db.get(Court, case.court_id)
        assert court is not None
        debtors = [cp.party.name for cp in case.parties if cp.role == "debtor"]
        out.append(PublicReward(case_number=case.case_number, court=court.name_zh,
                                debtors=debtors, amount_fen=offer.amount_fen,
                                percent_bp=offer.percent_bp, published_at=offer.published_at))
    return out


def tip_read(db: Session, actor: Actor, tip: Tip, with_messages: bool = False) -> TipRead:
    courts = {c.id: c.code for c in db.scalars(select(Court).where(
        Court.id.in_((tip.court_id, tip.center_court_id))))}
    tipster = None
    if policy.may_see_tipster(actor, tip):
        tipster = Tipster(name=tip.tipster_name, phone=tip.tipster_phone,
                          relation=tip.tipster_relation.value)
    return TipRead(
        id=tip.id, channel=tip.channel.value, submitted_at=tip.submitted_at,
        content=tip.content, place=tip.place, lon=tip.lon, lat=tip.lat,
        court_code=courts[tip.court_id], center_code=courts[tip.center_court_id],
        case_id=tip.case_id, debtor_party_id=tip.debtor_party_id, urgent=tip.urgent,
        status=tip.status.value, due_at=tip.due_at, overdue=tipsvc.is_overdue(tip),
        checked_at=tip.checked_at, outcome=tip.outcome.value if tip.outcome else None,
        outcome_note=tip.outcome_note, answer=tip.answer, merged_into_id=tip.merged_into_id,
        anonymous=tip.anonymous, tipster=tipster,
        messages=[TipMessageRead.model_validate(m) for m in tipsvc.messages(db, tip)]
        if with_messages else [])


def _read_tip(db: Session, actor: Actor, tip: Tip) -> TipRead:
    out = tip_read(db, actor, tip, with_messages=True)
    if out.tipster is not None and not tip.anonymous:
        audit.record(db, actor, "tip.tipster_read", object_type="tip", object_id=tip.id,
                     court_id=tip.court_id, case_id=tip.case_id)
    return out


@router.post("/field/tips", response_model=TipTaken, status_code=201)
def take_tip(body: TipTakeIn, actor: CurrentUser, db: DbSession) -> TipTaken:
    """A tip taken by the duty desk from a phone call, or reported by a field team."""
    tip, code = tipsvc.take(db, actor, tip_in(body, body.urgent), TipChannel(body.channel),
                            body.case_id)
    return TipTaken(**tip_read(db, actor, tip).model_dump(),
                    follow_code=tipsvc.format_code(code))


@router.get("/field/tips", response_model=TipList)
def list_tips(actor: CurrentUser, db: DbSession,
              status: Annotated[str | None, Query(
                  pattern="^(open|received|triaged|checked|merged)$")] = None,
              overdue: bool = False,
              limit: Annotated[int, Query(ge=1, le=200)] = 50) -> TipList:
    policy.require_role(actor, policy.READ_ROLES, "read tips")
    rows = db.scalars(tipsvc.visible(actor, status, overdue)
                      .order_by(Tip.due_at, Tip.id).limit(limit))
    return TipList(items=[tip_read(db, actor, t) for t in rows])


@router.get("/field/tips/{tip_id}", response_model=TipRead)
def get_tip(tip_id: RecordId, actor: CurrentUser, db: DbSession) -> TipRead:
    return _read_tip(db, actor, tipsvc.get(db, actor, tip_id))


@router.post("/field/tips/{tip_id}/triage", response_model=TipRead)
def triage_tip(tip_id: RecordId, body: TriageIn, actor: CurrentUser, db: DbSession) -> TipRead:
    tip = tipsvc.get(db, actor, tip_id)
    tipsvc.triage(db, actor, tip, tipsvc.Triage(
        case_id=body.case_id, debtor_party_id=body.debtor_party_id, urgent=body.urgent,
        center_code=body.center_code,
        relation=TipsterRelation(body.relation) if body.relation else None))
    return _read_tip(db, actor, tip)


@router.post("/field/tips/{tip_id}/merge", response_model=TipRead)
def merge_tip(tip_id: RecordId, body: MergeIn, actor: CurrentUser, db: DbSession) -> TipRead:
    """Merge this tip (a duplicate) into another one."""
    tip = tipsvc.get(db, actor, tip_id)
    try:
        into = tipsvc.get(db, actor, body.into_id)
    except NotFound:
        raise ValidationFailed(f"tip {body.into_id} not found", code="tip_not_found",
                               field="into_id") from None
    return _read_tip(db, actor, tipsvc.merge(db, actor, tip, into))


@router.post("/field/tips/{tip_id}/outcome", response_model=TipRead)
def tip_outcome(tip_id: RecordId, body: OutcomeIn, actor: CurrentUser,
                db: DbSession) -> TipRead:
    tip = tipsvc.get(db, actor, tip_id)
    tipsvc.record_outcome(db, actor, tip, TipOutcome(body.outcome), body.note, body.answer)
    return _read_tip(db, actor, tip)


@router.post("/field/tips/{tip_id}/answers", response_model=TipRead, status_code=201)
def answer_tip(tip_id: RecordId, body: AnswerIn, actor: CurrentUser, db: DbSession) -> TipRead:
    tip = tipsvc.get(db, actor, tip_id)
    tipsvc.answer(db, actor, tip, body.text)
    return _read_tip(db, actor, tip)


def reward_read(db: Session, offer: RewardOffer) -> RewardRead:
    award = db.scalar(select(RewardAward).where(RewardAward.offer_id == offer.id))
    return RewardRead(
        id=offer.id, case_id=offer.case_id, applicant_party_id=offer.applicant_party_id,
        amount_fen=offer.amount_fen, percent_bp=offer.percent_bp, status=offer.status.value,
        requested_at=offer.requested_at, decide_by=offer.decide_by,
        decision_overdue=rewards.is_decision_overdue(offer), decided_at=offer.decided_at,
        published_at=offer.published_at,
        ranking=[RankedTip(rank=r.rank, tip_id=r.tip.id, submitted_at=r.tip.submitted_at,
                           eligible=r.eligible, reason=r.reason)
                 for r in rewards.ranking(db, offer)],
        award=AwardRead.model_validate(award) if award else None)


@router.post("/cases/{case_id}/reward-offers", response_model=RewardRead, status_code=201)
def request_reward(case_id: RecordId, body: RewardRequestIn, actor: CurrentUser,
                   db: DbSession) -> RewardRead:
    """The applicant's request for a reward offer (悬赏), decided within 10 days."""
    case = cases.get_case(db, actor, case_id)
    offer = rewards.request_offer(db, actor, case, body.applicant_party_id, body.amount_fen,
                                  body.percent_bp)
    return reward_read(db, offer)


@router.get("/field/reward-offers/{offer_id}", response_model=RewardRead)
def get_reward(offer_id: RecordId, actor: CurrentUser, db: DbSession) -> RewardRead:
    return reward_read(db, rewards.get(db, actor, offer_id))


@router.post("/field/reward-offers/{offer_id}/decision", response_model=RewardRead)
def decide_reward(offer_id: RecordId, body: DecisionIn, actor: CurrentUser,
                  db: DbSession) -> RewardRead:
    offer = rewards.get(db, actor, offer_id)
    return reward_read(db, rewards.decide(db, actor, offer, body.approve, body.note))


@router.post("/field/reward-offers/{offer_id}/awards", response_model=RewardRead,
             status_code=201)
def award_reward(offer_id: RecordId, body: AwardIn, actor: CurrentUser,
                 db: DbSession) -> RewardRead:
    """The reward to the first confirmed tip by submission time, out of the recovery."""
    offer = rewards.get(db, actor, offer_id)
    rewards.award(db, actor, offer, body.tip_id)
    return reward_read(db, offer)


def resource_read(db: Session, res: FieldResource, pos: LatestPosition | None,
                  codes: dict[int, str]) -> ResourceRead:
    return ResourceRead(id=res.id, code=res.code, kind=res.kind.value,
                        court_code=codes[res.court_id], label=res.label,
                        status=res.status.value, team_id=res.team_id,
                        lon=pos.lon if pos else None, lat=pos.lat if pos else None,
                        position_at=pos.at if pos else None)


@router.get("/field/resources", response_model=ResourceList)
def list_resources(actor: CurrentUser, db: DbSession,
                   court: Annotated[str | None, Query(max_length=16)] = None,
                   kind: Annotated[str | None, Query(max_length=16)] = None,
                   status: Annotated[str | None, Query(
                       pattern="^(available|on_task|off_duty)$")] = None,
                   limit: Annotated[int, Query(ge=1, le=1000)] = 200) -> ResourceList:
    policy.require_role(actor, policy.READ_ROLES, "read field resources")
    ids = actor.visible_court_ids
    if court:
        c = db.scalar(select(Court).where(Court.code == court))
        if c is None or c.id not in ids:
            raise ValidationFailed(f"no court {court!r} within reach", code="court_not_found",
                                   field="court")
        ids = frozenset({c.id})
    stmt = select(FieldResource, LatestPosition).outerjoin(
        LatestPosition, LatestPosition.resource_id == FieldResource.id).where(
        FieldResource.court_id.in_(ids))
    if kind:
        stmt = stmt.where(FieldResource.kind == resources.check_kind(kind))
    if status:
        stmt = stmt.where(FieldResource.status == status)
    rows = db.execute(stmt.order_by(FieldResource.id).limit(limit)).tuples().all()
    codes = dict(db.execute(select(Court.id, Court.code).where(Court.id.in_(
        {r.court_id for r, _ in rows}))).tuples().all())
    return ResourceList(items=[resource_read(db, r, p, codes) for r, p in rows])


@router.patch("/field/resources/{resource_id}", response_model=ResourceRead)
def set_resource_status(resource_id: SmallRecordId, body: ResourceStatusIn, actor: CurrentUser,
                        db: DbSession) -> ResourceRead:
    """Available, on a task, or off duty: the duty desk for anyone, a bailiff for themselves."""
    res = resources.get_resource(db, actor, resource_id)
    resources.set_status(db, actor, res, ResourceStatus(body.status))
    codes = dict(db.execute(select(Court.id, Court.code).where(
        Court.id == res.court_id)).tuples().all())
    return resource_read(db, res, db.get(LatestPosition, res.id), codes)


@router.post("/field/positions", response_model=PositionsStored, status_code=201)
def report_positions(body: PositionBatch, actor: CurrentUser, db: DbSession) -> PositionsStored:
    """Positions from field devices, vehicle systems and the field app, one or many at once.
    An implausible report (outside China or far from Guangxi, not a number, an impossible
    jump) refuses the whole batch with 422 and the report's index; nothing is stored."""
    stored = positions.record(db, actor, [
        positions.Report(resource=r.resource, at=r.at, lon=r.lon, lat=r.lat,
                         accuracy_m=r.accuracy_m) for r in body.reports])
    return PositionsStored(stored=stored)


def _nearby(items: list[positions.Nearby]) -> NearbyList:
    return NearbyList(items=[NearbyRead(id=n.id, label=n.label, court_id=n.court_id,
                                        distance_km=n.distance_km, lon=n.lon, lat=n.lat,
                                        at=n.at) for n in items])


@router.get("/field/teams/nearest", response_model=NearbyList)
def nearest_teams(actor: CurrentUser, db: DbSession, lon: float, lat: float,
                  limit: Annotated[int, Query(ge=1, le=20)] = 5) -> NearbyList:
    """Available teams within reach, nearest first (great-circle distance)."""
    policy.require_role(actor, policy.DESK_ROLES, "search teams")
    return _nearby(positions.nearest_teams(db, actor, lon, lat, limit))


@router.get("/field/vehicles/nearest", response_model=NearbyList)
def nearest_vehicles(actor: CurrentUser, db: DbSession, lon: float, lat: float,
                     limit: Annotated[int, Query(ge=1, le=20)] = 5) -> NearbyList:
    policy.require_role(actor, policy.DESK_ROLES, "search vehicles")
    return _nearby(positions.nearest_vehicles(db, actor, lon, lat, limit))


@router.post("/field/dispatches", response_model=DispatchRead, status_code=201)
def create_dispatch(body: DispatchIn, actor: CurrentUser, db: DbSession) -> Dispatch:
    """Send a team (the nearest available one if none is named) to a place."""
    return dispatches.create(db, actor, dispatches.DispatchIn(
        task=body.task, place=body.place, lon=body.lon, lat=body.lat, team_id=body.team_id,
        vehicle_id=body.vehicle_id, case_id=body.case_id, tip_id=body.tip_id,
        request_id=body.request_id))


@router.get("/field/dispatches", response_model=DispatchList)
def list_dispatches(actor: CurrentUser, db: DbSession,
                    status: Annotated[str | None, Query(
                        pattern="^(active|dispatched|en_route|on_scene|done|cancelled)$")
                    ] = "active",
                    mine: bool = False,
                    limit: Annotated[int, Query(ge=1, le=200)] = 50) -> DispatchList:
    """The dispatches within reach, or (``mine``) the tasks of the actor's own team."""
    if mine:
        stmt = select(Dispatch).where(Dispatch.team_id.in_(policy.teams_of(db, actor)))
    else:
        policy.require_role(actor, policy.READ_ROLES, "read dispatches")
        stmt = select(Dispatch).where(Dispatch.court_id.in_(actor.visible_court_ids))
    if status == "active":
        stmt = stmt.where(Dispatch.status.in_(dispatches.ACTIVE))
    elif status:
        stmt = stmt.where(Dispatch.status == status)
    rows = db.scalars(stmt.order_by(Dispatch.dispatched_at.desc(), Dispatch.id.desc())
                      .limit(limit))
    return DispatchList(items=[DispatchRead.model_validate(d) for d in rows])


@router.get("/field/dispatches/{dispatch_id}", response_model=DispatchRead)
def get_dispatch(dispatch_id: RecordId, actor: CurrentUser, db: DbSession) -> Dispatch:
    return dispatches.get(db, actor, dispatch_id)


@router.post("/field/dispatches/{dispatch_id}/status", response_model=DispatchRead)
def move_dispatch(dispatch_id: RecordId, body: MoveIn, actor: CurrentUser,
                  db: DbSession) -> Dispatch:
    """dispatched → en_route → on_scene → done, by the team or the duty desk; cancelled by the
    duty desk."""
    d = dispatches.get(db, actor, dispatch_id)
    return dispatches.move(db, actor, d, DispatchStatus(body.to), body.note)


@router.post("/field/dispatches/{dispatch_id}/documents", response_model=EvidenceRead,
             status_code=201)
def upload_evidence(dispatch_id: RecordId, actor: CurrentUser, db: DbSession,
                    file: Annotated[UploadFile, File()]) -> EvidenceRead:
    """A photo (JPEG, PNG) or video (MP4) from the scene, attached to the task's case (or to
    the assistance request the task is for)."""
    d = dispatches.get(db, actor, dispatch_id)
    return EvidenceRead.model_validate(
        dispatches.add_evidence(db, actor, d, file.file, file.filename or "evidence"))


@router.post("/field/incidents", response_model=IncidentRead, status_code=201)
def raise_sos(body: SosIn, actor: CurrentUser, db: DbSession) -> IncidentRead:
    """SOS: opens an incident at once, on every duty desk above the team."""
    return IncidentRead.model_validate(incidents.sos(db, actor, body.lon, body.lat, body.note))


@router.get("/field/incidents", response_model=IncidentList)
def list_incidents(actor: CurrentUser, db: DbSession, open_only: bool = True,
                   limit: Annotated[int, Query(ge=1, le=200)] = 50) -> IncidentList:
    policy.require_role(actor, policy.READ_ROLES, "read incidents")
    rows = db.scalars(incidents.visible(actor, open_only).limit(limit))
    return IncidentList(items=[IncidentRead.model_validate(i) for i in rows])


@router.post("/field/incidents/{incident_id}/acknowledge", response_model=IncidentRead)
def acknowledge_incident(incident_id: RecordId, actor: CurrentUser,
                         db: DbSession) -> IncidentRead:
    inc = incidents.get(db, actor, incident_id)
    return IncidentRead.model_validate(incidents.acknowledge(db, actor, inc))


@router.post("/field/incidents/{incident_id}/resolve", response_model=IncidentRead)
def resolve_incident(incident_id: RecordId, body: ResolveIn, actor: CurrentUser,
                     db: DbSession) -> IncidentRead:
    inc = incidents.get(db, actor, incident_id)
    return IncidentRead.model_validate(incidents.resolve(db, actor, inc, body.note))


@router.get("/field/figures", response_model=FiguresRead)
def field_figures(actor: CurrentUser, db: DbSession,
                  court: Annotated[str | None, Query(max_length=16)] = None,
                  start: date | None = None, end: date | None = None) -> FiguresRead:
    """Tips received and checked, dispatches, incidents handled, and the median times, by
    command center and period (default: this year to date, China time)."""
    root = db.get(Court, actor.court_id) if not court else db.scalar(
        select(Court).where(Court.code == court))
    if root is None or root.id not in actor.visible_court_ids:
        raise ValidationFailed(f"no court {court!r} within reach", code="court_not_found",
                               field="court")
    today = to_local(utcnow()).date()
    start = start or today.replace(month=1, day=1)
    end = end or today
    total, rows = figs.report(db, actor, root, start, end)
    return FiguresRead(court_code=root.code, start=start.isoformat(), end=end.isoformat(),
                       total=CenterFiguresRead.model_validate(total),
                       centers=[CenterFiguresRead.model_validate(r) for r in rows])


def applicants_of(case: Case) -> list[CaseParty]:
    return [cp for cp in case.parties if cp.role == "applicant"]
