"""A unit's ledger: answers given once, control orders applied exactly once and in chain order,
money frozen, released, deducted and caught as the protocol says."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.linkage.simulator import (
    BANK,
    COUNTER_BANK,
    NOW,
    REGISTRY,
    control,
    resident_id,
    resident_ids,
    subject_with_empty_account,
    task,
)
from zhixing.linkage import wire
from zhixing.linkage.simulator import bank, holdings
from zhixing.linkage.simulator.bank import UnitProfile
from zhixing.linkage.simulator.ledger import Ledger, LedgerError, ledger_path
from zhixing.linkage.simulator.runner import credit


class Clock:
    def __init__(self, now: datetime = NOW) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def ledger(tmp_path: Path, clock: Clock) -> Iterator[Ledger]:
    with Ledger.open(tmp_path, BANK.code, BANK, clock=clock) as opened:
        yield opened


def run(ledger: Ledger, item: wire.Task, **kwargs: Any) -> wire.Result:
    ledger.store_tasks([(item, ledger.now(), None)])
    return ledger.answer(item.task_id, **kwargs)


def outcome(result: wire.Result) -> wire.ControlOutcome:
    assert result.status == "answered", result.refusal
    assert isinstance(result.payload, wire.ControlOutcome)
    return result.payload


def refusal(result: wire.Result) -> str:
    assert result.status == "refused" and result.refusal is not None, result
    return result.refusal.code


@pytest.fixture
def funded(ledger: Ledger) -> tuple[str, str]:
    """A subject with one demand account holding exactly 1,000,000 fen."""
    id_number, account = subject_with_empty_account()
    run(ledger, task("deposits", id_number))
    ledger.credit(account_number=account, amount_fen=1_000_000)
    return id_number, account


def freeze(id_number: str, account: str, amount: int, **kw: Any) -> wire.Task:
    return control("freeze", id_number, account, amount_fen=amount, **kw)


# --- exactly once ------------------------------------------------------------------------------


def test_a_task_seen_twice_is_answered_the_same_and_applied_once(
        ledger: Ledger, funded: tuple[str, str], clock: Clock) -> None:
    id_number, account = funded
    order = freeze(id_number, account, 400_000)
    first = run(ledger, order)
    clock.now += timedelta(minutes=5)
    assert ledger.store_tasks([(order, clock.now, None)]) == []  # known: not stored again
    again = ledger.answer(order.task_id)
    assert again == first
    assert outcome(first).amount_applied_fen == 400_000
    assert len(ledger.holds()) == 1
    assert [(o.task_id, o.times_applied) for o in ledger.applied_orders()] == [
        (order.task_id, 1)]
    assert ledger.totals()[account].frozen_fen == 400_000
    assert ledger.answers()[order.task_id].deliveries == 2


def test_a_redelivered_answered_task_is_queued_to_be_sent_again(
        ledger: Ledger, funded: tuple[str, str]) -> None:
    id_number, account = funded
    order = freeze(id_number, account, 1)
    run(ledger, order)
    ledger.record_result_outcomes([wire.ItemOutcome(id=order.task_id, outcome="accepted")])
    assert order.task_id not in [p.result.task_id for p in ledger.pending_results()]
    ledger.store_tasks([(order, ledger.now(), None)])
    assert order.task_id in [p.result.task_id for p in ledger.pending_results()]


def test_concurrent_workers_apply_an_order_once(tmp_path: Path, clock: Clock) -> None:
    id_number, account = subject_with_empty_account()
    setup = Ledger.open(tmp_path, BANK.code, BANK, clock=clock)
    run(setup, task("deposits", id_number))
    setup.credit(account_number=account, amount_fen=500)
    order = control("deduct", id_number, account, amount_fen=300)
    setup.store_tasks([(order, clock.now, None)])
    answers: list[wire.Result] = []
    barrier = threading.Barrier(8)

    def worker() -> None:
        # Separate Ledger objects: separate connections, as separate processes would have.
        with Ledger.open(tmp_path, BANK.code, clock=clock) as own:
            barrier.wait()
            answers.append(own.answer(order.task_id))

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len({a.model_dump_json() for a in answers}) == 1
    totals = setup.totals()[account]
    assert (totals.deducted_fen, totals.balance_fen) == (300, 200)
    assert len(setup.deductions()) == 1
    setup.close()


def test_an_order_that_breaks_midway_is_rolled_back_and_answered_failed(
        ledger: Ledger, funded: tuple[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    id_number, account = funded

    def broken(conn: Any, *args: Any) -> Any:
        conn.execute("UPDATE accounts SET balance_fen = 0")  # half done ...
        raise RuntimeError("disk on fire")  # ... then the unit's system fails

    monkeypatch.setattr(bank, "apply_order", broken)
    result = run(ledger, control("deduct", id_number, account, amount_fen=10))
    assert result.status == "failed" and result.refusal is not None
    assert result.refusal.code == "unit_error"
    assert ledger.totals()[account].balance_fen == 1_000_000
    assert ledger.applied_orders() == []


def test_the_fail_fault_answers_failed_and_applies_nothing(
        ledger: Ledger, funded: tuple[str, str]) -> None:
    id_number, account = funded
    result = run(ledger, freeze(id_number, account, 100), fail=True)
    assert result.status == "failed"
    assert ledger.holds() == [] and ledger.applied_orders() == []


def test_an_unknown_task_cannot_be_answered(ledger: Ledger) -> None:
    with pytest.raises(LedgerError):
        ledger.answer("zt_never_stored")


# --- chain order -------------------------------------------------------------------------------


def test_a_release_before_its_freeze_is_out_of_order_and_final(
        ledger: Ledger, funded: tuple[str, str]) -> None:
    id_number, account = funded
    order = freeze(id_number, account, 100)
    release = control("release", id_number, account, follows=order)
    assert refusal(run(ledger, release)) == "out_of_order"
    outcome(run(ledger, order))
    # The refusal stands for that task id; the platform re-issues the release under a new id.
    assert refusal(ledger.answer(release.task_id)) == "out_of_order"
    again = control("release", id_number, account, follows=order)
    assert outcome(run(ledger, again)).kind == "release"
    assert ledger.totals()[account].frozen_fen == 0


def test_an_order_naming_the_wrong_sequence_is_out_of_order(
        ledger: Ledger, funded: tuple[str, str]) -> None:
    id_number, account = funded
    order = freeze(id_number, account, 100)
    outcome(run(ledger, order))
    skipping = control("release", id_number, account, follows=order, sequence=3)
    assert refusal(run(ledger, skipping)) == "out_of_order"
    assert ledger.holds()[0].released is False


def test_an_order_after_a_refused_freeze_is_out_of_order(
        ledger: Ledger, funded: tuple[str, str]) -> None:
    id_number, _ = funded
    order = freeze(id_number, "6200000000000000000", 100)  # not the subject's account
    assert refusal(run(ledger, order)) == "account_not_found"
    assert refusal(run(ledger, control("release", id_number, "6200000000000000000",
                                       follows=order))) == "out_of_order"


def test_a_second_release_is_already_released(ledger: Ledger, funded: tuple[str, str]) -> None:
    id_number, account = funded
    order = freeze(id_number, account, 100)
    run(ledger, order)
    outcome(run(ledger, control("release", id_number, account, follows=order)))
    assert refusal(run(ledger, control("release", id_number, account, follows=order))) == (
        "already_released")
    assert [o.kind for o in ledger.applied_orders()] == ["freeze", "release"]


# --- freezes -----------------------------------------------------------------------------------


def test_a_freeze_beyond_the_balance_freezes_what_is_there(
        ledger: Ledger, funded: tuple[str, str]) -> None:
    id_number, account = funded
    applied = outcome(run(ledger, freeze(id_number, account, 60_000_000)))
    assert (applied.amount_ordered_fen, applied.amount_applied_fen) == (60_000_000, 1_000_000)
    assert applied.shortfall_reason == "insufficient_balance"
    assert applied.expires_on == date(2026, 11, 26) + timedelta(days=364)
    assert applied.unit_reference.startswith("BANK-ICBC-DJ-2026-")


def test_a_second_freeze_gets_what_the_first_left(
        ledger: Ledger, funded: tuple[str, str]) -> None:
    id_number, account = funded
    run(ledger, freeze(id_number, account, 700_000))
    second = outcome(run(ledger, freeze(id_number, account, 500_000)))
    assert second.amount_applied_fen == 300_000
    assert second.shortfall_reason == "prior_freeze"
    assert ledger.totals()[account].frozen_fen == 1_000_000


def test_a_freeze_of_an_empty_account_stands_at_zero(ledger: Ledger) -> None:
    id_number, account = subject_with_empty_account()
    applied = outcome(run(ledger, freeze(id_number, account, 5_000)))
    assert applied.amount_applied_fen == 0
    assert applied.shortfall_reason == "insufficient_balance"
    assert ledger.holds()[0].amount_frozen_fen == 0 and not ledger.holds()[0].released


def test_a_wealth_product_is_frozen_by_its_own_asset_type(ledger: Ledger) -> None:
    id_number, product = next(
        (n, a) for n in resident_ids() for a in holdings.deposit_accounts(BANK.code, BANK.name, n)
        if a.account_type == "wealth_product")
    wrong = freeze(id_number, product.account_number, 100)
    assert refusal(run(ledger, wrong)) == "account_not_found"
    right = freeze(id_number, product.account_number, 100, asset_type="wealth_product")
    assert outcome(run(ledger, right)).amount_applied_fen == 100


def test_the_result_passes_the_platforms_checks(
        ledger: Ledger, funded: tuple[str, str]) -> None:
    id_number, account = funded
    order = freeze(id_number, account, 60_000_000)
    wire.check_result(order, run(ledger, order))


# --- renewals and releases ---------------------------------------------------------------------


def test_a_renewal_extends_the_freeze(ledger: Ledger, funded: tuple[str, str],
                                      clock: Clock) -> None:
    id_number, account = funded
    order = freeze(id_number, account, 400_000)
    run(ledger, order)
    clock.now += timedelta(days=300)
    renewal = control("renew_freeze", id_number, account, follows=order, amount_fen=400_000)
    renewed = outcome(run(ledger, renewal))
    assert renewed.expires_on == (NOW + timedelta(days=300)).date() + timedelta(days=364)
    assert renewed.amount_applied_fen == 400_000 and renewed.shortfall_reason is None
    hold = ledger.holds()[0]
    assert hold.standing_task_id == renewal.task_id and hold.expires_on == renewed.expires_on
    wire.check_result(renewal, run(ledger, renewal))


def test_a_renewal_after_the_freeze_lapsed_is_refused(
        ledger: Ledger, funded: tuple[str, str], clock: Clock) -> None:
    id_number, account = funded
    order = freeze(id_number, account, 400_000)
    run(ledger, order)
    clock.now += timedelta(days=400)
    renewal = control("renew_freeze", id_number, account, follows=order)
    assert refusal(run(ledger, renewal)) == "asset_not_found"
    assert ledger.totals()[account].frozen_fen == 0  # a lapsed freeze holds nothing


def test_a_partial_release(ledger: Ledger, funded: tuple[str, str]) -> None:
    id_number, account = funded
    order = freeze(id_number, account, 1_000_000)
    run(ledger, order)
    part = control("release", id_number, account, follows=order, amount_fen=300_000)
    released = outcome(run(ledger, part))
    assert (released.amount_ordered_fen, released.amount_applied_fen) == (300_000, 300_000)
    hold = ledger.holds()[0]
    assert (hold.amount_frozen_fen, hold.amount_ordered_fen, hold.released) == (
        700_000, 700_000, False)
    rest = control("release", id_number, account, follows=part)
    assert outcome(run(ledger, rest)).amount_applied_fen is None
    assert ledger.holds()[0].released
    totals = ledger.totals()[account]
    assert (totals.frozen_fen, totals.released_fen, totals.balance_fen) == (0, 1_000_000,
                                                                             1_000_000)


# --- deductions --------------------------------------------------------------------------------


def test_deduction_of_frozen_money(ledger: Ledger, funded: tuple[str, str]) -> None:
    id_number, account = funded
    order = freeze(id_number, account, 600_000)
    run(ledger, order)
    deduct = control("deduct", id_number, account, follows=order, amount_fen=250_000)
    taken = outcome(run(ledger, deduct))
    assert taken.amount_applied_fen == 250_000 and taken.expires_on is None
    totals = ledger.totals()[account]
    assert (totals.balance_fen, totals.frozen_fen, totals.deducted_fen) == (
        750_000, 350_000, 250_000)
    # More than is frozen: only the frozen money is taken, never the free money.
    more = control("deduct", id_number, account, follows=deduct, amount_fen=900_000)
    assert outcome(run(ledger, more)).amount_applied_fen == 350_000
    assert ledger.totals()[account].balance_fen == 400_000
    assert [d.from_frozen for d in ledger.deductions()] == [True, True]
    # The chain goes on after a deduction: the release follows it.
    outcome(run(ledger, control("release", id_number, account, follows=more)))


def test_deduction_of_free_money_leaves_frozen_money_alone(
        ledger: Ledger, funded: tuple[str, str]) -> None:
    id_number, account = funded
    run(ledger, freeze(id_number, account, 800_000))
    taken = outcome(run(ledger, control("deduct", id_number, account, amount_fen=500_000)))
    assert (taken.amount_applied_fen, taken.shortfall_reason) == (200_000, "prior_freeze")
    totals = ledger.totals()[account]
    assert (totals.balance_fen, totals.frozen_fen) == (800_000, 800_000)


def test_a_bank_without_online_deduction_refuses(tmp_path: Path) -> None:
    id_number, account = subject_with_empty_account(COUNTER_BANK)
    with Ledger.open(tmp_path, COUNTER_BANK.code, COUNTER_BANK) as counter:
        run(counter, task("deposits", id_number))
        counter.credit(account_number=account, amount_fen=100)
        order = freeze(id_number, account, 100)
        outcome(run(counter, order))
        for deduct in (control("deduct", id_number, account, amount_fen=50),
                       control("deduct", id_number, account, follows=order, amount_fen=50)):
            assert refusal(run(counter, deduct)) == "online_unsupported"
        assert counter.deductions() == [] and counter.totals()[account].balance_fen == 100


# --- money arriving ----------------------------------------------------------------------------


def test_money_arriving_under_a_standing_freeze_is_caught_and_reported(
        ledger: Ledger, funded: tuple[str, str], clock: Clock) -> None:
    id_number, account = funded
    order = freeze(id_number, account, 1_500_000)
    run(ledger, order)  # 1,000,000 frozen, 500,000 lacking
    clock.now += timedelta(days=3)
    arrived = ledger.credit(account_number=account, amount_fen=800_000)
    assert arrived.auto_frozen_fen == 500_000
    [event] = [e.event for e in ledger.events()]
    assert event.event_id == arrived.event_ids[0]
    assert (event.related_task_id, event.amount_fen, event.amount_frozen_fen) == (
        order.task_id, 800_000, 500_000)
    assert event.arrived_at == clock.now and event.currency == "CNY"
    # The freeze is full now: more money is still reported, with nothing caught.
    full = ledger.credit(account_number=account, amount_fen=1_000)
    assert full.auto_frozen_fen == 0 and len(full.event_ids) == 1
    assert ledger.events()[-1].event.amount_frozen_fen == 0
    totals = ledger.totals()[account]
    assert (totals.frozen_fen, totals.auto_frozen_fen, totals.credited_fen) == (
        1_500_000, 500_000, 1_801_000)
    assert totals.balance_fen == totals.initial_fen + totals.credited_fen - totals.deducted_fen
    # Event ids are unique and stable per credit.
    assert len({e.event.event_id for e in ledger.events()}) == 2


def test_events_wait_until_the_platform_has_the_freeze(
        ledger: Ledger, funded: tuple[str, str]) -> None:
    id_number, account = funded
    order = freeze(id_number, account, 2_000_000)
    run(ledger, order)
    ledger.credit(account_number=account, amount_fen=10)
    assert ledger.pending_events() == []
    ledger.record_result_outcomes([wire.ItemOutcome(id=order.task_id, outcome="accepted")])
    assert len(ledger.pending_events()) == 1


def test_no_standing_freeze_no_event(ledger: Ledger, funded: tuple[str, str]) -> None:
    id_number, account = funded
    assert ledger.credit(account_number=account, amount_fen=100).event_ids == []
    order = freeze(id_number, account, 5_000_000)
    run(ledger, order)
    run(ledger, control("release", id_number, account, follows=order))
    assert ledger.credit(account_number=account, amount_fen=100).event_ids == []
    assert ledger.events() == []


def test_a_renewed_freeze_reports_the_renewal(ledger: Ledger, funded: tuple[str, str]) -> None:
    id_number, account = funded
    order = freeze(id_number, account, 2_000_000)
    run(ledger, order)
    renewal = control("renew_freeze", id_number, account, follows=order, amount_fen=2_000_000)
    run(ledger, renewal)
    ledger.credit(account_number=account, amount_fen=100)
    assert ledger.events()[0].event.related_task_id == renewal.task_id


def test_two_freezes_on_one_account_catch_in_order(
        ledger: Ledger, funded: tuple[str, str]) -> None:
    id_number, account = funded
    run(ledger, freeze(id_number, account, 1_200_000))  # gets 1,000,000, lacks 200,000
    run(ledger, freeze(id_number, account, 300_000))  # gets 0, lacks 300,000
    caught = ledger.credit(account_number=account, amount_fen=400_000)
    assert [e.event.amount_frozen_fen for e in ledger.events()] == [200_000, 200_000]
    assert caught.auto_frozen_fen == 400_000 and len(caught.event_ids) == 2


def test_crediting_a_subject_picks_the_account_a_freeze_waits_on(ledger: Ledger) -> None:
    id_number = next(n for n in resident_ids()
                     if len([a for a in holdings.deposit_accounts(BANK.code, BANK.name, n)
                             if a.account_type != "wealth_product"]) >= 2)
    accounts = [a.account_number for a in holdings.deposit_accounts(BANK.code, BANK.name,
                                                                    id_number)
                if a.account_type != "wealth_product"]
    run(ledger, freeze(id_number, accounts[1], 10**12))
    assert ledger.credit(id_number=id_number, amount_fen=5).account_number == accounts[1]


def test_crediting_a_subject_without_accounts_opens_one(ledger: Ledger) -> None:
    id_number = next(n for n in resident_ids()
                     if not holdings.deposit_accounts(BANK.code, BANK.name, n))
    arrived = ledger.credit(id_number=id_number, amount_fen=7)
    assert ledger.accounts_of(id_number) == [arrived.account_number]
    answer = run(ledger, task("deposits", id_number)).payload
    assert isinstance(answer, wire.DepositsPayload)
    assert [(a.account_number, a.balance_fen) for a in answer.accounts] == [
        (arrived.account_number, 7)]


def test_crediting_an_unknown_account_is_an_error(ledger: Ledger) -> None:
    with pytest.raises(LedgerError, match="no account"):
        ledger.credit(account_number="6200000000000000000", amount_fen=1)
    with pytest.raises(ValueError, match="not both"):
        ledger.credit(amount_fen=1)


def test_the_credit_command_works_on_the_ledger_file(
        tmp_path: Path, ledger: Ledger, funded: tuple[str, str]) -> None:
    id_number, account = funded
    run(ledger, freeze(id_number, account, 3_000_000))
    arrived = credit(tmp_path, BANK.code, account_number=account, amount_fen=2_500_000)
    assert arrived.auto_frozen_fen == 2_000_000
    assert [e.event.event_id for e in ledger.events()] == arrived.event_ids
    with pytest.raises(LedgerError, match="no ledger"):
        credit(tmp_path, "bank-none", account_number=account, amount_fen=1)


# --- queries and other assets ------------------------------------------------------------------


@pytest.mark.parametrize("kind", wire.QUERY_KINDS)
def test_every_query_kind_is_answered(ledger: Ledger, kind: str) -> None:
    item = task(kind, resident_id())
    result = run(ledger, item)
    assert result.status == "answered" and result.payload is not None
    assert result.payload.kind == kind
    wire.check_result(item, result)


def test_deposits_are_answered_from_the_ledger(ledger: Ledger, funded: tuple[str, str]) -> None:
    id_number, account = funded
    payload = run(ledger, task("deposits", id_number)).payload
    assert isinstance(payload, wire.DepositsPayload)
    assert payload.accounts[0].account_number == account
    assert payload.accounts[0].balance_fen == 1_000_000  # the credit shows


def test_seals_of_held_and_unknown_assets(tmp_path: Path) -> None:
    id_number = next(n for n in resident_ids() if holdings.vehicles(REGISTRY.code, n))
    plate = holdings.vehicles(REGISTRY.code, id_number)[0].plate_number
    with Ledger.open(tmp_path, REGISTRY.code, REGISTRY) as registry:
        seal = control("seal", id_number, plate, asset_type="vehicle")
        sealed = outcome(run(registry, seal))
        assert sealed.amount_applied_fen is None and sealed.expires_on is not None
        assert refusal(run(registry, control("seal", id_number, "桂A·00000",
                                             asset_type="vehicle"))) == "asset_not_found"
        outcome(run(registry, control("release", id_number, plate, asset_type="vehicle",
                                      follows=seal)))
        assert registry.holds()[0].released


# --- the outbox and nonces ---------------------------------------------------------------------


def test_rejected_results_are_retried_with_backoff_unless_final(
        ledger: Ledger, clock: Clock) -> None:
    first, second = task("deposits", resident_id()), task("vehicles", resident_id())
    run(ledger, first)
    run(ledger, second)
    ledger.record_result_outcomes([
        wire.ItemOutcome(id=first.task_id, outcome="rejected", error=wire.ErrorDetail(
            code="invalid_result", message="?")),
        wire.ItemOutcome(id=second.task_id, outcome="rejected", error=wire.ErrorDetail(
            code="result_conflict", message="first answer stands"))])
    assert ledger.pending_results() == []  # waiting half a second
    clock.now += timedelta(seconds=1)
    assert [p.result.task_id for p in ledger.pending_results()] == [first.task_id]
    assert ledger.answers()[second.task_id].abandoned


def test_nonces_are_remembered_in_the_ledger(ledger: Ledger, tmp_path: Path,
                                            clock: Clock) -> None:
    keep = clock.now + timedelta(minutes=5)
    assert not ledger.nonce_seen("zhixing-2026", "n" * 32, keep)
    assert ledger.nonce_seen("zhixing-2026", "n" * 32, keep)
    with Ledger.open(tmp_path, BANK.code, clock=clock) as reopened:  # a restart
        assert reopened.nonce_seen("zhixing-2026", "n" * 32, keep)
    clock.now += timedelta(minutes=6)
    assert not ledger.nonce_seen("zhixing-2026", "n" * 32, clock.now + timedelta(minutes=5))


def test_a_ledger_belongs_to_one_unit(tmp_path: Path) -> None:
    Ledger.open(tmp_path, BANK.code, BANK).close()
    ledger_path(tmp_path, BANK.code).rename(ledger_path(tmp_path, "bank-other"))
    with pytest.raises(LedgerError, match="ledger of bank-icbc"):
        Ledger.open(tmp_path, "bank-other")
    profile = UnitProfile("bank-icbc", "工行", "bank", online_deduct=False)
    with Ledger.open(tmp_path / "x", BANK.code, profile) as fresh:
        assert fresh.unit == profile
