"""The relay delivers each room in seq order without gaps, filling from the database."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from quartchat.broker.memory import MemoryBroker
from quartchat.rooms.hub import Hub, Subscriber
from quartchat.rooms.relay import Relay
from quartchat.storage import db
from quartchat.storage.models import Room, User
from quartchat.storage.store import Draft, MessageStore
from quartchat.wire.payloads import ChatMessage, message_frame


@pytest.fixture(name="database")
async def _database(tmp_path: Path) -> AsyncIterator[None]:
    await db.connect(f"sqlite://{tmp_path / 'relay.sqlite3'}")
    await Room.create(id="r", name="R")
    await User.create(id="u", username="U")
    yield
    await db.disconnect()


async def store_elsewhere(count: int) -> list[ChatMessage]:
    """Commit messages in room `r` as another instance would: this relay is not told."""
    writer = MessageStore(lambda message: None)
    messages = []
    for i in range(count):
        draft = Draft(id=uuid.uuid4(), room_id="r", user_id="u", username="U", content=f"m{i}")
        messages.append((await writer.submit(draft)).message)
    return messages


class CountingStore(MessageStore):
    """The real store, counting how often the newest seq of a room is read."""

    def __init__(self) -> None:
        super().__init__(lambda message: None)
        self.reads = 0

    async def last_seq(self, room_id: str) -> int:
        self.reads += 1
        return await super().last_seq(room_id)


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


async def wait_for_queued(subscriber: Subscriber, count: int) -> None:
    for _ in range(500):
        if subscriber.queue.qsize() >= count:
            return
        await asyncio.sleep(0.01)


@pytest.mark.usefixtures("database")
async def test_gap_is_filled_from_the_database_in_order() -> None:
    hub = Hub()
    relay = Relay(hub, MemoryBroker(), MessageStore(lambda message: None), "me")
    subscriber = await listening(hub)
    await store_elsewhere(1)
    await relay.track("r")
    stored = await store_elsewhere(4)
    relay._offer("r", 4, message_frame(stored[2]))  # 2 and 3 went missing on the way
    relay._offer("r", 5, message_frame(stored[3]))
    await wait_for_queued(subscriber, 4)
    assert seqs(subscriber) == [2, 3, 4, 5]
    relay._offer("r", 3, message_frame(stored[1]))  # a late duplicate is dropped
    assert seqs(subscriber) == []


@pytest.mark.usefixtures("database")
async def test_resync_delivers_a_lost_last_message() -> None:
    hub = Hub()
    relay = Relay(hub, MemoryBroker(), MessageStore(lambda message: None), "me")
    subscriber = await listening(hub)
    await store_elsewhere(3)
    await relay.track("r")
    await store_elsewhere(2)
    await relay._resync()
    await wait_for_queued(subscriber, 2)
    assert seqs(subscriber) == [4, 5]


@pytest.mark.usefixtures("database")
async def test_untracked_rooms_are_ignored() -> None:
    hub = Hub()
    relay = Relay(hub, MemoryBroker(), MessageStore(lambda message: None), "me")
    subscriber = await listening(hub)
    stored = await store_elsewhere(1)
    relay._offer("r", 1, message_frame(stored[0]))
    assert seqs(subscriber) == []


@pytest.mark.usefixtures("database")
async def test_first_joins_read_the_newest_seq_once() -> None:
    store = CountingStore()
    relay = Relay(Hub(), MemoryBroker(), store, "me")
    await store_elsewhere(2)
    await asyncio.gather(*(relay.track("r") for _ in range(50)))
    assert relay.tracking("r")
    assert store.reads == 1
    await relay.track("r")  # a later join of a tracked room reads nothing
    assert store.reads == 1


@pytest.mark.usefixtures("database")
async def test_a_join_that_goes_away_does_not_cancel_the_others_read() -> None:
    store = CountingStore()
    relay = Relay(Hub(), MemoryBroker(), store, "me")
    leaving = asyncio.create_task(relay.track("r"))
    staying = asyncio.create_task(relay.track("r"))
    await asyncio.sleep(0)
    leaving.cancel()
    await staying
    assert leaving.cancelled()
    assert relay.tracking("r")
    assert store.reads == 1


@pytest.mark.usefixtures("database")
async def test_last_leave_forgets_the_room_and_the_next_first_join_reads_again() -> None:
    hub = Hub()
    store = CountingStore()
    relay = Relay(hub, MemoryBroker(), store, "me")
    subscriber = await listening(hub)
    await relay.track("r")
    relay.untrack("r")
    assert not relay.tracking("r")
    stored = await store_elsewhere(3)  # sent while nobody here was in the room
    await relay.track("r")
    assert store.reads == 2
    relay._offer("r", 3, message_frame(stored[2]))  # history, not delivered again
    assert seqs(subscriber) == []
    [next_one] = await store_elsewhere(1)
    relay._offer("r", 4, message_frame(next_one))
    assert seqs(subscriber) == [4]
