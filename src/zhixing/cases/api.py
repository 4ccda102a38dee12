"""JSON API of enforcement cases."""

from __future__ import annotations

from datetime import date
from typing import Annotated

from fastapi import APIRouter, Depends, File, Form, Query, Request, UploadFile
from fastapi.responses import FileResponse, Response
from pydantic import BaseModel, Field
from sqlalchemy import select

from zhixing.cases import (
    documents,
    export,
    ledger,
    notices,
    presenters,
    queries,
    service,
    statutory,
)
from zhixing.cases.models import Case, CaseEvent
from zhixing.cases.schemas import (
    AssetIn,
    AssetRead,
    AssignIn,
    CaseCreate,
    CaseDetail,
    CaseList,
    ControlIn,
    DocumentRead,
    EventList,
    EventRead,
    ExtensionIn,
    FactIn,
    LedgerRead,
    MoneyIn,
    NoteIn,
    PauseIn,
    TransitionIn,
    WorkQueue,
)
from zhixing.core import audit, ratelimit
from zhixing.core.actor import Actor
from zhixing.core.errors import NotFound
from zhixing.core.pagination import clamp_limit, cursor_int, page_from
from zhixing.web.deps import CurrentUser, DbSession, RecordId, client_ip
from zhixing.web.errors import ERROR_RESPONSES

router = APIRouter(prefix="/api/v1", responses=ERROR_RESPONSES, tags=["cases"])
public_router = APIRouter(prefix="/api/v1/public", responses=ERROR_RESPONSES, tags=["public"])


def case_filter(
    court: Annotated[str | None, Query(max_length=16, description="court code")] = None,
    subordinates: Annotated[bool, Query(description="include courts below it")] = True,
    officer: Annotated[str | None, Query(max_length=64, description="officer username")] = None,
    state: Annotated[str | None, Query(max_length=16, description="a state, or 'open'")] = None,
    case_type: Annotated[str | None, Query(max_length=4)] = None,
    filed_from: date | None = None,
    filed_to: date | None = None,
    overdue: bool | None = None,
    q: Annotated[str | None, Query(max_length=64, description=(
        "a case number, or a party's exact name or ID number"))] = None,
    sort: Annotated[str, Query(max_length=16)] = "-filed_on",
) -> queries.CaseFilter:
    return queries.CaseFilter(court=court, include_subordinates=subordinates, officer=officer,
                              state=state, case_type=case_type, filed_from=filed_from,
                              filed_to=filed_to, overdue=overdue, q=q, sort=sort)


Filter = Annotated[queries.CaseFilter, Depends(case_filter)]


def _detail(db: DbSession, actor: Actor, case: Case) -> CaseDetail:
    db.flush()
    db.refresh(case)
    return presenters.detail(db, actor, case)


def _read_audited(db: DbSession, actor: Actor, case: Case, purpose: str) -> None:
    # Every read of a case file (parties' identities, property) is in the audit trail.
    audit.record(db, actor, "case.read", object_type="case", object_id=case.id,
                 court_id=case.court_id, case_id=case.id, purpose=purpose)


@router.post("/cases", status_code=201, response_model=CaseDetail)
def register_case(body: CaseCreate, actor: CurrentUser, db: DbSession) -> CaseDetail:
    """立案: register an enforcement case in the court's register."""
    return _detail(db, actor, service.register(db, actor, body))


@router.get("/cases", response_model=CaseList)
def list_cases(actor: CurrentUser, db: DbSession, f: Filter,
               limit: Annotated[int | None, Query()] = None,
               cursor: Annotated[str | None, Query(max_length=200)] = None) -> CaseList:
    """Cases within your reach, filtered, newest first, in keyset pages."""
    page = queries.page(db, actor, f, limit, cursor)
    return CaseList(items=presenters.summaries(db, page.items), next_cursor=page.next_cursor)


@router.get("/cases/export.xlsx", response_class=Response,
            responses={200: {"content": {"application/vnd.openxmlformats-officedocument."
                                         "spreadsheetml.sheet": {}}}})
def export_cases(actor: CurrentUser, db: DbSession, f: Filter) -> Response:
    """The filtered list as a spreadsheet (at most 20,000 rows)."""
    data = export.export(db, actor, f)
    return Response(data, media_type="application/vnd.openxmlformats-officedocument."
                    "spreadsheetml.sheet",
                    headers={"Content-Disposition": 'attachment; filename="cases.xlsx"'})


@router.get("/cases/queue", response_model=WorkQueue)
def work_queue(actor: CurrentUser, db: DbSession) -> WorkQueue:
    """My work: overdue and soon-due cases, controls about to lapse, my open cases."""
    queue = queries.work_queue(db, actor)
    expiring = ledger.expiring_controls(db, actor.visible_court_ids,
                                        statutory.RULES.freeze_warn_days,
                                        officer_id=actor.user_id)
    return WorkQueue(
        overdue=presenters.summaries(db, queue.overdue),
        due_soon=presenters.summaries(db, queue.due_soon),
        freezes_expiring=[{"case_id": c.id, "case_number": c.case_number, "asset_id": a.id,
                           "description": a.description, "expires_on": a.control_expires_on}
                          for a, c in expiring],
        my_open_cases=presenters.summaries(db, queue.open_cases))


@router.get("/cases/by-number", response_model=CaseDetail)
def case_by_number(actor: CurrentUser, db: DbSession,
                   number: Annotated[str, Query(max_length=48)]) -> CaseDetail:
    case = service.get_case_by_number(db, actor, number)
    _read_audited(db, actor, case, "case file")
    return presenters.detail(db, actor, case)


@router.get("/cases/{case_id}", response_model=CaseDetail)
def get_case(case_id: RecordId, actor: CurrentUser, db: DbSession) -> CaseDetail:
    case = service.get_case(db, actor, case_id)
    _read_audited(db, actor, case, "case file")
    return presenters.detail(db, actor, case)


@router.get("/cases/{case_id}/events", response_model=EventList)
def case_events(case_id: RecordId, actor: CurrentUser, db: DbSession,
                limit: Annotated[int | None, Query()] = None,
                cursor: Annotated[str | None, Query(max_length=200)] = None) -> EventList:
    """The case's timeline, newest first."""
    case = service.get_case(db, actor, case_id)
    n = clamp_limit(limit)
    stmt = select(CaseEvent).where(CaseEvent.case_id == case.id).order_by(CaseEvent.id.desc())
    after = cursor_int(cursor)
    if after is not None:
        stmt = stmt.where(CaseEvent.id < after)
    page = page_from(db.scalars(stmt.limit(n + 1)).all(), n, lambda e: [e.id])
    return EventList(items=[EventRead.model_validate(e) for e in page.items],
                     next_cursor=page.next_cursor)


@router.post("/cases/{case_id}/transitions", response_model=CaseDetail)
def transition(case_id: RecordId, body: TransitionIn, actor: CurrentUser,
               db: DbSession) -> CaseDetail:
    """Move the case: advance, suspend (中止), resume, or conclude (结案)."""
    case = service.get_case(db, actor, case_id)
    return _detail(db, actor, service.transition(db, actor, case, body))


@router.post("/cases/{case_id}/facts", response_model=CaseDetail, status_code=201)
def record_fact(case_id: RecordId, body: FactIn, actor: CurrentUser, db: DbSession) -> CaseDetail:
    """Record a procedural fact (notice issued, applicant interviewed, …)."""
    case = service.get_case(db, actor, case_id)
    service.record_fact(db, actor, case, body)
    return _detail(db, actor, case)


@router.post("/cases/{case_id}/extensions", response_model=CaseDetail, status_code=201)
def extend(case_id: RecordId, body: ExtensionIn, actor: CurrentUser, db: DbSession) -> CaseDetail:
    """An approved extension of the statutory period (approvers only)."""
    case = service.get_case(db, actor, case_id)
    service.extend_period(db, actor, case, body.months, body.reason)
    return _detail(db, actor, case)


@router.post("/cases/{case_id}/pauses", response_model=CaseDetail, status_code=201)
def start_pause(case_id: RecordId, body: PauseIn, actor: CurrentUser, db: DbSession) -> CaseDetail:
    """Stop the clock for audit, valuation, auction or settlement."""
    case = service.get_case(db, actor, case_id)
    service.start_pause(db, actor, case, body.reason, body.on)
    return _detail(db, actor, case)


@router.post("/cases/{case_id}/pauses/{reason}/end", response_model=CaseDetail)
def end_pause(case_id: RecordId, reason: str, actor: CurrentUser, db: DbSession,
              on: date | None = None) -> CaseDetail:
    case = service.get_case(db, actor, case_id)
    service.end_pause(db, actor, case, reason, on or service.today())
    return _detail(db, actor, case)


@router.post("/cases/{case_id}/officer", response_model=CaseDetail)
def assign(case_id: RecordId, body: AssignIn, actor: CurrentUser, db: DbSession) -> CaseDetail:
    case = service.get_case(db, actor, case_id)
    service.assign_officer(db, actor, case, body.officer_username)
    return _detail(db, actor, case)


@router.post("/cases/{case_id}/notes", response_model=EventRead, status_code=201)
def add_note(case_id: RecordId, body: NoteIn, actor: CurrentUser, db: DbSession) -> EventRead:
    case = service.get_case(db, actor, case_id)
    ev = service.add_note(db, actor, case, body.text)
    db.flush()
    return EventRead.model_validate(ev)


class ResumeIn(BaseModel):
    reason: str = Field(min_length=1, max_length=255)


@router.post("/cases/{case_id}/resume", response_model=CaseDetail, status_code=201)
def resume_case(case_id: RecordId, body: ResumeIn, actor: CurrentUser, db: DbSession) -> CaseDetail:
    """恢复执行 of a 终本 case: opens a linked 执恢 case for what is still owed."""
    case = service.get_case(db, actor, case_id)
    return _detail(db, actor, service.resume_closed_for_now(db, actor, case, body.reason))


@router.post("/cases/{case_id}/assets", response_model=AssetRead, status_code=201)
def add_asset(case_id: RecordId, body: AssetIn, actor: CurrentUser, db: DbSession) -> AssetRead:
    case = service.get_case(db, actor, case_id)
    return AssetRead.model_validate(ledger.add_asset(db, actor, case, body))


@router.post("/cases/{case_id}/assets/{asset_id}/control", response_model=AssetRead)
def control_asset(case_id: RecordId, asset_id: RecordId, body: ControlIn, actor: CurrentUser,
                  db: DbSession) -> AssetRead:
    """Freeze, seal, seize, renew or release an asset (recorded; online orders to banks are
    sent by the network inquiry module)."""
    case = service.get_case(db, actor, case_id)
    return AssetRead.model_validate(ledger.control(db, actor, case, asset_id, body))


@router.post("/cases/{case_id}/money", response_model=LedgerRead, status_code=201)
def record_money(case_id: RecordId, body: MoneyIn, actor: CurrentUser, db: DbSession) -> LedgerRead:
    """Money recovered into the case account, or paid out to an applicant."""
    case = service.get_case(db, actor, case_id)
    return LedgerRead.model_validate(ledger.record_money(db, actor, case, body))


@router.post("/cases/{case_id}/documents", response_model=DocumentRead, status_code=201)
def upload_document(case_id: RecordId, actor: CurrentUser, db: DbSession,
                    file: Annotated[UploadFile, File()],
                    note: Annotated[str | None, Form(max_length=500)] = None) -> DocumentRead:
    case = service.get_case(db, actor, case_id)
    doc = documents.add_document(db, actor, case, file.file, file.filename or "document", note)
    return DocumentRead.model_validate(doc)


@router.get("/cases/{case_id}/documents/{doc_id}", response_class=FileResponse)
def download_document(case_id: RecordId, doc_id: RecordId, actor: CurrentUser,
                      db: DbSession) -> FileResponse:
    case = service.get_case(db, actor, case_id)
    doc = documents.get_document(db, case, doc_id)
    path = documents.path_for(doc.sha256)
    if not path.exists():
        raise NotFound("the stored file is missing", code="file_missing")
    audit.record(db, actor, "case.document_read", object_type="document", object_id=doc.id,
                 court_id=case.court_id, case_id=case.id)
    return FileResponse(path, media_type=doc.content_type, filename=doc.filename)


class ProgressQuery(BaseModel):
    case_number: str = Field(min_length=1, max_length=48)
    query_code: str = Field(min_length=1, max_length=32)


class ProgressNode(BaseModel):
    on: date
    node: str


class Progress(BaseModel):
    case_number: str
    court: str
    state: str
    filed_on: date
    concluded_on: date | None
    nodes: list[ProgressNode]


LOOKUP_LIMIT = 10
LOOKUP_WINDOW_MINUTES = 10


@public_router.post("/case-progress", response_model=Progress)
def case_progress(body: ProgressQuery, request: Request, db: DbSession) -> Progress:
    """For parties: the progress of their case, with the code printed on their notice.
    Rate-limited per client; a wrong number and a wrong code get the same answer."""
    from datetime import timedelta

    ratelimit.consume(db, f"lookup:{client_ip(request)}", LOOKUP_LIMIT,
                      timedelta(minutes=LOOKUP_WINDOW_MINUTES),
                      "too many look-ups; try again later")
    db.commit()  # the attempt counts even when the answer is "no match" (a rolled-back 404)
    return progress_for(db, body.case_number, body.query_code, client_ip(request))


def progress_for(db: DbSession, case_number: str, code: str,
                 ip: str | None) -> Progress:
    number = case_number.strip().replace("(", "（").replace(")", "）")
    case = db.scalar(select(Case).where(Case.case_number == number))
    if case is None or not documents.query_code_matches(case.case_number, code):
        raise NotFound("no case matches this number and query code", code="no_match")
    events = db.scalars(select(CaseEvent).where(CaseEvent.case_id == case.id,
                                                CaseEvent.kind.in_(("registered",
                                                                    "transition")))
                        .order_by(CaseEvent.id)).all()
    nodes = [ProgressNode(on=e.occurred_at.date() if e.kind == "registered"
                          else date.fromisoformat(e.data.get("on") or
                                                  e.occurred_at.date().isoformat()),
                          node=e.data.get("after") or "filed") for e in events]
    court = notices.court_name(db, case)
    audit.record(db, Actor(kind="anonymous", client_ip=ip), "case.public_progress",
                 object_type="case", object_id=case.id, court_id=case.court_id,
                 case_id=case.id)
    return Progress(case_number=case.case_number, court=court, state=case.state,
                    filed_on=case.filed_on, concluded_on=case.concluded_on, nodes=nodes)


