"""A connection served by Hypercorn's own connection class over loopback, with fake apps."""

from __future__ import annotations

import asyncio
import time

from hypercorn.config import Config
from hypercorn.typing import ASGIReceiveCallable, ASGISendCallable, Scope
from hypercorn.utils import wrap_app
from wsproto.events import AcceptConnection, CloseConnection, Request, TextMessage

from quartchat.internals import loopback
from quartchat.process.probe_client import ProbeSocket


class EchoApp:
    """An ASGI app that accepts every socket and sends back what it receives."""

    def __init__(self) -> None:
        self.clients: list[tuple[str, int] | None] = []

    async def __call__(
        self, scope: Scope, receive: ASGIReceiveCallable, send: ASGISendCallable
    ) -> None:
        if scope["type"] != "websocket":
            return
        self.clients.append(scope["client"])
        await receive()  # websocket.connect
        await send({"type": "websocket.accept", "subprotocol": None, "headers": []})
        while (event := await receive())["type"] == "websocket.receive":
            await send({"type": "websocket.send", "bytes": None, "text": event["text"]})


async def never_reads(scope: Scope, receive: ASGIReceiveCallable, send: ASGISendCallable) -> None:
    if scope["type"] == "websocket":
        await receive()
        await send({"type": "websocket.accept", "subprotocol": None, "headers": []})
        await asyncio.Event().wait()  # a route whose receive never delivers


async def open_socket(client: ProbeSocket) -> None:
    client.send(Request(host="localhost", target="/anything"))
    assert isinstance(await client.next_event(), AcceptConnection)


async def test_a_socket_is_served_as_a_tcp_client_is() -> None:
    app = EchoApp()
    config = Config()
    served = wrap_app(app, config.wsgi_max_body_size, "asgi")
    async with loopback.connection(served, config) as (reader, writer, serving):
        client = ProbeSocket(reader, writer)
        await open_socket(client)
        client.send(TextMessage("hello"))
        echoed = await client.next_event()
        assert isinstance(echoed, TextMessage) and echoed.data == "hello"
        client.send(CloseConnection(1000))
        assert isinstance(await client.next_event(), CloseConnection)
        await client.wait_closed()
        await asyncio.wait_for(serving, 5)
    [peer] = app.clients
    assert peer is not None
    host, port = peer
    assert host in {"127.0.0.1", "::1"} and port > 0


async def test_a_server_end_that_never_finishes_is_cancelled_on_the_way_out() -> None:
    config = Config()
    started = time.monotonic()
    async with loopback.connection(
        wrap_app(never_reads, config.wsgi_max_body_size, "asgi"), config
    ) as (reader, writer, serving):
        await open_socket(ProbeSocket(reader, writer))
    assert serving.done()
    assert time.monotonic() - started < loopback.SERVER_END_WITHIN + 5
