"""Hostile load next to a well-behaved socket: PING floods and list reads on many users.

    .venv/bin/python bench/flood.py [--seconds 10] [--users 100000]

Prints the neighbour's JSON ping round trip (median, p99) alone, next to a client
that floods PING control frames (reconnecting each time it is closed), and next to
five clients reading `GET /users` page after page; plus what one flood connection
got away with and the size and time of one list read.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.support import (  # noqa: E402
    RawWebSocket,
    RunningServer,
    create_room,
    create_user,
    open_socket,
    run_script,
    start_server,
)

PING = bytes([0x89, 0x80]) + b"\x00\x00\x00\x00"  # masked, empty
SEED = """
import asyncio, sys
from quartchat.storage import db
from quartchat.storage.models import User

async def main(url, count):
    await db.connect(url)
    users = [User(id=f"seed-{i:06d}", username=f"Seeded user {i}") for i in range(count)]
    await User.bulk_create(users, batch_size=5000)
    await db.disconnect()

asyncio.run(main(sys.argv[1], int(sys.argv[2])))
"""


async def round_trips(server: RunningServer, room: str, user: str, seconds: float) -> list[float]:
    times = []
    async with open_socket(server, room, user) as ws:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            start = time.perf_counter()
            await ws.send('{"type": "ping"}')
            while '"pong"' not in await ws.recv():
                pass
            times.append((time.perf_counter() - start) * 1000)
            await asyncio.sleep(0.02)
    return times


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def summary(label: str, times: list[float]) -> None:
    p99 = statistics.quantiles(times, n=100)[98] if len(times) > 2 else max(times)
    print(f"{label:34s} median {statistics.median(times):7.2f} ms  p99 {p99:7.2f} ms")


def flood(port: int, path: str, seconds: float, report: multiprocessing.Queue[str]) -> None:
    """Flood PINGs on one connection after another for `seconds` (in a process of its
    own, so that it does not slow the neighbour's measurement in this one)."""
    connections = sent = 0
    closes: dict[int | None, int] = {}
    first = ""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        raw = RawWebSocket(port, path)
        connections += 1
        started, on_this = time.monotonic(), 0
        try:
            while time.monotonic() < deadline:
                raw.sock.sendall(PING * 1000)
                on_this += 1000
        except OSError:
            pass
        try:
            _, code = raw.read_until_close(2)
        except OSError:
            code = None
        closes[code] = closes.get(code, 0) + 1
        if not first:
            first = f"{on_this} pings written before the close, {time.monotonic() - started:.3f} s"
        sent += on_this
        raw.close()
    report.put(f"first flood connection: {first}")
    report.put(f"{connections} flood connections, {sent} pings written, closes {closes}")


def read_lists(base_url: str, seconds: float, report: multiprocessing.Queue[str]) -> None:
    """Five clients reading `GET /users` page after page for `seconds`."""

    async def reader(http: httpx.AsyncClient, statuses: dict[int, int]) -> None:
        path, deadline = "/users?limit=500", time.monotonic() + seconds
        while time.monotonic() < deadline:
            response = await http.get(path)
            statuses[response.status_code] = statuses.get(response.status_code, 0) + 1
            if response.status_code == 429:
                await asyncio.sleep(float(response.headers["retry-after"]))
            link = response.headers.get("link", "")
            path = link[1 : link.index(">")] if link else "/users?limit=500"

    async def readers() -> None:
        statuses: dict[int, int] = {}
        async with httpx.AsyncClient(base_url=base_url, timeout=60) as http:
            await asyncio.gather(*(reader(http, statuses) for _ in range(5)))
        report.put(f"5 list readers, {seconds:g} s, pages of 500 by status: {statuses}")

    asyncio.run(readers())


async def next_to(
    server: RunningServer,
    target: Callable[..., None],
    args: tuple[object, ...],
    label: str,
    measure: Awaitable[list[float]],
) -> None:
    report: multiprocessing.Queue[str] = multiprocessing.Queue()
    process = multiprocessing.Process(target=target, args=(*args, report))
    cpu = cpu_seconds(server.process.pid)
    process.start()
    summary(label, await measure)
    await asyncio.to_thread(process.join)
    print(f"  server CPU meanwhile: {cpu_seconds(server.process.pid) - cpu:.2f} s")
    while not report.empty():
        print("  " + report.get())


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--users", type=int, default=100_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as workdir:
        url = f"sqlite://{Path(workdir) / 'chat.sqlite3'}"
        run_script(SEED, url, str(args.users), cwd=Path(workdir))
        # the read budget as deployed (the test helper raises it)
        env = {"DATABASE_URL": url, "REST_READS_PER_MINUTE": "600", "REST_READS_BURST": "100"}
        server = start_server(Path(workdir), env=env)
        try:
            async with httpx.AsyncClient(base_url=server.http_url, timeout=60) as http:
                room = (await create_room(http))["id"]
                calm, flooder = (await create_user(http))["id"], (await create_user(http))["id"]
                summary("neighbour alone", await round_trips(server, room, calm, args.seconds))

                seconds = args.seconds
                await next_to(
                    server,
                    flood,
                    (server.port, f"/ws/{room}/{flooder}", seconds),
                    "neighbour next to a PING flood",
                    round_trips(server, room, calm, seconds),
                )
                start = time.perf_counter()
                first = await http.get("/users")
                print(
                    f"GET /users with {args.users} users: {len(first.content)} bytes, "
                    f"{len(first.json())} users, {(time.perf_counter() - start) * 1000:.1f} ms"
                )
                await next_to(
                    server,
                    read_lists,
                    (server.http_url, seconds),
                    "neighbour next to 5 list readers",
                    round_trips(server, room, calm, seconds),
                )
        finally:
            server.stop()


if __name__ == "__main__":
    asyncio.run(main())
