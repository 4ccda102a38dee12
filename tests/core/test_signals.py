"""Signals: a commit that changed a watched table wakes listeners in other processes (through
PostgreSQL LISTEN/NOTIFY); a rollback wakes no one; without a listener, waiting is polling."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator

import pytest
from sqlalchemy import select, update

from tests.support.database import ScratchDatabase
from zhixing.core import signals
from zhixing.core.db import session_factory, transaction
from zhixing.courts.models import Court


@pytest.fixture
def probe(test_db: ScratchDatabase, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """Changes to the courts table signal the channel "probe" (restored after the test)."""
    monkeypatch.setitem(signals._TABLES, "courts", ("probe", signals.ALL_CHANGES))
    yield "probe"
    with transaction() as session:  # undo the renames
        for court in session.scalars(select(Court).where(Court.short_name_zh.endswith("*"))):
            court.short_name_zh = court.short_name_zh.rstrip("*")


def rename(bulk: bool = False, rollback: bool = False) -> None:
    with session_factory()() as session:
        if bulk:
            session.execute(update(Court).where(Court.code == "桂0103")
                            .values(short_name_zh=Court.short_name_zh + "*"))
        else:
            court = session.scalars(select(Court).where(Court.code == "桂0103")).one()
            court.short_name_zh += "*"
        if rollback:
            session.flush()
            session.rollback()
        else:
            session.commit()


@pytest.mark.parametrize("bulk", [False, True], ids=["unit-of-work", "bulk-update"])
def test_a_change_to_a_watched_table_is_noted_and_forgotten_on_rollback(probe: str,
                                                                       bulk: bool) -> None:
    with session_factory()() as session:
        if bulk:
            session.execute(update(Court).where(Court.code == "桂0103")
                            .values(short_name_zh=Court.short_name_zh + "*"))
        else:
            court = session.scalars(select(Court).where(Court.code == "桂0103")).one()
            court.short_name_zh += "*"
            session.flush()
        assert session.info[signals._PENDING] == {probe}
        session.rollback()
        assert signals._PENDING not in session.info


def test_only_the_kinds_of_change_watched_signal(test_db: ScratchDatabase,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(signals._TABLES, "courts", ("probe", frozenset({"insert"})))
    with session_factory()() as session:  # an update of an insert-only table: no signal
        court = session.scalars(select(Court).where(Court.code == "桂0103")).one()
        court.short_name_zh += "*"
        session.execute(update(Court).where(Court.code == "桂0103")
                        .values(short_name_zh=Court.short_name_zh + "*"))
        session.flush()
        assert signals._PENDING not in session.info
        session.rollback()


def test_a_read_notes_nothing(probe: str) -> None:
    with session_factory()() as session:
        session.scalars(select(Court)).all()
        session.flush()
        assert signals._PENDING not in session.info


def test_without_a_listener_waiting_is_polling() -> None:
    async def main() -> tuple[bool, float, bool]:
        local = signals.Signals()
        seen = local.mark("probe")
        began = time.monotonic()
        signalled = await local.wait("probe", seen, poll=0.05, idle=30)
        took = time.monotonic() - began
        await local._signal("probe")
        return signalled, took, await local.wait("probe", seen, poll=30, settle=0)

    signalled, took, after_signal = asyncio.run(main())
    assert not signalled and took < 5  # the poll interval, never the idle one
    assert after_signal  # a signal since ``mark`` returns at once


def test_a_commit_wakes_a_listener_and_a_rollback_does_not(test_db: ScratchDatabase,
                                                          probe: str) -> None:
    if test_db.backend != "postgresql":
        pytest.skip("LISTEN/NOTIFY is PostgreSQL's; on SQLite live pages poll")

    async def main() -> tuple[bool, bool, int]:
        local = signals.Signals()
        local.start(test_db.url)
        loop = asyncio.get_running_loop()
        try:
            for _ in range(200):  # connected and listening
                if local.listening:
                    break
                await asyncio.sleep(0.05)
            assert local.listening
            await asyncio.sleep(0.1)  # the catch-up wake-up after connecting
            seen = local.mark(probe)
            await loop.run_in_executor(None, lambda: rename(rollback=True))
            rolled_back = await local.wait(probe, seen, poll=0.5, idle=0.5, settle=0)
            await loop.run_in_executor(None, rename)
            committed = await local.wait(probe, seen, poll=10, idle=10, settle=0)
            return rolled_back, committed, local.received
        finally:
            await local.stop()

    rolled_back, committed, received = asyncio.run(main())
    assert not rolled_back
    assert committed and received >= 1


def test_the_listener_comes_back_after_losing_its_connection(test_db: ScratchDatabase,
                                                             probe: str) -> None:
    if test_db.backend != "postgresql":
        pytest.skip("LISTEN/NOTIFY is PostgreSQL's")
    from sqlalchemy import create_engine, text

    admin = create_engine(test_db.url, isolation_level="AUTOCOMMIT")

    async def main() -> bool:
        local = signals.Signals()
        local.start(test_db.url)
        loop = asyncio.get_running_loop()
        try:
            for _ in range(200):
                if local.listening:
                    break
                await asyncio.sleep(0.05)
            with admin.connect() as conn:  # what a database restart does to the connection
                conn.execute(text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                                  "WHERE query LIKE 'LISTEN%' AND datname = current_database()"))
            for want in (False, True):  # lost, then back
                for _ in range(200):
                    if local.listening is want:
                        break
                    await asyncio.sleep(0.05)
                assert local.listening is want
            await asyncio.sleep(0.1)  # the catch-up wake-up after connecting
            seen = local.mark(probe)
            await loop.run_in_executor(None, rename)
            return await local.wait(probe, seen, poll=5, idle=5, settle=0)
        finally:
            await local.stop()

    try:
        assert asyncio.run(main())
    finally:
        admin.dispose()


def test_the_app_listens_on_every_declared_channel_from_its_start(
        test_db: ScratchDatabase, monkeypatch: pytest.MonkeyPatch) -> None:
    if test_db.backend != "postgresql":
        pytest.skip("LISTEN/NOTIFY is PostgreSQL's")
    from fastapi.testclient import TestClient

    from zhixing.app import create_app

    # As in a fresh server process: nothing has declared its channels before the app starts.
    monkeypatch.setattr(signals, "_TABLES", {})
    with TestClient(create_app(start_worker=False)):
        for _ in range(200):
            if signals.SIGNALS.listening:
                break
            time.sleep(0.05)
        assert {"board", "calls", "linkage", "field"} <= signals.SIGNALS.listening_on


def test_a_pulse_wakes_every_waiter_and_times_out_cleanly() -> None:
    """Many waiters with tiny timeouts racing the beats (the race that, with an asyncio.Condition
    under wait_for, raised "Lock is not acquired" and killed a live page's stream in CI)."""
    from zhixing.core.signals import Pulse

    pulse = Pulse()
    state = {"n": 0}

    async def waiter(i: int) -> bool:
        seen = state["n"]
        return await pulse.wait(lambda: state["n"] != seen, timeout=(i % 5) * 0.001)

    async def beats() -> None:
        for _ in range(200):
            state["n"] += 1
            pulse.beat()
            await asyncio.sleep(0)

    async def run() -> list[bool]:
        results = []
        for _ in range(20):
            batch = asyncio.gather(*(waiter(i) for i in range(50)))
            await beats()
            results += await batch
        return results

    results = asyncio.run(run())
    assert len(results) == 1000 and any(results)

    async def long_wait() -> tuple[bool, bool]:
        seen = state["n"]
        woken = asyncio.create_task(pulse.wait(lambda: state["n"] != seen, timeout=10))
        await asyncio.sleep(0.01)
        state["n"] += 1
        pulse.beat()
        quiet = await pulse.wait(lambda: False, timeout=0.01)
        return await woken, quiet

    assert asyncio.run(long_wait()) == (True, False)
