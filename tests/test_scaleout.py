"""Several instances sharing real PostgreSQL and Redis behave as one chat."""

from __future__ import annotations

import asyncio
import json
import re
import signal
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from quartchat.rooms.relay import RESYNC_INTERVAL
from tests.support import (
    PROJECT_ROOT,
    REDIS_TEST_URL,
    RedisServer,
    RunningServer,
    create_room,
    create_user,
    open_socket,
    open_sockets,
    receive_messages,
    receive_type,
    send_from_all,
    start_server,
    stored_messages,
    unique_id,
)


@pytest.fixture(name="pair")
def _pair(tmp_path: Path, postgres_url: str) -> Iterator[tuple[RunningServer, RunningServer]]:
    """Two `quartchat serve` instances on one PostgreSQL database and one Redis."""
    env = {
        "DATABASE_URL": postgres_url,
        "REDIS_URL": REDIS_TEST_URL,
        "REDIS_PREFIX": unique_id("test"),
        "PRESENCE_TTL": "2",
    }
    first = start_server(_dir(tmp_path, "a"), env=env)
    second = start_server(_dir(tmp_path, "b"), env=env)
    yield first, second
    first.stop()
    second.stop()


def _dir(base: Path, name: str) -> Path:
    path = base / name
    path.mkdir(exist_ok=True)
    return path


async def test_socket_on_one_instance_hears_the_other(
    pair: tuple[RunningServer, RunningServer],
) -> None:
    a, b = pair
    async with (
        httpx.AsyncClient(base_url=a.http_url) as http_a,
        httpx.AsyncClient(base_url=b.http_url) as http_b,
    ):
        room = await create_room(http_a)
        alice = await create_user(http_a, "Alice")
        bob = await create_user(http_b, "Bob")
        async with (
            open_socket(a, room["id"], alice["id"]) as on_a,
            open_socket(b, room["id"], bob["id"]) as on_b,
        ):
            joined = await receive_type(on_a, "user_joined")
            assert joined["user_id"] == bob["id"]
            await on_b.send('{"content": "from B by socket"}')
            [heard] = await receive_messages(on_a, 1)
            assert heard["content"] == "from B by socket" and heard["username"] == "Bob"
            posted = await http_b.post(
                f"/rooms/{room['id']}/messages", json={"user_id": bob["id"], "content": "by REST"}
            )
            [heard] = await receive_messages(on_a, 1)
            assert heard == posted.json()
            await on_b.send('{"type": "typing"}')
            assert (await receive_type(on_a, "typing"))["user_id"] == bob["id"]

            for http in (http_a, http_b):
                presence = (await http.get(f"/rooms/{room['id']}/presence")).json()
                assert sorted(p["username"] for p in presence) == ["Alice", "Bob"]
        async with open_socket(a, room["id"], alice["id"]) as on_a:
            async with open_socket(b, room["id"], bob["id"]):
                await receive_type(on_a, "user_joined")
            left = await receive_type(on_a, "user_left")
            assert left["user_id"] == bob["id"]
            presence = (await http_a.get(f"/rooms/{room['id']}/presence")).json()
            assert presence == [{"user_id": alice["id"], "username": "Alice"}]


async def test_an_instance_started_beside_a_busy_one_hears_it_live(
    tmp_path: Path, postgres_url: str
) -> None:
    """Scaling out under load: an instance alone publishes nothing to Redis; once a
    second one starts, the first one's messages reach the newcomer's sockets as they
    are sent, not at the next resync."""
    env = {"DATABASE_URL": postgres_url, "REDIS_URL": REDIS_TEST_URL}
    env["REDIS_PREFIX"] = unique_id("test")
    a = start_server(_dir(tmp_path, "a"), env=env)
    try:
        async with httpx.AsyncClient(base_url=a.http_url) as http:
            room = await create_room(http)
            alice = await create_user(http, "Alice")
            bob = await create_user(http, "Bob")
            async with open_socket(a, room["id"], alice["id"]) as on_a:
                await on_a.send('{"content": "while alone"}')
                await receive_messages(on_a, 1)
                b = start_server(_dir(tmp_path, "b"), env=env)
                try:
                    async with open_socket(b, room["id"], bob["id"]) as on_b:
                        for n in range(5):
                            await on_a.send(json.dumps({"content": f"with B {n}"}))
                            [heard] = await receive_messages(on_b, 1, RESYNC_INTERVAL / 2)
                            assert heard["content"] == f"with B {n}"
                finally:
                    b.stop()
    finally:
        a.stop()


async def test_ten_senders_on_two_instances_one_order(
    pair: tuple[RunningServer, RunningServer],
) -> None:
    a, b = pair
    per_sender = 20
    async with httpx.AsyncClient(base_url=a.http_url) as http:
        room = await create_room(http)
        users = [await create_user(http, f"sender{i}") for i in range(10)]
        targets = [(a if i % 2 == 0 else b, room["id"], user["id"]) for i, user in enumerate(users)]
        total = 10 * per_sender
        async with open_sockets(targets) as connections:
            await send_from_all(connections, per_sender)
            streams = await asyncio.gather(*(receive_messages(ws, total, 30) for ws in connections))
        stored = await stored_messages(http, room["id"])
    assert [m["seq"] for m in stored] == list(range(1, total + 1))
    for stream in streams:
        assert stream == stored


async def test_reconnect_to_the_other_instance_replays(
    pair: tuple[RunningServer, RunningServer],
) -> None:
    a, b = pair
    async with httpx.AsyncClient(base_url=a.http_url) as http:
        room = await create_room(http)
        reader, writer = await create_user(http, "Reader"), await create_user(http, "Writer")
        async with open_socket(a, room["id"], reader["id"]) as on_a:
            await http.post(
                f"/rooms/{room['id']}/messages", json={"user_id": writer["id"], "content": "seen"}
            )
            [seen] = await receive_messages(on_a, 1)
        for i in range(3):
            await http.post(
                f"/rooms/{room['id']}/messages",
                json={"user_id": writer["id"], "content": f"missed {i}"},
            )
        async with open_socket(
            b, room["id"], reader["id"], query=f"since={seen['timestamp']}"
        ) as on_b:
            replayed = await receive_messages(on_b, 3)
            assert [m["content"] for m in replayed] == ["missed 0", "missed 1", "missed 2"]


async def test_crashed_instance_users_leave_presence(
    pair: tuple[RunningServer, RunningServer],
) -> None:
    a, b = pair
    async with httpx.AsyncClient(base_url=a.http_url) as http:
        room = await create_room(http)
        stayer, crasher = await create_user(http, "Stayer"), await create_user(http, "Crasher")
        async with open_socket(a, room["id"], stayer["id"]) as on_a:
            doomed = open_socket(b, room["id"], crasher["id"])
            await doomed.__aenter__()
            await receive_type(on_a, "user_joined")
            b.process.send_signal(signal.SIGKILL)
            b.process.wait()
            left = await receive_type(on_a, "user_left", timeout=15)
            assert left["user_id"] == crasher["id"]
            presence = (await http.get(f"/rooms/{room['id']}/presence")).json()
            assert [p["user_id"] for p in presence] == [stayer["id"]]


@pytest.mark.slow
async def test_redis_restart_loses_nothing_stored(tmp_path: Path, postgres_url: str) -> None:
    redis = RedisServer(tmp_path)
    env = {"DATABASE_URL": postgres_url, "REDIS_URL": redis.url, "PRESENCE_TTL": "2"}
    a = start_server(_dir(tmp_path, "a"), env=env)
    b = start_server(_dir(tmp_path, "b"), env=env)
    try:
        async with (
            httpx.AsyncClient(base_url=a.http_url) as http_a,
            httpx.AsyncClient(base_url=b.http_url) as http_b,
        ):
            room = await create_room(http_a)
            listener, talker = await create_user(http_a), await create_user(http_a)
            async with (
                open_socket(a, room["id"], listener["id"]) as on_a,
                open_socket(b, room["id"], talker["id"]) as on_b,
            ):
                total = 60
                for i in range(total):
                    await on_b.send(json.dumps({"content": f"m{i}"}))
                    if i == 20:
                        redis.stop()
                        await asyncio.sleep(0.5)
                        health = (await http_b.get("/health")).json()
                        assert health["status"] == "degraded" and health["broker"] == "unavailable"
                    if i == 40:
                        redis.start()
                    await asyncio.sleep(0.02)
                received = await receive_messages(on_a, total, timeout=30)
                assert [m["content"] for m in received] == [f"m{i}" for i in range(total)]
                await receive_messages(on_b, total, timeout=30)
            for _ in range(100):
                if (await http_a.get("/health")).json()["status"] == "ok":
                    break
                await asyncio.sleep(0.1)
            assert (await http_a.get("/health")).json() == {
                "status": "ok",
                "database": "ok",
                "broker": "ok",
                "fast_paths": "ok",
            }
    finally:
        a.stop()
        b.stop()
        redis.stop()


async def test_two_workers_with_redis_are_one_chat(tmp_path: Path, postgres_url: str) -> None:
    config = tmp_path / "two-workers.toml"
    # Access lines with the worker's pid (`<1234>`), to tell which served what.
    config.write_text(
        (PROJECT_ROOT / "hypercorn.toml").read_text().replace("workers = 1", "workers = 2")
        + "access_log_format = '%(p)s \"%(r)s\" %(s)s'\n"
    )
    env = {
        "DATABASE_URL": postgres_url,
        "REDIS_URL": REDIS_TEST_URL,
        "REDIS_PREFIX": unique_id("w"),
    }
    server = start_server(tmp_path, env=env, args=["--config", str(config)])
    try:
        await wait_for_workers(server, 2)
        async with httpx.AsyncClient(base_url=server.http_url) as http:
            room = await create_room(http)
            users = [await create_user(http) for _ in range(12)]
            targets = [(server, room["id"], user["id"]) for user in users]
            async with open_sockets(targets) as connections:
                await send_from_all(connections, 1)
                streams = await asyncio.gather(
                    *(receive_messages(ws, len(users), 20) for ws in connections)
                )
        assert all(stream == streams[0] for stream in streams)
        assert sorted(m["content"] for m in streams[0]) == sorted(f"{i}:0" for i in range(12))
        pids = set(re.findall(r"<(\d+)> \"GET /ws/", server.log()))
        assert len(pids) == 2, f"sockets were served by {pids}"
    finally:
        assert server.stop() == 0


async def wait_for_workers(server: RunningServer, count: int) -> None:
    """Until `count` processes answered: the first worker up answers the readiness
    check while the others may still be migrating, and gets every socket meanwhile."""
    deadline = asyncio.get_running_loop().time() + 30
    while len(set(re.findall(r"<(\d+)> \"GET /health", server.log()))) < count:
        assert asyncio.get_running_loop().time() < deadline, "the workers did not all start"
        async with httpx.AsyncClient(base_url=server.http_url) as fresh:  # a new connection
            await fresh.get("/health")
        await asyncio.sleep(0.02)


async def test_instances_starting_together_migrate_once(tmp_path: Path, postgres_url: str) -> None:
    env = {
        "DATABASE_URL": postgres_url,
        "REDIS_URL": REDIS_TEST_URL,
        "REDIS_PREFIX": unique_id("m"),
    }
    servers = [start_server(_dir(tmp_path, str(i)), env=env, wait=False) for i in range(3)]
    try:
        from tests.support import wait_until_healthy

        for server in servers:
            wait_until_healthy(server)
        async with httpx.AsyncClient(base_url=servers[2].http_url) as http:
            assert (await http.get("/rooms")).json() == []
    finally:
        for server in servers:
            server.stop()


async def test_client_ids_are_idempotent_across_instances(
    pair: tuple[RunningServer, RunningServer],
) -> None:
    a, b = pair
    message_id = str(uuid.uuid4())
    async with (
        httpx.AsyncClient(base_url=a.http_url) as http_a,
        httpx.AsyncClient(base_url=b.http_url) as http_b,
    ):
        room, other_room = await create_room(http_a), await create_room(http_a)
        user = await create_user(http_a)
        body = {"user_id": user["id"], "content": "once", "id": message_id}
        async with open_socket(a, room["id"], user["id"]) as on_a:
            first = await http_a.post(f"/rooms/{room['id']}/messages", json=body)
            again = await http_b.post(f"/rooms/{room['id']}/messages", json=body)
            assert (first.status_code, again.status_code) == (201, 200)
            assert again.json() == first.json()
            conflict = await http_b.post(f"/rooms/{other_room['id']}/messages", json=body)
            assert conflict.status_code == 409
            await http_b.post(
                f"/rooms/{room['id']}/messages", json={"user_id": user["id"], "content": "next"}
            )
            got = await receive_messages(on_a, 2)
            assert [m["content"] for m in got] == ["once", "next"]
        stored = (await http_b.get(f"/rooms/{room['id']}/messages")).json()
        assert [m["seq"] for m in stored] == [1, 2]
