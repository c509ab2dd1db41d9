"""A redeploy's reconnects, with quartchat.js's policy replayed by the load generator.

    .venv/bin/python bench/redeploy.py [--sockets 500] [--jitter-ms 5000] [--json FILE]

Two instances share PostgreSQL and Redis (both on this machine). `--sockets` clients
connect to instance A; A gets SIGTERM and closes them with 1012; each client then
reconnects to instance B (what a load balancer does once A has left it) the way
quartchat.js does: after a random delay of up to `reconnectJitterMs`, then, for a
handshake that fails, 0.25-0.5 s doubling per try. Run once with the old policy (0 ms:
reconnect at once) and once with `--jitter-ms`; for each, the time from SIGTERM until
every client is back, the connect latency (try -> 101) p50/p99, and failed tries.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import random
import sys
import time
import uuid
from dataclasses import asdict, dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from websockets.asyncio.client import ClientConnection, connect  # noqa: E402
from websockets.exceptions import ConnectionClosed, InvalidHandshake  # noqa: E402

from bench.loadgen import Deployment, percentile  # noqa: E402
from bench.standalone import UNLIMITED, postgres_and_redis_answer  # noqa: E402
from tests.support import (  # noqa: E402
    REDIS_TEST_URL,
    RunningServer,
    create_postgres_database,
    drop_postgres_database,
    start_server,
)

# quartchat.js's backoff after a failed handshake: 500 ms * 2^(try-1), times 0.5-1.
BACKOFF_BASE_S = 0.5
BACKOFF_CAP_S = 30.0
USERS = 50  # sockets share users; the per-user socket cap is raised below


@dataclass
class Outcome:
    policy: str
    jitter_ms: int
    sockets: int
    all_back_s: float | None
    connect_p50_s: float | None
    connect_p99_s: float | None
    failed_tries: int
    not_back: int


def socket_url(deployment: Deployment, room: str, user: str) -> str:
    return f"{deployment.ws_base}/ws/{room}/{user}"


async def open_socket(url: str) -> ClientConnection:
    return await connect(url, compression=None, max_size=None, open_timeout=30)


async def client(
    first: ClientConnection,
    url_b: str,
    jitter_s: float,
    terminated: asyncio.Event,
    times: dict[str, list[float]],
    failures: list[int],
) -> ClientConnection | None:
    """Waits for instance A's close, then reconnects to B with quartchat.js's policy."""
    # Read what A sends (presence), as a browser does, until A closes the socket.
    with contextlib.suppress(ConnectionClosed):
        async for _ in first:
            pass
    if first.close_code != 1012:
        return None
    await terminated.wait()
    await asyncio.sleep(random.random() * jitter_s)
    for attempt in range(10):
        started = time.monotonic()
        try:
            socket = await open_socket(url_b)
        except (OSError, InvalidHandshake, TimeoutError, ConnectionClosed):
            failures[0] += 1
            delay = min(BACKOFF_CAP_S, BACKOFF_BASE_S * 2**attempt) * (0.5 + random.random() / 2)
            await asyncio.sleep(delay)
            continue
        times["connect"].append(time.monotonic() - started)
        times["back"].append(time.monotonic())
        return socket
    return None


async def one_redeploy(
    workdir: Path, env: dict[str, str], b: RunningServer, sockets: int, jitter_ms: int
) -> Outcome:
    (workdir / f"a-{jitter_ms}").mkdir(parents=True)
    a = start_server(workdir / f"a-{jitter_ms}", env=env)
    deployment_a, deployment_b = Deployment(a.http_url), Deployment(b.http_url)
    # Ten sockets a room: each join is a presence frame to the room's others.
    rooms, users = await deployment_a.rooms_and_users(max(1, sockets // 10), USERS)
    pairs = [(rooms[i % len(rooms)], users[i % USERS]) for i in range(sockets)]
    opened: list[ClientConnection] = []
    for start in range(0, sockets, 100):
        batch = pairs[start : start + 100]
        opened += await asyncio.gather(
            *(open_socket(socket_url(deployment_a, room, user)) for room, user in batch)
        )
    terminated = asyncio.Event()
    times: dict[str, list[float]] = {"connect": [], "back": []}
    failures = [0]
    clients = [
        asyncio.create_task(
            client(
                ws, socket_url(deployment_b, room, user), jitter_ms / 1000, terminated, times,
                failures,
            )
        )
        for ws, (room, user) in zip(opened, pairs, strict=True)
    ]  # fmt: skip
    signalled = time.monotonic()
    a.process.terminate()
    terminated.set()
    reconnected = await asyncio.gather(*clients)
    a.process.wait(30)
    back = [socket for socket in reconnected if socket is not None]
    outcome = Outcome(
        policy="at once" if jitter_ms == 0 else f"jitter {jitter_ms} ms",
        jitter_ms=jitter_ms,
        sockets=sockets,
        all_back_s=round(max(times["back"]) - signalled, 3) if times["back"] else None,
        connect_p50_s=percentile(times["connect"], 0.5),
        connect_p99_s=percentile(times["connect"], 0.99),
        failed_tries=failures[0],
        not_back=sockets - len(back),
    )
    await asyncio.gather(*(socket.close() for socket in back))
    await deployment_a.http.aclose()
    await deployment_b.http.aclose()
    return outcome


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sockets", type=int, default=500)
    parser.add_argument("--jitter-ms", type=int, default=5000)
    parser.add_argument("--json", type=Path)
    options = parser.parse_args()
    if not postgres_and_redis_answer():
        raise SystemExit("redeploy needs PostgreSQL and Redis on this machine")
    database = await create_postgres_database()
    env = {
        **UNLIMITED,
        "DATABASE_URL": database,
        "REDIS_URL": REDIS_TEST_URL,
        "REDIS_PREFIX": f"bench-{uuid.uuid4().hex[:8]}",
        "MAX_SOCKETS_PER_USER": str(options.sockets),
    }
    workdir = ROOT / "bench" / "results" / f"redeploy-{uuid.uuid4().hex[:8]}"
    (workdir / "b").mkdir(parents=True)
    b = start_server(workdir / "b", env=env)
    try:
        outcomes = [
            await one_redeploy(workdir, env, b, options.sockets, jitter)
            for jitter in (0, options.jitter_ms)
        ]
    finally:
        b.stop()
        await drop_postgres_database(database)
    print("| policy | back | all back after SIGTERM | connect p50 | connect p99 | failed tries |")
    print("|---|---|---|---|---|---|")
    for o in outcomes:
        print(
            f"| {o.policy} | {o.sockets - o.not_back}/{o.sockets} | {o.all_back_s} s "
            f"| {o.connect_p50_s} s | {o.connect_p99_s} s | {o.failed_tries} |"
        )
    if options.json:
        options.json.write_text(json.dumps([asdict(o) for o in outcomes], indent=2))


if __name__ == "__main__":
    asyncio.run(main())
