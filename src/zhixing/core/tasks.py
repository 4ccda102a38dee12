"""Housekeeping jobs that every installation runs."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import delete
from sqlalchemy.orm import Session

from zhixing.core import jobs
from zhixing.core.clock import utcnow
from zhixing.core.models import Job, RateBucket

FINISHED_JOB_RETENTION = timedelta(days=14)


@jobs.handler("core.purge")
def purge(session: Session, _payload: dict[str, Any]) -> None:
    """Drop finished jobs past retention and rate windows long over. Dead jobs stay for review."""
    now = utcnow()
    session.execute(delete(Job).where(Job.state == "done",
                                      Job.finished_at < now - FINISHED_JOB_RETENTION))
    session.execute(delete(RateBucket).where(RateBucket.window_start < now - timedelta(days=1)))


def schedule_recurring(session: Session) -> None:
    """Make sure each recurring job has one pending instance (idempotent)."""
    jobs.enqueue(session, "core.purge", dedupe_key="recurring:core.purge",
                 interval=timedelta(hours=1))
