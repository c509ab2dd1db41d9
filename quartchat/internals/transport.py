"""Reaching past Quart to the ASGI server for what ASGI cannot say.

1. Sending: Quart's `websocket.send` adds a blinker signal per frame, and every frame
   is framed by wsproto and written and drained on its own. The chat's send loop
   hands over every frame waiting in a socket's queue at once, and they go out in one
   write. A server's frames are not masked, so without an extension (compression) the
   bytes of a broadcast frame are the same for every socket: they are encoded once
   (`Frame.wire`) and shared, and written to the connection's stream writer directly.
   With compression negotiated, the connection's own wsproto state frames each one,
   and the write goes down Hypercorn's chain, as Hypercorn would do it.
2. Aborting: a client that stopped reading cannot even take a close frame, and ASGI
   has no way to drop a connection. Under Hypercorn 0.18 the ASGI `send` is bound to
   the connection's stream, whose `send` chain ends at the TCP server holding the
   asyncio transport. Its `abort()` alone (asyncio's or uvloop's) only closes the
   socket: the kernel then still tries to deliver what was unsent, and with the
   client's window shut the connection sits in FIN-WAIT-1 holding megabytes. With
   `SO_LINGER` (on, 0 s) set first, closing resets it (RST) and frees its buffers.

3. Declining compression (`WS_COMPRESSION=false`, the default), which Hypercorn
   otherwise accepts whenever a client offers it.

All fall back to the public behaviour when the objects are not what they were when
this was written (another ASGI server, another Hypercorn): sending goes through
`websocket.send`, and abort and declining do nothing but report they could not.
Startup logs which of them the installed versions allow (internals/shortcuts.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import socket
import struct
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from hypercorn.protocol.events import Data
from hypercorn.protocol.ws_stream import ASGIWebsocketState, WSStream
from quart import websocket
from wsproto.connection import ConnectionState
from wsproto.events import Ping, TextMessage
from wsproto.utilities import LocalProtocolError

from quartchat.wire.framing import PING, Frame

log = logging.getLogger(__name__)

AsgiSend = Callable[[dict[str, Any]], Awaitable[None]]
# struct linger {l_onoff = 1, l_linger = 0}: close() resets the connection
LINGER_THEN_RESET = struct.pack("ii", 1, 0)


def asgi_send() -> AsgiSend | None:
    """The ASGI send callable behind the current Quart websocket, if reachable."""
    send = getattr(websocket, "_send", None)
    if isinstance(send, functools.partial) and send.args and callable(send.args[0]):
        return send.args[0]  # type: ignore[no-any-return]
    return None


def refuse_compression() -> bool:
    """Answer the current handshake without permessage-deflate, even if offered.

    Hypercorn accepts compression whenever a client offers it (every browser does).
    Per socket that is a zlib compressor and decompressor (hundreds of KiB), and every
    broadcast frame compressed once per socket instead of encoded once for all.
    """
    handshake = getattr(getattr(asgi_send(), "__self__", None), "handshake", None)
    if handshake is None or not hasattr(handshake, "extensions"):
        return False
    handshake.extensions = None
    return True


class SocketWriter:
    """Writes text frames to the current websocket and can abort its connection."""

    __slots__ = ("_high_water", "_plain", "_send", "_stream", "_transport", "_writer")

    def __init__(self) -> None:
        send = asgi_send()
        self._send = send
        self._stream = getattr(send, "__self__", None)
        protocol = getattr(getattr(self._stream, "connection", None), "_proto", None)
        self._plain = isinstance(self._stream, WSStream) and not getattr(
            protocol, "extensions", True
        )
        writer = getattr(_tcp_server(self._stream), "writer", None)
        self._writer = writer if isinstance(writer, asyncio.StreamWriter) else None
        self._transport = self._writer.transport if self._writer and self._plain else None
        # Above it the transport pauses its writers; below it a write never waits.
        self._high_water = self._transport.get_write_buffer_limits()[1] if self._transport else 0
        if isinstance(self._stream, WSStream) and self._writer is None:
            _warn_once("Hypercorn's TCP writer is out of reach: frames go down its chain")

    def can_write_now(self) -> bool:
        """Whether a write would go out without waiting (and without compression)."""
        transport = self._transport
        return transport is not None and transport.get_write_buffer_size() < self._high_water

    def write_now(self, frames: Sequence[Frame]) -> None:
        """Write frames without waiting (after `can_write_now`): dropped if the socket is
        closed or closing, as Hypercorn drops what an app sends after the close."""
        stream = self._stream
        transport = self._transport
        assert isinstance(stream, WSStream) and transport is not None
        if stream.closed or stream.state is not ASGIWebsocketState.CONNECTED:
            return
        if stream.connection.state is not ConnectionState.OPEN or transport.is_closing():
            return  # Hypercorn learns of a lost connection from its reader
        if len(frames) == 1:
            transport.write(frames[0].wire)
        else:
            transport.write(b"".join([frame.wire for frame in frames]))

    async def send(self, text: str) -> None:
        """Send one text frame (through Quart when Hypercorn is not underneath)."""
        if self._send is None:
            await websocket.send(text)
        else:
            await self._send({"type": "websocket.send", "bytes": None, "text": text})

    async def send_frames(self, frames: Sequence[Frame]) -> None:
        """Send frames in order, with one write where the stream allows it."""
        stream = self._stream
        if not isinstance(stream, WSStream):
            for frame in frames:
                for part in frame.parts():
                    if part is not PING:  # ASGI cannot ping; the server may do it itself
                        await self.send(part.text)
            return
        if stream.closed or stream.state is not ASGIWebsocketState.CONNECTED:
            return  # Hypercorn drops what an app sends after the close, too
        connection = stream.connection
        if connection.state is not ConnectionState.OPEN:
            return
        if self._plain:
            data = b"".join([frame.wire for frame in frames])
            if self._writer is not None and await _write_and_drain(self._writer, data):
                return
        else:
            try:
                data = b"".join(
                    [connection.send(_event(part)) for frame in frames for part in frame.parts()]
                )
            except LocalProtocolError:
                return
        await stream.send(Data(stream_id=stream.stream_id, data=data))

    def abort(self) -> bool:
        """Reset the TCP connection at once, dropping whatever it still had to send."""
        return abort_connection(self._stream)


_warned: set[str] = set()


def _warn_once(problem: str) -> None:
    """A shortcut that startup found (internals/shortcuts.py) failed on a real connection."""
    if problem not in _warned:
        _warned.add(problem)
        log.warning("socket shortcut off: %s", problem)


def _event(frame: Frame) -> TextMessage | Ping:
    return Ping() if frame is PING else TextMessage(data=frame.text)


async def _write_and_drain(writer: asyncio.StreamWriter, data: bytes) -> bool:
    """Write straight to the connection, as Hypercorn's TCP server would at the end of
    the stream -> protocol -> server chain (which costs more than the write itself for
    a broadcast's small frames). False if the connection failed: the chain then
    repeats the write so that Hypercorn sees the failure and ends the connection."""
    try:
        writer.write(data)
        await writer.drain()
    except (ConnectionError, RuntimeError):
        return False
    return True


def _tcp_server(stream: object) -> object:
    """Hypercorn's TCP server behind a stream: stream.send is the h11 protocol's
    stream_send, whose protocol.send is the server's protocol_send."""
    protocol = getattr(getattr(stream, "send", None), "__self__", None)
    return getattr(getattr(protocol, "send", None), "__self__", None)


def abort_connection(stream: object) -> bool:
    """Reset (RST) the TCP connection behind a Hypercorn stream at once, dropping
    whatever it still had to send; False if the connection is out of reach."""
    writer = getattr(_tcp_server(stream), "writer", None)
    # asyncio's or uvloop's transport (uvloop's is no asyncio.WriteTransport subclass)
    transport = getattr(writer, "transport", None)
    abort = getattr(transport, "abort", None)
    if not callable(abort):
        return False
    sock = transport.get_extra_info("socket")  # type: ignore[union-attr]
    if sock is not None:
        with contextlib.suppress(OSError):  # already closed: nothing left to reset
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, LINGER_THEN_RESET)
    abort()
    return True
