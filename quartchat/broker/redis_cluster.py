"""The broker on a Redis Cluster: sharded pub/sub (Redis 7's SSUBSCRIBE / SPUBLISH).

A room's channel is `{prefix}:room:{<room>}`: the hash tag puts it on the slot of the
room's presence keys, and only the primary owning that slot carries the room's traffic
(plain PUBLISH on a cluster is copied to every node, the cost sharding avoids). The
control channel `{prefix}:control` is sharded too, on one slot; it carries only hellos.

Commands (SPUBLISH, pings) go through redis-py's `RedisCluster`, which follows MOVED
redirections. Subscriptions are this module's own: one plain pub/sub connection per
primary that owns a subscribed channel, opened from the cluster's slot map. Anything that
may have cost a message (a connection lost, a reply that is an error such as MOVED, or
the server dropping a subscription because its slot moved) fails the whole subscriber:
the broker reconnects with a fresh slot map, subscribes every local room again, and its
RESYNC has the relay refill what was missed from the database.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import Counter
from collections.abc import Sequence
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from redis.asyncio import ConnectionPool, Redis
from redis.asyncio.client import PubSub
from redis.asyncio.cluster import ClusterNode, RedisCluster
from redis.exceptions import RedisError

from quartchat.broker.redis import CALL_TIMEOUT_SECONDS, PubSubBroker, Subscriber

log = logging.getLogger(__name__)

CLUSTER_SCHEMES = {"redis+cluster": "redis", "rediss+cluster": "rediss"}
# Connections per primary for commands (publishes, presence scripts); a storm waits for
# one rather than failing, as on a single server.
POOL_CONNECTIONS_PER_NODE = 32
_Message = dict[str, Any]


def connect_cluster_client(url: str) -> RedisCluster:
    """A cluster client for `redis+cluster://[:PASSWORD@]HOST:PORT` (or `rediss+cluster`):
    any node's address finds the others."""
    parts = urlsplit(url)
    plain = urlunsplit(parts._replace(scheme=CLUSTER_SCHEMES[parts.scheme]))
    return RedisCluster.from_url(
        plain,
        max_connections=POOL_CONNECTIONS_PER_NODE,
        socket_connect_timeout=CALL_TIMEOUT_SECONDS,
        socket_timeout=CALL_TIMEOUT_SECONDS,
    )


class ShardedSubscriber:
    """SSUBSCRIBE on the primary owning each channel's slot; messages from every
    primary read as one stream, in the shape of a plain pub/sub (`subscribe`, `message`)."""

    def __init__(self, cluster: RedisCluster) -> None:
        self._cluster = cluster
        self._pubsubs: dict[str, PubSub] = {}  # by node name
        self._clients: list[Redis] = []
        self._node_of: dict[str, str] = {}  # channel -> node name it is subscribed on
        self._readers: list[asyncio.Task[None]] = []
        self._inbox: asyncio.Queue[_Message | Exception] = asyncio.Queue()
        # SUNSUBSCRIBEs sent and not yet confirmed, by channel: a confirmation beyond
        # these is the server dropping the channel (its slot moved).
        self._leaving: Counter[str] = Counter()
        self._mapped = False

    async def subscribe(self, *channels: str) -> None:
        if not self._mapped:
            # A fresh slot map for every new subscriber: the one before it failed,
            # perhaps because a slot moved (the first also fetches it in `initialize`).
            await self._cluster.initialize()
            await self._cluster.nodes_manager.initialize()
            self._mapped = True
        for slot_channels in self._by_slot(channels).values():
            node = self._cluster.get_node_from_key(slot_channels[0])
            if node is None:
                raise RedisError(f"no primary serves channel {slot_channels[0]!r}")
            pubsub = self._pubsubs.get(node.name)
            if pubsub is None:
                pubsub = self._pubsubs[node.name] = self._open_pubsub(node)
                await pubsub.ssubscribe(*slot_channels)
                # Read once the first SSUBSCRIBE made the connection (a pub/sub with no
                # subscription has none to read from).
                self._readers.append(asyncio.create_task(self._read(pubsub)))
            else:
                await pubsub.ssubscribe(*slot_channels)
            for channel in slot_channels:
                self._node_of[channel] = node.name

    async def unsubscribe(self, *channels: str) -> None:
        for slot_channels in self._by_slot(channels).values():
            node_name = self._node_of.get(slot_channels[0])
            pubsub = self._pubsubs.get(node_name or "")
            if pubsub is None:
                continue
            for channel in slot_channels:
                self._node_of.pop(channel, None)
                self._leaving[channel] += 1
            await pubsub.sunsubscribe(*slot_channels)

    async def get_message(self, *, timeout: float) -> _Message | None:  # noqa: ASYNC109 (PubSub's shape)
        try:
            async with asyncio.timeout(timeout):
                item = await self._inbox.get()
        except TimeoutError:
            return None
        if isinstance(item, Exception):
            raise item
        return item

    async def aclose(self) -> None:
        for reader in self._readers:
            reader.cancel()
        await asyncio.gather(*self._readers, return_exceptions=True)
        for pubsub in self._pubsubs.values():
            with contextlib.suppress(RedisError, OSError):
                await pubsub.aclose()
        for client in self._clients:
            with contextlib.suppress(RedisError, OSError):
                await client.aclose()

    def _by_slot(self, channels: Sequence[str]) -> dict[int, list[str]]:
        # One SSUBSCRIBE names channels of one slot only (else CROSSSLOT).
        grouped: dict[int, list[str]] = {}
        for channel in channels:
            grouped.setdefault(self._cluster.keyslot(channel), []).append(channel)
        return grouped

    def _open_pubsub(self, node: ClusterNode) -> PubSub:
        pool = ConnectionPool(
            connection_class=node.connection_class, max_connections=1, **node.connection_kwargs
        )
        client = Redis.from_pool(pool)
        self._clients.append(client)
        return client.pubsub()

    async def _read(self, pubsub: PubSub) -> None:
        try:
            while True:
                message = await pubsub.get_message(timeout=1.0)
                if message is not None:
                    self._deliver(message)
        except asyncio.CancelledError:
            raise
        except Exception as error:
            self._inbox.put_nowait(error)

    def _deliver(self, message: _Message) -> None:
        kind = message["type"]
        channel = message["channel"].decode()
        if kind == "ssubscribe":
            self._inbox.put_nowait({**message, "type": "subscribe"})
        elif kind == "smessage":
            self._inbox.put_nowait({**message, "type": "message"})
        elif kind == "sunsubscribe":
            if self._leaving[channel] > 0:
                self._leaving[channel] -= 1
                if not self._leaving[channel]:
                    del self._leaving[channel]
            else:
                self._inbox.put_nowait(
                    RedisError(f"the cluster dropped the subscription to {channel} (slot moved)")
                )


class RedisClusterBroker(PubSubBroker):
    """The broker on a Redis Cluster (see the module docstring)."""

    def __init__(self, client: RedisCluster, prefix: str, instance_id: str) -> None:
        super().__init__(prefix, instance_id)
        self._client = client

    def _channel(self, room_id: str) -> str:
        return f"{self._prefix}:room:{{{room_id}}}"

    def _room_of(self, channel: str) -> str | None:
        room_prefix = f"{self._prefix}:room:{{"
        if channel.startswith(room_prefix) and channel.endswith("}"):
            return channel[len(room_prefix) : -1]
        return None

    @property
    def where(self) -> str:
        nodes = self._client.get_nodes() or self._client.nodes_manager.startup_nodes.values()
        return ", ".join(sorted(node.name for node in nodes)) + " (a Redis Cluster)"

    def _open_subscriber(self) -> Subscriber:
        return ShardedSubscriber(self._client)

    async def _publish_all(self, frames: Sequence[tuple[str, bytes]]) -> list[int]:
        if len(frames) == 1:
            return [await self._client.spublish(*frames[0])]
        async with self._client.pipeline() as pipe:
            for channel, data in frames:
                pipe.spublish(channel, data)
            return list(await pipe.execute())

    async def _ping(self) -> None:
        # Every primary: a dead one fails its shards' rooms, whichever rooms this
        # instance hears from.
        await self._client.ping(target_nodes=RedisCluster.PRIMARIES)

    async def _close_client(self) -> None:
        await self._client.aclose()
