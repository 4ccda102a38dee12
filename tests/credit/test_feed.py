"""A partner's feed: its subscription, its cursor, exactly once under concurrent writers, hashed
ids, acknowledgements and the reconciliation snapshot."""

from __future__ import annotations

import hashlib
import hmac
import threading
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from tests.cases.factories import person
from tests.conftest import AuthHeaders
from tests.credit.support import fresh_indexes, onboard, register_case, restrict
from zhixing.credit import partners as registry
from zhixing.credit.feed import partner_op
from zhixing.credit.models import Partner

__all__ = ["fresh_indexes"]
FEED = "/api/v1/partner/feed"
ACK = "/api/v1/partner/feed/ack"
SNAPSHOT = "/api/v1/partner/snapshot"


def pull(client: TestClient, headers: dict[str, str], after: int = 0,
         limit: int = 1000) -> dict[str, Any]:
    resp = client.get(FEED, headers=headers, params={"after": after, "limit": limit})
    assert resp.status_code == 200, resp.text
    return resp.json()  # type: ignore[no-any-return]


class TestSubscription:
    def test_ops_are_what_the_change_means_to_the_partner(self) -> None:
        flight, loan = 1, 2
        assert partner_op(loan, 0, flight) is None
        assert partner_op(loan | flight, loan, flight) == "add"
        assert partner_op(loan | flight, flight, loan | flight) == "change"
        assert partner_op(loan | flight, flight, flight) is None  # nothing changed for flights
        assert partner_op(loan, loan | flight, flight) == "delete"
        assert partner_op(0, loan, loan) == "delete"
        assert partner_op(flight, flight, flight) == "change"  # not a mask change: a correction

    def test_each_partner_sees_its_activities_only(self, client: TestClient,
                                                   auth: AuthHeaders) -> None:
        keys = onboard("caac", "bank-icbc-gx", "pbc-crc")
        debtor = register_case(client, auth)[0]
        source, entry_id = restrict(debtor, ["loan"])
        restrict(debtor, ["loan", "flight"], source_id=source)
        restrict(debtor, ["loan", "flight", "travel"], source_id=source)
        restrict(debtor, [], source_id=source, active=False)

        caac = pull(client, keys["caac"])
        assert [(i["seq"], i["op"]) for i in caac["items"]] == [(2, "add"), (4, "delete")]
        assert caac["items"][0]["entry"]["activities"] == ["flight"]
        assert caac["items"][1]["entry"]["activities"] == []
        assert caac["next_cursor"] == 4 and not caac["has_more"] and caac["head"] == 4
        bank = pull(client, keys["bank-icbc-gx"])
        assert [i["op"] for i in bank["items"]] == ["add", "delete"]
        assert bank["items"][0]["entry"]["activities"] == ["loan"]
        everything = pull(client, keys["pbc-crc"])
        assert [i["op"] for i in everything["items"]] == ["add", "change", "change", "delete"]
        item = everything["items"][2]
        assert item["entry_id"] == entry_id and item["entry"]["activities"] == [
            "flight", "travel", "loan"]
        assert item["entry"]["id_number"] == debtor.id_number
        assert item["entry"]["court_code"] == "桂0103" and item["entry"]["case_number"]

    def test_the_cursor_moves_past_what_the_partner_does_not_see(
            self, client: TestClient, auth: AuthHeaders) -> None:
        keys = onboard("nia-exit-entry")
        debtor = register_case(client, auth)[0]
        for _ in range(3):
            restrict(debtor, ["flight"])
        page = pull(client, keys["nia-exit-entry"], limit=1)
        assert page["items"] == [] and page["next_cursor"] == 3 and not page["has_more"]
        again = pull(client, keys["nia-exit-entry"], after=3)
        assert again["items"] == [] and again["next_cursor"] == 3

    def test_hashed_ids_replace_the_number_and_drop_the_birth_date(
            self, client: TestClient, auth: AuthHeaders) -> None:
        keys = onboard("gx-organisation-dept", "pbc-crc")
        debtor = register_case(client, auth, [person("黄国强")])[0]
        number = debtor.id_number
        assert number
        restrict(debtor, ["civil_service", "loan"])
        item = pull(client, keys["gx-organisation-dept"])["items"][0]
        entry = item["entry"]
        assert "id_number" not in entry and "birth_date" not in entry
        key = registry.hashing_key("gx-organisation-dept")
        assert entry["id_hash"] == hmac.new(key, number.upper().encode(),
                                            hashlib.sha256).hexdigest()
        assert entry["activities"] == ["civil_service"] and entry["name"] == "黄国强"
        clear = pull(client, keys["pbc-crc"])["items"][0]["entry"]
        assert clear["id_number"] == number and clear["birth_date"] == (
            f"{number[6:10]}-{number[10:12]}-{number[12:14]}")
        snap = client.get(SNAPSHOT, headers=keys["gx-organisation-dept"]).json()
        assert snap["items"][0]["id_hash"] == entry["id_hash"]
        assert "id_number" not in snap["items"][0]


class TestCursor:
    def test_pages_follow_each_other(self, client: TestClient, auth: AuthHeaders) -> None:
        keys = onboard("caac")
        debtor = register_case(client, auth)[0]
        for _ in range(5):
            restrict(debtor, ["flight"])
        seen: list[int] = []
        cursor = 0
        while True:
            page = pull(client, keys["caac"], after=cursor, limit=2)
            seen += [i["seq"] for i in page["items"]]
            cursor = page["next_cursor"]
            if not page["has_more"]:
                break
        assert seen == [1, 2, 3, 4, 5] and cursor == 5

    @pytest.mark.parametrize(("params", "code"), [
        ({"after": 1}, "unknown_cursor"), ({"after": 99}, "unknown_cursor"),
        ({"limit": 1001}, "invalid_limit"), ({"limit": 0}, "invalid_limit"),
        ({"after": -1}, "validation_failed"), ({"after": "x"}, "validation_failed")])
    def test_bad_cursors_and_limits(self, client: TestClient, params: dict[str, Any],
                                    code: str) -> None:
        keys = onboard("caac")
        resp = client.get(FEED, headers=keys["caac"], params=params)
        assert resp.status_code == 422 and resp.json()["error"]["code"] == code

    def test_acknowledgements_only_move_forward_within_what_was_fetched(
            self, client: TestClient, auth: AuthHeaders, db: Session) -> None:
        keys = onboard("caac")
        debtor = register_case(client, auth)[0]
        for _ in range(4):
            restrict(debtor, ["flight"])
        headers = keys["caac"]
        too_far = client.post(ACK, headers=headers, json={"cursor": 1})
        assert too_far.status_code == 409
        assert too_far.json()["error"]["code"] == "ack_out_of_order"
        page = pull(client, headers, limit=3)
        assert page["next_cursor"] == 3
        ok = client.post(ACK, headers=headers, json={"cursor": 3})
        assert ok.status_code == 200 and ok.json()["ack_seq"] == 3
        assert client.post(ACK, headers=headers, json={"cursor": 3}).status_code == 200
        back = client.post(ACK, headers=headers, json={"cursor": 2})
        assert back.status_code == 409 and back.json()["error"]["code"] == "ack_out_of_order"
        beyond = client.post(ACK, headers=headers, json={"cursor": 4})
        assert beyond.status_code == 409
        pull(client, headers, after=0, limit=1)  # a re-read does not lower what was fetched
        caac = db.scalar(select(Partner).where(Partner.code == "caac"))
        assert caac is not None
        assert (caac.fetched_seq, caac.ack_seq) == (3, 3)
        assert caac.last_fetch_at is not None and caac.last_ack_at is not None


class TestSnapshot:
    def test_active_entries_of_the_subscription_by_id_with_the_head(
            self, client: TestClient, auth: AuthHeaders) -> None:
        keys = onboard("caac")
        debtors = register_case(client, auth, [person("刘建国"), person("李明"),
                                               person("陈静")])
        ids = [restrict(d, ["flight", "loan"])[1] for d in debtors]
        restrict(debtors[0], ["loan"])  # nothing for an airline
        lifted, _ = restrict(debtors[1], ["flight"])
        restrict(debtors[1], [], source_id=lifted, active=False)
        first = client.get(SNAPSHOT, headers=keys["caac"], params={"limit": 2}).json()
        assert first["head"] == 6 and first["has_more"]
        assert [i["entry_id"] for i in first["items"]] == ids[:2]
        assert first["items"][0]["activities"] == ["flight"]
        rest = client.get(SNAPSHOT, headers=keys["caac"],
                          params={"after": first["next_after"]}).json()
        assert [i["entry_id"] for i in rest["items"]] == ids[2:] and not rest["has_more"]


class TestExactlyOnce:
    def test_concurrent_writers_and_a_paging_reader(self, client: TestClient,
                                                    auth: AuthHeaders) -> None:
        """Two threads list and lift people while a partner pages with a small limit: every
        sequence number arrives once, in order, with nothing skipped."""
        keys = onboard("pbc-crc")
        debtors = register_case(client, auth, [person("刘建国"), person("李明")])
        per_writer = 15
        errors: list[BaseException] = []

        def write(index: int) -> None:
            try:
                for n in range(per_writer):
                    source, _ = restrict(debtors[index], ["flight", "loan"])
                    if n % 3 == 0:
                        restrict(debtors[index], [], source_id=source, active=False)
            except BaseException as exc:  # reported by the main thread
                errors.append(exc)

        writers = [threading.Thread(target=write, args=(i,)) for i in range(2)]
        for w in writers:
            w.start()
        seen: list[int] = []
        cursor = 0
        total = 2 * (per_writer + (per_writer + 2) // 3)
        while True:
            page = pull(client, keys["pbc-crc"], after=cursor, limit=3)
            seen += [i["seq"] for i in page["items"]]
            assert page["next_cursor"] >= cursor
            cursor = page["next_cursor"]
            if cursor == total and not any(w.is_alive() for w in writers):
                break
        for w in writers:
            w.join()
        assert not errors
        assert seen == list(range(1, total + 1))
