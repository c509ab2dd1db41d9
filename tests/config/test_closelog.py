"""Every socket close the server decides is one log line with its code, reason, room and
user, read from a real server's output in both formats."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import httpx
import pytest
from websockets.asyncio.client import ClientConnection
from websockets.exceptions import ConnectionClosed

from tests.support import RunningServer, create_room, create_user, open_socket, served

pytestmark = pytest.mark.server  # starts servers of its own (tests/support/tiers.py)


async def closed_with(ws: ClientConnection, timeout: float = 20) -> int | None:
    """Read (and drop) frames until the server closes; its close code."""
    try:
        async with asyncio.timeout(timeout):
            while True:
                await ws.recv()
    except ConnectionClosed:
        pass
    return ws.close_code


# The startup probe closes one of its own sockets with 1002 (quartchat/process/probe.py).
PROBE = "quartchat-probe-"


def json_lines(server: RunningServer) -> list[dict[str, Any]]:
    return [json.loads(line) for line in server.log().splitlines()]


def closes(server: RunningServer) -> list[dict[str, Any]]:
    """The close lines of the test's sockets (not the startup probe's, logged before)."""
    return [
        line
        for line in json_lines(server)
        if line["logger"] == "quartchat.closes" and not line["room_id"].startswith(PROBE)
    ]


async def wait_for(server: RunningServer, text: str) -> None:
    deadline = asyncio.get_running_loop().time() + 10
    while text not in server.log():
        assert asyncio.get_running_loop().time() < deadline, server.log()
        await asyncio.sleep(0.05)


async def test_each_close_is_one_json_line(tmp_path: Path) -> None:
    env = {
        "LOG_FORMAT": "json",
        "MAX_SOCKETS_PER_USER": "1",
        "SEND_QUEUE_SIZE": "32",
        "MAX_MESSAGE_CHARS": "60000",
    }
    async with served(tmp_path, env) as (server, http):
        room, user, other, sender = (
            await create_room(http),
            await create_user(http),
            await create_user(http),
            await create_user(http),
        )
        async with open_socket(server, "no-such-room", user["id"]) as ws:
            assert await closed_with(ws) == 4404
        async with open_socket(server, room["id"], user["id"]) as first:
            async with open_socket(server, room["id"], user["id"]) as second:
                assert await closed_with(second) == 4429
            await first.send("x" * 70_000)
            assert await closed_with(first) == 1009
        async with open_socket(server, room["id"], other["id"], max_queue=4) as slow:
            await _post_until_closed(http, room["id"], sender["id"], server)
            assert await closed_with(slow, 60) == 4008
        await wait_for(server, '"close_code": 4008')
    found = {line["close_code"]: line for line in closes(server)}
    assert sorted(line["close_code"] for line in closes(server)) == [1009, 4008, 4404, 4429]
    assert found[4404]["room_id"] == "no-such-room" and found[4404]["user_id"] == user["id"]
    assert found[4404]["close_reason"] == "room 'no-such-room' not found"
    assert found[4429]["close_reason"] == "too many sockets for this user (limit 1)"
    assert found[1009]["room_id"] == room["id"] and found[1009]["user_id"] == user["id"]
    assert found[4008]["user_id"] == other["id"] and found[4008]["level"] == "WARNING"
    for line in found.values():
        assert set(line) >= {"time", "level", "logger", "message", "request_id"}
        assert line["request_id"] != "-"  # the socket's own, as its access line has it
        assert f"socket closed with {line['close_code']} (" in line["message"]
    handshakes = [
        line
        for line in json_lines(server)
        if line["logger"] == "hypercorn.access" and line.get("status") == 101
    ]
    assert found[4404]["request_id"] in {line["request_id"] for line in handshakes}


async def _post_until_closed(
    http: httpx.AsyncClient, room_id: str, user_id: str, server: RunningServer
) -> None:
    """Post big messages until the server logged a 4008 (the socket stopped reading)."""
    for i in range(2000):
        body = {"user_id": user_id, "content": f"{i:05d}" + "x" * 50_000}
        assert (await http.post(f"/rooms/{room_id}/messages", json=body)).status_code == 201
        if i % 10 == 9 and '"close_code": 4008' in server.log():
            return
    raise AssertionError("no socket was closed with 4008")


async def test_refusals_and_floods_in_the_text_format(tmp_path: Path) -> None:
    env = {
        "AUTH_SECRET": "a-secret-for-the-test-only-0123456789",
        "RATE_LIMIT_PER_SECOND": "1",
        "RATE_LIMIT_BURST": "1",
        "RATE_LIMIT_STRIKES": "3",
    }
    async with served(tmp_path, env) as (server, http):
        user = await create_user(http)
        http.headers["Authorization"] = f"Bearer {user['token']}"
        room = await create_room(http)
        async with open_socket(server, room["id"], user["id"], "token=forged") as ws:
            assert await closed_with(ws) == 4401
        async with open_socket(server, room["id"], user["id"], f"token={user['token']}") as ws:
            for _ in range(20):
                await ws.send('{"type": "ping"}')
            assert await closed_with(ws) == 1008
        await wait_for(server, "socket closed with 1008")
    lines = [
        line
        for line in server.log().splitlines()
        if " quartchat.closes " in line and f"room {PROBE}" not in line
    ]
    assert len(lines) == 2, lines
    unauthorized, flooding = lines
    assert " INFO quartchat.closes [" in unauthorized
    assert unauthorized.endswith(
        f"socket closed with 4401 (the token is not valid): room {room['id']}, user {user['id']}"
    )
    assert " WARNING quartchat.closes [" in flooding
    assert flooding.endswith(
        f"socket closed with 1008 (rate limit exceeded): room {room['id']}, user {user['id']}"
    )
