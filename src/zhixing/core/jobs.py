"""Durable background jobs (the outbox).

A job is a row written in the same transaction as the change that causes it, so a change and its
side effects are committed together or not at all. Workers claim jobs with a lease
(``FOR UPDATE SKIP LOCKED`` on PostgreSQL; SQLite serialises writers with ``BEGIN IMMEDIATE``).
A handler runs in its own transaction, and the job is marked done in *that* transaction, fenced by
the lease token: if the lease was lost (the worker stalled past it and another worker took the
job), the done-marker matches no row and the handler's whole transaction rolls back. So a job's
database effects happen exactly once, even when a worker is killed mid-job.
"""

from __future__ import annotations

import logging
import os
import random
import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from zhixing.core import metrics
from zhixing.core.clock import utcnow
from zhixing.core.db import transaction
from zhixing.core.models import Job
from zhixing.core.security import new_token
from zhixing.core.settings import get_settings

log = logging.getLogger(__name__)

Handler = Callable[[Session, dict[str, Any]], None]
_HANDLERS: dict[str, Handler] = {}

BACKOFF_BASE_SECONDS = 2.0
BACKOFF_CAP_SECONDS = 3600.0


class LeaseLost(Exception):
    """Another worker owns the job now; this worker's work must not be committed."""


def handler(kind: str) -> Callable[[Handler], Handler]:
    """Register the function that runs jobs of ``kind``."""

    def register(fn: Handler) -> Handler:
        if kind in _HANDLERS and _HANDLERS[kind] is not fn:
            raise ValueError(f"job kind {kind!r} already has a handler")
        _HANDLERS[kind] = fn
        return fn

    return register


def enqueue(
    session: Session,
    kind: str,
    payload: dict[str, Any] | None = None,
    *,
    run_at: datetime | None = None,
    delay: timedelta | None = None,
    dedupe_key: str | None = None,
    interval: timedelta | None = None,
    max_attempts: int | None = None,
) -> Job | None:
    """Add a job to the caller's transaction. Returns None if ``dedupe_key`` is already pending."""
    now = utcnow()
    when = run_at or (now + delay if delay else now)
    job = Job(
        kind=kind,
        payload=payload or {},
        state="queued",
        run_at=when,
        attempts=0,
        max_attempts=max_attempts or get_settings().job_max_attempts,
        dedupe_key=dedupe_key,
        interval_seconds=int(interval.total_seconds()) if interval else None,
        created_at=now,
    )
    if dedupe_key is None:
        session.add(job)
        session.flush()
        return job
    existing = session.scalar(
        select(Job.id).where(Job.dedupe_key == dedupe_key, Job.state.in_(("queued", "running")))
    )
    if existing is not None:
        return None
    try:
        with session.begin_nested():
            session.add(job)
            session.flush()
    except IntegrityError:
        return None
    return job


def backoff_seconds(attempts: int) -> float:
    """Exponential backoff, capped, with "equal jitter" (half fixed, half random) so that
    units coming back after an outage are not hit by every retry at once."""
    ceiling = min(BACKOFF_CAP_SECONDS, BACKOFF_BASE_SECONDS * 2.0 ** max(0, attempts - 1))
    return ceiling / 2 + random.uniform(0, ceiling / 2)


@dataclass(frozen=True)
class ClaimedJob:
    id: int
    kind: str
    payload: dict[str, Any]
    attempts: int
    max_attempts: int
    lease_token: str
    interval_seconds: int | None
    run_at: datetime
    dedupe_key: str | None


def claim(session: Session, worker_id: str, *, limit: int = 1,
          lease: timedelta | None = None) -> list[ClaimedJob]:
    """Lease up to ``limit`` due jobs (or jobs whose lease expired) to ``worker_id``."""
    now = utcnow()
    lease = lease or timedelta(seconds=get_settings().job_lease_seconds)
    due = (
        select(Job.id)
        .where(
            or_(
                (Job.state == "queued") & (Job.run_at <= now),
                (Job.state == "running") & (Job.lease_expires_at < now),
            )
        )
        .order_by(Job.run_at, Job.id)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    ids = list(session.scalars(due))
    claimed: list[ClaimedJob] = []
    for job_id in ids:
        token = new_token(12)
        row = session.execute(
            update(Job)
            .where(Job.id == job_id)
            .values(
                state="running",
                lease_owner=worker_id,
                lease_token=token,
                lease_expires_at=now + lease,
                attempts=Job.attempts + 1,
                started_at=now,
            )
            .returning(Job.kind, Job.payload, Job.attempts, Job.max_attempts,
                       Job.interval_seconds, Job.run_at, Job.dedupe_key)
        ).one()
        claimed.append(ClaimedJob(job_id, row[0], row[1] or {}, row[2], row[3], token,
                                  row[4], row[5], row[6]))
    return claimed


def _mark_done(session: Session, job: ClaimedJob) -> None:
    now = utcnow()
    result = session.execute(
        update(Job)
        .where(Job.id == job.id, Job.lease_token == job.lease_token, Job.state == "running")
        .values(state="done", finished_at=now, lease_token=None, lease_expires_at=None,
                last_error=None)
    )
    if result.rowcount != 1:  # type: ignore[attr-defined]
        raise LeaseLost(f"job {job.id} lease lost")
    if job.interval_seconds:
        # Next run keeps its cadence from the scheduled time, not from when this one finished.
        nxt = job.run_at + timedelta(seconds=job.interval_seconds)
        if nxt <= now:
            nxt = now + timedelta(seconds=job.interval_seconds)
        enqueue(session, job.kind, job.payload, run_at=nxt, dedupe_key=job.dedupe_key,
                interval=timedelta(seconds=job.interval_seconds), max_attempts=job.max_attempts)


def _mark_failed(job: ClaimedJob, error: str) -> None:
    now = utcnow()
    dead = job.attempts >= job.max_attempts
    with transaction() as session:
        session.execute(
            update(Job)
            .where(Job.id == job.id, Job.lease_token == job.lease_token)
            .values(
                state="dead" if dead else "queued",
                run_at=now if dead else now + timedelta(seconds=backoff_seconds(job.attempts)),
                last_error=error[:4000],
                lease_token=None,
                lease_owner=None,
                lease_expires_at=None,
                finished_at=now if dead else None,
            )
        )
    metrics.JOBS.labels(kind=job.kind, outcome="dead" if dead else "retry").inc()
    if dead:
        log.error("job dead-lettered", extra={"job_id": job.id, "kind": job.kind})


def run_one(job: ClaimedJob) -> bool:
    """Run a claimed job; True if it completed."""
    fn = _HANDLERS.get(job.kind)
    if fn is None:
        _mark_failed(job, f"no handler registered for job kind {job.kind!r}")
        return False
    try:
        with transaction() as session:
            fn(session, job.payload)
            _mark_done(session, job)
    except LeaseLost:
        log.warning("lease lost, work discarded", extra={"job_id": job.id, "kind": job.kind})
        metrics.JOBS.labels(kind=job.kind, outcome="lease_lost").inc()
        return False
    except Exception as exc:  # a failing handler must not stop the worker
        log.exception("job failed", extra={"job_id": job.id, "kind": job.kind})
        _mark_failed(job, f"{type(exc).__name__}: {exc}")
        return False
    metrics.JOBS.labels(kind=job.kind, outcome="done").inc()
    return True


def default_worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{new_token(4)}"


class Worker:
    """Claims and runs jobs until stopped. Several may run in one or many processes."""

    def __init__(self, worker_id: str | None = None, *, poll_interval: float | None = None,
                 batch: int = 10) -> None:
        self.worker_id = worker_id or default_worker_id()
        self.poll_interval = (get_settings().job_poll_seconds if poll_interval is None
                              else poll_interval)
        self.batch = batch
        self._stop = threading.Event()

    def stop(self) -> None:
        self._stop.set()

    def run_pending(self) -> int:
        """Claim and run what is due now; returns how many jobs completed."""
        done = 0
        while not self._stop.is_set():
            with transaction() as session:
                batch = claim(session, self.worker_id, limit=self.batch)
            if not batch:
                return done
            for job in batch:
                if run_one(job):
                    done += 1
        return done

    def run_forever(self) -> None:
        log.info("worker started", extra={"worker_id": self.worker_id})
        while not self._stop.is_set():
            try:
                if self.run_pending() == 0:
                    self._stop.wait(self.poll_interval)
            except Exception:  # database restarts must not kill the worker
                log.exception("worker loop error; retrying")
                self._stop.wait(min(5.0, self.poll_interval * 4))
        log.info("worker stopped", extra={"worker_id": self.worker_id})


def start_background_worker() -> Worker:
    worker = Worker()
    thread = threading.Thread(target=worker.run_forever, name="zhixing-worker", daemon=True)
    thread.start()
    return worker


