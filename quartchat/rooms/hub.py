"""The room hub: which sockets of this process are in which room, and fan-out to them.

Each socket is a `Subscriber`: a frame is written to it at once while its connection
takes writes, and queued in its bounded queue (drained by a task of its own) only once
it falls behind, so a slow or stuck client only ever fills its own queue. A full queue
closes that client with 4008 (it reconnects and replays what it missed); nothing is
ever dropped silently.

Events (presence, typing) come in bursts: a reconnect storm is one `user_joined` per
socket, for every socket of the room. A room holds its events for `EVENT_HOLD_SECONDS`
and then queues them for each socket as one `EventBatch`, so a burst of k events costs
one queue entry and one write per socket rather than k; while bursts go on (a storm's
thousand joins), the room holds for `BURST_HOLD_SECONDS` instead. A message flushes the
held events first, so every socket still sees the room's frames in the order they
happened. A user's arrival and departure held together cancel out (a socket opened and
closed within one hold, or a quick reconnect): the room's presence did not change, and a
client opening and closing sockets in a loop reaches nobody.
"""

from __future__ import annotations

import asyncio
from bisect import bisect_left
from collections import Counter
from dataclasses import dataclass, field
from itertools import accumulate
from typing import NamedTuple, Protocol

from quartchat.wire.frames import CloseCode
from quartchat.wire.framing import PING, EventBatch, Frame, FrameQueue
from quartchat.wire.payloads import PresenceChange

CLOSE_TOO_SLOW_REASON = "too slow: reconnect and replay with ?after="
EVENT_HOLD_SECONDS = 0.05
# After a flush of BURST_EVENTS or more, the room holds its next events this long: in a
# reconnect storm each flush is one write per socket, a sixth of the storm's CPU at 50 ms.
BURST_EVENTS = 20
BURST_HOLD_SECONDS = 0.25


class Sink(Protocol):
    """Where a socket's frames go once it is open (`outbox.Outbox`)."""

    def offer(self, frame: Frame) -> bool:
        """Send the frame now if nothing waits before it; False to have it queued."""

    def backlog(self) -> None:
        """Frames wait in the queue: make sure they are sent."""


class Subscriber:
    """One open socket in one room.

    Until its `sink` is set (the handshake is done) frames wait in `queue`; after it,
    a frame goes straight to the sink when no frame waits before it, and only a socket
    that falls behind has its frames queued (and closed with 4008 once the queue is
    full).
    """

    __slots__ = (
        "address",
        "close_code",
        "close_reason",
        "owner",
        "queue",
        "room_id",
        "sink",
        "user_id",
        "username",
    )

    def __init__(
        self,
        room_id: str,
        user_id: str,
        username: str,
        queue_size: int,
        owner: asyncio.Task[None],
        address: str = "",
    ) -> None:
        self.room_id = room_id
        self.user_id = user_id
        self.username = username
        self.address = address
        self.queue = FrameQueue(queue_size)
        self.owner = owner
        self.close_code: int | None = None
        self.close_reason = ""
        self.sink: Sink | None = None

    def deliver(self, frame: Frame) -> None:
        """Send or queue a frame for this socket without waiting; close the socket if
        its queue is full."""
        if self.close_code is not None:
            return
        sink = self.sink
        if sink is not None and self.queue.empty() and sink.offer(frame):
            return
        if not self.queue.put_nowait(frame):
            self.request_close(CloseCode.TOO_SLOW, CLOSE_TOO_SLOW_REASON)
        elif sink is not None:
            sink.backlog()

    def request_close(self, code: int, reason: str) -> None:
        """Ask the socket's handler to close with `code`: it is interrupted wherever it waits."""
        if self.close_code is None:
            self.close_code = code
            self.close_reason = reason
            self.owner.cancel()


class Departure(NamedTuple):
    last_of_user: bool  # the user has no other socket in the room here
    room_empty: bool  # nobody is left in the room here


@dataclass(slots=True)
class _Room:
    subscribers: set[Subscriber] = field(default_factory=set)
    # user_id -> (username, number of that user's sockets in the room)
    users: dict[str, tuple[str, int]] = field(default_factory=dict)
    # Events held for the next flush, each with the subscriber it must skip; None for
    # an event cancelled by the opposite presence change of its user.
    held: list[tuple[Frame | None, object]] = field(default_factory=list)
    # user_id -> (index in `held`, arrived) of the user's latest presence event held.
    presence_held: dict[str, tuple[int, bool]] = field(default_factory=dict)
    # Subscribers that joined while events were held -> index of the first held event
    # they see (they were not in the room for the earlier ones).
    joined_at: dict[Subscriber, int] = field(default_factory=dict)
    # The largest of those indices, kept as they join (a storm's departures would
    # otherwise each scan every late joiner); -1 when none joined since the last flush.
    last_join_at: int = -1
    flush: asyncio.TimerHandle | None = None
    hold: float = EVENT_HOLD_SECONDS


class Hub:
    """Rooms of subscribers in this process, with presence derived from them."""

    def __init__(self) -> None:
        self._rooms: dict[str, _Room] = {}
        self.frames_queued = 0  # read by the metrics
        self.departures = 0  # sockets that left, ever
        self._per_user: Counter[str] = Counter()
        self._per_address: Counter[str] = Counter()

    def join(self, subscriber: Subscriber) -> bool:
        """Add a socket; True if it is its user's first socket in the room here."""
        room = self._rooms.setdefault(subscriber.room_id, _Room())
        room.subscribers.add(subscriber)
        if room.held:
            room.joined_at[subscriber] = room.last_join_at = len(room.held)
        self._per_user[subscriber.user_id] += 1
        self._per_address[subscriber.address] += 1
        username, count = room.users.get(subscriber.user_id, (subscriber.username, 0))
        room.users[subscriber.user_id] = (username, count + 1)
        return count == 0

    def leave(self, subscriber: Subscriber) -> Departure:
        """Remove a socket (again is harmless) and say what its leaving emptied."""
        room = self._rooms.get(subscriber.room_id)
        if room is None or subscriber not in room.subscribers:
            return Departure(last_of_user=False, room_empty=False)
        room.subscribers.discard(subscriber)
        room.joined_at.pop(subscriber, None)
        self.departures += 1
        _decrement(self._per_user, subscriber.user_id)
        _decrement(self._per_address, subscriber.address)
        username, count = room.users[subscriber.user_id]
        if count > 1:
            room.users[subscriber.user_id] = (username, count - 1)
            return Departure(last_of_user=False, room_empty=False)
        del room.users[subscriber.user_id]
        if not room.subscribers:
            if room.flush is not None:
                room.flush.cancel()
            del self._rooms[subscriber.room_id]
        return Departure(last_of_user=True, room_empty=not room.subscribers)

    def broadcast(self, room_id: str, frame: Frame, exclude: object = None) -> None:
        """Queue a frame for every socket of the room (but `exclude`), now, after the
        events the room holds."""
        room = self._rooms.get(room_id)
        if room is None:
            return
        if room.held:
            self._flush(room)
        for subscriber in room.subscribers:
            if subscriber is not exclude:
                subscriber.deliver(frame)
        self.frames_queued += len(room.subscribers) - (exclude in room.subscribers)

    def broadcast_event(
        self,
        room_id: str,
        frame: Frame,
        exclude: object = None,
        presence: PresenceChange | None = None,
    ) -> None:
        """Queue an event for every socket of the room (but `exclude`) within
        EVENT_HOLD_SECONDS, together with the room's other events meanwhile.
        `presence` says what a user_joined / user_left event changes: an arrival and a
        departure of one user held together are both dropped, unless a socket joined
        between them. That socket gets only the second (it joined after the first), and
        may have read the user's presence meanwhile (`GET /rooms/{id}/presence`, as
        quartchat.js does on opening): without the second it would keep a user who left."""
        room = self._rooms.get(room_id)
        if room is None:
            return
        if presence is not None:
            user_id, arrived = presence
            earlier = room.presence_held.pop(user_id, None)
            if earlier is not None and earlier[1] != arrived:
                first = earlier[0]
                # (A late joiner that already left still counts: both events then go
                # out, which is only less saving, never a wrong view.)
                if room.last_join_at <= first:
                    room.held[first] = (None, None)
                    return
            room.presence_held[user_id] = (len(room.held), arrived)
        room.held.append((frame, exclude))
        if room.flush is None:
            loop = asyncio.get_running_loop()
            room.flush = loop.call_later(room.hold, self._flush, room)

    def _flush(self, room: _Room) -> None:
        if not room.held:
            return
        held, joined_at = _without_cancelled(room.held, room.joined_at)
        room.hold = BURST_HOLD_SECONDS if len(room.held) >= BURST_EVENTS else EVENT_HOLD_SECONDS
        room.held, room.joined_at, room.presence_held = [], {}, {}
        room.last_join_at = -1
        if room.flush is not None:
            room.flush.cancel()
            room.flush = None
        if not held:
            return
        frames = [frame for frame, _ in held]
        everyone = EventBatch(frames)
        skipped: dict[object, list[int]] = {}
        for index, (_, exclude) in enumerate(held):
            if exclude is not None:
                skipped.setdefault(exclude, []).append(index)
        view: memoryview | None = None
        offsets: list[int] = []
        for subscriber in room.subscribers:
            start = joined_at.get(subscriber, 0)
            skips = skipped.get(subscriber)
            if not start and not skips:
                subscriber.deliver(everyone)
                self.frames_queued += len(frames)
                continue
            if view is None:  # the first socket with its own share: slices of the whole
                view = memoryview(everyone.wire)
                offsets = list(accumulate((len(frame.wire) for frame in frames), initial=0))
            # Runs of consecutive events from its join on, around those it must skip.
            for run_start, run_stop in _runs(start, skips or [], len(frames)):
                part = view[offsets[run_start] : offsets[run_stop]]
                subscriber.deliver(EventBatch(frames, run_start, run_stop, part))
                self.frames_queued += run_stop - run_start

    def presence(self, room_id: str) -> list[tuple[str, str]]:
        """(user_id, username) of everyone with an open socket in the room."""
        room = self._rooms.get(room_id)
        if room is None:
            return []
        return [(user_id, username) for user_id, (username, _) in room.users.items()]

    def subscribers_of(self, room_id: str) -> list[Subscriber]:
        """The room's open sockets here (the startup probe finds its own)."""
        room = self._rooms.get(room_id)
        return list(room.subscribers) if room is not None else []

    def members(self) -> dict[str, dict[str, str]]:
        """{room_id: {user_id: username}} of every socket here."""
        return {
            room_id: {user_id: username for user_id, (username, _) in room.users.items()}
            for room_id, room in self._rooms.items()
        }

    def sockets_of_user(self, user_id: str) -> int:
        return self._per_user[user_id]

    def sockets_from(self, address: str) -> int:
        return self._per_address[address]

    def ping_all(self) -> None:
        """Queue a ping for every socket: keeps proxies from timing out idle sockets and
        makes writes to dead peers fail, which closes them."""
        for room in self._rooms.values():
            for subscriber in room.subscribers:
                subscriber.deliver(PING)

    def close_user(self, room_id: str, user_id: str, code: int, reason: str) -> int:
        """Close every socket of `user_id` in the room here; how many there were."""
        room = self._rooms.get(room_id)
        closing = [s for s in room.subscribers if s.user_id == user_id] if room else []
        for subscriber in closing:
            subscriber.request_close(code, reason)
        return len(closing)

    def close_all(self, code: int, reason: str) -> None:
        for room in list(self._rooms.values()):
            for subscriber in list(room.subscribers):
                subscriber.request_close(code, reason)

    @property
    def room_count(self) -> int:
        return len(self._rooms)

    @property
    def subscriber_count(self) -> int:
        return sum(len(room.subscribers) for room in self._rooms.values())


def _without_cancelled(
    held: list[tuple[Frame | None, object]], joined_at: dict[Subscriber, int]
) -> tuple[list[tuple[Frame, object]], dict[Subscriber, int]]:
    """The held events left once cancelled ones are removed, and each late joiner's
    first event renumbered to match."""
    kept = [index for index, (frame, _) in enumerate(held) if frame is not None]
    live = [(frame, exclude) for frame, exclude in held if frame is not None]
    if len(live) == len(held):
        return live, joined_at
    return live, {subscriber: bisect_left(kept, start) for subscriber, start in joined_at.items()}


def _runs(start: int, skips: list[int], stop: int) -> list[tuple[int, int]]:
    """The non-empty ranges of [start, stop) left once the indices `skips` are removed."""
    runs = []
    for skip in skips:
        if skip >= start:
            if skip > start:
                runs.append((start, skip))
            start = skip + 1
    if start < stop:
        runs.append((start, stop))
    return runs


def _decrement(counter: Counter[str], key: str) -> None:
    if counter[key] <= 1:
        del counter[key]  # empty keys would pile up over millions of connections
    else:
        counter[key] -= 1
