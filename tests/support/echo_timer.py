"""A well-behaved neighbour of a hostile client: a socket in a room of its own that sends
a message every 0.2 s and times the echo of each, so a test can compare its round trips
with and without an attack next door."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx

from tests.support.clients import create_room, create_user, open_socket
from tests.support.servers import RunningServer

__all__ = ["EchoTimer", "echo_timer", "percentile"]


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    assert ordered, "no round trip was timed"
    return ordered[min(len(ordered) - 1, int(len(ordered) * share))]


class EchoTimer:
    """Round trips (seconds) of the neighbour's messages, by the phase they were sent in."""

    def __init__(self, room_id: str) -> None:
        self.room_id = room_id
        self.phase = "calm"
        self.sent: dict[str, tuple[str, float]] = {}
        self.round_trips: dict[str, list[float]] = {}
        self.all_back = asyncio.Event()  # every message sent so far has come back

    def p90(self, phase: str) -> float:
        return percentile(self.round_trips.get(phase, []), 0.9)

    async def during(self, phase: str, seconds: float) -> None:
        """Time round trips for `seconds` under the name `phase`."""
        self.phase = phase
        await asyncio.sleep(seconds)

    def echoed(self, message_id: str) -> None:
        phase, started = self.sent[message_id]
        self.round_trips.setdefault(phase, []).append(time.perf_counter() - started)
        if sum(map(len, self.round_trips.values())) == len(self.sent):
            self.all_back.set()


@asynccontextmanager
async def echo_timer(
    server: RunningServer, http: httpx.AsyncClient, interval: float = 0.2
) -> AsyncIterator[EchoTimer]:
    """A neighbour sending every `interval` s while the block runs; on the way out every
    message it sent must have come back to it and be stored."""
    room, user = await create_room(http, "Calm room"), await create_user(http, "Neighbour")
    timer = EchoTimer(room["id"])
    stop = asyncio.Event()
    async with open_socket(server, room["id"], user["id"]) as ws:

        async def send() -> None:
            while not stop.is_set():
                message_id = str(uuid.uuid4())
                timer.sent[message_id] = (timer.phase, time.perf_counter())
                timer.all_back.clear()
                await ws.send(json.dumps({"id": message_id, "content": "tick"}))
                await asyncio.sleep(interval)

        async def receive() -> None:
            async for raw in ws:
                frame = json.loads(raw)
                if frame["type"] == "message":
                    timer.echoed(frame["id"])

        tasks = [asyncio.create_task(send()), asyncio.create_task(receive())]
        try:
            yield timer
            stop.set()
            await tasks[0]
            await asyncio.wait_for(timer.all_back.wait(), 10)
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
    stored = (await http.get(f"/rooms/{room['id']}/messages", params={"limit": 500})).json()
    assert {message["id"] for message in stored} == set(timer.sent)
