from __future__ import annotations

from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from tests.analytics.test_indicators import refresh
from tests.cases.factories import case_payload, day
from tests.conftest import AuthHeaders
from tests.web.test_console import login
from zhixing.analytics.models import SatisfactionSurvey
from zhixing.analytics.surveys import links_for_case
from zhixing.core.jobs import Worker


def _close_for_now(client: TestClient, h: dict[str, str]) -> int:
    c = client.post("/api/v1/cases", json=case_payload(filed_days_ago=120), headers=h).json()
    cid = int(c["id"])
    for to, ago in (("notice_served", 118), ("investigating", 116)):
        client.post(f"/api/v1/cases/{cid}/transitions",
                    json={"action": "advance", "to": to, "on": day(ago)}, headers=h)
    for kind in ("consumption_restriction", "dishonest_listing_decided", "network_query_done",
                 "debtor_search", "applicant_interview"):
        client.post(f"/api/v1/cases/{cid}/facts", json={"kind": kind, "on": day(5)}, headers=h)
    resp = client.post(f"/api/v1/cases/{cid}/transitions",
                       json={"action": "conclude", "conclusion": "closed_for_now"}, headers=h)
    assert resp.status_code == 200, resp.text
    return cid


def test_closed_for_now_opens_one_survey_per_party_and_each_answers_once(
        client: TestClient, auth: AuthHeaders, db: Session) -> None:
    cid = _close_for_now(client, auth("qingxiu.officer"))
    Worker().run_pending()
    Worker().run_pending()  # idempotent: still one survey per party
    links = links_for_case(db, cid)
    assert sorted(link["role"] for link in links) == ["applicant", "debtor"]
    path = links[0]["path"]
    client.cookies.clear()
    assert client.get(path).status_code == 200
    assert client.post(path, data={"score": "6"}).status_code == 422
    ok = client.post(path, data={"score": "5", "comment": "处理及时"})
    assert ok.status_code == 200 and "survey-thanks" in ok.text
    again = client.post(path, data={"score": "1"})
    assert again.status_code == 409
    assert client.get("/survey/not-a-code").status_code == 404
    scores = db.scalars(select(SatisfactionSurvey.score).where(
        SatisfactionSurvey.case_id == cid)).all()
    assert sorted(s for s in scores if s) == [5]
    login(client, "qingxiu.officer")
    assert path in client.get(f"/cases/{cid}").text
    refresh()
    body = client.get("/api/v1/indicators", params={"court": "桂0103"},
                      headers=auth("qingxiu.officer")).json()
    assert body["total"]["satisfaction_rate"] == 1.0
