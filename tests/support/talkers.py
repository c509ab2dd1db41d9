"""Sockets that talk while a test breaks something, and what every test of that kind
checks afterwards (tests/test_partitions.py, tests/broker/test_redis_cluster.py)."""

from __future__ import annotations

import asyncio
import json
import math
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
from websockets.asyncio.client import ClientConnection
from websockets.exceptions import ConnectionClosed

SEND_INTERVAL = 0.1  # per socket: a person typing fast


@dataclass
class Talker:
    """One socket sending as a person typing fast: what it sent, what it was told. Like
    quartchat.js, it sends a message refused as UNAVAILABLE again, with the same id, a
    second later."""

    user_id: str
    ws: ClientConnection
    server: object = None  # where it is connected, for tests that tell instances apart
    sent: list[str] = field(default_factory=list)
    frames: list[dict[str, Any]] = field(default_factory=list)
    closed: int | None = None
    contents: dict[str, str] = field(default_factory=dict)
    sent_at: dict[str, float] = field(default_factory=dict)  # first send
    answered_at: dict[str, float] = field(default_factory=dict)  # first echo or error
    resend_at: dict[str, float] = field(default_factory=dict)

    @property
    def acknowledged(self) -> set[str]:
        """Ids of its own messages it saw stored (the echo is the acknowledgement)."""
        mine = set(self.sent)
        return {f["id"] for f in self.frames if f["type"] == "message" and f["id"] in mine}

    @property
    def seqs(self) -> list[int]:
        return [f["seq"] for f in self.frames if f["type"] == "message"]

    def errors(self) -> list[str]:
        return [f["code"] for f in self.frames if f["type"] == "error"]

    def longest_wait(self, since: float, until: float) -> float:
        """The longest a message first sent in [since, until] waited for its answer."""
        return max(
            self.answered_at.get(message_id, math.inf) - at
            for message_id, at in self.sent_at.items()
            if since <= at <= until
        )

    async def read(self) -> None:
        try:
            async for raw in self.ws:
                frame = json.loads(raw)
                self.frames.append(frame)
                message_id = frame.get("id")
                if message_id in self.contents:
                    self.answered_at.setdefault(message_id, time.monotonic())
                    if frame["type"] == "error" and frame["code"] == "UNAVAILABLE":
                        self.resend_at[message_id] = time.monotonic() + 1.0
        except ConnectionClosed:
            pass
        self.closed = self.ws.close_code

    async def send(self, stop: asyncio.Event) -> None:
        """New messages until `stop`; resends until the socket closes."""
        n = 0
        try:
            while self.closed is None:
                now = time.monotonic()
                for message_id in [m for m, at in self.resend_at.items() if at <= now]:
                    del self.resend_at[message_id]
                    await self._send(message_id)
                if not stop.is_set():
                    message_id = str(uuid.uuid4())
                    self.contents[message_id] = f"{self.user_id} {n}"
                    self.sent.append(message_id)
                    self.sent_at[message_id] = time.monotonic()
                    await self._send(message_id)
                    n += 1
                await asyncio.sleep(SEND_INTERVAL)
        except ConnectionClosed:
            return

    async def _send(self, message_id: str) -> None:
        await self.ws.send(json.dumps({"content": self.contents[message_id], "id": message_id}))


async def until(condition: Callable[[], Awaitable[bool]], timeout: float, what: str) -> float:
    started = time.monotonic()
    while not await condition():
        assert time.monotonic() - started < timeout, f"{what}: not within {timeout} s"
        await asyncio.sleep(0.2)
    return time.monotonic() - started


async def all_stored(http: httpx.AsyncClient, room_id: str) -> list[dict[str, Any]]:
    """Every stored message of the room, oldest first, a page of 500 at a time."""
    url = f"/rooms/{room_id}/messages"
    page = (await http.get(url, params={"since": "1970-01-01T00:00:00Z", "limit": 500})).json()
    stored: list[dict[str, Any]] = []
    while page:
        stored += page
        page = (await http.get(url, params={"after": page[-1]["id"], "limit": 500})).json()
    return stored
