"""The public dishonest-debtor list: only published listings, only published fields, rate-limited,
refusals with codes, and a page in both languages.

Listings are inserted as rows: the listing service is written elsewhere; what matters here is
what the public sees of a row in each state."""

from __future__ import annotations

import random
import re
import urllib.parse
import urllib.request
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from tests.cases.factories import case_payload, company, person
from tests.conftest import PASSWORD, AuthHeaders
from tests.support.browser import chromium
from tests.support.database import ScratchDatabase
from tests.support.server import api_post, running_server
from zhixing.cases.models import Case, CaseParty
from zhixing.cases.service import today
from zhixing.core import clock
from zhixing.credit import public
from zhixing.credit.models import Listing, ListingOrigin, ListingStatus
from zhixing.demo_data.identities import credit_code, resident_id

API = "/api/v1/public/dishonest"
ENTRY_KEYS = {
    "id", "kind", "name", "sex", "age", "id_number", "credit_code", "legal_representative",
    "court", "case_number", "filed_on", "title_issuer", "title_document_number",
    "obligation_yuan", "performed_yuan", "performance", "conduct", "ground", "ground_text",
    "published_on",
}
PAGE_KEYS = {"total", "total_capped", "page", "page_size", "pages", "entries"}

_rng = random.Random(20261126)


@dataclass
class Listed:
    case_id: int
    case_number: str
    party_id: int
    listing_id: int
    id_number: str


def _case(client: TestClient, auth: AuthHeaders, debtor: dict[str, Any]) -> dict[str, Any]:
    resp = client.post("/api/v1/cases", json=case_payload(filed_days_ago=120, debtors=[debtor]),
                       headers=auth("qingxiu.officer"))
    assert resp.status_code == 201, resp.text
    body: dict[str, Any] = resp.json()
    return body


def _list(db: Session, case_id: int, *, status: ListingStatus = ListingStatus.ACTIVE,
          publish_on: date | None = None, ground: int = 1,
          conduct: str = "有履行能力而拒不履行") -> int:
    case = db.get(Case, case_id)
    assert case is not None
    party_id = db.scalar(select(CaseParty.party_id).where(CaseParty.case_id == case_id,
                                                           CaseParty.role == "debtor"))
    assert party_id is not None
    on = today() - timedelta(days=30) if publish_on is None else publish_on
    listing = Listing(case_id=case_id, court_id=case.court_id, party_id=party_id, ground=ground,
                      conduct=conduct, status=status, origin=ListingOrigin.OFFICER,
                      decision_number="（2026）桂0103执1号之一", effective_on=on,
                      publish_on=on)
    db.add(listing)
    db.commit()
    return listing.id


def listed(client: TestClient, auth: AuthHeaders, db: Session, debtor: dict[str, Any] | None
           = None, **kw: Any) -> Listed:
    debtor = debtor or person()
    case = _case(client, auth, debtor)
    lid = _list(db, case["id"], **kw)
    party = db.scalar(select(CaseParty.party_id).where(CaseParty.case_id == case["id"],
                                                       CaseParty.role == "debtor"))
    assert party is not None
    return Listed(case["id"], case["case_number"], party, lid, debtor["id_number"])


def found(client: TestClient, name: str, **params: Any) -> dict[str, Any]:
    resp = client.get(API, params={"name": name, **params})
    assert resp.status_code == 200, resp.text
    body: dict[str, Any] = resp.json()
    return body


class TestPublished:
    def test_only_published_listings_appear(self, client: TestClient, auth: AuthHeaders,
                                            db: Session) -> None:
        debtor = person("韦公开")
        shown = listed(client, auth, db, debtor)
        future = today() + timedelta(days=20)
        hidden = [_list(db, shown.case_id, status=s) for s in (
            ListingStatus.PROPOSED, ListingStatus.REFUSED, ListingStatus.DELETED,
            ListingStatus.REVOKED)]
        hidden.append(_list(db, shown.case_id, publish_on=future))  # in its grace period
        assert len(hidden) == 5
        body = found(client, "韦公开")
        assert body["total"] == 1 and [e["case_number"] for e in body["entries"]] == [
            shown.case_number]
        assert found(client, "韦公")["total"] == 0  # exact names only
        assert found(client, "韦公开公")["total"] == 0

    def test_a_deleted_listing_disappears(self, client: TestClient, auth: AuthHeaders,
                                          db: Session) -> None:
        one = listed(client, auth, db, person("覃删除"))
        assert found(client, "覃删除")["total"] == 1
        db.execute(update(Listing).where(Listing.id == one.listing_id).values(
            status=ListingStatus.DELETED, deleted_on=today()))
        db.commit()
        body = found(client, "覃删除")
        assert body == {"total": 0, "total_capped": False, "page": 1, "page_size": 20,
                        "pages": 1, "entries": []}

    def test_grace_period_is_honoured(self, client: TestClient, auth: AuthHeaders,
                                      db: Session) -> None:
        listed(client, auth, db, person("蒙宽限"), publish_on=today() + timedelta(days=30))
        assert found(client, "蒙宽限")["total"] == 0
        clock.set_offset(timedelta(days=29))
        assert found(client, "蒙宽限")["total"] == 0
        clock.set_offset(timedelta(days=30))  # published on the day the grace period ends
        assert found(client, "蒙宽限")["total"] == 1


class TestFields:
    def test_a_person_shows_only_what_the_rules_publish(self, client: TestClient,
                                                        auth: AuthHeaders, db: Session) -> None:
        born = date(1985, 3, 7)
        number = resident_id(_rng, region="450103", born=born, sex="M")
        one = listed(client, auth, db, person("黄字段", id_number=number, address="青秀区某路1号",
                                              phone="13800000000"), ground=4,
                     conduct="违反财产报告制度")
        resp = client.get(API, params={"name": "黄字段"})
        body = resp.json()
        assert set(body) == PAGE_KEYS
        entry = body["entries"][0]
        assert set(entry) == ENTRY_KEYS
        on = today()
        age = on.year - 1985 - ((on.month, on.day) < (3, 7))
        assert entry["kind"] == "person" and entry["sex"] == "M" and entry["age"] == age
        assert entry["id_number"] == f"{number[:10]}****{number[-4:]}" == \
            f"4501031985****{number[-4:]}"
        assert entry["credit_code"] is None and entry["legal_representative"] is None
        assert entry["court"] == "南宁市青秀区人民法院"
        assert entry["case_number"] == one.case_number
        assert entry["title_issuer"] == "南宁市青秀区人民法院"
        assert entry["title_document_number"] == "（2024）桂0103民初1001号"
        assert entry["obligation_yuan"] == "124056.00"  # 123,456.00 + 500.00 + 100.00
        assert entry["performed_yuan"] == "0.00" and entry["performance"] == "unperformed"
        assert entry["ground"] == 4 and entry["ground_text"] == "违反财产报告制度"
        assert entry["conduct"] == "违反财产报告制度"
        assert entry["published_on"] == (on - timedelta(days=30)).isoformat()
        # Nothing private anywhere in the answer: not the full number, the birth date, the
        # address, the phone, nor an internal id.
        for secret in (number, "03-07", "0307", "青秀区某路1号", "13800000000"):
            assert secret not in resp.text
        assert not re.fullmatch(r"\d+", entry["id"])
        assert str(one.listing_id) != entry["id"] and str(one.party_id) != entry["id"]

    def test_an_organisation_shows_its_credit_code_and_representative(
            self, client: TestClient, auth: AuthHeaders, db: Session) -> None:
        code = credit_code(_rng)
        listed(client, auth, db, company("南宁某某建材有限公司", id_number=code,
                                         legal_representative="梁某"))
        entry = found(client, "南宁某某建材有限公司")["entries"][0]
        assert set(entry) == ENTRY_KEYS
        assert entry["kind"] == "organisation" and entry["credit_code"] == code
        assert entry["legal_representative"] == "梁某"
        assert entry["sex"] is None and entry["age"] is None and entry["id_number"] is None

    def test_performance_follows_the_money_recovered(self, client: TestClient,
                                                     auth: AuthHeaders, db: Session) -> None:
        one = listed(client, auth, db, person("陆履行"))
        db.execute(update(Case).where(Case.id == one.case_id).values(recovered_fen=2_000_050))
        db.commit()
        entry = found(client, "陆履行")["entries"][0]
        assert entry["performance"] == "partly_performed"
        assert entry["performed_yuan"] == "20000.50"

    def test_masking(self) -> None:
        assert public.mask_id_number("45010319850307123X") == "4501031985****123X"
        assert public.mask_id_number("450103850307123") == "45010385****123"
        assert public.mask_id_number("E12345678") == "E123*5678"
        assert public.mask_id_number(None) is None


class TestNarrowing:
    def test_id_number_picks_one_of_two_namesakes(self, client: TestClient,
                                                  auth: AuthHeaders, db: Session) -> None:
        a = listed(client, auth, db, person("李同名"))
        b = listed(client, auth, db, person("李同名"))
        assert found(client, "李同名")["total"] == 2
        only_b = found(client, "李同名", id_number=b.id_number.lower())
        assert [e["case_number"] for e in only_b["entries"]] == [b.case_number]
        other = resident_id(_rng)
        assert other not in (a.id_number, b.id_number)
        assert found(client, "李同名", id_number=other)["total"] == 0
        # The number of someone else with another name finds nothing either.
        assert found(client, "王别人", id_number=a.id_number)["total"] == 0

    def test_province_of_the_court_or_of_the_id(self, client: TestClient, auth: AuthHeaders,
                                                db: Session) -> None:
        beijing_id = resident_id(_rng, region="110101")
        listed(client, auth, db, person("赵省份", id_number=beijing_id))
        assert found(client, "赵省份", province="45")["total"] == 1  # a Guangxi court
        assert found(client, "赵省份", province="11")["total"] == 1  # a Beijing ID
        assert found(client, "赵省份", province="44")["total"] == 0

    def test_pages_and_the_capped_count(self, client: TestClient, auth: AuthHeaders,
                                        db: Session, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setattr(public, "PAGE_SIZE", 2)
        monkeypatch.setattr(public, "COUNT_CAP", 4)
        monkeypatch.setattr(public, "MAX_PAGE", 2)
        one = listed(client, auth, db, person("周分页"), publish_on=today() - timedelta(days=9))
        for k in range(4):
            _list(db, one.case_id, publish_on=today() - timedelta(days=k))
        first = found(client, "周分页")
        assert first["total"] == 4 and first["total_capped"] is True
        assert first["pages"] == 2 and len(first["entries"]) == 2
        second = found(client, "周分页", page=2)
        dates = [e["published_on"] for e in first["entries"] + second["entries"]]
        assert dates == sorted(dates, reverse=True)  # newest first
        assert len({e["id"] for e in first["entries"] + second["entries"]}) == 4
        assert client.get(API, params={"name": "周分页", "page": 3}).json()["error"][
            "code"] == "invalid_page"


class TestRefusals:
    @pytest.mark.parametrize(("params", "code"), [
        ({}, "name_required"),
        ({"name": "  "}, "name_required"),
        ({"name": "王"}, "invalid_name"),
        ({"name": "王" * 65}, "invalid_name"),
        ({"name": "王伟", "id_number": "4501"}, "invalid_id_number"),
        ({"name": "王伟", "id_number": "450103198503071230"}, "invalid_id_number"),  # checksum
        ({"name": "王伟", "id_number": "450103850307123"}, "invalid_id_number"),  # 15 digits
        ({"name": "王伟", "province": "99"}, "invalid_province"),
        ({"name": "王伟", "province": "4"}, "invalid_province"),
        ({"name": "王伟", "page": 0}, "invalid_page"),
        ({"name": "王伟", "page": 51}, "invalid_page"),
        ({"name": "王伟", "page": "x"}, "validation_failed"),
    ])
    def test_bad_input_is_refused_with_a_code(self, client: TestClient, params: dict[str, Any],
                                              code: str) -> None:
        resp = client.get(API, params=params)
        assert resp.status_code == 422, resp.text
        assert resp.json()["error"]["code"] == code

    def test_searches_are_rate_limited_per_client(self, client: TestClient) -> None:
        for _ in range(public.SEARCH_LIMIT):
            assert client.get(API, params={"name": "王伟"}).status_code == 200
        refused = client.get(API, params={"name": "王伟"})
        assert refused.status_code == 429
        assert refused.json()["error"]["code"] == "rate_limited"
        assert 1 <= int(refused.headers["retry-after"]) <= 60
        # Refused input counts too (no free probing), and the page shares the allowance.
        page = client.get("/dishonest", params={"name": "王伟"})
        assert page.status_code == 429 and 'data-code="rate_limited"' in page.text
        assert "retry-after" in page.headers
        with TestClient(client.app, client=("198.51.100.7", 40000)) as elsewhere:
            assert elsewhere.get(API, params={"name": "王伟"}).status_code == 200


class TestPage:
    def test_empty_form_in_chinese_by_default(self, client: TestClient) -> None:
        page = client.get("/dishonest")
        assert page.status_code == 200
        assert "失信被执行人名单" in page.text and 'name="name"' in page.text
        assert 'data-testid="dishonest-none"' not in page.text

    def test_search_shows_cards_in_chinese(self, client: TestClient, auth: AuthHeaders,
                                           db: Session) -> None:
        one = listed(client, auth, db, person("农卡片"))
        page = client.get("/dishonest", params={"name": "农卡片"})
        assert page.status_code == 200
        assert page.text.count('data-testid="dishonest-card"') == 1
        assert one.case_number in page.text and "未履行" in page.text
        assert "有履行能力而拒不履行生效法律文书确定义务" in page.text
        assert f"{one.id_number[:10]}****{one.id_number[-4:]}" in page.text
        assert one.id_number not in page.text
        none = client.get("/dishonest", params={"name": "农没有"})
        assert 'data-testid="dishonest-none"' in none.text and "未找到" in none.text
        bad = client.get("/dishonest", params={"name": "农卡片", "id_number": "123"})
        assert bad.status_code == 422 and 'data-code="invalid_id_number"' in bad.text
        for page_no in ("²", "9" * 5000, "-1"):
            odd = client.get("/dishonest", params={"name": "农卡片", "page": page_no})
            assert odd.status_code == 422 and 'data-code="invalid_page"' in odd.text
        long = client.get("/dishonest", params={"name": "农" * 300})
        assert long.status_code == 422 and 'data-code="invalid_name"' in long.text

    def test_search_in_english(self, client: TestClient, auth: AuthHeaders,
                               db: Session) -> None:
        listed(client, auth, db, company("柳州某某机械有限公司"), ground=5)
        client.cookies.set("zx_lang", "en")
        page = client.get("/dishonest", params={"name": "柳州某某机械有限公司"})
        assert page.status_code == 200 and "Dishonest-debtor list" in page.text
        assert "Credit code" in page.text and "Violates a consumption restriction" in page.text
        none = client.get("/dishonest", params={"name": "柳州没有"})
        assert "No published entry found" in none.text

    def test_names_are_escaped(self, client: TestClient, auth: AuthHeaders,
                               db: Session) -> None:
        evil = "<script>alert(1)</script>"
        listed(client, auth, db, person(evil))
        page = client.get("/dishonest", params={"name": evil})
        assert page.text.count('data-testid="dishonest-card"') == 1
        assert evil not in page.text
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page.text

    def test_the_login_page_links_here(self, client: TestClient) -> None:
        assert 'href="/dishonest"' in client.get("/login").text



@pytest.mark.browser
def test_browser_search_shows_a_result_card(test_db: ScratchDatabase, db: Session) -> None:
    with running_server(test_db.url) as base, chromium() as browser:
        token = api_post(f"{base}/api/v1/auth/tokens",
                      {"username": "qingxiu.officer", "password": PASSWORD})["token"]
        org = api_post(f"{base}/api/v1/cases", case_payload(
            filed_days_ago=200, debtors=[company("南宁市某某房地产开发有限公司")]), token)
        _list(db, int(org["id"]), ground=3,
              conduct="以隐匿、转移财产等方法规避执行，转移名下房产两处")
        one = api_post(f"{base}/api/v1/cases", case_payload(
            filed_days_ago=150, debtors=[person("黄浏览")]), token)
        _list(db, int(one["id"]))
        page = browser.new_page(viewport={"width": 1280, "height": 900}, locale="zh-CN")
        errors: list[str] = []
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        page.goto(f"{base}/login")
        page.click("[data-testid=dishonest-link]")
        page.wait_for_url(f"{base}/dishonest")
        page.fill("input[name=name]", "南宁市某某房地产开发有限公司")
        page.select_option("select[name=province]", "45")
        page.click("button[type=submit]")
        card = page.locator("[data-testid=dishonest-card]")
        card.first.wait_for()
        assert card.count() == 1
        assert "南宁市某某房地产开发有限公司" in card.inner_text()
        assert str(org["case_number"]) in card.inner_text()
        query = urllib.parse.urlparse(page.url).query
        assert urllib.parse.parse_qs(query)["province"] == ["45"]
        page.screenshot(path="/tmp/public_search.png", full_page=True)  # noqa: S108 (reviewed)
        assert errors == [], errors
