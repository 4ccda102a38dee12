"""Figures of the command network, as the seed reports them: coordinations (requests opened and
received), cases assisted, median time to acknowledge a hop and to complete a request, late
acknowledgements and escalations, and roll-call answers, by center and period."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from datetime import datetime
from statistics import median

from pydantic import BaseModel
from sqlalchemy import select
from sqlalchemy.orm import Session

from zhixing.command.models import (
    AnswerStatus,
    AssistanceRequest,
    Escalation,
    Hop,
    RequestStatus,
    RollCallAnswer,
)
from zhixing.command.network import CenterRef


class CenterFigures(BaseModel):
    court_code: str
    center: str
    requests_opened: int = 0  # coordinations this center asked for
    hops_received: int = 0  # coordinations that reached it
    hops_acknowledged_late: int = 0
    completed: int = 0  # results reported by this center (done or failed)
    done: int = 0
    cases_assisted: int = 0  # distinct asking cases it completed a request for
    median_acknowledge_seconds: float | None = None
    median_complete_seconds: float | None = None  # opened → result, requests it completed
    escalations: int = 0  # raised against it
    roll_calls: int = 0
    roll_calls_answered_late: int = 0
    roll_calls_unanswered: int = 0


class Figures(BaseModel):
    start: datetime
    end: datetime
    total: CenterFigures
    centers: list[CenterFigures]


def _median(values: list[float]) -> float | None:
    return round(median(values), 1) if values else None


def compute(session: Session, centers: Sequence[CenterRef], start: datetime,
            end: datetime) -> Figures:
    ids = [c.id for c in centers]
    rows = {c.id: CenterFigures(court_code=c.code, center=c.name) for c in centers}
    total = CenterFigures(court_code="*", center="*")
    ack: dict[int, list[float]] = defaultdict(list)
    complete: dict[int, list[float]] = defaultdict(list)
    cases: dict[int, set[int]] = defaultdict(set)
    all_ack: list[float] = []
    all_complete: list[float] = []
    all_cases: set[int] = set()
    in_period = (AssistanceRequest.created_at >= start, AssistanceRequest.created_at < end)
    for origin in session.scalars(select(AssistanceRequest.origin_center_id).where(
            AssistanceRequest.origin_center_id.in_(ids), *in_period)):
        rows[origin].requests_opened += 1
    total.requests_opened = sum(r.requests_opened for r in rows.values())
    for to, sent, acked, due in session.execute(select(
            Hop.to_center_id, Hop.sent_at, Hop.acknowledged_at, Hop.ack_by).where(
            Hop.to_center_id.in_(ids), Hop.sent_at >= start, Hop.sent_at < end)).tuples():
        r = rows[to]
        r.hops_received += 1
        total.hops_received += 1
        if acked is not None:
            secs = (acked - sent).total_seconds()
            ack[to].append(secs)
            all_ack.append(secs)
            if acked > due:
                r.hops_acknowledged_late += 1
                total.hops_acknowledged_late += 1
    for center, status, created, result, case in session.execute(select(
            AssistanceRequest.result_center_id, AssistanceRequest.status,
            AssistanceRequest.created_at, AssistanceRequest.result_at,
            AssistanceRequest.case_id).where(
            AssistanceRequest.result_center_id.in_(ids), AssistanceRequest.result_at >= start,
            AssistanceRequest.result_at < end)).tuples():
        assert center is not None and result is not None
        r = rows[center]
        r.completed += 1
        total.completed += 1
        if status == RequestStatus.DONE:
            r.done += 1
            total.done += 1
        secs = (result - created).total_seconds()
        complete[center].append(secs)
        all_complete.append(secs)
        if case is not None:
            cases[center].add(case)
            all_cases.add(case)
    for late in session.scalars(select(Escalation.late_center_id).where(
            Escalation.late_center_id.in_(ids), Escalation.escalated_at >= start,
            Escalation.escalated_at < end)):
        rows[late].escalations += 1
        total.escalations += 1
    for center, answer, answered, due in session.execute(select(
            RollCallAnswer.center_id, RollCallAnswer.status, RollCallAnswer.answered_at,
            RollCallAnswer.answer_by).where(
            RollCallAnswer.center_id.in_(ids), RollCallAnswer.answer_by >= start,
            RollCallAnswer.answer_by < end)).tuples():
        r = rows[center]
        r.roll_calls += 1
        total.roll_calls += 1
        if answer == AnswerStatus.PENDING:
            r.roll_calls_unanswered += 1
            total.roll_calls_unanswered += 1
        elif answered is not None and answered > due:
            r.roll_calls_answered_late += 1
            total.roll_calls_answered_late += 1
    for cid, r in rows.items():
        r.median_acknowledge_seconds = _median(ack[cid])
        r.median_complete_seconds = _median(complete[cid])
        r.cases_assisted = len(cases[cid])
    total.median_acknowledge_seconds = _median(all_ack)
    total.median_complete_seconds = _median(all_complete)
    total.cases_assisted = len(all_cases)
    return Figures(start=start, end=end, total=total, centers=list(rows.values()))
