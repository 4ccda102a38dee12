"""The live map's feed: one database poll per process, shared by every viewer.

Every ``TICK`` seconds while anyone watches, one short session reads what changed since the last
look (positions by ``received_at``, dispatches, incidents, tips and resources by
``updated_at``, each through its index), with an overlap for transactions that committed after
a later one; each item carries a version, and only items whose version moved are sent. Each
viewer gets the changes inside their reach, encoded once per distinct reach. Any process that
writes is seen by every process that watches, through the database alone.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from zhixing.core.actor import Actor
from zhixing.core.clock import utcnow
from zhixing.core.db import session_factory
from zhixing.core.signals import SIGNALS
from zhixing.courts.models import Court
from zhixing.field import dispatch as dispatches
from zhixing.field import tips as tipsvc
from zhixing.field.models import (
    Dispatch,
    FieldResource,
    FieldTeam,
    Incident,
    IncidentStatus,
    LatestPosition,
    Tip,
)

LOG = logging.getLogger(__name__)
TICK = 0.3
# Reports are stamped when the request is handled and committed a few milliseconds later;
# the overlap re-reads that window so a late commit is never missed (versions drop repeats).
OVERLAP = timedelta(seconds=1.5)
QUEUE_LIMIT = 64  # a viewer this far behind is told to reload the snapshot

Item = dict[str, Any]


def _ms(moment: datetime | None) -> float | None:
    return None if moment is None else round(moment.timestamp() * 1000, 3)


def _center_points(session: Session) -> dict[int, tuple[float | None, float | None]]:
    return {cid: (lon, lat) for cid, lon, lat in session.execute(
        select(Court.id, Court.lon, Court.lat))}


def position_items(session: Session, since: datetime | None,
                   court_ids: frozenset[int] | None = None) -> list[Item]:
    """Resources with their latest position. Since a moment: a move sends only where and when
    (the viewer keeps what it knows of the resource), a change of status sends everything."""
    full = (select(LatestPosition.resource_id, LatestPosition.lon, LatestPosition.lat,
                   LatestPosition.at, LatestPosition.received_at, FieldResource.kind,
                   FieldResource.court_id, FieldResource.status, FieldResource.label,
                   FieldResource.team_id, FieldResource.updated_at)
            .join(FieldResource, FieldResource.id == LatestPosition.resource_id))
    if court_ids is not None:
        full = full.where(FieldResource.court_id.in_(court_ids))
    if since is None:
        rows = list(session.execute(full))
    else:
        # Two index range scans: what changed status, and what moved (the hot one: few
        # columns, no objects).
        rows = list(session.execute(full.where(FieldResource.updated_at > since)))
        moved = session.execute(
            select(LatestPosition.resource_id, LatestPosition.lon, LatestPosition.lat,
                   LatestPosition.at, LatestPosition.received_at, FieldResource.court_id)
            .join(FieldResource, FieldResource.id == LatestPosition.resource_id)
            .where(LatestPosition.received_at > since))
        changed = {row[0] for row in rows}
        light = [{"layer": "resources", "id": rid, "court_id": cid, "lon": lon, "lat": lat,
                  "at": _ms(at), "r": _ms(received), "v": _ms(received)}
                 for rid, lon, lat, at, received, cid in moved if rid not in changed]
    items = [{"layer": "resources", "id": rid, "kind": kind.value, "court_id": cid,
              "status": status.value, "label": label, "team_id": team_id, "lon": lon,
              "lat": lat, "at": _ms(at), "r": _ms(received),
              "v": max(_ms(received) or 0, _ms(updated) or 0)}
             for rid, lon, lat, at, received, kind, cid, status, label, team_id, updated in rows]
    return items if since is None else items + light


def dispatch_items(session: Session, since: datetime | None,
                   court_ids: frozenset[int] | None = None) -> list[Item]:
    stmt = select(Dispatch, FieldTeam.court_id, FieldTeam.name).join(
        FieldTeam, FieldTeam.id == Dispatch.team_id)
    if since is not None:
        stmt = stmt.where(Dispatch.updated_at > since)
    else:
        stmt = stmt.where(Dispatch.status.in_(dispatches.ACTIVE))
    if court_ids is not None:
        stmt = stmt.where(Dispatch.court_id.in_(court_ids) | FieldTeam.court_id.in_(court_ids))
    return [{"layer": "dispatches", "id": d.id, "court_id": d.court_id, "team_court_id": tc,
             "team": team, "task": d.task, "place": d.place, "lon": d.lon, "lat": d.lat,
             "status": d.status.value, "r": _ms(d.updated_at), "v": _ms(d.updated_at)}
            for d, tc, team in session.execute(stmt).tuples()]


def incident_items(session: Session, since: datetime | None,
                   court_ids: frozenset[int] | None = None) -> list[Item]:
    stmt = select(Incident)
    if since is not None:
        stmt = stmt.where(Incident.updated_at > since)
    else:
        stmt = stmt.where(Incident.status != IncidentStatus.RESOLVED)
    if court_ids is not None:
        stmt = stmt.where(Incident.court_id.in_(court_ids))
    return [{"layer": "incidents", "id": i.id, "court_id": i.court_id, "kind": i.kind,
             "status": i.status.value, "lon": i.lon, "lat": i.lat, "note": i.note,
             "at": _ms(i.reported_at), "r": _ms(i.updated_at), "v": _ms(i.updated_at)}
            for i in session.scalars(stmt)]


def tip_items(session: Session, since: datetime | None, points: dict[int, tuple[
        float | None, float | None]], court_ids: frozenset[int] | None = None) -> list[Item]:
    # No tipster and no content on the map: where, how urgent, how late.
    stmt = select(Tip)
    if since is not None:
        stmt = stmt.where(Tip.updated_at > since)
    else:
        stmt = stmt.where(Tip.status.in_(tipsvc.OPEN))
    if court_ids is not None:
        stmt = stmt.where(Tip.center_court_id.in_(court_ids) | Tip.court_id.in_(court_ids))
    now = utcnow()
    out = []
    for t in session.scalars(stmt):
        lon, lat = (t.lon, t.lat) if t.lon is not None else points.get(t.center_court_id,
                                                                       (None, None))
        out.append({"layer": "tips", "id": t.id, "court_id": t.center_court_id,
                    "handling_court_id": t.court_id, "status": t.status.value,
                    "urgent": t.urgent, "overdue": tipsvc.is_overdue(t, now), "lon": lon,
                    "lat": lat, "place": t.place, "r": _ms(t.updated_at),
                    "v": _ms(t.updated_at)})
    return out


def snapshot(session: Session, actor: Actor) -> dict[str, Any]:
    """What a map shows when it opens; the stream then sends what changes."""
    ids = actor.visible_court_ids
    points = _center_points(session)
    centers = [{"id": c.id, "code": c.code, "name": c.short_name_zh, "level": c.level.value,
                "lon": c.lon, "lat": c.lat}
               for c in session.scalars(select(Court).where(Court.id.in_(ids)))
               if c.lon is not None]
    return {"centers": centers,
            "resources": position_items(session, None, ids),
            "dispatches": dispatch_items(session, None, ids),
            "incidents": incident_items(session, None, ids),
            "tips": tip_items(session, None, points, ids),
            "t": _ms(utcnow())}


def poll(since: datetime | None) -> tuple[datetime, list[Item]]:
    with session_factory()() as session:
        now = utcnow()
        start = (since or now) - OVERLAP
        points = _center_points(session)
        items = [*position_items(session, start), *dispatch_items(session, start),
                 *incident_items(session, start), *tip_items(session, start, points)]
        session.commit()
    return now, items


def _courts_of(item: Item) -> tuple[int, ...]:
    extra = item.get("team_court_id") or item.get("handling_court_id")
    return (item["court_id"], extra) if extra else (item["court_id"],)


@dataclass(eq=False)
class Viewer:
    court_ids: frozenset[int]
    queue: asyncio.Queue[str] = field(default_factory=lambda: asyncio.Queue(QUEUE_LIMIT))


class MapHub:
    """The viewers of this process and the one loop that feeds them."""

    def __init__(self) -> None:
        self.viewers: set[Viewer] = set()
        self._task: asyncio.Task[None] | None = None
        self._versions: dict[tuple[str, int], float] = {}
        self._since: datetime | None = None
        self.polls = 0

    def subscribe(self, court_ids: frozenset[int]) -> Viewer:
        viewer = Viewer(court_ids)
        self.viewers.add(viewer)
        loop = asyncio.get_running_loop()
        if self._task is None or self._task.done() or self._task.get_loop() is not loop:
            self._task = loop.create_task(self._run())
        return viewer

    def unsubscribe(self, viewer: Viewer) -> None:
        self.viewers.discard(viewer)

    def fresh(self, items: list[Item]) -> list[Item]:
        out = []
        for item in items:
            key = (item["layer"], item["id"])
            v = item["v"] or 0
            if self._versions.get(key, -1.0) < v:
                self._versions[key] = v
                out.append(item)
        return out

    def publish(self, items: list[Item]) -> None:
        if not items:
            return
        sent = _ms(utcnow())
        encoded: dict[frozenset[int], str] = {}
        for viewer in list(self.viewers):
            data = encoded.get(viewer.court_ids)
            if data is None:
                mine = [i for i in items if any(c in viewer.court_ids for c in _courts_of(i))]
                data = json.dumps({"t": sent, "items": mine}, ensure_ascii=False,
                                  separators=(",", ":")) if mine else ""
                encoded[viewer.court_ids] = data
            if not data:
                continue
            if viewer.queue.full():
                with contextlib.suppress(asyncio.QueueEmpty):
                    while True:
                        viewer.queue.get_nowait()
                data_out = json.dumps({"t": sent, "reload": True})
            else:
                data_out = data
            viewer.queue.put_nowait(data_out)

    async def _run(self) -> None:
        while self.viewers:
            try:
                seen = SIGNALS.mark("field")
                self._since, items = await run_in_threadpool(poll, self._since)
                self.polls += 1
                self.publish(self.fresh(items))
            except Exception:
                LOG.exception("map poll failed")
            # Positions are read by the tick; an SOS or a dispatch wakes the map at once.
            await SIGNALS.wait("field", seen, poll=TICK, idle=TICK)
        self._since = None


HUB = MapHub()
