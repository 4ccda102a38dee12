"""Wake-ups across processes: a commit that changed a watched table wakes the live pages and
long polls of every API process, through PostgreSQL ``LISTEN/NOTIFY``.

A signal says only "something on this channel changed": whoever wakes reads the database as
before, so a lost or duplicated signal costs a read, never a wrong page. Signals are sent
inside the transaction that made the change (``pg_notify`` before commit), so PostgreSQL
delivers them when, and only if, it commits.

Each package declares which tables feed which channel (``watch``), and which kinds of change.
**Only low-rate changes may signal.** PostgreSQL serialises the commits of all notifying
transactions of the cluster (a global lock held through the commit, WAL flush included), so a
signal on every answer of a bank (linkage task updates, the case events they write) would put
45 banks' answers in one queue. New tasks signal and their answers do not (an inquiry page
polls for those), and positions never do.

Waiters use :func:`mark` before they read and :func:`wait` after, so a change that commits
between the two is never slept through. On SQLite (one machine, no ``NOTIFY``) and while the
listener is reconnecting, :func:`wait` simply sleeps the caller's poll interval: pages stay
live, only slower.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Iterable

from sqlalchemy import event, func, select
from sqlalchemy.engine import make_url
from sqlalchemy.orm import ORMExecuteState, Session

from zhixing.core.metrics import SIGNALS_RECEIVED

log = logging.getLogger(__name__)

_CHANNEL_PREFIX = "zhixing_"
_TABLES: dict[str, tuple[str, frozenset[str]]] = {}  # table name → channel, kinds of change
_PENDING = "zhixing_signals"
RECONNECT_DELAYS = (0.5, 1.0, 2.0, 5.0)


ALL_CHANGES = frozenset({"insert", "update", "delete"})


def watch(channel: str, *tables: str, ops: frozenset[str] = ALL_CHANGES) -> None:
    """Changes to ``tables`` (of the kinds in ``ops``) signal ``channel`` when their
    transaction commits."""
    for table in tables:
        _TABLES[table] = (channel, ops)


def channels() -> set[str]:
    return {channel for channel, _ in _TABLES.values()}


# -- sending (inside the writer's transaction) --

def _note(session: Session, changes: Iterable[tuple[str, str]]) -> None:
    found = set()
    for table, op in changes:
        watched = _TABLES.get(table)
        if watched is not None and op in watched[1]:
            found.add(watched[0])
    if found:
        session.info.setdefault(_PENDING, set()).update(found)


def changed(session: Session, table: str, op: str = "insert") -> None:
    """Note a change the session's hooks cannot see (rows written by ``COPY``)."""
    _note(session, ((table, op),))


def _after_flush(session: Session, _context: object) -> None:
    for op, objects in (("insert", session.new), ("update", session.dirty),
                        ("delete", session.deleted)):
        _note(session, ((getattr(obj, "__tablename__", ""), op) for obj in objects))


def _on_execute(state: ORMExecuteState) -> None:
    # Bulk statements through the session (insert many tasks in one executemany, an UPDATE
    # with a WHERE) bypass the unit of work and so after_flush.
    op = ("insert" if state.is_insert else "update" if state.is_update
          else "delete" if state.is_delete else None)
    table = getattr(state.statement, "table", None)
    if op is not None and table is not None:
        _note(state.session, ((table.name, op),))


def _before_commit(session: Session) -> None:
    session.flush()  # the commit's own flush comes after this hook: collect its changes now
    pending: set[str] = session.info.pop(_PENDING, set())
    if not pending or session.get_bind().dialect.name != "postgresql":
        return
    session.execute(select(*(func.pg_notify(_CHANNEL_PREFIX + name, "")
                             for name in sorted(pending))))


def _forget(session: Session, _previous: object = None) -> None:
    session.info.pop(_PENDING, None)


def install_hooks() -> None:
    """Idempotent. Installed last, so that it sees what the other commit hooks add."""
    if not event.contains(Session, "before_commit", _before_commit):
        event.listen(Session, "after_flush", _after_flush)
        event.listen(Session, "do_orm_execute", _on_execute)
        event.listen(Session, "before_commit", _before_commit)
        event.listen(Session, "after_rollback", _forget)


# -- waking the waiters of this process --

class Pulse:
    """Wakes every waiter at once each time it beats: an ``asyncio.Event`` replaced at each
    beat. Waiting on it is safe to time out. An ``asyncio.Condition`` waited on under
    ``asyncio.wait_for`` is not: a wait cancelled by the timeout may fail to take the lock back
    (Python 3.11), and leaving ``async with`` then raises "Lock is not acquired" (it killed a
    live page's stream in CI)."""

    def __init__(self) -> None:
        self._event: asyncio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def _current(self) -> asyncio.Event:
        loop = asyncio.get_running_loop()
        if self._event is None or self._loop is not loop:  # a new loop: tests, a reload
            self._event, self._loop = asyncio.Event(), loop
        return self._event

    def beat(self) -> None:
        event = self._current()
        self._event = asyncio.Event()  # later waiters wait for the next beat
        event.set()

    async def wait(self, until: Callable[[], bool], timeout: float) -> bool:
        """Until ``until()`` holds (checked at each beat) or ``timeout`` seconds have passed;
        what ``until()`` says at the end."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while not until():
            remaining = deadline - loop.time()
            if remaining <= 0:
                return False
            event = self._current()  # taken before awaiting: a beat from now on wakes us
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(event.wait(), remaining)
        return True


# -- receiving (one listening connection per process) --

class Signals:
    """This process's view of the channels: a counter per channel, raised by the listener."""

    def __init__(self) -> None:
        self._generation: dict[str, int] = {}
        self._pulse = Pulse()
        self._task: asyncio.Task[None] | None = None
        self.listening = False
        self.listening_on: set[str] = set()
        self.received = 0

    def mark(self, channel: str) -> int:
        """Call before reading: :meth:`wait` returns at once if ``channel`` changed since."""
        return self._generation.get(channel, 0)

    async def wait(self, channel: str, seen: int, *, poll: float, idle: float = 5.0,
                   settle: float = 0.02) -> bool:
        """Until ``channel`` is signalled past ``seen``; at most ``idle`` seconds while signals
        flow, ``poll`` seconds otherwise. True when a signal came. After a signal it waits
        ``settle`` seconds more, so that a burst of commits costs the caller one read."""
        signalled = await self._pulse.wait(lambda: self._generation.get(channel, 0) != seen,
                                           idle if self.listening else poll)
        if signalled and settle > 0:
            await asyncio.sleep(settle)
        return signalled

    async def _signal(self, channel: str, *, received: bool = True) -> None:
        self._generation[channel] = self._generation.get(channel, 0) + 1
        if received:
            self.received += 1
            SIGNALS_RECEIVED.labels(channel).inc()
        self._pulse.beat()

    def start(self, database_url: str) -> None:
        """Listen in the background on the running loop (PostgreSQL only)."""
        if not database_url.startswith("postgresql"):
            return
        loop = asyncio.get_running_loop()
        if self._task is None or self._task.done() or self._task.get_loop() is not loop:
            self._task = loop.create_task(self._listen(_conninfo(database_url)))

    async def stop(self) -> None:
        task, self._task = self._task, None
        self.listening = False
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _listen(self, conninfo: str) -> None:
        import psycopg

        failures = 0
        while True:
            try:
                async with await psycopg.AsyncConnection.connect(
                        conninfo, autocommit=True) as conn:
                    for channel in sorted(channels()):
                        await conn.execute(f'LISTEN "{_CHANNEL_PREFIX}{channel}"')
                    self.listening_on = channels()
                    self.listening = True
                    failures = 0
                    # Whatever committed while we were not listening: wake everyone once.
                    for channel in channels():
                        await self._signal(channel, received=False)
                    async for notice in conn.notifies():
                        await self._signal(notice.channel.removeprefix(_CHANNEL_PREFIX))
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the database restarted, the network blinked
                self.listening = False
                delay = RECONNECT_DELAYS[min(failures, len(RECONNECT_DELAYS) - 1)]
                failures += 1
                log.warning("signal listener lost its connection (%s); again in %.1f s",
                            exc, delay)
                await asyncio.sleep(delay)


HEARD_CACHE_SECONDS = 300.0


def still_fresh(channel: str, generation: int, age: float, *, unheard: float,
                heard: float = HEARD_CACHE_SECONDS) -> bool:
    """May a process cache entry, loaded ``age`` seconds ago when ``channel`` was at
    ``generation`` (:meth:`Signals.mark` before the read), still be served? While this process
    hears the channel, until a commit signals it (at most ``heard`` seconds); otherwise (SQLite,
    the listener reconnecting) for ``unheard`` seconds."""
    if age <= unheard:
        return True
    return (SIGNALS.listening and channel in SIGNALS.listening_on
            and SIGNALS.mark(channel) == generation and age <= heard)


def _conninfo(database_url: str) -> str:
    url = make_url(database_url).set(drivername="postgresql")
    return url.render_as_string(hide_password=False)


SIGNALS = Signals()
