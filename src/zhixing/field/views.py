"""Console pages of field work: the field app for a team's phone, and the live map."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator

from fastapi import APIRouter, Request
from fastapi.responses import Response, StreamingResponse
from sqlalchemy import select

from zhixing.cases.models import Case
from zhixing.core.errors import Forbidden
from zhixing.field import dispatch as dispatches
from zhixing.field import incidents, live, policy, resources
from zhixing.field.models import FieldTeam, LatestPosition
from zhixing.web.deps import ConsoleUser, DbSession
from zhixing.web.templating import render

router = APIRouter(include_in_schema=False)

STREAM_SECONDS = 900  # the browser's EventSource reconnects by itself after this
KEEPALIVE_SECONDS = 15.0
MAP_ROLES = (*policy.DESK_ROLES, "approver", "officer", "auditor", "admin")


@router.get("/field")
def field_app(request: Request, actor: ConsoleUser, db: DbSession) -> Response:
    """A field team's phone: its tasks, big status buttons, position, evidence, SOS."""
    policy.require_role(actor, (*policy.FIELD_ROLES, *policy.DESK_ROLES), "use the field app")
    me = resources.my_bailiff(db, actor)
    team = db.get(FieldTeam, me.team_id) if me is not None and me.team_id else None
    tasks = dispatches.for_teams(db, {team.id}) if team is not None else []
    cases = {c.id: c.case_number for c in db.scalars(select(Case).where(
        Case.id.in_([t.case_id for t in tasks if t.case_id])))}
    last = db.get(LatestPosition, me.id) if me is not None else None
    return render(request, "field/app.html", {
        "actor": actor, "me": me, "team": team, "tasks": tasks, "cases": cases,
        "last": last, "next": dispatches.NEXT,
        "evidence": {t.id: len(dispatches.evidence_of(db, t)) for t in tasks}})


def _require_map(actor_roles: bool) -> None:
    if not actor_roles:
        raise Forbidden("your role may not watch the command map", code="role_forbidden")


@router.get("/field/map")
def field_map(request: Request, actor: ConsoleUser, db: DbSession) -> Response:
    """The live map of Guangxi: centers, resources, dispatches, tips and incidents."""
    _require_map(actor.has_role(*MAP_ROLES))
    open_incidents = list(db.scalars(incidents.visible(actor).limit(20)))
    return render(request, "field/map.html", {"actor": actor, "incidents": open_incidents})


@router.get("/field/map/data")
def field_map_data(actor: ConsoleUser, db: DbSession) -> Response:
    _require_map(actor.has_role(*MAP_ROLES))
    data = live.snapshot(db, actor)
    return Response(json.dumps(data, ensure_ascii=False, separators=(",", ":")),
                    media_type="application/json", headers={"Cache-Control": "no-store"})


@router.get("/field/map/stream")
async def field_map_stream(request: Request, actor: ConsoleUser,
                           db: DbSession) -> StreamingResponse:
    """Live changes within the viewer's reach, as SSE messages, from the process's one poll."""
    _require_map(actor.has_role(*MAP_ROLES))
    db.commit()
    viewer = live.HUB.subscribe(actor.visible_court_ids)

    async def messages() -> AsyncIterator[str]:
        loop = asyncio.get_running_loop()
        ends = loop.time() + STREAM_SECONDS
        try:
            yield "retry: 2000\nevent: hello\ndata: {}\n\n"
            while loop.time() < ends:
                try:
                    data = await asyncio.wait_for(viewer.queue.get(), KEEPALIVE_SECONDS)
                except TimeoutError:
                    if await request.is_disconnected():
                        return
                    yield ": keepalive\n\n"
                    continue
                yield f"event: update\ndata: {data}\n\n"
        finally:
            live.HUB.unsubscribe(viewer)

    return StreamingResponse(messages(), media_type="text/event-stream",
                             headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"})
