from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from tests.support.database import ScratchDatabase
from zhixing.core import audit, clock, jobs
from zhixing.core.actor import SYSTEM
from zhixing.core.db import session_factory, transaction
from zhixing.core.models import AuditRecord, Job

ROOT = Path(__file__).resolve().parents[2]
CALLS: list[dict[str, Any]] = []


@jobs.handler("test.record")
def _record(session: Session, payload: dict[str, Any]) -> None:
    CALLS.append(payload)
    audit.record(session, SYSTEM, "test.record", object_id=payload.get("key"))


@jobs.handler("test.fail")
def _fail(session: Session, payload: dict[str, Any]) -> None:
    audit.record(session, SYSTEM, "test.fail.partial")  # must be rolled back with the failure
    raise ValueError("unit down")


@pytest.fixture(autouse=True)
def _reset_calls() -> None:
    CALLS.clear()


def _job(db: Session, job_id: int) -> Job:
    db.expire_all()
    job = db.get(Job, job_id)
    assert job is not None
    return job


def _enqueue(kind: str, payload: dict[str, Any] | None = None, **kw: Any) -> int | None:
    with transaction() as session:
        job = jobs.enqueue(session, kind, payload, **kw)
        return job.id if job else None


@pytest.mark.usefixtures("test_db")
class TestLifecycle:
    def test_enqueued_job_runs_once(self, db: Session) -> None:
        job_id = _enqueue("test.record", {"key": "a"})
        assert job_id is not None
        worker = jobs.Worker()
        assert worker.run_pending() == 1
        assert worker.run_pending() == 0
        job = _job(db, job_id)
        assert (job.state, job.attempts) == ("done", 1)
        assert CALLS == [{"key": "a"}]

    def test_job_in_rolled_back_transaction_never_exists(self, db: Session) -> None:
        with pytest.raises(RuntimeError), transaction() as session:
            jobs.enqueue(session, "test.record", {"key": "ghost"})
            raise RuntimeError("the change failed")
        assert jobs.Worker().run_pending() == 0
        assert CALLS == []

    def test_delayed_job_waits(self, db: Session) -> None:
        job_id = _enqueue("test.record", {"key": "later"}, delay=timedelta(minutes=5))
        assert jobs.Worker().run_pending() == 0
        clock.set_offset(timedelta(minutes=6))
        assert jobs.Worker().run_pending() == 1
        assert _job(db, job_id or 0).state == "done"

    def test_failure_retries_with_backoff_then_dead_letters(self, db: Session) -> None:
        job_id = _enqueue("test.fail", max_attempts=3)
        assert job_id is not None
        worker = jobs.Worker()
        worker.run_pending()
        job = _job(db, job_id)
        assert (job.state, job.attempts) == ("queued", 1)
        assert "ValueError: unit down" in (job.last_error or "")
        assert job.run_at > clock.utcnow()  # backed off
        for hours in (1, 2):
            clock.set_offset(timedelta(hours=hours))
            worker.run_pending()
        job = _job(db, job_id)
        assert (job.state, job.attempts) == ("dead", 3)
        # The failing handler's own writes never landed.
        assert db.scalar(select(func.count()).where(AuditRecord.action == "test.fail.partial")) == 0

    def test_unknown_kind_is_not_lost(self, db: Session) -> None:
        job_id = _enqueue("test.nobody", max_attempts=1)
        jobs.Worker().run_pending()
        job = _job(db, job_id or 0)
        assert job.state == "dead" and "no handler" in (job.last_error or "")

    def test_dedupe_key_keeps_one_pending(self, db: Session) -> None:
        assert _enqueue("test.record", {"key": "d"}, dedupe_key="d") is not None
        assert _enqueue("test.record", {"key": "d"}, dedupe_key="d") is None
        jobs.Worker().run_pending()
        assert _enqueue("test.record", {"key": "d"}, dedupe_key="d") is not None

    def test_recurring_job_reschedules_itself(self, db: Session) -> None:
        _enqueue("test.record", {"key": "tick"}, dedupe_key="tick", interval=timedelta(hours=1))
        worker = jobs.Worker()
        assert worker.run_pending() == 1
        assert worker.run_pending() == 0  # next run is an hour away
        pending = db.scalars(select(Job).where(Job.dedupe_key == "tick", Job.state == "queued"))
        assert len(pending.all()) == 1
        clock.set_offset(timedelta(hours=1, seconds=1))
        assert worker.run_pending() == 1
        assert len(CALLS) == 2

    @pytest.mark.parametrize("attempts", [1, 2, 5, 10, 30])
    def test_backoff_grows_and_is_capped(self, attempts: int) -> None:
        delay = jobs.backoff_seconds(attempts)
        ceiling = min(jobs.BACKOFF_CAP_SECONDS, jobs.BACKOFF_BASE_SECONDS * 2 ** (attempts - 1))
        assert ceiling / 2 <= delay <= ceiling


@pytest.mark.usefixtures("test_db")
class TestLeases:
    def test_expired_lease_is_claimed_again(self, db: Session) -> None:
        _enqueue("test.record", {"key": "l"})
        with transaction() as session:
            first = jobs.claim(session, "w1", lease=timedelta(seconds=30))
        assert len(first) == 1
        with transaction() as session:
            assert jobs.claim(session, "w2") == []  # leased to w1
        clock.set_offset(timedelta(seconds=31))
        with transaction() as session:
            second = jobs.claim(session, "w2")
        assert [j.id for j in second] == [first[0].id] and second[0].attempts == 2

    def test_stale_worker_cannot_complete_after_losing_lease(self, db: Session) -> None:
        _enqueue("test.record", {"key": "fenced"})
        with transaction() as session:
            stale = jobs.claim(session, "w1", lease=timedelta(seconds=30))[0]
        clock.set_offset(timedelta(seconds=31))
        with transaction() as session:
            fresh = jobs.claim(session, "w2")[0]
        assert jobs.run_one(stale) is False  # its effects are rolled back
        assert jobs.run_one(fresh) is True
        effects = db.scalars(select(AuditRecord).where(AuditRecord.action == "test.record")).all()
        assert [e.object_id for e in effects] == ["fenced"]


def _spawn_worker(test_db: ScratchDatabase, **env: str) -> subprocess.Popen[bytes]:
    full_env = {**os.environ, "ZHIXING_DATABASE_URL": test_db.url, "ZHIXING_LOG_JSON": "false",
                "PYTHONPATH": str(ROOT), **env}
    return subprocess.Popen([sys.executable, "-m", "tests.support.job_worker"], cwd=ROOT,
                            env=full_env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def _wait_for(predicate: Callable[[], bool], timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    raise AssertionError("condition not reached in time")


def _count(action: str, key: str | None = None) -> int:
    with session_factory()() as s:
        stmt = select(func.count()).select_from(AuditRecord).where(AuditRecord.action == action)
        if key is not None:
            stmt = stmt.where(AuditRecord.object_id == key)
        return s.scalar(stmt) or 0


@pytest.fixture
def processes() -> Iterator[list[subprocess.Popen[bytes]]]:
    procs: list[subprocess.Popen[bytes]] = []
    yield procs
    for p in procs:
        if p.poll() is None:
            p.kill()
        p.wait(timeout=10)


@pytest.mark.slow
class TestRealWorkerProcesses:
    def test_sigkilled_worker_job_completes_exactly_once_elsewhere(
        self, test_db: ScratchDatabase, db: Session, processes: list[subprocess.Popen[bytes]]
    ) -> None:
        job_id = _enqueue("test.effect", {"key": "kill-me"})
        assert job_id is not None
        victim = _spawn_worker(test_db, TEST_WORKER_SLOW="30", ZHIXING_JOB_LEASE_SECONDS="2")
        processes.append(victim)
        # The victim has claimed the job and is inside the handler.
        _wait_for(lambda: _job(db, job_id).state == "running")
        time.sleep(0.3)
        victim.send_signal(signal.SIGKILL)
        victim.wait(timeout=10)
        assert victim.returncode == -signal.SIGKILL
        assert _count("test.effect", "kill-me") == 0
        assert _job(db, job_id).state == "running"  # still leased to the dead worker

        rescuer = _spawn_worker(test_db, ZHIXING_JOB_LEASE_SECONDS="2")
        processes.append(rescuer)
        _wait_for(lambda: _job(db, job_id).state == "done")
        job = _job(db, job_id)
        assert job.attempts == 2
        assert _count("test.effect", "kill-me") == 1
        assert _count("test.started", "kill-me") == 1  # the victim's started-record rolled back
        with session_factory()() as s:
            assert audit.verify_chain(s).ok

    def test_several_workers_never_run_a_job_twice(
        self, test_db: ScratchDatabase, db: Session, processes: list[subprocess.Popen[bytes]]
    ) -> None:
        n = 150
        with transaction() as session:
            for i in range(n):
                jobs.enqueue(session, "test.effect", {"key": f"j{i}"})
        for _ in range(3):
            processes.append(_spawn_worker(test_db, TEST_WORKER_SLOW="0.01",
                                           TEST_WORKER_BATCH="3"))
        _wait_for(lambda: _count("test.effect") == n, timeout=120)
        time.sleep(0.5)  # let any duplicate run show itself
        with session_factory()() as s:
            keys = s.scalars(select(AuditRecord.object_id)
                             .where(AuditRecord.action == "test.effect")).all()
            pids = s.scalars(select(AuditRecord.details)
                             .where(AuditRecord.action == "test.effect")).all()
            states = Counter(s.scalars(select(Job.state).where(Job.kind == "test.effect")))
        assert len(keys) == n and len(set(keys)) == n
        assert _count("test.started") == n
        assert states == Counter({"done": n})
        assert len({d["pid"] for d in pids}) >= 2  # the work really was shared
        for p in processes:
            p.send_signal(signal.SIGTERM)
