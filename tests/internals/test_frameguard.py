"""Control-frame floods and protocol errors, sent as raw frames to a real server."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import httpx
import pytest
from websockets.exceptions import ConnectionClosed

from tests.support import (
    RawWebSocket,
    RunningServer,
    create_room,
    create_user,
    open_socket,
    receive_type,
    round_trips_during,
    start_server,
)

pytestmark = pytest.mark.server  # starts servers of its own (tests/support/tiers.py)

OPCODE_PING, OPCODE_PONG = 0x9, 0xA


async def raw_socket(server: RunningServer, http: httpx.AsyncClient) -> RawWebSocket:
    room, user = await create_room(http), await create_user(http)
    return RawWebSocket(server.port, f"/ws/{room['id']}/{user['id']}")


@pytest.mark.parametrize("opcode", [OPCODE_PING, OPCODE_PONG], ids=["ping", "pong"])
async def test_control_frame_flooder_is_closed_1008_and_its_neighbour_keeps_working(
    server: RunningServer, http: httpx.AsyncClient, opcode: int
) -> None:
    room, neighbour_user = await create_room(http), await create_user(http)
    flooder_user = await create_user(http)
    async with open_socket(server, room["id"], neighbour_user["id"]) as neighbour:
        flooder = RawWebSocket(server.port, f"/ws/{room['id']}/{flooder_user['id']}")
        try:
            # Far more pings than the budget's burst (20) and strikes (50) together, yet
            # few enough for the server to read them all before it closes: unread bytes
            # would turn its close into a reset, and the close frame could be lost.
            await asyncio.to_thread(flooder.sock.sendall, _masked_control(opcode) * 500)
            pongs, code = await asyncio.to_thread(flooder.read_until_close, 30, OPCODE_PONG)
        finally:
            flooder.close()
        assert code == 1008
        # Pings over the budget were dropped, not answered (and pongs need no answer).
        assert (1 <= pongs < 100) if opcode == OPCODE_PING else pongs == 0
        await neighbour.send('{"type": "ping"}')
        await receive_type(neighbour, "pong", timeout=10)
        await asyncio.wait_for(await neighbour.ping(), 10)


async def test_client_pinging_every_second_is_never_closed(tmp_path: Path) -> None:
    server = start_server(
        tmp_path, env={"CONTROL_FRAMES_PER_SECOND": "2", "CONTROL_FRAMES_BURST": "3"}
    )
    try:
        async with httpx.AsyncClient(base_url=server.http_url) as http:
            room, user = await create_room(http), await create_user(http)
        async with open_socket(server, room["id"], user["id"], ping_interval=None) as ws:
            # More pings than the burst: only the refill lets them all through.
            for _ in range(8):
                await asyncio.wait_for(await ws.ping(), 10)
                await asyncio.sleep(1)
            await ws.send('{"type": "ping"}')
            await receive_type(ws, "pong", timeout=10)
    finally:
        server.stop()


@pytest.mark.parametrize(
    ("frame", "expected"),
    [
        pytest.param({"opcode": 0x1, "payload": b"\xff\xfe{}"}, 1007, id="invalid-utf8"),
        pytest.param({"opcode": 0x1, "payload": b"{}", "rsv": 0b100}, 1002, id="rsv-bits"),
        pytest.param({"opcode": 0x3}, 1002, id="reserved-opcode"),
        pytest.param({"opcode": 0x1, "payload": b"{}", "mask": False}, 1002, id="unmasked"),
        pytest.param({"opcode": 0x0, "payload": b"x"}, 1002, id="continuation-first"),
    ],
)
async def test_protocol_error_gets_a_close_frame_with_its_code(
    server: RunningServer, http: httpx.AsyncClient, frame: dict[str, object], expected: int
) -> None:
    raw = await raw_socket(server, http)
    try:
        raw.send_frame(**frame)  # type: ignore[arg-type]
        _, code = await asyncio.to_thread(raw.read_until_close, 10)
    finally:
        raw.close()
    assert code == expected
    # The server is unharmed and the next socket works.
    room, user = await create_room(http), await create_user(http)
    async with open_socket(server, room["id"], user["id"]) as ws:
        await ws.send('{"type": "ping"}')
        await receive_type(ws, "pong", timeout=10)


def _masked_control(opcode: int) -> bytes:
    return bytes([0x80 | opcode, 0x80]) + b"\x00\x00\x00\x00"


OFFER_DEFLATE = "Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n"
# 1 GiB of zeros in about 1 MiB: unbounded, seconds of a core; bounded, next to nothing
# (generous for a loaded 2-core machine).
BOMB, BOMB_CPU = 1 << 30, 0.5


async def test_compressed_frame_inflating_past_the_limit_is_refused_1009_before(
    tmp_path: Path,
) -> None:
    server = start_server(tmp_path, env={"WS_COMPRESSION": "true"})
    try:
        async with httpx.AsyncClient(base_url=server.http_url, timeout=10) as http:
            room, alice, bob = (
                await create_room(http),
                await create_user(http),
                await create_user(http),
            )
            path = f"/ws/{room['id']}/{alice['id']}"
            async with open_socket(server, room["id"], bob["id"]) as bob_ws:
                bomber = await asyncio.to_thread(
                    RawWebSocket, server.port, path, headers=OFFER_DEFLATE
                )
                try:
                    assert b"permessage-deflate" in bomber.response.lower()
                    await receive_type(bob_ws, "user_joined")
                    cpu = server.cpu_seconds()
                    rtts = await round_trips_during(
                        bob_ws, asyncio.to_thread(bomber.send_deflate_bomb, BOMB)
                    )
                    _, code = await asyncio.to_thread(bomber.read_until_close, 10)
                    cpu = server.cpu_seconds() - cpu
                    bomber.send_close(1009)
                    bomber.sock.settimeout(10)
                    # The reply ends the connection cleanly (FIN), not by the timeout.
                    assert await asyncio.to_thread(bomber.sock.recv, 1024) == b""
                finally:
                    bomber.close()
                print(
                    f"\naccepted, deflate bomb: server CPU {cpu:.3f} s, neighbour round "
                    f"trip max {max(rtts) * 1000:.0f} ms over {len(rtts)}"
                )
                assert code == 1009
                assert cpu < BOMB_CPU
                assert max(rtts) < 1.0
                left = await receive_type(bob_ws, "user_left")
                assert left["user_id"] == alice["id"]
                presence = await http.get(f"/rooms/{room['id']}/presence")
                assert [member["user_id"] for member in presence.json()] == [bob["id"]]
    finally:
        server.stop()


async def test_compressed_messages_still_work(tmp_path: Path) -> None:
    server = start_server(tmp_path, env={"WS_COMPRESSION": "true"})
    try:
        async with httpx.AsyncClient(base_url=server.http_url, timeout=10) as http:
            room, user = await create_room(http), await create_user(http)
        # websockets offers permessage-deflate by default.
        async with open_socket(server, room["id"], user["id"], max_size=None) as ws:
            assert ws.response.headers["Sec-WebSocket-Extensions"].startswith("permessage-deflate")
            for content in ["hello", "é" * 1000, "x" * 4000]:
                await ws.send(json.dumps({"content": content}))
                assert (await receive_type(ws, "message", timeout=10))["content"] == content
            # 60 KB inflated: under the frame limit, so the app reads it (and refuses it).
            await ws.send(json.dumps({"content": "x" * 60_000}))
            error = await receive_type(ws, "error", timeout=10)
            assert error["code"] == "INVALID_CONTENT"
            # 100 KB of text that deflates to a few hundred bytes is still over 64 KiB.
            await ws.send(json.dumps({"content": "x" * 100_000}))
            with pytest.raises(ConnectionClosed) as closed:
                await receive_type(ws, "message", timeout=10)
            assert closed.value.rcvd is not None and closed.value.rcvd.code == 1009
    finally:
        server.stop()
