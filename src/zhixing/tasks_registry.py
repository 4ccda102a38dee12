"""Imports every domain's job handlers, and schedules the recurring ones."""

from __future__ import annotations

from sqlalchemy.orm import Session

from zhixing.analytics import aggregates as analytics_aggregates
from zhixing.analytics import surveys as analytics_surveys  # noqa: F401 (registers jobs)
from zhixing.cases import tasks as cases_tasks
from zhixing.command import calls as command_calls  # noqa: F401 (registers jobs)
from zhixing.command import escalation as command_escalation
from zhixing.core import tasks as core_tasks
from zhixing.courts import tasks as courts_tasks
from zhixing.credit import sweep as credit_sweep
from zhixing.linkage import delivery as linkage_delivery


def schedule_recurring(session: Session) -> None:
    core_tasks.schedule_recurring(session)
    courts_tasks.schedule_recurring(session)
    cases_tasks.schedule_recurring(session)
    analytics_aggregates.schedule_recurring(session)
    linkage_delivery.schedule_recurring(session)
    credit_sweep.schedule_recurring(session)
    command_escalation.schedule_recurring(session)
