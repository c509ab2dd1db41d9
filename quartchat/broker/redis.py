"""The Redis backend: pub/sub on one channel for room traffic, and presence in sorted
sets whose members expire unless their instance keeps renewing them.

Presence keys, per room: `{prefix}:presence:{room}` is a sorted set of
`user_id<TAB>instance_id` scored by expiry (Redis time), and `{prefix}:names:{room}`
maps user ids to usernames. Both keys expire on their own once nobody renews them.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from redis.asyncio import Redis
from redis.asyncio.client import PubSub
from redis.exceptions import RedisError

from . import RESYNC, Broker, Envelope, Presence

log = logging.getLogger(__name__)

RECONNECT_DELAYS = (0.1, 0.25, 0.5, 1.0, 2.0)

# Ends a script by returning how many live members user ARGV[1] has in the room.
_COUNT_USER_MEMBERS = """
local count = 0
local prefix = ARGV[1] .. '\t'
for _, member in ipairs(redis.call('ZRANGEBYSCORE', KEYS[1], now, '+inf')) do
  if string.sub(member, 1, #prefix) == prefix then count = count + 1 end
end
return count
"""

# Add or renew one member; return how many live members the user has in the room.
_JOIN = (
    """
local now = tonumber(redis.call('TIME')[1])
local ttl = tonumber(ARGV[3])
redis.call('HSET', KEYS[2], ARGV[1], ARGV[4])
redis.call('ZADD', KEYS[1], now + ttl, ARGV[1] .. '\t' .. ARGV[2])
redis.call('EXPIRE', KEYS[1], ttl * 3)
redis.call('EXPIRE', KEYS[2], ttl * 3)
"""
    + _COUNT_USER_MEMBERS
)

# Remove one member; return how many live members the user still has in the room.
_LEAVE = (
    """
local now = tonumber(redis.call('TIME')[1])
redis.call('ZREM', KEYS[1], ARGV[1] .. '\t' .. ARGV[2])
"""
    + _COUNT_USER_MEMBERS
)

# Drop expired members; return the users left with no live member, with their names.
_SWEEP = """
local now = tonumber(redis.call('TIME')[1])
local expired = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', '(' .. now)
if #expired == 0 then return {} end
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', '(' .. now)
local live = {}
for _, member in ipairs(redis.call('ZRANGEBYSCORE', KEYS[1], now, '+inf')) do
  live[string.match(member, '^(.-)\t')] = true
end
local gone, seen = {}, {}
for _, member in ipairs(expired) do
  local user = string.match(member, '^(.-)\t')
  if not live[user] and not seen[user] then
    seen[user] = true
    table.insert(gone, user)
    table.insert(gone, redis.call('HGET', KEYS[2], user) or user)
  end
end
return gone
"""

# Live users of the room with their names, as a flat list.
_MEMBERS = """
local now = tonumber(redis.call('TIME')[1])
local result, seen = {}, {}
for _, member in ipairs(redis.call('ZRANGEBYSCORE', KEYS[1], now, '+inf')) do
  local user = string.match(member, '^(.-)\t')
  if not seen[user] then
    seen[user] = true
    table.insert(result, user)
    table.insert(result, redis.call('HGET', KEYS[2], user) or user)
  end
end
return result
"""


def connect_client(url: str) -> Redis:
    client: Redis = Redis.from_url(
        url, socket_connect_timeout=2, socket_timeout=5, health_check_interval=10
    )
    return client


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

    async def publish(self, envelope: Envelope) -> None:
        try:
            await self._client.publish(self._channel, envelope.encode())
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
        return [f"{self._prefix}:presence:{room_id}", f"{self._prefix}:names:{room_id}"]

    async def joined(self, room_id: str, user_id: str, username: str) -> bool:
        count = await self._join(
            keys=self._keys(room_id), args=[user_id, self._instance, self._ttl, username]
        )
        return int(count) == 1

    async def left(self, room_id: str, user_id: str) -> bool:
        count = await self._leave(keys=self._keys(room_id), args=[user_id, self._instance])
        return int(count) == 0

    async def members(self, room_id: str) -> list[tuple[str, str]]:
        flat = await self._members(keys=self._keys(room_id))
        return _pairs(flat)

    async def refresh(self, local: dict[str, dict[str, str]]) -> dict[str, list[tuple[str, str]]]:
        gone: dict[str, list[tuple[str, str]]] = {}
        for room_id, users in local.items():
            keys = self._keys(room_id)
            for user_id, username in users.items():
                await self._join(keys=keys, args=[user_id, self._instance, self._ttl, username])
            expired = _pairs(await self._sweep(keys=keys))
            if expired:
                gone[room_id] = expired
        return gone


def _pairs(flat: list[bytes]) -> list[tuple[str, str]]:
    values = [item.decode() if isinstance(item, bytes) else str(item) for item in flat]
    return list(zip(values[0::2], values[1::2], strict=True))
