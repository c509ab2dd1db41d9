"""SocketWriter and the abort, driven with fakes for Hypercorn's HTTP/1.1 protocol and
TCP server around a real Hypercorn WSStream, over a real socket pair (the peer reads
what the server side wrote)."""

from __future__ import annotations

import asyncio
import socket
import struct
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any, cast
from unittest.mock import AsyncMock

import pytest
from hypercorn.asyncio.worker_context import WorkerContext
from hypercorn.config import Config
from hypercorn.logging import Logger
from hypercorn.protocol.events import Data, Event, Request, Response
from hypercorn.protocol.ws_stream import ASGIWebsocketState, WSStream
from hypercorn.typing import ConnectionState as HypercornConnectionState
from hypercorn.typing import WebsocketAcceptEvent
from wsproto.connection import Connection, ConnectionType
from wsproto.events import CloseConnection, TextMessage
from wsproto.extensions import PerMessageDeflate

from quartchat.internals import transport
from quartchat.internals.transport import LINGER_THEN_RESET, SocketWriter
from quartchat.wire.framing import PING, EventBatch, Frame

HANDSHAKE = [
    (b"host", b"localhost"),
    (b"connection", b"Upgrade"),
    (b"upgrade", b"websocket"),
    (b"sec-websocket-version", b"13"),
    (b"sec-websocket-key", b"UnQ3lpJAH6j2PslA993iKQ=="),
]
DEFLATE_OFFER = (b"sec-websocket-extensions", b"permessage-deflate")


class FakeTCPServer:
    """Stands for hypercorn.asyncio.tcp_server.TCPServer: holds the writer."""

    def __init__(self, writer: Any) -> None:
        self.writer = writer
        self.events: list[Event] = []

    async def protocol_send(self, event: Event) -> None:
        self.events.append(event)


class FakeH11Protocol:
    """Stands for hypercorn.protocol.h11.H11Protocol: `send` is the server's
    protocol_send, and streams are given its `stream_send`."""

    def __init__(self, server: FakeTCPServer) -> None:
        self.send = server.protocol_send
        self.events: list[Event] = []

    async def stream_send(self, event: Event) -> None:
        self.events.append(event)


@dataclass
class Socket:
    stream: WSStream
    protocol: FakeH11Protocol
    writer: asyncio.StreamWriter
    peer: socket.socket
    writes: list[bytes] = field(default_factory=list)  # StreamWriter.write
    transport_writes: list[bytes] = field(default_factory=list)  # its transport's, all

    def frames_sent_down_the_chain(self) -> list[bytes]:
        return [event.data for event in self.protocol.events if isinstance(event, Data)]

    async def peer_reads(self, size: int) -> bytes:
        """Exactly `size` bytes as the client receives them."""
        received = b""
        while len(received) < size:
            chunk = await asyncio.to_thread(self.peer.recv, size - len(received))
            assert chunk, f"connection closed after {received!r}"
            received += chunk
        return received


def tcp_pair() -> tuple[socket.socket, socket.socket]:
    """Both ends of a TCP connection on 127.0.0.1 (SO_LINGER means nothing to AF_UNIX)."""
    with socket.create_server(("127.0.0.1", 0)) as listener:
        peer = socket.create_connection(listener.getsockname())
        server_end, _ = listener.accept()
    return server_end, peer


async def open_socket(*headers: tuple[bytes, bytes], accept: bool = True) -> Socket:
    """A Hypercorn WSStream through its handshake, on the server end of a socket pair."""
    server_end, peer = tcp_pair()
    _, writer = await asyncio.open_connection(sock=server_end)
    writes: list[bytes] = []
    write = writer.write

    def recording_write(data: bytes | bytearray | memoryview) -> None:
        writes.append(bytes(data))
        write(data)

    writer.write = recording_write  # type: ignore[method-assign]
    transport_writes: list[bytes] = []
    transport_write = writer.transport.write

    def recording_transport_write(data: bytes | bytearray | memoryview) -> None:
        transport_writes.append(bytes(data))
        transport_write(data)

    writer.transport.write = recording_transport_write  # type: ignore[method-assign]
    protocol = FakeH11Protocol(FakeTCPServer(writer))
    config = Config()
    config.websocket_ping_interval = None
    config._log = AsyncMock(spec=Logger)
    stream = WSStream(
        AsyncMock(), config, WorkerContext(None), AsyncMock(), False, None, None,
        protocol.stream_send, 1,
    )  # fmt: skip
    stream.task_group.spawn_app.return_value = AsyncMock()  # type: ignore[attr-defined]
    request = Request(
        stream_id=1,
        headers=[*HANDSHAKE, *headers],
        http_version="1.1",
        method="GET",
        raw_path=b"/ws/r/u",
        state=HypercornConnectionState({}),
    )
    await stream.handle(request)
    if accept:
        await stream.app_send(cast(WebsocketAcceptEvent, {"type": "websocket.accept"}))
    return Socket(stream, protocol, writer, peer, writes, transport_writes)


@pytest.fixture(name="make_socket")
async def _make_socket(
    monkeypatch: pytest.MonkeyPatch,
) -> AsyncIterator[Callable[..., Any]]:
    """Opens sockets; `SocketWriter()` then finds the last one's ASGI send, as it finds
    Quart's current websocket's under a real server."""
    opened: list[Socket] = []

    async def make(*headers: tuple[bytes, bytes], accept: bool = True) -> Socket:
        opened.append(await open_socket(*headers, accept=accept))
        monkeypatch.setattr(transport, "asgi_send", lambda: opened[-1].stream.app_send)
        return opened[-1]

    yield make
    for opened_socket in opened:
        if not opened_socket.writer.transport.is_closing():
            opened_socket.writer.transport.abort()
        opened_socket.peer.close()
    await asyncio.sleep(0)  # the transports close their sockets on the next loop turn


FRAMES = [Frame(1, "first"), Frame(2, "x" * 300), EventBatch([Frame(0, "a"), Frame(0, "b")])]


async def test_plain_frames_go_out_in_one_write_of_exactly_their_bytes(
    make_socket: Callable[..., Any],
) -> None:
    sock: Socket = await make_socket()
    writer = SocketWriter()
    await writer.send_frames(FRAMES)
    expected = b"".join(bytes(frame.wire) for frame in FRAMES)
    assert sock.writes == [expected]
    assert sock.frames_sent_down_the_chain() == []
    assert (await sock.peer_reads(len(expected)))[-len(expected) :] == expected


async def test_write_now_puts_the_frames_in_the_buffer_at_once(
    make_socket: Callable[..., Any],
) -> None:
    sock: Socket = await make_socket()
    writer = SocketWriter()
    assert writer.can_write_now()
    writer.write_now(FRAMES[:2])
    expected = b"".join(bytes(frame.wire) for frame in FRAMES[:2])
    assert sock.transport_writes == [expected]
    assert sock.frames_sent_down_the_chain() == []
    assert await sock.peer_reads(len(expected)) == expected


async def test_compressed_frames_are_framed_by_the_connections_wsproto(
    make_socket: Callable[..., Any],
) -> None:
    sock: Socket = await make_socket(DEFLATE_OFFER)
    response = next(event for event in sock.protocol.events if isinstance(event, Response))
    accepted = dict(response.headers)[b"sec-websocket-extensions"].decode()
    writer = SocketWriter()
    assert not writer.can_write_now()  # never straight to the buffer when compressed
    await writer.send_frames([Frame(1, "hello " * 20), PING])
    assert sock.transport_writes == []
    [data] = sock.frames_sent_down_the_chain()
    assert data[0] == 0xC1  # FIN, RSV1 (compressed), text

    extension = PerMessageDeflate()
    extension.finalize(accepted)
    client = Connection(ConnectionType.CLIENT, [extension])
    client.receive_data(data)
    events = list(client.events())
    assert [type(event).__name__ for event in events] == ["TextMessage", "Ping"]
    assert isinstance(events[0], TextMessage)
    assert events[0].data == "hello " * 20


@pytest.mark.parametrize("how", ["stream closed", "app closed it", "close frame sent"])
async def test_frames_for_a_closed_socket_are_dropped(
    make_socket: Callable[..., Any], how: str
) -> None:
    sock: Socket = await make_socket()
    writer = SocketWriter()
    if how == "stream closed":
        sock.stream.closed = True
    elif how == "app closed it":
        sock.stream.state = ASGIWebsocketState.CLOSED
    else:
        sock.stream.connection.send(CloseConnection(code=1000))
    await writer.send_frames(FRAMES)
    writer.write_now(FRAMES)
    assert sock.transport_writes == []
    assert sock.frames_sent_down_the_chain() == []


async def test_abort_sets_so_linger_then_aborts(make_socket: Callable[..., Any]) -> None:
    sock: Socket = await make_socket()
    raw = sock.writer.transport.get_extra_info("socket")
    lingers: list[bytes] = []
    abort = sock.writer.transport.abort

    def recording_abort() -> None:
        lingers.append(raw.getsockopt(socket.SOL_SOCKET, socket.SO_LINGER, len(LINGER_THEN_RESET)))
        abort()

    sock.writer.transport.abort = recording_abort  # type: ignore[method-assign]
    assert struct.unpack("ii", LINGER_THEN_RESET) == (1, 0)
    assert SocketWriter().abort() is True
    assert lingers == [LINGER_THEN_RESET]
    await asyncio.sleep(0)  # the transport closes its socket on the next loop turn
    # Unread bytes on the peer's side are not needed: an RST, not a FIN, ends it.
    with pytest.raises(ConnectionResetError):
        while await asyncio.to_thread(sock.peer.recv, 65536):
            pass


async def test_abort_of_a_stream_without_a_tcp_server_reports_it_could_not() -> None:
    assert transport.abort_connection(object()) is False


async def test_refuse_compression_declines_an_offered_permessage_deflate(
    make_socket: Callable[..., Any],
) -> None:
    sock: Socket = await make_socket(DEFLATE_OFFER, accept=False)
    assert transport.refuse_compression() is True
    await sock.stream.app_send(cast(WebsocketAcceptEvent, {"type": "websocket.accept"}))
    response = next(event for event in sock.protocol.events if isinstance(event, Response))
    assert b"sec-websocket-extensions" not in dict(response.headers)
    writer = SocketWriter()
    assert writer.can_write_now()  # the plain path: no extension on the connection
    await writer.send_frames(FRAMES[:1])
    assert sock.writes == [bytes(FRAMES[0].wire)]


async def test_without_a_hypercorn_stream_frames_go_through_quart(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    sent: list[str] = []

    async def quart_send(text: str) -> None:
        sent.append(text)

    monkeypatch.setattr(transport, "asgi_send", lambda: None)
    monkeypatch.setattr(transport, "websocket", type("Websocket", (), {"send": quart_send}))
    writer = SocketWriter()
    assert not writer.can_write_now()
    assert writer.abort() is False
    await writer.send_frames([*FRAMES, PING])
    assert sent == ["first", "x" * 300, "a", "b"]  # ASGI cannot ping: PING is left out
