"""The per-socket token bucket."""

from __future__ import annotations

import pytest

from quartchat.limits import FrameBudget


def test_burst_then_rate() -> None:
    budget = FrameBudget(rate=2, burst=3, max_strikes=5, now=0.0)
    assert [budget.take(0.0) for _ in range(3)] == [0.0, 0.0, 0.0]
    assert budget.take(0.0) == pytest.approx(0.5)  # one token back in half a second
    assert budget.take(0.5) == 0.0
    assert budget.take(0.5) > 0


def test_strikes_reset_only_when_the_client_slows_down() -> None:
    budget = FrameBudget(rate=10, burst=2, max_strikes=3, now=0.0)
    budget.take(0.0)
    budget.take(0.0)
    for _ in range(3):
        assert budget.take(0.0) > 0
    assert budget.exhausted
    budget.take(10.0)  # quiet long enough for a full bucket
    assert budget.strikes == 0 and not budget.exhausted
