"""The Redis backend: pub/sub on one channel for room traffic, and presence in sorted
sets whose members expire unless their instance keeps renewing them.

Presence keys, per room: `{prefix}:online:{room}` is a sorted set of user ids scored by
the latest expiry (Redis time) among the user's instances, `{prefix}:instances:{room}`
+ TAB + user id the sorted set of the instances where that user has sockets, scored by
each one's expiry, and `{prefix}:names:{room}` maps user ids to usernames. Joining or
leaving touches only the user's own entries (a 1000-socket storm into one room would
otherwise scan the room 1000 times). All keys expire on their own once nobody renews them.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence
from typing import Any

from redis.asyncio import BlockingConnectionPool, Redis
from redis.asyncio.client import Pipeline, PubSub
from redis.exceptions import RedisError

from . import RESYNC, Broker, Envelope, Presence

log = logging.getLogger(__name__)

RECONNECT_DELAYS = (0.1, 0.25, 0.5, 1.0, 2.0)
POOL_CONNECTIONS = 32
POOL_WAIT_SECONDS = 5.0

# KEYS: online, names, the user's instances. ARGV: user, instance, ttl, username.
# Add or renew the instance; return how many live instances the user has in the room.
_JOIN = """
local now = tonumber(redis.call('TIME')[1])
local ttl = tonumber(ARGV[3])
redis.call('HSET', KEYS[2], ARGV[1], ARGV[4])
redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', '(' .. now)
redis.call('ZADD', KEYS[3], now + ttl, ARGV[2])
redis.call('ZADD', KEYS[1], 'GT', now + ttl, ARGV[1])
for _, key in ipairs(KEYS) do redis.call('EXPIRE', key, ttl * 3) end
return redis.call('ZCOUNT', KEYS[3], now, '+inf')
"""

# KEYS: online, names, the user's instances. ARGV: user, instance.
# Remove the instance; return how many live instances the user still has in the room.
_LEAVE = """
local now = tonumber(redis.call('TIME')[1])
redis.call('ZREM', KEYS[3], ARGV[2])
local count = redis.call('ZCOUNT', KEYS[3], now, '+inf')
if count == 0 then
  redis.call('ZREM', KEYS[1], ARGV[1])
  redis.call('DEL', KEYS[3])
else
  local latest = redis.call('ZRANGE', KEYS[3], -1, -1, 'WITHSCORES')
  redis.call('ZADD', KEYS[1], latest[2], ARGV[1])
end
return count
"""

# KEYS: online, names. ARGV: the instances key of a user, less the user id.
# Drop users whose every instance expired; return them with their names, flat.
_SWEEP = """
local now = tonumber(redis.call('TIME')[1])
local gone = {}
for _, user in ipairs(redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', '(' .. now)) do
  local instances = ARGV[1] .. user
  if redis.call('ZCOUNT', instances, now, '+inf') == 0 then
    redis.call('ZREM', KEYS[1], user)
    redis.call('DEL', instances)
    table.insert(gone, user)
    table.insert(gone, redis.call('HGET', KEYS[2], user) or user)
  end
end
return gone
"""

# KEYS: online, names. Live users of the room with their names, flat.
_MEMBERS = """
local now = tonumber(redis.call('TIME')[1])
local result = {}
for _, user in ipairs(redis.call('ZRANGEBYSCORE', KEYS[1], now, '+inf')) do
  table.insert(result, user)
  table.insert(result, redis.call('HGET', KEYS[2], user) or user)
end
return result
"""


def connect_client(url: str) -> Redis:
    # Blocking: a storm of joins asks presence for each socket at once; past the pool's
    # size, commands wait for a connection instead of failing ("Too many connections").
    pool = BlockingConnectionPool.from_url(
        url,
        max_connections=POOL_CONNECTIONS,
        timeout=POOL_WAIT_SECONDS,
        socket_connect_timeout=2,
        socket_timeout=5,
        health_check_interval=10,
    )
    return Redis.from_pool(pool)


class RedisBroker(Broker):
    def __init__(self, client: Redis, channel: str) -> None:
        self._client = client
        self._channel = channel
        self._pubsub: PubSub | None = None
        self._healthy = False
        self._failures = 0

    async def connect(self) -> None:
        await self._subscribe()

    async def disconnect(self) -> None:
        if self._pubsub is not None:
            await self._pubsub.aclose()  # type: ignore[no-untyped-call]
            self._pubsub = None
        await self._client.aclose()

    async def publish(self, envelopes: Sequence[Envelope]) -> None:
        try:
            if len(envelopes) == 1:
                await self._client.publish(self._channel, envelopes[0].encode())
                return
            async with self._client.pipeline(transaction=False) as pipe:
                for envelope in envelopes:
                    pipe.publish(self._channel, envelope.encode())
                await pipe.execute()
        except (RedisError, OSError) as error:
            self._healthy = False
            log.warning("broker publish failed (peers will fill the gap): %s", error)

    async def next_published(self) -> Envelope:
        while True:
            try:
                if self._pubsub is None:
                    await self._subscribe()
                    return Envelope(room_id="", seq=RESYNC, text="", origin="")
                assert self._pubsub is not None
                message = await self._pubsub.get_message(
                    ignore_subscribe_messages=True, timeout=1.0
                )
            except (RedisError, OSError) as error:
                await self._lost(error)
                continue
            if message is not None and message["type"] == "message":
                return Envelope.decode(message["data"])

    @property
    def healthy(self) -> bool:
        return self._healthy

    async def _subscribe(self) -> None:
        pubsub = self._client.pubsub()
        await pubsub.subscribe(self._channel)
        self._pubsub = pubsub
        self._healthy = True
        self._failures = 0

    async def _lost(self, error: Exception) -> None:
        if self._healthy:
            log.warning("broker connection lost, reconnecting: %s", error)
        self._healthy = False
        if self._pubsub is not None:
            with contextlib.suppress(RedisError, OSError):
                await self._pubsub.aclose()  # type: ignore[no-untyped-call]
            self._pubsub = None
        delay = RECONNECT_DELAYS[min(self._failures, len(RECONNECT_DELAYS) - 1)]
        self._failures += 1
        await asyncio.sleep(delay)


class RedisPresence(Presence):
    def __init__(self, client: Redis, prefix: str, instance_id: str, ttl: float) -> None:
        self._client = client
        self._prefix = prefix
        self._instance = instance_id
        self._ttl = max(1, round(ttl))
        self._join = client.register_script(_JOIN)
        self._leave = client.register_script(_LEAVE)
        self._sweep = client.register_script(_SWEEP)
        self._members = client.register_script(_MEMBERS)

    def _keys(self, room_id: str) -> list[str]:
        return [f"{self._prefix}:online:{room_id}", f"{self._prefix}:names:{room_id}"]

    def _instances_key(self, room_id: str, user_id: str = "") -> str:
        return f"{self._prefix}:instances:{room_id}\t{user_id}"

    async def joined(self, room_id: str, user_id: str, username: str) -> bool:
        return int(await self._renew(room_id, user_id, username)) == 1

    async def _renew(
        self, room_id: str, user_id: str, username: str, pipe: Pipeline | None = None
    ) -> Any:
        keys = [*self._keys(room_id), self._instances_key(room_id, user_id)]
        args: list[str | int] = [user_id, self._instance, self._ttl, username]
        return await self._join(keys=keys, args=args, client=pipe)

    async def left(self, room_id: str, user_id: str) -> bool:
        keys = [*self._keys(room_id), self._instances_key(room_id, user_id)]
        count = await self._leave(keys=keys, args=[user_id, self._instance])
        return int(count) == 0

    async def members(self, room_id: str) -> list[tuple[str, str]]:
        flat = await self._members(keys=self._keys(room_id))
        return _pairs(flat)

    async def refresh(self, local: dict[str, dict[str, str]]) -> dict[str, list[tuple[str, str]]]:
        gone: dict[str, list[tuple[str, str]]] = {}
        for room_id, users in local.items():
            async with self._client.pipeline(transaction=False) as pipe:
                for user_id, username in users.items():
                    await self._renew(room_id, user_id, username, pipe)
                await self._sweep(
                    keys=self._keys(room_id), args=[self._instances_key(room_id)], client=pipe
                )
                replies = await pipe.execute()
            expired = _pairs(replies[-1])
            if expired:
                gone[room_id] = expired
        return gone


def _pairs(flat: list[bytes]) -> list[tuple[str, str]]:
    values = [item.decode() if isinstance(item, bytes) else str(item) for item in flat]
    return list(zip(values[0::2], values[1::2], strict=True))
