"""10,000 sockets coming and going leave nothing behind: no socket, room, presence
entry or task."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from tests.support import (
    create_room,
    create_user,
    metric,
    open_socket,
    receive_type,
    served,
)

# Starts servers of its own (tests/support/tiers.py); 18 s on a loaded 2-core machine.
pytestmark = [pytest.mark.server, pytest.mark.slow]

CYCLES = 10_000
AT_ONCE = 25


async def test_connect_disconnect_cycles_leave_the_hub_empty(tmp_path: Path) -> None:
    # 400 opens a user in a minute or so: far over the budget for opening sockets,
    # which this test is not about.
    env = {"SOCKET_OPENS_PER_USER_PER_MINUTE": "0", "SOCKET_OPENS_PER_IP_PER_MINUTE": "0"}
    async with served(tmp_path, env=env) as (server, http):
        rooms = [await create_room(http) for _ in range(5)]
        users = [await create_user(http) for _ in range(AT_ONCE)]
        tasks_before = metric((await http.get("/metrics")).text, "quartchat_asyncio_tasks")

        async def cycle(index: int) -> None:
            room = rooms[index % len(rooms)]
            user = users[index % len(users)]
            async with open_socket(server, room["id"], user["id"]) as ws:
                if index % 10 == 0:  # some also talk before leaving
                    await ws.send('{"type": "ping"}')
                    await receive_type(ws, "pong")

        for start in range(0, CYCLES, AT_ONCE):
            await asyncio.gather(*(cycle(i) for i in range(start, start + AT_ONCE)))
        metrics = ""
        for _ in range(50):  # the last leaves are processed right after the closes
            metrics = (await http.get("/metrics")).text
            if metric(metrics, "quartchat_open_sockets") == 0:
                break
            await asyncio.sleep(0.1)
        assert metric(metrics, "quartchat_open_sockets") == 0
        assert metric(metrics, "quartchat_active_rooms") == 0
        # A leak would leave thousands of tasks (three per socket); a handful of the
        # last connections may still be finishing their TCP close.
        assert metric(metrics, "quartchat_asyncio_tasks") <= tasks_before + 10
        for room in rooms:
            assert (await http.get(f"/rooms/{room['id']}/presence")).json() == []
