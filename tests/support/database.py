"""Test databases: a fresh SQLite file or a fresh PostgreSQL database per test session."""

from __future__ import annotations

import os
import uuid
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

# Set ZHIXING_TEST_BACKEND=postgresql to run the suite on PostgreSQL (CI runs both).
DEFAULT_PG_ADMIN_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"


@dataclass
class ScratchDatabase:
    url: str
    backend: str
    _drop: str | None = None
    _admin_url: str | None = None
    _file: Path | None = None

    def destroy(self) -> None:
        if self._drop and self._admin_url:
            admin = create_engine(self._admin_url, isolation_level="AUTOCOMMIT")
            with admin.connect() as conn:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{self._drop}" WITH (FORCE)'))
            admin.dispose()
        if self._file:
            for suffix in ("", "-wal", "-shm"):
                Path(f"{self._file}{suffix}").unlink(missing_ok=True)


def create_test_database(tmp_dir: Path, label: str = "") -> ScratchDatabase:
    backend = os.environ.get("ZHIXING_TEST_BACKEND", "sqlite")
    if backend == "postgresql":
        admin_url = os.environ.get("ZHIXING_TEST_PG_ADMIN_URL", DEFAULT_PG_ADMIN_URL)
        name = f"zhixing_test_{label}{uuid.uuid4().hex[:10]}"
        admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        admin.dispose()
        url = make_url(admin_url).set(database=name).render_as_string(hide_password=False)
        return ScratchDatabase(url, backend, name, admin_url)
    path = tmp_dir / f"zhixing-test-{label}{uuid.uuid4().hex[:8]}.db"
    return ScratchDatabase(f"sqlite:///{path}", backend, _file=path)
