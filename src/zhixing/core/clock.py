"""The platform's clock. Every deadline reads time here, so tests can move it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

CHINA_TZ = ZoneInfo("Asia/Shanghai")

_offset = timedelta(0)


def utcnow() -> datetime:
    """Timezone-aware UTC now, shifted by any offset a test has set."""
    return datetime.now(UTC) + _offset


def set_offset(offset: timedelta) -> None:
    """Move the clock (tests and the demo's time-travel only)."""
    global _offset
    _offset = offset


def to_local(moment: datetime) -> datetime:
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(CHINA_TZ)
