"""Engine construction: PostgreSQL pool sizes come from the settings; a request waits out a
database restart before its first statement."""

from __future__ import annotations

from collections.abc import Iterator
from typing import cast

import pytest
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session
from sqlalchemy.pool import NullPool, QueuePool

from zhixing.core.db import make_engine, wait_for_database
from zhixing.core.settings import get_settings


@pytest.fixture
def settings_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[pytest.MonkeyPatch]:
    yield monkeypatch
    monkeypatch.undo()
    get_settings.cache_clear()


def test_postgresql_pool_follows_the_settings(settings_env: pytest.MonkeyPatch) -> None:
    settings_env.setenv("ZHIXING_DB_POOL_SIZE", "7")
    settings_env.setenv("ZHIXING_DB_MAX_OVERFLOW", "3")
    settings_env.setenv("ZHIXING_DB_POOL_TIMEOUT_SECONDS", "4.5")
    settings_env.setenv("ZHIXING_DB_POOL_RECYCLE_SECONDS", "600")
    get_settings.cache_clear()
    engine = make_engine("postgresql+psycopg://zhixing@db.invalid/zhixing")  # never connects
    try:
        pool = engine.pool
        assert isinstance(pool, QueuePool)
        assert (pool.size(), pool._max_overflow, pool._timeout, pool._recycle) == (7, 3, 4.5, 600)
    finally:
        engine.dispose()


def test_sqlite_opens_a_connection_per_use() -> None:
    engine = make_engine("sqlite://")
    assert isinstance(engine.pool, NullPool)
    engine.dispose()


class _Unreachable:
    """A session whose database answers only from the ``up_after``-th attempt."""

    def __init__(self, up_after: int) -> None:
        self.attempts = 0
        self.rollbacks = 0
        self.up_after = up_after

    def connection(self) -> None:
        self.attempts += 1
        if self.attempts < self.up_after:
            raise OperationalError("SELECT 1", {}, ConnectionRefusedError("restarting"))

    def rollback(self) -> None:
        self.rollbacks += 1


class _Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


def test_a_request_waits_out_a_database_restart() -> None:
    session, clock = _Unreachable(up_after=4), _Clock()
    wait_for_database(cast(Session, session), 10, sleep=clock.sleep, clock=clock)
    assert session.attempts == 4 and session.rollbacks == 3
    assert clock.now == pytest.approx(0.1 + 0.2 + 0.4)  # backing off


def test_a_database_that_stays_down_fails_after_the_wait() -> None:
    session, clock = _Unreachable(up_after=10**6), _Clock()
    with pytest.raises(OperationalError):
        wait_for_database(cast(Session, session), 5, sleep=clock.sleep, clock=clock)
    assert 4 <= clock.now <= 5 and session.attempts > 3


@pytest.mark.usefixtures("test_db")
def test_copy_rows_writes_what_an_insert_would() -> None:
    """JSON, times and the model's constant defaults arrive as with an INSERT (PostgreSQL
    streams them with COPY); a computed default must be given."""
    from datetime import UTC, datetime

    from sqlalchemy import Table, delete, select

    from zhixing.core.db import copy_rows, transaction
    from zhixing.core.models import Job

    table = cast(Table, Job.__table__)
    when = datetime(2026, 11, 27, 1, 2, 3, 456789, tzinfo=UTC)
    rows = [{"kind": f"copy.test{i}", "payload": {"名": "刘某", "n": i, "list": [1, None]},
             "run_at": when, "created_at": when} for i in range(3)]
    with transaction() as session:
        copy_rows(session, table, rows)
    with transaction() as session:
        jobs = session.scalars(select(Job).where(Job.kind.like("copy.test%"))
                               .order_by(Job.kind)).all()
        assert [(j.kind, j.payload, j.run_at, j.state, j.attempts, j.max_attempts)
                for j in jobs] == [(f"copy.test{i}", {"名": "刘某", "n": i, "list": [1, None]},
                                    when, "queued", 0, 8) for i in range(3)]
        session.execute(delete(Job).where(Job.kind.like("copy.test%")))
    with pytest.raises(ValueError, match="created_at"), transaction() as session:
        copy_rows(session, table, [{"kind": "copy.x", "payload": {}, "run_at": when}])
