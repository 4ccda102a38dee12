"""Units as separate processes, supervised, stopped cleanly; and the two commands."""

from __future__ import annotations

import logging
import os
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from tests.linkage.simulator import (
    control,
    free_port,
    resident_id,
    subject_with_empty_account,
    task,
    unit_config,
)
from tests.linkage.simulator.fake_platform import FakePlatform
from zhixing.cli import app
from zhixing.linkage import wire
from zhixing.linkage.simulator import Ledger, SimulatorConfig, SimulatorOptions, run_all
from zhixing.linkage.simulator.unit import profile_of

ROOT = Path(__file__).resolve().parents[3]
PULL = unit_config("bank-pull")
PUSH = unit_config("dept-push", mode="push", push_url=f"http://127.0.0.1:{free_port()}/push",
                   unit_type="department", query_kinds=["vehicles"], control_kinds=["seal"])


@pytest.fixture
def platform() -> Iterator[FakePlatform]:
    with FakePlatform([PULL, PUSH]) as fake:
        yield fake


def write_config(platform: FakePlatform, path: Path) -> Path:
    config = SimulatorConfig(base_url=platform.base_url, units=[PULL, PUSH])
    path.write_text(config.model_dump_json(), encoding="utf-8")
    return path


def push_when_listening(platform: FakePlatform, item: wire.Task) -> bool:
    try:
        return platform.push(PUSH.code, item)[0] == 202
    except httpx.TransportError:
        return False


@pytest.mark.slow
@pytest.mark.parametrize("processes", [None, 1], ids=["process-per-unit", "one-process"])
def test_run_all_runs_the_units_in_supervised_processes(platform: FakePlatform, tmp_path: Path,
                                                        processes: int | None) -> None:
    stop = threading.Event()
    options = SimulatorOptions(poll_interval=0.05, duplicate_rate=0.5, seed=1)
    supervisor = threading.Thread(target=run_all, args=(SimulatorConfig(
        base_url=platform.base_url, units=[PULL, PUSH]), tmp_path, options),
        kwargs={"stop": stop, "processes": processes})
    supervisor.start()
    try:
        pulled = task("deposits", resident_id())
        platform.add(PULL.code, pulled)
        pushed = task("vehicles", resident_id())
        platform.wait_for(lambda: push_when_listening(platform, pushed), timeout=60)
        platform.wait_for(lambda: pulled.task_id in platform.state(PULL.code).results
                          and pushed.task_id in platform.state(PUSH.code).results, timeout=60)
        # Money for a freeze, credited from this (another) process while the unit runs.
        id_number, account = subject_with_empty_account(profile_of(PULL))
        order = control("freeze", id_number, account, amount_fen=1_000)
        platform.add(PULL.code, order)
        platform.wait_for(lambda: order.task_id in platform.state(PULL.code).results,
                          timeout=30)
        with Ledger.open(tmp_path, PULL.code) as ledger:
            ledger.credit(account_number=account, amount_fen=600)
        platform.wait_for(lambda: bool(platform.state(PULL.code).events), timeout=30)
    finally:
        stop.set()
        supervisor.join(30)
    assert not supervisor.is_alive()
    assert sorted(p.name for p in tmp_path.glob("*.sqlite3")) == [
        "bank-pull.sqlite3", "dept-push.sqlite3"]
    with Ledger.open(tmp_path, PULL.code) as ledger:
        assert [o.times_applied for o in ledger.applied_orders()] == [1]
        assert ledger.events()[0].delivered


@pytest.mark.slow
def test_the_command_stops_cleanly_on_sigterm(platform: FakePlatform, tmp_path: Path) -> None:
    config = write_config(platform, tmp_path / "units.json")
    log = (tmp_path / "simulator.log").open("wb")
    process = subprocess.Popen(
        [sys.executable, "-m", "zhixing.cli", "simulate-units", "--config", str(config),
         "--ledger-dir", str(tmp_path / "ledgers"), "--only", PULL.code,
         "--poll-interval", "0.05"], cwd=ROOT, stdout=log, stderr=subprocess.STDOUT,
        env={**os.environ, "PYTHONUNBUFFERED": "1"})
    try:
        query = task("deposits", resident_id())
        platform.add(PULL.code, query)
        platform.wait_for(lambda: query.task_id in platform.state(PULL.code).results,
                          timeout=60)
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=30) == 0
    finally:
        if process.poll() is None:
            process.kill()
        log.close()
    output = (tmp_path / "simulator.log").read_text(encoding="utf-8")
    assert "all units stopped" in output
    assert not (tmp_path / "ledgers" / f"{PUSH.code}.sqlite3").exists()  # --only


def test_the_command_refuses_an_unknown_unit(platform: FakePlatform, tmp_path: Path) -> None:
    config = write_config(platform, tmp_path / "units.json")
    result = CliRunner().invoke(app, ["simulate-units", "--config", str(config),
                                      "--ledger-dir", str(tmp_path), "--only", "bank-nope"])
    assert result.exit_code == 2 and "bank-nope" in result.output


def test_the_credit_command(tmp_path: Path) -> None:
    id_number, account = subject_with_empty_account(profile_of(PULL))
    Ledger.open(tmp_path, PULL.code, profile_of(PULL)).close()
    runner = CliRunner()
    by_holder = runner.invoke(app, ["simulate-credit", "--ledger-dir", str(tmp_path), "--unit",
                                    PULL.code, "--id-number", id_number, "--amount-fen", "500"])
    assert by_holder.exit_code == 0, by_holder.output
    assert f"500 fen into {account}" in by_holder.output
    by_account = runner.invoke(app, ["simulate-credit", "--ledger-dir", str(tmp_path),
                                     "--unit", PULL.code, "--account", account,
                                     "--amount-fen", "20"])
    assert by_account.exit_code == 0, by_account.output
    with Ledger.open(tmp_path, PULL.code) as ledger:
        assert ledger.totals()[account].balance_fen == 520
    for args in (["--amount-fen", "5"],
                 ["--account", "6200000000000000000", "--amount-fen", "5"],
                 ["--account", account, "--amount-fen", "0"]):
        refused = runner.invoke(app, ["simulate-credit", "--ledger-dir", str(tmp_path),
                                      "--unit", PULL.code, *args])
        assert refused.exit_code == 2


@pytest.mark.slow
def test_a_unit_that_dies_is_restarted(platform: FakePlatform, tmp_path: Path,
                                       caplog: pytest.LogCaptureFixture) -> None:
    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen()
    port = taken.getsockname()[1]
    blocked = PUSH.model_copy(update={"push_url": f"http://127.0.0.1:{port}/push"})
    stop = threading.Event()
    supervisor = threading.Thread(target=run_all, args=(SimulatorConfig(
        base_url=platform.base_url, units=[blocked]), tmp_path), kwargs={"stop": stop})
    caplog.set_level(logging.INFO, logger="zhixing.linkage.simulator.runner")
    supervisor.start()
    try:  # its port is taken: the unit dies at start-up, is restarted, dies again ...
        platform.wait_for(lambda: sum("exited" in r.getMessage() for r in caplog.records) >= 2,
                          timeout=60)
    finally:
        stop.set()
        supervisor.join(30)
        taken.close()
    assert not supervisor.is_alive()


@pytest.mark.slow
def test_a_unit_that_dies_restarts_the_units_sharing_its_process(
        platform: FakePlatform, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen()
    port = taken.getsockname()[1]
    blocked = PUSH.model_copy(update={"push_url": f"http://127.0.0.1:{port}/push"})
    stop = threading.Event()
    supervisor = threading.Thread(target=run_all, args=(SimulatorConfig(
        base_url=platform.base_url, units=[PULL, blocked]), tmp_path),
        kwargs={"stop": stop, "processes": 1})
    caplog.set_level(logging.INFO, logger="zhixing.linkage.simulator.runner")
    supervisor.start()
    try:  # the push unit cannot bind: the shared process exits and is started again
        platform.wait_for(lambda: any(
            "exited" in r.getMessage() and f"{PULL.code}+{PUSH.code}" in r.getMessage()
            for r in caplog.records), timeout=60)
    finally:
        stop.set()
        supervisor.join(30)
        taken.close()
    assert not supervisor.is_alive()


def test_run_all_refuses_zero_processes(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="processes"):
        run_all(SimulatorConfig(base_url="http://127.0.0.1:9", units=[PULL]), tmp_path,
                processes=0)
