"""Budgets of what one client may make a room do: sockets opened per user and per
address (close 4429), join/leave churn cancelled before it reaches the room, and typing
per user (dropped past the budget), each next to a neighbour timing its echoes."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from pathlib import Path
from typing import Any

import pytest
from websockets.asyncio.client import ClientConnection
from websockets.exceptions import ConnectionClosed

from tests.support import (
    create_room,
    create_user,
    open_socket,
    receive_json,
    receive_type,
    served,
)
from tests.support.watch import neighbour

pytestmark = pytest.mark.server  # starts servers of its own (tests/support/tiers.py)


async def count_frames(ws: ClientConnection, counts: dict[str, int], *user_ids: str) -> None:
    """Count the frames about `user_ids` a listener receives, by type, until cancelled."""
    with contextlib.suppress(ConnectionClosed):
        async for raw in ws:
            frame = json.loads(raw)
            if frame.get("user_id") in user_ids:
                counts[frame["type"]] = counts.get(frame["type"], 0) + 1


async def churn(server: Any, room_id: str, user_ids: list[str], seconds: float) -> dict[str, int]:
    """Open and close sockets as fast as possible for `seconds`, 10 at a time (each
    loop as its own user while there are enough); returns how the server answered:
    "opened" (a first pong), or the close code and reason."""
    outcomes: dict[str, int] = {}
    deadline = time.monotonic() + seconds

    async def loop(index: int) -> None:
        n = index
        while time.monotonic() < deadline:
            user = user_ids[n % len(user_ids)]
            n += 10
            try:
                async with open_socket(server, room_id, user) as ws:
                    await ws.send('{"type": "ping"}')
                    await receive_type(ws, "pong")
                    outcome = "opened"
            except ConnectionClosed as closed:
                assert closed.rcvd is not None
                outcome = f"{closed.rcvd.code} {closed.rcvd.reason.split(';')[0]}"
            outcomes[outcome] = outcomes.get(outcome, 0) + 1

    await asyncio.gather(*(loop(i) for i in range(10)))
    return outcomes


async def test_one_user_opening_sockets_in_a_loop_is_held_and_cancels_out(
    tmp_path: Path,
) -> None:
    async with served(tmp_path, timeout=30) as (server, http):
        room = await create_room(http)
        attackers = [(await create_user(http))["id"]]
        listeners = [await create_user(http) for _ in range(5)]
        counts: list[dict[str, int]] = [{} for _ in listeners]
        async with neighbour(server, http) as watch:
            await asyncio.sleep(2)
            calm = len(watch.round_trips)
            async with contextlib.AsyncExitStack() as stack:
                sockets = [
                    await stack.enter_async_context(open_socket(server, room["id"], u["id"]))
                    for u in listeners
                ]
                await asyncio.sleep(0.5)  # the listeners' own joins are flushed
                readers = [
                    asyncio.create_task(count_frames(ws, c, *attackers))
                    for ws, c in zip(sockets, counts, strict=True)
                ]
                seconds = 4.0
                outcomes = await churn(server, room["id"], attackers, seconds)
                await asyncio.sleep(0.5)
                for reader in readers:
                    reader.cancel()
            watch.assert_bounded(calm)
        await watch.assert_all_stored(http)
    refused = "4429 too many sockets opened by this user"
    print("opened and closed:", outcomes, "attackers' presence events:", counts)
    assert outcomes.get(refused, 0) > outcomes.get("opened", 0), outcomes
    # The burst (40) and one a second after it; each opened socket is at most a join
    # and a leave, and most of those cancel out within the room's event hold.
    assert outcomes.get("opened", 0) <= 40 + seconds + 2, outcomes
    for listener in counts:
        presence = listener.get("user_joined", 0) + listener.get("user_left", 0)
        assert presence <= 2 * (outcomes.get("opened", 0)), (listener, outcomes)
        assert presence <= 20, (listener, outcomes)  # before: 1,060-1,210 a second


async def test_an_address_opening_sockets_as_many_users_is_held(tmp_path: Path) -> None:
    env = {"SOCKET_OPENS_PER_IP_PER_MINUTE": "60", "SOCKET_OPENS_PER_IP_BURST": "30"}
    async with served(tmp_path, env=env, timeout=30) as (server, http):
        room = await create_room(http)
        users = [(await create_user(http))["id"] for _ in range(50)]
        async with neighbour(server, http) as watch:
            await asyncio.sleep(2)
            calm = len(watch.round_trips)
            outcomes = await churn(server, room["id"], users, 3.0)
            watch.assert_bounded(calm)
        await watch.assert_all_stored(http)
    # The neighbour's own socket was the address's first; then 30 in all, 1 a second.
    assert outcomes.get("opened", 0) <= 30 + 3 + 2, outcomes
    assert outcomes.get("4429 too many sockets opened from this address", 0) > 100, outcomes


async def test_typing_is_limited_per_user_whatever_its_sockets(tmp_path: Path) -> None:
    async with served(tmp_path, timeout=30) as (server, http):
        room = await create_room(http)
        typist, listener_user = await create_user(http), await create_user(http)
        counts: dict[str, int] = {}
        async with neighbour(server, http) as watch, contextlib.AsyncExitStack() as stack:
            listener = await stack.enter_async_context(
                open_socket(server, room["id"], listener_user["id"])
            )
            sockets = [
                await stack.enter_async_context(open_socket(server, room["id"], typist["id"]))
                for _ in range(20)
            ]
            await asyncio.sleep(2)
            calm = len(watch.round_trips)
            reader = asyncio.create_task(count_frames(listener, counts, typist["id"]))
            seconds, sent = 4.0, 0
            deadline = time.monotonic() + seconds
            while time.monotonic() < deadline:  # each socket at 9/s, under its frame budget
                await asyncio.gather(*(ws.send('{"type": "typing"}') for ws in sockets))
                sent += len(sockets)
                await asyncio.sleep(1 / 9)
            # Its messages still go through: typing spends nothing of them.
            await sockets[0].send('{"content": "after typing"}')
            await asyncio.sleep(0.5)
            reader.cancel()
            # Dropped silently: the typist's sockets saw no error frame.
            await sockets[1].send('{"type": "ping"}')
            seen: list[str] = []
            while not seen or seen[-1] != "pong":
                seen.append((await receive_json(sockets[1]))["type"])
            assert "error" not in seen, seen
            watch.assert_bounded(calm)
        await watch.assert_all_stored(http)
    assert sent >= 20 * 9 * 3  # 180 a second offered: the 189-190 of the attack
    # A burst of 3, then 1 a second; before the budget all of them reached the listener.
    assert 3 <= counts.get("typing", 0) <= 3 + seconds + 2, counts
    assert counts.get("message") == 1, counts
