"""Background jobs of the courts domain."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import delete
from sqlalchemy.orm import Session

from zhixing.core import jobs
from zhixing.core.clock import utcnow
from zhixing.courts.models import WebSession


@jobs.handler("courts.purge_sessions")
def purge_sessions(session: Session, _payload: dict[str, Any]) -> None:
    """Expired and revoked console sessions are of no further use; their logins are audited."""
    cutoff = utcnow() - timedelta(days=1)
    session.execute(delete(WebSession).where(
        (WebSession.expires_at < cutoff) | (WebSession.revoked_at < cutoff)))


def schedule_recurring(session: Session) -> None:
    jobs.enqueue(session, "courts.purge_sessions", dedupe_key="recurring:courts.purge_sessions",
                 interval=timedelta(hours=6))
