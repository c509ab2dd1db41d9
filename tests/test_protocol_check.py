"""The check every socket test relies on: a frame or close code that `/asyncapi.json`
does not describe fails the test that receives it."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import AsyncIterator

import pytest
from websockets.asyncio.server import Server, ServerConnection, serve

from tests.protocol_check import UndocumentedFrameError, check_close_code, check_frame
from tests.support import PROJECT_ROOT, RawWebSocket, connect_checked

MESSAGE = {
    "type": "message",
    "id": "12345678-1234-5678-1234-567812345678",
    "user_id": "test-user",
    "username": "John Doe",
    "content": "Hello!",
    "timestamp": "2025-10-21T12:00:00.123456Z",
    "room_id": "test-room",
    "seq": 1,
}


def test_documented_frames_pass() -> None:
    assert check_frame(json.dumps(MESSAGE)) == MESSAGE
    check_frame('{"type": "pong", "timestamp": "2025-10-21T12:00:00.000000Z"}')
    check_frame(b'{"type": "error", "code": "RATE_LIMITED", "detail": "slow", "retry_after": 1}')
    check_close_code(4008)
    check_close_code(1000)


@pytest.mark.parametrize(
    "frame",
    [
        "not json",
        "[1, 2]",
        '{"content": "no type"}',
        '{"type": "joined"}',
        json.dumps({**MESSAGE, "seq": 0}),
        json.dumps({**MESSAGE, "seq": "1"}),
        json.dumps({**MESSAGE, "extra": True}),
        json.dumps({key: value for key, value in MESSAGE.items() if key != "room_id"}),
        json.dumps({**MESSAGE, "id": "not-a-uuid"}),
        json.dumps({**MESSAGE, "timestamp": "2025-10-21T12:00:00Z"}),
        json.dumps({**MESSAGE, "user_id": "a b"}),
        '{"type": "pong"}',
        '{"type": "error", "code": "SOMETHING_NEW", "detail": "undocumented code"}',
        '{"type": "error", "code": "RATE_LIMITED", "detail": "x", "retry_after": -1}',
        '{"type": "error", "code": "RATE_LIMITED", "detail": "no retry_after"}',
        '{"type": "error", "code": "UNAVAILABLE", "detail": "no id"}',
        '{"type": "typing", "user_id": "u", "username": "", "room_id": "r"}',
    ],
)
def test_malformed_frames_fail(frame: str) -> None:
    with pytest.raises(UndocumentedFrameError):
        check_frame(frame)


def test_undocumented_close_code_fails() -> None:
    with pytest.raises(UndocumentedFrameError):
        check_close_code(4000)


@pytest.fixture(name="liar")
async def _liar() -> AsyncIterator[Server]:
    """A WebSocket server that sends one frame the protocol does not have, then closes
    with a code it does not have either."""

    async def lie(connection: ServerConnection) -> None:
        await connection.send('{"type": "message", "content": "no id, no seq"}')
        await connection.close(4000, "undocumented")

    async with serve(lie, "127.0.0.1", 0) as server:
        yield server


async def test_test_clients_fail_on_a_malformed_frame(liar: Server) -> None:
    port = next(iter(liar.sockets)).getsockname()[1]
    async with connect_checked(f"ws://127.0.0.1:{port}/ws/room/user") as ws:
        with pytest.raises(UndocumentedFrameError, match="does not match"):
            await asyncio.wait_for(ws.recv(), 10)
        with pytest.raises(UndocumentedFrameError, match="4000"):
            await asyncio.wait_for(ws.recv(), 10)
    assert ws.close_code == 4000


async def test_raw_client_fails_on_a_malformed_frame(liar: Server) -> None:
    port = next(iter(liar.sockets)).getsockname()[1]
    raw = await asyncio.to_thread(RawWebSocket, port, "/ws/room/user")
    try:
        with pytest.raises(UndocumentedFrameError):
            await asyncio.to_thread(raw.read_frame)
    finally:
        raw.close()


def test_every_socket_test_uses_the_checked_client() -> None:
    """websockets' own `connect` would receive frames unchecked."""
    plain_connect = re.compile(
        r"from websockets(\.asyncio\.client)? import [^\n]*\bconnect\b|websockets\.connect\("
    )
    unchecked = [
        str(path.relative_to(PROJECT_ROOT))
        for path in (PROJECT_ROOT / "tests").rglob("*.py")
        if path.name != "support.py" and plain_connect.search(path.read_text())
    ]
    assert unchecked == [], "open sockets with tests.support.open_socket or connect_checked"


def test_every_browser_test_checks_its_pages_frames() -> None:
    unchecked = [
        str(path.relative_to(PROJECT_ROOT))
        for path in (PROJECT_ROOT / "tests").rglob("*.py")
        if "new_page(" in (source := path.read_text()) and "record_page_frames(" not in source
    ]
    assert unchecked == [], "record each page's frames with tests.protocol_check.record_page_frames"
