"""Shared fixtures. One database per test session (SQLite or PostgreSQL, see support.database),
migrated and seeded once; tables that tests change are emptied after every test."""

from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, create_engine, delete, event, select, update
from sqlalchemy.orm import Session
from sqlalchemy.pool import NullPool

os.environ.setdefault("ZHIXING_ENV", "test")
os.environ.setdefault("ZHIXING_LOG_JSON", "false")

from tests.support.database import ScratchDatabase, create_test_database
from zhixing.core import clock
from zhixing.core.audit import GENESIS_HASH
from zhixing.core.db import make_engine, reset_engine, session_factory, set_engine
from zhixing.core.migrate import upgrade
from zhixing.core.models import AuditHead, AuditRecord
from zhixing.core.settings import get_settings
from zhixing.courts.models import User, UserRole
from zhixing.courts.service import sync_courts
from zhixing.credit import partner_keys
from zhixing.demo import DEMO_PASSWORD, seed_users
from zhixing.linkage import keys as linkage_keys
from zhixing.models_registry import Base

PASSWORD = DEMO_PASSWORD
# The in-process app, or real servers over HTTP (tests/support/processes.py): story helpers
# take either.
HttpClient = TestClient | httpx.Client
KEEP_TABLES = {"courts", "command_centers", "users", "user_roles", "alembic_version",
               "audit_head"}


@pytest.fixture(scope="session")
def test_db(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ScratchDatabase]:
    db = create_test_database(Path(tmp_path_factory.mktemp("db")))
    os.environ["ZHIXING_DATABASE_URL"] = db.url
    os.environ["ZHIXING_DATA_DIR"] = str(tmp_path_factory.mktemp("data"))
    get_settings.cache_clear()
    engine = make_engine(db.url)
    set_engine(engine)
    upgrade(engine)
    with session_factory()() as session:
        sync_courts(session)
        seed_users(session)
        session.commit()
        session.execute(delete(AuditRecord))  # tests start from an empty chain
        restart_chain(session)
        session.commit()
    yield db
    reset_engine()
    db.destroy()


@pytest.fixture(scope="session")
def seeded_users(test_db: ScratchDatabase) -> dict[str, tuple[int, str]]:
    with session_factory()() as session:
        return {u.username: (u.id, u.password_hash) for u in session.scalars(select(User))}


@pytest.fixture(autouse=True)
def _clean_state(request: pytest.FixtureRequest) -> Iterator[None]:
    uses_db = "test_db" in request.fixturenames
    seeded: dict[str, tuple[int, str]] = (
        request.getfixturevalue("seeded_users") if uses_db else {}
    )
    yield
    if uses_db:
        empty_database(seeded)
    else:
        forget_process_state()


def forget_process_state() -> None:
    """The clock's offset, and machine credentials cached by the process (they would outlive
    their deleted rows)."""
    clock.set_offset(timedelta(0))
    linkage_keys.forget_callers()
    partner_keys.forget()


def restart_chain(session: Session) -> None:
    """The audit chain's head back at its start, its records being gone."""
    session.execute(update(AuditHead).values(seq=0, hash=GENESIS_HASH))


def empty_database(seeded: dict[str, tuple[int, str]]) -> None:
    """Every table emptied but the reference data and the seeded users, who are reset: what
    each test leaves behind (a module sharing one world for its tests calls it at its end)."""
    forget_process_state()
    keep = [uid for uid, _ in seeded.values()]
    with session_factory()() as session:
        # Every table but the reference data and the seeded users, children first.
        for table in reversed(Base.metadata.sorted_tables):
            if table.name in KEEP_TABLES:
                continue
            session.execute(table.delete())
        restart_chain(session)
        session.execute(delete(UserRole).where(UserRole.user_id.not_in(keep)))
        session.execute(delete(User).where(User.id.not_in(keep)))
        for uid, pw_hash in seeded.values():
            session.execute(update(User).where(User.id == uid).values(
                password_hash=pw_hash, is_active=True, failed_logins=0, locked_until=None))
        session.commit()


@pytest.fixture(scope="session")
def observer_engine(test_db: ScratchDatabase) -> Iterator[Engine]:
    """Autocommit connections for the tests' own look-ups and tampering: each statement is its
    own transaction, so a test's session never holds SQLite's write lock while the code under
    test works in other sessions (the platform's own sessions use BEGIN IMMEDIATE)."""
    engine = create_engine(test_db.url, isolation_level="AUTOCOMMIT", poolclass=NullPool)
    if test_db.backend == "sqlite":
        @event.listens_for(engine, "connect")
        def _pragma(dbapi_conn: Any, _record: Any) -> None:
            dbapi_conn.execute("PRAGMA foreign_keys=ON")
            dbapi_conn.execute("PRAGMA busy_timeout=30000")
    yield engine
    engine.dispose()


@pytest.fixture
def db(observer_engine: Engine, seeded_users: dict[str, tuple[int, str]]) -> Iterator[Session]:
    session = Session(observer_engine, expire_on_commit=False)
    try:
        yield session
    finally:
        session.close()


@pytest.fixture
def client(
    test_db: ScratchDatabase, seeded_users: dict[str, tuple[int, str]]
) -> Iterator[TestClient]:
    from zhixing.app import create_app

    with TestClient(create_app(start_worker=False)) as c:
        yield c


def token_for(client: HttpClient, username: str) -> dict[str, str]:
    resp = client.post("/api/v1/auth/tokens", json={"username": username, "password": PASSWORD})
    assert resp.status_code == 201, resp.text
    return {"Authorization": f"Bearer {resp.json()['token']}"}


@pytest.fixture
def auth(client: TestClient) -> AuthHeaders:
    return AuthHeaders(client)


class AuthHeaders:
    """Bearer headers per demo user, fetched once per test."""

    def __init__(self, client: HttpClient) -> None:
        self._client = client
        self._cache: dict[str, dict[str, str]] = {}

    def __call__(self, username: str) -> dict[str, str]:
        if username not in self._cache:
            self._cache[username] = token_for(self._client, username)
        return self._cache[username]
