"""Token buckets: per socket frames, and per address REST writes."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from quartchat.limits import AddressBudgets, FrameBudget
from tests.support import start_server


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


def test_address_budgets_are_separate_and_forgotten_when_idle() -> None:
    budgets = AddressBudgets(per_minute=60, burst=2)
    assert budgets.take("a", 0.0) == 0.0
    assert budgets.take("a", 0.0) == 0.0
    assert budgets.take("a", 0.0) == pytest.approx(1.0)
    assert budgets.take("b", 0.0) == 0.0  # another address has its own bucket
    for i in range(1000):
        budgets.take(f"x{i}", 100.0)
    assert "a" not in budgets._budgets  # idle long enough to be full: dropped


async def test_rest_writes_are_limited_per_address(tmp_path: Path) -> None:
    server = start_server(tmp_path, env={"REST_WRITES_PER_MINUTE": "60", "REST_WRITES_BURST": "3"})
    try:
        async with httpx.AsyncClient(base_url=server.http_url) as http:
            for i in range(3):
                assert (await http.post("/users", json={"username": f"u{i}"})).status_code == 201
            refused = await http.post("/users", json={"username": "one too many"})
            assert refused.status_code == 429
            assert refused.json()["code"] == "RATE_LIMITED"
            assert int(refused.headers["retry-after"]) >= 1
            assert (await http.get("/users")).status_code == 200  # reads are not limited
    finally:
        server.stop()
