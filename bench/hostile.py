"""A hostile client next to well-behaved ones: do the good ones lose anything or slow down?

    .venv/bin/python bench/hostile.py [--minutes 10] [--good 50] [--users 100000] [--postgres]
                                      [--redis] [--big-room 200000]

Starts its own server (SQLite by default, PostgreSQL with `--postgres`), seeds `--users`
users and a room of `--big-room` messages, then runs side by side for `--minutes`:
- `--good` well-behaved clients in 5 rooms, each sending one message a second with its
  own id and timing the round trip to its own echo;
- one hostile client doing everything it can think of, in turns: poison content (NUL,
  lone surrogates, controls, bidi overrides) in the good clients' rooms, JSON and frame
  floods, protocol PING floods, malformed frames, poisoned handshakes, deeply nested
  and calendar-edge REST requests, and full-page list reads of the user table; from an
  address of its own (127.0.0.2): sockets opened and closed in a loop into the good
  clients' rooms, as one user and as many, 20 sockets of one user typing at 9 frames/s
  each, and handshakes with odd subprotocols (an empty token, hundreds of protocols);
  with `--redis` (a private redis-server behind the server), Redis paused with SIGSTOP
  for 3 s each round; and reads that once cost far more than they returned: `since=`
  in 2000 on the big room (REST and socket handshakes), 20 sockets replaying the big
  room from its first message, searches (`q=`) that match nothing, `/openapi.json` and
  `/asyncapi.json` bursts, and requests of 3,500 headers or 7,000 cookies (expected:
  431).
At the end it checks, through REST, that every message a good client sent is stored
and was received by every good client of its room, and prints one summary table: the
good clients' round-trip p50/p99, messages lost, the hostile side's outcomes by status
class (any 5xx is a failure), and the server's peak RSS. Exit status 0 when nothing was
lost, no 5xx was seen and the good clients' p99 stayed under 100 ms.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import signal
import socket
import sqlite3
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.support import (  # noqa: E402
    RawWebSocket,
    RedisServer,
    RunningServer,
    create_postgres_database,
    drop_postgres_database,
    start_server,
)

POISON_CONTENT = [
    "nul \u0000 inside",
    "\ud800 lone high surrogate",
    "lone low \udfff",
    "bell \u0007 and escape \u001b[31m",
    "\u202e bidi override",
    "\u200b\u200b\u200b",
    "x" * 100_000,
]
PING_FRAME = bytes([0x89, 0x80, 0, 0, 0, 0])  # a masked, empty PING control frame
# The hostile client's own address (all of 127/8 is loopback): per-address budgets
# tell it from the good clients, as they would a stranger on the internet.
HOSTILE_ADDRESS = ("127.0.0.2", 0)


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * share))] if ordered else float("nan")


class Tally:
    """What the hostile side saw: HTTP outcomes by status class, and named events."""

    def __init__(self) -> None:
        self.counts: dict[str, int] = {}
        self.server_errors: list[str] = []
        self.replayed: list[float] = []  # messages/s of each replay storm

    def status(self, what: str, status: int) -> None:
        self.event(f"{status // 100}xx")
        if status >= 500:
            self.server_errors.append(f"{what} -> {status}")

    def event(self, name: str) -> None:
        self.counts[name] = self.counts.get(name, 0) + 1


def seed_sqlite_users(database: Path, count: int) -> None:
    with sqlite3.connect(database) as connection:
        connection.executemany(
            "INSERT OR IGNORE INTO users (id, username, created_at) VALUES (?, ?, ?)",
            (
                (f"seed-{index}", f"Seeded user {index}", "2026-01-01T00:00:00+00:00")
                for index in range(count)
            ),
        )


async def seed_postgres_users(url: str, count: int) -> None:
    import asyncpg

    connection = await asyncpg.connect(url)
    try:
        await connection.execute(
            "INSERT INTO users (id, username, created_at) SELECT 'seed-' || n, "
            "'Seeded user ' || n, now() FROM generate_series(0, $1 - 1) AS n "
            "ON CONFLICT DO NOTHING",
            count,
        )
    finally:
        await connection.close()


BIG_ROOM = "big-room"
OLD_SINCE = "2000-01-01T00:00:00Z"


def seed_sqlite_room(database: Path, count: int) -> None:
    with sqlite3.connect(database) as connection:
        connection.execute(
            "INSERT INTO rooms (id, name, created_at, last_seq, last_message_at) "
            "VALUES (?, 'Big room', '2025-12-31 00:00:00+00:00', ?, "
            "datetime('2026-01-01', ?))",
            (BIG_ROOM, count, f"+{count} seconds"),
        )
        connection.executemany(
            "INSERT INTO messages (id, room_id, user_id, content, created_at, seq) "
            "VALUES (?, ?, 'seed-0', ?, ?, ?)",
            (
                (
                    str(uuid.uuid4()),
                    BIG_ROOM,
                    f"old {seq}",
                    time.strftime("%Y-%m-%d %H:%M:%S+00:00", time.gmtime(1767225600 + seq)),
                    seq,
                )
                for seq in range(1, count + 1)
            ),
        )


async def seed_postgres_room(url: str, count: int) -> None:
    import asyncpg

    connection = await asyncpg.connect(url)
    try:
        await connection.execute(
            "INSERT INTO rooms (id, name, created_at, last_seq, last_message_at) VALUES "
            "($1, 'Big room', now(), $2::bigint, "
            "timestamptz '2026-01-01' + $2::int * interval '1 s')",
            BIG_ROOM,
            count,
        )
        await connection.execute(
            "INSERT INTO messages (id, room_id, user_id, content, created_at, seq) "
            "SELECT gen_random_uuid(), $1, 'seed-0', 'old ' || n, "
            "timestamptz '2026-01-01' + n * interval '1 second', n "
            "FROM generate_series(1, $2) AS n",
            BIG_ROOM,
            count,
        )
        await connection.execute("ANALYZE")
    finally:
        await connection.close()


def many_headers(port: int, headers: int, cookies: int) -> int:
    """GET /health with `headers` extra headers or a Cookie of `cookies` cookies, in one
    write; the answer's status."""
    lines = b"".join(b"x-%d: y\r\n" % index for index in range(headers))
    if cookies:
        lines += b"cookie: " + b"; ".join(b"c%d=1" % i for i in range(cookies)) + b"\r\n"
    head = b"GET /health HTTP/1.1\r\nhost: a\r\nconnection: close\r\n" + lines + b"\r\n"
    with socket.create_connection(("127.0.0.1", port), timeout=10) as connection:
        connection.sendall(head)
        answer = b""
        while chunk := connection.recv(65536):
            answer += chunk
    return int(answer.split(b" ", 2)[1])


async def hostile_reads(server: RunningServer, http: httpx.AsyncClient, tally: Tally) -> None:
    """One round of reads that once cost far more than they returned, each for ~2 s."""
    room_url = f"{server.ws_url}/ws/{BIG_ROOM}/seed-0"
    for index in range(20):  # since= in 2000: REST (inside the read budget) and handshakes
        with contextlib.suppress(httpx.HTTPError):
            response = await http.get(
                f"/rooms/{BIG_ROOM}/messages", params={"since": OLD_SINCE, "limit": "1"}
            )
            tally.status("GET old since", response.status_code)
        with contextlib.suppress(OSError, ConnectionClosed, InvalidStatus, TimeoutError):
            # max_queue=None: it keeps reading (as a browser does) until the close reply,
            # which otherwise waits behind the frames of the replay it does not read.
            url = f"{room_url[:-1]}{100 + index}?since={OLD_SINCE}"  # users' open budgets
            async with asyncio.timeout(5), connect(url, max_queue=None) as ws:
                await ws.recv()
                tally.event("old-since-socket")
        await asyncio.sleep(0.1)
    first = await http.get(f"/rooms/{BIG_ROOM}/messages", params={"since": OLD_SINCE})
    if first.status_code == 200 and first.json():
        after = first.json()[0]["id"]
        await replay_storm([f"{room_url[:-1]}{i}?after={after}" for i in range(1, 21)], tally)
    for index in range(20):  # searches that match nothing, at the read budget
        with contextlib.suppress(httpx.HTTPError):
            path = "/users" if index % 2 else "/rooms"
            response = await http.get(path, params={"q": f"nobody-{index}"})
            tally.status("GET search", response.status_code)
        await asyncio.sleep(0.1)
    for _ in range(50):  # the API documents, open to anyone
        with contextlib.suppress(httpx.HTTPError):
            for path in ("/openapi.json", "/asyncapi.json"):
                tally.status(f"GET {path}", (await http.get(path)).status_code)
        await asyncio.sleep(0.02)
    for index in range(40):  # request heads of thousands of headers (431 expected)
        headers, cookies = (3500, 0) if index % 2 else (0, 7000)
        with contextlib.suppress(OSError, ValueError, IndexError):
            status = await asyncio.to_thread(many_headers, server.port, headers, cookies)
            tally.status("many headers", status)
            tally.event(f"many-headers-{status}")
        await asyncio.sleep(0.05)


async def replay_storm(urls: list[str], tally: Tally, seconds: float = 3) -> None:
    """A socket per URL (one address, users of their own) replaying from the big room's
    first message for `seconds`; what they got per second lands in the tally."""
    received = 0

    async def replay(url: str) -> None:
        nonlocal received
        with contextlib.suppress(OSError, ConnectionClosed, InvalidStatus):
            async with connect(url, max_size=None, max_queue=None) as ws:
                async for _ in ws:
                    received += 1

    tasks = [asyncio.create_task(replay(url)) for url in urls]
    await asyncio.sleep(seconds)
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    tally.replayed.append(received / seconds)


class GoodClient:
    """Sends a message a second and times the echo of each; remembers what it hears.

    It reconnects with `?after=` like a real frontend, so a close never costs it a
    message; what it never hears at all counts as lost."""

    def __init__(self, server_ws: str, room: str, user: str) -> None:
        self.url = f"{server_ws}/ws/{room}/{user}"
        self.room = room
        self.sent: dict[str, float] = {}
        self.round_trips: list[float] = []
        self.heard: set[str] = set()
        self.last_id = ""
        self.reconnects = 0

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            url = self.url + (f"?after={self.last_id}" if self.last_id else "")
            with contextlib.suppress(OSError, ConnectionClosed, InvalidStatus):
                async with connect(url, max_size=None) as ws:
                    sender = asyncio.create_task(self._send(ws, stop))
                    try:
                        await self._receive(ws)
                    finally:
                        sender.cancel()
            if stop.is_set():
                return
            self.reconnects += 1
            await asyncio.sleep(0.5)

    async def _receive(self, ws: ClientConnection) -> None:
        async for raw in ws:
            frame = json.loads(raw)
            if frame.get("type") != "message":
                continue
            message_id = frame["id"]
            self.last_id = message_id
            started = self.sent.get(message_id)
            if started is not None and message_id not in self.heard:
                self.round_trips.append(time.perf_counter() - started)
            self.heard.add(message_id)

    async def _send(self, ws: ClientConnection, stop: asyncio.Event) -> None:
        await asyncio.sleep(random.random())
        while not stop.is_set():
            message_id = str(uuid.uuid4())
            self.sent[message_id] = time.perf_counter()
            await ws.send(json.dumps({"type": "message", "id": message_id, "content": "hi"}))
            await asyncio.sleep(1)
        await asyncio.sleep(3)  # the last echoes
        await ws.close()


def rest_probes(rooms: list[str]) -> list[tuple[str, str, dict[str, Any]]]:
    room = rooms[0]
    nested = b"[" * 100_000 + b"]" * 100_000
    return [
        ("GET", "/users", {"params": {"limit": "100000"}}),
        ("GET", "/users", {}),
        ("GET", "/rooms", {}),
        ("GET", "/users/" + "x" * 65, {}),
        ("GET", "/rooms/" + "x" * 65, {}),
        ("GET", "/rooms/x%00", {}),
        ("GET", "/users/%ED%A0%80", {}),
        ("GET", f"/rooms/{room}/messages", {"params": {"since": "0001-01-01T00:00:00+01:00"}}),
        ("GET", f"/rooms/{room}/messages", {"params": {"since": "9999-12-31T23:59:59-01:00"}}),
        ("GET", f"/rooms/{room}/messages", {"params": {"after": "", "since": ""}}),
        ("POST", "/users", {"body": nested}),
        ("POST", "/users", {"body": {"username": "nul\u0000name"}}),
        ("POST", "/rooms", {"body": {"name": "\ud800"}}),
        ("POST", f"/rooms/{room}/messages", {"body": {"user_id": "seed-1", "content": "\u0000"}}),
        ("GET", "/%0Aforged log line", {}),
    ]


async def hostile_rest(http: httpx.AsyncClient, rooms: list[str], tally: Tally) -> None:
    """One round of every REST abuse."""
    for method, path, extra in rest_probes(rooms):
        body = extra.pop("body", None)
        if body is not None:
            if not isinstance(body, bytes):  # JSON as a hostile client may write it
                body = json.dumps(body).encode()
            extra = {**extra, "content": body, "headers": {"content-type": "application/json"}}
        try:
            response = await http.request(method, path, **extra)
        except httpx.HTTPError:
            tally.event("rest-failed")
            continue
        tally.status(f"{method} {path[:40]}", response.status_code)


async def hostile_socket(server: RunningServer, rooms: list[str], tally: Tally) -> None:
    """One round of every socket abuse."""
    room = random.choice(rooms)
    with contextlib.suppress(OSError, ConnectionClosed, InvalidStatus, TimeoutError):
        async with connect(f"{server.ws_url}/ws/{room}/seed-0", max_size=None) as ws:
            for content in POISON_CONTENT:
                await ws.send(json.dumps({"type": "message", "content": content}))
            await ws.send("[" * 10_000 + "]" * 10_000)
            await ws.send(b"\x00\xff binary")
            await ws.send('{"type": "message", "content": "dup", "content": ""}')
            for _ in range(2000):  # a JSON flood, until the budget closes it
                await ws.send('{"type": "message", "content": "flood"}')
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(3):
                    async for _ in ws:
                        pass
        tally.event("socket-rounds")
    for path in (
        "/ws/x%00/seed-0",
        "/ws/" + "r" * 65 + "/seed-0",
        f"/ws/{room}/%ED%A0%80",
        f"/ws/{room}/seed-0?since=0001-01-01T00:00:00%2B01:00",
    ):
        try:
            async with asyncio.timeout(5), connect(f"{server.ws_url}{path}") as ws:
                with contextlib.suppress(ConnectionClosed):
                    await ws.recv()
        except InvalidStatus as error:
            tally.status(f"handshake {path[:30]}", error.response.status_code)
        except (OSError, ConnectionClosed, TimeoutError):
            pass
    await asyncio.to_thread(ping_flood, server.port, room, tally)


async def socket_churn(server: RunningServer, rooms: list[str], tally: Tally) -> None:
    """Open and close sockets in a good room as fast as possible for 3 s, ten at a time:
    first as one user, then as many (seeded) users."""
    room = random.choice(rooms)
    for users in (["seed-2"], [f"seed-{n}" for n in range(100, 200)]):
        deadline = time.monotonic() + 1.5

        async def loop(index: int, users: list[str] = users, deadline: float = deadline) -> None:
            while time.monotonic() < deadline:
                user = users[index % len(users)]
                index += 10
                url = f"{server.ws_url}/ws/{room}/{user}"
                try:
                    async with asyncio.timeout(5), connect(url, local_addr=HOSTILE_ADDRESS) as ws:
                        await ws.send('{"type": "ping"}')
                        await ws.recv()
                        tally.event("churn-opened")
                except ConnectionClosed as closed:
                    code = closed.rcvd.code if closed.rcvd else "none"
                    tally.event(f"churn-closed-{code}")
                except InvalidStatus as error:
                    tally.status("churn handshake", error.response.status_code)
                except (OSError, TimeoutError):
                    tally.event("churn-failed")

        await asyncio.gather(*(loop(i) for i in range(10)))


async def typing_flood(server: RunningServer, rooms: list[str], tally: Tally) -> None:
    """20 sockets of one user in a good room, each typing 9 times a second for 3 s."""
    url = f"{server.ws_url}/ws/{random.choice(rooms)}/seed-3"
    async with contextlib.AsyncExitStack() as stack:
        sockets = []
        for _ in range(20):
            with contextlib.suppress(OSError, ConnectionClosed, InvalidStatus, TimeoutError):
                sockets.append(
                    await stack.enter_async_context(connect(url, local_addr=HOSTILE_ADDRESS))
                )
        deadline = time.monotonic() + 3
        with contextlib.suppress(ConnectionClosed):
            while sockets and time.monotonic() < deadline:
                await asyncio.gather(*(ws.send('{"type": "typing"}') for ws in sockets))
                tally.counts["typing-sent"] = tally.counts.get("typing-sent", 0) + len(sockets)
                await asyncio.sleep(1 / 9)


async def odd_subprotocols(server: RunningServer, rooms: list[str], tally: Tally) -> None:
    """Handshakes whose Sec-WebSocket-Protocol is odd; none may be a 5xx or a 1011."""
    url = f"{server.ws_url}/ws/{random.choice(rooms)}/seed-4"
    for offered in (
        ["quartchat", "token."],
        ["token.x"],
        ["quartchat", "token.a", "token.b"],
        [f"p{n}" for n in range(300)],
        ["quartchat", "token." + "t" * 4000],
    ):
        try:
            async with (
                asyncio.timeout(5),
                connect(
                    url,
                    subprotocols=offered,
                    local_addr=HOSTILE_ADDRESS,  # type: ignore[arg-type]
                ) as ws,
            ):
                await ws.send('{"type": "ping"}')
                await ws.recv()
                tally.event("subprotocol-opened")
        except ConnectionClosed as closed:
            code = closed.rcvd.code if closed.rcvd else "none"
            tally.event(f"subprotocol-closed-{code}")
            if code == 1011:
                tally.server_errors.append(f"subprotocols {offered[:2]} -> 1011")
        except InvalidStatus as error:
            tally.status("subprotocol handshake", error.response.status_code)
        except Exception as error:  # websockets refuses an answer it did not offer
            tally.event(f"subprotocol-{type(error).__name__}")


async def redis_hang(redis: RedisServer | None, tally: Tally) -> None:
    """Pause the server's Redis for 3 s: it neither refuses nor answers."""
    if redis is None or redis.process is None:
        return
    os.kill(redis.process.pid, signal.SIGSTOP)
    try:
        await asyncio.sleep(3)
    finally:
        os.kill(redis.process.pid, signal.SIGCONT)
    tally.event("redis-hangs")


def ping_flood(port: int, room: str, tally: Tally) -> None:
    """Protocol PING frames as fast as the socket takes them, for up to 3 s."""
    try:
        raw = RawWebSocket(port, f"/ws/{room}/seed-1")
    except (OSError, AssertionError):
        tally.event("ping-flood-refused")
        return
    deadline = time.monotonic() + 3
    raw.sock.settimeout(0.5)
    try:
        while time.monotonic() < deadline:
            try:
                raw.sock.sendall(PING_FRAME * 100)
            except TimeoutError:
                continue  # the server stopped reading: pushed back, not closed
        tally.event("ping-flood-not-closed")
    except OSError:
        tally.event("ping-flood-closed")
    finally:
        raw.close()


async def measure(
    server: RunningServer, args: argparse.Namespace, redis: RedisServer | None = None
) -> int:
    async with httpx.AsyncClient(base_url=server.http_url, timeout=30) as http:
        rooms = [
            (await http.post("/rooms", json={"name": f"Room {index}"})).json()["id"]
            for index in range(5)
        ]
        users = [
            (await http.post("/users", json={"username": f"Good {index}"})).json()["id"]
            for index in range(args.good)
        ]
        good = [GoodClient(server.ws_url, rooms[i % 5], user) for i, user in enumerate(users)]
        stop = asyncio.Event()
        tally = Tally()
        peak_rss = 0.0

        async def hostile() -> None:
            while not stop.is_set():
                await hostile_rest(http, rooms, tally)
                await hostile_socket(server, rooms, tally)
                await socket_churn(server, rooms, tally)
                await typing_flood(server, rooms, tally)
                await odd_subprotocols(server, rooms, tally)
                await redis_hang(redis, tally)
                await hostile_reads(server, http, tally)

        async def watch() -> None:
            nonlocal peak_rss
            started = time.monotonic()
            while not stop.is_set():
                peak_rss = max(peak_rss, rss_mib(server.process.pid))
                trips = [t for client in good for t in client.round_trips]
                print(
                    f"\r{time.monotonic() - started:6.0f} s  round trips {len(trips):7d}  "
                    f"p99 {percentile(trips, 0.99) * 1000:7.1f} ms  RSS {peak_rss:6.1f} MiB  "
                    f"5xx {len(tally.server_errors)}",
                    end="",
                    flush=True,
                )
                await asyncio.sleep(2)

        clients = [asyncio.create_task(client.run(stop)) for client in good]
        background = [asyncio.create_task(hostile()), asyncio.create_task(watch())]
        await asyncio.sleep(args.minutes * 60)
        stop.set()
        await asyncio.gather(*clients, return_exceptions=True)
        for task in background:
            task.cancel()
        print()
        return await report(http, rooms, good, tally, peak_rss, args)


async def stored_ids(http: httpx.AsyncClient, room: str) -> set[str]:
    ids: set[str] = set()
    after = ""
    while True:
        # Without since/after a page is the room's newest messages; the first page of a
        # walk from the start is "since the epoch".
        start = {"after": after} if after else {"since": "1970-01-01T00:00:00Z"}
        params = {"limit": "500", **start}
        page = (await http.get(f"/rooms/{room}/messages", params=params)).json()
        ids.update(message["id"] for message in page)
        if len(page) < 500:
            return ids
        after = page[-1]["id"]


async def report(
    http: httpx.AsyncClient,
    rooms: list[str],
    good: list[GoodClient],
    tally: Tally,
    peak_rss: float,
    args: argparse.Namespace,
) -> int:
    sent_by_room: dict[str, set[str]] = {room: set() for room in rooms}
    for client in good:
        sent_by_room[client.room].update(client.sent)
    stored = {room: await stored_ids(http, room) for room in rooms}
    not_stored = sum(len(sent - stored[room]) for room, sent in sent_by_room.items())
    not_heard = sum(len(sent_by_room[client.room] - client.heard) for client in good)
    trips = [t for client in good for t in client.round_trips]
    p50 = statistics.median(trips) * 1000 if trips else float("nan")
    p99 = percentile(trips, 0.99) * 1000
    rows = [
        ("minutes", f"{args.minutes:g}"),
        ("good clients / users seeded", f"{args.good} / {args.users}"),
        ("good messages sent", str(sum(len(sent) for sent in sent_by_room.values()))),
        ("good messages not stored", str(not_stored)),
        ("good deliveries missed", str(not_heard)),
        ("good reconnects", str(sum(client.reconnects for client in good))),
        ("good round trip p50 / p99", f"{p50:.1f} / {p99:.1f} ms"),
        ("hostile outcomes", ", ".join(f"{k} {v}" for k, v in sorted(tally.counts.items()))),
        ("hostile 5xx", str(len(tally.server_errors))),
        (
            "replay storms (20 sockets, one address)",
            ", ".join(f"{rate:.0f}" for rate in tally.replayed) + " messages/s",
        ),
        ("server peak RSS", f"{peak_rss:.1f} MiB"),
    ]
    print("| figure | value |\n|---|---|")
    for name, value in rows:
        print(f"| {name} | {value} |")
    for line in sorted(set(tally.server_errors)):
        print("5xx:", line)
    healthy = not_stored == 0 and not_heard == 0 and not tally.server_errors and p99 < 100
    return 0 if healthy else 1


async def run(args: argparse.Namespace) -> int:
    with tempfile.TemporaryDirectory() as workdir:
        env = {
            # The good clients are set up from one address, as is the hostile client;
            # the per-socket limits are the defaults people get.
            "CREATIONS_PER_MINUTE": "6000000",
            "CREATIONS_BURST": "100000",
            "RATE_LIMIT_PER_SECOND": "10",
            "RATE_LIMIT_BURST": "20",
        }
        database_url = ""
        redis = RedisServer(Path(workdir)) if args.redis else None
        if redis is not None:
            env["REDIS_URL"] = redis.url
        if args.postgres:
            database_url = await create_postgres_database()
            env["DATABASE_URL"] = database_url
        server = start_server(Path(workdir), env=env)
        try:
            if args.postgres:
                await seed_postgres_users(database_url, args.users)
                await seed_postgres_room(database_url, args.big_room)
            else:
                seed_sqlite_users(Path(workdir) / "chat.sqlite3", args.users)
                seed_sqlite_room(Path(workdir) / "chat.sqlite3", args.big_room)
            return await measure(server, args, redis)
        finally:
            server.stop()
            if redis is not None:
                redis.stop()
            if database_url:
                await drop_postgres_database(database_url)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--minutes", type=float, default=10)
    parser.add_argument("--good", type=int, default=50)
    parser.add_argument("--users", type=int, default=100_000)
    parser.add_argument("--big-room", type=int, default=200_000, help="messages in it")
    parser.add_argument("--postgres", action="store_true")
    parser.add_argument("--redis", action="store_true", help="a private Redis, paused each round")
    raise SystemExit(asyncio.run(run(parser.parse_args())))


if __name__ == "__main__":
    main()
