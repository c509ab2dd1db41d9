"""One connection served the way Hypercorn serves each client, for the startup probe.

Hypercorn 0.18's `worker_serve` (hypercorn/asyncio/run.py) hands every connection its
listeners accept to `TCPServer(app, loop, config, context, state, reader, writer)`; no
public API serves a single connection. `connection` does the same for the server end
of a loopback TCP pair that never touches the listening port, so the probe's socket
meets every layer a client's does (Hypercorn's HTTP/1.1 and WebSocket streams, the
frame guard, Quart, the app, the access log) before the listeners accept anyone.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator

from hypercorn.asyncio.tcp_server import TCPServer
from hypercorn.asyncio.worker_context import WorkerContext
from hypercorn.config import Config
from hypercorn.typing import AppWrapper

# How long the server end may take to finish once the client end has gone.
SERVER_END_WITHIN = 1.0


@contextlib.asynccontextmanager
async def connection(
    app: AppWrapper, config: Config
) -> AsyncIterator[tuple[asyncio.StreamReader, asyncio.StreamWriter, asyncio.Task[None]]]:
    """The client end of a connection Hypercorn serves `app` on, and the task serving it.

    On exit the client end is closed, and the server end cancelled if it has not
    finished within SERVER_END_WITHIN (a route that never reads would hold it)."""
    server_sock, client_sock = _connected_pair()
    reader, writer = await asyncio.open_connection(sock=server_sock)
    loop = asyncio.get_running_loop()
    server = TCPServer(app, loop, config, WorkerContext(None), {}, reader, writer)
    serving = asyncio.create_task(_serve(server))
    try:
        client_reader, client_writer = await asyncio.open_connection(sock=client_sock)
    except BaseException:
        serving.cancel()
        raise
    try:
        yield client_reader, client_writer, serving
    finally:
        client_writer.close()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.shield(serving), SERVER_END_WITHIN)
        serving.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await serving


async def _serve(server: TCPServer) -> None:
    await server


def _connected_pair() -> tuple[socket.socket, socket.socket]:
    """(server end, client end) of a TCP connection over loopback, as a client's would
    be (a Unix socket pair where the host has no loopback interface)."""
    for family, host in ((socket.AF_INET, "127.0.0.1"), (socket.AF_INET6, "::1")):
        try:
            with socket.create_server((host, 0), family=family) as listener:
                client = socket.create_connection(listener.getsockname()[:2])
                while True:
                    server, peer = listener.accept()
                    if peer == client.getsockname():
                        break
                    server.close()  # another local process's connection, never served
        except OSError:
            continue
        # Hypercorn sets it on its listening sockets, whose connections inherit it.
        server.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return server, client
    return socket.socketpair()
