"""The access log's lines per second: a storm's successful lines are counted past the
budget, every request stays accounted for, and no failed request's line is lost."""

from __future__ import annotations

import asyncio
import json
import math
import time
from collections import Counter
from datetime import datetime
from itertools import pairwise
from pathlib import Path

import pytest

from quartchat.config.logbudget import LineBudget, summary
from tests.support import create_room, create_user, open_socket, served


def test_a_budget_lets_lines_through_then_holds_them_until_the_window_rolls() -> None:
    budget = LineBudget(3)
    assert [budget.take(10.0) for _ in range(5)] == [True, True, True, False, False]
    budget.hold("101 socket handshake")
    budget.hold("101 socket handshake")
    budget.hold("200 GET")
    assert not budget.expired(10.9)
    assert budget.expired(11.0)
    assert budget.take(11.0)  # a new window
    held = budget.release()
    assert held == Counter({"101 socket handshake": 2, "200 GET": 1})
    assert budget.release() == Counter()
    assert summary(held, budget.window) == (
        "3 more lines not written in the last 1 s (ACCESS_LOG_LINES_PER_SECOND): "
        "2 x 101 socket handshake, 1 x 200 GET"
    )


def test_zero_is_no_budget() -> None:
    budget = LineBudget(0)
    assert all(budget.take(1.0) for _ in range(10_000))


@pytest.mark.server
async def test_a_handshake_storm_is_counted_and_no_error_line_is_lost(tmp_path: Path) -> None:
    sockets, per_second, errors = 150, 20, 12
    env = {"LOG_FORMAT": "json", "ACCESS_LOG_LINES_PER_SECOND": str(per_second)}
    async with served(tmp_path, env) as (server, http):
        room = await create_room(http)
        users = [await create_user(http) for _ in range(10)]
        await asyncio.sleep(1.2)  # the setup's lines in a window of their own

        async def handshake(index: int) -> None:
            async with open_socket(server, room["id"], users[index % len(users)]["id"]):
                pass

        async def missing(index: int) -> None:
            response = await http.get(f"/rooms/missing-{index}")
            assert response.status_code == 404

        began = time.monotonic()
        for first in range(0, sockets, 50):
            await asyncio.gather(
                *(handshake(i) for i in range(first, first + 50)),
                *(missing(i) for i in range(first // 50 * 4, first // 50 * 4 + 4)),
            )
        took = time.monotonic() - began
        await asyncio.sleep(1.5)  # the last summary
    lines = [json.loads(line) for line in server.log().splitlines()]
    # Not the startup probe's own two sockets (quartchat-probe-…), written before serving.
    access = [
        line
        for line in lines
        if line["logger"] == "hypercorn.access" and "quartchat-probe" not in line.get("path", "")
    ]
    written = [line for line in access if line.get("status") == 101]
    summaries = [line for line in access if "not_written" in line]
    counted = sum(line["not_written"].get("101 socket handshake", 0) for line in summaries)
    assert len(written) + counted == sockets  # every handshake accounted for
    assert counted > 0 and summaries
    windows = math.ceil(took) + 2
    assert len(written) <= per_second * windows
    assert len(summaries) <= windows
    missed = {line["path"] for line in access if line.get("status") == 404}
    assert missed == {f"/rooms/missing-{i}" for i in range(errors)}
    # Not two summaries within a second of each other.
    times = sorted(datetime.fromisoformat(line["time"]) for line in summaries)
    assert all((b - a).total_seconds() >= 0.9 for a, b in pairwise(times))
