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
