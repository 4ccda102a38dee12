"""The live board: one cheap query per process (the newest board event id) while any console
watches, when a commit signals the board (PostgreSQL) or once a second (SQLite); every watching
stream wakes when it moves, and renders its own view."""

from __future__ import annotations

import asyncio
import logging

from starlette.concurrency import run_in_threadpool

from zhixing.command import board
from zhixing.core.db import session_factory
from zhixing.core.signals import SIGNALS, Pulse

CHECK_EVERY = 1.0
LOG = logging.getLogger(__name__)


def _read_head() -> int:
    with session_factory()() as session:
        return board.head(session)


class BoardWatch:
    """The board's version for this process, polled only while someone is watching."""

    def __init__(self) -> None:
        self.version = -1
        self._moved = Pulse()
        self._task: asyncio.Task[None] | None = None
        self._watchers = 0

    def _ensure_running(self) -> None:
        loop = asyncio.get_running_loop()
        if self._task is None or self._task.done() or self._task.get_loop() is not loop:
            self._task = loop.create_task(self._run())

    async def _run(self) -> None:
        while self._watchers > 0:
            seen = SIGNALS.mark("board")
            try:
                head = await run_in_threadpool(_read_head)
            except Exception:
                # A failed look (the database restarting, a lock timeout) must not end the
                # watch: the streams waiting on it would stall until their heartbeat. Try
                # again at the next tick.
                LOG.exception("board poll failed")
                head = self.version
            if head != self.version:
                self.version = head
                self._moved.beat()
            await SIGNALS.wait("board", seen, poll=CHECK_EVERY)

    async def wait_past(self, seen: int, timeout: float) -> int:
        """The board's version once it differs from ``seen`` (or after ``timeout``)."""
        self._watchers += 1
        try:
            self._ensure_running()
            await self._moved.wait(lambda: self.version != seen and self.version >= 0, timeout)
            return self.version
        finally:
            self._watchers -= 1


WATCH = BoardWatch()
