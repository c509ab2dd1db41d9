"""The startup probe's WebSocket client: wsproto over a stream, one event at a time."""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections import deque

from wsproto import ConnectionType, WSConnection
from wsproto.connection import ConnectionState
from wsproto.events import Event, Ping
from wsproto.utilities import LocalProtocolError

READ_SIZE = 65536


class ConnectionEndedError(Exception):
    """The server closed the TCP connection while the probe still waited for an event."""


class ProbeSocket:
    """A client socket that sends wsproto events or raw bytes and reads events."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._reader = reader
        self._writer = writer
        self._connection = WSConnection(ConnectionType.CLIENT)
        self._events: deque[Event] = deque()
        self.ended = False

    def send(self, event: Event) -> None:
        self._writer.write(self._connection.send(event))

    def send_raw(self, data: bytes) -> None:
        """Bytes wsproto would refuse to make (a broken frame)."""
        self._writer.write(data)

    async def next_event(self) -> Event:
        """The next event the server sent; pings are answered while open (and returned)."""
        while not self._events:
            data = await self._read()
            if not data:
                self.ended = True
            with contextlib.suppress(LocalProtocolError):  # data after the close
                self._connection.receive_data(data or None)
            self._events.extend(self._connection.events())
            if self.ended and not self._events:
                raise ConnectionEndedError
        event = self._events.popleft()
        if isinstance(event, Ping) and self._connection.state is ConnectionState.OPEN:
            self.send(event.response())
        return event

    async def wait_closed(self) -> None:
        """Read until the server ends the TCP connection."""
        while not self.ended:
            if not await self._read():
                self.ended = True

    async def _read(self) -> bytes:
        """The next bytes from the server; b"" once it ended the connection, also when
        it ended it by a reset. (A server that closes after its close frame while its
        pinger's pings are in flight gets the probe's pong after it closed: the kernel
        answers with a reset, and the stream reports BrokenPipeError on its next read.)"""
        try:
            return await self._reader.read(READ_SIZE)
        except (BrokenPipeError, ConnectionResetError):
            return b""


def masked_frame(first_byte: int, payload: bytes) -> bytes:
    """A client frame (masked, as RFC 6455 requires) with any header bits, under 126 bytes."""
    mask = os.urandom(4)
    masked = bytes(byte ^ mask[index % 4] for index, byte in enumerate(payload))
    return bytes((first_byte, 0x80 | len(payload))) + mask + masked
