"""The in-process hub: fan-out, presence bookkeeping, and closing slow subscribers."""

from __future__ import annotations

import asyncio
import json

from quartchat.rooms.hub import (
    BURST_EVENTS,
    BURST_HOLD_SECONDS,
    EVENT_HOLD_SECONDS,
    Departure,
    Hub,
    Subscriber,
)
from quartchat.wire.frames import CloseCode
from quartchat.wire.framing import Frame


async def idle_owner() -> asyncio.Task[None]:
    return asyncio.create_task(asyncio.sleep(3600))


async def subscriber(room: str, user: str, queue_size: int = 10) -> Subscriber:
    return Subscriber(room, user, user.title(), queue_size, await idle_owner())


def drain(sub: Subscriber) -> list[dict[str, object]]:
    """The frames queued for a socket, each batch checked to write exactly its events."""
    frames = []
    while not sub.queue.empty():
        queued = sub.queue.get_nowait()
        assert bytes(queued.wire) == b"".join(Frame(0, part.text).wire for part in queued.parts())
        for part in queued.parts():
            frames.append(json.loads(part.text))
    return frames


async def held_events_flushed() -> None:
    await asyncio.sleep(EVENT_HOLD_SECONDS * 2)


async def test_broadcast_reaches_the_room_only() -> None:
    hub = Hub()
    alice, bob, carol = (
        await subscriber("a", "alice"),
        await subscriber("a", "bob"),
        await subscriber("b", "carol"),
    )
    for sub in (alice, bob, carol):
        hub.join(sub)
    drain(alice), drain(bob), drain(carol)
    hub.broadcast("a", Frame(1, '{"type":"message"}'))
    assert drain(alice) == drain(bob) == [{"type": "message"}]
    assert drain(carol) == []
    hub.broadcast_event("a", Frame(0, '{"type":"typing"}'), exclude=alice)
    await held_events_flushed()
    assert drain(alice) == [] and len(drain(bob)) == 1


async def test_events_of_a_burst_reach_each_socket_as_one_batch() -> None:
    hub = Hub()
    watchers = [await subscriber("a", f"w{i}") for i in range(3)]
    for watcher in watchers:
        hub.join(watcher)
    for i in range(5):
        hub.broadcast_event("a", Frame(0, f'{{"type":"user_joined","n":{i}}}'))
    assert all(watcher.queue.empty() for watcher in watchers)  # held
    await held_events_flushed()
    for watcher in watchers:
        assert watcher.queue.qsize() == 1
        batch = watcher.queue.get_nowait()
        assert [json.loads(part.text)["n"] for part in batch.parts()] == [0, 1, 2, 3, 4]
        assert batch.wire == b"".join(Frame(0, part.text).wire for part in batch.parts())


async def test_while_bursts_go_on_a_room_holds_its_events_longer() -> None:
    hub = Hub()
    watcher = await subscriber("a", "watcher")
    hub.join(watcher)
    for i in range(BURST_EVENTS):
        hub.broadcast_event("a", Frame(0, f'{{"type":"user_joined","n":{i}}}'))
    await held_events_flushed()
    assert len(drain(watcher)) == BURST_EVENTS

    hub.broadcast_event("a", Frame(0, '{"type":"user_joined","n":"after the burst"}'))
    await held_events_flushed()
    assert drain(watcher) == []  # held longer: more of the burst may follow
    await asyncio.sleep(BURST_HOLD_SECONDS)
    assert [frame["n"] for frame in drain(watcher)] == ["after the burst"]

    hub.broadcast_event("a", Frame(0, '{"type":"typing"}'))  # the burst is over
    await held_events_flushed()
    assert [frame["type"] for frame in drain(watcher)] == ["typing"]


async def test_a_message_goes_out_after_the_events_held_before_it() -> None:
    hub = Hub()
    bob = await subscriber("a", "bob")
    hub.join(bob)
    hub.broadcast_event("a", Frame(0, '{"type":"typing"}'))
    hub.broadcast("a", Frame(1, '{"type":"message"}'))
    assert [frame["type"] for frame in drain(bob)] == ["typing", "message"]
    await held_events_flushed()
    assert drain(bob) == []  # flushed once, not twice


async def test_a_socket_joining_while_events_are_held_sees_only_later_ones() -> None:
    hub = Hub()
    early, late = await subscriber("a", "early"), await subscriber("a", "late")
    hub.join(early)
    hub.broadcast_event("a", Frame(0, '{"type":"user_joined","user_id":"someone"}'))
    hub.join(late)
    hub.broadcast_event("a", Frame(0, '{"type":"user_joined","user_id":"late"}'), exclude=late)
    hub.broadcast_event("a", Frame(0, '{"type":"typing","user_id":"early"}'), exclude=early)
    await held_events_flushed()
    assert [frame["user_id"] for frame in drain(early)] == ["someone", "late"]
    assert [frame["user_id"] for frame in drain(late)] == ["early"]


def presence_event(kind: str, user: str) -> Frame:
    return Frame(0, f'{{"type":"{kind}","user_id":"{user}"}}')


async def test_a_join_and_leave_held_together_cancel_out() -> None:
    hub = Hub()
    watcher, late = await subscriber("a", "watcher"), await subscriber("a", "late")
    hub.join(watcher)
    churner = await subscriber("a", "churner")
    for _ in range(3):  # a client opening and closing sockets in a loop
        hub.join(churner)
        hub.broadcast_event(
            "a", presence_event("user_joined", "churner"), churner, ("churner", True)
        )
        hub.leave(churner)
        hub.broadcast_event("a", presence_event("user_left", "churner"), None, ("churner", False))
    hub.broadcast_event("a", Frame(0, '{"type":"typing","user_id":"watcher"}'), exclude=watcher)
    hub.join(late)  # joined after the cancelled events: its view is renumbered
    hub.broadcast_event("a", presence_event("user_joined", "late"), late, ("late", True))
    # A reconnect (leave, then join again) held together changes nothing either.
    hub.broadcast_event("a", presence_event("user_left", "bob"), None, ("bob", False))
    hub.broadcast_event("a", presence_event("user_joined", "bob"), None, ("bob", True))
    await held_events_flushed()
    assert [(f["type"], f["user_id"]) for f in drain(watcher)] == [("user_joined", "late")]
    assert drain(late) == []


async def test_a_departure_reaches_a_socket_that_joined_after_the_arrival() -> None:
    # Ann arrives, Bob joins (and may read Ann's presence over REST), Ann leaves, all
    # within one hold: Bob must hear that Ann left, or he keeps her for good.
    hub = Hub()
    ann, bob = await subscriber("a", "ann"), await subscriber("a", "bob")
    hub.join(ann)
    hub.broadcast_event("a", presence_event("user_joined", "ann"), ann, ("ann", True))
    hub.join(bob)
    hub.broadcast_event("a", presence_event("user_joined", "bob"), bob, ("bob", True))
    hub.leave(ann)
    hub.broadcast_event("a", presence_event("user_left", "ann"), None, ("ann", False))
    await held_events_flushed()
    assert [(f["type"], f["user_id"]) for f in drain(bob)] == [("user_left", "ann")]


async def test_only_cancelled_events_held_send_nothing() -> None:
    hub = Hub()
    watcher = await subscriber("a", "watcher")
    hub.join(watcher)
    hub.broadcast_event("a", presence_event("user_joined", "x"), None, ("x", True))
    hub.broadcast_event("a", presence_event("user_left", "x"), None, ("x", False))
    hub.broadcast_event("a", presence_event("user_joined", "x"), None, ("x", True))
    await held_events_flushed()
    assert drain(watcher) == [{"type": "user_joined", "user_id": "x"}]  # the net change
    hub.broadcast_event("a", presence_event("user_left", "x"), None, ("x", False))
    hub.broadcast_event("a", presence_event("user_joined", "x"), None, ("x", True))
    await held_events_flushed()
    assert drain(watcher) == []


async def test_an_emptied_room_drops_its_held_events() -> None:
    hub = Hub()
    bob = await subscriber("a", "bob")
    hub.join(bob)
    hub.broadcast_event("a", Frame(0, '{"type":"typing"}'))
    hub.leave(bob)
    hub.join(bob)
    await held_events_flushed()
    assert drain(bob) == []


async def test_presence_counts_sockets_per_user_and_empties() -> None:
    hub = Hub()
    watcher = await subscriber("a", "watcher")
    first, second = await subscriber("a", "bob"), await subscriber("a", "bob")
    assert hub.join(watcher) is True
    assert hub.join(first) is True
    assert hub.join(second) is False  # a second tab is no new arrival
    assert sorted(hub.presence("a")) == [("bob", "Bob"), ("watcher", "Watcher")]
    assert hub.members() == {"a": {"watcher": "Watcher", "bob": "Bob"}}
    assert hub.leave(first) == Departure(last_of_user=False, room_empty=False)
    assert hub.leave(second) == Departure(last_of_user=True, room_empty=False)
    assert hub.leave(second) == Departure(last_of_user=False, room_empty=False)  # harmless
    assert hub.leave(watcher) == Departure(last_of_user=True, room_empty=True)
    assert hub.room_count == 0 and hub.subscriber_count == 0
    assert hub.presence("a") == []


async def test_full_queue_closes_with_4008_instead_of_dropping() -> None:
    hub = Hub()
    slow = await subscriber("a", "slow", queue_size=2)
    hub.join(slow)
    for seq in range(1, 4):
        hub.broadcast("a", Frame(seq, "{}"))
    assert slow.close_code == CloseCode.TOO_SLOW
    await asyncio.sleep(0)
    assert slow.owner.cancelled()
    hub.broadcast("a", Frame(9, "{}"))  # a closing subscriber takes nothing more
    assert slow.queue.qsize() == 2


async def test_close_all_asks_every_socket_to_close() -> None:
    hub = Hub()
    subs = [await subscriber(room, user) for room in "ab" for user in ("x", "y")]
    for sub in subs:
        hub.join(sub)
    hub.close_all(1012, "server restart")
    assert {(sub.close_code, sub.close_reason) for sub in subs} == {(1012, "server restart")}
    await asyncio.sleep(0)
    assert all(sub.owner.cancelled() for sub in subs)
