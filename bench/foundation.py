"""Foundation benchmark: job queue throughput, audit chain append rate, API request latency.

    .venv/bin/python -m bench.foundation --backend sqlite|postgresql [--jobs 2000] [--workers 1]

Each run uses a fresh scratch database and prints a Markdown table for docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.stats import percentile  # noqa: E402

os.environ.setdefault("ZHIXING_LOG_JSON", "false")




def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--backend", choices=["sqlite", "postgresql"], default="sqlite")
    parser.add_argument("--jobs", type=int, default=2000)
    parser.add_argument("--workers", type=int, default=1, help="worker processes")
    parser.add_argument("--audit", type=int, default=2000)
    parser.add_argument("--requests", type=int, default=1000)
    args = parser.parse_args()
    os.environ["ZHIXING_TEST_BACKEND"] = args.backend

    from tests.support.database import create_test_database

    db = create_test_database(Path(tempfile.mkdtemp()), "bench_")
    os.environ["ZHIXING_DATABASE_URL"] = db.url
    try:
        rows = run(db.url, args)
    finally:
        from zhixing.core.db import reset_engine

        reset_engine()
        db.destroy()
    print(f"\n| {args.backend} | figure |\n|---|---|")
    for name, value in rows:
        print(f"| {name} | {value} |")


def run(url: str, args: argparse.Namespace) -> list[tuple[str, str]]:
    from fastapi.testclient import TestClient
    from sqlalchemy import func, select

    from zhixing.core import audit, jobs
    from zhixing.core.actor import SYSTEM
    from zhixing.core.db import make_engine, session_factory, set_engine, transaction
    from zhixing.core.migrate import upgrade
    from zhixing.core.models import Job
    from zhixing.courts.service import sync_courts
    from zhixing.demo import DEMO_PASSWORD, seed_users

    engine = make_engine(url)
    set_engine(engine)
    upgrade(engine)
    with transaction() as s:
        sync_courts(s)
        seed_users(s)
    out: list[tuple[str, str]] = []

    # Audit appends, one record per committed transaction (the common case).
    start = time.perf_counter()
    for i in range(args.audit):
        with transaction() as s:
            audit.record(s, SYSTEM, "bench.audit", object_id=i)
    elapsed = time.perf_counter() - start
    out.append(("audit appends, one per transaction", f"{args.audit / elapsed:,.0f} /s"))
    start = time.perf_counter()
    with session_factory()() as s:
        result = audit.verify_chain(s)
    assert result.ok
    out.append(("audit verify", f"{result.checked / (time.perf_counter() - start):,.0f} records/s"))

    # Jobs: enqueue in batches of 100 per transaction, then drain with worker processes.
    start = time.perf_counter()
    for offset in range(0, args.jobs, 100):
        with transaction() as s:
            for i in range(offset, min(args.jobs, offset + 100)):
                jobs.enqueue(s, "test.effect", {"key": f"b{i}"})
    out.append(("jobs enqueued (100 per transaction)",
                f"{args.jobs / (time.perf_counter() - start):,.0f} /s"))
    env = {**os.environ, "ZHIXING_DATABASE_URL": url, "PYTHONPATH": str(ROOT),
           "TEST_WORKER_BATCH": "20"}
    start = time.perf_counter()
    procs = [subprocess.Popen([sys.executable, "-m", "tests.support.job_worker"], cwd=ROOT,
                              env=env) for _ in range(args.workers)]
    try:
        while True:
            with session_factory()() as s:
                left = s.scalar(select(func.count()).select_from(Job)
                                .where(Job.kind == "test.effect", Job.state != "done"))
            if not left:
                break
            time.sleep(0.05)
    finally:
        for p in procs:
            p.terminate()
            p.wait()
    elapsed = time.perf_counter() - start
    out.append((f"jobs run, {args.workers} worker process(es), incl. start-up",
                f"{args.jobs / elapsed:,.0f} /s"))

    # API latency in-process (no network): an authenticated read.
    from zhixing.app import create_app

    with TestClient(create_app(start_worker=False)) as client:
        token = client.post("/api/v1/auth/tokens",
                            json={"username": "qingxiu.officer", "password": DEMO_PASSWORD})
        headers = {"Authorization": f"Bearer {token.json()['token']}"}
        samples: list[float] = []
        for _ in range(args.requests):
            t0 = time.perf_counter()
            resp = client.get("/api/v1/me", headers=headers)
            samples.append((time.perf_counter() - t0) * 1000)
            assert resp.status_code == 200
    out.append(("GET /api/v1/me (bearer token), p50 / p95",
                f"{statistics.median(samples):.2f} ms / {percentile(samples, 95):.2f} ms"))
    return out




if __name__ == "__main__":
    main()
