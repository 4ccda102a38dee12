"""Load with a real load generator (wrk, Debian's package) on loopback: the partners' screening
API, the public list search and the console's busiest API reads, each for ``--seconds``
against one ``zhixing serve`` (``--workers N`` API processes) on a scratch PostgreSQL database
holding ``--entries`` listed debtors. Reports throughput, p50 / p99 and the error rate (any
non-2xx answer or socket error), and the server's memory (RSS of every API process) sampled
through the whole run, which must stay flat.

    sudo apt-get install wrk
    .venv/bin/python -m bench.load --seconds 60 --entries 2000
    .venv/bin/python -m bench.load --seconds 600 --entries 2000     # the 10-minute run

wrk is closed-loop (each connection sends its next request when the answer comes), so the
throughput is what the server sustains at that concurrency; ``--connections`` sets it.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import httpx

from bench.scratch import scratch_database

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

SCREEN_LUA = """
local ids = {%(ids)s}
local n = 0
request = function()
  n = n + 1
  local id = ids[(n %% #ids) + 1]
  local body = '{"activities":["flight"],"people":[{"ref":"pax","id_number":"' .. id .. '"}]}'
  return wrk.format("POST", "/api/v1/partner/screen",
    {["Authorization"] = "%(auth)s", ["Content-Type"] = "application/json"}, body)
end
"""
GET_LUA = """
local paths = {%(paths)s}
local n = 0
request = function()
  n = n + 1
  local headers = {%(headers)s}
  -- Many members of the public, not one: the public search is rate-limited per client, and
  -- the server trusts X-Forwarded-For from the loopback proxy (as behind nginx).
  headers["X-Forwarded-For"] = "10." .. (n %% 250) .. "." .. (math.floor(n / 250) %% 250) .. ".7"
  return wrk.format("GET", paths[(n %% #paths) + 1], headers)
end
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=int, default=60, help="per workload")
    parser.add_argument("--entries", type=int, default=2000, help="listed debtors")
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--workers", type=int, default=1, help="API processes")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is not installed: sudo apt-get install wrk")
    db, work = scratch_database("bench-load")
    from tests.support.server import free_port

    from bench.credit import prepare

    partner_key, listed = prepare(args.entries)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = {**os.environ, "ZHIXING_EMBEDDED_WORKER": "false", "ZHIXING_LOG_LEVEL": "WARNING"}
    with (work / "server.log").open("wb") as log:
        server = subprocess.Popen(
            [sys.executable, "-m", "zhixing.cli", "serve", "--no-migrate", "--port", str(port),
             "--workers", str(args.workers)], cwd=ROOT, env=env, stdout=log, stderr=log)
    try:
        _wait_ready(base)
        officer = httpx.post(f"{base}/api/v1/auth/tokens", json={
            "username": "qingxiu.officer", "password": "zhixing-demo"}).json()["token"]
        # Warm up: the first screening loads the process's index, the first search its plan.
        for _ in range(args.workers * 4):
            httpx.post(f"{base}/api/v1/partner/screen", timeout=120, headers={
                "Authorization": f"Bearer {partner_key}"}, json={
                "activities": ["flight"], "people": [{"ref": "w", "id_number": listed[0][2]}]})
        ids = ", ".join(f'"{number}"' for _, _, number, _ in listed[:500])
        names = [name for _, _, _, name in listed[:200]]
        workloads = {
            "screening, 1 person by ID (partner API)": SCREEN_LUA % {
                "ids": ids, "auth": f"Bearer {partner_key}"},
            "public search by name": GET_LUA % {
                "paths": ", ".join(f'"/api/v1/public/dishonest?name={_q(n)}"' for n in names),
                "headers": ""},
            "console: case list and a case": GET_LUA % {
                "paths": ", ".join(['"/api/v1/cases?limit=20"'] + [
                    f'"/api/v1/cases/{case_id}"' for _, case_id, _, _ in listed[:100:20]]),
                "headers": f'["Authorization"] = "Bearer {officer}"'},
        }
        memory = Memory(server.pid)
        memory.start()
        rows: list[tuple[str, dict[str, Any]]] = []
        for name, script in workloads.items():
            path = work / f"{len(rows)}.lua"
            path.write_text(script, encoding="utf-8")
            rows.append((name, _wrk(base, path, args)))
            path.with_suffix(".out").write_text(rows[-1][1]["raw"], encoding="utf-8")
        memory.stop()
    finally:
        server.terminate()
        try:
            server.wait(20)
        except subprocess.TimeoutExpired:
            server.kill()
        from zhixing.core.db import reset_engine

        reset_engine()
        db.destroy()
    print(f"\n| wrk, {args.connections} connections, {args.seconds} s each, {args.workers} API "
          f"process(es), PostgreSQL, {os.cpu_count()} cores | requests/s | p50 | p99 | errors |"
          "\n|---|---|---|---|---|")
    for name, r in rows:
        print(f"| {name} | {r['rps']:,.0f} | {r['p50']} | {r['p99']} | "
              f"{r['errors']} of {r['requests']:,} ({r['error_rate']:.2%}) |")
    print(f"\nwrk's own output: {work}/*.out")
    print(f"server RSS (MB), sampled every 5 s over {memory.samples()} samples: "
          f"first {memory.first():.0f}, last {memory.last():.0f}, max {memory.peak():.0f}")


def _q(text: str) -> str:
    from urllib.parse import quote

    return quote(text)


def _wait_ready(base: str) -> None:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{base}/readyz").status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise SystemExit("the server did not start")


def _wrk(base: str, script: Path, args: argparse.Namespace) -> dict[str, Any]:
    out = subprocess.run(
        ["wrk", "-t", "2", "-c", str(args.connections), "-d", f"{args.seconds}s", "--latency",
         "-s", str(script), base], capture_output=True, text=True, check=True).stdout
    requests = int(re.search(r"(\d+) requests in", out).group(1))  # type: ignore[union-attr]
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    socket = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)",
                       out)
    errors = (int(non_2xx.group(1)) if non_2xx else 0) + (
        sum(int(g) for g in socket.groups()) if socket else 0)
    latency = dict(re.findall(r"^\s+(50|99)%\s+(\S+)\s*$", out, re.M))
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    return {"rps": rps, "p50": latency.get("50", "?"), "p99": latency.get("99", "?"),
            "requests": requests, "errors": errors,
            "error_rate": errors / requests if requests else 0.0, "raw": out}


class Memory:
    """RSS of the server and its children (uvicorn's workers), every 5 s, in the background."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.values: list[float] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        while not self._stop.is_set():
            self.values.append(_tree_rss_mb(self.pid))
            self._stop.wait(5)

    def samples(self) -> int:
        return len(self.values)

    def first(self) -> float:
        return self.values[0] if self.values else 0.0

    def last(self) -> float:
        return self.values[-1] if self.values else 0.0

    def peak(self) -> float:
        return max(self.values, default=0.0)


def _tree_rss_mb(pid: int) -> float:
    total = 0
    pids = [pid]
    children = Path(f"/proc/{pid}/task/{pid}/children")
    if children.exists():
        pids += [int(c) for c in children.read_text().split()]
    for p in pids:
        status = Path(f"/proc/{p}/status")
        if status.exists():
            match = re.search(r"VmRSS:\s+(\d+) kB", status.read_text())
            total += int(match.group(1)) if match else 0
    return total / 1024


if __name__ == "__main__":
    main()
