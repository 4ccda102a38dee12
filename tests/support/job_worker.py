"""A real worker process for job tests: ``python -m tests.support.job_worker``.

Registers test handlers whose effect is an audit record (a real table, written in the job's
transaction), so a test can count effects exactly. ``TEST_WORKER_SLOW`` makes the handler sleep
before writing, so the test can kill the process mid-job.
"""

from __future__ import annotations

import os
import signal
import time
from typing import Any

from sqlalchemy.orm import Session

from zhixing.core import audit, jobs
from zhixing.core.actor import SYSTEM
from zhixing.core.jobs import Worker


@jobs.handler("test.effect")
def effect(session: Session, payload: dict[str, Any]) -> None:
    audit.record(session, SYSTEM, "test.started", object_id=payload["key"],
                 details={"pid": os.getpid()})
    session.flush()
    time.sleep(float(os.environ.get("TEST_WORKER_SLOW", "0")))
    audit.record(session, SYSTEM, "test.effect", object_id=payload["key"],
                 details={"pid": os.getpid()})


def main() -> None:
    worker = Worker(poll_interval=0.05, batch=int(os.environ.get("TEST_WORKER_BATCH", "5")))
    signal.signal(signal.SIGTERM, lambda *_: worker.stop())
    worker.run_forever()


if __name__ == "__main__":
    main()
