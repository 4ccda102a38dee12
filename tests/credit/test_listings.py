"""Listing decisions, restrictions, deletion and correction through the API (RULES.md)."""

from __future__ import annotations

import random
from datetime import date, timedelta
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from tests.cases.factories import case_payload, company, person
from tests.conftest import PASSWORD, AuthHeaders, HttpClient
from zhixing.cases.service import today
from zhixing.core.db import transaction
from zhixing.credit import sweep
from zhixing.credit.activities import (
    CONSUMPTION_MASK,
    EXIT_MASK,
    LISTING_MASK,
    Activity,
    activities_of,
)
from zhixing.credit.models import Entry, FeedItem, ListingVersion
from zhixing.demo_data.identities import resident_id

OFFICER, APPROVER = "qingxiu.officer", "qingxiu.approver"
_rng = random.Random(7)


def _case(client: HttpClient, auth: AuthHeaders, debtor: dict[str, Any] | None = None,
          state: str = "investigating") -> dict[str, Any]:
    body = case_payload(filed_days_ago=60, debtors=[debtor or person(
        "李明", id_number=resident_id(_rng, born=date(1985, 5, 1)),
        )])
    r = client.post("/api/v1/cases", json=body, headers=auth(OFFICER))
    assert r.status_code == 201, r.text
    case = r.json()
    for step in ("notice_served", "investigating")[: ("notice_served", "investigating")
                                                    .index(state) + 1]:
        r = client.post(f"/api/v1/cases/{case['id']}/transitions",
                        json={"action": "advance", "to": step}, headers=auth(OFFICER))
        assert r.status_code == 200, r.text
    return dict(case)


def _debtor_id(case: dict[str, Any]) -> int:
    return int(next(p["id"] for p in case["parties"] if p["role"] == "debtor"))


def _propose(client: TestClient, auth: AuthHeaders, case: dict[str, Any], **kw: Any
             ) -> Any:
    body = {"party_id": _debtor_id(case), "ground": 1,
            "conduct": "有履行能力而拒不履行生效法律文书确定义务", **kw}
    return client.post(f"/api/v1/cases/{case['id']}/listings", json=body,
                       headers=auth(OFFICER))


def _listed(client: TestClient, auth: AuthHeaders, case: dict[str, Any], **kw: Any
            ) -> dict[str, Any]:
    r = _propose(client, auth, case, **kw)
    assert r.status_code == 201, r.text
    r = client.post(f"/api/v1/listings/{r.json()['id']}/decision", json={"approve": True},
                    headers=auth(APPROVER))
    assert r.status_code == 200, r.text
    return dict(r.json())


def _entries(db: Session) -> list[Entry]:
    db.expire_all()
    return list(db.scalars(select(Entry).order_by(Entry.id)))


def test_a_listing_is_proposed_approved_and_restricts(client: TestClient, auth: AuthHeaders,
                                                      db: Session) -> None:
    case = _case(client, auth)
    listing = _listed(client, auth, case)
    assert listing["status"] == "active" and listing["published"]
    assert listing["effective_on"] == today().isoformat() and listing["ends_on"] is None
    assert listing["decision_number"] == f"{case['case_number']}之一"
    # The consumption restriction comes with the listing, and both reach the entries.
    restrictions = client.get(f"/api/v1/cases/{case['id']}/restrictions",
                              headers=auth(OFFICER)).json()["items"]
    assert [(r["kind"], r["listing_id"], len(r["categories"])) for r in restrictions] == [
        ("consumption", listing["id"], 9)]
    masks = sorted(e.mask for e in _entries(db) if e.active)
    assert masks == sorted([LISTING_MASK, CONSUMPTION_MASK])
    # The 终本 conditions see the facts.
    facts = client.get(f"/api/v1/cases/{case['id']}", headers=auth(OFFICER)).json()["facts"]
    assert {"dishonest_listing_decided", "consumption_restriction"} <= set(facts)
    # The feed has one add per entry, numbered without gaps.
    seqs = list(db.scalars(select(FeedItem.seq).order_by(FeedItem.seq)))
    assert seqs == list(range(seqs[0], seqs[0] + 2))


def test_the_proposer_cannot_approve_and_a_minor_is_refused(client: TestClient,
                                                            auth: AuthHeaders,
                                                            db: Session) -> None:
    minor_born = today() - timedelta(days=365 * 17)
    case = _case(client, auth, person("李小", id_number=resident_id(_rng, born=minor_born)))

    r = _propose(client, auth, case, ground=2)
    assert r.status_code == 422 and r.json()["error"]["code"] == "minor"
    assert db.scalar(select(func.count()).select_from(ListingVersion)) == 0
    adult = _case(client, auth)
    r = _propose(client, auth, adult, ground=1, exclusions=["full_security"])
    assert r.status_code == 422 and r.json()["error"]["code"] == "excluded_full_security"
    lid = _propose(client, auth, adult).json()["id"]
    r = client.post(f"/api/v1/listings/{lid}/decision", json={"approve": True},
                    headers=auth("qingxiu.approver"))
    assert r.status_code == 200
    r = _propose(client, auth, adult)
    assert r.status_code == 409 and r.json()["error"]["code"] == "already_listed"


def test_an_applicant_request_is_decided_within_fifteen_days_and_may_be_refused(
        client: TestClient, auth: AuthHeaders) -> None:
    case = _case(client, auth)
    applicant = next(p["id"] for p in case["parties"] if p["role"] == "applicant")
    received = today() - timedelta(days=3)
    r = _propose(client, auth, case, origin="applicant", requested_by_party_id=applicant,
                 request_received_on=received.isoformat(), ground=4)
    assert r.status_code == 201, r.text
    assert r.json()["decide_by"] == (received + timedelta(days=15)).isoformat()
    r2 = client.post(f"/api/v1/listings/{r.json()['id']}/decision", json={"approve": False},
                     headers=auth(APPROVER))
    assert r2.status_code == 422  # a refusal says why
    r2 = client.post(f"/api/v1/listings/{r.json()['id']}/decision",
                     json={"approve": False, "note": "被执行人已提供担保"}, headers=auth(APPROVER))
    assert r2.json()["status"] == "refused"
    r3 = client.post(f"/api/v1/listings/{r.json()['id']}/decision", json={"approve": True},
                     headers=auth(APPROVER))
    assert r3.status_code == 409 and r3.json()["error"]["code"] == "listing_refused"
    r = _propose(client, auth, case, origin="applicant", requested_by_party_id=_debtor_id(case))
    assert r.status_code == 422 and r.json()["error"]["code"] == "not_an_applicant"


def test_fixed_period_grace_and_extension(client: TestClient, auth: AuthHeaders,
                                          db: Session) -> None:
    case = _case(client, auth)
    listing = _listed(client, auth, case, ground=3, grace_months=2)
    effective = date.fromisoformat(listing["effective_on"])
    assert listing["ends_on"] == effective.replace(year=effective.year + 2).isoformat()
    assert not listing["published"]
    # Not published: partners do not see the listing entry yet; the restriction is in force.
    assert [e.mask for e in _entries(db) if e.active] == [CONSUMPTION_MASK]
    r = client.post(f"/api/v1/listings/{listing['id']}/extension",
                    json={"years": 4, "reason": "多次违反"}, headers=auth(APPROVER))
    assert r.status_code == 422
    r = client.post(f"/api/v1/listings/{listing['id']}/extension",
                    json={"years": 2, "reason": "多次违反"}, headers=auth(APPROVER))
    assert r.json()["ends_on"] == effective.replace(year=effective.year + 4).isoformat()
    # The sweep publishes it when the grace period is over, and deletes it at the end.
    with transaction() as s:
        sweep.sweep(s, effective + timedelta(days=61))
    assert sorted(e.mask for e in _entries(db) if e.active) == sorted(
        [CONSUMPTION_MASK, LISTING_MASK])
    with transaction() as s:
        result = sweep.sweep(s, effective.replace(year=effective.year + 4))
    assert result.deleted == 1
    got = client.get(f"/api/v1/listings/{listing['id']}", headers=auth(OFFICER)).json()
    assert (got["status"], got["deletion_ground"]) == ("deleted", "period_ended")
    assert not any(e.active for e in _entries(db))
    actions = [v["action"] for v in client.get(f"/api/v1/listings/{listing['id']}/versions",
                                               headers=auth(OFFICER)).json()]
    assert actions == ["proposed", "approved", "extended", "deletion_detected", "deleted"]


def test_full_performance_is_detected_and_deleted_within_three_working_days(
        client: TestClient, auth: AuthHeaders, db: Session) -> None:
    case = _case(client, auth)
    listing = _listed(client, auth, case)
    r = client.post(f"/api/v1/listings/{listing['id']}/deletion",
                    json={"ground": "terminated"}, headers=auth(OFFICER))
    assert r.status_code == 422 and r.json()["error"]["code"] == "ground_not_detected"
    applied = 12_345_600 + 50_000 + 10_000
    r = client.post(f"/api/v1/cases/{case['id']}/money", headers=auth(OFFICER),
                    json={"kind": "recovered", "amount_fen": applied,
                          "on": today().isoformat()})
    assert r.status_code == 201, r.text
    with transaction() as s:
        assert sweep.sweep(s).detected == 1
    got = client.get(f"/api/v1/listings/{listing['id']}", headers=auth(OFFICER)).json()
    assert got["deletion_ground"] == "full_performance"
    assert got["deletion_due_on"] > today().isoformat()
    figures = client.get("/api/v1/credit/figures", headers=auth(OFFICER)).json()
    assert figures["deletions_due"] == 1 and figures["voluntary_share"] == 1.0
    r = client.post(f"/api/v1/listings/{listing['id']}/deletion",
                    json={"ground": "full_performance"}, headers=auth(OFFICER))
    assert r.status_code == 200 and r.json()["status"] == "deleted"
    # Full performance lifts every restriction; nobody is restricted any more.
    assert not any(e.active for e in _entries(db))
    items = client.get(f"/api/v1/cases/{case['id']}/restrictions",
                       headers=auth(OFFICER)).json()["items"]
    assert all(r["status"] == "lifted" for r in items)
    again = client.post(f"/api/v1/listings/{listing['id']}/deletion",
                        json={"ground": "full_performance"}, headers=auth(OFFICER))
    assert again.status_code == 409 and again.json()["error"]["code"] == "listing_deleted"


def test_an_organisation_binds_its_responsible_persons_with_exceptions(
        client: TestClient, auth: AuthHeaders, db: Session) -> None:
    rep = person("黄大海", id_number=resident_id(_rng, born=date(1985, 1, 1)))

    org = company("广西某物流有限公司", responsible_persons=[
        {"person": rep, "role": "legal_representative"}])
    case = _case(client, auth, org)
    r = client.post(f"/api/v1/cases/{case['id']}/restrictions", headers=auth(OFFICER),
                    json={"party_id": _debtor_id(case), "categories": ["luxury_transport",
                                                                       "trains"]})
    assert r.status_code == 201, r.text
    restriction = r.json()
    assert [b["role"] for b in restriction["bound_persons"]] == ["legal_representative"]
    person_id = restriction["bound_persons"][0]["party_id"]
    entries = {str(e.role): e for e in _entries(db)}
    assert set(activities_of(entries["legal_representative"].mask)) >= {Activity.FLIGHT,
                                                                          Activity.HIGH_SPEED_TRAIN}
    r = client.post(f"/api/v1/restrictions/{restriction['id']}/exceptions",
                    headers=auth(APPROVER), json={"person_id": person_id,
                                                  "activities": ["flight"],
                                                  "reason": "以个人财产支付就医出行"})
    assert r.status_code == 201, r.text
    entries = {str(e.role): e for e in _entries(db)}
    assert Activity.FLIGHT not in activities_of(entries["legal_representative"].mask)
    assert Activity.FLIGHT in activities_of(entries["debtor"].mask)
    bad = client.post(f"/api/v1/restrictions/{restriction['id']}/exceptions",
                      headers=auth(APPROVER), json={"person_id": person_id,
                                                    "activities": ["golf"], "reason": "x y"})
    assert bad.status_code == 422 and bad.json()["error"]["code"] == "not_restricted"
    exit_r = client.post(f"/api/v1/cases/{case['id']}/restrictions", headers=auth(OFFICER),
                         json={"party_id": _debtor_id(case), "kind": "exit"})
    assert exit_r.status_code == 201
    assert sum(1 for e in _entries(db) if e.mask == EXIT_MASK) == 2
    lifted = client.post(f"/api/v1/restrictions/{exit_r.json()['id']}/lift",
                         headers=auth(OFFICER), json={"reason": "security"})
    assert lifted.json()["status"] == "lifted"
    twice = client.post(f"/api/v1/restrictions/{exit_r.json()['id']}/lift",
                        headers=auth(OFFICER), json={"reason": "security"})
    assert twice.status_code == 409 and twice.json()["error"]["code"] == "already_lifted"


def test_correction_and_higher_review(client: TestClient, auth: AuthHeaders,
                                      db: Session) -> None:
    case = _case(client, auth)
    listing = _listed(client, auth, case)
    r = client.post(f"/api/v1/listings/{listing['id']}/corrections", headers=auth(OFFICER),
                    json={"filed_by_name": "李明", "grounds": "已提供足额担保"})
    assert r.status_code == 201, r.text
    corr = r.json()
    assert corr["review_due_on"] == (today() + timedelta(days=15)).isoformat()
    dup = client.post(f"/api/v1/listings/{listing['id']}/corrections", headers=auth(OFFICER),
                      json={"filed_by_name": "李明", "grounds": "再次申请"})
    assert dup.status_code == 409
    r = client.post(f"/api/v1/corrections/{corr['id']}/decision", headers=auth(APPROVER),
                    json={"upheld": False, "note": "担保不足额"})
    assert r.json()["status"] == "rejected"
    r = client.post(f"/api/v1/corrections/{corr['id']}/higher-review", headers=auth(OFFICER),
                    json={})
    assert r.json()["status"] == "higher_pending"
    # The listing stays in force meanwhile; Qingxiu may not decide for Nanning.
    assert client.get(f"/api/v1/listings/{listing['id']}",
                      headers=auth(OFFICER)).json()["status"] == "active"
    r = client.post(f"/api/v1/corrections/{corr['id']}/higher-decision",
                    headers=auth(APPROVER), json={"upheld": True, "note": "x y"})
    # Qingxiu sees the request (it is its listing's): a refusal, not a 404.
    assert r.status_code == 403 and r.json()["error"]["code"] == "role_forbidden"
    admin = auth("admin")
    made = client.post("/api/v1/users", headers=admin, json={
        "username": "nanning.approver", "display_name": "南宁审批", "court_code": "桂01",
        "password": PASSWORD, "roles": ["approver"]})
    assert made.status_code == 201, made.text
    r = client.post(f"/api/v1/corrections/{corr['id']}/higher-decision",
                    headers=auth("nanning.approver"), json={"upheld": True, "note": "担保足额"})
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "higher_upheld"
    got = client.get(f"/api/v1/listings/{listing['id']}", headers=auth(OFFICER)).json()
    assert got["status"] == "revoked"
    assert not any(e.active for e in _entries(db) if e.source_kind == "listing")
