"""A simulated unit's own books: one SQLite file per unit (``<ledger dir>/<unit code>.sqlite3``).

It keeps what a real unit must keep to honour the protocol (section 6 of
``docs/linkage-protocol.md``): every task received (so a task delivered twice is answered with
the same answer), the answer given and whether the platform has it (the outbox), and, for a
bank, the accounts, balances, holds, deductions and incoming credits.

**Exactly once.** A task's answer is written in the same ``BEGIN IMMEDIATE`` transaction that
applies its control order, and the answer is looked up first in that transaction: a second
delivery, a second worker thread or a second process finds the answer and returns it instead of
applying the order again. The ``orders`` table has the task id as primary key as a second line
of defence, and the append-only ``journal`` (no unique constraints) is the evidence tests read:
:meth:`Ledger.applied_orders` counts, per task, how many times an order was really applied.

The unit process, the ``simulate-credit`` command and tests may open the same file at once
(WAL mode; writers wait up to 30 s for each other).
"""

from __future__ import annotations

import contextlib
import logging
import sqlite3
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Final

from zhixing.linkage import wire
from zhixing.linkage.simulator import bank
from zhixing.linkage.simulator.bank import LedgerError, Refused, UnitProfile, moment_text

log = logging.getLogger(__name__)

__all__ = ["AccountTotals", "AnswerRecord", "AppliedOrder", "CreditOutcome", "CreditRecord",
           "DeductionRecord", "EventRecord", "HoldView", "Ledger", "LedgerError",
           "OutboxResult", "StoredTask", "UnitProfile", "ledger_path"]

TERMINAL_REJECTIONS: Final = frozenset({"result_conflict", "event_conflict", "unknown_task"})
"""Rejections that sending again cannot fix: the item is set aside (``abandoned``)."""
MAX_RETRY_DELAY: Final = 60.0

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS tasks (
    task_id TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    task_json TEXT NOT NULL,
    received_at TEXT NOT NULL,
    deliveries INTEGER NOT NULL DEFAULT 1,
    process_after TEXT NOT NULL,
    fault TEXT,
    acked INTEGER NOT NULL DEFAULT 0,
    answered_at TEXT,
    status TEXT,
    result_json TEXT,
    delivered INTEGER NOT NULL DEFAULT 0,
    send_attempts INTEGER NOT NULL DEFAULT 0,
    next_send_at TEXT,
    last_error TEXT,
    abandoned INTEGER NOT NULL DEFAULT 0,
    malformed_sent INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS tasks_due ON tasks (process_after) WHERE result_json IS NULL;
CREATE INDEX IF NOT EXISTS tasks_outbox ON tasks (next_send_at)
    WHERE result_json IS NOT NULL AND delivered = 0 AND abandoned = 0;
CREATE TABLE IF NOT EXISTS subjects (
    id_number TEXT PRIMARY KEY, name TEXT, materialised_at TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS accounts (
    account_number TEXT PRIMARY KEY,
    id_number TEXT NOT NULL REFERENCES subjects,
    position INTEGER NOT NULL,
    bank TEXT NOT NULL,
    branch TEXT NOT NULL,
    account_type TEXT NOT NULL,
    currency TEXT NOT NULL,
    initial_fen INTEGER NOT NULL,
    balance_fen INTEGER NOT NULL CHECK (balance_fen >= 0),
    product_json TEXT,
    opened_at TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS accounts_owner ON accounts (id_number, position);
CREATE TABLE IF NOT EXISTS holds (
    chain_id TEXT PRIMARY KEY,
    task_id TEXT NOT NULL UNIQUE,
    standing_task_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    asset_type TEXT NOT NULL,
    reference TEXT NOT NULL,
    id_number TEXT NOT NULL,
    account_number TEXT REFERENCES accounts,
    amount_ordered INTEGER,
    amount_frozen INTEGER CHECK (amount_frozen >= 0),
    expires_on TEXT,
    released INTEGER NOT NULL DEFAULT 0,
    created_at TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS holds_account ON holds (account_number);
CREATE TABLE IF NOT EXISTS orders (
    task_id TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    chain_id TEXT NOT NULL,
    sequence INTEGER NOT NULL,
    asset_type TEXT NOT NULL,
    reference TEXT NOT NULL,
    amount_ordered INTEGER,
    amount_applied INTEGER,
    unit_reference TEXT NOT NULL UNIQUE,
    applied_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS deductions (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    task_id TEXT NOT NULL,
    chain_id TEXT NOT NULL,
    account_number TEXT NOT NULL,
    amount_fen INTEGER NOT NULL,
    from_frozen INTEGER NOT NULL,
    at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS credits (
    credit_id INTEGER PRIMARY KEY AUTOINCREMENT,
    account_number TEXT NOT NULL,
    amount_fen INTEGER NOT NULL,
    arrived_at TEXT NOT NULL,
    auto_frozen_fen INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS events (
    event_id TEXT PRIMARY KEY,
    credit_id INTEGER NOT NULL REFERENCES credits,
    chain_id TEXT NOT NULL,
    related_task_id TEXT NOT NULL,
    event_json TEXT NOT NULL,
    delivered INTEGER NOT NULL DEFAULT 0,
    send_attempts INTEGER NOT NULL DEFAULT 0,
    next_send_at TEXT NOT NULL,
    last_error TEXT,
    abandoned INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS journal (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    op TEXT NOT NULL,
    task_id TEXT,
    credit_id INTEGER,
    account_number TEXT,
    amount_fen INTEGER,
    at TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS journal_task ON journal (task_id);
CREATE TABLE IF NOT EXISTS nonces (
    key_id TEXT NOT NULL, nonce TEXT NOT NULL, keep_until TEXT NOT NULL,
    PRIMARY KEY (key_id, nonce));
CREATE INDEX IF NOT EXISTS nonces_expiry ON nonces (keep_until);
"""


def ledger_path(ledger_dir: Path | str, unit_code: str) -> Path:
    return Path(ledger_dir) / f"{unit_code}.sqlite3"


def _utcnow() -> datetime:
    return datetime.now(UTC)


def _moment(text: str) -> datetime:
    return datetime.fromisoformat(text)


def retry_delay(attempts: int) -> timedelta:
    """Wait before sending an item again after ``attempts`` failed sends (0.5 s doubling,
    at most a minute, as section 9 asks of units)."""
    return timedelta(seconds=min(MAX_RETRY_DELAY, 0.5 * 2 ** max(0, attempts - 1)))


# --- what the read functions return -------------------------------------------------------------


@dataclass(frozen=True)
class StoredTask:
    task: wire.Task
    fault: str | None


@dataclass(frozen=True)
class OutboxResult:
    result: wire.Result
    attempts: int
    malformed_sent: bool


@dataclass(frozen=True)
class AnswerRecord:
    """A task received and what the unit answered (``result`` is None while unanswered)."""

    task_id: str
    kind: str
    deliveries: int
    acked: bool
    fault: str | None
    result: wire.Result | None
    delivered: bool
    send_attempts: int
    abandoned: bool
    last_error: str | None


@dataclass(frozen=True)
class AppliedOrder:
    """A control order the unit applied; ``times_applied`` counts the applications the journal
    holds for it, which must be 1."""

    task_id: str
    kind: str
    chain_id: str
    sequence: int
    asset_type: str
    reference: str
    amount_ordered_fen: int | None
    amount_applied_fen: int | None
    unit_reference: str
    applied_at: datetime
    times_applied: int


@dataclass(frozen=True)
class AccountTotals:
    """Money of one account. ``balance_fen == initial_fen + credited_fen - deducted_fen``."""

    account_number: str
    id_number: str
    account_type: str
    initial_fen: int
    balance_fen: int
    frozen_fen: int  # held now by freezes in force
    frozen_by_orders_fen: int  # ever frozen by freezes and renewals when applied
    auto_frozen_fen: int  # ever caught from incoming credits
    released_fen: int
    deducted_fen: int
    credited_fen: int


@dataclass(frozen=True)
class HoldView:
    chain_id: str
    task_id: str
    standing_task_id: str
    kind: str
    asset_type: str
    reference: str
    id_number: str
    account_number: str | None
    amount_ordered_fen: int | None
    amount_frozen_fen: int | None
    expires_on: date | None
    released: bool


@dataclass(frozen=True)
class DeductionRecord:
    task_id: str
    chain_id: str
    account_number: str
    amount_fen: int
    from_frozen: bool
    at: datetime


@dataclass(frozen=True)
class CreditRecord:
    credit_id: int
    account_number: str
    amount_fen: int
    arrived_at: datetime
    auto_frozen_fen: int


@dataclass(frozen=True)
class EventRecord:
    event: wire.Event
    credit_id: int
    delivered: bool
    send_attempts: int
    abandoned: bool
    last_error: str | None


@dataclass(frozen=True)
class CreditOutcome:
    """What :meth:`Ledger.credit` did: the money arrived, how much standing freezes caught,
    and the ``funds_arrived`` events queued (none when no freeze stands on the account)."""

    credit_id: int
    account_number: str
    amount_fen: int
    auto_frozen_fen: int
    event_ids: list[str]


# --- the ledger --------------------------------------------------------------------------------


class Ledger:
    """One unit's ledger. Thread-safe: every thread gets its own SQLite connection."""

    def __init__(self, path: Path | str, unit: UnitProfile | None = None, *,
                 clock: Callable[[], datetime] = _utcnow) -> None:
        self.path = Path(path)
        if unit is None and not self.path.exists():
            raise LedgerError(f"no ledger at {self.path}: has the simulator run for this unit?")
        self._clock = clock
        self._local = threading.local()
        self._connections: list[sqlite3.Connection] = []
        self._lock = threading.Lock()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._conn().executescript(_SCHEMA)  # idempotent: IF NOT EXISTS everywhere
        with self._write() as conn:
            owner = conn.execute("SELECT value FROM meta WHERE key = 'code'").fetchone()
            if unit is not None and owner is not None and owner[0] != unit.code:
                raise LedgerError(f"{self.path} is the ledger of {owner[0]}")
            if unit is not None:
                conn.executemany("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", [
                    ("code", unit.code), ("name", unit.name), ("unit_type", unit.unit_type),
                    ("online_deduct", "1" if unit.online_deduct else "0")])
            meta = dict(conn.execute("SELECT key, value FROM meta").fetchall())
        if not meta:
            raise LedgerError(f"the ledger {self.path} does not say which unit it belongs to")
        self.unit = UnitProfile(code=meta["code"], name=meta["name"],
                                unit_type=meta["unit_type"],
                                online_deduct=meta["online_deduct"] == "1")

    @classmethod
    def open(cls, ledger_dir: Path | str, unit_code: str, unit: UnitProfile | None = None, *,
             clock: Callable[[], datetime] = _utcnow) -> Ledger:
        """The ledger of ``unit_code`` in ``ledger_dir``; without ``unit`` it must exist."""
        ledger = cls(ledger_path(ledger_dir, unit_code), unit, clock=clock)
        if ledger.unit.code != unit_code:
            raise LedgerError(f"{ledger.path} is the ledger of {ledger.unit.code}")
        return ledger

    # -- connections --

    def _conn(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(self.path, timeout=30.0, isolation_level=None)
            conn.execute("PRAGMA journal_mode=WAL")
            # WAL with NORMAL survives a killed process (what the fault tests do); only a
            # power cut could lose the last transactions, and a simulated bank has none.
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.execute("PRAGMA foreign_keys=ON")
            conn.execute("PRAGMA busy_timeout=30000")
            self._local.conn = conn
            with self._lock:
                self._connections.append(conn)
        return conn

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """A write transaction that takes SQLite's write lock at once (``BEGIN IMMEDIATE``):
        the read-then-write of an answer cannot interleave with another writer's."""
        conn = self._conn()
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield conn
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")

    def close(self) -> None:
        with self._lock:
            for conn in self._connections:
                with contextlib.suppress(sqlite3.ProgrammingError):  # another thread's
                    conn.close()
            self._connections.clear()
        self._local = threading.local()

    def close_thread_connection(self) -> None:
        """Close this thread's connection (a short-lived thread's, e.g. a push handler's)."""
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            return
        self._local.conn = None
        with self._lock:
            self._connections.remove(conn)
        conn.close()

    def __enter__(self) -> Ledger:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def now(self) -> datetime:
        return self._clock()

    # -- tasks received --

    def store_tasks(self, items: Sequence[tuple[wire.Task, datetime, str | None]],
                    now: datetime | None = None) -> list[str]:
        """Store tasks durably: (task, not to be processed before, planned fault). A task id
        already stored is not stored again (its first fault plan stands); if it was answered,
        its answer is queued to be sent again (the platform answers ``duplicate``). Returns
        the ids that were new."""
        now = now or self._clock()
        new: list[str] = []
        with self._write() as conn:
            for task, process_after, fault in items:
                task_json = task.model_dump_json()
                inserted = conn.execute(
                    "INSERT OR IGNORE INTO tasks (task_id, kind, task_json, received_at,"
                    " process_after, fault) VALUES (?, ?, ?, ?, ?, ?)",
                    (task.task_id, task.kind, task_json, moment_text(now),
                     moment_text(process_after), fault)).rowcount
                if inserted:
                    new.append(task.task_id)
                    continue
                row = conn.execute("SELECT task_json FROM tasks WHERE task_id = ?",
                                   (task.task_id,)).fetchone()
                if row[0] != task_json:
                    log.warning("task %s delivered again with different content; the first "
                                "stands", task.task_id)
                conn.execute(
                    "UPDATE tasks SET deliveries = deliveries + 1,"
                    " delivered = CASE WHEN result_json IS NULL THEN delivered ELSE 0 END,"
                    " next_send_at = CASE WHEN result_json IS NULL THEN next_send_at"
                    " ELSE ? END WHERE task_id = ? AND abandoned = 0",
                    (moment_text(now), task.task_id))
        return new

    def ackable(self, task_ids: Sequence[str], now: datetime | None = None) -> list[str]:
        """Which of these stored tasks to acknowledge: all but those left hanging on purpose
        (the ``timeout`` fault: the platform is to offer them again)."""
        now = now or self._clock()
        conn = self._conn()
        keep = []
        for task_id in task_ids:
            row = conn.execute("SELECT fault, result_json IS NULL, process_after FROM tasks"
                               " WHERE task_id = ?", (task_id,)).fetchone()
            if row is None:
                continue  # never acknowledge what is not stored
            fault, unanswered, process_after = row
            if fault == "hang" and unanswered and process_after > moment_text(now):
                continue
            keep.append(task_id)
        return keep

    def mark_acked(self, task_ids: Sequence[str]) -> None:
        with self._write() as conn:
            conn.executemany("UPDATE tasks SET acked = 1 WHERE task_id = ?",
                             [(t,) for t in task_ids])

    def due_tasks(self, now: datetime | None = None, limit: int = 100) -> list[StoredTask]:
        """Stored, unanswered tasks whose time has come, oldest first."""
        now = now or self._clock()
        rows = self._conn().execute(
            "SELECT task_json, fault FROM tasks WHERE result_json IS NULL AND process_after <= ?"
            " ORDER BY received_at, rowid LIMIT ?", (moment_text(now), limit)).fetchall()
        return [StoredTask(wire.Task.model_validate_json(t), f) for t, f in rows]

    def answer(self, task_id: str, now: datetime | None = None, *,
               fail: bool = False) -> wire.Result:
        """The unit's answer to a stored task: looked up, or else decided, applied and stored in
        one transaction. ``fail``: answer ``failed``/``unit_error`` without applying anything
        (fault injection). An unexpected error also becomes a ``failed`` answer, after the
        transaction that met it was rolled back, so "failed" really means nothing happened."""
        # China time reads better in the answers; the instant is the same.
        now = (now or self._clock()).astimezone(wire.CHINA_TIME)
        try:
            with self._write() as conn:
                task, stored = self._task_and_answer(conn, task_id)
                if stored is not None:
                    return stored
                result = self._decide(conn, task, now, fail=fail)
                self._store_answer(conn, result, now)
                return result
        except LedgerError:
            raise
        except Exception:
            log.exception("task %s: processing failed; answering failed/unit_error", task_id)
        with self._write() as conn:
            task, stored = self._task_and_answer(conn, task_id)
            if stored is not None:
                return stored
            result = _failed(task, now, "处理时发生技术故障，未执行任何操作")
            self._store_answer(conn, result, now)
            return result

    @staticmethod
    def _task_and_answer(conn: sqlite3.Connection,
                         task_id: str) -> tuple[wire.Task, wire.Result | None]:
        row = conn.execute("SELECT task_json, result_json FROM tasks WHERE task_id = ?",
                           (task_id,)).fetchone()
        if row is None:
            raise LedgerError(f"task {task_id} was never stored")
        stored = wire.Result.model_validate_json(row[1]) if row[1] is not None else None
        return wire.Task.model_validate_json(row[0]), stored

    def _decide(self, conn: sqlite3.Connection, task: wire.Task, now: datetime, *,
                fail: bool) -> wire.Result:
        if fail:
            return _failed(task, now, "模拟的技术故障（故障注入），未执行任何操作")
        if task.control is None:
            payload = bank.answer_query(conn, self.unit, task, now)
            return wire.Result(schema_version="1", task_id=task.task_id, status="answered",
                               reported_at=now, payload=payload)
        # A refusal must leave no trace of a half-applied order: a savepoint undoes it.
        conn.execute("SAVEPOINT apply")
        try:
            outcome = bank.apply_order(conn, self.unit, task, now)
        except Refused as refused:
            conn.execute("ROLLBACK TO apply")
            conn.execute("RELEASE apply")
            return wire.Result(schema_version="1", task_id=task.task_id, status="refused",
                               reported_at=now, refusal=wire.Refusal(
                                   code=refused.code, message=refused.message[:500]))
        conn.execute("RELEASE apply")
        return wire.Result(schema_version="1", task_id=task.task_id, status="answered",
                           reported_at=now, payload=outcome)

    @staticmethod
    def _store_answer(conn: sqlite3.Connection, result: wire.Result, now: datetime) -> None:
        conn.execute(
            "UPDATE tasks SET result_json = ?, status = ?, answered_at = ?, delivered = 0,"
            " next_send_at = ? WHERE task_id = ? AND result_json IS NULL",
            (result.model_dump_json(), result.status, moment_text(now), moment_text(now),
             result.task_id))

    # -- the outbox --

    def pending_results(self, now: datetime | None = None,
                        limit: int = wire.MAX_RESULTS_PER_BATCH) -> list[OutboxResult]:
        """Answers the platform does not have yet and that are due to be sent."""
        now = now or self._clock()
        rows = self._conn().execute(
            "SELECT result_json, send_attempts, malformed_sent FROM tasks"
            " WHERE result_json IS NOT NULL AND delivered = 0 AND abandoned = 0"
            " AND next_send_at <= ? ORDER BY answered_at, rowid LIMIT ?",
            (moment_text(now), limit)).fetchall()
        return [OutboxResult(wire.Result.model_validate_json(r), n, bool(m)) for r, n, m in rows]

    def claim_malformed(self, task_id: str) -> bool:
        """True once per task: the malformed copy of its answer is sent only the first time."""
        with self._write() as conn:
            return bool(conn.execute(
                "UPDATE tasks SET malformed_sent = 1 WHERE task_id = ? AND malformed_sent = 0",
                (task_id,)).rowcount)

    def record_result_outcomes(self, outcomes: Sequence[wire.ItemOutcome],
                               now: datetime | None = None) -> None:
        self._record_outcomes("tasks", "task_id", outcomes, now or self._clock())

    def defer_results(self, task_ids: Sequence[str], error: str,
                      now: datetime | None = None) -> None:
        """The platform could not be reached: try these answers again later."""
        self._defer("tasks", "task_id", task_ids, error, now or self._clock())

    def pending_events(self, now: datetime | None = None,
                       limit: int = wire.MAX_EVENTS_PER_BATCH) -> list[wire.Event]:
        """Events due to be sent. An event waits until the platform has the answer to the
        freeze it reports on: before that it would not know the freeze (``not_a_freeze``)."""
        now = now or self._clock()
        rows = self._conn().execute(
            "SELECT e.event_json FROM events e JOIN tasks t ON t.task_id = e.related_task_id"
            " WHERE e.delivered = 0 AND e.abandoned = 0 AND e.next_send_at <= ?"
            " AND t.delivered = 1 ORDER BY e.credit_id, e.event_id LIMIT ?",
            (moment_text(now), limit)).fetchall()
        return [wire.Event.model_validate_json(r[0]) for r in rows]

    def record_event_outcomes(self, outcomes: Sequence[wire.ItemOutcome],
                              now: datetime | None = None) -> None:
        self._record_outcomes("events", "event_id", outcomes, now or self._clock())

    def defer_events(self, event_ids: Sequence[str], error: str,
                     now: datetime | None = None) -> None:
        self._defer("events", "event_id", event_ids, error, now or self._clock())

    def _record_outcomes(self, table: str, key: str, outcomes: Sequence[wire.ItemOutcome],
                         now: datetime) -> None:
        with self._write() as conn:
            for outcome in outcomes:
                if outcome.outcome in ("accepted", "duplicate"):
                    conn.execute(f"UPDATE {table} SET delivered = 1, last_error = NULL"  # noqa: S608 - fixed names
                                 f" WHERE {key} = ?", (outcome.id,))
                    continue
                error = outcome.error
                text = f"{error.code}: {error.message}" if error else "rejected"
                if error is not None and error.code in TERMINAL_REJECTIONS:
                    log.error("%s %s rejected for good: %s", key, outcome.id, text)
                    conn.execute(f"UPDATE {table} SET abandoned = 1, last_error = ?"  # noqa: S608
                                 f" WHERE {key} = ?", (text, outcome.id))
                    continue
                log.warning("%s %s rejected, will send again: %s", key, outcome.id, text)
                self._defer_one(conn, table, key, outcome.id, text, now)

    def _defer(self, table: str, key: str, ids: Sequence[str], error: str,
               now: datetime) -> None:
        with self._write() as conn:
            for item_id in ids:
                self._defer_one(conn, table, key, item_id, error, now)

    @staticmethod
    def _defer_one(conn: sqlite3.Connection, table: str, key: str, item_id: str, error: str,
                   now: datetime) -> None:
        row = conn.execute(f"SELECT send_attempts FROM {table} WHERE {key} = ?",  # noqa: S608
                           (item_id,)).fetchone()
        if row is None:
            return
        attempts = int(row[0]) + 1
        conn.execute(f"UPDATE {table} SET send_attempts = ?, next_send_at = ?,"  # noqa: S608
                     f" last_error = ? WHERE {key} = ?",
                     (attempts, moment_text(now + retry_delay(attempts)), error[:1000],
                      item_id))

    # -- push-mode nonces --

    def nonce_seen(self, key_id: str, nonce: str, keep_until: datetime) -> bool:
        """A :data:`zhixing.linkage.signing.NonceSeen` kept in the ledger, so a push replayed
        after the unit restarted is still refused."""
        with self._write() as conn:
            conn.execute("DELETE FROM nonces WHERE keep_until < ?",
                         (moment_text(self._clock()),))
            return not conn.execute(
                "INSERT OR IGNORE INTO nonces (key_id, nonce, keep_until) VALUES (?, ?, ?)",
                (key_id, nonce, moment_text(keep_until))).rowcount

    # -- money arriving --

    def credit(self, *, account_number: str | None = None, id_number: str | None = None,
               amount_fen: int, now: datetime | None = None) -> CreditOutcome:
        """Money arrives in an account (named, or the subject's: one a standing freeze waits
        on, else the first demand account, else a new one). Standing freezes catch it in the
        same transaction and a ``funds_arrived`` event is queued for each of them."""
        if (account_number is None) == (id_number is None):
            raise ValueError("name the account or the subject, not both")
        if not 1 <= amount_fen <= wire.MAX_FEN:
            raise ValueError(f"amount_fen is 1 to {wire.MAX_FEN}")
        now = now or self._clock()
        with self._write() as conn:
            if account_number is None:
                assert id_number is not None
                account_number = self._account_for_credit(conn, id_number, now)
            row = conn.execute("SELECT currency FROM accounts WHERE account_number = ?",
                               (account_number,)).fetchone()
            if row is None:
                raise LedgerError(f"no account {account_number} at {self.unit.code} (an "
                                  "account exists once its owner was queried or ordered)")
            currency = row[0]
            conn.execute("UPDATE accounts SET balance_fen = balance_fen + ?"
                         " WHERE account_number = ?", (amount_fen, account_number))
            credit_id = int(conn.execute(
                "INSERT INTO credits (account_number, amount_fen, arrived_at, auto_frozen_fen)"
                " VALUES (?, ?, ?, 0)", (account_number, amount_fen, moment_text(now))).lastrowid
                or 0)
            bank.journal(conn, "credit", now, credit_id=credit_id,
                          account_number=account_number, amount_fen=amount_fen)
            caught = bank.catch_credit(conn, account_number, amount_fen, now)
            total = sum(c.amount_frozen_fen for c in caught)
            conn.execute("UPDATE credits SET auto_frozen_fen = ? WHERE credit_id = ?",
                         (total, credit_id))
            event_ids = []
            for index, catch in enumerate(caught, start=1):
                event = wire.Event(
                    schema_version="1",
                    event_id=f"{self.unit.reference_prefix}-EV-{credit_id:08d}-{index}",
                    kind="funds_arrived", related_task_id=catch.related_task_id,
                    account_number=account_number, currency=currency, amount_fen=amount_fen,
                    amount_frozen_fen=catch.amount_frozen_fen,
                    arrived_at=now.astimezone(wire.CHINA_TIME))
                conn.execute(
                    "INSERT INTO events (event_id, credit_id, chain_id, related_task_id,"
                    " event_json, next_send_at) VALUES (?, ?, ?, ?, ?, ?)",
                    (event.event_id, credit_id, catch.chain_id, catch.related_task_id,
                     event.model_dump_json(), moment_text(now)))
                event_ids.append(event.event_id)
        return CreditOutcome(credit_id, account_number, amount_fen, total, event_ids)

    def _account_for_credit(self, conn: sqlite3.Connection, id_number: str,
                            now: datetime) -> str:
        bank.materialise(conn, self.unit, id_number, None, now)
        row = conn.execute(
            "SELECT a.account_number FROM accounts a LEFT JOIN holds h"
            " ON h.account_number = a.account_number AND h.released = 0 AND h.expires_on >= ?"
            " AND h.amount_frozen < h.amount_ordered"
            " WHERE a.id_number = ? AND a.account_type != 'wealth_product'"
            " ORDER BY h.chain_id IS NULL, a.account_type != 'demand', a.position LIMIT 1",
            (bank.china_day(now).isoformat(), id_number)).fetchone()
        return str(row[0]) if row else bank.open_account(conn, self.unit, id_number, now)

    # -- reads (tests and the platform's end-to-end tests prove exactly-once with these) --

    def answers(self) -> dict[str, AnswerRecord]:
        """Every task received, by task id, with its answer and delivery state."""
        rows = self._conn().execute(
            "SELECT task_id, kind, deliveries, acked, fault, result_json, delivered,"
            " send_attempts, abandoned, last_error FROM tasks ORDER BY received_at, rowid")
        return {r[0]: AnswerRecord(
            task_id=r[0], kind=r[1], deliveries=r[2], acked=bool(r[3]), fault=r[4],
            result=wire.Result.model_validate_json(r[5]) if r[5] is not None else None,
            delivered=bool(r[6]), send_attempts=r[7], abandoned=bool(r[8]), last_error=r[9])
            for r in rows}

    def applied_orders(self) -> list[AppliedOrder]:
        """Every control order applied, with how many times the journal says it was applied
        (exactly once means 1 everywhere)."""
        rows = self._conn().execute(
            "SELECT o.task_id, o.kind, o.chain_id, o.sequence, o.asset_type, o.reference,"
            " o.amount_ordered, o.amount_applied, o.unit_reference, o.applied_at,"
            " (SELECT COUNT(*) FROM journal j WHERE j.task_id = o.task_id AND j.op = 'order')"
            " FROM orders o ORDER BY o.applied_at, o.rowid")
        return [AppliedOrder(r[0], r[1], r[2], r[3], r[4], r[5], r[6], r[7], r[8],
                             _moment(r[9]), r[10]) for r in rows]

    def totals(self, now: datetime | None = None) -> dict[str, AccountTotals]:
        """Money per account number: balance, what is frozen now, and every sum frozen,
        released, deducted and credited over the ledger's life."""
        today = bank.china_day(now or self._clock()).isoformat()
        conn = self._conn()

        def sums(sql: str, *args: object) -> dict[str, int]:
            return {a: int(s) for a, s in conn.execute(sql, args).fetchall()}

        frozen = sums("SELECT account_number, SUM(amount_frozen) FROM holds WHERE released = 0"
                      " AND expires_on >= ? AND account_number IS NOT NULL"
                      " GROUP BY account_number", today)
        journal = {op: sums("SELECT account_number, SUM(amount_fen) FROM journal WHERE op = ?"
                            " AND account_number IS NOT NULL GROUP BY account_number", op)
                   for op in ("freeze", "renew", "auto_freeze", "release", "deduct", "credit")}
        rows = conn.execute("SELECT account_number, id_number, account_type, initial_fen,"
                            " balance_fen FROM accounts ORDER BY id_number, position")
        return {n: AccountTotals(
            account_number=n, id_number=i, account_type=t, initial_fen=initial, balance_fen=b,
            frozen_fen=frozen.get(n, 0),
            frozen_by_orders_fen=journal["freeze"].get(n, 0),
            auto_frozen_fen=journal["auto_freeze"].get(n, 0),
            released_fen=journal["release"].get(n, 0),
            deducted_fen=journal["deduct"].get(n, 0),
            credited_fen=journal["credit"].get(n, 0)) for n, i, t, initial, b in rows}

    def holds(self) -> list[HoldView]:
        rows = self._conn().execute(
            "SELECT chain_id, task_id, standing_task_id, kind, asset_type, reference, id_number,"
            " account_number, amount_ordered, amount_frozen, expires_on, released FROM holds"
            " ORDER BY created_at, chain_id")
        return [HoldView(r[0], r[1], r[2], r[3], r[4], r[5], r[6], r[7], r[8], r[9],
                         date.fromisoformat(r[10]) if r[10] else None, bool(r[11]))
                for r in rows]

    def deductions(self) -> list[DeductionRecord]:
        rows = self._conn().execute("SELECT task_id, chain_id, account_number, amount_fen,"
                                    " from_frozen, at FROM deductions ORDER BY id")
        return [DeductionRecord(r[0], r[1], r[2], r[3], bool(r[4]), _moment(r[5]))
                for r in rows]

    def credits(self) -> list[CreditRecord]:
        rows = self._conn().execute("SELECT credit_id, account_number, amount_fen, arrived_at,"
                                    " auto_frozen_fen FROM credits ORDER BY credit_id")
        return [CreditRecord(r[0], r[1], r[2], _moment(r[3]), r[4]) for r in rows]

    def events(self) -> list[EventRecord]:
        rows = self._conn().execute("SELECT event_json, credit_id, delivered, send_attempts,"
                                    " abandoned, last_error FROM events"
                                    " ORDER BY credit_id, event_id")
        return [EventRecord(wire.Event.model_validate_json(r[0]), r[1], bool(r[2]), r[3],
                            bool(r[4]), r[5]) for r in rows]

    def accounts_of(self, id_number: str) -> list[str]:
        """Account numbers of a subject (empty until the bank first looked them up)."""
        rows = self._conn().execute("SELECT account_number FROM accounts WHERE id_number = ?"
                                    " ORDER BY position", (id_number,))
        return [r[0] for r in rows]


def _failed(task: wire.Task, now: datetime, message: str) -> wire.Result:
    return wire.Result(schema_version="1", task_id=task.task_id, status="failed",
                       reported_at=now,
                       refusal=wire.Refusal(code="unit_error", message=message))
