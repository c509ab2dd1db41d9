"""One contract, every backend: envelopes cross instances, presence spans them.

The memory backend is one process's whole world: nothing crosses, and its presence is
what the local hub says. The Redis backend joins instances into one chat, on one server
or on a three-primary Redis Cluster started for the tests.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest

from quartchat.broker import RESYNC, Broker, Envelope, Presence, backends_for
from tests.support import REDIS_TEST_URL, unique_id
from tests.support.redis_cluster import LocalRedisCluster


class FakeHub:
    def __init__(self) -> None:
        self.members: dict[str, list[tuple[str, str]]] = {}

    def presence(self, room_id: str) -> list[tuple[str, str]]:
        return self.members.get(room_id, [])


class Listener:
    """What an instance's relay does: read the broker all along (subscriptions are
    confirmed by what it reads), keeping the room traffic."""

    def __init__(self, broker: Broker) -> None:
        self.heard: asyncio.Queue[Envelope] = asyncio.Queue()
        self._task = asyncio.create_task(self._listen(broker))

    async def _listen(self, broker: Broker) -> None:
        while True:
            envelope = await broker.next_published()
            if envelope.seq != RESYNC:
                self.heard.put_nowait(envelope)

    async def next(self, seconds: float) -> Envelope:
        async with asyncio.timeout(seconds):
            return await self.heard.get()

    async def stop(self) -> None:
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task


@dataclass
class Instance:
    broker: Broker
    presence: Presence
    hub: FakeHub
    listener: Listener


@dataclass
class Backend:
    spans_instances: bool
    one: Instance
    two: Instance


def _url(request: pytest.FixtureRequest, backend: str) -> str:
    if backend == "cluster":
        cluster: LocalRedisCluster = request.getfixturevalue("redis_cluster")
        return cluster.url
    return backend


@pytest.fixture(
    name="backend",
    params=["memory://", REDIS_TEST_URL, "cluster"],
    ids=["memory", "redis", "redis-cluster"],
)
async def _backend(request: pytest.FixtureRequest) -> AsyncIterator[Backend]:
    """Two instances' backends on one URL."""
    prefix = unique_id("contract")
    url = _url(request, request.param)
    instances = []
    for name in ("one", "two"):
        hub = FakeHub()
        broker, presence = backends_for(url, prefix, name, 2, hub)
        await broker.connect()
        listener = Listener(broker)
        await broker.subscribe_room("room")
        instances.append(Instance(broker, presence, hub, listener))
    yield Backend(instances[0].broker.spans_instances, *instances)
    for instance in instances:
        await instance.listener.stop()
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
                await instance.listener.next(0.2)
            continue
        assert await instance.listener.next(5) == envelope


async def test_envelopes_published_together_arrive_in_order(backend: Backend) -> None:
    envelopes = [Envelope("room", seq, f'{{"n":{seq}}}', "one") for seq in range(1, 6)]
    await backend.one.broker.publish(envelopes)
    received: list[Envelope] = []
    with contextlib.suppress(TimeoutError):
        while len(received) < len(envelopes):
            received.append(await backend.two.listener.next(5 if backend.spans_instances else 0.2))
    assert received == (envelopes if backend.spans_instances else [])


async def test_a_storm_of_joins_is_answered_for_everyone(backend: Backend) -> None:
    room = unique_id("room")
    users = [f"user-{index}" for index in range(300)]  # more than a pool of connections
    firsts = await asyncio.gather(*(backend.one.presence.joined(room, u, u) for u in users))
    assert all(firsts)
    members = sorted(await backend.two.presence.members(room))
    # The in-process presence of another instance is another world.
    assert members == (sorted((u, u) for u in users) if backend.spans_instances else [])
    # Readers at once: twice a pool of connections.
    answers = await asyncio.gather(*(backend.two.presence.members(room) for _ in range(64)))
    assert all(sorted(answer) == members for answer in answers)


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


async def test_an_instance_hears_only_the_rooms_it_subscribes_to(backend: Backend) -> None:
    one, two = backend.one.broker, backend.two.broker
    await one.subscribe_room("mine")
    await one.publish([Envelope("elsewhere", 1, "{}", "one"), Envelope("mine", 1, "{}", "one")])
    if not backend.spans_instances:
        with pytest.raises(TimeoutError):
            await backend.two.listener.next(0.2)
        return
    # `two` never subscribed to either room: the first thing it hears comes later.
    await two.subscribe_room("mine")
    await one.publish([Envelope("mine", 2, "{}", "one")])
    assert await backend.two.listener.next(5) == Envelope("mine", 2, "{}", "one")
    frames = two.frames_received
    two.unsubscribe_room("mine")
    await two.subscribe_room("later")  # ordered after the unsubscribe: both in effect
    await one.publish([Envelope("mine", 3, "{}", "one"), Envelope("later", 1, "{}", "one")])
    assert await backend.two.listener.next(5) == Envelope("later", 1, "{}", "one")
    assert two.frames_received == frames + 2  # its hello in "later", and the message
    # A leave and an immediate rejoin stay subscribed.
    two.unsubscribe_room("later")
    await two.subscribe_room("later")
    await one.publish([Envelope("later", 2, "{}", "one")])
    assert await backend.two.listener.next(5) == Envelope("later", 2, "{}", "one")
    # `one` hears its own rooms, its own envelopes included, and not "elsewhere".
    heard = [await backend.one.listener.next(5) for _ in range(2)]
    assert heard == [Envelope("mine", 1, "{}", "one"), Envelope("mine", 2, "{}", "one")]


@pytest.mark.service
@pytest.mark.parametrize("redis", [REDIS_TEST_URL, "cluster"], ids=["redis", "redis-cluster"])
async def test_an_instance_publishes_only_while_another_listens(
    request: pytest.FixtureRequest, redis: str
) -> None:
    memory, _ = backends_for("memory://", unique_id("alone"), "one", 2, FakeHub())
    assert not memory.others_listening("room")  # one process is the whole chat
    prefix = unique_id("alone")
    url = _url(request, redis)
    one, _ = backends_for(url, prefix, "one", 2, FakeHub())
    two, _ = backends_for(url, prefix, "two", 2, FakeHub())
    await one.connect()
    await two.connect()
    listeners = [Listener(one), Listener(two)]
    try:
        await one.subscribe_room("room")
        assert one.others_listening("room")  # until a publish says otherwise
        await one.publish([Envelope("room", 1, "{}", "one")])
        assert not one.others_listening("room")  # Redis counted one receiver: itself
        # Another instance in another room changes nothing for this one.
        await two.subscribe_room("other")
        await one.publish([Envelope("room", 2, "{}", "one")])
        assert not one.others_listening("room")
        # Its hello in the room, once `one` has read it, does.
        await two.subscribe_room("room")
        await asyncio.sleep(0.3)
        assert one.others_listening("room")
        await one.publish([Envelope("room", 3, "{}", "one")])
        assert one.others_listening("room")  # two receivers
        two.unsubscribe_room("room")
        await asyncio.sleep(0.3)  # the unsubscribe is sent in the background
        await one.publish([Envelope("room", 4, "{}", "one")])
        assert not one.others_listening("room")
        # A room it does not subscribe to: it would not hear a newcomer's hello there.
        await one.publish([Envelope("unheard", 1, "{}", "one")])
        assert one.others_listening("unheard")
        # An instance (re)connecting says hello on the control channel: every room's
        # traffic is published again until publishing tells who is alone.
        three, _ = backends_for(url, prefix, "three", 2, FakeHub())
        await three.connect()
        await asyncio.sleep(0.3)
        assert one.others_listening("room")
        await three.disconnect()
    finally:
        for listener in listeners:
            await listener.stop()
        await one.disconnect()
        await two.disconnect()
