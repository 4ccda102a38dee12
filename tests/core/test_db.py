"""Engine construction: PostgreSQL pool sizes come from the settings."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy.pool import NullPool, QueuePool

from zhixing.core.db import make_engine
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
