"""The relay delivers each room in seq order without gaps, filling from the database."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from quartchat import db
from quartchat.broker.memory import MemoryBroker
from quartchat.hub import Hub, Subscriber
from quartchat.models import Room, User
from quartchat.relay import Relay
from quartchat.store import Draft, MessageStore
from quartchat.wire import ChatMessage, message_frame


@pytest.fixture(name="stored")
async def _stored(tmp_path: Path) -> AsyncIterator[list[ChatMessage]]:
    """Five messages already committed in room `r`, as another instance would have."""
    await db.connect(f"sqlite://{tmp_path / 'relay.sqlite3'}")
    await Room.create(id="r", name="R")
    await User.create(id="u", username="U")
    writer = MessageStore(lambda message: None)
    messages = []
    for i in range(5):
        draft = Draft(id=uuid.uuid4(), room_id="r", user_id="u", username="U", content=f"m{i}")
        messages.append((await writer.submit(draft)).message)
    yield messages
    await db.disconnect()


async def listening(hub: Hub) -> Subscriber:
    owner = asyncio.create_task(asyncio.sleep(3600))
    subscriber = Subscriber("r", "listener", "Listener", 100, owner)
    hub.join(subscriber)
    return subscriber


def seqs(subscriber: Subscriber) -> list[int]:
    out = []
    while not subscriber.queue.empty():
        out.append(json.loads(subscriber.queue.get_nowait().text)["seq"])
    return out


async def test_gap_is_filled_from_the_database_in_order(stored: list[ChatMessage]) -> None:
    hub = Hub()
    relay = Relay(hub, MemoryBroker(), MessageStore(lambda message: None), "me")
    subscriber = await listening(hub)
    relay.track("r", last_seq=1)
    relay._offer("r", 4, message_frame(stored[3]))  # 2 and 3 went missing on the way
    relay._offer("r", 5, message_frame(stored[4]))
    for _ in range(100):
        if subscriber.queue.qsize() == 4:
            break
        await asyncio.sleep(0.01)
    assert seqs(subscriber) == [2, 3, 4, 5]
    relay._offer("r", 3, message_frame(stored[2]))  # a late duplicate is dropped
    assert seqs(subscriber) == []


async def test_resync_delivers_a_lost_last_message(stored: list[ChatMessage]) -> None:
    hub = Hub()
    relay = Relay(hub, MemoryBroker(), MessageStore(lambda message: None), "me")
    subscriber = await listening(hub)
    relay.track("r", last_seq=3)
    await relay._resync()
    for _ in range(100):
        if subscriber.queue.qsize() == 2:
            break
        await asyncio.sleep(0.01)
    assert seqs(subscriber) == [4, 5]


async def test_untracked_rooms_are_ignored(stored: list[ChatMessage]) -> None:
    hub = Hub()
    relay = Relay(hub, MemoryBroker(), MessageStore(lambda message: None), "me")
    subscriber = await listening(hub)
    relay._offer("r", 1, message_frame(stored[0]))
    assert seqs(subscriber) == []
