"""Load a quartchat deployment and see what it holds: sockets, messages per second, latency.

    python bench/loadgen.py https://chat.example.com fanout --rooms 1 --clients 100 --rate 500
    python bench/loadgen.py http://127.0.0.1:8000 rooms --rooms 50 --clients 10 --rate 500
    python bench/loadgen.py http://127.0.0.1:8000 idle --sockets 2000 --server-pid 1234
    python bench/loadgen.py http://127.0.0.1:8000 storm --sockets 1000 --rounds 2

It creates its own rooms and users over REST (with the tokens the server hands out when
AUTH_SECRET is set), opens real WebSocket connections (`wss://` for an `https://` URL),
shows progress once a second, and ends with a summary table (`--json FILE` keeps every
figure). `--server-pid` (a server on this machine) adds its CPU time and RSS.

- fanout / rooms: `--senders` clients per room send `--rate` messages per second in all,
  spread evenly; every socket of a room receives every message. A delivery counts only
  if it carries this run's nonce; loss = expected - delivered after a drain; latency =
  receive time - send time on one clock.
- idle: opens `--sockets` silent sockets to one room; the server's RSS growth per socket.
- storm: `--sockets` clients connect at the same instant, `--rounds` times; connect
  latency (start -> 101) and errors per round.

Its own CPU counts: one Python process does ~50-100k frames/s, so on a small machine the
figures that compare servers are the server's CPU per delivery, not raw throughput.
Rate limits meant for people apply to it too: raise them on a server you benchmark.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import secrets
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import httpx
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
PAGE_KIB = os.sysconf("SC_PAGE_SIZE") // 1024
DRAIN_SECONDS = 5.0


@dataclass
class Figures:
    """What one run measured; `None` where it does not apply."""

    mode: str
    sockets: int = 0
    connect_errors: int = 0
    sent: int = 0
    expected: int = 0
    delivered: int = 0
    lost: int = 0
    seconds: float = 0.0
    deliveries_per_second: int = 0
    latency_p50_ms: float | None = None
    latency_p99_ms: float | None = None
    server_cpu_seconds: float | None = None
    server_cpu_us_per_delivery: float | None = None
    server_rss_mib: float | None = None
    rss_kib_per_socket: float | None = None
    rounds: list[dict[str, float]] = field(default_factory=list)


class Server:
    """CPU and RSS of a local server process and its children (`/proc`)."""

    def __init__(self, pid: int | None) -> None:
        self.pid = pid

    def _tree(self) -> list[int]:
        if self.pid is None:
            return []
        children: dict[int, list[int]] = {}
        for entry in os.listdir("/proc"):
            if entry.isdigit():
                with contextlib.suppress(OSError):
                    stat = Path(f"/proc/{entry}/stat").read_bytes()
                    parent = int(stat[stat.rfind(b")") + 2 :].split()[1])
                    children.setdefault(parent, []).append(int(entry))
        tree, stack = [], [self.pid]
        while stack:
            pid = stack.pop()
            tree.append(pid)
            stack.extend(children.get(pid, ()))
        return tree

    def cpu_seconds(self) -> float | None:
        if self.pid is None:
            return None
        total = 0
        for pid in self._tree():
            with contextlib.suppress(OSError):
                stat = Path(f"/proc/{pid}/stat").read_bytes()
                fields = stat[stat.rfind(b")") + 2 :].split()
                total += int(fields[11]) + int(fields[12])
        return total / CLOCK_TICKS

    def rss_mib(self) -> float | None:
        if self.pid is None:
            return None
        pages = 0
        for pid in self._tree():
            with contextlib.suppress(OSError, IndexError):
                pages += int(Path(f"/proc/{pid}/statm").read_text().split()[1])
        return round(pages * PAGE_KIB / 1024, 1)


class Deployment:
    """The server under load: its REST API, for rooms and users, and its socket URL."""

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url.rstrip("/")
        scheme, rest = self.base_url.split("://", 1)
        self.ws_base = ("wss" if scheme == "https" else "ws") + "://" + rest
        self.http = httpx.AsyncClient(base_url=self.base_url, timeout=30, verify=False)

    async def create(self, path: str, body: dict[str, str]) -> dict[str, Any]:
        """POST, waiting out 429s as a polite client would."""
        while True:
            response = await self.http.post(path, json=body)
            if response.status_code == 429:
                await asyncio.sleep(float(response.headers.get("Retry-After", "1")))
                continue
            response.raise_for_status()
            created: dict[str, Any] = response.json()
            return created

    async def rooms_and_users(self, rooms: int, users: int) -> tuple[list[str], list[str]]:
        room_ids = [
            (await self.create("/rooms", {"name": f"load {i}"}))["id"] for i in range(rooms)
        ]
        self.tokens: dict[str, str] = {}
        user_ids = []
        for index in range(users):
            user = await self.create("/users", {"username": f"load {index}"})
            user_ids.append(user["id"])
            if user.get("token"):
                self.tokens[user["id"]] = user["token"]
        return room_ids, user_ids

    def socket_url(self, room_id: str, user_id: str) -> str:
        token = self.tokens.get(user_id)
        return f"{self.ws_base}/ws/{room_id}/{user_id}" + (f"?token={token}" if token else "")

    async def open(self, room_id: str, user_id: str) -> ClientConnection:
        return await connect(
            self.socket_url(room_id, user_id), compression=None, max_size=None, open_timeout=30
        )


def percentile(values: list[float], share: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, int(len(ordered) * share))], 3)


async def progress(describe: Callable[[], str], stop: asyncio.Event) -> None:
    started = time.monotonic()
    while not stop.is_set():
        line = f"{time.monotonic() - started:6.1f} s  {describe()}"
        print("\r" + line.ljust(100), end="", file=sys.stderr, flush=True)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), 1)
    print(file=sys.stderr)


async def open_all(
    deployment: Deployment, pairs: list[tuple[str, str]], figures: Figures
) -> list[ClientConnection]:
    """Open sockets a hundred at a time; failures are counted, not fatal."""
    sockets: list[ClientConnection] = []
    for start in range(0, len(pairs), 100):
        batch = pairs[start : start + 100]
        opened = await asyncio.gather(
            *(deployment.open(room, user) for room, user in batch), return_exceptions=True
        )
        for result in opened:
            if isinstance(result, ClientConnection):
                sockets.append(result)
            else:
                figures.connect_errors += 1
    figures.sockets = len(sockets)
    return sockets


async def fanout(deployment: Deployment, server: Server, args: argparse.Namespace) -> Figures:
    """R rooms x C clients; the first `senders` of each room send `rate` msgs/s in all."""
    figures = Figures(mode=args.mode)
    rooms, users = await deployment.rooms_and_users(args.rooms, args.clients)
    pairs = [(room, user) for room in rooms for user in users]
    sockets = await open_all(deployment, pairs, figures)
    nonce = secrets.token_hex(6)
    latencies: list[float] = []
    counts = {"delivered": 0}

    async def read(ws: ClientConnection) -> None:
        with contextlib.suppress(ConnectionClosed):
            async for raw in ws:
                if nonce not in raw:
                    continue
                frame = json.loads(raw)
                if frame.get("type") == "message":
                    sent_at = float(frame["content"].split(" ", 2)[1])
                    latencies.append((time.monotonic() - sent_at) * 1000)
                    counts["delivered"] += 1

    readers = [asyncio.create_task(read(ws)) for ws in sockets]
    by_room: dict[int, list[ClientConnection]] = {}
    for index, ws in enumerate(sockets):
        by_room.setdefault(index // max(1, args.clients), []).append(ws)
    senders = [ws for room in by_room.values() for ws in room[: args.senders]]
    interval = len(senders) / args.rate if senders else 1.0
    padding = "x" * args.size

    room_size = {id(ws): len(room) for room in by_room.values() for ws in room}

    async def send(ws: ClientConnection, phase: float, deadline: float) -> None:
        next_at = time.monotonic() + phase
        while next_at < deadline:
            await asyncio.sleep(max(0.0, next_at - time.monotonic()))
            with contextlib.suppress(ConnectionClosed):
                await ws.send(json.dumps({"content": f"{nonce} {time.monotonic()!r} {padding}"}))
                figures.sent += 1
                figures.expected += room_size[id(ws)]
            next_at += interval

    stop = asyncio.Event()
    shown = asyncio.create_task(
        progress(
            lambda: (
                f"sockets {figures.sockets}  sent {figures.sent}  "
                f"delivered {counts['delivered']}  p99 {percentile(latencies[-5000:], 0.99)} ms"
            ),
            stop,
        )
    )
    cpu_before, started = server.cpu_seconds(), time.monotonic()
    deadline = started + args.duration
    await asyncio.gather(
        *(send(ws, i * interval / len(senders), deadline) for i, ws in enumerate(senders))
    )
    drain_until = time.monotonic() + DRAIN_SECONDS
    while counts["delivered"] < figures.expected and time.monotonic() < drain_until:  # noqa: ASYNC110
        await asyncio.sleep(0.05)
    figures.seconds = round(time.monotonic() - started, 3)
    cpu_after = server.cpu_seconds()
    stop.set()
    await shown
    figures.delivered = counts["delivered"]
    figures.deliveries_per_second = round(figures.delivered / max(figures.seconds, 1e-9))
    figures.lost = max(0, figures.expected - figures.delivered)
    figures.latency_p50_ms = percentile(latencies, 0.5)
    figures.latency_p99_ms = percentile(latencies, 0.99)
    if cpu_before is not None and cpu_after is not None:
        figures.server_cpu_seconds = round(cpu_after - cpu_before, 3)
        if figures.delivered:
            per_delivery = figures.server_cpu_seconds / figures.delivered * 1e6
            figures.server_cpu_us_per_delivery = round(per_delivery, 2)
    figures.server_rss_mib = server.rss_mib()
    for task in readers:
        task.cancel()
    await asyncio.gather(*(ws.close() for ws in sockets), return_exceptions=True)
    return figures


async def idle(deployment: Deployment, server: Server, args: argparse.Namespace) -> Figures:
    figures = Figures(mode="idle")
    rooms, users = await deployment.rooms_and_users(1, 1)
    warm = await open_all(deployment, [(rooms[0], users[0])] * 20, figures)
    await asyncio.sleep(1)
    before = server.rss_mib()
    stop = asyncio.Event()
    sockets: list[ClientConnection] = []
    shown = asyncio.create_task(progress(lambda: f"sockets open {len(sockets)}", stop))
    for start in range(0, args.sockets, 100):
        batch = min(100, args.sockets - start)
        opened = await asyncio.gather(
            *(deployment.open(rooms[0], users[0]) for _ in range(batch)), return_exceptions=True
        )
        sockets.extend(ws for ws in opened if isinstance(ws, ClientConnection))
    await asyncio.sleep(3)
    stop.set()
    await shown
    after = server.rss_mib()
    figures.sockets = len(sockets)
    figures.connect_errors = args.sockets - len(sockets)
    figures.server_rss_mib = after
    if before is not None and after is not None and sockets:
        figures.rss_kib_per_socket = round((after - before) * 1024 / len(sockets), 1)
    await asyncio.gather(*(ws.close() for ws in sockets + warm), return_exceptions=True)
    return figures


async def storm(deployment: Deployment, server: Server, args: argparse.Namespace) -> Figures:
    figures = Figures(mode="storm", sockets=args.sockets)
    rooms, users = await deployment.rooms_and_users(1, min(args.sockets, 50))
    for number in range(1, args.rounds + 1):
        row = await storm_round(deployment, server, rooms[0], users, args.sockets, number)
        figures.rounds.append(row)
        figures.connect_errors += int(row["errors"])
    return figures


async def storm_round(
    deployment: Deployment, server: Server, room: str, users: list[str], count: int, number: int
) -> dict[str, float]:
    """`count` connections started at one instant; then all of them closed again."""
    cpu_before = server.cpu_seconds()
    started = time.monotonic()
    times: list[float] = []

    async def attempt(index: int) -> ClientConnection | None:
        try:
            ws = await deployment.open(room, users[index % len(users)])
        except (OSError, InvalidHandshake, TimeoutError):
            return None
        times.append(time.monotonic() - started)
        return ws

    stop = asyncio.Event()
    shown = asyncio.create_task(progress(lambda: f"round {number}: connected {len(times)}", stop))
    opened = await asyncio.gather(*(attempt(i) for i in range(count)))
    cpu_after = server.cpu_seconds()
    stop.set()
    await shown
    sockets = [ws for ws in opened if ws is not None]
    await asyncio.sleep(1)
    # A socket the server accepted and then closed (4429 past a budget, say) is refused
    # as surely as a failed handshake: browsers only see the close code.
    refused = [ws for ws in sockets if ws.close_code is not None]
    row: dict[str, float] = {
        "round": number,
        "connected": len(sockets) - len(refused),
        "errors": count - len(sockets) + len(refused),
        "p50_s": percentile(times, 0.5) or 0.0,
        "p99_s": percentile(times, 0.99) or 0.0,
    }
    if cpu_before is not None and cpu_after is not None:
        row["server_cpu_s"] = round(cpu_after - cpu_before, 3)
    if (rss := server.rss_mib()) is not None:
        row["server_rss_mib"] = round(rss, 1)
    await asyncio.gather(*(ws.close() for ws in sockets), return_exceptions=True)
    return row


MESSAGE_FIGURES = {"sent", "expected", "delivered", "lost", "seconds", "deliveries_per_second"}


def summary(figures: Figures) -> str:
    """The figures as a markdown table (only those the mode measured)."""
    sends = figures.mode in {"fanout", "rooms"}
    rows = [
        (name, value)
        for name, value in asdict(figures).items()
        if value not in (None, []) and (sends or name not in MESSAGE_FIGURES)
    ]
    lines = ["| figure | value |", "|---|---|"]
    for name, value in rows:
        if name == "rounds":
            continue
        lines.append(f"| {name.replace('_', ' ')} | {value} |")
    for row in figures.rounds:
        described = ", ".join(f"{key} {value}" for key, value in row.items() if key != "round")
        lines.append(f"| round {row['round']:g} | {described} |")
    return "\n".join(lines)


MODES: dict[str, Callable[[Deployment, Server, argparse.Namespace], Awaitable[Figures]]] = {
    "fanout": fanout,
    "rooms": fanout,
    "idle": idle,
    "storm": storm,
}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("url", help="the server's http(s) base URL")
    parser.add_argument("mode", choices=sorted(MODES))
    parser.add_argument("--rooms", type=int, default=1)
    parser.add_argument("--clients", type=int, default=100, help="sockets per room")
    parser.add_argument("--senders", type=int, default=1, help="senders per room")
    parser.add_argument("--rate", type=float, default=200, help="messages per second in all")
    parser.add_argument("--duration", type=float, default=10, help="seconds of sending")
    parser.add_argument("--size", type=int, default=0, help="extra characters per message")
    parser.add_argument("--sockets", type=int, default=1000, help="idle / storm sockets")
    parser.add_argument("--rounds", type=int, default=2, help="storm rounds")
    parser.add_argument("--server-pid", type=int, help="a local server's pid: CPU and RSS")
    parser.add_argument("--json", type=Path, help="write the figures to this file")
    return parser.parse_args(argv)


async def run(args: argparse.Namespace) -> Figures:
    deployment = Deployment(args.url)
    try:
        return await MODES[args.mode](deployment, Server(args.server_pid), args)
    finally:
        await deployment.http.aclose()


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    figures = asyncio.run(run(args))
    print(summary(figures))
    if args.json:
        args.json.write_text(json.dumps(asdict(figures), indent=2))


if __name__ == "__main__":
    main()
