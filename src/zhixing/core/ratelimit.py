"""Fixed-window rate limits counted in the database, so every process sees the same count."""

from __future__ import annotations

import math
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from zhixing.core.clock import utcnow
from zhixing.core.errors import RateLimited
from zhixing.core.models import RateBucket


def _window_start(now: datetime, window: timedelta) -> datetime:
    seconds = window.total_seconds()
    epoch = now.timestamp()
    return datetime.fromtimestamp(math.floor(epoch / seconds) * seconds, tz=now.tzinfo)


def current_count(session: Session, key: str, window: timedelta) -> int:
    now = utcnow()
    bucket = session.get(RateBucket, key)
    if bucket is None or bucket.window_start != _window_start(now, window):
        return 0
    return bucket.count


def check(session: Session, key: str, limit: int, window: timedelta, message: str) -> None:
    """Refuse with 429 if ``key`` has reached ``limit`` in the current window."""
    if current_count(session, key, window) >= limit:
        start = _window_start(utcnow(), window)
        retry = max(1, int((start + window - utcnow()).total_seconds()))
        raise RateLimited(message, retry_after=retry)


def hit(session: Session, key: str, window: timedelta) -> int:
    """Count one event for ``key``; returns the count in the current window."""
    start = _window_start(utcnow(), window)
    for _ in range(3):
        bucket = session.scalar(
            select(RateBucket).where(RateBucket.key == key).with_for_update()
        )
        if bucket is None:
            try:
                with session.begin_nested():
                    session.add(RateBucket(key=key, window_start=start, count=1))
                return 1
            except IntegrityError:
                continue  # another process created it first
        if bucket.window_start != start:
            bucket.window_start = start
            bucket.count = 0
        bucket.count += 1
        session.flush()
        return bucket.count
    raise RuntimeError("rate bucket could not be updated")


def consume(session: Session, key: str, limit: int, window: timedelta, message: str) -> None:
    """Check and count in one step (public endpoints: every request counts)."""
    check(session, key, limit, window, message)
    hit(session, key, window)


def reset(session: Session, key: str) -> None:
    bucket = session.get(RateBucket, key)
    if bucket is not None:
        session.delete(bucket)
