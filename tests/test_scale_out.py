"""Production mode: three API processes and three job workers on PostgreSQL run the seed's three
stories, every request going to the next process (no stickiness), and a console connected to
one process sees, live, what was done through the others (LISTEN/NOTIFY)."""

from __future__ import annotations

import os
import re
import threading
from collections.abc import Iterator

import httpx
import pytest

from tests.command.test_requests import zeng_chain
from tests.conftest import AuthHeaders
from tests.credit.test_li_story import li_story
from tests.linkage.test_end_to_end import test_the_liu_story as liu_story
from tests.support.database import ScratchDatabase
from tests.support.processes import Platform, running_platform, wait_for
from zhixing.linkage import signing

pytestmark = [pytest.mark.slow, pytest.mark.skipif(
    os.environ.get("ZHIXING_TEST_BACKEND", "sqlite") != "postgresql",
    reason="many processes is the PostgreSQL deployment; SQLite is the one-machine trial")]


@pytest.fixture
def platform(test_db: ScratchDatabase) -> Iterator[Platform]:
    with running_platform(test_db, servers=3, workers=3) as p:
        yield p


class BoardStream:
    """The command board's live stream on one process, read in the background."""

    def __init__(self, url: str, headers: dict[str, str]) -> None:
        self.lines: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._read, args=(url, headers), daemon=True)
        self._thread.start()

    def _read(self, url: str, headers: dict[str, str]) -> None:
        with httpx.stream("GET", url, headers=headers, timeout=httpx.Timeout(5, read=60)) as r:
            for line in r.iter_lines():
                self.lines.append(line)
                if self._stop.is_set():
                    return

    def saw(self, text: str) -> bool:
        return any(text in line for line in self.lines if line.startswith("data:"))

    def close(self) -> None:
        self._stop.set()


def signals_received(port: int) -> dict[str, float]:
    text = httpx.get(f"http://127.0.0.1:{port}/metrics").text
    return {m[1]: float(m[2]) for m in re.finditer(
        r'^zhixing_signals_received_total\{channel="(\w+)"\} ([0-9.e+]+)$', text, re.M)}


def test_three_stories_on_three_api_and_three_worker_processes(platform: Platform) -> None:
    p = platform
    auth = AuthHeaders(p.http)
    # The regional duty desk watches its board on the first process only.
    board = BoardStream(f"http://127.0.0.1:{p.ports[0]}/command/stream", auth("gx.duty"))
    try:
        zeng_chain(p.http, auth)  # Zeng: region → Guilin → Qixing, the car seized
        # The request was opened and handled through the processes round the table; the
        # first one's console saw it arrive.
        wait_for(lambda: board.saw("7Z311"), "the request on the board of process 1", 30)
    finally:
        board.close()
    li_story(p.http, auth)  # Li: listed, refused at the airline and the border, pays, flies
    liu_story(p)  # Liu: 45 units asked, account found, frozen, arriving money frozen
    for port in p.ports:  # every process was woken by commits made in the others
        received = signals_received(port)
        assert received.get("board", 0) >= 1 and received.get("linkage", 0) >= 1, (
            port, received)
    a_revocation_reaches_every_process(p, auth)
    for proc in (*p.servers, *p.workers):
        assert proc.proc is not None and proc.proc.poll() is None, proc.log_tail()


def a_revocation_reaches_every_process(p: Platform, auth: AuthHeaders) -> None:
    """Each process caches a unit's keys until the keys channel is signalled: a key revoked
    through one process is refused by all of them (not after the cache's five minutes)."""
    admin = auth("admin")
    units = p.http.get("/api/v1/units", headers=admin).json()["items"]
    uid = next(u["unit"]["id"] for u in units if u["unit"]["code"] == "bank-ccb")
    issued = p.http.post(f"/api/v1/units/{uid}/keys", headers=admin)
    assert issued.status_code == 201, issued.text
    key_id, secret = issued.json()["key_id"], signing.decode_secret(issued.json()["secret"])

    def fetch(port: int) -> int:
        target = "/api/v1/linkage/tasks?limit=1"
        return httpx.get(f"http://127.0.0.1:{port}{target}",
                         headers=signing.sign("GET", target, b"", key_id, secret)).status_code

    before = {port: signals_received(port).get("keys", 0) for port in p.ports}
    assert [fetch(port) for port in p.ports] == [200] * len(p.ports)  # cached everywhere
    assert p.http.delete(f"/api/v1/units/{uid}/keys", headers=admin).status_code == 204
    for port in p.ports:
        def refused(port: int = port) -> bool:
            return fetch(port) == 401

        wait_for(refused, f"the revocation heard on {port}", 10)
        assert signals_received(port).get("keys", 0) > before[port]
