"""Breaks one fast path on purpose, before quartchat imports anything: for tests only.

A test puts this directory on PYTHONPATH (Python imports `sitecustomize` at startup)
and names the break in QUARTCHAT_TEST_BREAK; nothing else reads that variable. Each
break imitates an upstream change the startup probe must catch.
"""

from __future__ import annotations

import asyncio
import os
from typing import Any


def renamed_internal() -> None:
    """Hypercorn renamed the method the frame guard forks."""
    from hypercorn.protocol.ws_stream import WSStream

    del WSStream._handle_events


def receive_never_delivers() -> None:
    """Quart 0.23: the route's websocket reads a buffer of its own that nothing fills."""
    from quart.asgi import ASGIWebsocketConnection

    create = ASGIWebsocketConnection._create_websocket_from_scope

    def detached(self: ASGIWebsocketConnection, send: Any) -> Any:
        websocket = create(self, send)
        websocket._receive = asyncio.Queue().get
        return websocket

    ASGIWebsocketConnection._create_websocket_from_scope = detached  # type: ignore[method-assign]


def aiosqlite_without_execute() -> None:
    import aiosqlite

    del aiosqlite.Connection._execute


def writer_out_of_reach() -> None:
    """Hypercorn wraps its stream writer: every name is still there, but the socket's
    frames can no longer be written straight to the connection."""
    from hypercorn.asyncio.tcp_server import TCPServer

    class WrappedWriter:
        def __init__(self, writer: asyncio.StreamWriter) -> None:
            self._writer = writer

        def __getattr__(self, name: str) -> Any:
            return getattr(self._writer, name)

    run = TCPServer.run

    async def wrapping(self: TCPServer) -> None:
        self.writer = WrappedWriter(self.writer)  # type: ignore[assignment]
        await run(self)

    TCPServer.run = wrapping  # type: ignore[method-assign]


def guard_bypassed() -> None:
    """Hypercorn builds its WebSocket streams from a name the frame guard does not
    replace (the guard installs, and is never used)."""
    from hypercorn.protocol import h11, ws_stream

    create = h11.H11Protocol._create_stream

    async def unguarded(self: h11.H11Protocol, request: Any) -> None:
        installed, h11.WSStream = h11.WSStream, ws_stream.WSStream  # type: ignore[attr-defined]
        try:
            await create(self, request)
        finally:
            h11.WSStream = installed  # type: ignore[attr-defined]

    h11.H11Protocol._create_stream = unguarded  # type: ignore[method-assign]


BREAKS = {
    "renamed_internal": renamed_internal,
    "receive_never_delivers": receive_never_delivers,
    "aiosqlite_without_execute": aiosqlite_without_execute,
    "writer_out_of_reach": writer_out_of_reach,
    "guard_bypassed": guard_bypassed,
}

if os.environ.get("QUARTCHAT_TEST_BREAK"):
    BREAKS[os.environ["QUARTCHAT_TEST_BREAK"]]()
