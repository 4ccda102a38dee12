"""The board's event log: every change on the command network appends one row. It is a
request's timeline, and what the live board watches."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from zhixing.command.models import BoardEvent
from zhixing.core.actor import Actor
from zhixing.core.clock import utcnow


def post(session: Session, actor: Actor | None, kind: str, summary: str, *,
         request_id: int | None = None, roll_call_id: int | None = None,
         center_id: int | None = None, **data: Any) -> BoardEvent:
    ev = BoardEvent(occurred_at=utcnow(), kind=kind, request_id=request_id,
                    roll_call_id=roll_call_id, center_id=center_id,
                    actor_id=actor.user_id if actor else None,
                    actor_name=actor.name if actor else None, summary=summary[:255], data=data)
    session.add(ev)
    session.flush()
    return ev


def head(session: Session) -> int:
    """The newest event id (0 when none): the live board's version."""
    return int(session.scalar(select(func.max(BoardEvent.id))) or 0)
