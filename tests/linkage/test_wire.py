"""The JSON messages of linkage protocol v1: valid and invalid examples of every schema."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel, ValidationError
from stdnum.cn import ric, uscc

from tests.linkage import (
    COMPANY_USCC,
    FREEZE_TASK,
    PAYLOADS,
    QUERY_TASK,
    RELEASE_TASK,
    control_task,
    event,
    result,
    task,
)
from zhixing.linkage import wire
from zhixing.linkage.wire import (
    AckRequest,
    BatchOutcome,
    Event,
    EventBatch,
    ItemOutcome,
    Result,
    ResultBatch,
    Task,
    TaskBatch,
    TaskPush,
    WireError,
)

ROOT = Path(__file__).resolve().parents[2]


def invalid(model: type[BaseModel], data: Any, match: str | None = None) -> None:
    with pytest.raises(ValidationError) as caught:
        model.model_validate_json(json.dumps(data, ensure_ascii=False))
    if match is not None:
        assert re.search(match, str(caught.value)), str(caught.value)


def valid(model: type[BaseModel], data: Any) -> Any:
    parsed = model.model_validate_json(json.dumps(data, ensure_ascii=False))
    again = model.model_validate_json(parsed.model_dump_json())
    assert again == parsed  # what we send parses back to the same message
    return parsed


# --- tasks -------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", wire.QUERY_KINDS)
def test_a_query_task_of_every_kind(kind: str) -> None:
    parsed = valid(Task, task(kind=kind))
    assert parsed.kind == kind
    assert parsed.control is None


def test_a_task_states_who_asks_why_and_on_what_basis() -> None:
    for field in ("purpose", "legal_basis", "officer", "case_number", "subject"):
        data = task()
        del data[field]
        invalid(Task, data, "Field required")
    invalid(Task, task(purpose="   "), "blank")
    invalid(Task, task(legal_basis=""), "at least 1 character")


@pytest.mark.parametrize(("changes", "match"), [
    ({"schema_version": "2"}, "schema_version"),
    ({"kind": "tax"}, "kind"),
    ({"surprise": 1}, "Extra inputs are not permitted"),
    ({"task_id": "short"}, "task_id"),
    ({"requested_at": "2026-11-26T09:30:00"}, "requested_at"),
    ({"requested_at": 1764120600}, "RFC 3339"),
    ({"requested_at": "26/11/2026"}, "RFC 3339"),
    ({"due_by": "2026-11-26T09:00:00+08:00"}, "due_by must be after requested_at"),
    ({"court_name": "南宁\n青秀"}, "control characters"),
    ({"purpose": " 查询"}, "leading or trailing"),
])
def test_invalid_tasks(changes: dict[str, Any], match: str) -> None:
    invalid(Task, task(**changes), match)


@pytest.mark.parametrize(("subject", "match"), [
    ({"id_number": "450103198503121239"}, "not a valid ric"),
    ({"id_number": "45010319850312123"}, "not a valid ric"),
    ({"subject_type": "organisation"}, "identifies a person"),
    ({"id_kind": "uscc", "id_number": COMPANY_USCC}, "identifies an organisation"),
    ({"id_kind": "uscc", "id_number": "91450100MA5KX2P3YX",
      "subject_type": "organisation"}, "not a valid uscc"),
    ({"id_kind": "passport"}, "id_kind"),
    ({"name": ""}, "at least 1 character"),
])
def test_invalid_subjects(subject: dict[str, Any], match: str) -> None:
    data = task()
    data["subject"].update(subject)
    invalid(Task, data, match)


@pytest.mark.parametrize("subject", [
    {"subject_type": "organisation", "name": "南宁某某贸易有限公司", "id_kind": "uscc",
     "id_number": COMPANY_USCC},
    {"subject_type": "organisation", "name": "某厂", "id_kind": "org_code",
     "id_number": "D2143569X"},
    {"subject_type": "person", "name": "刘某", "id_kind": "ric15", "id_number": "450103850312123"},
    {"subject_type": "person", "name": "John Smith", "id_kind": "other",
     "id_number": "E12345678"},
])
def test_valid_subjects(subject: dict[str, Any]) -> None:
    valid(Task, task(subject=subject))


@pytest.mark.parametrize(("number", "ok"), [
    ("45010319850312123X", True),
    ("450109195001010016", True),  # region code not yet in use in 1950: real, and accepted
    ("450103198502301239", False),  # 30 February
    ("45010319850312123x", False),
    ("450103198503121230", False),
])
def test_resident_ids_follow_the_hard_rules_only(number: str, ok: bool) -> None:
    assert wire.ric_valid(number) is ok
    if ok:
        assert ric.is_valid(number) or number.startswith("450109")


@pytest.mark.parametrize(("number", "ok"), [
    (COMPANY_USCC, True), ("91450100MA5KX2P3Y0", False), ("91450100ma5kx2p3yw", False),
    ("91450100MA5KX2P3Y", False)])
def test_credit_codes(number: str, ok: bool) -> None:
    assert wire.uscc_valid(number) is ok
    assert uscc.is_valid(number) is ok or number != number.upper()


def test_a_query_carries_no_control_order() -> None:
    invalid(Task, task(control=FREEZE_TASK["control"]), "carries no control order")


def test_a_control_task_carries_a_control_order() -> None:
    invalid(Task, task(FREEZE_TASK, control=None), "carries a control order")


def test_a_freeze_and_its_release() -> None:
    freeze = valid(Task, FREEZE_TASK)
    assert freeze.control.amount_fen == 60_000_000
    release = valid(Task, RELEASE_TASK)
    assert release.control.supersedes_task_id == freeze.task_id
    assert release.control.chain_id == freeze.task_id
    assert release.control.sequence == 2


@pytest.mark.parametrize(("base", "changes", "match"), [
    (FREEZE_TASK, {"sequence": 2}, "supersedes_task_id is given exactly"),
    (FREEZE_TASK, {"chain_id": "zt_someotherchain0001"}, "chain_id equal to its task_id"),
    (FREEZE_TASK, {"sequence": 2, "supersedes_task_id": "zt_01JDZ0000000000PREVIOUS",
                   "chain_id": "zt_01JDZ0000000000PREVIOUS"}, "starts a chain"),
    (RELEASE_TASK, {"sequence": 1, "supersedes_task_id": None}, "chain_id equal to its task_id"),
    (RELEASE_TASK, {"supersedes_task_id": None}, "supersedes_task_id is given exactly"),
    (RELEASE_TASK, {"supersedes_task_id": RELEASE_TASK["task_id"]}, "names an earlier task"),
    (RELEASE_TASK, {"period_days": 30}, "has no period_days"),
    (FREEZE_TASK, {"amount_fen": None}, "states amount_fen"),
    (FREEZE_TASK, {"amount_fen": 0}, "greater than or equal to 1"),
    (FREEZE_TASK, {"amount_fen": 600000.0}, "valid integer"),
    (FREEZE_TASK, {"amount_fen": "600000"}, "valid integer"),
    (FREEZE_TASK, {"period_days": None}, "states period_days"),
    (FREEZE_TASK, {"period_days": 366}, "at most 365 days"),
    (FREEZE_TASK, {"period_days": 1096}, "less than or equal to 1095"),
    (FREEZE_TASK, {"asset": {"asset_type": "real_estate", "reference": "桂(2019)第1号"}},
     "sealed, not frozen"),
    (FREEZE_TASK, {"sequence": 1001}, "less than or equal to 1000"),
])
def test_invalid_control_orders(base: dict[str, Any], changes: dict[str, Any],
                                match: str) -> None:
    invalid(Task, control_task(base, **changes), match)


def seal(asset_type: str, period_days: int) -> dict[str, Any]:
    return control_task(task(FREEZE_TASK, kind="seal"), amount_fen=None, period_days=period_days,
                        asset={"asset_type": asset_type, "reference": "桂A12345"})


@pytest.mark.parametrize(("asset_type", "longest"), [
    ("real_estate", 1095), ("vehicle", 730), ("movable", 730)])
def test_the_longest_seal_depends_on_the_asset(asset_type: str, longest: int) -> None:
    valid(Task, seal(asset_type, longest))
    if longest < 1095:
        invalid(Task, seal(asset_type, longest + 1), f"at most {longest} days")


@pytest.mark.parametrize(("asset_type", "longest"), [
    ("deposit_account", 365), ("wealth_product", 365), ("securities_account", 1095),
    ("equity", 1095), ("other_right", 1095)])
def test_the_longest_freeze_depends_on_the_asset(asset_type: str, longest: int) -> None:
    asset = {"asset_type": asset_type, "reference": "A123456789"}
    valid(Task, control_task(FREEZE_TASK, asset=asset, period_days=longest))
    if longest < 1095:
        invalid(Task, control_task(FREEZE_TASK, asset=asset, period_days=longest + 1),
                f"at most {longest} days")


def test_a_deposit_is_frozen_not_sealed() -> None:
    invalid(Task, seal("deposit_account", 30), "frozen, not sealed")


def test_a_renewal_follows_the_freeze_within_the_same_limit() -> None:
    renew = control_task(task(RELEASE_TASK, kind="renew_freeze"), period_days=365)
    valid(Task, renew)
    invalid(Task, control_task(task(RELEASE_TASK, kind="renew_freeze"), period_days=None),
            "states period_days")


@pytest.mark.parametrize(("changes", "match"), [
    ({}, None),
    ({"sequence": 3, "supersedes_task_id": "zt_01JDZ9A0RENEW00000000000002"}, None),
    ({"amount_fen": None}, "states amount_fen"),
    ({"period_days": 10}, "has no period_days"),
    ({"asset": {"asset_type": "securities_account", "reference": "A1"}}, "deposit account"),
])
def test_deductions(changes: dict[str, Any], match: str | None) -> None:
    data = control_task(task(FREEZE_TASK, kind="deduct"), **{"period_days": None, **changes})
    if changes.get("sequence"):
        data["task_id"] = "zt_01JDZ9A0DEDUCT00000000003"
    if match is None:
        valid(Task, data)
    else:
        invalid(Task, data, match)


# --- results -----------------------------------------------------------------------------------

PAYLOAD_TYPES = {
    "deposits": wire.DepositsPayload, "real_estate": wire.RealEstatePayload,
    "vehicles": wire.VehiclesPayload, "business_registration": wire.BusinessRegistrationPayload,
    "securities": wire.SecuritiesPayload,
    "household_registration": wire.HouseholdRegistrationPayload,
    "marriage_registration": wire.MarriageRegistrationPayload, "lodging": wire.LodgingPayload,
    "freeze": wire.ControlOutcome, "release": wire.ControlOutcome,
}


@pytest.mark.parametrize("kind", list(PAYLOADS))
def test_the_payload_union_dispatches_on_kind(kind: str) -> None:
    parsed = valid(Result, result(kind=kind))
    assert type(parsed.payload) is PAYLOAD_TYPES[kind]


def test_every_query_kind_has_an_example_payload() -> None:
    assert set(wire.QUERY_KINDS) <= set(PAYLOADS)


def test_an_unknown_payload_kind_is_refused() -> None:
    data = result()
    data["payload"]["kind"] = "tax"
    invalid(Result, data, "does not match any of the expected tags")


def test_a_payload_of_another_shape_is_refused() -> None:
    data = result()
    data["payload"] = {**PAYLOADS["vehicles"], "kind": "deposits"}
    invalid(Result, data, "accounts")


@pytest.mark.parametrize("kind", ["household_registration", "marriage_registration"])
def test_nothing_found_is_an_answer(kind: str) -> None:
    data = result(kind=kind)
    data["payload"]["record"] = None
    valid(Result, data)
    for list_kind, field in (("deposits", "accounts"), ("lodging", "stays")):
        data = result(kind=list_kind)
        data["payload"][field] = []
        valid(Result, data)


@pytest.mark.parametrize(("changes", "match"), [
    ({"payload": None}, "answered result has a payload"),
    ({"refusal": {"code": "other", "message": "x"}}, "answered result has a payload"),
    ({"status": "refused"}, "refused result has a refusal"),
    ({"status": "refused", "payload": None}, "refused result has a refusal"),
    ({"status": "failed", "payload": None, "refusal": {"code": "bogus", "message": "x"}},
     "code"),
    ({"status": "pending"}, "status"),
])
def test_status_payload_and_refusal_agree(changes: dict[str, Any], match: str) -> None:
    invalid(Result, result(**changes), match)


@pytest.mark.parametrize(("status", "code"), [
    ("refused", "subject_mismatch"), ("refused", "out_of_order"),
    ("refused", "online_unsupported"), ("failed", "unit_error")])
def test_refusals(status: str, code: str) -> None:
    valid(Result, result(status=status, payload=None,
                         refusal={"code": code, "message": "身份信息不一致"}))


def deposit(**changes: Any) -> dict[str, Any]:
    data = result()
    data["payload"]["accounts"][0].update(changes)
    return data


@pytest.mark.parametrize(("changes", "match"), [
    ({"balance_fen": -1}, "greater than or equal to 0"),
    ({"balance_fen": 12.5}, "valid integer"),
    ({"balance_fen": True}, "valid integer"),
    ({"balance_fen": 10**15 + 1}, "less than or equal to"),
    ({"currency": "RMB"}, "ISO 4217"),
    ({"currency": "cny"}, "ISO 4217"),
    ({"currency": "XTS"}, "ISO 4217"),
    ({"account_type": "wealth_product"}, "wealth_product is given exactly"),
    ({"account_number": "6228 4800"}, "account_number"),
])
def test_invalid_deposit_accounts(changes: dict[str, Any], match: str) -> None:
    invalid(Result, deposit(**changes), match)


@pytest.mark.parametrize("currency", ["USD", "HKD", "EUR", "JPY"])
def test_foreign_currency_accounts(currency: str) -> None:
    valid(Result, deposit(currency=currency))


def test_the_account_cap() -> None:
    account = PAYLOADS["deposits"]["accounts"][0]
    data = result()
    data["payload"]["accounts"] = [account] * wire.MAX_ACCOUNTS
    valid(Result, data)
    data["payload"]["accounts"] = [account] * (wire.MAX_ACCOUNTS + 1)
    invalid(Result, data, "at most 500 items")


@pytest.mark.parametrize(("area", "ok"), [
    ("89.35", True), ("0.5", True), ("1200", True), ("89.355", False), ("-1", False),
    ("089.3", False), ("1e3", False), (89.35, False), (8935, False)])
def test_areas_are_decimal_text_in_square_metres(area: Any, ok: bool) -> None:
    data = result(kind="real_estate")
    data["payload"]["properties"][0]["area_m2"] = area
    if ok:
        assert str(valid(Result, data).payload.properties[0].area) == area
    else:
        invalid(Result, data, "area_m2")


def test_the_co_owner_cap() -> None:
    data = result(kind="real_estate")
    data["payload"]["properties"][0]["co_owners"] = ["李某"] * (wire.MAX_CO_OWNERS + 1)
    invalid(Result, data, "at most 20 items")


@pytest.mark.parametrize(("vin", "ok"), [
    ("LSVAU2180N2123456", True), ("LSVAU2180N212345", False), ("LSVAU2180N212345I", False),
    ("LSVAO2180N2123456", False), ("lsvau2180n2123456", False)])
def test_vins(vin: str, ok: bool) -> None:
    data = result(kind="vehicles")
    data["payload"]["vehicles"][0]["vin"] = vin
    if ok:
        valid(Result, data)
    else:
        invalid(Result, data, "vin")


@pytest.mark.parametrize(("changes", "match"), [
    ({"share_percent": None}, "shareholder has share_percent"),
    ({"share_percent": "100.5"}, "share_percent"),
    ({"share_percent": 35.5}, "share_percent"),
    ({"credit_code": "91450100MA5KX2P3Y0"}, "credit code"),
    ({"role": "director"}, "belong to a shareholder"),
])
def test_invalid_business_roles(changes: dict[str, Any], match: str) -> None:
    data = result(kind="business_registration")
    data["payload"]["roles"][0].update(changes)
    invalid(Result, data, match)


@pytest.mark.parametrize("percent", ["0", "100", "100.0000", "33.3333", "5"])
def test_share_percentages(percent: str) -> None:
    data = result(kind="business_registration")
    data["payload"]["roles"][0]["share_percent"] = percent
    valid(Result, data)


def test_the_securities_caps() -> None:
    holding = PAYLOADS["securities"]["accounts"][0]["holdings"][0]
    data = result(kind="securities")
    data["payload"]["accounts"] = [{"account": f"A{i}", "holdings": [holding] * 1000}
                                   for i in range(2)]
    valid(Result, data)
    data["payload"]["accounts"].append({"account": "A9", "holdings": [holding]})
    invalid(Result, data, "at most 2000 holdings")
    data["payload"]["accounts"] = [{"account": "A1", "holdings": [holding] * 1001}]
    invalid(Result, data, "at most 1000 items")


@pytest.mark.parametrize(("record", "match"), [
    ({"status": "unmarried", "spouse_name": None, "spouse_id_number": None,
      "registered_on": None}, None),
    ({"status": "divorced", "spouse_name": "李某", "spouse_id_number": None,
      "registered_on": "2020-01-02"}, None),
    ({"status": "married", "spouse_name": None, "spouse_id_number": None,
      "registered_on": "2012-10-01"}, "names the \\(former\\) spouse"),
    ({"status": "unmarried", "spouse_name": "李某", "spouse_id_number": None,
      "registered_on": None}, "names no spouse"),
    ({"status": "married", "spouse_name": "李某", "spouse_id_number": None,
      "registered_on": "2012-10-01T00:00:00Z"}, "YYYY-MM-DD"),
])
def test_marriage_records(record: dict[str, Any], match: str | None) -> None:
    data = result(kind="marriage_registration")
    data["payload"]["record"] = record
    if match is None:
        valid(Result, data)
    else:
        invalid(Result, data, match)


def test_a_stay_ends_after_it_starts() -> None:
    data = result(kind="lodging")
    data["payload"]["stays"][0]["check_out_at"] = "2026-09-10T20:00:00+08:00"
    invalid(Result, data, "check_out_at is not before check_in_at")
    data["payload"]["stays"][0]["check_out_at"] = "2026-09-12T12:00:00+08:00"
    valid(Result, data)


def outcome(**changes: Any) -> dict[str, Any]:
    data = result(FREEZE_TASK["task_id"], "freeze")
    data["payload"].update(changes)
    return data


@pytest.mark.parametrize(("changes", "match"), [
    ({"amount_applied_fen": 60_000_001, "shortfall_reason": None}, "never more than"),
    ({"amount_applied_fen": 1, "shortfall_reason": None}, "shortfall_reason is given exactly"),
    ({"amount_applied_fen": 60_000_000}, "shortfall_reason is given exactly"),
    ({"amount_applied_fen": None}, "come together"),
    ({"amount_ordered_fen": None, "amount_applied_fen": None}, "explains an amount"),
    ({"amount_applied_fen": -5}, "greater than or equal to 0"),
    ({"expires_on": None}, "expires_on is given exactly"),
    ({"expires_on": "2026-11-25"}, "not before applied_at"),
    ({"unit_reference": "GXNX DJ"}, "unit_reference"),
])
def test_invalid_control_outcomes(changes: dict[str, Any], match: str) -> None:
    invalid(Result, outcome(**changes), match)


def test_valid_control_outcomes() -> None:
    valid(Result, outcome(amount_applied_fen=60_000_000, shortfall_reason=None))
    valid(Result, outcome(amount_applied_fen=0))  # stands on an empty account: catches arrivals
    release = result(RELEASE_TASK["task_id"], "release")
    valid(Result, release)
    release["payload"]["expires_on"] = "2027-01-01"
    invalid(Result, release, "expires_on is given exactly")


# --- events ------------------------------------------------------------------------------------


def test_an_event() -> None:
    parsed = valid(Event, event())
    assert parsed.amount_frozen_fen == 47_654_400


@pytest.mark.parametrize(("changes", "match"), [
    ({"amount_frozen_fen": 48_000_001}, "never more than amount_fen"),
    ({"amount_fen": 0}, "greater than or equal to 1"),
    ({"kind": "funds_left"}, "kind"),
    ({"event_id": ""}, "event_id"),
    ({"event_id": "has space"}, "event_id"),
    ({"related_task_id": None}, "related_task_id"),
    ({"arrived_at": "2026-12-12 14:03:22"}, "RFC 3339"),
])
def test_invalid_events(changes: dict[str, Any], match: str) -> None:
    invalid(Event, event(**changes), match)


# --- batches -----------------------------------------------------------------------------------


def test_batches_and_their_caps() -> None:
    valid(TaskBatch, {"schema_version": "1", "tasks": [QUERY_TASK, FREEZE_TASK], "more": False})
    valid(TaskBatch, {"schema_version": "1", "tasks": [], "more": False})
    invalid(TaskBatch, {"schema_version": "1", "tasks": [QUERY_TASK] * 101, "more": True},
            "at most 100 items")
    invalid(TaskBatch, {"schema_version": "1", "tasks": [], "more": 0}, "more")
    invalid(TaskPush, {"schema_version": "1", "tasks": []}, "at least 1 item")
    invalid(TaskPush, {"schema_version": "1", "tasks": [QUERY_TASK] * 2}, "appears once")
    ids = [f"zt_{i:010d}" for i in range(wire.MAX_ACK_IDS)]
    valid(AckRequest, {"schema_version": "1", "task_ids": ids})
    invalid(AckRequest, {"schema_version": "1", "task_ids": [*ids, "zt_extra_one"]},
            "at most 500 items")
    invalid(AckRequest, {"schema_version": "1", "task_ids": ids[:2] + ids[:1]}, "appears once")
    invalid(AckRequest, {"schema_version": "1", "task_ids": []}, "at least 1 item")
    invalid(ResultBatch, {"schema_version": "1", "results": [result(), result()]},
            "appears once")
    invalid(ResultBatch, {"schema_version": "1", "results": [result()] * 101},
            "at most 100 items")
    invalid(EventBatch, {"schema_version": "1", "events": [event(), event()]}, "appears once")


def test_item_outcomes() -> None:
    valid(BatchOutcome, {"schema_version": "1", "outcomes": [
        {"id": "zt_1234567890", "outcome": "accepted", "error": None},
        {"id": "zt_1234567891", "outcome": "duplicate", "error": None},
        {"id": "zt_1234567892", "outcome": "rejected",
         "error": {"code": "unknown_task", "message": "no such task for this unit"}},
    ]})
    invalid(ItemOutcome, {"id": "x", "outcome": "rejected", "error": None}, "rejected item")
    invalid(ItemOutcome, {"id": "x", "outcome": "accepted",
                          "error": {"code": "x", "message": ""}}, "rejected item")
    invalid(ItemOutcome, {"id": "x", "outcome": "rejected",
                          "error": {"code": "Bad Code", "message": ""}}, "code")


def body(key: str, items: list[Any], version: str = "1") -> bytes:
    return json.dumps({"schema_version": version, key: items}, ensure_ascii=False).encode()


def test_a_result_batch_is_checked_item_by_item() -> None:
    broken = result(task_id="zt_01JDZ8Q3BROKEN0000000000")
    broken["payload"]["accounts"][0]["balance_fen"] = -1
    second = result(task_id="zt_01JDZ8Q3SECOND0000000000")
    results, rejected = wire.split_result_batch(body("results", [
        result(), broken, second, result(), "not an object"]))
    assert [r.task_id for r in results] == [QUERY_TASK["task_id"], second["task_id"]]
    assert [(o.id, o.error.code if o.error else "") for o in rejected] == [
        (broken["task_id"], "invalid_result"),
        (QUERY_TASK["task_id"], "repeated_in_batch"),
        ("#4", "invalid_result"),
    ]
    assert rejected[0].error is not None
    assert "balance_fen" in rejected[0].error.message


def test_an_event_batch_is_checked_item_by_item() -> None:
    events, rejected = wire.split_event_batch(body("events", [
        event(), event(event_id="EV-2", amount_fen=0)]))
    assert [e.event_id for e in events] == ["GXNX-EV-20261212-000731"]
    assert [(o.id, o.outcome) for o in rejected] == [("EV-2", "rejected")]


@pytest.mark.parametrize(("raw", "code", "status"), [
    (b"not json", "validation_failed", 422),
    (b"[]", "validation_failed", 422),
    (body("results", [], "1"), "validation_failed", 422),
    (body("results", [{}] * 101), "validation_failed", 422),
    (body("results", [{}], "2"), "unsupported_schema_version", 422),
    (json.dumps({"schema_version": "1", "results": [{}], "x": 1}).encode(),
     "validation_failed", 422),
    (b" " * (wire.MAX_BODY_BYTES + 1), "payload_too_large", 413),
])
def test_a_bad_envelope_refuses_the_whole_batch(raw: bytes, code: str, status: int) -> None:
    with pytest.raises(WireError) as caught:
        wire.split_result_batch(raw)
    assert (caught.value.code, caught.value.status_code) == (code, status)


# --- rules between a task and its result -------------------------------------------------------


def test_check_result_against_its_task() -> None:
    freeze = Task.model_validate(FREEZE_TASK)
    good = Result.model_validate(outcome())
    wire.check_result(freeze, good)
    cases = [
        (result(kind="freeze"), "task_mismatch"),
        (result(FREEZE_TASK["task_id"], "deposits"), "kind_mismatch"),
        (outcome(amount_ordered_fen=1, amount_applied_fen=1, shortfall_reason=None),
         "amount_mismatch"),
        (outcome(expires_on="2027-11-27"), "period_exceeded"),
    ]
    for data, code in cases:
        with pytest.raises(WireError) as caught:
            wire.check_result(freeze, Result.model_validate(data))
        assert caught.value.code == code
    wire.check_result(freeze, Result.model_validate(outcome(expires_on="2027-11-26")))
    refused = result(FREEZE_TASK["task_id"], status="refused", payload=None,
                     refusal={"code": "account_not_found", "message": "销户"})
    wire.check_result(freeze, Result.model_validate(refused))


def test_a_duplicate_is_the_same_answer_stamped_again() -> None:
    first = Result.model_validate(result())
    again = Result.model_validate(result(reported_at="2026-11-26T10:00:00+08:00"))
    other = Result.model_validate(deposit(balance_fen=1))
    assert wire.same_content(first, again)
    assert not wire.same_content(first, other)


def test_python_values_are_accepted_as_well_as_json() -> None:
    parsed = Task.model_validate(QUERY_TASK)
    assert Task.model_validate(parsed.model_dump()) == parsed


# --- size: the largest valid result of each kind fits in one body ------------------------------

WIDE = "龘"


def text(n: int) -> str:
    return WIDE * n


def largest_payloads() -> dict[str, dict[str, Any]]:
    account = {"account_number": "9" * 40, "bank": text(128), "branch": text(128),
               "balance_fen": 10**15, "currency": "CNY", "account_type": "wealth_product",
               "wealth_product": {"product_code": "P" * 32, "product_name": text(128),
                                  "value_fen": 10**15, "matures_on": "2030-01-01"}}
    prop = {"certificate_number": text(64), "address": text(255), "area_m2": "9999999.99",
            "usage": text(64), "co_owners": [text(128)] * wire.MAX_CO_OWNERS}
    vehicle = {"plate_number": text(16), "model": text(128), "vin": "LSVAU2180N2123456",
               "registered_on": "2022-05-18"}
    role = {"company_name": text(128), "credit_code": COMPANY_USCC, "role": "shareholder",
            "share_percent": "33.3333", "capital_fen": 10**15}
    holding = {"code": "9" * 16, "name": text(64), "quantity": 10**15}
    member = {"name": text(128), "relation": text(32), "id_number": "9" * 32}
    stay = {"hotel": text(128), "address": text(255),
            "check_in_at": "2026-09-10T21:04:00.123456+08:00",
            "check_out_at": "2026-09-11T21:04:00.123456+08:00"}
    per_account = wire.MAX_HOLDINGS_TOTAL // wire.MAX_SECURITIES_ACCOUNTS
    return {
        "deposits": {"kind": "deposits", "accounts": [account] * wire.MAX_ACCOUNTS},
        "real_estate": {"kind": "real_estate", "properties": [prop] * wire.MAX_PROPERTIES},
        "vehicles": {"kind": "vehicles", "vehicles": [vehicle] * wire.MAX_VEHICLES},
        "business_registration": {"kind": "business_registration",
                                  "roles": [role] * wire.MAX_BUSINESS_ROLES},
        "securities": {"kind": "securities", "accounts": [
            {"account": "9" * 32, "broker": text(128), "holdings": [holding] * per_account}
        ] * wire.MAX_SECURITIES_ACCOUNTS},
        "household_registration": {"kind": "household_registration", "record": {
            "address": text(255), "household_head": text(128),
            "members": [member] * wire.MAX_HOUSEHOLD_MEMBERS}},
        "lodging": {"kind": "lodging", "stays": [stay] * wire.MAX_STAYS},
    }


@pytest.mark.parametrize("kind", list(largest_payloads()))
def test_the_largest_valid_result_fits_in_one_body(kind: str) -> None:
    parsed = Result.model_validate(result(payload=largest_payloads()[kind]))
    size = len(parsed.model_dump_json().encode())
    assert size <= wire.MAX_BODY_BYTES, size


# --- the examples in docs/linkage-protocol.md parse ---------------------------------------------

class PayloadExample(BaseModel):
    payload: wire.ResultPayload


def parse_payload(text: str) -> Any:
    return PayloadExample.model_validate_json(f'{{"payload": {text}}}').payload


DOC_MODELS: dict[str, Callable[[str], Any]] = {
    "Task": Task.model_validate_json, "Result": Result.model_validate_json,
    "Event": Event.model_validate_json, "TaskBatch": TaskBatch.model_validate_json,
    "TaskPush": TaskPush.model_validate_json, "AckRequest": AckRequest.model_validate_json,
    "ResultBatch": ResultBatch.model_validate_json,
    "EventBatch": EventBatch.model_validate_json,
    "BatchOutcome": BatchOutcome.model_validate_json,
    "ErrorBody": wire.ErrorBody.model_validate_json, "Payload": parse_payload,
}
EXAMPLE_RE = re.compile(r"<!-- wire: (\w+) -->\s*```json\n(.*?)```", re.DOTALL)


def test_every_json_example_in_the_docs_is_valid() -> None:
    doc = (ROOT / "docs" / "linkage-protocol.md").read_text(encoding="utf-8")
    examples = EXAMPLE_RE.findall(doc)
    seen = set()
    kinds = set()
    for name, example in examples:
        parsed = DOC_MODELS[name](example)
        seen.add(name)
        if name == "Payload":
            kinds.add(parsed.kind)
    assert seen == set(DOC_MODELS)
    assert set(wire.QUERY_KINDS) <= kinds, "an example payload of every query kind"
    assert doc.count("```json") == len(examples), "every JSON block is marked and checked"
