"""One simulated unit at work: it speaks the protocol through the SDK, with its own ledger.

Pull mode, in a loop: fetch tasks, store them in the ledger, acknowledge them, answer the ones
that are due, post the answers and events waiting in the outbox. Push mode: the same without
the fetch; a small HTTP server at the unit's ``push_url`` verifies pushes with
:class:`~zhixing.linkage.client.PushReceiver`, stores the tasks and answers the signed 202.

Anything the platform did not take (a transport failure, a rejected item) stays in the outbox
and is sent again later with backoff; only ``accepted`` and ``duplicate`` empty it.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Protocol

import httpx

from zhixing.linkage import wire
from zhixing.linkage.client import LinkageClient, LinkageError, PushReceiver, PushRejected
from zhixing.linkage.simulator.config import UnitConfig
from zhixing.linkage.simulator.faults import Faults, SimulatorOptions
from zhixing.linkage.simulator.ledger import Ledger, UnitProfile

log = logging.getLogger(__name__)

MAX_IDLE_BACKOFF = 30.0
"""Longest pause after the platform could not be reached (it may simply not be up yet)."""

TRANSPORT_ERRORS: tuple[type[Exception], ...] = (LinkageError, httpx.HTTPError, OSError)


class PlatformClient(Protocol):
    """What the unit needs of :class:`LinkageClient` (tests may give a stand-in)."""

    def fetch_tasks(self, limit: int = ..., wait: int = ...) -> wire.TaskBatch: ...
    def ack(self, task_ids: Sequence[str]) -> list[wire.ItemOutcome]: ...
    def post_results(self, results: Sequence[wire.Result]) -> list[wire.ItemOutcome]: ...
    def post_events(self, events: Sequence[wire.Event]) -> list[wire.ItemOutcome]: ...
    def close(self) -> None: ...


class Stopper(Protocol):
    """A ``threading.Event`` or a ``multiprocessing`` event."""

    def is_set(self) -> bool: ...
    def wait(self, timeout: float | None = ...) -> bool: ...


def _utcnow() -> datetime:
    return datetime.now(UTC)


def profile_of(unit: UnitConfig) -> UnitProfile:
    return UnitProfile(code=unit.code, name=unit.name, unit_type=unit.unit_type,
                       online_deduct=unit.online_deduct)


def malformed_copy(result: wire.Result) -> wire.Result:
    """An invalid copy of an answer: ``answered`` without a payload breaks the schema, so the
    platform must reject it (``invalid_result``) and store nothing. Built without validation,
    which is the point."""
    return wire.Result.model_construct(schema_version="1", task_id=result.task_id,
                                       status="answered", reported_at=result.reported_at,
                                       payload=None, refusal=None)


@dataclass(frozen=True)
class PushAnswer:
    """How to answer a push: status, headers and body (``None``: drop the connection)."""

    status: int
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""


class UnitSimulator:
    """A unit: its ledger, its SDK client, its fault dice, and its loop."""

    def __init__(self, unit: UnitConfig, base_url: str, ledger: Ledger,
                 options: SimulatorOptions | None = None, *,
                 client: PlatformClient | None = None, faults: Faults | None = None,
                 clock: Callable[[], datetime] = _utcnow,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self.unit = unit
        self.ledger = ledger
        self.options = options or SimulatorOptions()
        # Each unit rolls its own dice: the same seed gives every unit a different sequence.
        seed = self.options.seed
        self.faults = faults or Faults(self.options, None if seed is None
                                       else random.Random(f"{seed}:{unit.code}"))
        self.base_url = base_url
        self._clock = clock
        self._sleep = sleep
        platform_keys = {unit.platform_key_id: unit.platform_secret_bytes}
        self.client: PlatformClient = client or LinkageClient(
            base_url, unit.key_id, unit.secret_bytes, platform_keys=platform_keys,
            timeout=self.options.request_timeout, max_attempts=self.options.max_attempts,
            clock=clock)
        self.receiver = PushReceiver(unit.key_id, unit.secret_bytes,
                                     platform_keys=platform_keys,
                                     nonce_seen=ledger.nonce_seen, clock=clock)
        self._failures = 0
        self._idle = False

    # -- pull mode --

    def long_polling(self) -> bool:
        o = self.options
        return bool(o.long_poll) and o.latency_ms == 0 and o.timeout_rate == 0

    def _wait(self) -> int:
        """Long poll only when idle and nothing is scheduled for later (no latency, no hang):
        the wait would otherwise hold back answers that fall due meanwhile."""
        return self.options.long_poll if self._idle and self.long_polling() else 0

    def fetch_once(self) -> bool:
        """Fetch, store, acknowledge. True when the platform says more tasks are waiting."""
        batch = self.client.fetch_tasks(self.options.fetch_limit, self._wait())
        self._idle = not batch.tasks
        if not batch.tasks:
            return False
        now = self._clock()
        items = []
        for task in batch.tasks:
            delay = self.faults.latency()
            fault: str | None = None
            if self.faults.hang():
                fault, delay = "hang", delay + self.options.hang_seconds
            elif self.faults.fail():
                fault = "fail"
            items.append((task, now + timedelta(seconds=delay), fault))
        new = self.ledger.store_tasks(items, now)
        if new:
            log.info("%s: stored %d new task(s)", self.unit.code, len(new))
        # Acknowledge only what is stored durably (it is, now), except tasks left hanging.
        ackable = self.ledger.ackable([t.task_id for t in batch.tasks], now)
        if ackable:
            outcomes = self.client.ack(ackable)
            done = [o.id for o in outcomes if o.outcome != "rejected"]
            for outcome in outcomes:
                if outcome.outcome == "rejected":
                    log.warning("%s: ack of %s rejected: %s", self.unit.code, outcome.id,
                                outcome.error)
            self.ledger.mark_acked(done)
        return batch.more

    # -- both modes --

    def process_due(self) -> int:
        """Answer the stored tasks whose time has come (exactly once each: see the ledger)."""
        due = self.ledger.due_tasks(self._clock())
        for stored in due:
            result = self.ledger.answer(stored.task.task_id, self._clock(),
                                        fail=stored.fault == "fail")
            log.info("%s: %s %s -> %s", self.unit.code, stored.task.kind, stored.task.task_id,
                     result.status)
        return len(due)

    def deliver_results(self) -> int:
        """Post the answers in the outbox; the number the platform now has."""
        pending = self.ledger.pending_results(self._clock())
        if not pending:
            return 0
        broken = [p.result for p in pending
                  if p.attempts == 0 and not p.malformed_sent and self.faults.malformed()
                  and self.ledger.claim_malformed(p.result.task_id)]
        if broken:
            self._post_malformed(broken)
        results = [p.result for p in pending]
        try:
            outcomes = self.client.post_results(results)
        except TRANSPORT_ERRORS as exc:
            self.ledger.defer_results([r.task_id for r in results], str(exc), self._clock())
            raise
        self.ledger.record_result_outcomes(outcomes, self._clock())
        taken = {o.id for o in outcomes if o.outcome != "rejected"}
        copies = [r for r in results if r.task_id in taken and self.faults.duplicate()]
        if copies:
            self._post_again("results", lambda: self.client.post_results(copies))
        return sum(o.outcome != "rejected" for o in outcomes)

    def _post_malformed(self, broken: list[wire.Result]) -> None:
        try:
            outcomes = self.client.post_results([malformed_copy(r) for r in broken])
        except TRANSPORT_ERRORS as exc:
            log.info("%s: malformed copies not delivered: %s", self.unit.code, exc)
            return
        for outcome in outcomes:
            if outcome.outcome != "rejected":
                log.error("%s: the platform took an invalid result for %s (%s)",
                          self.unit.code, outcome.id, outcome.outcome)

    def _post_again(self, what: str, post: Callable[[], list[wire.ItemOutcome]]) -> None:
        """The ``duplicate`` fault: send delivered items once more; expect ``duplicate``."""
        try:
            outcomes = post()
        except TRANSPORT_ERRORS as exc:
            log.info("%s: duplicate %s not delivered: %s", self.unit.code, what, exc)
            return
        for outcome in outcomes:
            if outcome.outcome != "duplicate":
                log.warning("%s: a copy of %s was answered %s", self.unit.code, outcome.id,
                            outcome.outcome)

    def deliver_events(self) -> int:
        """Post the ``funds_arrived`` events waiting in the outbox."""
        events = self.ledger.pending_events(self._clock())
        if not events:
            return 0
        try:
            outcomes = self.client.post_events(events)
        except TRANSPORT_ERRORS as exc:
            self.ledger.defer_events([e.event_id for e in events], str(exc), self._clock())
            raise
        self.ledger.record_event_outcomes(outcomes, self._clock())
        taken = {o.id for o in outcomes if o.outcome != "rejected"}
        copies = [e for e in events if e.event_id in taken and self.faults.duplicate()]
        if copies:
            self._post_again("events", lambda: self.client.post_events(copies))
        return sum(o.outcome != "rejected" for o in outcomes)

    def step(self) -> bool:
        """One round. True when there is more to do at once (the platform has more tasks).

        Raises only when fetching failed (the platform is unreachable: the caller backs off).
        A failed delivery is not worth a pause of the whole unit: the items it could not send
        wait in the outbox with their own backoff, while fetching and answering go on.
        """
        fetch_error: Exception | None = None
        more = False
        if self.unit.delivery_mode == "pull":
            try:
                more = self.fetch_once()
            except TRANSPORT_ERRORS as exc:
                fetch_error = exc
        self.process_due()
        for deliver in (self.deliver_results, self.deliver_events):
            try:
                deliver()
            except TRANSPORT_ERRORS as exc:
                log.log(logging.DEBUG if fetch_error else logging.WARNING,
                        "%s: %s: %s (will retry)", self.unit.code, deliver.__name__, exc)
        if fetch_error is not None:
            raise fetch_error
        return more

    def run(self, stop: Stopper) -> None:
        """Work until ``stop`` is set. The platform being unreachable is not fatal: the unit
        waits (doubling, at most 30 s) and tries again."""
        server = self.start_push_server() if self.unit.delivery_mode == "push" else None
        log.info("%s: %s mode against %s", self.unit.code, self.unit.delivery_mode,
                 self.base_url)
        try:
            while not stop.is_set():
                try:
                    more = self.step()
                except TRANSPORT_ERRORS as exc:
                    self._failures += 1
                    pause = min(MAX_IDLE_BACKOFF, self.options.poll_interval * 2 ** self._failures)
                    level = logging.WARNING if self._failures == 1 else logging.DEBUG
                    log.log(level, "%s: platform unavailable (%s); next try in %.1f s",
                            self.unit.code, exc, pause)
                    stop.wait(pause)
                    continue
                self._failures = 0
                if not more and not (self.unit.delivery_mode == "pull" and self.long_polling()):
                    stop.wait(self.options.poll_interval)
        finally:
            if server is not None:
                server.stop()
            self.client.close()

    # -- push mode --

    def handle_push(self, method: str, target: str, headers: Mapping[str, str],
                    body: bytes) -> PushAnswer | None:
        """Answer one request to the push URL (``target``: raw path and query, as received)."""
        _, _, path = self.unit.push_bind
        if target.split("?", 1)[0] != path:
            return PushAnswer(404, {"Content-Type": "application/json"},
                              b'{"error":{"code":"not_found","message":"no such path"}}')
        if self.faults.hang():
            self._sleep(self.options.hang_seconds)
            return None
        if self.faults.fail():
            return PushAnswer(503, {"Content-Type": "application/json"},
                              b'{"error":{"code":"unavailable","message":"simulated outage"}}')
        try:
            delivery = self.receiver.receive(method, target, headers, body)
        except PushRejected as rejected:
            log.warning("%s: push refused: %s", self.unit.code, rejected)
            return PushAnswer(rejected.status_code,
                              {"Content-Type": "application/json", **rejected.headers},
                              rejected.body)
        now = self._clock()
        items = [(task, now + timedelta(seconds=self.faults.latency()), None)
                 for task in delivery.tasks]
        try:
            new = self.ledger.store_tasks(items, now)
            self.ledger.mark_acked([t.task_id for t in delivery.tasks])  # a signed 202 is one
        except Exception:
            log.exception("%s: could not store pushed tasks", self.unit.code)
            return PushAnswer(503, {"Content-Type": "application/json"},
                              b'{"error":{"code":"unavailable","message":"storage failed"}}')
        log.info("%s: push of %d task(s), %d new", self.unit.code, len(delivery.tasks), len(new))
        delay = self.faults.latency()
        if delay:
            self._sleep(delay)
        return PushAnswer(delivery.status_code, dict(delivery.headers), b"")

    def start_push_server(self) -> PushServer:
        host, port, _ = self.unit.push_bind
        server = PushServer(self, host, port)
        server.start()
        log.info("%s: push server on http://%s:%d%s", self.unit.code, *server.address,
                 self.unit.push_bind[2])
        return server


# --- the push server ---------------------------------------------------------------------------


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    simulator: UnitSimulator


class _PushHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "zhixing-unit-simulator/1"
    server: _Server

    def _handle(self) -> None:
        try:
            self._answer()
        finally:
            # One thread per connection: its ledger connection goes with it, or every push
            # would leave an open SQLite connection behind.
            self.server.simulator.ledger.close_thread_connection()

    def _answer(self) -> None:
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            length = -1
        if not 0 <= length <= wire.MAX_BODY_BYTES:
            self._send(PushAnswer(413, {"Content-Type": "application/json"},
                                  b'{"error":{"code":"payload_too_large","message":"too big"}}'))
            self.close_connection = True
            return
        body = self.rfile.read(length) if length else b""
        answer = self.server.simulator.handle_push(self.command, self.path,
                                                   dict(self.headers.items()), body)
        if answer is None:  # the "timeout" fault: say nothing, hang up
            self.close_connection = True
            return
        self._send(answer)

    def _send(self, answer: PushAnswer) -> None:
        self.send_response(answer.status)
        for name, value in answer.headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(answer.body)))
        self.end_headers()
        if answer.body:
            self.wfile.write(answer.body)

    do_POST = _handle
    do_GET = _handle
    do_PUT = _handle

    def log_message(self, format: str, *args: object) -> None:
        log.debug("push %s: " + format, self.client_address[0], *args)


class PushServer:
    """The unit's push endpoint: a threading HTTP server bound to the push URL's host and port
    (port 0 picks a free one: see :attr:`address`)."""

    def __init__(self, simulator: UnitSimulator, host: str, port: int) -> None:
        self._server = _Server((host, port), _PushHandler)
        self._server.simulator = simulator
        self._thread = threading.Thread(target=self._server.serve_forever,
                                        kwargs={"poll_interval": 0.1},
                                        name=f"push-{simulator.unit.code}", daemon=True)

    @property
    def address(self) -> tuple[str, int]:
        host, port = self._server.server_address[:2]
        return str(host), int(port)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)


def run_unit(unit: UnitConfig, base_url: str, ledger: Ledger, options: SimulatorOptions,
             stop: Stopper) -> None:
    """Run one unit in this process until ``stop`` is set."""
    UnitSimulator(unit, base_url, ledger, options).run(stop)
