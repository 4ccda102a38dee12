"""The platform as real processes on the test database: API servers, job workers and the unit
simulator, each killable and restartable, and an HTTP client that spreads requests over the
servers (each request to the next one), so a story proves it works whichever process answers.
"""

from __future__ import annotations

import itertools
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import httpx
from sqlalchemy import select

from tests.conftest import PASSWORD
from tests.support.database import ScratchDatabase
from tests.support.server import ROOT, free_port
from zhixing.core.db import transaction
from zhixing.linkage import onboarding

T = TypeVar("T")


class Proc:
    """One platform process that can be killed and started again on the same port."""

    def __init__(self, args: list[str], env: dict[str, str], log: Path) -> None:
        self.args, self.env, self.log = args, env, log
        self.proc: subprocess.Popen[bytes] | None = None
        self.kills = 0

    def start(self) -> None:
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "zhixing.cli", *self.args], cwd=ROOT, env=self.env,
                stdout=subprocess.DEVNULL, stderr=out)

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()
        self.kills += 1

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()

    def log_tail(self, chars: int = 4000) -> str:
        return self.log.read_text(errors="replace")[-chars:] if self.log.exists() else ""


def wait_for(check: Callable[[], T | None], what: str, timeout: float = 60.0) -> T:
    deadline = time.monotonic() + timeout
    while True:
        try:
            found = check()
        except httpx.HTTPError:
            found = None
        if found:
            return found
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)


class RoundRobin(httpx.BaseTransport):
    """Sends each request to the next server (by port): a load balancer without stickiness.
    A server that refuses the connection (killed, restarting) is skipped, as nginx's
    ``proxy_next_upstream error`` does: the request never reached it, so trying the next is
    safe."""

    def __init__(self, ports: list[int]) -> None:
        self._count = len(ports)
        self._ports = itertools.cycle(ports)
        self._inner = httpx.HTTPTransport()

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        for attempt in range(self._count):
            request.url = request.url.copy_with(port=next(self._ports))
            try:
                return self._inner.handle_request(request)
            except httpx.ConnectError:
                if attempt == self._count - 1:
                    raise
        raise AssertionError("unreachable")

    def close(self) -> None:
        self._inner.close()


@dataclass
class Platform:
    ports: list[int]
    servers: list[Proc]
    workers: list[Proc]
    simulator: Proc
    ledgers: Path
    http: httpx.Client

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.ports[0]}"

    @property
    def server(self) -> Proc:
        return self.servers[0]

    @property
    def worker(self) -> Proc:
        return self.workers[0]

    def headers(self, user: str) -> dict[str, str]:
        resp = self.http.post("/api/v1/auth/tokens", json={"username": user,
                                                           "password": PASSWORD})
        resp.raise_for_status()
        return {"Authorization": f"Bearer {resp.json()['token']}"}

    def restart_server(self, index: int = 0) -> None:
        self.servers[index].start()
        port = self.ports[index]
        wait_for(lambda: httpx.get(f"http://127.0.0.1:{port}/readyz").status_code == 200,
                 f"the server on port {port}", 60)


@contextmanager
def running_platform(test_db: ScratchDatabase, *, servers: int = 1, workers: int = 1,
                     env: dict[str, str] | None = None) -> Iterator[Platform]:
    """``servers`` API processes (ports of their own), ``workers`` job workers and the 45
    simulated units (5 processes), on the test database; stopped on exit."""
    ports = [free_port() for _ in range(servers)]
    base = f"http://127.0.0.1:{ports[0]}"
    work = Path(tempfile.mkdtemp(prefix="zhixing-e2e-"))
    with transaction() as session:
        config = onboarding.simulated_units(session, base, push_port_start=free_port())
    # Push ports must be free: give each push unit one the OS just handed out.
    for unit in config["units"]:
        if unit["push_url"]:
            unit["push_url"] = f"http://127.0.0.1:{free_port()}/zhixing/push"
    with transaction() as session:
        from zhixing.linkage.models import LinkageUnit

        for unit in config["units"]:
            row = session.scalars(select(LinkageUnit).where(
                LinkageUnit.code == unit["code"])).one()
            row.push_url = unit["push_url"]
    onboarding.write_secret_file(work / "units.json", config)
    proc_env = {**os.environ, "ZHIXING_DATABASE_URL": test_db.url, "ZHIXING_ENV": "test",
                "ZHIXING_LOG_JSON": "true", "ZHIXING_EMBEDDED_WORKER": "false", **(env or {})}
    api = [Proc(["serve", "--no-migrate", "--port", str(port)], proc_env,
                work / f"server-{i}.log") for i, port in enumerate(ports)]
    jobs = [Proc(["worker"], proc_env, work / f"worker-{i}.log") for i in range(workers)]
    simulator = Proc(["simulate-units", "--config", str(work / "units.json"), "--ledger-dir",
                      str(work / "ledgers"), "--long-poll", "20", "--seed", "7",
                      "--processes", "5"], proc_env, work / "simulator.log")
    transport = RoundRobin(ports)
    http = httpx.Client(base_url=base, timeout=30, transport=transport)
    p = Platform(ports, api, jobs, simulator, work / "ledgers", http)
    try:
        for index in range(servers):
            p.restart_server(index)
        for worker in jobs:
            worker.start()
        simulator.start()
        # Wait until every unit is up before the clock runs (5 processes of 9 units each:
        # 45 interpreters once took more than 3 minutes to start on a loaded 2-core CI machine).
        try:
            wait_for(lambda: simulator.log.read_text(errors="replace").count(" mode against ")
                     >= len(config["units"]), "every simulated unit to start", 120)
        except AssertionError as exc:
            raise AssertionError(f"{exc}; simulator log ends:\n{simulator.log_tail()}") from None
        yield p
    finally:
        for proc in (simulator, *jobs, *api):
            proc.stop()
        http.close()
