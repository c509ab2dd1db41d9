"""Log lines per second during a reconnect storm: what a log platform has to ingest.

    .venv/bin/python bench/logstorm.py [--sockets 1000] [--at-once 100] [--json]

Starts `quartchat serve`, opens `--sockets` sockets (each one a handshake and a close,
`--at-once` at a time, each in a room of its own, as fast as the machine allows), reads
the server's output as it is written and prints the handshakes per second reached, the
lines written, and the most lines written within any one second. Railway's log
ingestion keeps about 500 lines per second per replica; past that, lines are dropped.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.support import create_room, create_user, open_socket, start_server  # noqa: E402


def follow(path: Path, arrivals: list[float], stop: threading.Event) -> None:
    """Append the arrival time of every line written to `path` until `stop`."""
    with path.open("rb") as log:
        pending = b""
        while not stop.is_set():
            chunk = log.read()
            if chunk:
                now = time.monotonic()
                pending += chunk
                *lines, pending = pending.split(b"\n")
                arrivals.extend(now for _ in lines)
            else:
                time.sleep(0.01)


def peak_per_second(arrivals: list[float]) -> int:
    peak, start = 0, 0
    for end, at in enumerate(arrivals):
        while arrivals[start] <= at - 1.0:
            start += 1
        peak = max(peak, end - start + 1)
    return peak


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sockets", type=int, default=1000)
    parser.add_argument("--at-once", type=int, default=100)
    parser.add_argument("--json", action="store_true", help="LOG_FORMAT=json")
    args = parser.parse_args()
    env = {"LOG_FORMAT": "json"} if args.json else {}
    with tempfile.TemporaryDirectory() as workdir:
        server = start_server(Path(workdir), env=env)
        arrivals: list[float] = []
        stop = threading.Event()
        try:
            async with httpx.AsyncClient(base_url=server.http_url) as http:
                rooms = [await create_room(http) for _ in range(args.at_once)]
                users = [await create_user(http) for _ in range(args.at_once)]
            await asyncio.sleep(0.5)
            follower = threading.Thread(target=follow, args=(server.log_path, arrivals, stop))
            follower.start()
            await asyncio.sleep(0.3)
            arrivals.clear()  # startup's lines and the setup's requests are not the storm's

            async def cycle(index: int) -> None:
                room, user = rooms[index % len(rooms)], users[index % len(users)]
                async with open_socket(server, room["id"], user["id"], compression=None):
                    pass

            began = time.monotonic()
            for first in range(0, args.sockets, args.at_once):
                last = min(first + args.at_once, args.sockets)
                await asyncio.gather(*(cycle(i) for i in range(first, last)))
            took = time.monotonic() - began
            await asyncio.sleep(2.5)  # a summary line written after the last handshake
        finally:
            stop.set()
            server.stop()
    print(f"handshakes: {args.sockets} in {took:.2f} s ({args.sockets / took:.0f}/s)")
    print(f"lines written: {len(arrivals)}; at most {peak_per_second(arrivals)} within 1 s")


if __name__ == "__main__":
    asyncio.run(main())
