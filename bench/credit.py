"""Screening through HTTP: the real app under uvicorn with the index preloaded.

    .venv/bin/python -m bench.credit --entries 10000000 [--db-entries 2000] [--seconds 10]

A scratch SQLite database gets the courts, the users, the reference partners and ``--db-entries``
real list entries (cases registered through the API, entries made by ``entries.sync``). The
server process (one uvicorn process, the app as built by ``zhixing.app.create_app``) loads its
screening indexes from those entries plus ``--entries`` generated ones (valid resident IDs and
credit codes, census-shaped names; ids beyond the database's, so a hit on them is dropped by the
entry check as a stale index row would be) and follows the feed on its thread. Measured from
this process over HTTP on loopback (client and server share the machine's cores):

- exact screening throughput: batches of 1,000 numbers (1% listed), 2 client threads;
- single-check latency p50/p99 at a fixed open-loop rate (default 500 requests/s, measured
  from each request's scheduled start, so a stall counts for the requests queued behind it);
- name screening p95 (one name per request, closed loop);
- a new listing or a deletion written to the database → visible in screening;
- index memory per entry (``ExactIndex.memory_bytes() / N``; the name index separately).

Prints a Markdown table for docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "src"))

from bench import loadgen  # noqa: E402
from bench.screening import NameMaker, identity_numbers, resident_ids  # noqa: E402
from bench.stats import percentile  # noqa: E402

os.environ.setdefault("ZHIXING_LOG_JSON", "false")
SYNTHETIC_BASE = 10**12  # generated entry ids: far beyond the database's
SCREEN = "/api/v1/partner/screen"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--entries", type=int, default=1_000_000)
    parser.add_argument("--db-entries", type=int, default=2000)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--rate", type=int, default=500, help="single checks per second")
    parser.add_argument("--backend", choices=["sqlite", "postgresql"], default="postgresql")
    parser.add_argument("--workers", type=int, default=1, help="API server processes")
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--stats", default="", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(args)
        return
    work = Path(tempfile.mkdtemp(prefix="zhixing-bench-credit-"))
    os.environ["ZHIXING_TEST_BACKEND"] = args.backend
    from tests.support.database import create_test_database

    db = create_test_database(work, "bench_")
    os.environ["ZHIXING_DATABASE_URL"] = db.url
    os.environ["ZHIXING_DATA_DIR"] = str(work / "data")
    token, listed = prepare(args.db_entries)
    env = {**os.environ, "ZHIXING_EMBEDDED_WORKER": "false"}
    servers: list[tuple[subprocess.Popen[bytes], int, Path]] = []
    logs = []
    try:
        # N API processes, each with its own preloaded index, as behind a load balancer: the
        # clients spread their connections over the processes' ports.
        for k in range(args.workers):
            port, stats = _free_port(), work / f"stats-{k}.json"
            log = (work / f"server-{k}.log").open("wb")
            logs.append(log)
            servers.append((subprocess.Popen(
                [sys.executable, "-m", "bench.credit", "--serve", "--entries",
                 str(args.entries), "--port", str(port), "--stats", str(stats)], cwd=ROOT,
                env=env, stderr=log, stdout=log), port, stats))
        started = time.monotonic()
        for server, _port, stats in servers:
            while not stats.exists():
                if server.poll() is not None:
                    raise SystemExit(f"a server ended; see {work}/server-*.log")
                time.sleep(0.2)
        loaded = json.loads(servers[0][2].read_text())
        loaded["startup_seconds"] = time.monotonic() - started
        urls = [f"http://127.0.0.1:{port}" for _, port, _ in servers]
        rows = run(urls, {"Authorization": f"Bearer {token}",
                          "Content-Type": "application/json"}, listed, loaded, args)
    finally:
        for server, _, _ in servers:
            server.terminate()
        for server, _, _ in servers:
            try:
                server.wait(10)
            except subprocess.TimeoutExpired:
                server.kill()
        for log in logs:
            log.close()
        from zhixing.core.db import reset_engine

        reset_engine()
        db.destroy()
    print(f"\n| screening over HTTP, {args.entries:,} entries, {args.backend}, "
          f"{args.workers} API process(es) ({os.cpu_count()} cores) "
          f"| figure |\n|---|---|")
    for name, value in rows:
        print(f"| {name} | {value} |")


# --- the database ---------------------------------------------------------------------------


def prepare(db_entries: int) -> tuple[str, list[tuple[int, int, str, str]]]:
    """Migrate, seed, register cases and list their debtors; returns the airline's key and
    (party id, id number, name) of the listed debtors."""
    from fastapi.testclient import TestClient
    from tests.cases.factories import case_payload, person

    from zhixing.app import create_app
    from zhixing.cases.models import Case, Party
    from zhixing.core.actor import SYSTEM
    from zhixing.core.db import transaction
    from zhixing.core.migrate import upgrade
    from zhixing.core.settings import get_settings
    from zhixing.courts.identity import issue_api_key
    from zhixing.courts.models import ClientKind
    from zhixing.courts.service import sync_courts
    from zhixing.credit import entries, partners
    from zhixing.credit.activities import mask_of
    from zhixing.credit.models import BoundRole, SourceKind
    from zhixing.demo import DEMO_PASSWORD, seed_users

    get_settings.cache_clear()
    upgrade()
    with transaction() as session:
        sync_courts(session)
        seed_users(session)
        partners.sync_partners(session)
        key_id, secret, _ = issue_api_key(session, ClientKind.PARTNER, "caac", "bench", [],
                                          SYSTEM)
    makers = NameMaker(11)
    listed: list[tuple[int, int, str, str]] = []
    with TestClient(create_app(start_worker=False)) as client:
        tok = client.post("/api/v1/auth/tokens", json={"username": "qingxiu.officer",
                                                       "password": DEMO_PASSWORD}).json()
        headers = {"Authorization": f"Bearer {tok['token']}"}
        per_case = 20
        for _ in range(0, db_entries, per_case):
            debtors = [person(n) for n in makers.names(per_case)]
            resp = client.post("/api/v1/cases", headers=headers,
                               json=case_payload(filed_days_ago=40, debtors=debtors))
            assert resp.status_code == 201, resp.text
            case = resp.json()
            with transaction() as session:
                row = session.get(Case, case["id"])
                assert row is not None
                for p in case["parties"]:
                    if p["role"] != "debtor":
                        continue
                    party = session.get(Party, p["id"])
                    assert party is not None
                    entries.sync(session, SourceKind.RESTRICTION, p["id"], row,
                                 [entries.Binding(party, BoundRole.DEBTOR,
                                                  mask_of(["flight", "loan"]))], active=True)
                    listed.append((p["id"], case["id"], p["id_number"], p["name"]))
    return f"{key_id}.{secret}", listed[:db_entries]


def relist(party_id: int, case_id: int, active: bool) -> None:
    """List (or lift) a debtor anew: a restriction of its own, as an officer's order writes it."""
    from zhixing.cases.models import Case, Party
    from zhixing.core.db import transaction
    from zhixing.credit import entries
    from zhixing.credit.activities import mask_of
    from zhixing.credit.models import BoundRole, SourceKind

    with transaction() as session:
        party = session.get(Party, party_id)
        case = session.get(Case, case_id)
        assert party is not None and case is not None
        entries.sync(session, SourceKind.RESTRICTION, 10**9 + party_id, case,
                     [entries.Binding(party, BoundRole.DEBTOR, mask_of(["flight"]))],
                     active=active)


# --- the server process ---------------------------------------------------------------------


def serve(args: argparse.Namespace) -> None:
    import gc

    import uvicorn

    from zhixing.app import create_app
    from zhixing.core.db import transaction
    from zhixing.credit import follower
    from zhixing.credit.feed import head_seq
    from zhixing.credit.models import Entry

    n = args.entries
    t0 = time.perf_counter()
    with transaction() as session:
        head = head_seq(session)
        real = session.execute(Entry.__table__.select().where(Entry.active.is_(True))).all()
    rng = np.random.default_rng(20251126)
    numbers = identity_numbers(rng, n)
    numbers += [r.id_number for r in real]
    ids = np.concatenate([np.arange(SYNTHETIC_BASE, SYNTHETIC_BASE + n, dtype=np.int64),
                          np.array([r.id for r in real], dtype=np.int64)])
    masks = np.concatenate([rng.integers(1, 1 << 20, n).astype(np.uint32),  # 20 activities
                            np.array([r.mask for r in real], dtype=np.uint32)])
    maker = NameMaker(5)

    def names() -> Any:
        yield from maker.rows(n, start=SYNTHETIC_BASE)
        for r in real:
            yield r.id, r.name, r.birth_date, r.region

    indexes = follower.ScreeningIndexes()
    indexes.load_arrays(numbers, ids, masks, names(), head)
    del numbers, ids, masks
    gc.collect()
    gc.freeze()  # the index's Python objects are long-lived: keep the collector off them
    load_seconds = time.perf_counter() - t0
    follower.set_indexes(indexes)
    indexes.start()
    Path(args.stats).write_text(json.dumps({
        "load_seconds": load_seconds, "entries": n + len(real),
        "exact_bytes": indexes.exact.memory_bytes(), "name_bytes": indexes.names.memory_bytes(),
        "rss": _rss()}))
    uvicorn.run(create_app(start_worker=False), host="127.0.0.1", port=args.port,
                log_level="warning", access_log=False)


def _rss() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# --- the measurements -----------------------------------------------------------------------


def run(urls: list[str], headers: dict[str, str], listed: list[tuple[int, int, str, str]],
        loaded: dict[str, Any], args: argparse.Namespace) -> list[tuple[str, str]]:
    rng = np.random.default_rng(3)
    strangers = resident_ids(rng, 200_000)
    listed_numbers = [n for _, _, n, _ in listed]
    for url in urls:
        with httpx.Client(base_url=url, headers=headers, timeout=60) as http:
            warm = http.post(SCREEN, content=_batch(strangers[:1000], listed_numbers, 0))
            assert warm.status_code == 200, warm.text
            results = warm.json()["results"]
            assert sum(bool(r["restricted"]) for r in results) == 10, "listed people not found"
    url = urls[0]

    throughput = _throughput(urls, headers, strangers, listed_numbers, args.seconds)
    _progress(f"throughput {throughput:,.0f} checks/s")
    p50, p99, achieved = _open_loop(urls, headers, strangers, args.rate, args.seconds)
    _progress(f"open loop p50 {p50 * 1000:.2f} ms p99 {p99 * 1000:.2f} ms")
    name_p50, name_p95 = _names(url, headers, listed)
    _progress(f"names p95 {name_p95 * 1000:.2f} ms")
    visible = _visibility(url, headers, listed)
    n = args.entries
    return [
        ("entries in the index", f"{loaded['entries']:,}"),
        ("server start-up (generate + bulk load + app)", f"{loaded['startup_seconds']:.0f} s"),
        ("exact: checks/s, batches of 1,000 (2 client threads)", f"{throughput:,.0f}"),
        (f"single check at {args.rate} req/s open loop: p50 / p99",
         f"{p50 * 1000:.2f} ms / {p99 * 1000:.2f} ms (achieved {achieved:.0f} req/s)"),
        ("name screening, one name a request: p50 / p95",
         f"{name_p50 * 1000:.2f} ms / {name_p95 * 1000:.2f} ms"),
        ("listing → visible in screening: max of 3 / deletion → gone: max of 3",
         f"{visible[0]:.2f} s / {visible[1]:.2f} s"),
        ("exact index memory per entry", f"{loaded['exact_bytes'] / n:.1f} B"),
        ("name index memory per entry", f"{loaded['name_bytes'] / n:.1f} B"),
        ("server RSS after loading", f"{loaded['rss'] / 2**30:.2f} GiB"),
    ]


def _progress(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def _batch(strangers: list[str], listed: list[str], seed: int, size: int = 1000) -> bytes:
    """``size`` people, 1% of them listed."""
    rnd = random.Random(seed)
    numbers = rnd.sample(strangers, size - size // 100) + rnd.sample(listed, size // 100)
    rnd.shuffle(numbers)
    people = [{"ref": f"P{i}", "id_number": n} for i, n in enumerate(numbers)]
    return json.dumps({"people": people}).encode()


def _throughput(urls: list[str], headers: dict[str, str], strangers: list[str],
                listed: list[str], seconds: float) -> float:
    bodies = [_batch(strangers, listed, s) for s in range(20)]
    clients = 2 * len(urls)  # two keep the server busy while one reads the other's answer
    done = [0] * clients
    stop = time.monotonic() + seconds

    def client(k: int) -> None:
        with httpx.Client(base_url=urls[k % len(urls)], headers=headers, timeout=60) as http:
            i = k
            while time.monotonic() < stop:
                resp = http.post(SCREEN, content=bodies[i % len(bodies)])
                assert resp.status_code == 200, resp.text
                done[k] += 1000
                i += 2

    start = time.monotonic()
    threads = [threading.Thread(target=client, args=(k,)) for k in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return sum(done) / (time.monotonic() - start)


def _open_loop(urls: list[str], headers: dict[str, str], strangers: list[str], rate: int,
               seconds: float) -> tuple[float, float, float]:
    """Single checks at a fixed rate (open loop, see bench.loadgen)."""
    ports = [urlsplit(u).port or 80 for u in urls]
    count = int(rate * seconds)
    requests = [loadgen.encode_post(SCREEN, "127.0.0.1", headers, json.dumps(
        {"people": [{"ref": "1", "id_number": n}]}).encode()) for n in strangers[:count]]
    result = loadgen.open_loop("127.0.0.1", ports, requests, rate)
    assert result.errors == 0, result.statuses
    return (percentile(result.latencies, 50), percentile(result.latencies, 99),
            result.achieved_rate)


def _names(url: str, headers: dict[str, str],
           listed: list[tuple[int, int, str, str]]) -> tuple[float, float]:
    maker = NameMaker(99)
    queries = maker.names(300) + [name for _, _, _, name in listed[:100]]
    random.Random(1).shuffle(queries)
    times: list[float] = []
    with httpx.Client(base_url=url, headers=headers, timeout=30) as http:
        for i, name in enumerate(queries):
            body = json.dumps({"people": [{"ref": str(i), "name": name}]}).encode()
            t0 = time.perf_counter()
            resp = http.post(SCREEN, content=body)
            times.append(time.perf_counter() - t0)
            assert resp.status_code == 200, resp.text
    return percentile(times, 50), percentile(times, 95)


def _visibility(url: str, headers: dict[str, str],
                listed: list[tuple[int, int, str, str]]) -> tuple[float, float]:
    """List debtors anew under a restriction of their own (committed by this process, as any
    writer's), and time until the new entry appears in their hits, then until it is gone."""
    adds: list[float] = []
    deletes: list[float] = []
    with httpx.Client(base_url=url, headers=headers, timeout=30) as http:
        for party_id, case_id, number, _ in listed[-3:]:
            body = json.dumps({"people": [{"ref": "v", "id_number": number}]}).encode()

            def hits(body: bytes = body) -> int:
                resp = http.post(SCREEN, content=body)
                return len(resp.json()["results"][0]["hits"])

            before = hits()
            relist(party_id, case_id, True)
            t0 = time.perf_counter()
            while hits() == before:
                time.sleep(0.01)
            adds.append(time.perf_counter() - t0)
            relist(party_id, case_id, False)
            t0 = time.perf_counter()
            while hits() != before:
                time.sleep(0.01)
            deletes.append(time.perf_counter() - t0)
    return max(adds), max(deletes)


if __name__ == "__main__":
    main()
