"""The Redis broker: pub/sub on one channel for room traffic (presence is in
redis_presence.py).

An instance that is the channel's only subscriber publishes nothing (one instance with
Redis configured would otherwise send every message to Redis only to hear it back).
It learns that it is alone from the receiver count Redis returns for each publish and
for the hello it publishes after subscribing, and that it no longer is from another
instance's hello. A message committed in the moment between a newcomer's hello and its
arrival is not published; the newcomer reads it from the database at its next resync.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence

from redis.asyncio import BlockingConnectionPool, Redis
from redis.asyncio.client import PubSub
from redis.exceptions import RedisError

from . import RESYNC, Broker, Envelope

log = logging.getLogger(__name__)

RECONNECT_DELAYS = (0.1, 0.25, 0.5, 1.0, 2.0)
# The seq of an envelope that says "its origin has just subscribed".
HELLO = -2
POOL_CONNECTIONS = 32
# A Redis that stops answering (paused, partitioned, busy with a long command) refuses
# nothing: without these bounds every call waits, and the instance still calls it
# healthy. Any call, pipeline or subscription that takes longer counts as Redis being
# unreachable; a storm's pipeline of 500 presence scripts takes tens of milliseconds.
CALL_TIMEOUT_SECONDS = 2.0
# While no message arrives, the listener pings Redis this often, and a ping that gets
# no answer in PING_TIMEOUT_SECONDS marks the broker unavailable.
PING_INTERVAL_SECONDS = 1.0
PING_TIMEOUT_SECONDS = 1.0


def connect_client(url: str) -> Redis:
    # Blocking: a storm of joins asks presence for each socket at once; past the pool's
    # size, commands wait for a connection instead of failing ("Too many connections").
    pool = BlockingConnectionPool.from_url(
        url,
        max_connections=POOL_CONNECTIONS,
        timeout=CALL_TIMEOUT_SECONDS,
        socket_connect_timeout=CALL_TIMEOUT_SECONDS,
        socket_timeout=CALL_TIMEOUT_SECONDS,
        health_check_interval=10,
    )
    return Redis.from_pool(pool)


class RedisBroker(Broker):
    def __init__(self, client: Redis, channel: str, instance_id: str) -> None:
        self._client = client
        self._channel = channel
        self._instance = instance_id
        self._pubsub: PubSub | None = None
        self._healthy = False
        self._failures = 0
        self._others = True  # until Redis says otherwise
        self._checked = 0.0  # loop time of the last answer that proved Redis alive

    async def connect(self) -> None:
        """Subscribe; a Redis that does not answer yet leaves the instance degraded (it
        serves its own sockets, `/health` says `degraded`), and `next_published`
        connects as soon as Redis answers."""
        try:
            await self._subscribe()
        except (RedisError, OSError, TimeoutError) as error:
            self._failures = 1  # so that the connection, when it comes, is logged
            log.warning(
                "broker: Redis at %s does not answer (%s); serving this instance's own "
                "sockets only (degraded) and connecting as soon as it answers",
                self.where,
                error,
            )

    @property
    def where(self) -> str:
        """Redis's address, for the log (never its password)."""
        found = self._client.connection_pool.connection_kwargs
        if "path" in found:
            return str(found["path"])
        return f"{found.get('host', 'localhost')}:{found.get('port', 6379)}"

    async def disconnect(self) -> None:
        if self._pubsub is not None:
            await self._pubsub.aclose()
            self._pubsub = None
        await self._client.aclose()

    async def publish(self, envelopes: Sequence[Envelope]) -> None:
        if not self._healthy:
            # Not even tried while the listener finds Redis unreachable: each try could
            # wait CALL_TIMEOUT_SECONDS while the outbox grows. Peers read the messages
            # from the database when the broker is back (RESYNC), and presence resyncs.
            return
        try:
            async with asyncio.timeout(CALL_TIMEOUT_SECONDS):
                if len(envelopes) == 1:
                    receivers = await self._client.publish(self._channel, envelopes[0].encode())
                else:
                    async with self._client.pipeline(transaction=False) as pipe:
                        for envelope in envelopes:
                            pipe.publish(self._channel, envelope.encode())
                        receivers = (await pipe.execute())[-1]
        except (RedisError, OSError) as error:  # OSError includes TimeoutError
            self._healthy = False
            log.warning("broker publish failed (peers will fill the gap): %s", error)
            return
        self._count_others(int(receivers))

    @property
    def others_listening(self) -> bool:
        return self._others

    def _count_others(self, receivers: int) -> None:
        own = 1 if self._pubsub is not None else 0
        self._others = receivers - own > 0

    async def next_published(self) -> Envelope:
        while True:
            try:
                if self._pubsub is not None and not self._healthy:
                    # A publish failed while the subscription looked fine (a slow
                    # link): only a fresh subscription sets the broker healthy again,
                    # and its RESYNC fills what peers missed meanwhile.
                    raise RedisError("a publish failed; subscribing again")
                if self._pubsub is None:
                    await self._subscribe()
                    return Envelope(room_id="", seq=RESYNC, text="", origin="")
                assert self._pubsub is not None
                message = await self._pubsub.get_message(
                    ignore_subscribe_messages=True, timeout=PING_INTERVAL_SECONDS
                )
                if message is None:
                    await self._check_alive()
            except (RedisError, OSError) as error:
                await self._lost(error)
                continue
            if message is not None and message["type"] == "message":
                envelope = Envelope.decode(message["data"])
                if envelope.seq != HELLO:
                    return envelope
                if envelope.origin != self._instance:
                    self._others = True

    @property
    def healthy(self) -> bool:
        return self._healthy

    async def _check_alive(self) -> None:
        """Ping Redis when no message came for a while: a Redis that hangs sends
        nothing and refuses nothing, and only an unanswered ping tells."""
        now = asyncio.get_running_loop().time()
        if now - self._checked < PING_INTERVAL_SECONDS:
            return
        async with asyncio.timeout(PING_TIMEOUT_SECONDS):
            await self._client.ping()
        self._checked = now

    async def _subscribe(self) -> None:
        pubsub = self._client.pubsub()
        hello = Envelope(room_id="", seq=HELLO, text="", origin=self._instance)
        try:
            async with asyncio.timeout(CALL_TIMEOUT_SECONDS):
                await pubsub.subscribe(self._channel)
                # Confirmed before the hello, so that Redis counts this instance as a
                # receiver.
                while (await pubsub.get_message(timeout=1.0) or {}).get("type") != "subscribe":
                    pass
                receivers = int(await self._client.publish(self._channel, hello.encode()))
        except BaseException:
            with contextlib.suppress(RedisError, OSError):
                await pubsub.aclose()
            raise
        self._pubsub = pubsub
        if self._failures:
            log.info("broker: connected to Redis at %s", self.where)
        self._healthy = True
        self._failures = 0
        self._checked = asyncio.get_running_loop().time()
        self._count_others(receivers)

    async def _lost(self, error: Exception) -> None:
        if self._healthy:
            log.warning("broker connection lost, reconnecting: %s", error)
        self._healthy = False
        if self._pubsub is not None:
            with contextlib.suppress(RedisError, OSError):
                async with asyncio.timeout(CALL_TIMEOUT_SECONDS):
                    await self._pubsub.aclose()
            self._pubsub = None
        delay = RECONNECT_DELAYS[min(self._failures, len(RECONNECT_DELAYS) - 1)]
        self._failures += 1
        await asyncio.sleep(delay)
