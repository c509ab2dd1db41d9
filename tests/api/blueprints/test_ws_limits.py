"""Socket behaviour that needs a server of its own: slow consumers, pings, idle sockets."""

from __future__ import annotations

import asyncio
import json
import uuid
from pathlib import Path
from typing import Any

import pytest
from websockets.asyncio.client import ClientConnection
from websockets.exceptions import ConnectionClosed

from tests.support import (
    RawWebSocket,
    create_room,
    create_user,
    open_socket,
    open_sockets,
    receive_json,
    receive_messages,
    receive_type,
    served,
)

pytestmark = pytest.mark.server  # starts servers of its own (tests/support/tiers.py)


async def test_stalled_client_is_closed_4008_and_the_room_carries_on(tmp_path: Path) -> None:
    env = {"SEND_QUEUE_SIZE": "32", "MAX_MESSAGE_CHARS": "60000"}
    async with served(tmp_path, env=env) as (server, http):
        room = await create_room(http)
        sender, stalled_user, healthy_user = [await create_user(http) for _ in range(3)]
        stalled = RawWebSocket(
            server.port, f"/ws/{room['id']}/{stalled_user['id']}", receive_buffer=4096
        )
        assert stalled.established_on_server()
        total = 300
        async with (
            open_socket(server, room["id"], healthy_user["id"]) as healthy,
            open_socket(server, room["id"], sender["id"]) as sender_ws,
        ):
            await receive_type(healthy, "user_joined")
            receiving = asyncio.create_task(receive_frames(healthy, total))
            # The sender gets its own messages back and must read them too.
            echoes = asyncio.create_task(receive_messages(sender_ws, total, timeout=60))
            for i in range(total):
                await sender_ws.send(json.dumps({"content": f"{i:05d}" + "x" * 50_000}))
                await asyncio.sleep(0.005)  # a pace the healthy readers keep up with
            received = await receiving
            await echoes
            assert [f["seq"] for f in received if f["type"] == "message"] == list(
                range(1, total + 1)
            )
            # The stalled socket left the room when its close was decided, while the
            # messages were still flowing.
            [left] = [f for f in received if f["type"] == "user_left"]
            assert left["user_id"] == stalled_user["id"]
        # The close frame cannot get past what the client never read, so after the
        # close timeout the server drops the connection, without the client's help.
        for _ in range(100):
            if not stalled.established_on_server():
                break
            await asyncio.sleep(0.1)
        assert not stalled.established_on_server()
        stalled.close()


async def receive_frames(ws: ClientConnection, messages: int) -> list[dict[str, Any]]:
    """Every frame up to and including the `messages`-th message frame."""
    frames: list[dict[str, Any]] = []
    while sum(frame["type"] == "message" for frame in frames) < messages:
        frames.append(await receive_json(ws, timeout=60))
    return frames


async def test_server_pings_idle_sockets(tmp_path: Path) -> None:
    async with served(tmp_path, env={"PING_INTERVAL": "0.2"}) as (server, http):
        room = await create_room(http)
        user = await create_user(http)
        raw = RawWebSocket(server.port, f"/ws/{room['id']}/{user['id']}")
        raw.sock.settimeout(5)
        opcode, _ = await asyncio.to_thread(raw.read_frame)
        raw.close()
        assert opcode == 0x9  # ping


@pytest.mark.slow
async def test_idle_socket_stays_open_past_a_minute(tmp_path: Path) -> None:
    async with served(tmp_path) as (server, http):
        room = await create_room(http)
        user = await create_user(http)
        async with open_socket(server, room["id"], user["id"], ping_interval=None) as ws:
            await asyncio.sleep(62)
            await ws.send('{"type": "ping"}')
            await receive_type(ws, "pong")


async def test_flooding_socket_is_rate_limited_then_closed_1008(tmp_path: Path) -> None:
    limits = {"RATE_LIMIT_PER_SECOND": "2", "RATE_LIMIT_BURST": "3", "RATE_LIMIT_STRIKES": "10"}
    async with served(tmp_path, env=limits) as (server, http):
        room = await create_room(http)
        flooder, bystander = await create_user(http), await create_user(http)
        async with (
            open_socket(server, room["id"], bystander["id"]) as calm,
            open_socket(server, room["id"], flooder["id"]) as flood,
        ):
            ids = [str(uuid.uuid4()) for _ in range(4)]
            for i, message_id in enumerate(ids):
                await flood.send(json.dumps({"content": f"m{i}", "id": message_id}))
            refused = await receive_type(flood, "error")
            assert (refused["code"], refused["id"]) == ("RATE_LIMITED", ids[3])
            assert 0 < refused["retry_after"] <= 0.5
            passed = await receive_messages(calm, 3)
            assert [m["content"] for m in passed] == ["m0", "m1", "m2"]
            for i in range(20):
                await flood.send(json.dumps({"content": f"flood {i}"}))
            with pytest.raises(ConnectionClosed) as closed:
                while True:
                    await asyncio.wait_for(flood.recv(), 5)
            assert closed.value.rcvd is not None
            assert (closed.value.rcvd.code, closed.value.rcvd.reason) == (
                1008,
                "rate limit exceeded",
            )
            await calm.send('{"type": "ping"}')
            await receive_type(calm, "pong")
        stored = [m["content"] for m in (await http.get(f"/rooms/{room['id']}/messages")).json()]
        # m3 was refused; of the flood only what the refill allowed got through
        assert stored[:3] == ["m0", "m1", "m2"] and "m3" not in stored
        assert len(stored) < 3 + 10


async def test_sockets_per_user_are_capped_with_4429(tmp_path: Path) -> None:
    async with served(tmp_path, env={"MAX_SOCKETS_PER_USER": "2"}) as (server, http):
        room = await create_room(http)
        user = await create_user(http)
        async with open_sockets([(server, room["id"], user["id"])] * 3) as sockets:
            with pytest.raises(ConnectionClosed) as closed:
                await asyncio.wait_for(sockets[2].recv(), 5)
            assert closed.value.rcvd is not None and closed.value.rcvd.code == 4429
            assert "too many sockets" in closed.value.rcvd.reason
        async with open_socket(server, room["id"], user["id"]) as again:
            await again.send('{"type": "ping"}')
            await receive_type(again, "pong")


async def test_rate_limited_error_names_the_refused_message(tmp_path: Path) -> None:
    limits = {"RATE_LIMIT_PER_SECOND": "0.5", "RATE_LIMIT_BURST": "2", "RATE_LIMIT_STRIKES": "50"}
    async with served(tmp_path, env=limits) as (server, http):
        room = await create_room(http)
        user = await create_user(http)
        async with open_socket(server, room["id"], user["id"]) as ws:
            for i in range(2):
                await ws.send(json.dumps({"content": f"m{i}"}))
            refused_id = str(uuid.uuid4())
            await ws.send(json.dumps({"content": "refused", "id": refused_id}))
            await ws.send(json.dumps({"content": "refused without id"}))
            first = await receive_type(ws, "error", timeout=10)
            second = await receive_type(ws, "error", timeout=10)
            assert first["code"] == second["code"] == "RATE_LIMITED"
            assert first["id"] == refused_id
            assert "id" not in second
            await asyncio.sleep(first["retry_after"] + 0.2)
            await ws.send(json.dumps({"content": "refused", "id": refused_id}))
            resent = await receive_type(ws, "message", timeout=10)
            while resent["id"] != refused_id:
                resent = await receive_type(ws, "message", timeout=10)
            assert resent["content"] == "refused"
