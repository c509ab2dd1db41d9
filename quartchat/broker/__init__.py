"""Carrying room traffic between instances, and presence that spans them.

A backend is chosen by URL (encode/broadcaster style): `memory://` keeps everything in
this process (one instance, one worker), `redis://` / `rediss://` uses Redis pub/sub
(`redis+cluster://` / `rediss+cluster://`: a Redis Cluster's sharded pub/sub)
and Redis-held presence so that any number of instances and workers form one chat.
Each instance delivers to its own sockets first and publishes for the others, and hears
a room's traffic only while it subscribes to the room (while it has a socket there).

May import: wire, config.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Awaitable, Sequence
from dataclasses import dataclass
from typing import Protocol

RESYNC = -1
# An envelope whose `text` is a user removed from its private room: every instance
# closes that user's sockets in the room. (-2 is the Redis broker's HELLO.)
EVICT = -3


@dataclass(frozen=True, slots=True)
class Envelope:
    """A room frame crossing instances. `seq` is the message seq, 0 for an event
    (typing, presence), RESYNC when the broker reconnected and may have missed some, or
    EVICT (`text` is the user removed from the room)."""

    room_id: str
    seq: int
    text: str
    origin: str

    def encode(self) -> bytes:
        return f"{self.origin}\n{self.room_id}\n{self.seq}\n{self.text}".encode()

    @classmethod
    def decode(cls, raw: bytes) -> Envelope:
        origin, room_id, seq, text = raw.decode().split("\n", 3)
        return cls(room_id=room_id, seq=int(seq), text=text, origin=origin)


class Broker(ABC):
    """Pub/sub between instances; `spans_instances` is False when this process is the
    whole chat (then there is nobody to publish to, or to listen to)."""

    spans_instances: bool = True
    # Frames this instance received from the broker (room traffic and control), for
    # `quartchat_broker_frames_received_total`.
    frames_received: int = 0

    def others_listening(self, room_id: str) -> bool:
        """Whether publishing the room's traffic can reach another instance. A broker
        that spans instances answers False only while it knows that no other instance
        subscribes to the room: a message published then would reach nobody, and an
        instance that subscribes later reads what it missed from the database."""
        return self.spans_instances

    @abstractmethod
    async def subscribe_room(self, room_id: str) -> None:
        """Hear the room's traffic from now on: the room's first local socket joined.
        Returns once the subscription is in effect (a message published afterwards
        reaches this instance), or once it failed (the broker is then unhealthy, and
        reconnecting subscribes every local room before its RESYNC)."""

    @abstractmethod
    def unsubscribe_room(self, room_id: str) -> None:
        """Stop hearing the room: its last local socket left. Ordered with
        `subscribe_room` calls (a leave and rejoin stay subscribed)."""

    @abstractmethod
    async def connect(self) -> None: ...

    @abstractmethod
    async def disconnect(self) -> None: ...

    @abstractmethod
    async def publish(self, envelopes: Sequence[Envelope]) -> None:
        """Send to the other instances, in order; failures are logged and reported by
        `healthy`."""

    @abstractmethod
    async def next_published(self) -> Envelope:
        """The next envelope from any instance (own ones included); reconnects by itself."""

    @property
    @abstractmethod
    def healthy(self) -> bool: ...


class Presence(ABC):
    """Who is in which room across every instance.

    Instances report the first and last local socket of a user in a room; the answers
    say whether that made the user appear in, or vanish from, the room as a whole.
    A report is made when `joined`/`left` is called, in call order with the instance's
    other reports (a user's leave and rejoin must not be swapped), whenever its answer
    is awaited. `spans_instances` is False when this instance's own sockets are the whole
    answer (then a first local socket is always an arrival, and there is nothing to ask
    or renew).
    """

    spans_instances: bool = True

    @abstractmethod
    def joined(self, room_id: str, user_id: str, username: str) -> Awaitable[bool]: ...

    @abstractmethod
    def left(self, room_id: str, user_id: str) -> Awaitable[bool]: ...

    @abstractmethod
    async def members(self, room_id: str) -> list[tuple[str, str]]: ...

    @abstractmethod
    async def refresh(self, local: dict[str, dict[str, str]]) -> dict[str, list[tuple[str, str]]]:
        """Renew this instance's members ({room: {user_id: username}}) and return the
        users whose every instance stopped renewing (crashed), by room."""


class LocalMembers(Protocol):
    """What the memory presence reads: this process's own sockets (the hub)."""

    def presence(self, room_id: str) -> list[tuple[str, str]]: ...


def backends_for(
    url: str, prefix: str, instance_id: str, presence_ttl: float, local_members: LocalMembers
) -> tuple[Broker, Presence]:
    """The broker and presence for a URL: empty or `memory://`, `redis://…`, or
    `redis+cluster://…` (a Redis Cluster)."""
    scheme = url.split("://", 1)[0] if url else "memory"
    if scheme == "memory":
        from quartchat.broker.memory import LocalPresence, MemoryBroker

        return MemoryBroker(), LocalPresence(local_members)
    if scheme in {"redis", "rediss", "unix"}:
        from quartchat.broker.redis import RedisBroker, connect_client
        from quartchat.broker.redis_presence import RedisPresence

        client = connect_client(url)
        return (
            RedisBroker(client, prefix, instance_id),
            RedisPresence(client, prefix, instance_id, presence_ttl),
        )
    if scheme in {"redis+cluster", "rediss+cluster"}:
        from quartchat.broker.redis_cluster import (
            RedisClusterBroker,
            connect_cluster_client,
        )
        from quartchat.broker.redis_presence import RedisClusterPresence

        cluster = connect_cluster_client(url)
        return (
            RedisClusterBroker(cluster, prefix, instance_id),
            RedisClusterPresence(cluster, prefix, instance_id, presence_ttl),
        )
    raise ValueError(f"unsupported broker URL scheme {scheme!r}; use memory:// or redis://")
