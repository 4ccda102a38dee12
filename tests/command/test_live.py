"""The board watch: one poll per process, and it outlives a failed look at the database."""

from __future__ import annotations

import asyncio

import pytest

from zhixing.command import live


def test_a_failed_look_does_not_end_the_watch(monkeypatch: pytest.MonkeyPatch) -> None:
    answers: list[int | Exception] = [OSError("database restarting"), 7]
    looks = 0

    def read_head() -> int:
        nonlocal looks
        looks += 1
        answer = answers[min(looks, len(answers)) - 1]
        if isinstance(answer, Exception):
            raise answer
        return answer

    monkeypatch.setattr(live, "_read_head", read_head)
    monkeypatch.setattr(live, "CHECK_EVERY", 0.01)
    watch = live.BoardWatch()

    async def watch_once() -> int:
        return await watch.wait_past(-1, timeout=10)

    # Without the retry, the poll task dies on the first look and the watcher waits out its
    # whole timeout with the version unknown (-1).
    assert asyncio.run(watch_once()) == 7
    assert looks >= 2


def test_watchers_share_one_poll(monkeypatch: pytest.MonkeyPatch) -> None:
    looks = 0

    def read_head() -> int:
        nonlocal looks
        looks += 1
        return 3

    monkeypatch.setattr(live, "_read_head", read_head)
    monkeypatch.setattr(live, "CHECK_EVERY", 0.01)
    watch = live.BoardWatch()

    async def many() -> list[int]:
        return await asyncio.gather(*(watch.wait_past(-1, timeout=10) for _ in range(20)))

    assert asyncio.run(many()) == [3] * 20
    assert looks == 1
