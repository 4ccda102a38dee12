"""Network query and control over the real protocol: server, worker and the unit simulator
(45 processes) on this machine.

    .venv/bin/python -m bench.linkage --backend postgresql|sqlite [--inquiries 30]
        [--bulk-inquiries 20 --debtors 10] [--events 30] [--poll-interval 0.1]

Figures (printed as a Markdown table for docs/benchmarks.md):
- latency: from an inquiry's submission (POST) to its 45th answer stored, one inquiry at a
  time, zero simulated latency: p50 / p95;
- throughput: unit tasks per second end to end (created → answered → stored in the ledger),
  with inquiries about many debtors submitted back to back (``--submitters 1``) or all at once
  by several officers (``--submitters N``: a backlog, as when many courts ask at the same time);
- watch: from a ``funds_arrived`` event accepted by the platform to the follow-up freeze
  reaching the bank (delivered by push or fetched): p50 / p95.
"""

from __future__ import annotations

import argparse
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.scratch import prepare_platform  # noqa: E402
from bench.stats import percentile  # noqa: E402

os.environ.setdefault("ZHIXING_LOG_JSON", "false")
PURPOSE = {"purpose": "查明被执行人财产以供执行",
           "legal_basis": "《中华人民共和国民事诉讼法》第二百五十三条"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--backend", choices=["sqlite", "postgresql"], default="postgresql")
    parser.add_argument("--inquiries", type=int, default=30, help="for the latency figure")
    parser.add_argument("--bulk-inquiries", type=int, default=20, help="for throughput")
    parser.add_argument("--debtors", type=int, default=10, help="debtors per bulk inquiry")
    parser.add_argument("--events", type=int, default=30, help="money arrivals")
    parser.add_argument("--submitters", type=int, default=1,
                        help="bulk inquiries submitted at once (1: one after another)")
    parser.add_argument("--api-workers", type=int, default=1, help="API server processes")
    parser.add_argument("--job-workers", type=int, default=1, help="`zhixing worker` processes")
    parser.add_argument("--sim-processes", type=int, default=5,
                        help="processes of the 45 simulated units (45: one each)")
    parser.add_argument("--poll-interval", type=float, default=0.1,
                        help="how often an idle pull unit asks for tasks")
    args = parser.parse_args()
    os.environ["ZHIXING_TEST_BACKEND"] = args.backend

    from tests.support.database import create_test_database

    db = create_test_database(Path(tempfile.mkdtemp()), "bench_")
    os.environ["ZHIXING_DATABASE_URL"] = db.url
    prepare_platform()
    try:
        rows = run(db.url, args)
    finally:
        from zhixing.core.db import reset_engine

        reset_engine()
        db.destroy()
    print(f"\n| {args.backend}, {args.api_workers} API / {args.job_workers} job worker "
          f"process(es), {os.cpu_count()} cores | figure |\n|---|---|")
    for name, value in rows:
        print(f"| {name} | {value} |")


class Procs:
    def __init__(self, env: dict[str, str], work: Path) -> None:
        self.env, self.work = env, work
        self.procs: list[subprocess.Popen[bytes]] = []

    def start(self, name: str, *args: str) -> None:
        with (self.work / f"{name}.log").open("ab") as log:
            self.procs.append(subprocess.Popen(
                [sys.executable, "-m", "zhixing.cli", *args], cwd=ROOT, env=self.env,
                stdout=subprocess.DEVNULL, stderr=log))

    def stop(self) -> None:
        for proc in reversed(self.procs):
            proc.send_signal(signal.SIGTERM)
        for proc in self.procs:
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()


def wait_for(check: Callable[[], Any], timeout: float, step: float = 0.01) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        time.sleep(step)
    raise TimeoutError("the platform did not finish in time")


def run(url: str, args: argparse.Namespace) -> list[tuple[str, str]]:
    from sqlalchemy import func, select
    from tests.cases.factories import case_payload, person
    from tests.conftest import PASSWORD
    from tests.support.server import free_port

    from zhixing.core.db import session_factory, transaction
    from zhixing.linkage import onboarding
    from zhixing.linkage.models import ControlOrder, LinkageTask, LinkageUnit, UnitEvent
    from zhixing.linkage.simulator import credit, holdings

    port = free_port()
    base = f"http://127.0.0.1:{port}"
    work = Path(tempfile.mkdtemp(prefix="zhixing-bench-linkage-"))
    with transaction() as session:
        config = onboarding.simulated_units(session, base)
        for unit in config["units"]:
            if unit["push_url"]:
                unit["push_url"] = f"http://127.0.0.1:{free_port()}/zhixing/push"
                row = session.scalars(select(LinkageUnit).where(
                    LinkageUnit.code == unit["code"])).one()
                row.push_url = unit["push_url"]
    onboarding.write_secret_file(work / "units.json", config)
    env = {**os.environ, "ZHIXING_DATABASE_URL": url, "ZHIXING_ENV": "test",
           "ZHIXING_EMBEDDED_WORKER": "false", "ZHIXING_LOG_LEVEL": "WARNING"}
    procs = Procs(env, work)
    http = httpx.Client(base_url=base, timeout=60)
    rng = random.Random(11)
    try:
        procs.start("server", "serve", "--no-migrate", "--port", str(port), "--workers",
                    str(args.api_workers))
        wait_for(lambda: _ready(http), 60, 0.1)
        for k in range(args.job_workers):
            procs.start(f"worker-{k}", "worker")
        procs.start("simulator", "simulate-units", "--config", str(work / "units.json"),
                    "--ledger-dir", str(work / "ledgers"), "--long-poll", "20", "--poll-interval",
                    str(args.poll_interval), "--seed", "3", "--processes",
                    str(args.sim_processes))
        token = http.post("/api/v1/auth/tokens", json={
            "username": "qingxiu.officer", "password": PASSWORD}).json()["token"]
        h = {"Authorization": f"Bearer {token}"}

        def new_case(debtors: list[dict[str, Any]], **kw: Any) -> dict[str, Any]:
            resp = http.post("/api/v1/cases", json=case_payload(debtors=debtors, **kw),
                             headers=h)
            resp.raise_for_status()
            return dict(resp.json())

        def final_count(inquiry_ids: list[int]) -> int:
            with session_factory()() as s:
                return int(s.scalar(select(func.count()).select_from(LinkageTask).where(
                    LinkageTask.inquiry_id.in_(inquiry_ids),
                    LinkageTask.status.in_(("answered", "refused", "failed")))) or 0)

        # Warm up: every unit answers once (the simulator's processes have started).
        warm = new_case([person()])
        first = http.post(f"/api/v1/cases/{warm['id']}/inquiries", json=PURPOSE, headers=h)
        wait_for(lambda: final_count([first.json()["id"]]) == 45, 120)

        # 1. latency: submission to the 45th answer, one inquiry at a time.
        latencies = []
        for _ in range(args.inquiries):
            case = new_case([person()])
            started = time.perf_counter()
            resp = http.post(f"/api/v1/cases/{case['id']}/inquiries", json=PURPOSE, headers=h)
            resp.raise_for_status()
            iid: int = resp.json()["id"]
            wait_for(lambda: final_count([iid]) == 45, 60, 0.005)  # noqa: B023 (awaited here)
            latencies.append(time.perf_counter() - started)

        with session_factory()() as s:
            spans = s.execute(select(LinkageUnit.delivery_mode, LinkageTask.created_at,
                                     LinkageTask.delivered_at, LinkageTask.answered_at)
                              .join(LinkageUnit, LinkageUnit.id == LinkageTask.unit_id)
                              .where(LinkageTask.inquiry_id.is_not(None))).all()
        breakdown = {}
        for mode in ("pull", "push"):
            deliver = [(d - c).total_seconds() for m, c, d, a in spans if m == mode and d]
            answer = [(a - d).total_seconds() for m, c, d, a in spans if m == mode and d and a]
            breakdown[mode] = (f"to the unit p50 {percentile(deliver, 50):.2f} / p95 "
                               f"{percentile(deliver, 95):.2f} s; answered after p50 "
                               f"{percentile(answer, 50):.2f} / p95 {percentile(answer, 95):.2f} s")
        print(breakdown, flush=True)

        # 2. throughput: many debtors per inquiry, inquiries back to back.
        cases = [new_case([person() for _ in range(args.debtors)])
                 for _ in range(args.bulk_inquiries)]
        def submit(case: dict[str, Any]) -> int:
            with httpx.Client(base_url=base, timeout=60) as own:  # one connection each
                resp = own.post(f"/api/v1/cases/{case['id']}/inquiries", json=PURPOSE,
                                headers=h)
            resp.raise_for_status()
            return int(resp.json()["id"])

        started = time.perf_counter()
        # One officer after another (--submitters 1), or several courts at once: a backlog.
        with ThreadPoolExecutor(args.submitters) as pool:
            ids = list(pool.map(submit, cases))
        submitted = time.perf_counter() - started
        print(f"latency p95 {percentile(latencies, 95):.2f} s; {len(ids)} bulk inquiries "
              f"submitted in {submitted:.1f} s", flush=True)
        total = 45 * args.debtors * args.bulk_inquiries
        wait_for(lambda: final_count(ids) == total, 600, 0.05)
        elapsed = time.perf_counter() - started

        # 3. watch: money arriving under a standing freeze, frozen by a follow-up order.
        debtor = person()
        while not any(a.account_type != "wealth_product" for a in holdings.deposit_accounts(
                "bank-icbc", "中国工商银行", debtor["id_number"])):
            debtor = person()
        case = new_case([debtor], principal_fen=10_000_000_000)  # room for every arrival
        resp = http.post(f"/api/v1/cases/{case['id']}/inquiries",
                         json={**PURPOSE, "kinds": ["deposits"]}, headers=h)
        wait_for(lambda: final_count([resp.json()["id"]]) >= 20, 60)
        detail = http.get(f"/api/v1/cases/{case['id']}", headers=h).json()
        demand = {a.account_number for a in holdings.deposit_accounts(
            "bank-icbc", "中国工商银行", debtor["id_number"]) if a.account_type != "wealth_product"}
        asset = next(a for a in detail["assets"] if a["identifier"] in demand)
        # A standing freeze far above the balance: what arrives is caught by the bank up to
        # it; the bench makes the bank catch nothing (amount_frozen 0) by ordering exactly the
        # balance, so every arrival needs the platform's follow-up order.
        balance = max(1, asset["value_fen"] or 1)
        placed = http.post(f"/api/v1/cases/{case['id']}/assets/{asset['id']}/orders", json={
            "kind": "freeze", "amount_fen": balance, "document_number": "（2026）桂0103执1号",
            **PURPOSE}, headers=h)
        assert placed.status_code == 201, placed.text
        order = placed.json()

        def standing() -> bool:
            with session_factory()() as s:
                return s.scalar(select(ControlOrder.status).where(
                    ControlOrder.id == order["id"])) in ("applied", "partial")

        wait_for(standing, 60)
        for _ in range(args.events):
            credit(work / "ledgers", "bank-icbc", account_number=asset["identifier"],
                   amount_fen=rng.randint(100, 10_000))
            time.sleep(0.3)

        def follow_ups_delivered() -> list[tuple[datetime, datetime]] | None:
            with session_factory()() as s:
                rows = s.execute(select(UnitEvent.received_at, LinkageTask.delivered_at)
                                 .join(LinkageTask, LinkageTask.order_id
                                       == UnitEvent.follow_up_order_id)).all()
            done = [(a, b) for a, b in rows if b is not None]
            return done if len(done) >= args.events else None

        pairs = wait_for(follow_ups_delivered, 120, 0.1)
        watch = [(b - a).total_seconds() for a, b in pairs]
        _print_route_latency(http.get("/metrics").text)
    finally:
        http.close()
        procs.stop()
    return [
        *[(f"{mode} units (latency run)", text) for mode, text in breakdown.items()],
        ("inquiry → 45th answer, p50 / p95 (s)",
         f"{percentile(latencies, 50):.2f} / {percentile(latencies, 95):.2f}"
         f" ({len(latencies)} inquiries)"),
        ("unit tasks end to end (tasks/s)",
         f"{total / elapsed:,.0f} ({total:,} tasks in {elapsed:.1f} s; "
         f"submitting took {submitted:.1f} s)"),
        ("money arrived → follow-up freeze at the bank, p50 / p95 (s)",
         f"{percentile(watch, 50):.2f} / {percentile(watch, 95):.2f} ({len(watch)} events)"),
    ]


def _print_route_latency(metrics: str) -> None:
    """Mean server time per protocol route, from the server's own Prometheus histogram."""
    sums: dict[str, float] = {}
    counts: dict[str, float] = {}
    for line in metrics.splitlines():
        if "linkage" not in line or line.startswith("#"):
            continue
        name, _, value = line.rpartition(" ")
        route = name[name.find("{"):]
        if name.startswith("zhixing_http_request_duration_seconds_sum"):
            sums[route] = float(value)
        elif name.startswith("zhixing_http_request_duration_seconds_count"):
            counts[route] = float(value)
    for route, total in sums.items():
        n = counts.get(route, 0)
        if n:
            print(f"server time {route}: {n:.0f} requests, mean {1000 * total / n:.1f} ms")


def _ready(http: httpx.Client) -> bool:
    try:
        return http.get("/readyz").status_code == 200
    except httpx.HTTPError:
        return False


if __name__ == "__main__":
    main()
