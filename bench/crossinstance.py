"""N instances on one PostgreSQL and one Redis: cross-instance delivery latency and CPU
per delivery, against one instance under the same load.

    .venv/bin/python bench/crossinstance.py [--instances 1,4] [--rooms 20] [--clients 5]
                                        [--rate 100] [--seconds 10] [--json FILE]

For each N: a fresh PostgreSQL database on the machine's server (127.0.0.1:5432), a
private `redis-server` (so its command counter counts only this run), N `quartchat
serve` processes. `--rooms` rooms of `--clients` sockets each, spread round-robin over
the instances (with N > 1 most deliveries cross Redis; `--placement room` puts each
room on one instance instead), one sender per room, `--rate`
messages/s in all for `--seconds`, after a 5 s idle window (one presence heartbeat:
`PRESENCE_TTL` is 15 s here). Reports delivery latency p50/p99 (send -> frame on
another socket, cross-instance and local apart), the instances' CPU µs per delivery
(all processes added up), Redis commands per message and per second while idle (presence
heartbeats, pings), messages per PostgreSQL commit, and each instance's RSS.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402
from redis import Redis  # noqa: E402
from websockets.asyncio.client import ClientConnection, connect  # noqa: E402

from bench.loadgen import percentile  # noqa: E402
from bench.standalone import UNLIMITED  # noqa: E402
from tests.support import (  # noqa: E402
    RedisServer,
    RunningServer,
    create_postgres_database,
    drop_postgres_database,
    metric,
    start_server,
)

IDLE_SECONDS = 5


def rss_mib(server: RunningServer) -> float:
    with open(f"/proc/{server.process.pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def redis_commands(redis: Redis) -> int:
    return int(redis.info("stats")["total_commands_processed"])


def redis_calls(redis: Redis) -> dict[str, int]:
    """Calls so far by command (`INFO commandstats`: cmdstat_publish -> publish)."""
    return {
        name.removeprefix("cmdstat_"): int(stats["calls"])
        for name, stats in redis.info("commandstats").items()
    }


async def metric_sum(servers: list[RunningServer], name: str) -> float:
    total = 0.0
    async with httpx.AsyncClient(timeout=10) as http:
        for server in servers:
            total += metric((await http.get(f"{server.http_url}/metrics")).text, name)
    return total


async def measure(count: int, args: argparse.Namespace) -> dict[str, Any]:
    workdir = Path(tempfile.mkdtemp(prefix="quartchat-instances-"))
    redis_server = RedisServer(workdir)
    database = await create_postgres_database()
    env = {
        **UNLIMITED,
        "DATABASE_URL": database,
        "REDIS_URL": redis_server.url,
        "MAX_SOCKETS_PER_USER": str(args.rooms),  # each user has a socket in every room
        "SOCKET_OPENS_PER_USER_BURST": str(args.rooms),
        # A presence heartbeat every 5 s: one falls in each 5 s idle window below.
        "PRESENCE_TTL": str(IDLE_SECONDS * 3),
    }
    servers: list[RunningServer] = []
    sockets: list[ClientConnection] = []
    try:
        for n in range(count):
            (workdir / str(n)).mkdir()
            servers.append(start_server(workdir / str(n), env=env))
        redis = Redis(port=redis_server.port)
        async with httpx.AsyncClient(base_url=servers[0].http_url, timeout=30) as http:
            rooms = [
                (await http.post("/rooms", json={"name": f"r{i}"})).json()["id"]
                for i in range(args.rooms)
            ]
            users = [
                (await http.post("/users", json={"username": f"u{i}"})).json()["id"]
                for i in range(args.clients)
            ]
        # Which instance each socket is on, and the latencies it sees.
        placed: list[tuple[ClientConnection, int, str]] = []
        for r, room in enumerate(rooms):
            for c, user in enumerate(users):
                where = (r + c) % count if args.placement == "spread" else r % count
                ws = await connect(f"{servers[where].ws_url}/ws/{room}/{user}", open_timeout=30)
                sockets.append(ws)
                placed.append((ws, where, room))
        cross: list[float] = []
        local: list[float] = []
        counting = asyncio.Event()

        async def read(ws: ClientConnection, where: int) -> None:
            with contextlib.suppress(Exception):
                async for raw in ws:
                    frame = json.loads(raw)
                    if frame.get("type") != "message" or not counting.is_set():
                        continue
                    sent_at, origin = frame["content"].split("@")
                    latency = (time.monotonic() - float(sent_at)) * 1000
                    (local if int(origin) == where else cross).append(latency)

        readers = [asyncio.create_task(read(ws, where)) for ws, where, _ in placed]
        await asyncio.sleep(6)  # joins, presence and the first resync settle
        idle_before, idle_started = redis_commands(redis), time.monotonic()
        idle_cpu = sum(s.cpu_seconds() for s in servers)
        await asyncio.sleep(IDLE_SECONDS)
        idle_seconds = time.monotonic() - idle_started
        idle_rate = (redis_commands(redis) - idle_before) / idle_seconds
        idle_cpu = (sum(s.cpu_seconds() for s in servers) - idle_cpu) / idle_seconds
        senders = [next(p for p in placed if p[2] == room) for room in rooms]
        counting.set()
        cpu_before = sum(s.cpu_seconds() for s in servers)
        redis_before = redis_commands(redis)
        calls_before = redis_calls(redis)
        commits_before = await metric_sum(servers, "quartchat_commits_total")
        sent = 0
        started = time.monotonic()
        while time.monotonic() - started < args.seconds:
            for ws, where, _ in senders:
                await ws.send(json.dumps({"content": f"{time.monotonic()}@{where}"}))
                sent += 1
            await asyncio.sleep(max(0.0, started + sent / args.rate - time.monotonic()))
        await asyncio.sleep(2)  # drain
        window = time.monotonic() - started
        cpu = sum(s.cpu_seconds() for s in servers) - cpu_before
        commands = redis_commands(redis) - redis_before
        calls = {
            name: round((n - calls_before.get(name, 0)) / max(sent, 1), 2)
            for name, n in redis_calls(redis).items()
            if n > calls_before.get(name, 0)
        }
        commits = await metric_sum(servers, "quartchat_commits_total") - commits_before
        for task in readers:
            task.cancel()
        deliveries = len(cross) + len(local)
        expected = sent * args.clients
        return {
            "instances": count,
            "placement": args.placement,
            "messages": sent,
            "deliveries": deliveries,
            "lost": expected - deliveries,
            "cross_p50_ms": percentile(cross, 0.5),
            "cross_p99_ms": percentile(cross, 0.99),
            "local_p50_ms": percentile(local, 0.5),
            "local_p99_ms": percentile(local, 0.99),
            "cpu_us_per_delivery": round(cpu / max(deliveries, 1) * 1e6, 2),
            # Less what the instances spend with open sockets and no traffic (pings,
            # presence heartbeats, resyncs): the part that grows with deliveries.
            "cpu_us_per_delivery_less_idle": round(
                (cpu - idle_cpu * window) / max(deliveries, 1) * 1e6, 2
            ),
            "idle_cpu_percent_per_instance": round(idle_cpu / count * 100, 2),
            "redis_commands_per_message": round(commands / max(sent, 1), 2),
            "redis_commands_per_message_less_idle": round(
                (commands - idle_rate * window) / max(sent, 1), 2
            ),
            "redis_calls_per_message": calls,
            "redis_commands_per_second_idle": round(idle_rate, 1),
            "messages_per_commit": round(sent / max(commits, 1), 2),
            "rss_mib": [round(rss_mib(s), 1) for s in servers],
        }
    finally:
        for ws in sockets:
            with contextlib.suppress(Exception):
                await ws.close()
        for server in servers:
            server.stop()
        redis_server.stop()
        await drop_postgres_database(database)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--instances", default="1,4", help="comma-separated counts")
    parser.add_argument("--rooms", type=int, default=20)
    parser.add_argument("--clients", type=int, default=5, help="sockets per room")
    parser.add_argument("--rate", type=float, default=100, help="messages/s in all")
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument(
        "--placement",
        choices=("spread", "room"),
        default="spread",
        help="spread: a room's sockets round-robin over the instances (most deliveries "
        "cross Redis); room: all of a room's sockets on one instance (what a load "
        "balancer with room affinity gives)",
    )
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    results = []
    for count in (int(n) for n in args.instances.split(",")):
        result = await measure(count, args)
        print(json.dumps(result))
        results.append(result)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    asyncio.run(main())
