"""Console pages: the indicator report, and the command center's big screen with its live
stream (Server-Sent Events)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from datetime import date, timedelta
from typing import Annotated

from fastapi import APIRouter, Form, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response, StreamingResponse
from sqlalchemy import select

from zhixing.analytics import api, service, surveys
from zhixing.analytics import indicators as ind
from zhixing.core import ratelimit
from zhixing.core.db import session_factory
from zhixing.core.errors import DomainError
from zhixing.courts.models import Court
from zhixing.web import sse
from zhixing.web.deps import ConsoleUser, DbSession, client_ip
from zhixing.web.templating import render

router = APIRouter(include_in_schema=False)

STREAM_SECONDS = 900  # the browser's EventSource reconnects by itself after this
TICK_SECONDS = 1.0
COUNTER_EVERY_TICKS = 3


@router.get("/indicators")
def indicators_page(request: Request, actor: ConsoleUser, db: DbSession,
                    court: Annotated[str | None, Query(max_length=16)] = None,
                    start: date | None = None, end: date | None = None) -> Response:
    rep = service.report(db, actor, court, service.parse_period(start, end))
    trend = service.monthly_trend(db, actor, rep.court.code)
    return render(request, "analytics/indicators.html", {
        "actor": actor, "rep": rep, "labels": api.LABELS_ZH, "targets": ind.TARGETS,
        "rates": list(ind.RATES), "counts": list(ind.COUNTS),
        "chart": {"trend": trend, "ranking": [
            {"name": r.court.short_name_zh, "value": r.figures["conclusion_rate"]}
            for r in rep.children]}})


@router.get("/screen")
def screen(request: Request, actor: ConsoleUser, db: DbSession,
           court: Annotated[str | None, Query(max_length=16)] = None) -> Response:
    """The page shell paints at once; its script fetches the figures (``/screen/data``)."""
    root = service.court_in_reach(db, actor, court)
    return render(request, "analytics/screen.html", {"actor": actor, "court": root})


@router.get("/screen/data")
def screen_data(actor: ConsoleUser, db: DbSession,
                court: Annotated[str | None, Query(max_length=16)] = None) -> Response:
    rep = service.report(db, actor, court, service.parse_period(None, None))
    ids = list(db.scalars(select(Court.id).where(Court.path.startswith(rep.court.path))))
    data = {"court": rep.court.code, "counters": service.live_counters(db, ids),
            "total": rep.total,
            "shading": (service.city_shading(rep, "conclusion_rate")
                        if rep.court.level == "high" else []),
            "trend": service.monthly_trend(db, actor, rep.court.code),
            "ticker": service.ticker(db, ids, max(0, service.last_event_id(db) - 20)),
            "ranking": [{"name": r.court.short_name_zh, "value": r.figures["conclusion_rate"]}
                        for r in rep.children]}
    return Response(json.dumps(data, ensure_ascii=False, default=str),
                    media_type="application/json")


def _snapshot(court_ids: list[int], after: int, with_counters: bool) -> tuple[int, dict[
        str, object]]:
    with session_factory()() as session:  # a short session per tick: never held open
        events = service.ticker(session, court_ids, after)
        payload: dict[str, object] = {"events": events}
        if with_counters or events:
            payload["counters"] = service.live_counters(session, court_ids)
        session.commit()
    last = events[-1]["id"] if events else after
    return int(last), payload


@router.get("/screen/stream")
async def screen_stream(request: Request, actor: ConsoleUser, db: DbSession,
                        court: Annotated[str | None, Query(max_length=16)] = None,
                        after: Annotated[int | None, Query(ge=0)] = None) -> StreamingResponse:
    """Live updates: new case events and the counters, as SSE messages."""
    root = service.court_in_reach(db, actor, court)
    ids = list(db.scalars(select(Court.id).where(Court.path.startswith(root.path))))
    start_after = after if after is not None else service.last_event_id(db)
    db.commit()

    async def messages() -> AsyncIterator[str]:
        last = start_after
        yield f"retry: 3000\nevent: hello\ndata: {json.dumps({'after': last})}\n\n"
        for tick in range(int(STREAM_SECONDS / TICK_SECONDS)):
            if await request.is_disconnected():
                return
            last, payload = await run_in_threadpool(_snapshot, ids, last,
                                                    tick % COUNTER_EVERY_TICKS == 0)
            if payload.get("events") or "counters" in payload:
                data = json.dumps(payload, ensure_ascii=False, default=str)
                yield f"id: {last}\nevent: update\ndata: {data}\n\n"
            # A plain tick, no signal: case events come with every bank's answer, too many to
            # notify (core/signals.py).
            await asyncio.sleep(TICK_SECONDS)

    return sse.response(messages())


@router.get("/survey/{code}")
def survey_form(code: str, request: Request, db: DbSession) -> Response:
    try:
        survey = surveys.find(db, code)
    except DomainError as exc:
        return render(request, "analytics/survey.html", {"error": exc}, status_code=404)
    return render(request, "analytics/survey.html", {"survey": survey, "code": code})


@router.post("/survey/{code}")
def survey_answer(code: str, request: Request, db: DbSession,
                  score: Annotated[int, Form(ge=1, le=5)],
                  comment: Annotated[str | None, Form(max_length=500)] = None) -> Response:
    try:
        ratelimit.consume(db, f"survey:{client_ip(request)}", 20, timedelta(hours=1),
                          "too many attempts; try again later")
        surveys.answer(db, code, score, comment, client_ip(request))
    except DomainError as exc:
        db.rollback()
        return render(request, "analytics/survey.html", {"error": exc},
                      status_code=exc.status_code)
    return render(request, "analytics/survey.html", {"thanks": True})
