"""InlineWebsocketConnection driven as Hypercorn drives an ASGI app: a Quart app with
one websocket route, called with a fake ASGI receive (a list of events) and send."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from quart import Quart, websocket

from quartchat.internals import inline_socket, transport
from quartchat.internals.inline_socket import InlineWebsocketConnection

SCOPE: dict[str, Any] = {
    "type": "websocket",
    "asgi": {"spec_version": "2.3", "version": "3.0"},
    "scheme": "ws",
    "http_version": "1.1",
    "path": "/ws",
    "raw_path": b"/ws",
    "query_string": b"",
    "root_path": "",
    "headers": [(b"host", b"localhost")],
    "client": ("127.0.0.1", 50000),
    "server": ("127.0.0.1", 8000),
    "subprotocols": [],
    "extensions": {"websocket.http.response": {}},
}


class FakeServer:
    """What Hypercorn hands the app: `receive` gives these events in order (then waits
    forever, as a socket with nothing more to say), `send` records what the app sent."""

    def __init__(self, *events: dict[str, Any]) -> None:
        self.events = list(events)
        self.sent: list[dict[str, Any]] = []
        self.receives = 0

    async def receive(self) -> dict[str, Any]:
        self.receives += 1
        if self.events:
            return self.events.pop(0)
        await asyncio.Event().wait()
        raise AssertionError("unreachable")

    async def send(self, message: dict[str, Any]) -> None:
        self.sent.append(message)


def text(data: str) -> dict[str, Any]:
    return {"type": "websocket.receive", "bytes": None, "text": data}


def chat_app(route: Callable[[], Awaitable[None]]) -> Quart:
    app = Quart(__name__)
    app.websocket("/ws")(route)
    inline_socket.init_app(app)
    return app


async def serve(app: Quart, server: FakeServer) -> None:
    async with asyncio.timeout(5):  # in this task: no task of its own, unlike wait_for
        await app(dict(SCOPE), server.receive, server.send)  # type: ignore[arg-type]


async def test_the_route_receives_frames_from_the_asgi_receive_in_its_own_task() -> None:
    received: list[str | bytes] = []
    route_tasks: list[asyncio.Task[Any] | None] = []

    async def route() -> None:
        route_tasks.append(asyncio.current_task())
        for _ in range(3):
            received.append(await websocket.receive())
        await websocket.send("done")

    server = FakeServer(
        {"type": "websocket.connect"}, text("one"), {"type": "websocket.receive", "bytes": b"2"},
        text("three"),
    )  # fmt: skip
    app = chat_app(route)
    assert app.asgi_websocket_class is InlineWebsocketConnection
    call = asyncio.ensure_future(serve(app, server))
    await call
    assert received == ["one", b"2", "three"]
    assert route_tasks == [call]  # no receiver task of Quart's: the ASGI call's own
    assert server.receives == 4  # every frame read when asked, none read ahead
    assert server.sent[0]["type"] == "websocket.accept"
    assert server.sent[1:] == [
        {"type": "websocket.send", "bytes": None, "text": "done"},
        {"type": "websocket.close", "code": 1000},  # Quart's, once the route returned
    ]


async def test_a_disconnect_ends_the_route_silently_and_its_cleanup_runs() -> None:
    steps: list[str] = []

    async def route() -> None:
        try:
            while True:
                steps.append(str(await websocket.receive()))
        except Exception:  # Quart's handlers would be: a disconnect must pass them
            steps.append("caught as an error")
        finally:
            steps.append("cleanup")

    server = FakeServer(text("hello"), {"type": "websocket.disconnect", "code": 1001})
    await serve(chat_app(route), server)  # returns: no exception escapes the call
    assert steps == ["hello", "cleanup"]
    assert [message["type"] for message in server.sent] == ["websocket.accept"]  # no close


async def test_a_disconnect_before_the_route_receives_ends_it_at_its_first_receive() -> None:
    reached: list[str] = []

    async def route() -> None:
        reached.append("started")
        await websocket.receive()
        reached.append("after receive")

    await serve(chat_app(route), FakeServer({"type": "websocket.disconnect", "code": 1006}))
    assert reached == ["started"]


async def test_the_route_error_is_still_quarts_to_handle() -> None:
    async def route() -> None:
        await websocket.receive()
        raise RuntimeError("the route failed")

    app = chat_app(route)
    app.config["PROPAGATE_EXCEPTIONS"] = True
    with pytest.raises(RuntimeError, match="the route failed"):
        await serve(app, FakeServer(text("x")))


async def test_transport_finds_the_asgi_send_behind_the_route_websocket() -> None:
    found: list[object] = []

    async def route() -> None:
        found.append(transport.asgi_send())

    server = FakeServer()
    await serve(chat_app(route), server)
    assert found == [server.send]
