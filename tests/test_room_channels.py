"""Each instance hears only the rooms it has sockets in (one broker channel per room),
and subscribing to a room in the middle of its traffic loses nothing."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from websockets.asyncio.client import ClientConnection

from tests.support import (
    REDIS_TEST_URL,
    RunningServer,
    create_room,
    create_user,
    open_socket,
    receive_json,
    receive_messages,
    start_server,
    stored_messages,
    unique_id,
)
from tests.support.servers import metric


@pytest.fixture(name="trio")
def _trio(tmp_path: Path, postgres_url: str) -> Iterator[list[RunningServer]]:
    """Three `quartchat serve` instances on one PostgreSQL database and one Redis."""
    env = {"DATABASE_URL": postgres_url, "REDIS_URL": REDIS_TEST_URL}
    env["REDIS_PREFIX"] = unique_id("test")
    servers = []
    for name in "abc":
        (tmp_path / name).mkdir()
        servers.append(start_server(tmp_path / name, env=env))
    try:
        yield servers
    finally:
        stuck = []
        for server in servers:  # every one, even after one failed to stop
            try:
                server.stop()
            except AssertionError as error:
                stuck.append(error)
        if stuck:
            raise stuck[0]


async def frames_received(server: RunningServer) -> float:
    async with httpx.AsyncClient(base_url=server.http_url) as http:
        scraped = (await http.get("/metrics")).text
    return metric(scraped, "quartchat_broker_frames_received_total")


async def drain(ws: ClientConnection) -> None:
    with contextlib.suppress(Exception):
        while True:
            await ws.recv()


async def message_seqs(ws: ClientConnection, seconds: float) -> list[int]:
    """The seqs of the messages the socket receives within `seconds`."""
    seqs: list[int] = []
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(seconds):
            while True:
                frame = await receive_json(ws, seconds)
                if frame["type"] == "message":
                    seqs.append(frame["seq"])
    return seqs


def consecutive(seqs: list[int]) -> bool:
    return seqs == list(range(seqs[0], seqs[0] + len(seqs))) if seqs else True


async def test_an_instance_hears_only_rooms_with_its_sockets(trio: list[RunningServer]) -> None:
    a, b, c = trio
    async with httpx.AsyncClient(base_url=a.http_url) as http:
        busy, quiet = await create_room(http, "Busy"), await create_room(http, "Quiet")
        ann, bob, cat = [await create_user(http, name) for name in ("Ann", "Bob", "Cat")]
        async with (
            open_socket(a, busy["id"], ann["id"]) as on_a,
            open_socket(c, busy["id"], cat["id"]) as on_c,
            open_socket(b, quiet["id"], bob["id"]),
        ):
            await receive_json(on_a)  # Cat joined: A and C both subscribe to the busy room
            before = await frames_received(b)
            for n in range(100):
                await on_a.send(json.dumps({"content": f"m{n}"}))
            heard = await receive_messages(on_c, 100, 30)
            assert [m["content"] for m in heard] == [f"m{n}" for n in range(100)]
            received_by_c = await frames_received(c)
            received_by_b = await frames_received(b) - before
    assert received_by_c >= 100  # the busy room's traffic crossed the broker
    assert received_by_b < 10  # B has no socket there: at most a hello or two


async def test_joining_a_room_amid_its_traffic_loses_nothing(trio: list[RunningServer]) -> None:
    """Messages flow from A while sockets on B join and leave the room one after the
    other: each join is the room's first socket on B (a new subscription), and each
    socket receives every message from its first one on, once, in seq order."""
    a, b, _ = trio
    total = 300
    async with httpx.AsyncClient(base_url=a.http_url) as http:
        room = await create_room(http)
        writer, reader = await create_user(http, "Writer"), await create_user(http, "Reader")
        async with open_socket(a, room["id"], writer["id"]) as on_a:
            draining = asyncio.create_task(drain(on_a))

            async def send_all() -> None:
                for n in range(total):
                    await on_a.send(json.dumps({"content": f"m{n}"}))
                    await asyncio.sleep(0.02)

            sending = asyncio.create_task(send_all())
            streams: list[list[int]] = []
            while not sending.done():
                async with open_socket(b, room["id"], reader["id"]) as on_b:
                    streams.append(await message_seqs(on_b, 0.15))
            async with open_socket(b, room["id"], reader["id"]) as on_b:
                # Joined after the last message: nothing more may come, and nothing lost.
                last = await message_seqs(on_b, 0.5)
            draining.cancel()
        stored = await stored_messages(http, room["id"])
    assert [m["seq"] for m in stored] == list(range(1, total + 1))
    assert last == []
    assert len(streams) >= 3  # joins amid the traffic (fewer on a loaded machine)
    assert all(consecutive(stream) for stream in streams), streams
    heard = [stream for stream in streams if stream]
    assert len(heard) >= len(streams) // 2  # most of the sockets were there for some messages
