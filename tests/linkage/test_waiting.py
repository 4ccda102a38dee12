"""Long polls: one look per process for every waiting unit, surviving a failed look."""

from __future__ import annotations

import asyncio

import pytest

from zhixing.linkage import waiting


def test_a_failed_look_does_not_end_the_watch(monkeypatch: pytest.MonkeyPatch) -> None:
    looks: list[list[int]] = []

    def pending_units(unit_ids: list[int]) -> set[int]:
        looks.append(sorted(unit_ids))
        if len(looks) == 1:
            raise OSError("database restarting")
        return {2}

    monkeypatch.setattr(waiting, "pending_units", pending_units)
    monkeypatch.setattr(waiting, "IDLE_CHECK", 0.01)
    monkeypatch.setattr(waiting, "CHECK_EVERY", 0.01)
    watch = waiting.PendingWatch()

    async def two_units() -> None:
        await asyncio.gather(watch.wait(1, timeout=0.5), watch.wait(2, timeout=10))

    asyncio.run(two_units())
    # unit 2 was woken by the second look (a dead watch would have left it the full 10 s and
    # looked once); unit 1 waited out its own short timeout
    assert looks[:2] == [[1, 2], [1, 2]]
    assert [1] in looks  # then it went on for unit 1 alone
