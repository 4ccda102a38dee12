"""Getting tasks to units: fetched (pull mode) or posted to the unit's URL (push mode).

Delivery is at least once; the task id makes a second delivery harmless. A unit that is down
does not slow the others: each unit's pushes are a job of their own, failed pushes wait with
exponential backoff on the task rows (``available_at``), and no database transaction is held
open while the platform waits for a unit's answer.
"""

from __future__ import annotations

import json
import logging
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import httpx
from sqlalchemy import Text, cast, delete, func, select, update
from sqlalchemy.orm import Session

from zhixing.core import jobs
from zhixing.core.clock import utcnow
from zhixing.core.db import among, transaction
from zhixing.linkage import keys, signing, wire
from zhixing.linkage.models import (
    TASKS,
    DeliveryMode,
    LinkageTask,
    LinkageUnit,
    SeenNonce,
    TaskStatus,
)

log = logging.getLogger(__name__)

# A fetched, unacknowledged task is held back from other fetches this long, then offered again.
REOFFER_AFTER = timedelta(seconds=60)
PUSH_TIMEOUT = httpx.Timeout(10.0, connect=5.0)
MAX_PUSH_ROUNDS = 50
PUSH_THREADS = 16
_http: httpx.Client | None = None


def _client() -> httpx.Client:
    global _http
    if _http is None:
        _http = httpx.Client(follow_redirects=False, timeout=PUSH_TIMEOUT)
    return _http


def _dumps(data: Any) -> bytes:
    return json.dumps(data, ensure_ascii=False, separators=(",", ":")).encode()


def fetch(session: Session, unit_id: int, limit: int) -> tuple[bytes, int]:
    """The body of a ``TaskBatch`` (the unit's oldest pending tasks, marked delivered) and
    the number of tasks in it. Two statements, whatever the batch size."""
    now = utcnow()
    tasks = TASKS.c
    # The messages as the JSON text they are stored as: parsing each into objects only to
    # write it out again was most of a fetch's cost per task.
    rows = session.execute(
        select(tasks.id, cast(tasks.message, Text)).where(
            tasks.unit_id == unit_id,
            tasks.status.in_((TaskStatus.QUEUED, TaskStatus.DELIVERED)),
            tasks.available_at <= now)
        .order_by(tasks.id).limit(limit + 1).with_for_update(skip_locked=True)).all()
    batch, more = rows[:limit], len(rows) > limit
    if batch:
        session.execute(update(TASKS)
                        .where(among(tasks.id, [r[0] for r in batch]))
                        .values(status=TaskStatus.DELIVERED, available_at=now + REOFFER_AFTER,
                                delivered_at=func.coalesce(tasks.delivered_at, now),
                                delivery_attempts=tasks.delivery_attempts + 1))
    body = (f'{{"schema_version":{json.dumps(wire.SCHEMA_VERSION)},'
            f'"tasks":[{",".join(r[1] for r in batch)}],"more":{"true" if more else "false"}}}')
    return body.encode(), len(batch)


# --- push --------------------------------------------------------------------------------------


def wake_pushes(session: Session) -> None:
    """Have the worker push what is pending (one pending push job at most)."""
    jobs.enqueue(session, "linkage.push", dedupe_key="linkage.push")


def _backoff(attempts: int) -> timedelta:
    return timedelta(seconds=min(600.0, jobs.backoff_seconds(attempts)))


def _claim_for_push(unit_id: int) -> tuple[LinkageUnit, list[LinkageTask]] | None:
    with transaction() as session:
        unit = session.get(LinkageUnit, unit_id)
        if unit is None or not unit.enabled or unit.delivery_mode != DeliveryMode.PUSH \
                or not unit.push_url:
            return None
        now = utcnow()
        rows = list(session.scalars(
            select(LinkageTask).where(LinkageTask.unit_id == unit_id,
                                      LinkageTask.status == TaskStatus.QUEUED,
                                      LinkageTask.available_at <= now)
            .order_by(LinkageTask.id).limit(wire.MAX_TASKS_PER_PUSH)
            .with_for_update(skip_locked=True)))
        for task in rows:
            # In flight: not offered to a fetch, not pushed again, until this push settles.
            task.status = TaskStatus.DELIVERED
            task.available_at = now + REOFFER_AFTER
            task.delivery_attempts += 1
        session.flush()
        session.expunge_all()  # used after the commit, outside the session
        return (unit, rows) if rows else None


def _settle(task_ids: list[int], error: str | None, attempts: int) -> None:
    with transaction() as session:
        now = utcnow()
        in_flight = (LinkageTask.id.in_(task_ids), LinkageTask.status == TaskStatus.DELIVERED)
        if error is None:
            session.execute(update(LinkageTask).where(*in_flight).values(
                status=TaskStatus.ACKNOWLEDGED, delivered_at=now, acknowledged_at=now,
                last_error=None))
        else:
            session.execute(update(LinkageTask).where(*in_flight).values(
                status=TaskStatus.QUEUED, available_at=now + _backoff(attempts),
                last_error=error[:255]))


def push_once(unit_id: int) -> int | None:
    """Push one batch to the unit; the number of tasks delivered, 0 on failure, None when
    there was nothing to push."""
    claimed = _claim_for_push(unit_id)
    if claimed is None:
        return None
    unit, tasks = claimed
    assert unit.push_url is not None
    with transaction() as session:
        key_id, secret = keys.platform_key(session, unit.id)
        unit_key_id, unit_secrets = keys.unit_key(session, unit.id)
    body = _dumps({"schema_version": wire.SCHEMA_VERSION, "tasks": [t.message for t in tasks]})
    parts = urlsplit(unit.push_url)
    target = parts.path or "/"
    if parts.query:
        target += "?" + parts.query
    headers = signing.sign("POST", target, body, key_id, secret, now=utcnow())
    headers["Content-Type"] = "application/json"
    ids = [t.id for t in tasks]
    attempts = max(t.delivery_attempts for t in tasks)
    try:
        response = _client().post(unit.push_url, content=body, headers=headers)
        if response.status_code != 202:
            raise RuntimeError(f"push answered {response.status_code}")
        signing.verify_response(
            202, response.headers, response.content,
            lambda k: unit_secrets if k == unit_key_id else None,
            request_method="POST", request_path=target,
            request_nonce=headers[signing.HEADER_NONCE], now=utcnow())
    except (httpx.HTTPError, RuntimeError, signing.SignatureError) as exc:
        log.warning("push to unit %s failed: %s", unit.code, exc)
        _settle(ids, f"push failed: {exc}", attempts)
        return 0
    _settle(ids, None, attempts)
    return len(ids)


def _push_unit(unit_id: int) -> None:
    """Push everything pending for one unit, batch after batch, until a push fails."""
    for _ in range(MAX_PUSH_ROUNDS):
        if not push_once(unit_id):
            return


def units_to_push(session: Session) -> list[int]:
    return list(session.scalars(
        select(LinkageTask.unit_id).join(LinkageUnit, LinkageUnit.id == LinkageTask.unit_id)
        .where(LinkageUnit.delivery_mode == DeliveryMode.PUSH, LinkageUnit.enabled.is_(True),
               LinkageTask.status == TaskStatus.QUEUED, LinkageTask.available_at <= utcnow())
        .distinct()))


@jobs.handler("linkage.push")
def push_job(_session: Session, _payload: dict[str, Any]) -> None:
    """Push to every unit with pending tasks at once, each unit on a thread of its own: a
    slow or unreachable unit holds up only itself. Looks again until nothing is left, so
    tasks created meanwhile (whose wake-up found this job running) go out too."""
    for _ in range(MAX_PUSH_ROUNDS):
        with transaction() as session:
            pending = units_to_push(session)
        if not pending:
            return
        with ThreadPoolExecutor(max_workers=min(PUSH_THREADS, len(pending))) as pool:
            list(pool.map(_push_unit, pending))


# --- the sweep ---------------------------------------------------------------------------------


def expire_queries(session: Session, now: datetime) -> int:
    """A query unanswered by its deadline expires, visibly. Control orders never expire
    silently: an order the unit may still apply stays open (and overdue) until answered."""
    result = session.execute(update(LinkageTask).where(
        LinkageTask.status.in_((TaskStatus.QUEUED, TaskStatus.DELIVERED,
                                TaskStatus.ACKNOWLEDGED)),
        LinkageTask.order_id.is_(None), LinkageTask.due_at < now,
    ).values(status=TaskStatus.EXPIRED, last_error="no answer by the deadline"))
    return int(getattr(result, "rowcount", 0) or 0)


def sweep(session: Session) -> None:
    now = utcnow()
    expire_queries(session, now)
    session.execute(delete(SeenNonce).where(SeenNonce.keep_until < now))
    keys.expire_rotations(session, now)
    if units_to_push(session):
        wake_pushes(session)


@jobs.handler("linkage.sweep")
def sweep_job(session: Session, _payload: dict[str, Any]) -> None:
    sweep(session)


def schedule_recurring(session: Session) -> None:
    jobs.enqueue(session, "linkage.sweep", dedupe_key="recurring:linkage.sweep",
                 interval=timedelta(seconds=5))
