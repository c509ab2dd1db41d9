"""One contract, every backend: envelopes cross instances, presence spans them.

The memory backend is one process's whole world: nothing crosses, and its presence is
what the local hub says. The Redis backend joins instances into one chat.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest

from quartchat.broker import RESYNC, Broker, Envelope, Presence, backends_for
from tests.support import REDIS_TEST_URL, unique_id


class FakeHub:
    def __init__(self) -> None:
        self.members: dict[str, list[tuple[str, str]]] = {}

    def presence(self, room_id: str) -> list[tuple[str, str]]:
        return self.members.get(room_id, [])


@dataclass
class Instance:
    broker: Broker
    presence: Presence
    hub: FakeHub


@dataclass
class Backend:
    spans_instances: bool
    one: Instance
    two: Instance


@pytest.fixture(name="backend", params=["memory://", REDIS_TEST_URL], ids=["memory", "redis"])
async def _backend(request: pytest.FixtureRequest) -> AsyncIterator[Backend]:
    """Two instances' backends on one URL."""
    prefix = unique_id("contract")
    instances = []
    for name in ("one", "two"):
        hub = FakeHub()
        broker, presence = backends_for(request.param, prefix, name, 2, hub)
        await broker.connect()
        instances.append(Instance(broker, presence, hub))
    yield Backend(instances[0].broker.spans_instances, *instances)
    for instance in instances:
        await instance.broker.disconnect()


def test_envelope_round_trip() -> None:
    envelope = Envelope(room_id="room-1", seq=7, text='{"a":"line\\nbreak"}\nraw', origin="x")
    assert Envelope.decode(envelope.encode()) == envelope


async def test_published_envelopes_reach_every_instance(backend: Backend) -> None:
    assert backend.one.broker.healthy and backend.two.broker.healthy
    envelope = Envelope("room", 3, '{"type":"message"}', "one")
    await backend.one.broker.publish([envelope])
    for instance in (backend.one, backend.two):
        if not backend.spans_instances:
            with pytest.raises(TimeoutError):
                async with asyncio.timeout(0.2):
                    await instance.broker.next_published()
            continue
        async with asyncio.timeout(5):
            received = await instance.broker.next_published()
            while received.seq == RESYNC:
                received = await instance.broker.next_published()
        assert received == envelope


async def test_envelopes_published_together_arrive_in_order(backend: Backend) -> None:
    envelopes = [Envelope("room", seq, f'{{"n":{seq}}}', "one") for seq in range(1, 6)]
    await backend.one.broker.publish(envelopes)
    received: list[Envelope] = []
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(5 if backend.spans_instances else 0.2):
            while len(received) < len(envelopes):
                envelope = await backend.two.broker.next_published()
                if envelope.seq != RESYNC:
                    received.append(envelope)
    assert received == (envelopes if backend.spans_instances else [])


async def test_a_storm_of_joins_is_answered_for_everyone(backend: Backend) -> None:
    room = unique_id("room")
    users = [f"user-{index}" for index in range(300)]  # more than a pool of connections
    firsts = await asyncio.gather(*(backend.one.presence.joined(room, u, u) for u in users))
    assert all(firsts)
    members = sorted(await backend.two.presence.members(room))
    # The in-process presence of another instance is another world.
    assert members == (sorted((u, u) for u in users) if backend.spans_instances else [])


async def test_presence_first_and_last(backend: Backend) -> None:
    room = unique_id("room")
    one, two = backend.one, backend.two
    assert await one.presence.joined(room, "ann", "Ann") is True
    one.hub.members[room] = [("ann", "Ann")]
    assert await one.presence.members(room) == [("ann", "Ann")]
    if backend.spans_instances:
        assert await two.presence.members(room) == [("ann", "Ann")]
        assert await two.presence.joined(room, "ann", "Ann") is False  # there via one
        assert await one.presence.left(room, "ann") is False  # still there via two
        assert await two.presence.left(room, "ann") is True
        assert await two.presence.members(room) == []
    else:
        assert await two.presence.members(room) == []  # another process, another world
        assert await one.presence.left(room, "ann") is True


async def test_reports_are_made_in_call_order_whenever_awaited(backend: Backend) -> None:
    room = unique_id("room")
    presence = backend.one.presence
    assert await presence.joined(room, "ann", "Ann") is True
    gone = presence.left(room, "ann")  # her last socket closes...
    back = presence.joined(room, "ann", "Ann")  # ...and she is back at once
    assert await back is True  # awaited first, yet reported second
    assert await gone is True
    backend.one.hub.members[room] = [("ann", "Ann")]
    assert await presence.members(room) == [("ann", "Ann")]


async def test_refresh_reports_users_whose_instance_stopped(backend: Backend) -> None:
    room = unique_id("room")
    await backend.one.presence.joined(room, "ann", "Ann")
    await backend.two.presence.joined(room, "bob", "Bob")
    if not backend.spans_instances:
        assert await backend.one.presence.refresh({room: {"ann": "Ann"}}) == {}
        return
    gone: dict[str, list[tuple[str, str]]] = {}
    async with asyncio.timeout(10):
        while not gone:  # `one` keeps renewing; `two` stopped, as if it crashed
            gone = await backend.one.presence.refresh({room: {"ann": "Ann"}})
            await asyncio.sleep(0.25)
    assert gone == {room: [("bob", "Bob")]}
    assert await backend.one.presence.members(room) == [("ann", "Ann")]


async def test_an_instance_publishes_only_while_another_listens() -> None:
    memory, _ = backends_for("memory://", unique_id("alone"), "one", 2, FakeHub())
    assert not memory.others_listening  # one process is the whole chat
    prefix = unique_id("alone")
    one, _ = backends_for(REDIS_TEST_URL, prefix, "one", 2, FakeHub())
    await one.connect()
    try:
        assert not one.others_listening  # the channel's only subscriber: publishing reaches nobody
        two, _ = backends_for(REDIS_TEST_URL, prefix, "two", 2, FakeHub())
        await two.connect()
        assert two.others_listening  # Redis counted `one` among the receivers of its hello
        with pytest.raises(TimeoutError):
            async with asyncio.timeout(0.5):
                await one.next_published()  # reads the hello, which is not room traffic
        assert one.others_listening
        await two.disconnect()
        await one.publish([Envelope("room", 1, "{}", "one")])
        assert not one.others_listening  # Redis counted one receiver: itself
    finally:
        await one.disconnect()
