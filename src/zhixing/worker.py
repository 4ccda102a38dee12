"""Start-up of job workers: register every handler, make sure recurring jobs are scheduled."""

from __future__ import annotations

from zhixing import tasks_registry
from zhixing.core.db import transaction
from zhixing.core.jobs import Worker, start_background_worker


def prepare() -> None:
    with transaction() as session:
        tasks_registry.schedule_recurring(session)


def start_embedded() -> Worker:
    prepare()
    return start_background_worker()
