from __future__ import annotations

from datetime import timedelta

import pytest

from zhixing.core import clock, ratelimit
from zhixing.core.db import transaction
from zhixing.core.errors import RateLimited

WINDOW = timedelta(minutes=10)


@pytest.mark.usefixtures("test_db")
class TestFixedWindow:
    def test_counts_and_refuses_at_limit(self) -> None:
        for expected in (1, 2, 3):
            with transaction() as s:
                assert ratelimit.hit(s, "k", WINDOW) == expected
        with transaction() as s:
            ratelimit.check(s, "k", 4, WINDOW, "slow down")
            with pytest.raises(RateLimited) as info:
                ratelimit.check(s, "k", 3, WINDOW, "slow down")
        assert 1 <= info.value.retry_after <= 600

    def test_window_rolls_over(self) -> None:
        with transaction() as s:
            for _ in range(3):
                ratelimit.hit(s, "k2", WINDOW)
        clock.set_offset(WINDOW)
        with transaction() as s:
            assert ratelimit.current_count(s, "k2", WINDOW) == 0
            assert ratelimit.hit(s, "k2", WINDOW) == 1

    def test_reset(self) -> None:
        with transaction() as s:
            ratelimit.hit(s, "k3", WINDOW)
        with transaction() as s:
            ratelimit.reset(s, "k3")
        with transaction() as s:
            assert ratelimit.current_count(s, "k3", WINDOW) == 0

    def test_consume_counts_every_call(self) -> None:
        with transaction() as s:
            ratelimit.consume(s, "k4", 2, WINDOW, "slow down")
            ratelimit.consume(s, "k4", 2, WINDOW, "slow down")
            with pytest.raises(RateLimited):
                ratelimit.consume(s, "k4", 2, WINDOW, "slow down")
