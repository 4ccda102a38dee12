"""Screening by identity number and by name: answers per person and activity, per-item errors,
the partner's subscription, the hit log for the courts, freshness and the work per batch."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
from bench.screening import resident_ids
from fastapi.testclient import TestClient
from sqlalchemy import event, select, update
from sqlalchemy.orm import Session

from tests.cases.factories import person
from tests.conftest import AuthHeaders
from tests.credit.support import Debtor, fresh_indexes, onboard, register_case, restrict
from zhixing.core.db import get_engine
from zhixing.courts.models import CommandCenter, Court
from zhixing.credit import follower
from zhixing.credit.models import ScreeningHit
from zhixing.credit.screening import mask_number

__all__ = ["fresh_indexes"]
SCREEN = "/api/v1/partner/screen"
HITS = "/api/v1/screening-hits"


def screen(client: TestClient, headers: dict[str, str], people: list[dict[str, Any]],
           **body: Any) -> dict[str, Any]:
    resp = client.post(SCREEN, headers=headers, json={"people": people, **body})
    assert resp.status_code == 200, resp.text
    return resp.json()  # type: ignore[no-any-return]


def error(resp: Any) -> tuple[int, str]:
    return resp.status_code, resp.json()["error"]["code"]


@pytest.fixture
def duty_phone(db: Session) -> Iterator[str]:
    court_id = db.scalar(select(Court.id).where(Court.code == "桂0103"))
    old = db.scalar(select(CommandCenter.duty_phone).where(CommandCenter.court_id == court_id))
    db.execute(update(CommandCenter).where(CommandCenter.court_id == court_id)
               .values(duty_phone="0771-5551234"))
    yield "0771-5551234"
    db.execute(update(CommandCenter).where(CommandCenter.court_id == court_id)
               .values(duty_phone=old))


@pytest.fixture
def listed(client: TestClient, auth: AuthHeaders) -> list[Debtor]:
    """刘建国 may not fly nor take loans; 李明 may not take loans; 陈静 is not listed."""
    debtors = register_case(client, auth, [person("刘建国"), person("李明"), person("陈静")])
    restrict(debtors[0], ["flight", "loan"])
    restrict(debtors[1], ["loan"])
    return debtors


class TestExact:
    def test_a_listed_passenger_is_stopped_and_the_court_cited(
            self, client: TestClient, listed: list[Debtor], duty_phone: str) -> None:
        keys = onboard("caac")
        liu, li, chen = listed
        assert liu.id_number and li.id_number and chen.id_number
        out = screen(client, keys["caac"], [
            {"ref": "PNR1", "id_number": liu.id_number},
            {"ref": "PNR2", "id_number": li.id_number},  # loans only: nothing for an airline
            {"ref": "PNR3", "id_number": chen.id_number}])
        assert out["activities"] == ["flight"] and out["index_seq"] == 2
        first, second, third = out["results"]
        assert first["restricted"] and first["activities"] == {"flight": True}
        assert first["screened_by"] == "id" and first["error"] is None
        hit = first["hits"][0]
        assert hit["name"] == "刘建国" and hit["activities"] == ["flight"]
        assert hit["id_number_masked"] == mask_number(liu.id_number)
        assert hit["id_number_masked"].count("*") == 8
        assert hit["court_code"] == "桂0103" and hit["court_name"].endswith("人民法院")
        assert hit["case_number"] and hit["court_phone"] == duty_phone
        assert (hit["matched_by"], hit["score"], hit["match"]) == ("id", 1.0, True)
        for clear in (second, third):
            assert clear == {"ref": clear["ref"], "screened_by": "id", "restricted": False,
                             "activities": {"flight": False}, "hits": [], "error": None}

    def test_numbers_are_normalised(self, client: TestClient, listed: list[Debtor]) -> None:
        keys = onboard("pbc-crc")
        number = listed[0].id_number
        assert number
        old = number[:6] + number[8:17]  # the 15-digit form of the same resident ID
        spaced = " ".join((number[:6], number[6:14], number[14:])).lower()
        full_width = number.translate({c: c + 0xFEE0 for c in range(0x30, 0x3A)})
        out = screen(client, keys["pbc-crc"], [
            {"ref": str(i), "id_number": n} for i, n in enumerate((old, spaced, full_width))],
            activities=["flight"])
        assert [r["restricted"] for r in out["results"]] == [True, True, True]

    def test_malformed_numbers_are_answered_per_item(self, client: TestClient,
                                                     listed: list[Debtor]) -> None:
        keys = onboard("caac")
        good = listed[0].id_number
        assert good
        wrong_check = good[:17] + ("0" if good[17] != "0" else "1")
        out = screen(client, keys["caac"], [
            {"ref": "a", "id_number": wrong_check},
            {"ref": "b", "id_number": good[:16]},
            {"ref": "c", "id_number": "45@#"},
            {"ref": "d", "id_number": good},
            {"ref": "e"}])
        codes = [r["error"]["code"] if r["error"] else None for r in out["results"]]
        assert codes == ["invalid_id_checksum", "invalid_id_format", "invalid_id_format", None,
                         "id_or_name_required"]
        assert out["results"][0]["restricted"] is None
        assert out["results"][3]["restricted"] is True

    def test_exclusions_are_honoured(self, client: TestClient, listed: list[Debtor]) -> None:
        keys = onboard("caac")
        first = screen(client, keys["caac"], [{"ref": "1", "id_number": listed[0].id_number}])
        entry_id = first["results"][0]["hits"][0]["entry_id"]
        again = screen(client, keys["caac"], [{"ref": "1", "id_number": listed[0].id_number}],
                       exclude=[entry_id])
        assert again["results"][0]["restricted"] is False

    def test_a_lifted_restriction_no_longer_stops(self, client: TestClient,
                                                  auth: AuthHeaders) -> None:
        keys = onboard("caac")
        debtor = register_case(client, auth)[0]
        source, _ = restrict(debtor, ["flight"])
        people = [{"ref": "1", "id_number": debtor.id_number}]
        assert screen(client, keys["caac"], people)["results"][0]["restricted"]
        restrict(debtor, [], source_id=source, active=False)
        assert not screen(client, keys["caac"], people)["results"][0]["restricted"]


class TestActivities:
    def test_default_is_the_subscription(self, client: TestClient,
                                         listed: list[Debtor]) -> None:
        keys = onboard("railway-12306", "bank-icbc-gx")
        rail = screen(client, keys["railway-12306"], [{"ref": "1", "id_number": "x" * 6}])
        assert rail["activities"] == ["soft_sleeper", "high_speed_train"]
        bank = screen(client, keys["bank-icbc-gx"], [
            {"ref": "1", "id_number": listed[0].id_number},
            {"ref": "2", "id_number": listed[1].id_number}], activities=["loan"])
        assert bank["activities"] == ["loan"]
        assert [r["activities"] for r in bank["results"]] == [{"loan": True}, {"loan": True}]

    @pytest.mark.parametrize(("activities", "status", "code"), [
        (["flight", "yacht"], 422, "unknown_activity"),
        (["loan"], 403, "activity_not_subscribed"),
        ([], 422, "no_activities")])
    def test_bad_activities(self, client: TestClient, activities: list[str], status: int,
                            code: str) -> None:
        keys = onboard("caac")
        resp = client.post(SCREEN, headers=keys["caac"], json={
            "activities": activities, "people": [{"ref": "1", "name": "刘建国"}]})
        assert error(resp) == (status, code)

    def test_batch_limits(self, client: TestClient) -> None:
        keys = onboard("caac")
        many = [{"ref": str(i), "id_number": "AB1234"} for i in range(1001)]
        assert error(client.post(SCREEN, headers=keys["caac"], json={"people": many})) == (
            422, "batch_too_large")
        assert error(client.post(SCREEN, headers=keys["caac"], json={"people": []})) == (
            422, "empty_batch")
        bad = client.post(SCREEN, headers=keys["caac"], json={"people": [{"ref": "1",
                                                                            "nope": 1}]})
        assert error(bad) == (422, "unknown_field")


class TestNames:
    def test_traditional_characters_and_pinyin_find_the_entry(
            self, client: TestClient, listed: list[Debtor]) -> None:
        keys = onboard("caac")
        number = listed[0].id_number
        assert number
        born = f"{number[6:10]}-{number[10:12]}-{number[12:14]}"
        out = screen(client, keys["caac"], [
            {"ref": "t", "name": "劉建國", "birth_date": born},
            {"ref": "p", "name": "Liu Jianguo", "birth_date": born},
            {"ref": "r", "name": "Jianguo LIU"},
            {"ref": "w", "name": "刘建国", "birth_date": "1901-01-01"},
            {"ref": "n", "name": "李明"}])  # loans only: nothing for an airline
        trad, pinyin, reversed_, wrong_year, loans = out["results"]
        assert trad["screened_by"] == "name" and trad["restricted"]
        assert trad["hits"][0]["explanation"]["name"] == "traditional_variant"
        assert trad["hits"][0]["explanation"]["birth_date"] == "equal"
        assert trad["hits"][0]["match"] and trad["hits"][0]["name"] == "刘建国"
        assert pinyin["restricted"] and pinyin["hits"][0]["explanation"]["name"] == "pinyin"
        assert reversed_["restricted"]
        assert not wrong_year["restricted"]
        assert loans["hits"] == [] and not loans["restricted"]

    def test_exclusions_apply_to_names(self, client: TestClient,
                                       listed: list[Debtor]) -> None:
        keys = onboard("caac")
        hit = screen(client, keys["caac"], [{"ref": "1", "name": "刘建国"}])["results"][0]
        cleared = screen(client, keys["caac"], [{"ref": "1", "name": "刘建国"}],
                         exclude=[hit["hits"][0]["entry_id"]])["results"][0]
        assert hit["restricted"] and not cleared["restricted"] and cleared["hits"] == []


class TestHitLog:
    def test_hits_are_logged_for_the_listing_court(self, client: TestClient, auth: AuthHeaders,
                                                   listed: list[Debtor], db: Session) -> None:
        keys = onboard("bank-icbc-gx")
        screen(client, keys["bank-icbc-gx"], [
            {"ref": "loan-77", "id_number": listed[0].id_number},
            {"ref": "loan-78", "id_number": listed[2].id_number}])
        rows = db.scalars(select(ScreeningHit).order_by(ScreeningHit.activity)).all()
        assert [(r.activity, r.restricted, r.reference, r.matched_by) for r in rows] == [
            ("loan", True, "loan-77", "id"), ("premium_insurance", False, "loan-77", "id")]
        page = client.get(HITS, headers=auth("qingxiu.officer"), params={"limit": 1}).json()
        assert len(page["items"]) == 1 and page["next_cursor"]
        assert page["items"][0]["partner_code"] == "bank-icbc-gx"
        assert page["items"][0]["entry_name"] == "刘建国"
        rest = client.get(HITS, headers=auth("qingxiu.officer"),
                          params={"cursor": page["next_cursor"]}).json()
        assert len(rest["items"]) == 1 and rest["next_cursor"] is None
        higher = client.get(HITS, headers=auth("admin"), params={"court": "桂0103"}).json()
        assert len(higher["items"]) == 2
        assert client.get(HITS, headers=auth("liunan.officer")).json()["items"] == []
        out_of_reach = client.get(HITS, headers=auth("liunan.officer"),
                                  params={"court": "桂0103"})
        assert error(out_of_reach) == (422, "court_not_found")

    def test_a_batch_of_1000_costs_a_bounded_number_of_statements(
            self, client: TestClient, listed: list[Debtor], db: Session) -> None:
        keys = onboard("caac")
        screen(client, keys["caac"], [{"ref": "warm", "name": "王伟"}])  # load the index
        numbers = resident_ids(np.random.default_rng(7), 996)
        people = [{"ref": str(i), "id_number": n} for i, n in enumerate(numbers)]
        people += [{"ref": "liu", "id_number": str(listed[0].id_number)},
                   {"ref": "liu-old", "id_number": str(listed[0].id_number)},
                   {"ref": "name", "name": "刘建国"}, {"ref": "name2", "name": "陈静"}]
        statements: list[str] = []

        def count(_conn: Any, _cursor: Any, sql: str, *_args: Any) -> None:
            statements.append(sql)

        event.listen(get_engine(), "before_cursor_execute", count)
        try:
            out = screen(client, keys["caac"], people)
        finally:
            event.remove(get_engine(), "before_cursor_execute", count)
        assert sum(r["restricted"] for r in out["results"]) == 3
        # key + partner, catch-up (feed, head), the hit entries, one INSERT of the hits;
        # BEGIN/COMMIT
        assert len(statements) <= 8, statements
        assert sum(s.lstrip().upper().startswith("INSERT") for s in statements) == 1
        assert len(db.scalars(select(ScreeningHit)).all()) == 3


class TestFreshness:
    def test_follow_once_applies_the_feed(self, client: TestClient, auth: AuthHeaders,
                                          fresh_indexes: follower.ScreeningIndexes) -> None:
        debtor = register_case(client, auth)[0]
        _, first = restrict(debtor, ["flight"])
        assert fresh_indexes.load() == 1 and fresh_indexes.applied_seq == 1
        source, _ = restrict(debtor, ["exit"])
        restrict(debtor, [], source_id=source, active=False)
        assert fresh_indexes.follow_once() == 2 and fresh_indexes.applied_seq == 3
        assert debtor.id_number
        assert [e for e, _ in fresh_indexes.exact.lookup(debtor.id_number)] == [first]
        assert fresh_indexes.follow_once() == 0

    def test_a_new_listing_and_a_deletion_reach_screening_within_5_seconds(
            self, client: TestClient, auth: AuthHeaders) -> None:
        keys = onboard("caac")
        indexes = follower.ScreeningIndexes(poll_seconds=0.5)
        follower.set_indexes(indexes)
        indexes.start()  # the request path leaves following to the thread
        debtor = register_case(client, auth)[0]
        people = [{"ref": "1", "id_number": debtor.id_number}]
        assert not screen(client, keys["caac"], people)["results"][0]["restricted"]

        def until(expected: bool) -> float:
            start = time.monotonic()
            while time.monotonic() - start < 5:
                if screen(client, keys["caac"], people)["results"][0]["restricted"] is expected:
                    return time.monotonic() - start
                time.sleep(0.05)
            raise AssertionError("not visible within 5 s")

        source, _ = restrict(debtor, ["flight"])
        assert until(True) < 5
        restrict(debtor, [], source_id=source, active=False)
        assert until(False) < 5
        assert indexes.running
