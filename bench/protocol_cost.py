"""What one linkage protocol call costs the platform: server CPU per call and per task.

    .venv/bin/python -m bench.protocol_cost --backend postgresql|sqlite [--inquiries 5]
        [--debtors 10] [--profile]

The end-to-end benchmark (``bench.linkage``) says how many tasks a second the whole machine
moves; this one says where the platform's own share goes, without the noise of 45 simulated
units competing for the cores. One API process, no job worker; one client plays every pull
unit in turn through the SDK and the simulator's ledger (fetch, acknowledge, answer), one call
at a time, and the server process's CPU time (``/proc/<pid>/stat``) is read around each call.
An inquiry's submission is measured the same way. ``--profile`` runs py-spy on the server (it
must be on the PATH) and writes its folded stacks to the work directory.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.linkage import PURPOSE, Procs, _ready, wait_for  # noqa: E402
from bench.scratch import prepare_platform, scratch_database  # noqa: E402

os.environ.setdefault("ZHIXING_LOG_JSON", "false")


def cpu_seconds(pid: int) -> float:
    """User + system CPU of a process so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class Meter:
    """Server CPU and wall time per kind of call, and the tasks each call carried."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.cpu: dict[str, float] = defaultdict(float)
        self.wall: dict[str, float] = defaultdict(float)
        self.calls: dict[str, int] = defaultdict(int)
        self.tasks: dict[str, int] = defaultdict(int)

    def measure(self, kind: str, call: Any, tasks: int = 0) -> Any:
        # The server's CPU clock ticks at 100 Hz: the totals over hundreds of calls are what
        # count, not one call's reading.
        before, started = cpu_seconds(self.pid), time.perf_counter()
        out = call()
        self.wall[kind] += time.perf_counter() - started
        self.cpu[kind] += cpu_seconds(self.pid) - before
        self.calls[kind] += 1
        self.tasks[kind] += tasks
        return out

    def rows(self) -> list[tuple[str, str]]:
        out = []
        for kind in self.calls:
            n, tasks = self.calls[kind], self.tasks[kind]
            per_task = f"; {1000 * self.cpu[kind] / tasks:.2f} ms CPU per task" if tasks else ""
            out.append((kind, f"{n} calls, {tasks} tasks: {1000 * self.cpu[kind] / n:.1f} ms "
                              f"CPU and {1000 * self.wall[kind] / n:.1f} ms wall per call"
                              f"{per_task}"))
        total = sum(self.cpu[k] for k in self.calls if k != "inquiry")
        answered = self.tasks.get("results", 0)
        if answered:
            out.append(("protocol total", f"{1000 * total / answered:.2f} ms server CPU per "
                        f"task answered (fetch + ack + results): at most "
                        f"{answered / total:,.0f} tasks/s per fully busy API process"))
        return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--backend", choices=["sqlite", "postgresql"], default="postgresql")
    parser.add_argument("--inquiries", type=int, default=5)
    parser.add_argument("--debtors", type=int, default=10, help="debtors per inquiry")
    parser.add_argument("--profile", action="store_true", help="py-spy profile of the server")
    args = parser.parse_args()
    db, work = scratch_database("protocol-cost", args.backend)
    from zhixing.core.db import reset_engine

    prepare_platform()
    try:
        rows = run(db.url, work, args)
    finally:
        reset_engine()
        db.destroy()
    print(f"\n| {args.backend}, one API process, {os.cpu_count()} cores | figure |\n|---|---|")
    for name, value in rows:
        print(f"| {name} | {value} |")


def run(url: str, work: Path, args: argparse.Namespace) -> list[tuple[str, str]]:
    from tests.cases.factories import case_payload, person
    from tests.conftest import PASSWORD
    from tests.support.server import free_port

    from zhixing.core.db import transaction
    from zhixing.linkage import onboarding, wire
    from zhixing.linkage.simulator.config import UnitConfig
    from zhixing.linkage.simulator.faults import SimulatorOptions
    from zhixing.linkage.simulator.ledger import Ledger
    from zhixing.linkage.simulator.unit import UnitSimulator, profile_of

    port = free_port()
    base = f"http://127.0.0.1:{port}"
    with transaction() as session:
        config = onboarding.simulated_units(session, base, all_pull=True)
    env = {**os.environ, "ZHIXING_DATABASE_URL": url, "ZHIXING_ENV": "test",
           "ZHIXING_EMBEDDED_WORKER": "false", "ZHIXING_LOG_LEVEL": "WARNING"}
    procs = Procs(env, work)
    http = httpx.Client(base_url=base, timeout=60)
    spy: subprocess.Popen[bytes] | None = None
    try:
        procs.start("server", "serve", "--no-migrate", "--port", str(port))
        wait_for(lambda: _ready(http), 60, 0.1)
        pid = procs.procs[0].pid
        meter = Meter(pid)
        token = http.post("/api/v1/auth/tokens", json={
            "username": "qingxiu.officer", "password": PASSWORD}).json()["token"]
        h = {"Authorization": f"Bearer {token}"}
        options = SimulatorOptions(long_poll=0, fetch_limit=wire.MAX_TASKS_PER_FETCH)
        units = [UnitConfig.model_validate(u) for u in config["units"]]
        sims = [UnitSimulator(u, base, Ledger.open(work / "ledgers", u.code, profile_of(u)),
                              options) for u in units]
        # Warm up: one inquiry about one debtor, answered by every unit (imports, caches).
        _round(http, h, meter, sims, [person()], case_payload, warm=True)
        meter.__init__(pid)  # type: ignore[misc]
        if args.profile:
            spy = subprocess.Popen([shutil.which("py-spy") or "py-spy", "record", "-p",
                                    str(pid), "-f", "raw", "-o", str(work / "server.folded"),
                                    "-r", "200"], stdout=subprocess.DEVNULL)
            time.sleep(1)
        for _ in range(args.inquiries):
            _round(http, h, meter, sims, [person() for _ in range(args.debtors)],
                   case_payload)
        if spy is not None:
            spy.send_signal(2)
            spy.wait(30)
            print(f"profile (folded stacks): {work / 'server.folded'}")
        for sim in sims:
            sim.client.close()
            sim.ledger.close()
    finally:
        http.close()
        procs.stop()
    return meter.rows()


def _round(http: httpx.Client, h: dict[str, str], meter: Meter, sims: list[Any],
           debtors: list[dict[str, Any]], case_payload: Any, warm: bool = False) -> None:
    """One inquiry about ``debtors``; then each unit fetches, acknowledges and answers."""
    from datetime import timedelta

    resp = http.post("/api/v1/cases", json=case_payload(debtors=debtors), headers=h)
    resp.raise_for_status()
    case_id = resp.json()["id"]
    created = meter.measure("inquiry", lambda: http.post(
        f"/api/v1/cases/{case_id}/inquiries", json=PURPOSE, headers=h))
    created.raise_for_status()
    for sim in sims:
        batch = meter.measure("fetch", lambda s=sim: s.client.fetch_tasks(
            s.options.fetch_limit, 0))
        if not batch.tasks:
            continue
        meter.tasks["fetch"] += len(batch.tasks)
        now = sim.ledger.now()
        sim.ledger.store_tasks([(t, now - timedelta(seconds=1), None) for t in batch.tasks],
                               now)
        ids = [t.task_id for t in batch.tasks]
        meter.measure("ack", lambda s=sim, i=ids: s.client.ack(i), len(ids))
        sim.process_due()
        pending = sim.ledger.pending_results(sim.ledger.now())
        results = [p.result for p in pending]
        outcomes = meter.measure("results", lambda s=sim, r=results: s.client.post_results(r),
                                 len(results))
        sim.ledger.record_result_outcomes(outcomes, sim.ledger.now())
        if not warm and any(o.outcome != "accepted" for o in outcomes):
            raise SystemExit(f"{sim.unit.code}: results not accepted: {outcomes[:3]}")


if __name__ == "__main__":
    main()
