"""A publish that fails while the subscription stays up (Redis answering pings but not
writes, as over a slow link) degrades the instance only until Redis takes writes
again: it does not stay degraded, with presence local, for good."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

import httpx
from redis import Redis

from tests.support import (
    RedisServer,
    create_room,
    create_user,
    open_socket,
    receive_messages,
    receive_type,
    start_instances,
)


async def test_a_failed_publish_heals_once_redis_takes_writes(
    tmp_path: Path, postgres_url: str
) -> None:
    redis = RedisServer(tmp_path)
    env = {"DATABASE_URL": postgres_url, "REDIS_URL": redis.url, "PRESENCE_TTL": "3"}
    servers = start_instances(tmp_path, env)
    a, b = servers
    try:
        async with httpx.AsyncClient(base_url=b.http_url, timeout=30) as http_b:
            room = await create_room(http_b)
            listener, talker = await create_user(http_b), await create_user(http_b)
            async with (
                open_socket(a, room["id"], listener["id"]) as on_a,
                open_socket(b, room["id"], talker["id"]) as on_b,
            ):
                await receive_type(on_a, "user_joined")
                # PUBLISH waits out the pause (longer than the broker's 2 s deadline);
                # PING and SUBSCRIBE'd reads do not.
                Redis(port=redis.port).client_pause(3000, all=False)  # writes only
                paused = time.monotonic()
                await on_b.send(json.dumps({"content": "published into the pause"}))
                await receive_messages(on_b, 1)  # stored and acknowledged at once

                async def b_status() -> str:
                    status: str = (await http_b.get("/health")).json()["status"]
                    return status

                async with asyncio.timeout(10):
                    while await b_status() != "degraded":  # noqa: ASYNC110
                        await asyncio.sleep(0.05)
                async with asyncio.timeout(15):  # before the fix: degraded for good
                    while await b_status() != "ok":  # noqa: ASYNC110
                        await asyncio.sleep(0.2)
                healed = time.monotonic() - paused
                [heard] = await receive_messages(on_a, 1, timeout=20)  # resync fills it
                assert heard["content"] == "published into the pause"
                async with asyncio.timeout(15):
                    while True:
                        presence = (await http_b.get(f"/rooms/{room['id']}/presence")).json()
                        if {p["user_id"] for p in presence} == {listener["id"], talker["id"]}:
                            break
                        await asyncio.sleep(0.2)
                await on_b.send(json.dumps({"content": "after"}))
                [after] = await receive_messages(on_a, 1)
                assert after["content"] == "after"
                print(f"B healthy again {healed:.1f} s after the 3 s pause began")
    finally:
        for server in servers:
            server.stop()
        redis.stop()
