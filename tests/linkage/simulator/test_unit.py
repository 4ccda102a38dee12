"""A simulated unit against a fake platform over real HTTP: pull and push mode, the outbox,
and fault injection that must never make an order take effect twice."""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.linkage.simulator import (
    control,
    free_port,
    resident_id,
    subject_with_empty_account,
    task,
    unit_config,
)
from tests.linkage.simulator.fake_platform import FakePlatform
from zhixing.linkage import signing, wire
from zhixing.linkage.client import ServerError
from zhixing.linkage.simulator.config import UnitConfig
from zhixing.linkage.simulator.faults import Faults, SimulatorOptions
from zhixing.linkage.simulator.ledger import Ledger
from zhixing.linkage.simulator.unit import UnitSimulator, malformed_copy, profile_of

PULL = unit_config("bank-pull")
PUSH_PORT = free_port()
PUSH = unit_config("bank-push", mode="push",
                   push_url=f"http://127.0.0.1:{PUSH_PORT}/zhixing/push")


@pytest.fixture
def platform() -> Iterator[FakePlatform]:
    with FakePlatform([PULL, PUSH]) as fake:
        yield fake


class Harness:
    def __init__(self, platform: FakePlatform, unit: UnitConfig, tmp_path: Path,
                 **options: Any) -> None:
        self.platform = platform
        self.offset = timedelta(0)  # to move the unit's clock (and only it) forward
        self.ledger = Ledger.open(tmp_path, unit.code, profile_of(unit), clock=self.clock)
        options.setdefault("max_attempts", 1)
        options.setdefault("seed", 7)
        self.sim = UnitSimulator(unit, platform.base_url, self.ledger,
                                 SimulatorOptions(**options), clock=self.clock)
        self.code = unit.code

    def clock(self) -> datetime:
        return datetime.now(UTC) + self.offset

    def steps(self, count: int = 3) -> None:
        for _ in range(count):
            self.sim.step()

    def close(self) -> None:
        self.sim.client.close()
        self.ledger.close()


@pytest.fixture
def make(platform: FakePlatform, tmp_path: Path) -> Iterator[Any]:
    made: list[Harness] = []

    def factory(unit: UnitConfig = PULL, **options: Any) -> Harness:
        harness = Harness(platform, unit, tmp_path, **options)
        made.append(harness)
        return harness

    yield factory
    for harness in made:
        harness.close()


def funded(h: Harness, amount: int) -> tuple[str, str]:
    """A subject with an account holding exactly ``amount`` at the harness's unit."""
    id_number, account = subject_with_empty_account(profile_of(PULL if h.code == PULL.code
                                                               else PUSH))
    h.platform.add(h.code, task("deposits", id_number))
    h.steps(1)
    h.ledger.credit(account_number=account, amount_fen=amount)
    return id_number, account


def assert_applied_once(ledger: Ledger) -> None:
    assert all(o.times_applied == 1 for o in ledger.applied_orders())


# --- pull mode ---------------------------------------------------------------------------------


def test_pull_mode_fetches_stores_acks_answers_and_delivers(make: Any,
                                                             platform: FakePlatform) -> None:
    h = make()
    id_number, account = funded(h, 900_000)
    order = control("freeze", id_number, account, amount_fen=500_000)
    query = task("real_estate", resident_id())
    platform.add(h.code, order, query)
    h.steps(1)
    state = platform.state(h.code)
    assert {order.task_id, query.task_id} <= state.acked
    answers = h.ledger.answers()
    for item in (order, query):
        assert state.results[item.task_id] == answers[item.task_id].result
        assert answers[item.task_id].delivered and answers[item.task_id].acked
    assert h.ledger.pending_results() == []
    assert_applied_once(h.ledger)


def test_more_tasks_than_one_fetch_are_all_answered(make: Any, platform: FakePlatform) -> None:
    h = make(fetch_limit=5)
    queries = [task("vehicles", resident_id(sequence=n)) for n in range(12)]
    platform.add(h.code, *queries)
    assert h.sim.step() is True  # the platform said more are waiting
    h.steps(3)
    assert set(platform.state(h.code).results) == {q.task_id for q in queries}


def test_a_release_follows_its_freeze_and_money_is_reported(make: Any,
                                                             platform: FakePlatform) -> None:
    h = make()
    id_number, account = funded(h, 100_000)
    order = control("freeze", id_number, account, amount_fen=300_000)
    platform.add(h.code, order)
    h.steps(1)
    h.ledger.credit(account_number=account, amount_fen=250_000)
    h.steps(1)
    state = platform.state(h.code)
    [event] = state.events.values()
    assert (event.related_task_id, event.amount_fen, event.amount_frozen_fen) == (
        order.task_id, 250_000, 200_000)
    release = control("release", id_number, account, follows=order)
    platform.add(h.code, release)
    h.steps(1)
    assert state.results[release.task_id].status == "answered"
    assert h.ledger.totals()[account].frozen_fen == 0
    assert_applied_once(h.ledger)


def test_an_unreachable_platform_leaves_answers_in_the_outbox(make: Any,
                                                               platform: FakePlatform) -> None:
    h = make(poll_interval=0.01)
    query = task("lodging", resident_id())
    platform.add(h.code, query)
    h.sim.fetch_once()
    h.sim.process_due()
    platform.unavailable = 1
    with pytest.raises(ServerError, match="503"):
        h.sim.deliver_results()
    record = h.ledger.answers()[query.task_id]
    assert not record.delivered and record.send_attempts == 1 and record.last_error
    assert h.sim.deliver_results() == 0  # not yet: it waits before trying again
    h.offset = timedelta(seconds=1)
    assert h.sim.deliver_results() == 1
    assert h.ledger.answers()[query.task_id].delivered


def test_a_unit_that_is_redelivered_a_task_answers_the_same(make: Any,
                                                            platform: FakePlatform) -> None:
    h = make()
    id_number, account = funded(h, 50_000)
    order = control("deduct", id_number, account, amount_fen=20_000)
    platform.add(h.code, order)
    h.steps(1)
    state = platform.state(h.code)
    first = state.results[order.task_id]
    # The platform lost track and offers the task again (as if never acknowledged).
    state.acked.discard(order.task_id)
    del state.results[order.task_id]
    h.steps(2)
    assert state.results[order.task_id] == first
    assert h.ledger.answers()[order.task_id].deliveries == 2
    assert h.ledger.totals()[account].deducted_fen == 20_000
    assert_applied_once(h.ledger)


# --- faults ------------------------------------------------------------------------------------


def test_malformed_first_then_the_real_answer(make: Any, platform: FakePlatform) -> None:
    h = make(malformed_rate=1.0)
    id_number, account = funded(h, 10_000)
    order = control("freeze", id_number, account, amount_fen=5_000)
    platform.add(h.code, order)
    h.steps(2)
    state = platform.state(h.code)
    assert [(o, code) for t, o, code in state.result_posts if t == order.task_id] == [
        ("rejected", "invalid_result"), ("accepted", None)]
    assert_applied_once(h.ledger)


def test_malformed_copy_breaks_the_schema() -> None:
    good = wire.Result(schema_version="1", task_id="zt_00000001", status="refused",
                       reported_at=datetime.now(UTC),
                       refusal=wire.Refusal(code="other", message="不予协助"))
    body = wire.ResultBatch.model_construct(schema_version="1",
                                            results=[malformed_copy(good)]).model_dump_json()
    valid, bad = wire.split_result_batch(body.encode())
    assert valid == [] and bad[0].error is not None and bad[0].error.code == "invalid_result"


def test_duplicates_are_answered_duplicate_and_change_nothing(make: Any,
                                                              platform: FakePlatform) -> None:
    h = make(duplicate_rate=1.0)
    id_number, account = funded(h, 10_000)
    order = control("freeze", id_number, account, amount_fen=50_000)
    platform.add(h.code, order)
    h.steps(1)
    h.ledger.credit(account_number=account, amount_fen=1_000)
    h.steps(1)
    state = platform.state(h.code)
    assert state.outcomes(order.task_id) == ["accepted", "duplicate"]
    assert [o for _, o, _ in state.event_posts] == ["accepted", "duplicate"]
    assert_applied_once(h.ledger)


def test_the_fail_fault_answers_failed_in_pull_mode(make: Any, platform: FakePlatform) -> None:
    h = make(fail_rate=1.0)
    id_number, account = subject_with_empty_account(profile_of(PULL))
    order = control("freeze", id_number, account, amount_fen=5_000)
    platform.add(h.code, order)
    h.steps(1)
    result = platform.state(h.code).results[order.task_id]
    assert result.status == "failed" and result.refusal is not None
    assert result.refusal.code == "unit_error"
    assert h.ledger.applied_orders() == [] and h.ledger.holds() == []


def test_the_timeout_fault_leaves_a_task_unacknowledged_for_a_while(
        make: Any, platform: FakePlatform) -> None:
    h = make(timeout_rate=1.0, hang_seconds=0.3)
    query = task("securities", resident_id())
    platform.add(h.code, query)
    h.steps(2)
    state = platform.state(h.code)
    assert query.task_id not in state.acked and query.task_id not in state.results
    assert state.offers[query.task_id] == 2  # offered again: the unit stays silent
    platform.wait_for(lambda: (h.sim.step(), query.task_id in state.results)[1], timeout=5)
    assert h.ledger.answers()[query.task_id].deliveries >= 2


def test_random_faults_never_apply_an_order_twice(make: Any, platform: FakePlatform) -> None:
    h = make(malformed_rate=0.4, duplicate_rate=0.4, fail_rate=0.2, timeout_rate=0.2,
             hang_seconds=0.05, seed=11)
    id_number, account = funded(h, 10_000_000)
    chains = [control("freeze", id_number, account, amount_fen=1_000_000) for _ in range(6)]
    platform.add(h.code, *chains)
    state = platform.state(h.code)
    platform.wait_for(lambda: (h.sim.step(), all(c.task_id in state.results
                                                 for c in chains))[1])
    follow = [control("deduct", id_number, account, follows=c, amount_fen=400_000)
              for c in chains if state.results[c.task_id].status == "answered"]
    platform.add(h.code, *follow)
    for _ in range(3):  # the platform offers everything again, as after a lost answer
        state.acked.clear()
        h.steps(1)
    platform.wait_for(lambda: (h.sim.step(), all(f.task_id in state.results
                                                 for f in follow))[1])
    assert_applied_once(h.ledger)
    answered_deducts = [f for f in follow if state.results[f.task_id].status == "answered"]
    totals = h.ledger.totals()[account]
    assert totals.deducted_fen == 400_000 * len(answered_deducts)
    assert len(h.ledger.deductions()) == len(answered_deducts)
    for item in chains + follow:  # what the platform holds is what the unit did
        assert state.results[item.task_id] == h.ledger.answers()[item.task_id].result


# --- push mode ---------------------------------------------------------------------------------


@pytest.fixture
def pushed(make: Any) -> Iterator[Harness]:
    h = make(PUSH)
    server = h.sim.start_push_server()
    yield h
    server.stop()


def test_a_push_is_stored_and_answered_with_a_signed_202(pushed: Harness,
                                                         platform: FakePlatform) -> None:
    query = task("household_registration", resident_id())
    status, _, body = platform.push(PUSH.code, query)
    assert (status, body) == (202, b"")  # and the signature verified (inside push)
    assert pushed.ledger.answers()[query.task_id].acked
    pushed.steps(1)
    assert platform.state(PUSH.code).results[query.task_id].status == "answered"
    # A repeated push of the same task (the platform missed the 202) changes nothing.
    status, _, _ = platform.push(PUSH.code, query)
    assert status == 202 and pushed.ledger.answers()[query.task_id].deliveries == 2


def test_a_replayed_or_forged_push_is_refused(pushed: Harness, platform: FakePlatform) -> None:
    query = task("vehicles", resident_id())
    body = wire.TaskPush(schema_version="1", tasks=[query]).model_dump_json().encode()
    headers = signing.sign("POST", "/zhixing/push", body, PUSH.platform_key_id,
                           PUSH.platform_secret_bytes)
    assert platform.push(PUSH.code, query, replay=(headers, body))[0] == 202
    status, _, answer = platform.push(PUSH.code, query, replay=(headers, body))
    assert status == 401 and b"replayed_nonce" in answer
    forged = signing.sign("POST", "/zhixing/push", body, PUSH.platform_key_id, b"x" * 32)
    assert platform.push(PUSH.code, query, replay=(forged, body))[0] == 401
    assert platform.push(PUSH.code, query, target="/elsewhere")[0] == 404


def test_the_fail_fault_answers_503_to_a_push(make: Any, platform: FakePlatform) -> None:
    h = make(PUSH, fail_rate=1.0)
    server = h.sim.start_push_server()
    try:
        query = task("vehicles", resident_id())
        status, headers, _ = platform.push(PUSH.code, query)
        assert status == 503 and signing.HEADER_SIGNATURE not in headers
        assert h.ledger.answers() == {}
    finally:
        server.stop()


def test_the_timeout_fault_hangs_up_on_a_push(make: Any, platform: FakePlatform) -> None:
    h = make(PUSH, timeout_rate=1.0, hang_seconds=0.1)
    server = h.sim.start_push_server()
    try:
        with pytest.raises(httpx.RemoteProtocolError):
            platform.push(PUSH.code, task("vehicles", resident_id()))
        assert h.ledger.answers() == {}
    finally:
        server.stop()


def test_a_push_unit_runs_until_stopped(make: Any, platform: FakePlatform) -> None:
    h = make(PUSH, poll_interval=0.02, latency_ms=30)
    stop = threading.Event()
    runner = threading.Thread(target=h.sim.run, args=(stop,))
    runner.start()
    try:
        query = task("marriage_registration", resident_id())
        platform.wait_for(lambda: _push_ok(platform, query))
        platform.wait_for(lambda: query.task_id in platform.state(PUSH.code).results)
    finally:
        stop.set()
        runner.join(5)
    assert not runner.is_alive()
    with pytest.raises(httpx.ConnectError):  # the push server is gone
        httpx.post(PUSH.push_url or "", content=b"{}", timeout=1)


def _push_ok(platform: FakePlatform, query: wire.Task) -> bool:
    try:
        return platform.push(PUSH.code, query)[0] == 202
    except httpx.ConnectError:
        return False  # the server is not listening yet


def test_faults_dice_are_seeded_per_unit() -> None:
    options = SimulatorOptions(fail_rate=0.5, seed=3)
    rolls = [Faults(options, random.Random(f"3:{code}")) for code in "ab"]
    assert [r.fail() for r in rolls for _ in range(20)] != [False] * 40
    with pytest.raises(ValueError, match="probability"):
        SimulatorOptions(fail_rate=1.5)
    assert Faults(SimulatorOptions(latency_ms=100, jitter_ms=0)).latency() == 0.1
    assert Faults(SimulatorOptions()).latency() == 0.0


def test_a_failing_endpoint_does_not_hold_back_the_rest(make: Any, platform: FakePlatform,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    h = make()

    def no_events(events: Any) -> Any:
        raise ServerError("events endpoint down", attempts=1, status_code=503)

    monkeypatch.setattr(h.sim.client, "post_events", no_events)
    id_number, account = funded(h, 100)
    order = control("freeze", id_number, account, amount_fen=1_000)
    platform.add(h.code, order)
    h.steps(1)
    h.ledger.credit(account_number=account, amount_fen=10)
    query = task("vehicles", resident_id())
    platform.add(h.code, query)
    assert h.sim.step() is False  # no exception: the event waits in the outbox
    assert query.task_id in platform.state(h.code).results
    [record] = h.ledger.events()
    assert not record.delivered and record.send_attempts == 1


def test_push_handlers_do_not_leak_ledger_connections(pushed: Harness,
                                                      platform: FakePlatform) -> None:
    before = len(pushed.ledger._connections)
    for n in range(5):
        assert platform.push(PUSH.code, task("vehicles", resident_id(sequence=n)))[0] == 202
    # A handler thread closes its connection after it has answered: give it a moment.
    deadline = time.monotonic() + 5
    while len(pushed.ledger._connections) != before and time.monotonic() < deadline:
        time.sleep(0.01)
    assert len(pushed.ledger._connections) == before
