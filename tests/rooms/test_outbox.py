"""The send side of a socket, under a real Hypercorn serving the app in this process,
where the tasks it holds can be counted."""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
from hypercorn.asyncio import serve
from hypercorn.config import Config
from websockets.asyncio.client import ClientConnection, connect

from quartchat.process.app import create_app
from quartchat.rooms.chat import EXTENSION_KEY, Chat
from tests.support import receive_type, unique_id

SOCKETS = 10
# What Hypercorn itself holds per open websocket: its connection's task and the
# task running the ASGI app. Quart's own receiver and handler tasks and a sender task
# per socket came on top of these.
HYPERCORN_TASKS_PER_SOCKET = 2


@contextlib.asynccontextmanager
async def serving(tmp_path: Path) -> AsyncIterator[tuple[str, Chat]]:
    app = create_app(overrides={"database_url": f"sqlite://{tmp_path / 'chat.sqlite3'}"})
    config = Config()
    # A socket bound here on a port the kernel picks, handed to Hypercorn (which owns it
    # from then on): no other process can take the port between choosing and binding it.
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    config.bind = [f"fd://{listener.detach()}"]
    config.accesslog = None
    stop = asyncio.Event()
    server = asyncio.create_task(serve(app, config, shutdown_trigger=stop.wait))
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=10) as http:
            for _ in range(100):
                with contextlib.suppress(httpx.TransportError):
                    if (await http.get("/health")).status_code == 200:
                        break
                await asyncio.sleep(0.1)
        yield f"127.0.0.1:{port}", app.extensions[EXTENSION_KEY]
    finally:
        stop.set()
        await asyncio.wait_for(server, 30)


async def wait_for_sockets(chat: Chat, count: int) -> None:
    async with asyncio.timeout(30):
        while chat.hub.subscriber_count != count:  # noqa: ASYNC110  # the hub has no event
            await asyncio.sleep(0.05)


async def test_an_idle_socket_holds_no_task_of_its_own_and_still_gets_every_frame(
    tmp_path: Path,
) -> None:
    async with serving(tmp_path) as (address, chat):
        async with httpx.AsyncClient(base_url=f"http://{address}", timeout=10) as http:
            room = (await http.post("/rooms", json={"name": "R", "id": unique_id("room")})).json()
            users = [
                (await http.post("/users", json={"username": f"u{i}", "id": unique_id("u")})).json()
                for i in range(SOCKETS + 1)
            ]
        url = f"ws://{address}/ws/{room['id']}"
        async with contextlib.AsyncExitStack() as stack:
            first: ClientConnection = await stack.enter_async_context(
                connect(f"{url}/{users[0]['id']}", open_timeout=10, ping_interval=None)
            )
            await wait_for_sockets(chat, 1)
            before = len(asyncio.all_tasks())
            sockets = [
                await stack.enter_async_context(
                    connect(f"{url}/{user['id']}", open_timeout=10, ping_interval=None)
                )
                for user in users[1:]
            ]
            await wait_for_sockets(chat, SOCKETS + 1)
            await asyncio.sleep(0.5)  # the room's held presence events have gone out
            added = len(asyncio.all_tasks()) - before
            assert added <= SOCKETS * HYPERCORN_TASKS_PER_SOCKET

            await first.send(json.dumps({"type": "message", "content": "hello"}))
            for ws in [first, *sockets]:
                frame = await receive_type(ws, "message", timeout=10)
                assert frame["content"] == "hello"
