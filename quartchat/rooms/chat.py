"""The chat service the blueprints share: settings, hub, store, relay and presence."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, Literal
from uuid import uuid4

from quart import Quart, current_app

from quartchat.broker import Presence, backends_for
from quartchat.config.settings import Settings
from quartchat.rooms.auth import Tokens
from quartchat.rooms.directory import Directory
from quartchat.rooms.hub import Hub, Subscriber
from quartchat.rooms.metrics import Metrics
from quartchat.rooms.relay import Relay
from quartchat.storage.store import MessageStore
from quartchat.wire.frames import CloseCode
from quartchat.wire.payloads import ChatMessage, event_frame, format_timestamp, utc_now

log = logging.getLogger(__name__)

EXTENSION_KEY = "quartchat"
# How long a handshake waits for presence to say whether its user is new to the room.
# Past it (a Redis that hangs, in the second or two before the broker notices) the
# arrival is announced anyway, and confirmed to the other instances once Redis is back.
PRESENCE_ANSWER_SECONDS = 0.5
# How long `GET …/presence` waits for Redis before answering with this instance's own.
PRESENCE_READ_SECONDS = 1.0


class Chat:
    """One instance's share of the chat: its sockets, its writers, its link to the rest."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.instance_id = uuid4().hex
        # "ok" once the startup probe passed (GET /health); None when none ran.
        self.fast_paths: str | None = None
        self.hub = Hub()
        self.directory = Directory()
        self.tokens = Tokens(settings)
        broker, presence = backends_for(
            settings.redis_url,
            settings.redis_prefix,
            self.instance_id,
            settings.presence_ttl,
            self.hub,
        )
        self.broker = broker
        self.presence: Presence = presence
        self.store = MessageStore(
            publish=self._publish_stored,
            commit_window=settings.commit_window,
            commit_timeout=settings.db_commit_timeout,
        )
        self.metrics = Metrics(self.hub, self.directory, self.store, broker)
        self.relay = Relay(self.hub, broker, self.store, self.instance_id)
        self.relay.on_reconnect = self._confirm_presence_later
        # (room_id, user_id) -> username: users whose arrival or departure here Redis did
        # not confirm (unreachable), so the other instances may not know of it. Which
        # one it was is read from the hub once Redis is back.
        self._unconfirmed: dict[tuple[str, str], str] = {}
        self._background: set[asyncio.Task[None]] = set()
        self._heartbeat: asyncio.Task[None] | None = None
        self._pinger: asyncio.Task[None] | None = None
        # False once the server is going away: new sockets are refused (503).
        self.accepting_sockets = True
        self.stopping = asyncio.Event()

    def _publish_stored(self, message: ChatMessage) -> None:
        self.metrics.messages_stored.inc()
        self.relay.publish_message(message)

    async def start_heartbeat(self) -> None:
        """Keep renewing this instance's presence, when presence spans instances."""
        if self.presence.spans_instances:
            self._heartbeat = asyncio.create_task(self._renew_presence())

    async def stop_heartbeat(self) -> None:
        if self._heartbeat is not None:
            self._heartbeat.cancel()

    async def start_pinger(self) -> None:
        self._pinger = asyncio.create_task(self._ping_sockets())

    async def stop_pinger(self) -> None:
        if self._pinger is not None:
            self._pinger.cancel()

    async def join(self, subscriber: Subscriber) -> None:
        """Add a socket to its room; announce the user if nobody saw them there before."""
        first_here = self.hub.join(subscriber)
        await self.relay.track(subscriber.room_id)
        if not first_here:
            return
        room_id, user_id, username = subscriber.room_id, subscriber.user_id, subscriber.username
        if not self.presence.spans_instances or await self._answer(
            room_id,
            user_id,
            username,
            self._asked(lambda: self.presence.joined(room_id, user_id, username)),
        ):
            self._announce(
                "user_joined",
                subscriber.room_id,
                subscriber.user_id,
                subscriber.username,
                exclude=subscriber,
            )

    def leave(self, subscriber: Subscriber) -> None:
        """Remove a socket now; telling the other instances happens in the background, so
        that it completes even while the socket's own task is being cancelled."""
        departure = self.hub.leave(subscriber)
        if departure.room_empty:
            self.relay.untrack(subscriber.room_id)
        if not departure.last_of_user:
            return
        room_id, user_id, username = subscriber.room_id, subscriber.user_id, subscriber.username
        if not self.presence.spans_instances:
            self._announce("user_left", room_id, user_id, username)
        else:
            # Asked now, before any rejoin of the same user can be.
            gone = self._asked(lambda: self.presence.left(room_id, user_id))
            self._spawn(self._announce_left(room_id, user_id, username, gone))

    async def members(self, room_id: str) -> list[tuple[str, str]]:
        if self.presence.spans_instances and not self.relay.broker_healthy:
            return self.hub.presence(room_id)
        try:
            async with asyncio.timeout(PRESENCE_READ_SECONDS):
                return await self.presence.members(room_id)
        except Exception as error:
            log.warning("presence unavailable, answering with this instance's: %r", error)
            return self.hub.presence(room_id)

    def stop_intake(self) -> None:
        """Refuse new sockets from now on: the server is going away."""
        self.accepting_sockets = False
        self.stopping.set()  # ends a startup still waiting for the database

    def close_all_sockets(self) -> None:
        """Tell every socket the server is restarting (1012), so clients reconnect at once."""
        self.hub.close_all(CloseCode.SERVICE_RESTART, "server restart")

    async def finish(self) -> None:
        """Refuse new sockets, close the open ones (1012), and finish what they began:
        every accepted message committed and published, every departure announced."""
        self.stop_intake()
        self.close_all_sockets()
        await self.store.drain()
        await asyncio.gather(*self._background, return_exceptions=True)

    async def _announce_left(
        self, room_id: str, user_id: str, username: str, gone: Awaitable[bool] | None
    ) -> None:
        if await self._answer(room_id, user_id, username, gone):
            self._announce("user_left", room_id, user_id, username)

    def _asked(self, ask: Callable[[], Awaitable[bool]]) -> Awaitable[bool] | None:
        """The question asked now, or None while the broker finds Redis unreachable:
        then nothing is asked, so that nothing waits on it."""
        return ask() if self.relay.broker_healthy else None

    async def _answer(
        self,
        room_id: str,
        user_id: str,
        username: str,
        question: Awaitable[bool] | None,
    ) -> bool:
        """Presence's answer to an arrival or departure (whether the room as a whole
        changed), waited for at most PRESENCE_ANSWER_SECONDS; True when it could not be
        had (announcing twice beats never announcing), and the change is then confirmed
        to the other instances when the broker is back."""
        key = (room_id, user_id)
        if question is not None:
            try:
                async with asyncio.timeout(PRESENCE_ANSWER_SECONDS):
                    answer = await question
            except Exception as error:
                log.warning("presence unavailable: %r", error)
            else:
                self._unconfirmed.pop(key, None)
                return answer
        self._unconfirmed[key] = username
        return True

    def _confirm_presence_later(self) -> None:
        if self._unconfirmed:
            self._spawn(self._confirm_presence())

    async def _confirm_presence(self) -> None:
        """Tell Redis, and the other instances, the arrivals and departures made while
        Redis was unreachable (their events reached only this instance's sockets)."""
        unconfirmed, self._unconfirmed = self._unconfirmed, {}
        members = self.hub.members()
        pending = list(unconfirmed.items())
        for index, ((room_id, user_id), username) in enumerate(pending):
            here = user_id in members.get(room_id, {})
            try:
                async with asyncio.timeout(PRESENCE_READ_SECONDS):
                    if here:
                        await self.presence.joined(room_id, user_id, username)
                    elif not await self.presence.left(room_id, user_id):
                        continue  # the user still has sockets on another instance
            except Exception as error:
                # Redis is gone again: the rest waits for its next return, unless a
                # newer change of the same user was recorded meanwhile.
                log.warning("presence not confirmed yet: %r", error)
                for key, change in pending[index:]:
                    self._unconfirmed.setdefault(key, change)
                return
            event_type: Literal["user_joined", "user_left"] = "user_joined" if here else "user_left"
            self.relay.publish_to_others(room_id, _event(event_type, room_id, user_id, username))

    def _announce(
        self,
        event_type: Literal["user_joined", "user_left"],
        room_id: str,
        user_id: str,
        username: str,
        exclude: Subscriber | None = None,
    ) -> None:
        text = _event(event_type, room_id, user_id, username)
        change = (user_id, event_type == "user_joined")
        self.relay.publish_event(room_id, text, exclude=exclude, presence=change)

    async def _ping_sockets(self) -> None:
        # One task pings every socket: a timer per socket (Hypercorn's
        # websocket_ping_interval) also keeps each closed connection alive until it fires.
        while True:
            await asyncio.sleep(self.settings.ping_interval)
            self.hub.ping_all()

    async def _renew_presence(self) -> None:
        interval = max(self.settings.presence_ttl / 3, 0.2)
        failing = False  # one line when the heartbeat fails, one when it works again
        while True:
            await asyncio.sleep(interval)
            if not self.relay.broker_healthy:
                continue  # nothing to renew with; the entries outlive a short outage
            try:
                gone = await self.presence.refresh(self.hub.members())
            except Exception as error:
                if not failing:
                    log.warning("presence heartbeat failed (retried quietly): %s", error)
                failing = True
                continue
            if failing:
                log.info("presence heartbeat works again")
                failing = False
            for room_id, users in gone.items():
                for user_id, username in users:
                    self._announce("user_left", room_id, user_id, username)

    def _spawn(self, coroutine: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(coroutine)
        self._background.add(task)
        task.add_done_callback(self._background.discard)


def _event(
    event_type: Literal["user_joined", "user_left"], room_id: str, user_id: str, username: str
) -> str:
    return event_frame(
        event_type,
        user_id=user_id,
        username=username,
        room_id=room_id,
        timestamp=format_timestamp(utc_now()),
    )


def init_app(app: Quart, settings: Settings) -> Chat:
    """Create the chat; lifecycle.py starts and stops it."""
    chat = Chat(settings)
    app.extensions[EXTENSION_KEY] = chat
    return chat


def current_chat() -> Chat:
    chat: Chat = current_app.extensions[EXTENSION_KEY]
    return chat
