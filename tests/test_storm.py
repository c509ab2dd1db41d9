"""A redeploy's reconnect storm: 1,000 clients come back at once with ?after= and each
receives exactly what it missed, then the live messages, in order."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest
from websockets.asyncio.client import connect

from tests.support import create_room, create_user, served

pytestmark = pytest.mark.server  # starts servers of its own (tests/support/tiers.py)

CLIENTS = 1000
USERS = 100  # ten sockets each, under MAX_SOCKETS_PER_USER
MISSED = 20
LIVE = 10


async def messages_until(ws: Any, count: int) -> list[dict[str, Any]]:
    got: list[dict[str, Any]] = []
    async with asyncio.timeout(60):
        while len(got) < count:
            frame = json.loads(await ws.recv())
            if frame["type"] == "message":
                got.append(frame)
    return got


async def test_thousand_clients_replay_exactly_what_they_missed(tmp_path: Path) -> None:
    async with served(tmp_path, timeout=30) as (server, http):
        room = await create_room(http)
        users = [await create_user(http) for _ in range(USERS)]
        url = f"/rooms/{room['id']}/messages"
        poster = users[0]["id"]
        last_seen = (await http.post(url, json={"user_id": poster, "content": "seen"})).json()
        for i in range(MISSED):  # posted while every client is away (the redeploy)
            await http.post(url, json={"user_id": poster, "content": f"missed {i}"})

        base = f"{server.ws_url}/ws/{room['id']}/"
        query = f"?after={last_seen['id']}"

        async def client(index: int) -> list[dict[str, Any]]:
            user = users[index % USERS]["id"]
            async with connect(base + user + query, max_queue=None, open_timeout=30) as ws:
                return await messages_until(ws, MISSED + LIVE)

        clients = [asyncio.create_task(client(i)) for i in range(CLIENTS)]
        await asyncio.sleep(0.5)  # most are connecting or replaying now: the seam
        for i in range(LIVE):
            await http.post(url, json={"user_id": poster, "content": f"live {i}"})
        streams = await asyncio.gather(*clients)

        expected = [f"missed {i}" for i in range(MISSED)] + [f"live {i}" for i in range(LIVE)]
        for stream in streams:
            assert [m["content"] for m in stream] == expected
            assert [m["seq"] for m in stream] == list(range(2, 2 + MISSED + LIVE))
