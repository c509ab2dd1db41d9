"""The check every test gets from tests/conftest.py: a frame or close code that
`/asyncapi.json` does not describe fails the test that receives it, whichever client
received it."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator

import pytest
from websockets.asyncio.client import connect
from websockets.asyncio.server import Server, ServerConnection, serve

from tests.support import RawWebSocket
from tests.support.browser import launch_chromium
from tests.support.protocol_check import (
    FrameCheck,
    UndocumentedFrameError,
    check_close_code,
    check_frame,
)

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


async def test_websockets_clients_fail_on_a_malformed_frame(liar: Server) -> None:
    port = next(iter(liar.sockets)).getsockname()[1]
    async with connect(f"ws://127.0.0.1:{port}/ws/room/user", open_timeout=10) as ws:
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


@pytest.mark.browser
async def test_chromium_pages_fail_on_a_malformed_frame(
    liar: Server, frame_check: FrameCheck
) -> None:
    port = next(iter(liar.sockets)).getsockname()[1]
    async with launch_chromium() as browser:
        page = await browser.new_page()
        received = await page.evaluate(
            """(url) => new Promise((resolve, reject) => {
                const ws = new WebSocket(url);
                ws.onmessage = (event) => resolve(event.data);
                setTimeout(() => reject(new Error("no frame in 20 s")), 20000);
            })""",
            f"ws://127.0.0.1:{port}/ws/room/user",
        )
        # Playwright hands the page's frame events to Python on its own schedule.
        async with asyncio.timeout(20):
            while not any(frame_check.pages):  # noqa: ASYNC110
                await asyncio.sleep(0.05)
    assert frame_check.pages == [[received]]
    with pytest.raises(UndocumentedFrameError, match="does not match"):
        frame_check.check_pages()
    frame_check.pages.clear()  # the failure above is the test's point, not its outcome
