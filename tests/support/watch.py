"""A well-behaved neighbour next to an attack: a socket in a room of its own that sends
a message every 0.2 s and times each echo, so a test can hold the attack to the latency
the neighbour sees and check that every message it sent was stored.

The neighbour runs in a process of its own (`python -m tests.support.watch URL`): in the
test's event loop it would time the attacking clients' CPU, not the server's.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
import sys
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
from websockets.asyncio.client import connect

from tests.support.clients import create_room, create_user, receive_type
from tests.support.servers import RunningServer

__all__ = ["Neighbour", "neighbour"]

INTERVAL = 0.2


class Neighbour:
    """Echo round trips (seconds) of the neighbour's messages, and their ids."""

    def __init__(self, room_id: str) -> None:
        self.round_trips: list[float] = []
        self.sent: list[str] = []
        self.room_id = room_id

    def p90(self, start: int = 0, stop: int | None = None) -> float:
        """The 90th percentile of the round trips `start` to `stop`."""
        ordered = sorted(self.round_trips[start:stop])
        assert ordered, "the neighbour measured nothing"
        return ordered[min(len(ordered) - 1, int(len(ordered) * 0.9))]

    def assert_bounded(self, calm: int, slowdown: float = 5, floor: float = 0.5) -> None:
        """The p90 after the first `calm` round trips is at most `slowdown` times theirs,
        or `floor` seconds (a loaded 2-core machine), whichever is larger."""
        baseline, attacked = self.p90(0, calm), self.p90(calm)
        print(f"neighbour p90: {baseline * 1000:.1f} ms calm, {attacked * 1000:.1f} ms attacked")
        assert attacked <= max(slowdown * baseline, floor), (baseline, attacked)

    async def assert_all_stored(self, http: httpx.AsyncClient) -> None:
        response = await http.get(f"/rooms/{self.room_id}/messages", params={"limit": 500})
        assert response.status_code == 200, response.text
        assert [message["id"] for message in response.json()] == self.sent


@asynccontextmanager
async def neighbour(server: RunningServer, http: httpx.AsyncClient) -> AsyncIterator[Neighbour]:
    """`async with neighbour(server, http) as n:` — sending and timing until the block
    ends (the last message echoed, so stored)."""
    room, user = await create_room(http), await create_user(http)
    watch = Neighbour(room["id"])
    url = f"{server.ws_url}/ws/{room['id']}/{user['id']}"
    child = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "tests.support.watch", url, stdout=asyncio.subprocess.PIPE
    )
    assert child.stdout is not None

    async def read() -> None:
        assert child.stdout is not None
        async for line in child.stdout:
            kind, value = line.decode().split()
            if kind == "sent":
                watch.sent.append(value)
            else:
                watch.round_trips.append(float(value))

    reading = asyncio.create_task(read())
    try:
        while not watch.round_trips:  # connected and echoing
            await asyncio.sleep(0.05)
            assert child.returncode is None, "the neighbour failed"
        yield watch
    finally:
        with contextlib.suppress(ProcessLookupError):
            child.send_signal(signal.SIGTERM)
        await asyncio.wait_for(child.wait(), 60)
        await reading
    assert child.returncode == 0, "the neighbour failed"


async def _run(url: str) -> None:
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    async with connect(url, open_timeout=30) as ws:
        while not stop.is_set():
            message_id = str(uuid.uuid4())
            started = time.monotonic()
            await ws.send(json.dumps({"content": "tick", "id": message_id}))
            print("sent", message_id, flush=True)
            while (await receive_type(ws, "message", timeout=30))["id"] != message_id:
                pass
            print("rtt", time.monotonic() - started, flush=True)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), INTERVAL)


if __name__ == "__main__":
    asyncio.run(_run(sys.argv[1]))
