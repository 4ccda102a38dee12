"""Builders shared by the simulator tests: units, subjects and tasks of every kind."""

from __future__ import annotations

import base64
import itertools
import socket
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from typing import Any

from stdnum.cn import ric

from zhixing.linkage import wire
from zhixing.linkage.simulator import holdings
from zhixing.linkage.simulator.bank import UnitProfile
from zhixing.linkage.simulator.config import UnitConfig

NOW = datetime(2026, 11, 26, 2, 0, tzinfo=UTC)
BANK = UnitProfile(code="bank-icbc", name="中国工商银行广西分行", unit_type="bank",
                   online_deduct=True)
COUNTER_BANK = UnitProfile(code="bank-gxnx", name="广西农村信用社", unit_type="bank",
                           online_deduct=False)
REGISTRY = UnitProfile(code="dept-vehicles", name="广西公安厅交通管理局", unit_type="department",
                       online_deduct=False)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def secret_text(seed: str) -> str:
    raw = (seed * 32).encode()[:32]
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def unit_config(code: str = "bank-icbc", *, mode: str = "pull", push_url: str | None = None,
                online_deduct: bool = True, **changes: Any) -> UnitConfig:
    data: dict[str, Any] = {
        "code": code, "name": "中国工商银行广西分行", "unit_type": "bank",
        "query_kinds": ["deposits"], "control_kinds": ["freeze", "renew_freeze", "release",
                                                       "deduct"],
        "delivery_mode": mode, "push_url": push_url, "key_id": f"{code}-01",
        "secret": secret_text(code), "platform_key_id": "zhixing-2026",
        "platform_secret": secret_text("platform-" + code), "online_deduct": online_deduct,
    }
    data.update(changes)
    return UnitConfig.model_validate(data)


def resident_id(born: date = date(1985, 3, 12), sequence: int = 123,
                region: str = "450103") -> str:
    body = f"{region}{born:%Y%m%d}{sequence:03d}"
    return body + ric.calc_check_digit(body + "0")


def resident_ids(start: int = 0) -> Iterator[str]:
    """Distinct valid resident IDs, the same sequence every time."""
    for n in itertools.count(start):
        yield resident_id(date(1960, 1, 1) + timedelta(days=n % 15000), n % 1000)


def subject_with_empty_account(unit: UnitProfile = BANK) -> tuple[str, str]:
    """(resident ID, account number) of a subject whose first account at ``unit`` is a demand
    account with a balance of 0, so a test can credit it any exact amount."""
    for number in resident_ids():
        accounts = holdings.deposit_accounts(unit.code, unit.name, number)
        if accounts and accounts[0].account_type == "demand" and accounts[0].balance_fen == 0:
            return number, accounts[0].account_number
    raise AssertionError("unreachable")


_ids = itertools.count(1)


def task_id(prefix: str = "zt") -> str:
    return f"{prefix}_{next(_ids):08d}_{datetime.now(UTC):%H%M%S%f}"


def task(kind: str, id_number: str, *, tid: str | None = None,
         control: dict[str, Any] | None = None, requested_at: datetime = NOW) -> wire.Task:
    person = holdings.is_person(id_number)
    return wire.Task.model_validate({
        "schema_version": "1", "task_id": tid or task_id(), "kind": kind,
        "case_number": "（2025）桂0103执1234号", "court_code": "桂0103",
        "court_name": "南宁市青秀区人民法院",
        "officer": {"name": "黄志强", "certificate_number": "GX0103-0457"},
        "requested_at": requested_at.isoformat(),
        "due_by": (requested_at + timedelta(days=1)).isoformat(),
        "subject": {"subject_type": "person" if person else "organisation",
                    "name": "刘某" if person else "南宁某某贸易有限公司",
                    "id_kind": "ric" if person else "uscc", "id_number": id_number},
        "purpose": "查明被执行人财产以供执行", "legal_basis": "《民事诉讼法》第二百五十三条",
        "control": control,
    })


def control(kind: str, id_number: str, reference: str, *, amount_fen: int | None = None,
            period_days: int | None = None, follows: wire.Task | None = None,
            asset_type: str = "deposit_account", tid: str | None = None,
            sequence: int | None = None) -> wire.Task:
    """A control task; ``follows``: the order it comes after in the chain (None: it starts one)."""
    tid = tid or task_id()
    if follows is None:
        chain_id, seq, supersedes = tid, 1, None
    else:
        assert follows.control is not None
        chain_id = follows.control.chain_id
        seq, supersedes = follows.control.sequence + 1, follows.task_id
    if period_days is None and kind in ("freeze", "renew_freeze", "seal"):
        period_days = wire.MAX_PERIOD_DAYS[asset_type]
    return task(kind, id_number, tid=tid, control={
        "chain_id": chain_id, "sequence": sequence or seq, "supersedes_task_id": supersedes,
        "document_number": "（2025）桂0103执1234号之一",
        "asset": {"asset_type": asset_type, "reference": reference, "institution": None,
                  "description": None},
        "amount_fen": amount_fen, "period_days": period_days,
    })
