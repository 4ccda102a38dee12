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
    for proc in (*p.servers, *p.workers):
        assert proc.proc is not None and proc.proc.poll() is None, proc.log_tail()
