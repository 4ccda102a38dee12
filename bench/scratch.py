"""A scratch database for a benchmark run: created, pointed at by this process's environment
(and so by every platform process it starts), dropped by the caller (``db.destroy()``)."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from tests.support.database import ScratchDatabase


def scratch_database(prefix: str, backend: str = "postgresql") -> tuple[ScratchDatabase, Path]:
    """A fresh database on ``backend`` and a work directory for logs and uploads."""
    os.environ["ZHIXING_TEST_BACKEND"] = backend
    os.environ.setdefault("ZHIXING_ENV", "test")
    from tests.support.database import create_test_database

    work = Path(tempfile.mkdtemp(prefix=f"zhixing-{prefix}-"))
    db = create_test_database(work, "bench_")
    os.environ["ZHIXING_DATABASE_URL"] = db.url
    os.environ["ZHIXING_DATA_DIR"] = str(work / "data")
    return db, work


def prepare_platform() -> None:
    """Bring the scratch database to the newest schema, with the courts and the demo users."""
    from zhixing.core.db import transaction
    from zhixing.core.migrate import upgrade
    from zhixing.core.settings import get_settings
    from zhixing.courts.service import sync_courts
    from zhixing.demo import seed_users

    get_settings.cache_clear()
    upgrade()
    with transaction() as session:
        sync_courts(session)
        seed_users(session)
