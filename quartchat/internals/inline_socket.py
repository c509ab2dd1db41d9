"""Quart's websocket connection with one task per socket instead of two.

Quart 0.22 runs each websocket as two tasks of its own (`ASGIWebsocketConnection`): one
moves every received frame from the ASGI server's queue into a second `asyncio.Queue`
(sending a blinker signal per frame), the other runs the route, and the first cancels
the second when the client disconnects. Per idle socket that is a task, a queue of four
deques and an Event (about 6 KiB), and per received frame a task switch. Here the route
runs in the ASGI call's own task and `websocket.receive()` reads the server's queue
directly; a disconnect ends the route from inside that call (`ClientDisconnected`). The
route waits in `receive()` whenever it is not handling a frame, so it notices a
disconnect as soon as Quart's receiver task would have; what it awaits before that (the
room and user lookups) runs to its end first.
"""

from __future__ import annotations

import contextlib

from hypercorn.typing import ASGIReceiveCallable, ASGISendCallable
from quart import Quart
from quart.asgi import ASGIWebsocketConnection


class ClientDisconnected(BaseException):
    """The client went away: raised by `websocket.receive()`, caught where the route ends.

    A BaseException so that no `except Exception` on the way (Quart's error handlers)
    mistakes it for the route's own failure, and no CancelledError, so that it cannot be
    told apart from a cancellation the task really got."""


class _DirectReceive:
    """Stands where Quart keeps its receive queue: its `get` reads the server's queue."""

    __slots__ = ("_receive",)

    def __init__(self, receive: ASGIReceiveCallable) -> None:
        self._receive = receive

    async def get(self) -> str | bytes:
        while True:
            event = await self._receive()
            if event["type"] == "websocket.receive":
                return event.get("bytes") or event.get("text") or ""  # as Quart reads it
            if event["type"] == "websocket.disconnect":
                raise ClientDisconnected


class InlineWebsocketConnection(ASGIWebsocketConnection):
    """`Quart.asgi_websocket_class`: the route runs in the ASGI call's task."""

    def __init__(self, app: object, scope: object) -> None:
        # Not super().__init__: it makes the asyncio.Queue this class exists to avoid.
        self.app = app  # type: ignore[assignment]
        self.scope = scope  # type: ignore[assignment]
        self._accepted = False
        self._closed = False

    async def __call__(self, receive: ASGIReceiveCallable, send: ASGISendCallable) -> None:
        self.queue = _DirectReceive(receive)  # type: ignore[assignment]
        websocket = self._create_websocket_from_scope(send)
        with contextlib.suppress(ClientDisconnected):  # Quart's ends silently too
            await self.handle_websocket(websocket, send)


def init_app(app: Quart) -> None:
    app.asgi_websocket_class = InlineWebsocketConnection
