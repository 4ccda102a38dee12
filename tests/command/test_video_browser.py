"""The video link in real browsers: the regional duty leader calls Guilin's duty desk from the
board; Guilin's duty officer accepts from the ringing banner; both pages connect over WebRTC
(Chromium's fake camera and microphone, signalling through the platform only, no STUN/TURN
server) and each shows the other's moving picture; the caller hangs up and both see it ended."""

from __future__ import annotations

import json
import os
import re
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, Page, sync_playwright

from tests.conftest import PASSWORD
from tests.support.browser import CHROMIUM_FLAGS, chromium_path, console_page
from tests.support.database import ScratchDatabase
from tests.support.server import api_post, running_server

pytestmark = pytest.mark.browser

MEDIA_FLAGS = ["--use-fake-device-for-media-stream", "--use-fake-ui-for-media-stream"]
SHOTS = Path(os.environ.get("ZHIXING_SCREENSHOT_DIR", "build/screenshots"))


@contextmanager
def chromium_with_media() -> Iterator[Browser]:
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium_path(), headless=True,
                                    args=[*CHROMIUM_FLAGS, *MEDIA_FLAGS])
        try:
            yield browser
        finally:
            browser.close()



def _get(url: str, token: str) -> dict[str, Any]:
    req = urllib.request.Request(url, headers={"authorization": f"Bearer {token}"})  # noqa: S310
    with urllib.request.urlopen(req, timeout=10) as resp:  # noqa: S310 (loopback test server)
        result: dict[str, Any] = json.loads(resp.read())
        return result


def _on_duty(base: str, admin: str, court: str, role: str, username: str) -> None:
    now = datetime.now(UTC).replace(microsecond=0)
    members = [{"role": role, "username": username}]
    if role != "leader":
        members.append({"role": "leader", "name": "值班领导 唐"})
    api_post(f"{base}/api/v1/command/shifts", {
        "court_code": court, "starts_at": (now - timedelta(hours=1)).isoformat(),
        "ends_at": (now + timedelta(hours=23)).isoformat(), "members": members}, admin)


def _until(page: Page, expression: str, timeout: float = 10.0) -> Any:
    """Poll ``expression`` until it is truthy. (``wait_for_function`` evaluates its predicate
    with ``eval``, which the console's Content-Security-Policy forbids.)"""
    deadline = time.monotonic() + timeout
    while True:
        value = page.evaluate(expression)
        if value:
            return value
        assert time.monotonic() < deadline, f"still false: {expression}"
        page.wait_for_timeout(100)


def _remote_video_plays(page: Page) -> None:
    """The other side's picture has a size, and its time moves on."""
    video = "document.getElementById('remote-video')"
    _until(page, f"{video}.videoWidth > 0", timeout=20)
    start = page.evaluate(f"{video}.currentTime")
    _until(page, f"{video}.currentTime > {start} + 0.5")


def test_video_link_between_duty_desks(test_db: ScratchDatabase) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    with running_server(test_db.url) as base, chromium_with_media() as browser:
        admin = str(api_post(f"{base}/api/v1/auth/tokens",
                          {"username": "admin", "password": PASSWORD})["token"])
        _on_duty(base, admin, "桂", "leader", "gx.duty")
        _on_duty(base, admin, "桂03", "officer", "guilin.duty")

        guilin, guilin_errors = console_page(browser, base, "guilin.duty", PASSWORD,
                                             height=768, next_path="/command")
        guilin.wait_for_selector("#live-state[data-live=on]")
        region, region_errors = console_page(browser, base, "gx.duty", PASSWORD, height=768,
                                             next_path="/command")
        region.locator("#video").scroll_into_view_if_needed()
        region.screenshot(path=str(SHOTS / "board-video-links.png"))
        region.locator("[data-testid=video-links] li[data-court='桂03'] "
                       "[data-testid=video-link]").click()
        region.wait_for_url(re.compile(r".*/command/calls/\d+$"))
        call_id = int(region.url.rsplit("/", 1)[1])
        region.wait_for_selector("[data-testid=call-state][data-state=ringing]")

        # it rings on Guilin's board, live
        banner = guilin.wait_for_selector(f"[data-testid=call-banner][data-call-id='{call_id}']",
                                          timeout=15_000)
        assert banner is not None and "广西" in banner.inner_text()
        guilin.screenshot(path=str(SHOTS / "call-ringing-banner.png"))
        guilin.locator("[data-testid=accept-call]").click()
        guilin.wait_for_url(re.compile(rf".*/command/calls/{call_id}\?accept=true$"))

        for page in (region, guilin):
            page.wait_for_selector("[data-testid=call-state][data-state=connected]",
                                   timeout=20_000)
            _remote_video_plays(page)
        _until(region, "document.querySelector('[data-testid=call-duration]').textContent "
                       "!== '0:00'")
        region.screenshot(path=str(SHOTS / "call-connected.png"))
        call = _get(f"{base}/api/v1/command/calls/{call_id}", admin)
        assert call["state"] == "connected" and call["answered_by_name"] == "值班员 莫林"

        # mute and camera are the caller's own tracks
        region.locator("[data-testid=mute]").click()
        assert region.locator("[data-testid=mute]").get_attribute("aria-pressed") == "true"
        assert region.evaluate("document.getElementById('local-video').srcObject"
                               ".getAudioTracks()[0].enabled") is False

        region.locator("[data-testid=hangup]").click()
        for page in (region, guilin):
            page.wait_for_selector("[data-testid=call-state][data-state=ended]",
                                   timeout=10_000)
        call = _get(f"{base}/api/v1/command/calls/{call_id}", admin)
        assert call["state"] == "ended" and call["ended_side"] == "caller"
        assert call["duration_seconds"] is not None

        # the page speaks English on request
        region.goto(f"{base}/lang/en?next=/command/calls/{call_id}")
        region.wait_for_selector("[data-testid=call-state][data-state=ended]")
        assert region.inner_text("[data-testid=call-state]") == "Call ended"
        assert "Video link" in region.inner_text("h1")
        region.screenshot(path=str(SHOTS / "call-ended-en.png"))
        assert region_errors == [] and guilin_errors == []
