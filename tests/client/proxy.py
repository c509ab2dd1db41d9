"""A reverse proxy that passes HTTP but, while `refuse_upgrades` is set, answers every
WebSocket upgrade with 502, as some corporate proxies do; `stall()` makes the
connections it relays go silent without closing them, like a dead network path."""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass


@dataclass(eq=False)  # one per connection, kept in a set
class _Relay:
    stalled: bool = False


class UpgradeRefusingProxy:
    def __init__(self, upstream_port: int) -> None:
        self.upstream_port = upstream_port
        self.port = 0  # picked by the kernel when it listens (__aenter__)
        self.refuse_upgrades = True
        self.refused = 0
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._relays: set[_Relay] = set()

    @property
    def http_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def __aenter__(self) -> UpgradeRefusingProxy:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    def stall(self) -> None:
        """Forward nothing more on the connections open now (new ones still pass)."""
        for relay in self._relays:
            relay.stalled = True

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        try:
            await self._relay(reader, writer)
        except (ConnectionError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
            pass
        finally:
            self._tasks.discard(task)
            writer.close()

    async def _relay(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        # Browsers open a fresh connection for each WebSocket, so the first request of
        # a connection says whether it is an upgrade; the rest of it is piped as is.
        head = await reader.readuntil(b"\r\n\r\n")
        if b"\r\nupgrade: websocket" in head.lower() and self.refuse_upgrades:
            self.refused += 1
            body = b"WebSocket upgrades are not allowed here"
            writer.write(
                b"HTTP/1.1 502 Bad Gateway\r\nContent-Type: text/plain\r\nConnection: close\r\n"
                + f"Content-Length: {len(body)}\r\n\r\n".encode()
                + body
            )
            await writer.drain()
            return
        upstream_reader, upstream_writer = await asyncio.open_connection(
            "127.0.0.1", self.upstream_port
        )
        upstream_writer.write(head)
        relay = _Relay()
        self._relays.add(relay)
        try:
            await asyncio.gather(
                _pipe(reader, upstream_writer, relay), _pipe(upstream_reader, writer, relay)
            )
        finally:
            self._relays.discard(relay)
            upstream_writer.close()


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, relay: _Relay) -> None:
    with contextlib.suppress(ConnectionError):
        while chunk := await reader.read(65536):
            if relay.stalled:
                continue  # swallowed: the other side never hears of it
            writer.write(chunk)
            await writer.drain()
    with contextlib.suppress(ConnectionError, OSError):
        writer.write_eof()
