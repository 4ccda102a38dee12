"""The partner registry: reference data, administration by the high court, keys, who may call."""

from __future__ import annotations

from datetime import timedelta

from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from tests.conftest import AuthHeaders
from tests.credit.support import fresh_indexes, onboard, partner_id, register_case, restrict
from zhixing.core import clock
from zhixing.core.actor import SYSTEM
from zhixing.core.db import transaction
from zhixing.core.models import AuditRecord
from zhixing.courts.identity import issue_api_key
from zhixing.courts.models import ClientKind
from zhixing.credit import feed
from zhixing.credit import partners as registry
from zhixing.credit.activities import Activity
from zhixing.credit.models import Partner, PartnerKind

__all__ = ["fresh_indexes"]
PARTNERS = "/api/v1/partners"


class TestReferenceData:
    def test_every_partner_enforces_what_its_kind_enforces(self) -> None:
        specs = {s.code: s for s in registry.reference_partners()}
        assert specs["pbc-crc"].activities == [str(a) for a in Activity]
        assert specs["caac"].activities == ["flight"] == specs["travelsky"].activities
        assert specs["railway-12306"].activities == ["soft_sleeper", "high_speed_train"]
        assert specs["nia-exit-entry"].activities == ["exit"]
        assert specs["gx-amr"].activities == ["company_officer"]
        assert "property_purchase" in specs["gx-housing"].activities
        assert specs["gx-natural-resources"].activities == ["property_purchase"]
        banks = [s for s in specs.values() if s.kind == PartnerKind.BANK]
        assert len(banks) >= 3
        assert all(s.activities == ["premium_insurance", "loan"] for s in banks)
        assert specs["gx-organisation-dept"].kind == PartnerKind.EMPLOYER
        assert specs["gx-organisation-dept"].hashed_ids

    def test_sync_is_idempotent_and_keeps_administrators_changes(self, test_db: object) -> None:
        with transaction() as session:
            created, updated = registry.sync_partners(session)
        assert created == len(registry.reference_partners()) and updated == 0
        with transaction() as session:
            caac = session.scalar(select(Partner).where(Partner.code == "caac"))
            assert caac is not None
            caac.enabled = False
            caac.activities = ["flight", "travel"]
        with transaction() as session:
            assert registry.sync_partners(session) == (0, 0)
            caac = session.scalar(select(Partner).where(Partner.code == "caac"))
            assert caac is not None and not caac.enabled
            assert caac.activities == ["flight", "travel"]

    def test_bad_reference_data_is_refused(self) -> None:
        for bad in ([{"code": "x-1", "name_zh": "某某", "name_en": "Some", "kind": "bank",
                      "activities": ["yacht"]}],
                    [{"code": "x-1", "name_zh": "某某", "name_en": "Some", "kind": "bank",
                      "activities": ["loan"]}] * 2):
            try:
                registry.load_specs(bad)
            except ValueError:
                continue
            raise AssertionError(f"accepted {bad}")


class TestAdministration:
    def test_the_high_courts_admin_lists_and_reads_partners(self, client: TestClient,
                                                            auth: AuthHeaders) -> None:
        onboard("caac")
        resp = client.get(PARTNERS, headers=auth("admin"))
        assert resp.status_code == 200, resp.text
        items = {p["code"]: p for p in resp.json()["items"]}
        assert items["caac"]["activities"] == ["flight"]
        assert items["caac"]["lag"] == 0 and not items["caac"]["overdue"]
        one = client.get(f"{PARTNERS}/{partner_id('caac')}", headers=auth("admin")).json()
        assert one["code"] == "caac" and len(one["keys"]) == 1
        missing = client.get(f"{PARTNERS}/999999", headers=auth("admin"))
        assert missing.status_code == 404
        assert missing.json()["error"]["code"] == "partner_not_found"

    def test_only_the_high_courts_administrators_manage(self, client: TestClient,
                                                        auth: AuthHeaders) -> None:
        onboard()
        pid = partner_id("caac")
        # an officer, and high-court users who are not administrators (lower courts'
        # administrators: tests/courts/test_access.py)
        for user in ("qingxiu.officer", "auditor", "gx.duty"):
            headers = auth(user)
            for method, url, body in (("get", PARTNERS, None),
                                      ("get", f"{PARTNERS}/{pid}", None),
                                      ("patch", f"{PARTNERS}/{pid}", {"enabled": False}),
                                      ("post", f"{PARTNERS}/{pid}/keys", None)):
                resp = client.request(method.upper(), url, headers=headers, json=body)
                assert resp.status_code == 403, (user, url, resp.text)
                assert resp.json()["error"]["code"] == "role_forbidden"

    def test_update_validates_and_is_audited(self, client: TestClient, auth: AuthHeaders,
                                             db: Session) -> None:
        onboard()
        url = f"{PARTNERS}/{partner_id('caac')}"
        bad = client.patch(url, headers=auth("admin"), json={"activities": ["flight", "yacht"]})
        assert bad.status_code == 422
        assert bad.json()["error"]["code"] == "unknown_activity"
        assert bad.json()["error"]["details"]["unknown"] == ["yacht"]
        empty = client.patch(url, headers=auth("admin"), json={"activities": []})
        assert empty.status_code == 422
        ok = client.patch(url, headers=auth("admin"),
                          json={"activities": ["travel", "flight", "flight"], "enabled": False})
        assert ok.status_code == 200, ok.text
        assert ok.json()["activities"] == ["flight", "travel"] and not ok.json()["enabled"]
        assert ok.json()["hashing_key"] is None
        actions = db.scalars(select(AuditRecord.action)).all()
        assert "credit.partner_updated" in actions

    def test_the_hashing_key_is_handed_over_once(self, client: TestClient,
                                                 auth: AuthHeaders) -> None:
        onboard()
        url = f"{PARTNERS}/{partner_id('caac')}"
        first = client.patch(url, headers=auth("admin"), json={"hashed_ids": True}).json()
        assert first["hashed_ids"] and first["hashing_key"] == registry.hashing_key("caac").hex()
        again = client.patch(url, headers=auth("admin"), json={"hashed_ids": True}).json()
        assert again["hashing_key"] is None
        assert registry.hashing_key("caac") != registry.hashing_key("travelsky")

    def test_keys_are_issued_and_revoked_at_once(self, client: TestClient,
                                                 auth: AuthHeaders, db: Session) -> None:
        onboard()
        pid = partner_id("caac")
        issued = client.post(f"{PARTNERS}/{pid}/keys", headers=auth("admin"),
                             json={"name": "航信生产"})
        assert issued.status_code == 201, issued.text
        token = issued.json()["token"]
        headers = {"Authorization": f"Bearer {token}"}
        assert client.get("/api/v1/partner/feed", headers=headers).status_code == 200
        revoke = client.post(f"{PARTNERS}/{pid}/keys/{issued.json()['key_id']}/revoke",
                             headers=auth("admin"))
        assert revoke.status_code == 200 and revoke.json()["revoked_at"]
        stopped = client.get("/api/v1/partner/feed", headers=headers)
        assert stopped.status_code == 401
        assert stopped.json()["error"]["code"] == "invalid_token"
        # revoking again changes nothing; another partner's key is not this partner's
        assert client.post(f"{PARTNERS}/{pid}/keys/{issued.json()['key_id']}/revoke",
                           headers=auth("admin")).status_code == 200
        other = client.post(f"{PARTNERS}/{partner_id('travelsky')}/keys/"
                            f"{issued.json()['key_id']}/revoke", headers=auth("admin"))
        assert other.status_code == 404 and other.json()["error"]["code"] == "key_not_found"
        actions = set(db.scalars(select(AuditRecord.action)).all())
        assert {"credit.partner_key_issued", "credit.partner_key_revoked"} <= actions


class TestWhoMayCall:
    def test_people_are_refused_on_partner_routes(self, client: TestClient,
                                                  auth: AuthHeaders) -> None:
        onboard()
        for method, url, body in (("get", "/api/v1/partner/feed", None),
                                  ("get", "/api/v1/partner/snapshot", None),
                                  ("post", "/api/v1/partner/feed/ack", {"cursor": 0}),
                                  ("post", "/api/v1/partner/screen",
                                   {"people": [{"ref": "1", "name": "刘建国"}]})):
            anonymous = client.request(method.upper(), url, json=body)
            assert anonymous.status_code == 401, url
            resp = client.request(method.upper(), url, headers=auth("admin"), json=body)
            assert resp.status_code == 403, (url, resp.text)
            assert resp.json()["error"]["code"] == "machine_only"

    def test_other_machines_and_disabled_partners_are_refused(self, client: TestClient) -> None:
        headers = onboard("caac", caac={"enabled": False})
        with transaction() as session:
            key_id, secret, _ = issue_api_key(session, ClientKind.LINKAGE_UNIT, "bank-icbc",
                                              "工行", [], SYSTEM)
        unit = client.get("/api/v1/partner/feed",
                          headers={"Authorization": f"Bearer {key_id}.{secret}"})
        assert unit.status_code == 403 and unit.json()["error"]["code"] == "partner_only"
        off = client.get("/api/v1/partner/feed", headers=headers["caac"])
        assert off.status_code == 403 and off.json()["error"]["code"] == "partner_disabled"
        wrong = client.get("/api/v1/partner/feed",
                           headers={"Authorization": f"Bearer {key_id}.nope"})
        assert wrong.status_code == 401

    def test_partners_are_refused_on_peoples_routes(self, client: TestClient) -> None:
        headers = onboard("caac")["caac"]
        for url in (PARTNERS, "/api/v1/screening-hits", "/api/v1/cases"):
            resp = client.get(url, headers=headers)
            assert resp.status_code == 403, url
            assert resp.json()["error"]["code"] == "machine_forbidden"


class TestOverdue:
    def test_a_partner_behind_for_a_day_is_overdue(self, client: TestClient,
                                                   auth: AuthHeaders) -> None:
        headers = onboard("caac", "travelsky")
        debtor = register_case(client, auth)[0]
        restrict(debtor, ["flight"])
        now = clock.utcnow()
        with transaction() as session:
            assert feed.overdue_partners(session, now) == []  # registered just now
            later = now + timedelta(hours=25)
            overdue = {p.code for p in feed.overdue_partners(session, later)}
        assert {"caac", "travelsky", "pbc-crc"} <= overdue
        page = client.get("/api/v1/partner/feed", headers=headers["caac"]).json()
        assert client.post("/api/v1/partner/feed/ack", headers=headers["caac"],
                           json={"cursor": page["next_cursor"]}).status_code == 200
        with transaction() as session:
            overdue = {p.code for p in feed.overdue_partners(session, later)}
        assert "caac" not in overdue and "travelsky" in overdue
        clock.set_offset(timedelta(hours=25))
        listed = {p["code"]: p for p in client.get(PARTNERS, headers=auth("admin"))
                  .json()["items"]}
        assert listed["travelsky"]["overdue"] and listed["travelsky"]["lag"] == 1
        assert not listed["caac"]["overdue"] and listed["caac"]["ack_seq"] == 1
