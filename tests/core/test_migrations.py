"""Alembic is the only source of schema: the migrated database matches the models exactly."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from tests.support.database import ScratchDatabase
from zhixing.core.db import get_engine
from zhixing.core.migrate import at_head
from zhixing.models_registry import Base


def test_models_and_migrations_agree(test_db: ScratchDatabase) -> None:
    with get_engine().connect() as conn:
        ctx = MigrationContext.configure(conn, opts={"compare_type": True})
        assert compare_metadata(ctx, Base.metadata) == []
    assert at_head()
