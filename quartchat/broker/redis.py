"""The Redis broker: one pub/sub channel per room, and a control channel (presence is
in redis_presence.py).

A room's traffic (messages, events, evictions) goes to `{prefix}:room:{room}`, which an
instance subscribes to while the room has a socket there (`subscribe_room` on the first,
`unsubscribe_room` after the last): its broker work follows its own rooms, not the whole
deployment's. Every instance listens to `{prefix}:control`, where each one says hello
after it (re)subscribes.

An instance publishes nothing for a room whose channel has no other subscriber (one
instance with Redis configured would otherwise send every message to Redis only to hear
it back). It learns that from the receiver count Redis returns for each publish, and
that it no longer holds from another instance's hello: on the room's channel when that
instance subscribes to the room, on the control channel when it (re)connects. A message
committed in the moment between a newcomer's hello and its arrival is not published;
the newcomer reads it from the database at the room's next message or resync.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from abc import abstractmethod
from collections import deque
from collections.abc import Awaitable, Sequence
from typing import Any, Protocol

from redis.asyncio import BlockingConnectionPool, Redis
from redis.exceptions import RedisError

from quartchat.broker import RESYNC, Broker, Envelope

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


class Subscriber(Protocol):
    """What the broker reads room traffic from: a pub/sub connection (or, on a cluster,
    one per primary) that reports confirmations as `subscribe` and traffic as `message`."""

    def subscribe(self, *channels: str) -> Awaitable[Any]: ...

    def unsubscribe(self, *channels: str) -> Awaitable[Any]: ...

    # redis-py's PubSub.get_message takes the timeout itself.
    async def get_message(self, *, timeout: float) -> dict[str, Any] | None: ...  # noqa: ASYNC109

    async def aclose(self) -> None: ...


class PubSubBroker(Broker):
    """The broker's bookkeeping over any Redis deployment; subclasses say how channels
    are named, subscribed to, published to and pinged."""

    def __init__(self, prefix: str, instance_id: str) -> None:
        self._control = f"{prefix}:control"
        self._prefix = prefix
        self._instance = instance_id
        self._pubsub: Subscriber | None = None
        self._healthy = False
        self._failures = 0
        self._checked = 0.0  # loop time of the last answer that proved Redis alive
        self._rooms: set[str] = set()  # rooms with a local socket: subscribed, or to be
        # Rooms whose subscription Redis confirmed (and no unsubscribe was sent since):
        # only those count this instance among a publish's receivers.
        self._subscribed: set[str] = set()
        # Subscribed rooms whose last publish reached no other instance.
        self._alone: set[str] = set()
        # Per room, one future per SUBSCRIBE sent and not yet confirmed, in order.
        self._confirming: dict[str, deque[asyncio.Future[None]]] = {}
        # (subscribe?, room) in call order, sent by one task so that a leave's
        # unsubscribe and a rejoin's subscribe reach Redis in that order.
        self._commands: list[tuple[bool, str]] = []
        self._sending: asyncio.Task[None] | None = None
        # Rooms whose subscription Redis confirmed, to say hello in (batched).
        self._hellos: list[str] = []
        self._greeting: asyncio.Task[None] | None = None
        self.frames_received = 0

    def _channel(self, room_id: str) -> str:
        return f"{self._prefix}:room:{room_id}"

    def _room_of(self, channel: str) -> str | None:
        """The room whose channel this is (None for the control channel)."""
        room_prefix = f"{self._prefix}:room:"
        return channel[len(room_prefix) :] if channel.startswith(room_prefix) else None

    @abstractmethod
    def _open_subscriber(self) -> Subscriber: ...

    @abstractmethod
    async def _publish_all(self, frames: Sequence[tuple[str, bytes]]) -> list[int]:
        """Publish (channel, data) pairs in order; the receivers of each."""

    @abstractmethod
    async def _ping(self) -> None: ...

    @abstractmethod
    async def _close_client(self) -> None: ...

    @property
    @abstractmethod
    def where(self) -> str:
        """Redis's address, for the log (never its password)."""

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

    async def disconnect(self) -> None:
        for task in (self._sending, self._greeting):
            if task is not None:
                task.cancel()
        if self._pubsub is not None:
            await self._pubsub.aclose()
            self._pubsub = None
        self._release_waiters()
        await self._close_client()

    async def subscribe_room(self, room_id: str) -> None:
        self._rooms.add(room_id)
        if self._pubsub is None:
            return  # subscribed with the others once Redis answers; the relay resyncs then
        confirmed: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._confirming.setdefault(room_id, deque()).append(confirmed)
        self._queue(True, room_id)
        try:
            async with asyncio.timeout(CALL_TIMEOUT_SECONDS):
                await asyncio.shield(confirmed)
        except TimeoutError:
            # The listener finds Redis unreachable too; reconnecting subscribes every
            # local room and the relay resyncs them from the database.
            log.warning("broker: the subscription to room %s is not confirmed yet", room_id)

    def unsubscribe_room(self, room_id: str) -> None:
        self._rooms.discard(room_id)
        self._subscribed.discard(room_id)
        self._alone.discard(room_id)
        if self._pubsub is not None:
            self._queue(False, room_id)

    def _queue(self, subscribe: bool, room_id: str) -> None:
        self._commands.append((subscribe, room_id))
        if self._sending is None:
            self._sending = asyncio.create_task(self._send_commands())

    async def _send_commands(self) -> None:
        """Send queued (un)subscriptions in order, a run of the same kind as one command
        (a storm's thousand first joins are a few SUBSCRIBEs)."""
        try:
            while self._commands:
                subscribe = self._commands[0][0]
                run = next(
                    (i for i, (kind, _) in enumerate(self._commands) if kind != subscribe),
                    len(self._commands),
                )
                channels = [self._channel(room) for _, room in self._commands[:run]]
                del self._commands[:run]
                pubsub = self._pubsub
                if pubsub is None:
                    continue  # (re)subscribing takes every room wanted then
                try:
                    async with asyncio.timeout(CALL_TIMEOUT_SECONDS):
                        if subscribe:
                            await pubsub.subscribe(*channels)
                        else:
                            await pubsub.unsubscribe(*channels)
                except (RedisError, OSError) as error:
                    log.warning("broker: (un)subscribing rooms failed: %s", error)
        finally:
            self._sending = None

    def _confirmed(self, channel: bytes) -> None:
        room_id = self._room_of(channel.decode())
        if room_id is None:
            return
        waiting = self._confirming.get(room_id)
        if waiting:
            answer = waiting.popleft()
            if not answer.done():
                answer.set_result(None)
        if not waiting:
            self._confirming.pop(room_id, None)
            if room_id in self._rooms:
                self._subscribed.add(room_id)
                self._greet(room_id)

    def _greet(self, room_id: str) -> None:
        """Say hello in a room once subscribed (said by the listener, so that it is said
        even when the joining socket stopped waiting)."""
        self._hellos.append(room_id)
        if self._greeting is None:
            self._greeting = asyncio.create_task(self._send_hellos())

    async def _send_hellos(self) -> None:
        try:
            while self._hellos:
                rooms, self._hellos = self._hellos, []
                hellos = [
                    (self._channel(room), Envelope(room, HELLO, "", self._instance).encode())
                    for room in rooms
                ]
                try:
                    async with asyncio.timeout(CALL_TIMEOUT_SECONDS):
                        await self._publish_all(hellos)
                except (RedisError, OSError) as error:
                    log.warning("broker: saying hello in %d rooms failed: %s", len(rooms), error)
        finally:
            self._greeting = None

    def _release_waiters(self) -> None:
        for waiting in self._confirming.values():
            for answer in waiting:
                if not answer.done():
                    answer.set_result(None)
        self._confirming.clear()
        self._subscribed.clear()

    async def publish(self, envelopes: Sequence[Envelope]) -> None:
        if not self._healthy:
            # Not even tried while the listener finds Redis unreachable: each try could
            # wait CALL_TIMEOUT_SECONDS while the outbox grows. Peers read the messages
            # from the database when the broker is back (RESYNC), and presence resyncs.
            return
        try:
            async with asyncio.timeout(CALL_TIMEOUT_SECONDS):
                receivers = await self._publish_all(
                    [(self._channel(envelope.room_id), envelope.encode()) for envelope in envelopes]
                )
        except (RedisError, OSError) as error:  # OSError includes TimeoutError
            self._healthy = False
            log.warning("broker publish failed (peers will fill the gap): %s", error)
            return
        for envelope, count in zip(envelopes, receivers, strict=True):
            # Only a room this instance subscribes to (confirmed) can be known to have
            # nobody else: the hello of an instance arriving there reaches it only then.
            if envelope.room_id in self._subscribed and int(count) <= 1:
                self._alone.add(envelope.room_id)
            else:
                self._alone.discard(envelope.room_id)

    def others_listening(self, room_id: str) -> bool:
        return room_id not in self._alone

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
                message = await self._pubsub.get_message(timeout=PING_INTERVAL_SECONDS)
                if message is None:
                    await self._check_alive()
            except (RedisError, OSError) as error:
                await self._lost(error)
                continue
            if message is None:
                continue
            if message["type"] == "subscribe":
                self._confirmed(message["channel"])
            elif message["type"] == "message":
                self.frames_received += 1
                envelope = Envelope.decode(message["data"])
                if envelope.seq != HELLO:
                    return envelope
                if envelope.origin != self._instance:
                    if envelope.room_id:
                        self._alone.discard(envelope.room_id)
                    else:
                        self._alone.clear()

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
            await self._ping()
        self._checked = now

    async def _subscribe(self) -> None:
        """Subscribe to the control channel and every local room in one command, then
        say hello: the others publish every room's traffic again, learning anew which
        rooms have nobody else."""
        pubsub = self._open_subscriber()
        rooms = set(self._rooms)
        hello = Envelope(room_id="", seq=HELLO, text="", origin=self._instance)
        try:
            async with asyncio.timeout(CALL_TIMEOUT_SECONDS):
                await pubsub.subscribe(self._control, *(self._channel(room) for room in rooms))
                # Confirmed before the hello (the control channel's comes first on one
                # connection; on a cluster the rooms' may come first from other shards,
                # and the rest are read by the listener).
                while True:
                    message = await pubsub.get_message(timeout=1.0) or {}
                    if message.get("type") != "subscribe":
                        continue
                    if message["channel"].decode() == self._control:
                        break
                    self._confirmed(message["channel"])
                await self._publish_all([(self._control, hello.encode())])
        except BaseException:
            with contextlib.suppress(RedisError, OSError):
                await pubsub.aclose()
            raise
        self._pubsub = pubsub
        self._alone.clear()
        if self._failures:
            log.info("broker: connected to Redis at %s", self.where)
        self._healthy = True
        self._failures = 0
        self._checked = asyncio.get_running_loop().time()
        # Rooms joined or left while subscribing.
        for room_id in self._rooms - rooms:
            self._queue(True, room_id)
        for room_id in rooms - self._rooms:
            self._queue(False, room_id)

    async def _lost(self, error: Exception) -> None:
        if self._healthy:
            log.warning("broker connection lost, reconnecting: %s", error)
        self._healthy = False
        if self._pubsub is not None:
            with contextlib.suppress(RedisError, OSError):
                async with asyncio.timeout(CALL_TIMEOUT_SECONDS):
                    await self._pubsub.aclose()
            self._pubsub = None
        self._release_waiters()
        delay = RECONNECT_DELAYS[min(self._failures, len(RECONNECT_DELAYS) - 1)]
        self._failures += 1
        await asyncio.sleep(delay)


class RedisBroker(PubSubBroker):
    """The broker on one Redis server (or a primary behind a proxy): plain pub/sub."""

    def __init__(self, client: Redis, prefix: str, instance_id: str) -> None:
        super().__init__(prefix, instance_id)
        self._client = client

    @property
    def where(self) -> str:
        found = self._client.connection_pool.connection_kwargs
        if "path" in found:
            return str(found["path"])
        return f"{found.get('host', 'localhost')}:{found.get('port', 6379)}"

    def _open_subscriber(self) -> Subscriber:
        return self._client.pubsub()

    async def _publish_all(self, frames: Sequence[tuple[str, bytes]]) -> list[int]:
        if len(frames) == 1:
            return [await self._client.publish(*frames[0])]
        async with self._client.pipeline(transaction=False) as pipe:
            for channel, data in frames:
                pipe.publish(channel, data)
            return list(await pipe.execute())

    async def _ping(self) -> None:
        await self._client.ping()

    async def _close_client(self) -> None:
        await self._client.aclose()
