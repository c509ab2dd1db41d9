"""A Redis that hangs (paused, not refusing) through two real instances: it counts as
unreachable within seconds, handshakes and presence reads do not wait for it, and
presence and messages converge once it answers again."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support import (
    RedisServer,
    create_room,
    create_user,
    open_socket,
    receive_type,
    start_instances,
)
from tests.support.watch import neighbour


async def until(condition: Any, timeout: float) -> float:
    """Seconds until the async `condition()` is true; fails after `timeout`."""
    started = time.monotonic()
    while not await condition():
        assert time.monotonic() - started < timeout, "not within the time allowed"
        await asyncio.sleep(0.1)
    return time.monotonic() - started


async def presence_of(http: httpx.AsyncClient, room_id: str) -> set[str]:
    return {entry["user_id"] for entry in (await http.get(f"/rooms/{room_id}/presence")).json()}


async def broker_state(http: httpx.AsyncClient) -> str:
    state: str = (await http.get("/health")).json()["broker"]
    return state


@pytest.mark.slow
async def test_a_hung_redis_stalls_nothing_and_presence_converges(
    tmp_path: Path, postgres_url: str
) -> None:
    redis = RedisServer(tmp_path)
    env = {"DATABASE_URL": postgres_url, "REDIS_URL": redis.url, "PRESENCE_TTL": "3"}
    servers = start_instances(tmp_path, env)
    a, b = servers
    assert redis.process is not None
    try:
        async with (
            httpx.AsyncClient(base_url=a.http_url, timeout=30) as http_a,
            httpx.AsyncClient(base_url=b.http_url, timeout=30) as http_b,
        ):
            room = await create_room(http_a)
            listener, leaver, joiner = [await create_user(http_a) for _ in range(3)]
            async with (
                neighbour(a, http_a) as watch,
                open_socket(a, room["id"], listener["id"]) as on_a,
            ):
                leaving = await open_socket(b, room["id"], leaver["id"]).__aenter__()
                assert (await receive_type(on_a, "user_joined"))["user_id"] == leaver["id"]
                await asyncio.sleep(2)
                calm = len(watch.round_trips)

                os.kill(redis.process.pid, signal.SIGSTOP)
                paused = time.monotonic()
                started = time.monotonic()
                async with open_socket(b, room["id"], joiner["id"]) as joined:
                    await joined.send('{"type": "ping"}')
                    await receive_type(joined, "pong", timeout=30)
                    handshake = time.monotonic() - started
                    started = time.monotonic()
                    during = await presence_of(http_a, room["id"])
                    presence_read = time.monotonic() - started
                    assert during == {listener["id"]}  # A's own, not a wait for Redis
                    await joined.send(json.dumps({"content": "sent during the hang"}))
                    await receive_type(joined, "message")  # stored
                    await leaving.close()  # the leaver leaves during the hang
                    await until(lambda: _all_unavailable(http_a, http_b), timeout=20)
                    detected = time.monotonic() - paused
                    print(
                        f"handshake {handshake:.2f} s, presence read {presence_read:.2f} s, "
                        f"broker unavailable on both {detected:.2f} s into the hang"
                    )
                    assert handshake < 2.0  # before: 10.01 s
                    assert presence_read < 2.0  # before: 5 s
                    assert detected < 5.0  # before: still "ok" 15 s in
                    await asyncio.sleep(1)
                    os.kill(redis.process.pid, signal.SIGCONT)

                    # What A's socket missed during the hang reaches it.
                    seen: dict[str, dict[str, Any]] = {}
                    async with asyncio.timeout(20):
                        while len(seen) < 3:
                            frame = json.loads(await on_a.recv())
                            if frame["type"] in {"user_joined", "user_left", "message"}:
                                seen.setdefault(frame["type"], frame)
                    assert seen["user_joined"]["user_id"] == joiner["id"]
                    assert seen["user_left"]["user_id"] == leaver["id"]
                    assert seen["message"]["content"] == "sent during the hang"
                    watch.assert_bounded(calm)  # its echoes never waited for Redis
                    both = {listener["id"], joiner["id"]}
                    for http in (http_a, http_b):
                        await until(lambda h=http: _present(h, room["id"], both), timeout=15)
                        await until(lambda h=http: _broker_ok(h), timeout=15)
            await watch.assert_all_stored(http_a)
    finally:
        if redis.process is not None and redis.process.poll() is None:
            os.kill(redis.process.pid, signal.SIGCONT)
        for server in servers:
            server.stop()
        redis.stop()


async def _all_unavailable(*clients: httpx.AsyncClient) -> bool:
    return all([await broker_state(http) == "unavailable" for http in clients])


async def _present(http: httpx.AsyncClient, room_id: str, users: set[str]) -> bool:
    return await presence_of(http, room_id) == users


async def _broker_ok(http: httpx.AsyncClient) -> bool:
    return await broker_state(http) == "ok"
