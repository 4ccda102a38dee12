"""The rules of a simulated unit: answering queries, applying control orders, catching money.

Every function here works inside a transaction the ledger opened (``BEGIN IMMEDIATE``) on the
connection it is given, and never commits: the ledger records the task's answer in the same
transaction, which is what makes a control order take effect exactly once.

Money model of an account: ``balance_fen`` is all the money in it; each hold (a freeze) keeps
``amount_frozen`` of it and aims at ``amount_ordered``. What may still be frozen or deducted
freely is the balance minus the money frozen by the holds still in force (not released, not
lapsed). A freeze that got less than ordered stands: money that arrives later is caught.
"""

from __future__ import annotations

import re
import sqlite3
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Literal

from zhixing.linkage import wire
from zhixing.linkage.simulator import holdings

MONEY_ASSETS = frozenset({"deposit_account", "wealth_product"})
Shortfall = Literal["insufficient_balance", "prior_freeze", "other"]

_ABBREVIATIONS = {"freeze": "DJ", "renew_freeze": "XD", "release": "JC", "deduct": "KH",
                  "seal": "CF"}


class LedgerError(Exception):
    """The ledger cannot do what was asked (an unknown account, an account number clash)."""


class Refused(Exception):
    """A control order the unit will not apply: becomes a ``refused`` result with ``code``."""

    def __init__(self, code: wire.RefusalCode, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code: wire.RefusalCode = code
        self.message = message


@dataclass(frozen=True)
class UnitProfile:
    """What the rules need to know of the unit (kept in the ledger, so a ledger opened without
    the configuration file, e.g. to credit money, behaves the same)."""

    code: str
    name: str
    unit_type: str
    online_deduct: bool

    @property
    def reference_prefix(self) -> str:
        # Unit references are printable ASCII without spaces, at most 64 characters.
        return re.sub(r"[^A-Z0-9-]", "-", self.code.upper())[:40]


def moment_text(moment: datetime) -> str:
    """How the ledger stores an instant: UTC ISO text, so text order is time order."""
    return moment.astimezone(UTC).isoformat(timespec="microseconds")


def china_day(moment: datetime) -> date:
    return moment.astimezone(wire.CHINA_TIME).date()


# --- accounts ----------------------------------------------------------------------------------


def materialise(conn: sqlite3.Connection, unit: UnitProfile, id_number: str,
                name: str | None, now: datetime) -> None:
    """Create the subject's accounts from the holdings the first time the bank looks them up;
    from then on the ledger's balances are the truth."""
    if conn.execute("SELECT 1 FROM subjects WHERE id_number = ?", (id_number,)).fetchone():
        return
    conn.execute("INSERT INTO subjects (id_number, name, materialised_at) VALUES (?, ?, ?)",
                 (id_number, name, moment_text(now)))
    for position, account in enumerate(holdings.deposit_accounts(unit.code, unit.name,
                                                                 id_number)):
        _insert_account(conn, id_number, position, account, now)


def _insert_account(conn: sqlite3.Connection, id_number: str, position: int,
                    account: wire.DepositAccount, now: datetime) -> None:
    clash = conn.execute("SELECT id_number FROM accounts WHERE account_number = ?",
                         (account.account_number,)).fetchone()
    if clash is not None:
        raise LedgerError(f"account number {account.account_number} already belongs to "
                          f"another subject")
    product = account.wealth_product.model_dump_json() if account.wealth_product else None
    conn.execute(
        "INSERT INTO accounts (account_number, id_number, position, bank, branch, account_type,"
        " currency, initial_fen, balance_fen, product_json, opened_at)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (account.account_number, id_number, position, account.bank, account.branch,
         account.account_type, account.currency, account.balance_fen, account.balance_fen,
         product, moment_text(now)))


def open_account(conn: sqlite3.Connection, unit: UnitProfile, id_number: str,
                 now: datetime) -> str:
    """A new demand account for a subject who had none here (money is arriving for them)."""
    position = conn.execute("SELECT COUNT(*) FROM accounts WHERE id_number = ?",
                            (id_number,)).fetchone()[0] + 100  # clear of the holdings' indices
    number = holdings.account_number(unit.code, id_number, position)
    _insert_account(conn, id_number, position, wire.DepositAccount(
        account_number=number, bank=unit.name[:128], branch="营业部", balance_fen=0,
        currency="CNY", account_type="demand"), now)
    return number


def deposits_payload(conn: sqlite3.Connection, id_number: str) -> wire.DepositsPayload:
    rows = conn.execute(
        "SELECT account_number, bank, branch, account_type, currency, balance_fen, product_json"
        " FROM accounts WHERE id_number = ? ORDER BY position", (id_number,)).fetchall()
    accounts = []
    for number, bank, branch, account_type, currency, balance, product_json in rows:
        product = None
        if product_json is not None:
            product = wire.WealthProduct.model_validate_json(product_json).model_copy(
                update={"value_fen": balance})
        accounts.append(wire.DepositAccount(
            account_number=number, bank=bank, branch=branch, balance_fen=balance,
            currency=currency, account_type=account_type, wealth_product=product))
    return wire.DepositsPayload(kind="deposits", accounts=accounts)


def _frozen_on(conn: sqlite3.Connection, account_number: str, today: date) -> int:
    """Money held on the account by holds in force."""
    row = conn.execute(
        "SELECT COALESCE(SUM(amount_frozen), 0) FROM holds WHERE account_number = ?"
        " AND released = 0 AND expires_on >= ?", (account_number, today.isoformat())).fetchone()
    return int(row[0])


def _balance(conn: sqlite3.Connection, account_number: str) -> int:
    return int(conn.execute("SELECT balance_fen FROM accounts WHERE account_number = ?",
                            (account_number,)).fetchone()[0])


def _shortfall(wanted: int, got: int, balance: int) -> Shortfall | None:
    if got >= wanted:
        return None
    # Less than ordered because earlier freezes hold the money, or because it is not there.
    return "prior_freeze" if balance >= wanted else "insufficient_balance"


def journal(conn: sqlite3.Connection, op: str, now: datetime, *, task_id: str | None = None,
             credit_id: int | None = None, account_number: str | None = None,
             amount_fen: int | None = None) -> None:
    conn.execute("INSERT INTO journal (op, task_id, credit_id, account_number, amount_fen, at)"
                 " VALUES (?, ?, ?, ?, ?, ?)",
                 (op, task_id, credit_id, account_number, amount_fen, moment_text(now)))


# --- queries -----------------------------------------------------------------------------------


def answer_query(conn: sqlite3.Connection, unit: UnitProfile, task: wire.Task,
                 now: datetime) -> holdings.QueryPayload:
    subject = task.subject
    if task.kind == "deposits":
        materialise(conn, unit, subject.id_number, subject.name, now)
        return deposits_payload(conn, subject.id_number)
    return holdings.query_payload(task.kind, unit_code=unit.code, unit_name=unit.name,
                                  id_number=subject.id_number, subject_name=subject.name,
                                  now=now)


# --- control orders ----------------------------------------------------------------------------


@dataclass
class _Hold:
    chain_id: str
    standing_task_id: str
    asset_type: str
    reference: str
    account_number: str | None
    amount_ordered: int | None
    amount_frozen: int | None
    expires_on: date | None
    released: bool


def _hold(conn: sqlite3.Connection, chain_id: str) -> _Hold | None:
    row = conn.execute(
        "SELECT chain_id, standing_task_id, asset_type, reference, account_number,"
        " amount_ordered, amount_frozen, expires_on, released FROM holds WHERE chain_id = ?",
        (chain_id,)).fetchone()
    if row is None:
        return None
    return _Hold(row[0], row[1], row[2], row[3], row[4], row[5], row[6],
                 date.fromisoformat(row[7]) if row[7] else None, bool(row[8]))


def _save_hold(conn: sqlite3.Connection, hold: _Hold) -> None:
    conn.execute(
        "UPDATE holds SET standing_task_id = ?, amount_ordered = ?, amount_frozen = ?,"
        " expires_on = ?, released = ? WHERE chain_id = ?",
        (hold.standing_task_id, hold.amount_ordered, hold.amount_frozen,
         hold.expires_on.isoformat() if hold.expires_on else None, int(hold.released),
         hold.chain_id))


def _account_of(conn: sqlite3.Connection, unit: UnitProfile, task: wire.Task,
                now: datetime) -> str:
    """The subject's account the order names, or ``account_not_found``."""
    assert task.control is not None
    materialise(conn, unit, task.subject.id_number, task.subject.name, now)
    reference = task.control.asset.reference
    row = conn.execute("SELECT account_type FROM accounts WHERE account_number = ?"
                       " AND id_number = ?", (reference, task.subject.id_number)).fetchone()
    wanted_product = task.control.asset.asset_type == "wealth_product"
    if row is None or (row[0] == "wealth_product") != wanted_product:
        raise Refused("account_not_found", f"账户 {reference} 不存在或不属于被执行人")
    return reference


def _expires(now: datetime, period_days: int | None) -> date:
    assert period_days is not None  # the wire model requires it for freezes, renewals, seals
    return china_day(now) + timedelta(days=period_days - 1)  # the applied day counts as day 1


def _unit_reference(conn: sqlite3.Connection, unit: UnitProfile, kind: str,
                    now: datetime) -> str:
    count = conn.execute("SELECT COUNT(*) FROM orders").fetchone()[0]
    return f"{unit.reference_prefix}-{_ABBREVIATIONS[kind]}-{china_day(now).year}-{count + 1:06d}"


def apply_order(conn: sqlite3.Connection, unit: UnitProfile, task: wire.Task,
                now: datetime) -> wire.ControlOutcome:
    """Apply a control order (or raise :class:`Refused`); the outcome to report."""
    order = task.control
    assert order is not None
    if task.kind == "deduct" and not unit.online_deduct:
        raise Refused("online_unsupported", "本单位不支持网络扣划，请至柜台办理")
    if order.sequence == 1:
        if task.kind == "deduct":
            applied, shortfall, expires = _deduct_free(conn, unit, task, now)
        else:
            applied, shortfall, expires = _start_hold(conn, unit, task, now)
    else:
        previous = conn.execute("SELECT chain_id, sequence FROM orders WHERE task_id = ?",
                                (order.supersedes_task_id,)).fetchone()
        if previous is None or tuple(previous) != (order.chain_id, order.sequence - 1):
            raise Refused("out_of_order", f"前序指令 {order.supersedes_task_id} 尚未执行"
                          f"（本指令序号 {order.sequence}）")
        hold = _hold(conn, order.chain_id)
        if hold is None:
            raise Refused("asset_not_found", "该指令链上没有本单位的冻结或查封")
        applied, shortfall, expires = _follow_hold(conn, task, hold, now)
    reference = _unit_reference(conn, unit, task.kind, now)
    conn.execute(
        "INSERT INTO orders (task_id, kind, chain_id, sequence, asset_type, reference,"
        " amount_ordered, amount_applied, unit_reference, applied_at)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (task.task_id, task.kind, order.chain_id, order.sequence, order.asset.asset_type,
         order.asset.reference, order.amount_fen, applied, reference, moment_text(now)))
    journal(conn, "order", now, task_id=task.task_id, account_number=order.asset.reference,
             amount_fen=applied)
    return wire.ControlOutcome(
        kind=task.kind,  # type: ignore[arg-type]  # a control task's kind is a control kind
        unit_reference=reference, applied_at=now, amount_ordered_fen=order.amount_fen,
        amount_applied_fen=applied if order.amount_fen is not None else None,
        expires_on=expires, shortfall_reason=shortfall)


_Applied = tuple[int | None, Shortfall | None, date | None]


def _start_hold(conn: sqlite3.Connection, unit: UnitProfile, task: wire.Task,
                now: datetime) -> _Applied:
    """A freeze or a seal: the first order of a chain."""
    order = task.control
    assert order is not None
    asset = order.asset
    expires = _expires(now, order.period_days)
    account: str | None = None
    if asset.asset_type in MONEY_ASSETS:
        account = _account_of(conn, unit, task, now)
        assert order.amount_fen is not None  # required for money by the wire model
        balance = _balance(conn, account)
        available = balance - _frozen_on(conn, account, china_day(now))
        frozen: int | None = max(0, min(order.amount_fen, available))
        assert frozen is not None
        shortfall = _shortfall(order.amount_fen, frozen, balance)
        ordered: int | None = order.amount_fen
        journal(conn, "freeze", now, task_id=task.task_id, account_number=account,
                 amount_fen=frozen)
    else:
        if not holdings.asset_held(asset.asset_type, asset.reference, unit_code=unit.code,
                                   id_number=task.subject.id_number):
            raise Refused("asset_not_found", f"被执行人名下无此财产：{asset.reference}")
        ordered = frozen = order.amount_fen  # a seal or an equity freeze holds what it names
        shortfall = None
        journal(conn, task.kind, now, task_id=task.task_id, account_number=asset.reference)
    conn.execute(
        "INSERT INTO holds (chain_id, task_id, standing_task_id, kind, asset_type, reference,"
        " id_number, account_number, amount_ordered, amount_frozen, expires_on, released,"
        " created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 0, ?)",
        (order.chain_id, task.task_id, task.task_id, task.kind, asset.asset_type,
         asset.reference, task.subject.id_number, account, ordered, frozen,
         expires.isoformat(), moment_text(now)))
    return frozen, shortfall, expires


def _deduct_free(conn: sqlite3.Connection, unit: UnitProfile, task: wire.Task,
                 now: datetime) -> _Applied:
    """A deduction of money no freeze holds (sequence 1)."""
    order = task.control
    assert order is not None and order.amount_fen is not None
    account = _account_of(conn, unit, task, now)
    balance = _balance(conn, account)
    available = balance - _frozen_on(conn, account, china_day(now))
    taken = max(0, min(order.amount_fen, available))
    _take(conn, task, account, taken, from_frozen=False, now=now)
    return taken, _shortfall(order.amount_fen, taken, balance), None


def _take(conn: sqlite3.Connection, task: wire.Task, account: str, amount: int, *,
          from_frozen: bool, now: datetime) -> None:
    assert task.control is not None
    conn.execute("UPDATE accounts SET balance_fen = balance_fen - ? WHERE account_number = ?",
                 (amount, account))
    conn.execute("INSERT INTO deductions (task_id, chain_id, account_number, amount_fen,"
                 " from_frozen, at) VALUES (?, ?, ?, ?, ?, ?)",
                 (task.task_id, task.control.chain_id, account, amount, int(from_frozen),
                  moment_text(now)))
    journal(conn, "deduct", now, task_id=task.task_id, account_number=account,
             amount_fen=amount)


def _follow_hold(conn: sqlite3.Connection, task: wire.Task, hold: _Hold,
                 now: datetime) -> _Applied:
    """A renewal, release or deduction that follows an applied order of the chain."""
    order = task.control
    assert order is not None
    today = china_day(now)
    lapsed = hold.expires_on is not None and hold.expires_on < today
    if task.kind == "release":
        if hold.released:
            raise Refused("already_released", f"该冻结（查封）已于此前解除：{hold.chain_id}")
        return _release(conn, task, hold, now)
    if hold.released:
        action = "扣划" if task.kind == "deduct" else "续冻"
        raise Refused("other", f"该冻结（查封）已解除，不能{action}")
    if lapsed:
        raise Refused("asset_not_found", f"该冻结（查封）已于 {hold.expires_on} 到期失效")
    if task.kind == "renew_freeze":
        return _renew(conn, task, hold, now)
    if task.kind == "deduct":
        return _deduct_frozen(conn, task, hold, now)
    raise Refused("other", f"{task.kind} 不能接在已有指令之后")


def _release(conn: sqlite3.Connection, task: wire.Task, hold: _Hold,
             now: datetime) -> _Applied:
    order = task.control
    assert order is not None
    frozen = hold.amount_frozen or 0
    if order.amount_fen is None or hold.account_number is None:
        released = frozen  # all of it; a seal is lifted whole
        hold.amount_frozen = 0 if hold.amount_frozen is not None else None
        hold.released = True
        applied = order.amount_fen  # a partial release of a seal: nothing partial to do
        shortfall: Shortfall | None = None
    else:
        released = min(order.amount_fen, frozen)
        hold.amount_frozen = frozen - released
        # The court lowers what the freeze aims at, so money arriving later is caught only
        # up to the rest.
        hold.amount_ordered = max(0, (hold.amount_ordered or 0) - order.amount_fen)
        hold.released = hold.amount_ordered == 0
        applied = released
        shortfall = "other" if released < order.amount_fen else None  # less was frozen
    _save_hold(conn, hold)
    journal(conn, "release", now, task_id=task.task_id, account_number=hold.account_number,
             amount_fen=released)
    return applied, shortfall, None


def _renew(conn: sqlite3.Connection, task: wire.Task, hold: _Hold, now: datetime) -> _Applied:
    order = task.control
    assert order is not None
    hold.expires_on = _expires(now, order.period_days)
    hold.standing_task_id = task.task_id
    applied = order.amount_fen
    shortfall: Shortfall | None = None
    if hold.account_number is not None and order.amount_fen is not None:
        account = hold.account_number
        frozen = hold.amount_frozen or 0
        balance = _balance(conn, account)
        if frozen < order.amount_fen:  # the renewal names more: freeze what is free
            available = balance - _frozen_on(conn, account, china_day(now))
            frozen += max(0, min(order.amount_fen - frozen, available))
        frozen = min(frozen, order.amount_fen)  # it names less: the rest is no longer held
        hold.amount_ordered = order.amount_fen
        hold.amount_frozen = frozen
        applied = frozen
        shortfall = _shortfall(order.amount_fen, frozen, balance)
    _save_hold(conn, hold)
    journal(conn, "renew", now, task_id=task.task_id, account_number=hold.account_number,
             amount_fen=hold.amount_frozen)
    return applied, shortfall, hold.expires_on


def _deduct_frozen(conn: sqlite3.Connection, task: wire.Task, hold: _Hold,
                   now: datetime) -> _Applied:
    order = task.control
    assert order is not None and order.amount_fen is not None
    if hold.account_number is None or hold.account_number != order.asset.reference:
        raise Refused("account_not_found", f"冻结所在账户不是 {order.asset.reference}")
    frozen = hold.amount_frozen or 0
    taken = min(order.amount_fen, frozen)
    hold.amount_frozen = frozen - taken
    hold.amount_ordered = max(0, (hold.amount_ordered or 0) - taken)  # that much is collected
    _save_hold(conn, hold)
    _take(conn, task, hold.account_number, taken, from_frozen=True, now=now)
    return taken, "insufficient_balance" if taken < order.amount_fen else None, None


# --- money arriving ----------------------------------------------------------------------------


@dataclass(frozen=True)
class CaughtMoney:
    """What one standing freeze caught of a credit: becomes one ``funds_arrived`` event."""

    chain_id: str
    related_task_id: str
    amount_frozen_fen: int


def catch_credit(conn: sqlite3.Connection, account_number: str, amount_fen: int,
                 now: datetime) -> list[CaughtMoney]:
    """Let the standing freezes of the account catch the money that just arrived (the balance
    already includes it), oldest freeze first. Every freeze in force is reported, also one
    that is already full (caught 0): the platform decides whether to freeze more."""
    today = china_day(now)
    holds = conn.execute(
        "SELECT chain_id FROM holds WHERE account_number = ? AND released = 0"
        " AND expires_on >= ? AND amount_ordered IS NOT NULL ORDER BY created_at, chain_id",
        (account_number, today.isoformat())).fetchall()
    caught: list[CaughtMoney] = []
    left = amount_fen
    for (chain_id,) in holds:
        hold = _hold(conn, chain_id)
        assert hold is not None and hold.amount_ordered is not None
        frozen = hold.amount_frozen or 0
        available = _balance(conn, account_number) - _frozen_on(conn, account_number, today)
        catch = max(0, min(left, hold.amount_ordered - frozen, available))
        if catch:
            hold.amount_frozen = frozen + catch
            _save_hold(conn, hold)
            journal(conn, "auto_freeze", now, task_id=hold.standing_task_id,
                     account_number=account_number, amount_fen=catch)
            left -= catch
        caught.append(CaughtMoney(chain_id, hold.standing_task_id, catch))
    return caught
