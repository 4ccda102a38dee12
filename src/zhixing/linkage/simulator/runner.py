"""Run the configured units in supervised processes, and credit money to a unit's account.

By default each unit runs in a process of its own (``multiprocessing``, "spawn" context), as
separate banks and registries would: one unit's crash, hang or slow disk does not stall the
others, and the platform sees independent clients. On a small machine 45 interpreters take a
while to start, so ``processes`` can pack the units into fewer processes, one thread per unit
(each still with its own HTTP client, ledger file and push server); a unit that dies then takes
its process, and the units sharing it, down and up again with it.

The supervisor restarts a process that dies (waiting 1 s, doubling to 30 s) and stops them all
on SIGTERM or SIGINT: it sends each process SIGTERM, and every unit finishes the step it is in
(a ledger transaction is never cut in half) and exits. Even a unit killed outright loses
nothing: SQLite rolls back the transaction it was in.

Child processes import only this package, the SDK and their dependencies (pydantic, httpx,
python-stdnum): nothing of the platform's server.
"""

from __future__ import annotations

import logging
import multiprocessing
import multiprocessing.process
import signal
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Any

from zhixing.linkage.simulator.config import SimulatorConfig, UnitConfig, load_config
from zhixing.linkage.simulator.faults import SimulatorOptions
from zhixing.linkage.simulator.ledger import CreditOutcome, Ledger
from zhixing.linkage.simulator.unit import UnitSimulator, profile_of

log = logging.getLogger(__name__)

STOP_TIMEOUT = 15.0
"""Seconds a unit has to finish its step after SIGTERM before it is killed."""
MAX_RESTART_DELAY = 30.0
LOG_FORMAT = "%(asctime)s %(processName)s %(levelname)s %(name)s: %(message)s"


class _Flag:
    """Set by a signal handler. Deliberately not an Event: a handler runs in the main thread
    between two bytecodes, possibly while that thread holds the Event's own lock (a
    ``threading.Event``) or is the sleeper its ``set`` waits to wake (a ``multiprocessing``
    event), and either deadlocks. Setting an attribute cannot."""

    def __init__(self) -> None:
        self.value = False

    def set(self) -> None:
        self.value = True

    def is_set(self) -> bool:
        return self.value


class _UnitStop:
    """When a unit stops: on its SIGTERM (how the supervisor asks), or when the supervisor
    has died (an orphaned unit would otherwise run forever). Nothing is shared between the
    processes but signals: a lock shared with a supervisor killed while holding it would
    leave the unit stuck for good."""

    def __init__(self, signalled: _Flag, died: _Flag | None = None) -> None:
        self._signalled = signalled
        self._died = died
        self._parent = multiprocessing.parent_process()

    def is_set(self) -> bool:
        orphaned = self._parent is not None and not self._parent.is_alive()
        died = self._died is not None and self._died.is_set()
        return self._signalled.is_set() or died or orphaned

    def wait(self, timeout: float | None = None) -> bool:
        deadline = None if timeout is None else time.monotonic() + timeout
        while not self.is_set():
            left = 0.1 if deadline is None else min(0.1, deadline - time.monotonic())
            if left <= 0:
                return False
            time.sleep(left)
        return True


def units_process_main(units_json: list[str], base_url: str, ledger_dir: str,
                       options: SimulatorOptions, log_level: int) -> None:
    """Entry point of a process running one or more units (top level, so "spawn" can import
    it). Exits non-zero when a unit died, so that the supervisor starts the process again."""
    # Ctrl-C reaches the whole process group: the supervisor alone decides when to stop, and
    # tells each process with SIGTERM.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signalled = _Flag()
    signal.signal(signal.SIGTERM, lambda _sig, _frame: signalled.set())
    logging.basicConfig(level=log_level, format=LOG_FORMAT)
    logging.getLogger("httpx").setLevel(logging.WARNING)
    units = [UnitConfig.model_validate_json(u) for u in units_json]
    if len(units) == 1:  # no thread needed: an exception simply ends the process
        _run_unit(units[0], base_url, ledger_dir, options, _UnitStop(signalled))
        return
    died = _Flag()
    stop = _UnitStop(signalled, died)

    def run(unit: UnitConfig) -> None:
        try:
            _run_unit(unit, base_url, ledger_dir, options, stop)
        except BaseException:
            log.exception("unit %s died", unit.code)
            died.set()  # the others stop too: the supervisor restarts the whole process

    threads = [threading.Thread(target=run, args=(u,), name=f"unit-{u.code}", daemon=True)
               for u in units]
    for thread in threads:
        thread.start()
    for thread in threads:
        while thread.is_alive():
            thread.join(0.5)  # timed, so that the SIGTERM handler runs at once
    if died.is_set():
        raise SystemExit(1)


def _run_unit(unit: UnitConfig, base_url: str, ledger_dir: str, options: SimulatorOptions,
              stop: _UnitStop) -> None:
    with Ledger.open(ledger_dir, unit.code, profile_of(unit)) as ledger:
        UnitSimulator(unit, base_url, ledger, options).run(stop)


@dataclass
class _Child:
    units: list[UnitConfig]
    process: multiprocessing.process.BaseProcess
    restarts: int = 0
    down_since: float | None = None


def run_all(config: SimulatorConfig | Path | str, ledger_dir: Path | str,
            options: SimulatorOptions | None = None, only: Sequence[str] | None = None, *,
            stop: threading.Event | None = None, log_level: int = logging.INFO,
            processes: int | None = None) -> None:
    """Run the units of ``config`` (all, or those in ``only``) until SIGTERM/SIGINT (or
    ``stop``, for callers that run this in a thread): each in its own process, or spread over
    ``processes`` processes. Returns once every process has exited."""
    if not isinstance(config, SimulatorConfig):
        config = load_config(config)
    units = config.select(list(only) if only else None)
    if not units:
        raise ValueError("the configuration has no units")
    if processes is not None and processes < 1:
        raise ValueError("processes must be at least 1")
    count = len(units) if processes is None else min(processes, len(units))
    groups = [units[i::count] for i in range(count)]
    options = options or SimulatorOptions()
    Path(ledger_dir).mkdir(parents=True, exist_ok=True)
    context = multiprocessing.get_context("spawn")

    def spawn(group: list[UnitConfig]) -> multiprocessing.process.BaseProcess:
        name = f"unit-{group[0].code}" if len(group) == 1 else f"units-{group[0].code}+"
        process = context.Process(
            target=units_process_main, name=name,
            args=([u.model_dump_json() for u in group], config.base_url, str(ledger_dir),
                  options, log_level))
        process.start()
        return process

    signalled = _Flag()
    previous = _install_signals(signalled)
    children: list[_Child] = []
    try:
        for group in groups:
            children.append(_Child(group, spawn(group)))
        log.info("simulating %d unit(s) in %d process(es): %s", len(units), len(children),
                 ", ".join(u.code for u in units))
        while not (signalled.is_set() or (stop is not None and stop.is_set())):
            for child in children:
                _supervise(child, spawn)
            time.sleep(0.2)
    finally:
        _stop_all(children)
        _restore_signals(previous)
    log.info("all units stopped")


_Spawn = Callable[[list[UnitConfig]], multiprocessing.process.BaseProcess]


def _supervise(child: _Child, spawn: _Spawn) -> None:
    if child.process.is_alive():
        return
    now = time.monotonic()
    if child.down_since is None:
        child.down_since = now
        log.error("unit %s exited (code %s); restarting", _codes(child),
                  child.process.exitcode)
    if now - child.down_since >= min(MAX_RESTART_DELAY, 2.0 ** child.restarts):
        child.process.close()
        child.process = spawn(child.units)
        child.restarts += 1
        child.down_since = None


def _stop_all(children: list[_Child]) -> None:
    for child in children:
        if child.process.is_alive():
            child.process.terminate()  # SIGTERM: the unit finishes its step and exits
    deadline = time.monotonic() + STOP_TIMEOUT
    for child in children:
        child.process.join(max(0.0, deadline - time.monotonic()))
    for child in children:
        if child.process.is_alive():
            log.warning("unit %s did not stop in time; killing it", _codes(child))
            child.process.kill()
            child.process.join()


def _codes(child: _Child) -> str:
    return "+".join(u.code for u in child.units)


_Handlers = dict[int, Any]


def _install_signals(flag: _Flag) -> _Handlers:
    if threading.current_thread() is not threading.main_thread():
        return {}  # only the main thread may set handlers; the caller's ``stop`` applies

    def _stop(_sig: int, _frame: FrameType | None) -> None:
        flag.set()

    previous: _Handlers = {}
    for signum in (signal.SIGTERM, signal.SIGINT):
        previous[signum] = signal.signal(signum, _stop)
    return previous


def _restore_signals(previous: _Handlers) -> None:
    for signum, handler in previous.items():
        signal.signal(signum, handler)


def credit(ledger_dir: Path | str, unit_code: str, *, amount_fen: int,
           account_number: str | None = None, id_number: str | None = None) -> CreditOutcome:
    """Money arrives at a unit (a bank): in an account, or in one of a subject's accounts.

    Works while the unit runs (the ledger is shared through SQLite): standing freezes catch
    the money at once and the running unit posts the ``funds_arrived`` events on its next
    round. The ledger must exist (the unit has run at least once).
    """
    with Ledger.open(ledger_dir, unit_code) as ledger:
        return ledger.credit(account_number=account_number, id_number=id_number,
                             amount_fen=amount_fen)
