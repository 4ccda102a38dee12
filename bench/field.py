"""Positions and the live map: 2,000 field devices reporting every 10 s and 50 consoles watching
the map over SSE, against one server process.

    .venv/bin/python -m bench.field --backend postgresql [--devices 2000] [--consoles 50]
        [--seconds 60] [--batch device|vehicle] [--probe-rate 20]

Figures (printed as a Markdown table for docs/benchmarks.md):
- live delay: from the moment the server accepted a position (its ``received_at``) to the
  moment each console read it off its SSE stream: p50 / p95 / p99 over every (console, change);
- position writes: achieved rate, latency p50 / p95 (open loop, from the scheduled time), errors;
- other pages: ``GET /api/v1/me`` and ``GET /api/v1/cases/{id}`` p50 / p95 at ``--probe-rate``
  per second, first without the position load (consoles connected), then with it.

A device reports its own position (``--batch device``: one report a request, 200 requests/s for
2,000 devices); ``--batch vehicle`` has a vehicle system relay the devices of its team in one
batch of up to 8, as a vehicle-mounted client does. One client process drives everything with
asyncio streams (bench/loadgen.py), so client and server share the machine's two cores.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import IO

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.loadgen import Result, _open_loop, encode_post  # noqa: E402
from bench.stats import percentile  # noqa: E402

os.environ.setdefault("ZHIXING_LOG_JSON", "false")
REPORT_EVERY = 10.0  # seconds between two reports of one device
STEP_DEG = 0.0004  # ~40 m a report: 15 km/h, well under the plausibility limit
VEHICLE_BATCH = 8
BENCH_PASSWORD = "bench-password-1"  # noqa: S105 (scratch database, deleted after the run)


def encode_get(path: str, host: str, headers: dict[str, str]) -> bytes:
    lines = [f"GET {path} HTTP/1.1", f"Host: {host}", *(f"{k}: {v}" for k, v in headers.items())]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


@dataclass
class Device:
    code: str
    court_id: int
    team_id: int | None
    lon: float
    lat: float


@dataclass
class Fixture:
    devices: list[Device]
    tokens: dict[int, str]  # court id -> a bailiff's bearer token
    console_cookie: str
    probe_token: str
    case_id: int


def prepare(total_devices: int) -> Fixture:
    """The demo fleet, topped up with field devices to ``total_devices``; a bailiff per court
    with a token; a duty leader's console session; a case for the probe."""
    from sqlalchemy import insert, select
    from tests.cases.factories import case_payload

    from zhixing.cases import service as cases
    from zhixing.cases.schemas import CaseCreate
    from zhixing.core.actor import SYSTEM
    from zhixing.core.clock import utcnow
    from zhixing.core.db import transaction
    from zhixing.courts import identity
    from zhixing.courts.models import Court, User
    from zhixing.field import resources
    from zhixing.field.models import (
        FieldResource,
        FieldTeam,
        LatestPosition,
        ResourceKind,
        ResourceStatus,
    )

    with transaction() as session:
        resources.seed_field(session)
        reporting = (ResourceKind.FIELD_DEVICE, ResourceKind.VEHICLE_SYSTEM)
        have = session.execute(select(FieldResource.id).where(
            FieldResource.kind.in_(reporting))).all()
        teams = list(session.scalars(select(FieldTeam).order_by(FieldTeam.id)))
        courts = {c.id: c for c in session.scalars(select(Court))}
        extra = total_devices - len(have)
        now = utcnow()
        for i in range(max(0, extra)):
            team = teams[i % len(teams)]
            court = courts[team.court_id]
            res = FieldResource(code=f"B-{court.code}-{i}", kind=ResourceKind.FIELD_DEVICE,
                                court_id=court.id, label=f"压测单兵{i}",
                                status=ResourceStatus.AVAILABLE, team_id=team.id,
                                updated_at=now)
            session.add(res)
        session.flush()
        points = {t.court_id: (courts[t.court_id].lon or 108.3, courts[t.court_id].lat or 22.8)
                  for t in teams}
        missing = session.scalars(select(FieldResource).where(
            FieldResource.kind.in_(reporting),
            FieldResource.id.not_in(select(LatestPosition.resource_id)))).all()
        if missing:
            session.execute(insert(LatestPosition), [
                {"resource_id": r.id, "lon": points[r.court_id][0],
                 "lat": points[r.court_id][1], "at": now, "received_at": now,
                 "accuracy_m": 10.0} for r in missing])
        devices = [Device(code, court_id, team_id, lon, lat)
                   for code, court_id, team_id, lon, lat in session.execute(
                       select(FieldResource.code, FieldResource.court_id, FieldResource.team_id,
                              LatestPosition.lon, LatestPosition.lat)
                       .join(LatestPosition, LatestPosition.resource_id == FieldResource.id)
                       .where(FieldResource.kind.in_(reporting))
                       .order_by(FieldResource.id))][:total_devices]
        tokens: dict[int, str] = {}
        for court in courts.values():
            user = identity.create_user(
                session, SYSTEM, username=f"bench.b.{court.id}", display_name="压测法警",
                court_code=court.code, password=BENCH_PASSWORD, roles=["bailiff"])
            tokens[court.id], _ = identity.issue_api_token(session, user, "bench", SYSTEM)
        leader = session.scalar(select(User).where(User.username == "gx.duty"))
        assert leader is not None
        cookie, _ws = identity.start_web_session(session, leader, "127.0.0.1")
        officer = session.scalar(select(User).where(User.username == "qingxiu.officer"))
        assert officer is not None
        probe_token, _ = identity.issue_api_token(session, officer, "probe", SYSTEM)
        actor = identity.actor_for(session, officer, None)
        case = cases.register(session, actor, CaseCreate.model_validate(case_payload()))
        return Fixture(devices, tokens, cookie, probe_token, case.id)


def position_requests(fx: Fixture, host: str, seconds: float, batch: str,
                      t0: float) -> tuple[list[bytes], float]:
    """Requests in the order they are due, and their rate. Report times advance with the
    schedule, so every report is fresh when it is sent."""
    n = len(fx.devices)
    rounds = max(1, int(seconds / REPORT_EVERY))
    if batch == "vehicle":
        groups: dict[int | None, list[Device]] = {}
        for d in fx.devices:
            groups.setdefault(d.team_id, []).append(d)
        senders = [g[i:i + VEHICLE_BATCH] for g in groups.values()
                   for i in range(0, len(g), VEHICLE_BATCH)]
    else:
        senders = [[d] for d in fx.devices]
    per_round = len(senders)
    rate = per_round / REPORT_EVERY
    out = []
    for r in range(rounds):
        for k, group in enumerate(senders):
            at = t0 + (r * per_round + k) / rate
            stamp = datetime.fromtimestamp(at, UTC).isoformat()
            reports = [{"resource": d.code, "at": stamp,
                        "lon": round(d.lon + STEP_DEG * (r + 1), 6), "lat": d.lat}
                       for d in group]
            body = json.dumps({"reports": reports}).encode()
            token = fx.tokens[group[0].court_id]
            out.append(encode_post("/api/v1/field/positions", host,
                                   {"Authorization": f"Bearer {token}"}, body))
    del n
    return out, rate


@dataclass
class Consoles:
    delays: list[float] = field(default_factory=list)  # seconds
    messages: int = 0
    measuring: bool = False
    since_ms: float = 0.0


async def console(host: str, port: int, cookie: str, sink: Consoles,
                  stop: asyncio.Event) -> None:
    reader, writer = await asyncio.open_connection(host, port)
    writer.write(encode_get("/field/map/stream", f"{host}:{port}",
                            {"Cookie": f"zx_session={cookie}", "Accept": "text/event-stream"}))
    await writer.drain()
    await reader.readuntil(b"\r\n\r\n")
    try:
        while not stop.is_set():
            try:
                line = await asyncio.wait_for(reader.readline(), 1.0)
            except TimeoutError:
                continue
            if not line:
                return
            if not line.startswith(b"data: {\"t\""):
                continue
            now_ms = time.time() * 1000
            data = json.loads(line[6:])
            sink.messages += 1
            if not sink.measuring:
                continue
            for item in data.get("items", ()):
                r = item.get("r")
                if item.get("layer") == "resources" and r and r >= sink.since_ms:
                    sink.delays.append((now_ms - r) / 1000)
    finally:
        writer.close()


def probe_requests(fx: Fixture, host: str, count: int) -> list[bytes]:
    auth = {"Authorization": f"Bearer {fx.probe_token}"}
    paths = ["/api/v1/me", f"/api/v1/cases/{fx.case_id}"]
    return [encode_get(paths[i % 2], host, auth) for i in range(count)]


def say(text: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {text}", file=sys.stderr, flush=True)


def summary(result: Result) -> str:
    if not result.latencies:
        return "—"
    ms = [x * 1000 for x in result.latencies]
    return (f"p50 {percentile(ms, 50):.1f} ms, p95 {percentile(ms, 95):.1f} ms, "
            f"{result.achieved_rate:.0f}/s, errors {result.errors}")


def cpu_seconds(pid: int) -> float:
    """CPU time of the server and of its worker processes (``serve --workers N``)."""
    children = Path(f"/proc/{pid}/task/{pid}/children")
    pids = [pid] + ([int(c) for c in children.read_text().split()] if children.exists() else [])
    total = 0
    for one in pids:
        stat = Path(f"/proc/{one}/stat")
        if stat.exists():
            fields = stat.read_text().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])
    return total / os.sysconf("SC_CLK_TCK")


async def scenario(port: int, fx: Fixture, args: argparse.Namespace,
                   server_pid: int) -> list[tuple[str, str]]:
    host = "127.0.0.1"
    hosthdr = f"{host}:{port}"
    sink = Consoles()
    stop = asyncio.Event()
    viewers = [asyncio.create_task(console(host, port, fx.console_cookie, sink, stop))
               for _ in range(args.consoles)]
    await asyncio.sleep(2.0)
    say(f"{args.consoles} consoles connected; probing without load")
    probe_n = int(args.probe_rate * args.probe_seconds)
    # The probe alone (consoles connected and idle): what the pages cost without positions.
    quiet = await _open_loop(host, [port], probe_requests(fx, hosthdr, probe_n), args.probe_rate,
                             4)
    t0 = time.time() + 3.0
    requests, rate = position_requests(fx, hosthdr, args.seconds, args.batch, t0)
    delay = t0 - time.time()
    if delay > 0:
        await asyncio.sleep(delay)
    say(f"position load: {len(requests)} requests at {rate:.0f}/s")
    sink.since_ms = time.time() * 1000
    sink.measuring = True
    cpu0, wall0 = cpu_seconds(server_pid), time.monotonic()
    writes_task = asyncio.create_task(_open_loop(host, [port], requests, rate,
                                                 args.connections))
    await asyncio.sleep(min(10.0, args.seconds / 4))  # into the steady state
    loaded = await _open_loop(host, [port], probe_requests(fx, hosthdr, probe_n),
                              args.probe_rate, 4)
    writes = await writes_task
    server_cpu = (cpu_seconds(server_pid) - cpu0) / (time.monotonic() - wall0)
    await asyncio.sleep(1.5)  # the last changes reach the consoles
    sink.measuring = False
    stop.set()
    await asyncio.gather(*viewers, return_exceptions=True)
    d = sorted(sink.delays)
    reports = len(fx.devices) * max(1, int(args.seconds / REPORT_EVERY))
    expected = reports * args.consoles
    return [
        ("devices / consoles", f"{len(fx.devices)} / {args.consoles}"),
        ("batching", f"{args.batch} ({rate:.0f} requests/s, "
                     f"{len(fx.devices) / REPORT_EVERY:.0f} reports/s)"),
        ("position writes", summary(writes)),
        ("live delay to consoles",
         f"p50 {percentile(d, 50):.2f} s, p95 {percentile(d, 95):.2f} s, "
         f"p99 {percentile(d, 99):.2f} s" if d else "—"),
        ("changes delivered", f"{len(d):,} of {expected:,} (consoles × reports)"),
        ("SSE messages read", f"{sink.messages:,}"),
        ("server process CPU under load", f"{server_cpu:.2f} cores"),
        ("GET /me + case, no position load", summary(quiet)),
        ("GET /me + case, with position load", summary(loaded)),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--backend", choices=["sqlite", "postgresql"], default="postgresql")
    parser.add_argument("--devices", type=int, default=2000)
    parser.add_argument("--consoles", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--batch", choices=["device", "vehicle"], default="vehicle")
    parser.add_argument("--probe-rate", type=float, default=20.0)
    parser.add_argument("--probe-seconds", type=float, default=20.0)
    # Below the server's connection pool (10 + 10 overflow): see docs/benchmarks.md on why more
    # concurrent requests than pooled connections stall one process.
    parser.add_argument("--connections", type=int, default=12)
    parser.add_argument("--workers", type=int, default=1, help="API processes (serve --workers)")
    args = parser.parse_args()
    os.environ["ZHIXING_TEST_BACKEND"] = args.backend

    from tests.support.database import create_test_database
    from tests.support.server import free_port

    db = create_test_database(Path(tempfile.mkdtemp()), "bench_")
    os.environ["ZHIXING_DATABASE_URL"] = db.url
    from zhixing.core.db import reset_engine, transaction
    from zhixing.core.migrate import upgrade
    from zhixing.core.settings import get_settings
    from zhixing.courts.service import sync_courts
    from zhixing.demo import seed_users

    get_settings.cache_clear()
    try:
        upgrade()
        with transaction() as session:
            sync_courts(session)
            seed_users(session)
        say("preparing the fleet, users and tokens")
        fx = prepare(args.devices)
        say(f"{len(fx.devices)} devices; starting the server")
        port = free_port()
        env = {**os.environ, "ZHIXING_DATABASE_URL": db.url, "ZHIXING_ENV": "test",
               "ZHIXING_EMBEDDED_WORKER": "false", "ZHIXING_LOG_LEVEL": "WARNING",
               "ZHIXING_LOG_JSON": "true"}
        with tempfile.TemporaryFile() as log:
            rows = serve_and_run(env, port, fx, args, log)
    finally:
        reset_engine()
        db.destroy()
    print(f"\n| {args.backend}, {args.batch}, {args.workers} API process(es) | figure |"
          "\n|---|---|")
    for name, value in rows:
        print(f"| {name} | {value} |")


def serve_and_run(env: dict[str, str], port: int, fx: Fixture, args: argparse.Namespace,
                  log: IO[bytes]) -> list[tuple[str, str]]:
    server = subprocess.Popen([sys.executable, "-m", "zhixing.cli", "serve", "--no-migrate",
                               "--port", str(port), "--workers", str(args.workers)],
                              cwd=ROOT, env=env,
                              stdout=subprocess.DEVNULL, stderr=log)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=1):
                    break
            except OSError:
                if time.monotonic() > deadline or server.poll() is not None:
                    log.seek(0)
                    raise RuntimeError(log.read().decode()[-2000:]) from None
                time.sleep(0.2)
        try:
            import uvloop

            rows = uvloop.run(scenario(port, fx, args, server.pid))
        except ImportError:  # pragma: no cover
            rows = asyncio.run(scenario(port, fx, args, server.pid))
    finally:
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()
    return rows


if __name__ == "__main__":
    main()
