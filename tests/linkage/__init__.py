"""Example messages of linkage protocol v1 shared by the linkage tests (JSON-shaped dicts)."""

from __future__ import annotations

import copy
from datetime import UTC, datetime
from typing import Any

NOW = datetime(2026, 11, 26, 1, 30, tzinfo=UTC)

UNIT_KEY = "bank-gxnx-01"
UNIT_SECRET = b"unit-secret-for-tests-0123456789abcdef"
PLATFORM_KEY = "zhixing-2026"
PLATFORM_SECRET = b"platform-secret-for-tests-0123456789ab"

DEBTOR_RIC = "45010319850312123X"
SPOUSE_RIC = "450102199007010029"
COMPANY_USCC = "91450100MA5KX2P3YW"
OTHER_USCC = "91450103MA5L8QW21Q"

QUERY_TASK: dict[str, Any] = {
    "schema_version": "1",
    "task_id": "zt_01JDZ8Q3N5V2W9X4Y6A7B8C9D0",
    "kind": "deposits",
    "case_number": "（2025）桂0103执1234号",
    "court_code": "桂0103",
    "court_name": "南宁市青秀区人民法院",
    "officer": {"name": "黄志强", "certificate_number": "GX0103-0457"},
    "requested_at": "2026-11-26T09:30:00+08:00",
    "due_by": "2026-11-27T09:30:00+08:00",
    "subject": {"subject_type": "person", "name": "刘某", "id_kind": "ric",
                "id_number": DEBTOR_RIC},
    "purpose": "查明被执行人财产以供执行",
    "legal_basis": "《中华人民共和国民事诉讼法》第二百五十三条",
    "control": None,
}

FREEZE_TASK: dict[str, Any] = {
    **QUERY_TASK,
    "task_id": "zt_01JDZ9A0FREEZE0000000000001",
    "kind": "freeze",
    "purpose": "冻结被执行人存款",
    "legal_basis": "（2025）桂0103执1234号执行裁定书；《民事诉讼法》第二百五十三条",
    "control": {
        "chain_id": "zt_01JDZ9A0FREEZE0000000000001",
        "sequence": 1,
        "supersedes_task_id": None,
        "document_number": "（2025）桂0103执1234号之一",
        "asset": {"asset_type": "deposit_account", "reference": "6228480012345678901",
                  "institution": "广西农村信用社南宁市青秀区支行", "description": None},
        "amount_fen": 60_000_000,
        "period_days": 365,
    },
}

RELEASE_TASK: dict[str, Any] = {
    **FREEZE_TASK,
    "task_id": "zt_01JDZ9A0RELEASE000000000002",
    "kind": "release",
    "purpose": "解除冻结",
    "control": {
        **FREEZE_TASK["control"],
        "sequence": 2,
        "supersedes_task_id": "zt_01JDZ9A0FREEZE0000000000001",
        "document_number": "（2025）桂0103执1234号之二",
        "amount_fen": None,
        "period_days": None,
    },
}

PAYLOADS: dict[str, dict[str, Any]] = {
    "deposits": {"kind": "deposits", "accounts": [
        {"account_number": "6228480012345678901", "bank": "广西农村信用社",
         "branch": "青秀区支行", "balance_fen": 12_345_600, "currency": "CNY",
         "account_type": "demand", "wealth_product": None},
        {"account_number": "WM2024-0001", "bank": "广西农村信用社", "branch": "青秀区支行",
         "balance_fen": 5_000_000, "currency": "CNY", "account_type": "wealth_product",
         "wealth_product": {"product_code": "GXNX-WM-180", "product_name": "稳盈180天",
                            "value_fen": 5_000_000, "matures_on": "2027-03-01"}},
    ]},
    "real_estate": {"kind": "real_estate", "properties": [
        {"certificate_number": "桂(2019)南宁市不动产权第0123456号",
         "address": "南宁市青秀区民族大道100号1栋2单元1801号", "area_m2": "89.35",
         "usage": "住宅", "co_owners": ["李某"]},
    ]},
    "vehicles": {"kind": "vehicles", "vehicles": [
        {"plate_number": "桂A12345", "model": "大众帕萨特", "vin": "LSVAU2180N2123456",
         "registered_on": "2022-05-18"},
    ]},
    "business_registration": {"kind": "business_registration", "roles": [
        {"company_name": "南宁某某贸易有限公司", "credit_code": COMPANY_USCC,
         "role": "shareholder", "share_percent": "35.5", "capital_fen": 355_000_000},
        {"company_name": "南宁某某贸易有限公司", "credit_code": COMPANY_USCC,
         "role": "legal_representative", "share_percent": None, "capital_fen": None},
    ]},
    "securities": {"kind": "securities", "accounts": [
        {"account": "A123456789", "broker": "国海证券", "holdings": [
            {"code": "600519", "name": "贵州茅台", "quantity": 100},
            {"code": "000001", "name": "平安银行", "quantity": 5000},
        ]},
    ]},
    "household_registration": {"kind": "household_registration", "record": {
        "address": "南宁市青秀区东葛路1号", "household_head": "刘某", "members": [
            {"name": "刘某", "relation": "户主", "id_number": DEBTOR_RIC},
            {"name": "李某", "relation": "配偶", "id_number": None},
        ]}},
    "marriage_registration": {"kind": "marriage_registration", "record": {
        "status": "married", "spouse_name": "李某", "spouse_id_number": SPOUSE_RIC,
        "registered_on": "2012-10-01"}},
    "lodging": {"kind": "lodging", "stays": [
        {"hotel": "桂林某某酒店", "address": "桂林市七星区七星路8号",
         "check_in_at": "2026-09-10T21:04:00+08:00", "check_out_at": None},
    ]},
    "freeze": {"kind": "freeze", "unit_reference": "GXNX-DJ-2026-000123",
               "applied_at": "2026-11-26T09:41:07+08:00", "amount_ordered_fen": 60_000_000,
               "amount_applied_fen": 12_345_600, "expires_on": "2027-11-25",
               "shortfall_reason": "insufficient_balance"},
    "release": {"kind": "release", "unit_reference": "GXNX-JD-2026-000045",
                "applied_at": "2026-12-01T10:00:00+08:00", "amount_ordered_fen": None,
                "amount_applied_fen": None, "expires_on": None, "shortfall_reason": None},
}


def task(base: dict[str, Any] | None = None, **changes: Any) -> dict[str, Any]:
    data = copy.deepcopy(QUERY_TASK if base is None else base)
    data.update(changes)
    return data


def control_task(base: dict[str, Any], **control_changes: Any) -> dict[str, Any]:
    data = copy.deepcopy(base)
    data["control"].update(control_changes)
    return data


def result(task_id: str = QUERY_TASK["task_id"], kind: str = "deposits",
           **changes: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "schema_version": "1",
        "task_id": task_id,
        "status": "answered",
        "reported_at": "2026-11-26T09:42:00+08:00",
        "payload": copy.deepcopy(PAYLOADS[kind]),
        "refusal": None,
    }
    data.update(changes)
    return data


def event(**changes: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "schema_version": "1",
        "event_id": "GXNX-EV-20261212-000731",
        "kind": "funds_arrived",
        "related_task_id": FREEZE_TASK["task_id"],
        "account_number": "6228480012345678901",
        "currency": "CNY",
        "amount_fen": 48_000_000,
        "amount_frozen_fen": 47_654_400,
        "arrived_at": "2026-12-12T14:03:22+08:00",
    }
    data.update(changes)
    return data
