"""The console: the duty desk and the request page render, and their forms act (the live
behaviour is in the browser test)."""

from __future__ import annotations

import re

from fastapi.testclient import TestClient

from tests.command.support import zeng_request
from tests.conftest import AuthHeaders
from tests.web.test_console import login


def test_desk_and_request_forms(client: TestClient, auth: AuthHeaders) -> None:
    csrf = login(client, "gx.duty")
    desk = client.get("/command")
    assert desk.status_code == 200 and 'data-testid="on-duty"' in desk.text
    started = client.post("/command/roll-calls", data={"csrf_token": csrf,
                                                       "answer_within_minutes": "10"},
                          follow_redirects=False)
    assert started.status_code == 303
    assert client.get("/command").text.count('data-status="pending"') == 14
    created = client.post("/command/requests", data={
        "csrf_token": csrf, **zeng_request(to_court_code="桂03")}, follow_redirects=False)
    assert created.status_code == 303, created.text
    url = created.headers["location"]
    assert re.fullmatch(r"/command/requests/\d+", url)
    page = client.get(url)
    assert page.status_code == 200 and "被执行人曾某的车辆" in page.text
    assert 'data-testid="acknowledge-form"' not in page.text  # it is Guilin's to acknowledge
    bad = client.post("/command/requests", data={
        "csrf_token": csrf, **zeng_request(place_court_code="桂9999")})
    assert bad.status_code == 422 and "court_not_found" in bad.text
    client.cookies.clear()
    csrf = login(client, "guilin.duty")
    page = client.get(url)
    assert 'data-testid="acknowledge-form"' in page.text
    assert client.post(f"{url}/acknowledge", data={"csrf_token": csrf},
                       follow_redirects=False).status_code == 303
    again = client.post(f"{url}/acknowledge", data={"csrf_token": csrf})
    assert again.status_code == 409 and "already_acknowledged" in again.text
    text = client.get(url).text
    assert 'data-testid="result-form"' in text and 'value="桂0305"' in text  # suggested
    done = client.post(f"{url}/result", data={"csrf_token": csrf, "outcome": "done",
                                              "summary": "已扣押"}, follow_redirects=False)
    assert done.status_code == 303
    assert 'data-status="done"' in client.get(url).text
