"""Instances on a real Redis Cluster (three primaries started by the tests) and
PostgreSQL: rooms on different primaries form one chat, and a primary killed
mid-conversation loses no acknowledged message."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support import (
    RunningServer,
    create_room,
    create_user,
    metric,
    open_socket,
    receive_messages,
    start_server,
    unique_id,
)
from tests.support.redis_cluster import LocalRedisCluster, redis_cluster
from tests.support.talkers import Talker, all_stored, until

pytestmark = pytest.mark.timeout(180)

CONVERGED = 30.0  # seconds allowed after the primary is back for everything to agree


@dataclass
class Deployment:
    servers: list[RunningServer]
    cluster: LocalRedisCluster
    prefix: str

    def node_of_room(self, room_id: str) -> int:
        """Which primary (index) carries the room: its channel's and presence's slot."""
        node = self.cluster.node_of(f"{self.prefix}:room:{{{room_id}}}")
        return self.cluster.nodes.index(node)


@asynccontextmanager
async def deployment(
    tmp_path: Path, postgres_url: str, cluster: LocalRedisCluster
) -> AsyncIterator[Deployment]:
    """Two `quartchat serve` instances on one PostgreSQL database and the cluster."""
    prefix = unique_id("cluster")
    env = {
        "DATABASE_URL": postgres_url,
        "REDIS_URL": cluster.url,
        "REDIS_PREFIX": prefix,
        "PRESENCE_TTL": "2",
    }
    servers: list[RunningServer] = []
    try:
        for name in ("a", "b"):
            workdir = tmp_path / name
            workdir.mkdir()
            servers.append(start_server(workdir, env=env))
        yield Deployment(servers, cluster, prefix)
    finally:
        for server in servers:
            server.stop()


async def frames_received(server: RunningServer) -> float:
    """What the instance's broker heard from the cluster (room traffic and hellos)."""
    async with httpx.AsyncClient(base_url=server.http_url) as http:
        scraped = (await http.get("/metrics")).text
    return metric(scraped, "quartchat_broker_frames_received_total")


async def rooms_on_every_primary(http: httpx.AsyncClient, where: Deployment) -> list[str]:
    """One room per primary: created until every primary carries one."""
    found: dict[int, str] = {}
    for _ in range(60):
        room_id = (await create_room(http))["id"]
        found.setdefault(where.node_of_room(room_id), room_id)
        if len(found) == len(where.cluster.nodes):
            return [found[index] for index in sorted(found)]
    raise AssertionError(f"60 rooms covered only primaries {sorted(found)}")


async def test_rooms_on_different_primaries_cross_instances(
    tmp_path: Path, postgres_url: str, redis_cluster: LocalRedisCluster
) -> None:
    async with deployment(tmp_path, postgres_url, redis_cluster) as where:
        a, b = where.servers
        async with httpx.AsyncClient(base_url=a.http_url) as http:
            rooms = await rooms_on_every_primary(http, where)
            alice, bob = await create_user(http, "Alice"), await create_user(http, "Bob")
        heard_before = await frames_received(a)
        async with AsyncExitStack() as sockets:
            for room_id in rooms:
                on_a = await sockets.enter_async_context(open_socket(a, room_id, alice["id"]))
                on_b = await sockets.enter_async_context(open_socket(b, room_id, bob["id"]))
                await on_b.send(json.dumps({"content": f"B in {room_id}"}))
                [heard] = await receive_messages(on_a, 1)
                assert heard["content"] == f"B in {room_id}" and heard["username"] == "Bob"
                await on_a.send(json.dumps({"content": f"A in {room_id}"}))
                contents = [m["content"] for m in await receive_messages(on_b, 2)]
                assert contents == [f"B in {room_id}", f"A in {room_id}"]
        # Carried by the cluster, not read back from the database by a periodic resync:
        # A heard B's message from each primary.
        assert await frames_received(a) - heard_before >= len(rooms)


async def test_a_room_whose_slot_moves_keeps_crossing_instances(
    tmp_path: Path, postgres_url: str, own_cluster: LocalRedisCluster
) -> None:
    """Resharding moves a room's slot (its channel and presence keys) to another primary:
    the old primary drops the instances' subscriptions; they subscribe again on the new
    one, and live traffic and presence carry on, nothing lost."""
    async with deployment(tmp_path, postgres_url, own_cluster) as where:
        a, b = where.servers
        async with httpx.AsyncClient(base_url=a.http_url) as http:
            room_id = (await create_room(http))["id"]
            alice, bob = await create_user(http, "Alice"), await create_user(http, "Bob")
            async with (
                open_socket(a, room_id, alice["id"]) as on_a,
                open_socket(b, room_id, bob["id"]) as on_b,
            ):
                await on_b.send(json.dumps({"content": "before"}))
                assert [m["content"] for m in await receive_messages(on_a, 1)] == ["before"]
                before = where.node_of_room(room_id)
                target = own_cluster.nodes[(before + 1) % len(own_cluster.nodes)]
                own_cluster.move_slot_of(f"{where.prefix}:room:{{{room_id}}}", target)
                assert where.node_of_room(room_id) == own_cluster.nodes.index(target)

                async def both_ok() -> bool:
                    states = [await health(server) for server in (a, b)]
                    return all(s["status"] == "ok" for s in states)

                await asyncio.sleep(1)  # the instances notice the move
                await until(both_ok, CONVERGED, "both instances healthy after the move")
                heard_before = await frames_received(a)
                for n in range(5):
                    await on_b.send(json.dumps({"content": f"after {n}"}))
                received = [m["content"] for m in await receive_messages(on_a, 5)]
                assert received == [f"after {n}" for n in range(5)]
                assert await frames_received(a) - heard_before >= 5  # live, from the new primary
                presence = (await http.get(f"/rooms/{room_id}/presence")).json()
                assert {p["user_id"] for p in presence} == {alice["id"], bob["id"]}


async def health(server: RunningServer) -> dict[str, Any]:
    async with httpx.AsyncClient(base_url=server.http_url, timeout=5) as http:
        body: dict[str, Any] = (await http.get("/health")).json()
        return body


@pytest.fixture(name="own_cluster")
def _own_cluster() -> Iterator[LocalRedisCluster]:
    """A cluster of the test's own: it kills one of its primaries."""
    with redis_cluster() as cluster:
        yield cluster


async def test_a_primary_killed_mid_conversation_loses_no_acknowledged_message(
    tmp_path: Path, postgres_url: str, own_cluster: LocalRedisCluster
) -> None:
    """Sockets on both instances in a room on each primary keep sending while one primary
    is SIGKILLed and restarted (no replica: its slots, and with them the cluster, are down
    meanwhile). Both instances report the broker unavailable while it is down; sends are
    stored all along (the database is the truth); once the primary is back every
    acknowledged message is stored once, every socket's stream is complete in seq order
    (the relay resyncs from the database), and presence agrees on both instances."""
    async with deployment(tmp_path, postgres_url, own_cluster) as where:
        a, b = where.servers
        async with httpx.AsyncClient(base_url=a.http_url, timeout=30) as http:
            rooms = await rooms_on_every_primary(http, where)
            talkers: dict[str, list[Talker]] = {}
            async with AsyncExitStack() as sockets:
                for room_id in rooms:
                    talkers[room_id] = []
                    for server in (a, b):
                        user = await create_user(http)
                        ws = await sockets.enter_async_context(
                            open_socket(server, room_id, user["id"])
                        )
                        talkers[room_id].append(Talker(user["id"], ws))
                everyone = [talker for group in talkers.values() for talker in group]
                stop = asyncio.Event()
                tasks = [asyncio.create_task(t.read()) for t in everyone]
                tasks += [asyncio.create_task(t.send(stop)) for t in everyone]
                try:
                    await asyncio.sleep(2)
                    victim = own_cluster.nodes[where.node_of_room(rooms[0])]
                    victim.kill()
                    killed = time.monotonic()

                    async def both_degraded() -> bool:
                        states = [await health(server) for server in (a, b)]
                        return all(s["broker"] == "unavailable" for s in states)

                    detected = await until(both_degraded, 10, "both report the broker down")
                    await asyncio.sleep(2)
                    victim.start()
                    own_cluster.wait_until_ok()
                    restarted = time.monotonic()

                    async def both_ok() -> bool:
                        states = [await health(server) for server in (a, b)]
                        return all(s["status"] == "ok" for s in states)

                    healed = await until(both_ok, CONVERGED, "both instances healthy again")
                    # Live traffic crosses again (B's talkers send ~10 messages a second
                    # each), not only what a periodic resync reads from the database.
                    heard_before = await frames_received(a)
                    await asyncio.sleep(2)
                    assert await frames_received(a) - heard_before >= 10
                finally:
                    stop.set()
                    await asyncio.sleep(1)  # the last echoes
                stored = 0
                for room_id in rooms:
                    stored += await assert_converged(where, http, room_id, talkers[room_id])
                print(
                    f"broker down on both {detected:.1f} s after the kill; the cluster back "
                    f"{restarted - killed:.1f} s after it, both healthy {healed:.1f} s later; "
                    f"{stored} messages stored, every stream complete"
                )
                for task in tasks:
                    task.cancel()
                await asyncio.gather(*tasks, return_exceptions=True)


async def assert_converged(
    where: Deployment, http: httpx.AsyncClient, room_id: str, talkers: list[Talker]
) -> int:
    """After the senders stopped: stored once, streams complete, presence agreed.
    Returns how many messages the room stored."""
    stored = await all_stored(http, room_id)
    seqs = list(range(1, len(stored) + 1))
    assert [m["seq"] for m in stored] == seqs
    ids = [m["id"] for m in stored]
    assert len(ids) == len(set(ids))
    for talker in talkers:
        assert talker.acknowledged <= set(ids), "an acknowledged message is not stored"
        assert talker.acknowledged, "a socket never saw its own message stored"

    async def streams_complete() -> bool:
        return all(t.seqs[: len(seqs)] == seqs for t in talkers)

    await until(streams_complete, CONVERGED, f"every socket's stream in {room_id} complete")
    for talker in talkers:
        assert talker.seqs == seqs, "a gap or a duplicate in a socket's stream"
    users = {t.user_id for t in talkers}

    async def presence_agreed() -> bool:
        for server in where.servers:
            response = await http.get(f"{server.http_url}/rooms/{room_id}/presence")
            if {p["user_id"] for p in response.json()} != users:
                return False
        return True

    await until(presence_agreed, CONVERGED, f"presence in {room_id} on both instances")
    return len(stored)
