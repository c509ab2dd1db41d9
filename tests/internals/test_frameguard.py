"""Control-frame floods and protocol errors, sent as raw frames to a real server."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
import pytest

from tests.support import (
    RawWebSocket,
    RunningServer,
    create_room,
    create_user,
    open_socket,
    receive_type,
    start_server,
)

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
