"""Reward offers: decided within 10 days, amount or percentage, published; rewards out of the
recovery to the first confirmed tip by submission time; never to the applicant's agent."""

from __future__ import annotations

from datetime import timedelta

from fastapi.testclient import TestClient
from hypothesis import given
from hypothesis import strategies as st

from tests.conftest import AuthHeaders
from tests.field.support import make_case, party
from zhixing.cases.service import today
from zhixing.core import clock
from zhixing.field.models import RewardOffer, RewardStatus
from zhixing.field.rewards import reward_amount


def _offer(client: TestClient, auth: AuthHeaders, case: dict[str, object],
           **body: object) -> dict[str, object]:
    resp = client.post(f"/api/v1/cases/{case['id']}/reward-offers",
                       headers=auth("qingxiu.officer"),
                       json={"applicant_party_id": party(case, "applicant"), **body})
    assert resp.status_code == 201, resp.text
    offer: dict[str, object] = resp.json()
    return offer


def _tip(client: TestClient, auth: AuthHeaders, case_id: object, relation: str = "other",
         outcome: str | None = "confirmed") -> int:
    resp = client.post("/api/v1/field/tips", headers=auth("qingxiu.approver"), json={
        "content": "线索", "case_id": case_id, "relation": relation,
        "tipster_name": "某人"})
    assert resp.status_code == 201, resp.text
    tip_id = int(resp.json()["id"])
    if outcome:
        resp = client.post(f"/api/v1/field/tips/{tip_id}/outcome",
                           headers=auth("qingxiu.approver"),
                           json={"outcome": outcome, "note": "核实"})
        assert resp.status_code == 200, resp.text
    return tip_id


def _recover(client: TestClient, auth: AuthHeaders, case_id: object, fen: int) -> None:
    resp = client.post(f"/api/v1/cases/{case_id}/money", headers=auth("qingxiu.officer"),
                       json={"kind": "recovered", "amount_fen": fen,
                             "on": today().isoformat()})
    assert resp.status_code == 201, resp.text


class TestRequest:
    def test_decided_within_ten_days(self, client: TestClient, auth: AuthHeaders) -> None:
        case = make_case(client, auth)
        offer = _offer(client, auth, case, amount_fen=500_000)
        assert offer["status"] == "requested" and offer["decision_overdue"] is False
        clock.set_offset(timedelta(days=10, minutes=1))
        late = client.get(f"/api/v1/field/reward-offers/{offer['id']}",
                          headers=auth("qingxiu.approver")).json()
        assert late["decision_overdue"] is True
        officer = client.post(f"/api/v1/field/reward-offers/{offer['id']}/decision",
                              headers=auth("qingxiu.officer"), json={"approve": True})
        assert officer.status_code == 403  # an approver decides
        resp = client.post(f"/api/v1/field/reward-offers/{offer['id']}/decision",
                           headers=auth("qingxiu.approver"), json={"approve": True})
        assert resp.status_code == 200 and resp.json()["status"] == "published"
        again = client.post(f"/api/v1/field/reward-offers/{offer['id']}/decision",
                            headers=auth("qingxiu.approver"), json={"approve": False})
        assert again.status_code == 409
        public = client.get("/api/v1/public/reward-offers").json()["items"]
        assert [o["case_number"] for o in public] == [case["case_number"]]
        assert "某人" not in str(public)

    def test_bad_requests(self, client: TestClient, auth: AuthHeaders) -> None:
        case = make_case(client, auth)
        url = f"/api/v1/cases/{case['id']}/reward-offers"
        h = auth("qingxiu.officer")
        both = client.post(url, headers=h, json={"applicant_party_id": party(case, "applicant"),
                                                 "amount_fen": 1, "percent_bp": 100})
        assert both.json()["error"]["code"] == "amount_or_percent"
        debtor = client.post(url, headers=h, json={"applicant_party_id": party(case, "debtor"),
                                                   "amount_fen": 100})
        assert debtor.json()["error"]["code"] == "not_an_applicant"
        too_much = client.post(url, headers=h, json={
            "applicant_party_id": party(case, "applicant"), "percent_bp": 10_001})
        assert too_much.status_code == 422
        _offer(client, auth, case, percent_bp=500)
        dup = client.post(url, headers=h, json={"applicant_party_id": party(case, "applicant"),
                                                "amount_fen": 100})
        assert dup.status_code == 409 and dup.json()["error"]["code"] == "offer_exists"
        other = client.post(url, headers=auth("liunan.officer"), json={
            "applicant_party_id": party(case, "applicant"), "amount_fen": 100})
        assert other.status_code == 404


class TestAward:
    def test_first_confirmed_tip_wins_and_agents_never(self, client: TestClient,
                                                       auth: AuthHeaders) -> None:
        case = make_case(client, auth)
        offer = _offer(client, auth, case, percent_bp=1_000)  # 10% of the recovery
        oid = offer["id"]
        client.post(f"/api/v1/field/reward-offers/{oid}/decision",
                    headers=auth("qingxiu.approver"), json={"approve": True})
        agent = _tip(client, auth, case["id"], relation="applicant_agent")
        unfounded = _tip(client, auth, case["id"], outcome="unfounded")
        first = _tip(client, auth, case["id"])
        second = _tip(client, auth, case["id"])
        ranking = client.get(f"/api/v1/field/reward-offers/{oid}",
                             headers=auth("qingxiu.approver")).json()["ranking"]
        assert [r["tip_id"] for r in ranking] == [agent, unfounded, first, second]
        assert [r["reason"] for r in ranking] == ["applicant_agent", "not_confirmed", None, None]
        url = f"/api/v1/field/reward-offers/{oid}/awards"
        h = auth("qingxiu.approver")
        assert client.post(url, headers=h, json={"tip_id": agent}).json()["error"][
            "code"] == "applicant_agent"
        assert client.post(url, headers=h, json={"tip_id": second}).json()["error"][
            "code"] == "not_first_in_rank"
        assert client.post(url, headers=h, json={"tip_id": first}).json()["error"][
            "code"] == "nothing_recovered"
        _recover(client, auth, case["id"], 1_234_567)
        resp = client.post(url, headers=h, json={"tip_id": first})
        assert resp.status_code == 201, resp.text
        assert resp.json()["award"] == {**resp.json()["award"], "tip_id": first,
                                        "amount_fen": 123_456, "recovered_fen": 1_234_567}
        assert client.post(url, headers=h, json={"tip_id": first}).status_code == 409

    def test_unpublished_offer_pays_nothing(self, client: TestClient, auth: AuthHeaders) -> None:
        case = make_case(client, auth)
        offer = _offer(client, auth, case, amount_fen=100)
        tip = _tip(client, auth, case["id"])
        resp = client.post(f"/api/v1/field/reward-offers/{offer['id']}/awards",
                           headers=auth("qingxiu.approver"), json={"tip_id": tip})
        assert resp.status_code == 409 and resp.json()["error"]["code"] == "offer_not_published"


@given(amount=st.one_of(st.none(), st.integers(1, 10**12)),
       percent=st.integers(1, 10_000), recovered=st.integers(1, 10**12))
def test_reward_never_exceeds_the_recovery(amount: int | None, percent: int,
                                           recovered: int) -> None:
    offer = RewardOffer(amount_fen=amount, percent_bp=None if amount else percent,
                        status=RewardStatus.PUBLISHED)
    paid = reward_amount(offer, recovered)
    assert 0 <= paid <= recovered
    if amount is not None:
        assert paid == min(amount, recovered)
