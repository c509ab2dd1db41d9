"""Broker traffic and CPU per delivery with N instances, against one instance.

    .venv/bin/python bench/instances.py [--instances 4] [--rooms 40] [--messages 4000]
        [--spread 1] [--json FILE]

N `quartchat serve` instances share one PostgreSQL database and a private Redis (a
`redis-server` of its own, so that its counters are this run's alone). `--rooms` rooms
are dealt round-robin to the instances; each room has a sender socket on its instance
and a listener socket on `--spread` instances (1: the same instance, so the room's
traffic never needs to cross; 2: the next instance too). The senders send
`--messages` in all; once every listener has them, the script prints per instance the
broker frames it received (`quartchat_broker_frames_received_total`, or, for a build
without that metric, the publishes times the subscribers of its one channel) and its
CPU; then the same rooms and messages on one instance alone, and the CPU per delivery of
both runs. A delivery is one message frame on one socket (the sender's echo included).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
import uuid
from dataclasses import asdict, dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402
import redis  # noqa: E402
from websockets.asyncio.client import ClientConnection, connect  # noqa: E402

from bench.standalone import UNLIMITED, postgres_and_redis_answer  # noqa: E402
from tests.support import (  # noqa: E402
    RedisServer,
    RunningServer,
    create_postgres_database,
    create_room,
    create_user,
    drop_postgres_database,
    start_server,
)
from tests.support.servers import metric  # noqa: E402

# CPU measured with the sockets open and nobody sending: what an instance costs anyway.
IDLE_SECONDS = 3.0


@dataclass
class Run:
    instances: int
    rooms: int
    messages: int
    deliveries: int
    seconds: float
    frames_received: list[float | None] = field(default_factory=list)
    cpu_seconds: list[float] = field(default_factory=list)
    idle_cpu_per_second: list[float] = field(default_factory=list)
    commits: list[float] = field(default_factory=list)
    redis_publishes: int = 0

    @property
    def cpu_us_per_delivery(self) -> float:
        return round(sum(self.cpu_seconds) / self.deliveries * 1e6, 1)


def publishes(client: redis.Redis) -> int:
    stats = client.info("commandstats")
    return int(stats.get("cmdstat_publish", {}).get("calls", 0))


async def scrape(server: RunningServer) -> str:
    async with httpx.AsyncClient(base_url=server.http_url) as http:
        return (await http.get("/metrics")).text


async def frames_received(server: RunningServer) -> float | None:
    try:
        return metric(await scrape(server), "quartchat_broker_frames_received_total")
    except AssertionError:
        return None  # a build from before the metric


async def commits(server: RunningServer) -> float:
    return metric(await scrape(server), "quartchat_commits_total")


async def receive(ws: ClientConnection, count: int) -> None:
    received = 0
    while received < count:
        if json.loads(await ws.recv())["type"] == "message":
            received += 1


async def measure(
    workdir: Path, env: dict[str, str], instances: int, rooms: int, messages: int, spread: int
) -> Run:
    private = RedisServer(workdir)  # its folder made by main
    env = {**env, "REDIS_URL": private.url}
    servers = []
    for index in range(instances):
        (workdir / str(index)).mkdir(parents=True)
        servers.append(start_server(workdir / str(index), env=env))
    counters = redis.Redis.from_url(private.url)
    try:
        async with httpx.AsyncClient(base_url=servers[0].http_url, timeout=30) as http:
            # A user per socket: the per-user limits on opening sockets stay out of it.
            users = [await create_user(http, f"u{n}") for n in range(rooms * (1 + spread))]
            room_ids = [(await create_room(http, f"r{n}"))["id"] for n in range(rooms)]
        sockets: list[tuple[ClientConnection, int]] = []  # (socket, messages it must get)
        senders: list[ClientConnection] = []
        per_room = messages // rooms
        for n, room_id in enumerate(room_ids):
            home = n % instances
            for offset in range(1 + spread):
                # The sender on the room's instance, its listeners there and on the next.
                server = servers[(home + max(0, offset - 1)) % instances]
                user = users.pop()["id"]
                ws = await connect(f"{server.ws_url}/ws/{room_id}/{user}", max_queue=None)
                sockets.append((ws, per_room))
                if offset == 0:
                    senders.append(ws)
        await asyncio.sleep(1.0)  # presence settles
        idle_from = [server.cpu_seconds() for server in servers]
        await asyncio.sleep(IDLE_SECONDS)
        idle = [
            round((s.cpu_seconds() - c) / IDLE_SECONDS, 3)
            for s, c in zip(servers, idle_from, strict=True)
        ]
        commits_before = [await commits(server) for server in servers]
        frames_before = [await frames_received(server) for server in servers]
        cpu_before = [server.cpu_seconds() for server in servers]
        publishes_before = publishes(counters)
        started = time.monotonic()
        receiving = [asyncio.create_task(receive(ws, count)) for ws, count in sockets]

        async def send(ws: ClientConnection) -> None:
            for i in range(per_room):
                await ws.send(json.dumps({"content": f"m{i}"}))
                await asyncio.sleep(0.02)

        await asyncio.gather(*(send(ws) for ws in senders))
        await asyncio.wait_for(asyncio.gather(*receiving), 120)
        seconds = time.monotonic() - started
        frames_after = [await frames_received(server) for server in servers]
        run = Run(
            instances=instances,
            rooms=rooms,
            messages=per_room * rooms,
            deliveries=sum(count for _, count in sockets),
            seconds=round(seconds, 1),
            cpu_seconds=[
                round(s.cpu_seconds() - c, 2) for s, c in zip(servers, cpu_before, strict=True)
            ],
            redis_publishes=publishes(counters) - publishes_before,
            idle_cpu_per_second=idle,
            commits=[await commits(s) - c for s, c in zip(servers, commits_before, strict=True)],
        )
        for before, after in zip(frames_before, frames_after, strict=True):
            run.frames_received.append(None if before is None or after is None else after - before)
        for ws, _ in sockets:
            await ws.close()
        return run
    finally:
        counters.close()
        for server in servers:
            server.stop()
        private.stop()


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--instances", type=int, default=4)
    parser.add_argument("--rooms", type=int, default=40)
    parser.add_argument("--messages", type=int, default=4000)
    parser.add_argument("--spread", type=int, default=1)
    parser.add_argument("--json", type=Path)
    options = parser.parse_args()
    if not postgres_and_redis_answer():
        raise SystemExit("instances.py needs PostgreSQL and Redis on this machine")
    workdir = ROOT / "bench" / "results" / f"instances-{uuid.uuid4().hex[:8]}"
    runs = []
    for instances in (options.instances, 1):
        (workdir / f"n{instances}").mkdir(parents=True)
        database = await create_postgres_database()
        env = {
            **UNLIMITED,
            "DATABASE_URL": database,
            "REDIS_PREFIX": "bench",
            "MAX_SOCKETS_PER_USER": "100000",
        }
        try:
            runs.append(
                await measure(
                    workdir / f"n{instances}",
                    env,
                    instances,
                    options.rooms,
                    options.messages,
                    options.spread,
                )
            )
        finally:
            await drop_postgres_database(database)
    for run in runs:
        print(
            f"{run.instances} instance(s), {run.rooms} rooms, {run.messages} messages, "
            f"{run.deliveries} deliveries in {run.seconds} s; Redis PUBLISH calls: "
            f"{run.redis_publishes}; CPU per delivery: {run.cpu_us_per_delivery} µs"
        )
        print("| instance | broker frames received | CPU s | idle CPU s/s | commits |")
        print("|---|---|---|---|---|")
        for index, (frames, cpu) in enumerate(
            zip(run.frames_received, run.cpu_seconds, strict=True)
        ):
            idle, commits_made = run.idle_cpu_per_second[index], int(run.commits[index])
            shown = "n/a" if frames is None else int(frames)
            print(f"| {index} | {shown} | {cpu} | {idle} | {commits_made} |")
    if options.json:
        options.json.write_text(json.dumps([asdict(run) for run in runs], indent=2))


if __name__ == "__main__":
    asyncio.run(main())
