"""Redis presence: sorted sets whose members expire unless their instance keeps
renewing them.

Presence keys, per room: `{prefix}:online:{room}` is a sorted set of user ids scored by
the latest expiry (Redis time) among the user's instances, `{prefix}:instances:{room}`
+ TAB + user id the sorted set of the instances where that user has sockets, scored by
each one's expiry, and `{prefix}:names:{room}` maps user ids to usernames. Joining or
leaving touches only the user's own entries (a 1000-socket storm into one room would
otherwise scan the room 1000 times). All keys expire on their own once nobody renews them.

On a Redis Cluster (`RedisClusterPresence`) the room id in every key is a hash tag,
`{room}`, so that a script's keys share one slot (the room channel's); and scripts are
sent whole (EVAL), since a cluster pipeline does not load a script a primary lacks
(after a restart or a failover every primary's script cache may be empty). Each
deployment keeps its own key names: a single server's stay as they were.

Joins and leaves are queued and sent in submission order, everything that queued while
the previous pipeline was out going in the next one: a storm's thousand joins are a
handful of round trips instead of a thousand, each with its own pool checkout.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from dataclasses import dataclass
from typing import Any

from redis.asyncio import Redis
from redis.asyncio.client import Pipeline
from redis.asyncio.cluster import ClusterPipeline, RedisCluster
from redis.commands.core import AsyncScript

from quartchat.broker import Presence
from quartchat.broker.redis import CALL_TIMEOUT_SECONDS

# Presence questions sent in one pipeline at most.
PIPELINE_BATCH = 500
# Presence reads in flight at once on a cluster. Its client's pools do not wait for a
# free connection as a single server's does (they raise MaxConnectionsError at 32 per
# primary); reads beyond these wait here instead, leaving room for the one pipeline,
# publish and ping that each run at a time.
CLUSTER_READS_AT_ONCE = 16

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


@dataclass(slots=True)
class _Question:
    script: AsyncScript
    keys: list[str]
    args: list[str | int]
    true_when: int
    answer: asyncio.Future[bool]


class RedisPresence(Presence):
    def __init__(
        self, client: Redis | RedisCluster, prefix: str, instance_id: str, ttl: float
    ) -> None:
        self._client = client
        self._prefix = prefix
        self._instance = instance_id
        self._ttl = max(1, round(ttl))
        self._join = client.register_script(_JOIN)
        self._leave = client.register_script(_LEAVE)
        self._sweep = client.register_script(_SWEEP)
        self._members = client.register_script(_MEMBERS)
        self._queued: list[_Question] = []
        self._sending: asyncio.Task[None] | None = None

    def _keys(self, room_id: str) -> list[str]:
        return [f"{self._prefix}:online:{room_id}", f"{self._prefix}:names:{room_id}"]

    def _instances_key(self, room_id: str, user_id: str = "") -> str:
        return f"{self._prefix}:instances:{room_id}\t{user_id}"

    def joined(self, room_id: str, user_id: str, username: str) -> Awaitable[bool]:
        keys, args = self._join_call(room_id, user_id, username)
        return self._ask(self._join, keys, args, true_when=1)  # the user's first instance

    def _join_call(
        self, room_id: str, user_id: str, username: str
    ) -> tuple[list[str], list[str | int]]:
        """The keys and arguments of the join script for one user (joining or renewing)."""
        keys = [*self._keys(room_id), self._instances_key(room_id, user_id)]
        return keys, [user_id, self._instance, self._ttl, username]

    def left(self, room_id: str, user_id: str) -> Awaitable[bool]:
        keys = [*self._keys(room_id), self._instances_key(room_id, user_id)]
        return self._ask(self._leave, keys, [user_id, self._instance], true_when=0)

    def _ask(
        self, script: AsyncScript, keys: list[str], args: list[str | int], true_when: int
    ) -> asyncio.Future[bool]:
        """Queue a script call, sent after every call queued before it; its answer is
        whether the instance count it returns is `true_when`."""
        answer: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self._queued.append(_Question(script, keys, args, true_when, answer))
        if self._sending is None:
            self._sending = asyncio.create_task(self._send_queued())
        return answer

    async def _send_queued(self) -> None:
        try:
            while self._queued:
                batch = self._queued[:PIPELINE_BATCH]
                del self._queued[:PIPELINE_BATCH]
                await self._send(batch)
        finally:
            self._sending = None
            for question in self._queued:  # cancelled at shutdown: nothing sends these
                question.answer.cancel()
            self._queued.clear()

    async def _send(self, batch: list[_Question]) -> None:
        try:
            async with (
                asyncio.timeout(CALL_TIMEOUT_SECONDS),
                self._client.pipeline(transaction=False) as pipe,
            ):
                for question in batch:
                    await self._queue_script(pipe, question.script, question.keys, question.args)
                replies = await pipe.execute(raise_on_error=False)
        except asyncio.CancelledError:
            for question in batch:
                question.answer.cancel()
            raise
        except Exception as error:
            replies = [error] * len(batch)
        for question, reply in zip(batch, replies, strict=True):
            if question.answer.done():
                continue  # its asker went away
            if isinstance(reply, BaseException):
                question.answer.set_exception(reply)
            else:
                question.answer.set_result(int(reply) == question.true_when)

    async def members(self, room_id: str) -> list[tuple[str, str]]:
        async with asyncio.timeout(CALL_TIMEOUT_SECONDS):
            flat = await self._run_script(self._members, self._keys(room_id), [])
        return _pairs(flat)

    async def refresh(self, local: dict[str, dict[str, str]]) -> dict[str, list[tuple[str, str]]]:
        gone: dict[str, list[tuple[str, str]]] = {}
        for room_id, users in local.items():
            async with (
                asyncio.timeout(CALL_TIMEOUT_SECONDS),
                self._client.pipeline(transaction=False) as pipe,
            ):
                for user_id, username in users.items():
                    keys, args = self._join_call(room_id, user_id, username)
                    await self._queue_script(pipe, self._join, keys, args)
                await self._queue_script(
                    pipe, self._sweep, self._keys(room_id), [self._instances_key(room_id)]
                )
                replies = await pipe.execute()
            expired = _pairs(replies[-1])
            if expired:
                gone[room_id] = expired
        return gone

    async def _queue_script(
        self,
        pipe: Pipeline | ClusterPipeline,
        script: AsyncScript,
        keys: list[str],
        args: list[str | int],
    ) -> None:
        """Add a script call to a pipeline (EVALSHA; the pipeline loads missing scripts)."""
        assert isinstance(pipe, Pipeline)  # a single server's client makes these
        await script(keys=keys, args=args, client=pipe)

    async def _run_script(self, script: AsyncScript, keys: list[str], args: list[str | int]) -> Any:
        return await script(keys=keys, args=args)


class RedisClusterPresence(RedisPresence):
    """Presence on a Redis Cluster: hash-tagged keys, scripts sent whole."""

    def __init__(self, client: RedisCluster, prefix: str, instance_id: str, ttl: float) -> None:
        super().__init__(client, prefix, instance_id, ttl)
        self._reading = asyncio.Semaphore(CLUSTER_READS_AT_ONCE)

    def _keys(self, room_id: str) -> list[str]:
        return [f"{self._prefix}:online:{{{room_id}}}", f"{self._prefix}:names:{{{room_id}}}"]

    def _instances_key(self, room_id: str, user_id: str = "") -> str:
        return f"{self._prefix}:instances:{{{room_id}}}\t{user_id}"

    async def _queue_script(
        self,
        pipe: Pipeline | ClusterPipeline,
        script: AsyncScript,
        keys: list[str],
        args: list[str | int],
    ) -> None:
        pipe.eval(str(script.script), len(keys), *keys, *args)

    async def _run_script(self, script: AsyncScript, keys: list[str], args: list[str | int]) -> Any:
        async with self._reading:
            return await self._client.eval(str(script.script), len(keys), *keys, *args)


def _pairs(flat: list[bytes]) -> list[tuple[str, str]]:
    values = [item.decode() if isinstance(item, bytes) else str(item) for item in flat]
    return list(zip(values[0::2], values[1::2], strict=True))
