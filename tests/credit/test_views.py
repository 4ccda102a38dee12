"""The console's credit panel on the case page, the list desk and the decision document."""

from __future__ import annotations

from fastapi.testclient import TestClient

from tests.conftest import AuthHeaders
from tests.credit.test_listings import APPROVER, OFFICER, _case, _debtor_id
from tests.web.test_console import login


def test_propose_approve_and_delete_from_the_case_page(client: TestClient,
                                                       auth: AuthHeaders) -> None:
    case = _case(client, auth)
    csrf = login(client, OFFICER)
    page = client.get(f"/cases/{case['id']}")
    assert 'data-testid="credit-panel"' in page.text and 'data-testid="listing-form"' in page.text
    r = client.post(f"/cases/{case['id']}/credit/listings", follow_redirects=False, data={
        "csrf_token": csrf, "party_id": str(_debtor_id(case)), "ground": "1",
        "conduct": "有能力履行而拒不履行<script>alert(1)</script>", "grace_months": "0"})
    assert r.status_code == 303, r.text
    page = client.get(f"/cases/{case['id']}")
    assert 'data-status="proposed"' in page.text
    assert "<script>alert(1)" not in page.text
    assert 'data-testid="approve-listing"' not in page.text  # the proposer may not approve
    # Bad input comes back on the page with its code, and nothing changes.
    r = client.post(f"/cases/{case['id']}/credit/listings", data={
        "csrf_token": csrf, "party_id": str(_debtor_id(case)), "ground": "9",
        "conduct": "x y"})
    assert r.status_code == 422 and "data-testid" in r.text
    client.cookies.clear()
    csrf = login(client, APPROVER)
    page = client.get(f"/cases/{case['id']}")
    listing_id = page.text.split('data-listing-id="')[1].split('"')[0]
    r = client.post(f"/cases/{case['id']}/credit/listings/{listing_id}/approve",
                    data={"csrf_token": csrf}, follow_redirects=False)
    assert r.status_code == 303
    page = client.get(f"/cases/{case['id']}")
    assert 'data-status="active"' in page.text and "限消1" in page.text
    doc = client.get(f"/credit/listings/{listing_id}/decision")
    assert doc.status_code == 200 and "决定书" in doc.text and case["case_number"] in doc.text
    desk = client.get("/credit")
    assert desk.status_code == 200 and case["case_number"] in desk.text
    r = client.post(f"/cases/{case['id']}/credit/listings/{listing_id}/delete",
                    data={"csrf_token": csrf, "ground": "active_performance"},
                    follow_redirects=False)
    assert r.status_code == 303
    assert 'data-status="deleted"' in client.get(f"/cases/{case['id']}").text


def test_csrf_and_reach_on_credit_forms(client: TestClient, auth: AuthHeaders) -> None:
    case = _case(client, auth)
    login(client, OFFICER)
    r = client.post(f"/cases/{case['id']}/credit/restrictions",
                    data={"party_id": str(_debtor_id(case)), "kind": "exit"})
    assert r.status_code == 403
    client.cookies.clear()
    csrf = login(client, "liunan.officer")
    r = client.post(f"/cases/{case['id']}/credit/restrictions", data={
        "csrf_token": csrf, "party_id": str(_debtor_id(case)), "kind": "exit"})
    assert r.status_code == 404
