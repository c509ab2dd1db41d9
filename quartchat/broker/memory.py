"""The in-process backend: one instance is the whole chat, so nothing crosses."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Sequence

from quartchat.broker import Broker, Envelope, LocalMembers, Presence


class MemoryBroker(Broker):
    spans_instances = False

    def __init__(self) -> None:
        self._never = asyncio.Event()

    async def connect(self) -> None:
        return None

    async def disconnect(self) -> None:
        return None

    async def subscribe_room(self, room_id: str) -> None:
        return None  # nothing crosses: every room's traffic is already here

    def unsubscribe_room(self, room_id: str) -> None:
        return None

    async def publish(self, envelopes: Sequence[Envelope]) -> None:
        return None  # local sockets were served before publishing; there are no others

    async def next_published(self) -> Envelope:
        await self._never.wait()
        raise AssertionError("unreachable")

    @property
    def healthy(self) -> bool:
        return True


class LocalPresence(Presence):
    """The local hub is the whole truth: a first local socket is a first socket."""

    spans_instances = False

    def __init__(self, local: LocalMembers) -> None:
        self._local = local

    def joined(self, room_id: str, user_id: str, username: str) -> Awaitable[bool]:
        return _answered(True)

    def left(self, room_id: str, user_id: str) -> Awaitable[bool]:
        return _answered(True)

    async def members(self, room_id: str) -> list[tuple[str, str]]:
        return self._local.presence(room_id)

    async def refresh(self, local: dict[str, dict[str, str]]) -> dict[str, list[tuple[str, str]]]:
        return {}


def _answered(value: bool) -> asyncio.Future[bool]:
    answer: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
    answer.set_result(value)
    return answer
