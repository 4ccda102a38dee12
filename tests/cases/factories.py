"""Valid case payloads for tests, with real (check-digit-correct) identity numbers."""

from __future__ import annotations

import random
from datetime import date, timedelta
from typing import Any

from zhixing.cases.service import today
from zhixing.demo_data.identities import credit_code, resident_id

_rng = random.Random(20251126)


def person(name: str = "刘建国", **kw: Any) -> dict[str, Any]:
    return {"kind": "person", "name": name, "id_kind": "ric",
            "id_number": kw.pop("id_number", None) or resident_id(_rng), **kw}


def company(name: str = "广西某建设有限公司", **kw: Any) -> dict[str, Any]:
    return {"kind": "organisation", "name": name, "id_kind": "uscc",
            "id_number": kw.pop("id_number", None) or credit_code(_rng),
            "legal_representative": "黄某", **kw}


def case_payload(*, filed_days_ago: int = 0, **overrides: Any) -> dict[str, Any]:
    filed = today() - timedelta(days=filed_days_ago)
    body: dict[str, Any] = {
        "title_issuer": "南宁市青秀区人民法院",
        "title_document_number": "（2024）桂0103民初1001号",
        "title_date": (filed - timedelta(days=60)).isoformat(),
        "title_effective_date": (filed - timedelta(days=30)).isoformat(),
        "principal_fen": 12_345_600,
        "interest_fen": 50_000,
        "costs_fen": 10_000,
        "filed_on": filed.isoformat(),
        "officer_username": "qingxiu.officer",
        "applicants": [company("南宁某商贸有限公司")],
        "debtors": [person()],
    }
    body.update(overrides)
    return body


def day(n_days_ago: int) -> str:
    return (today() - timedelta(days=n_days_ago)).isoformat()


def fixed(d: date) -> str:
    return d.isoformat()
