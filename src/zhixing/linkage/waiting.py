"""Long polls of pull units: a fetch that finds nothing waits for a task to arrive.

Idle units then cost nothing but an open connection: one query per process looks for pending
tasks of *all* waiting units together, instead of each unit asking again and again with a
signed request and two transactions each time. It runs when a commit signals new or changed
tasks (PostgreSQL), and at least every ``IDLE_CHECK`` seconds for retries whose time has come;
without signals (SQLite) every ``CHECK_EVERY`` seconds.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from sqlalchemy import select
from starlette.concurrency import run_in_threadpool

from zhixing.core.clock import utcnow
from zhixing.core.db import session_factory
from zhixing.core.signals import SIGNALS
from zhixing.linkage.models import LinkageTask, TaskStatus

CHECK_EVERY = 0.05
IDLE_CHECK = 1.0
LOG = logging.getLogger(__name__)


def pending_units(unit_ids: list[int]) -> set[int]:
    with session_factory()() as session:
        return set(session.scalars(
            select(LinkageTask.unit_id).where(
                LinkageTask.unit_id.in_(unit_ids),
                LinkageTask.status.in_((TaskStatus.QUEUED, TaskStatus.DELIVERED)),
                LinkageTask.available_at <= utcnow()).distinct()))


class PendingWatch:
    """Waiting units of this process, woken when a task of theirs is pending."""

    def __init__(self) -> None:
        self._waiters: dict[int, set[asyncio.Event]] = {}
        self._task: asyncio.Task[None] | None = None

    async def wait(self, unit_id: int, timeout: float) -> None:
        event = asyncio.Event()
        self._waiters.setdefault(unit_id, set()).add(event)
        self._ensure_running()
        try:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(event.wait(), timeout)
        finally:
            waiting = self._waiters.get(unit_id)
            if waiting is not None:
                waiting.discard(event)
                if not waiting:
                    del self._waiters[unit_id]

    def _ensure_running(self) -> None:
        loop = asyncio.get_running_loop()
        if self._task is None or self._task.done() or self._task.get_loop() is not loop:
            self._task = loop.create_task(self._run())

    async def _run(self) -> None:
        while self._waiters:
            seen = SIGNALS.mark("linkage")
            try:
                ready = await run_in_threadpool(pending_units, list(self._waiters))
            except Exception:
                # The long polls time out on their own; the watch must outlive a failed look.
                LOG.exception("pending-task poll failed")
                await asyncio.sleep(IDLE_CHECK)
                continue
            for unit_id in ready:
                for event in self._waiters.get(unit_id, ()):
                    event.set()
            await SIGNALS.wait("linkage", seen, poll=CHECK_EVERY, idle=IDLE_CHECK)


WATCH = PendingWatch()
