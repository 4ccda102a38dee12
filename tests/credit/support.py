"""Partners, list entries and screening indexes for the partner API tests.

Entries are made the way the platform makes them: a case registered through the API, then
``entries.sync`` (what the listing and restriction services call) in a transaction of its own.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from tests.cases.factories import case_payload, person
from tests.conftest import AuthHeaders
from zhixing.cases.models import Case, Party
from zhixing.core.actor import SYSTEM
from zhixing.core.db import transaction
from zhixing.courts import identity
from zhixing.courts.models import ClientKind
from zhixing.credit import entries, follower, partner_keys
from zhixing.credit import partners as registry
from zhixing.credit.activities import mask_of
from zhixing.credit.models import BoundRole, Entry, Partner, SourceKind

_source_ids = itertools.count(1000)


@pytest.fixture(autouse=True)
def fresh_indexes() -> Iterator[follower.ScreeningIndexes]:
    """Every test starts from an empty index (the database is emptied between tests), which
    catches up with the feed on every request (poll 0): deterministic without sleeps."""
    partner_keys.forget()  # keys of an earlier test's partners are gone with its rows
    indexes = follower.ScreeningIndexes(poll_seconds=0.0)
    follower.set_indexes(indexes)
    yield indexes
    follower.set_indexes(None)


@dataclass(frozen=True)
class Debtor:
    case_id: int
    party_id: int
    name: str
    id_number: str | None


def register_case(client: TestClient, auth: AuthHeaders,
                  debtors: Sequence[dict[str, Any]] | None = None) -> list[Debtor]:
    """A case of Qingxiu (桂0103) registered through the API; its debtors."""
    body = case_payload(filed_days_ago=30, debtors=list(debtors or [person()]))
    resp = client.post("/api/v1/cases", headers=auth("qingxiu.officer"), json=body)
    assert resp.status_code == 201, resp.text
    case = resp.json()
    return [Debtor(case["id"], p["id"], p["name"], p["id_number"])
            for p in case["parties"] if p["role"] == "debtor"]


def restrict(debtor: Debtor, activities: Sequence[str], *, source_id: int | None = None,
             active: bool = True) -> tuple[int, int]:
    """Bind the debtor with a restriction over ``activities`` (or lift it); returns
    (source id, entry id)."""
    source = next(_source_ids) if source_id is None else source_id
    with transaction() as session:
        case = session.get(Case, debtor.case_id)
        party = session.get(Party, debtor.party_id)
        assert case is not None and party is not None
        made = entries.sync(session, SourceKind.RESTRICTION, source, case,
                            [entries.Binding(party, BoundRole.DEBTOR, mask_of(activities))],
                            active=active)
        session.flush()
        return source, made[0].id


def onboard(*codes: str, **changes: Any) -> dict[str, dict[str, str]]:
    """The reference partners, with a key for each of ``codes`` (bearer headers)."""
    headers: dict[str, dict[str, str]] = {}
    with transaction() as session:
        registry.sync_partners(session)
        for code in codes:
            partner = session.scalar(select(Partner).where(Partner.code == code))
            assert partner is not None, code
            for name, value in changes.get(code, {}).items():
                setattr(partner, name, value)
            key_id, secret, _ = identity.issue_api_key(
                session, ClientKind.PARTNER, code, code, [], SYSTEM)
            headers[code] = {"Authorization": f"Bearer {key_id}.{secret}"}
    return headers


def partner_id(code: str) -> int:
    with transaction() as session:
        found = session.scalar(select(Partner.id).where(Partner.code == code))
        assert found is not None
        return found


def entry(entry_id: int) -> Entry:
    with transaction() as session:
        row = session.get(Entry, entry_id)
        assert row is not None
        session.expunge(row)
        return row
