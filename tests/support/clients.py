"""Client helpers over HTTP and `websockets`: make rooms and users, open sockets, read frames."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Sequence
from contextlib import AsyncExitStack, asynccontextmanager
from typing import Any

import httpx
from websockets.asyncio.client import ClientConnection, connect

from tests.support.servers import RunningServer

__all__ = [
    "TimedConnection",
    "assert_silent",
    "create_room",
    "create_user",
    "open_socket",
    "open_sockets",
    "receive_json",
    "receive_messages",
    "receive_type",
    "round_trips_during",
    "send_from_all",
    "stored_messages",
    "unique_id",
]


def unique_id(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


async def create_user(http: httpx.AsyncClient, username: str = "John Doe") -> dict[str, Any]:
    response = await http.post("/users", json={"username": username, "id": unique_id("user")})
    assert response.status_code == 201, response.text
    user: dict[str, Any] = response.json()
    return user


async def create_room(http: httpx.AsyncClient, name: str = "General") -> dict[str, Any]:
    response = await http.post("/rooms", json={"name": name, "id": unique_id("room")})
    assert response.status_code == 201, response.text
    room: dict[str, Any] = response.json()
    return room


async def stored_messages(http: httpx.AsyncClient, room_id: str) -> list[dict[str, Any]]:
    """What the room has stored, oldest first (up to a page of 500)."""
    response = await http.get(f"/rooms/{room_id}/messages", params={"limit": 500})
    assert response.status_code == 200, response.text
    messages: list[dict[str, Any]] = response.json()
    return messages


class TimedConnection(ClientConnection):
    """A `websockets` client connection that notes when the server's close frame
    arrived and when the TCP connection ended (`connect(create_connection=...)`)."""

    close_received_at: float | None = None
    lost_at: float | None = None

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.close_frame_arrived = asyncio.Event()

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        if self.close_received_at is None and self.protocol.close_rcvd is not None:
            self.close_received_at = time.monotonic()
            self.close_frame_arrived.set()

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost_at = time.monotonic()
        if self.close_received_at is None and self.protocol.close_rcvd is not None:
            self.close_received_at = self.lost_at
        super().connection_lost(exc)

    @property
    def close_seconds(self) -> float:
        """From the server's close frame to the end of the TCP connection."""
        assert self.close_received_at is not None, "no close frame from the server"
        assert self.lost_at is not None, "the connection is still open"
        return self.lost_at - self.close_received_at


def open_socket(
    server: RunningServer, room_id: str, user_id: str, query: str = "", **options: Any
) -> Any:
    """`async with open_socket(...) as ws:` — a websockets client on the chat socket."""
    suffix = f"?{query}" if query else ""
    return connect(f"{server.ws_url}/ws/{room_id}/{user_id}{suffix}", open_timeout=10, **options)


@asynccontextmanager
async def open_sockets(
    targets: Sequence[tuple[RunningServer, str, str]],
) -> AsyncIterator[list[ClientConnection]]:
    """Several chat sockets (server, room id, user id) at once, all closed on exit."""
    async with AsyncExitStack() as stack:
        yield [await stack.enter_async_context(open_socket(*target)) for target in targets]


async def send_from_all(connections: Sequence[ClientConnection], per_sender: int) -> None:
    """Every socket sends `per_sender` messages "<its index>:<i>", all at the same time."""

    async def send_all(ws: ClientConnection, index: int) -> None:
        for i in range(per_sender):
            await ws.send(json.dumps({"content": f"{index}:{i}"}))

    await asyncio.gather(*(send_all(ws, index) for index, ws in enumerate(connections)))


async def receive_json(ws: ClientConnection, timeout: float = 5) -> dict[str, Any]:
    raw = await asyncio.wait_for(ws.recv(), timeout)
    frame: dict[str, Any] = json.loads(raw)
    return frame


async def receive_type(ws: ClientConnection, frame_type: str, timeout: float = 5) -> dict[str, Any]:
    """The next frame of `frame_type`, skipping others (presence, typing...)."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        remaining = deadline - asyncio.get_running_loop().time()
        frame = await receive_json(ws, max(remaining, 0.01))
        if frame["type"] == frame_type:
            return frame


async def receive_messages(
    ws: ClientConnection, count: int, timeout: float = 10
) -> list[dict[str, Any]]:
    return [await receive_type(ws, "message", timeout) for _ in range(count)]


async def assert_silent(
    ws: ClientConnection, frame_type: str = "message", wait: float = 0.5
) -> None:
    """Assert no frame of `frame_type` arrives within `wait` seconds."""
    try:
        frame = await receive_type(ws, frame_type, wait)
    except TimeoutError:
        return
    raise AssertionError(f"unexpected {frame_type} frame: {frame}")


async def round_trips_during(ws: ClientConnection, work: Awaitable[Any]) -> list[float]:
    """Seconds of each ping -> pong round trip `ws` makes, one after another, until
    `work` is done (at least one round trip)."""
    done = asyncio.ensure_future(work)
    times: list[float] = []
    try:
        while not done.done() or not times:
            started = time.monotonic()
            await ws.send('{"type": "ping"}')
            await receive_type(ws, "pong", timeout=30)
            times.append(time.monotonic() - started)
            await asyncio.sleep(0.02)
    finally:
        await done
    return times
