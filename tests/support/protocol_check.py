"""Every frame a test receives from the server is checked against `/asyncapi.json`.

For every test (tests/conftest.py installs a `FrameCheck`), each frame a `websockets`
client receives is checked against the schema of its `type` in the document and each
close code against the document's close codes, and so are the frames of every Chromium
page, once the test is done; `RawWebSocket` checks what it reads too. A frame that does
not match fails the test that received it.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

import jsonschema_rs
import pytest
from playwright.async_api import Browser, BrowserContext, Page, WebSocket
from websockets.asyncio.client import ClientConnection
from websockets.exceptions import ConnectionClosed
from websockets.typing import Data

from quartchat.config.settings import Settings
from quartchat.wire.asyncapi import asyncapi_document

DOCUMENT = asyncapi_document(Settings().max_message_chars, "127.0.0.1", secure=False)
# Besides the server's own: a normal close (1000, 1001), and 1006 for a connection that
# ended without a close frame, which websockets reports but no peer ever sends.
STANDARD_CLOSE_CODES = {1000, 1001, 1006}


class UndocumentedFrameError(AssertionError):
    """A frame from the server that `/asyncapi.json` does not describe."""


def _payload_schemas(action: str) -> dict[str, dict[str, Any]]:
    """{frame type: payload schema} of the operations with this action ("send" are the
    server's frames, "receive" the client's)."""
    channel = DOCUMENT["channels"]["room"]
    schemas = {}
    for operation in DOCUMENT["operations"].values():
        if operation["action"] != action:
            continue
        for reference in operation["messages"]:
            key = reference["$ref"].rsplit("/", 1)[1]
            payload = channel["messages"][key]["payload"]
            schemas[payload["properties"]["type"]["const"]] = payload
    return schemas


SERVER_FRAME_VALIDATORS = {
    frame_type: jsonschema_rs.Draft7Validator(schema, validate_formats=True)
    for frame_type, schema in _payload_schemas("send").items()
}
CLOSE_CODES = {int(code) for code in DOCUMENT["channels"]["room"]["x-close-codes"]}


def check_frame(raw: Data) -> dict[str, Any]:
    """The frame as JSON, if it matches the schema of its `type`; else UndocumentedFrameError."""
    try:
        frame = json.loads(raw)
    except ValueError as error:
        raise UndocumentedFrameError(
            f"the server sent a frame that is not JSON: {raw!r}"
        ) from error
    if not isinstance(frame, dict):
        raise UndocumentedFrameError(f"the server sent a frame that is not an object: {raw!r}")
    validator = SERVER_FRAME_VALIDATORS.get(str(frame.get("type")))
    if validator is None:
        raise UndocumentedFrameError(f"the server sent a frame of an undocumented type: {raw!r}")
    problems = [
        f"{'/'.join(map(str, error.instance_path)) or 'frame'}: {error.message}"
        for error in validator.iter_errors(frame)
    ]
    if problems:
        raise UndocumentedFrameError(
            f"{raw!r} does not match /asyncapi.json: {'; '.join(problems)}"
        )
    return frame


def check_close_code(code: int) -> None:
    if code not in CLOSE_CODES | STANDARD_CLOSE_CODES:
        raise UndocumentedFrameError(f"the server closed with an undocumented code {code}")


class FrameCheck:
    """While installed (the autouse fixture of tests/conftest.py), every websockets
    client's `recv()` (and so `async for`) checks what it returns, and every Chromium page
    made with `new_page()` records the frames its sockets receive for `check_pages()`."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.pages: list[list[Data]] = []
        monkeypatch.setattr(ClientConnection, "recv", _checked(ClientConnection.recv))
        monkeypatch.setattr(Browser, "new_page", self._recording(Browser.new_page))
        monkeypatch.setattr(BrowserContext, "new_page", self._recording(BrowserContext.new_page))

    def _recording(self, new_page: Callable[..., Awaitable[Page]]) -> Callable[..., Any]:
        async def recording_new_page(*args: Any, **kwargs: Any) -> Page:
            page = await new_page(*args, **kwargs)
            self.pages.append(record_page_frames(page))
            return page

        return recording_new_page

    def check_pages(self) -> None:
        for frames in self.pages:
            for frame in frames:
                check_frame(frame)


def _checked(recv: Callable[..., Awaitable[Data]]) -> Callable[..., Awaitable[Data]]:
    async def checked_recv(self: ClientConnection, decode: bool | None = None) -> Data:
        try:
            message = await recv(self, decode)
        except ConnectionClosed as closed:
            if closed.rcvd is not None:
                check_close_code(closed.rcvd.code)
            raise
        check_frame(message)
        return message

    return checked_recv


def record_page_frames(page: Page) -> list[Data]:
    """Collect every frame the page's sockets receive, for `check_frame` later."""
    received: list[Data] = []

    def record(payload: Data) -> None:
        received.append(payload)

    def watch(socket: WebSocket) -> None:
        socket.on("framereceived", record)

    page.on("websocket", watch)
    return received
