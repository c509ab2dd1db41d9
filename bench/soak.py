"""Churn soak: many connect/disconnect cycles against one server, printing its RSS.

    .venv/bin/python bench/soak.py [--cycles 10000] [--at-once 50]

A flat RSS column after the first thousands of cycles (and 0 open sockets and rooms
at the end, from /metrics) means sockets, queues, tasks and presence are released.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.support import create_room, create_user, open_socket, start_server  # noqa: E402


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--cycles", type=int, default=10_000)
    parser.add_argument("--at-once", type=int, default=50)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as workdir:
        # Thousands of opens a minute from one address and few users: what this measures
        # (leaks) is not what the budget for opening sockets is for.
        env = {"SOCKET_OPENS_PER_USER_PER_MINUTE": "0", "SOCKET_OPENS_PER_IP_PER_MINUTE": "0"}
        server = start_server(Path(workdir), env=env)
        try:
            async with httpx.AsyncClient(base_url=server.http_url) as http:
                rooms = [await create_room(http) for _ in range(10)]
                users = [await create_user(http) for _ in range(args.at_once)]

                async def cycle(index: int) -> None:
                    room, user = rooms[index % len(rooms)], users[index % len(users)]
                    async with open_socket(server, room["id"], user["id"]) as ws:
                        await ws.send('{"type": "ping"}')
                        await ws.recv()

                print("cycles  server RSS MiB", flush=True)
                for start in range(0, args.cycles, args.at_once):
                    await asyncio.gather(*(cycle(i) for i in range(start, start + args.at_once)))
                    done = start + args.at_once
                    if done % 1000 == 0:
                        print(f"{done:6d}  {rss_mib(server.process.pid):.1f}", flush=True)
                await asyncio.sleep(1)
                metrics = (await http.get("/metrics")).text
                left = [
                    line
                    for line in metrics.splitlines()
                    if line.startswith(("quartchat_open_sockets ", "quartchat_active_rooms "))
                ]
                print("after:", ", ".join(left))
        finally:
            server.stop()


if __name__ == "__main__":
    asyncio.run(main())
