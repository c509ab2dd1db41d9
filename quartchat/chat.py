"""The chat service the blueprints share: settings, hub, store, relay and presence."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Coroutine
from typing import Any, Literal
from uuid import uuid4

from quart import Quart, current_app

from .auth import Tokens
from .broker import Presence, backends_for
from .config import Settings
from .directory import Directory
from .frames import CloseCode
from .hub import Hub, Subscriber
from .metrics import Metrics
from .payloads import ChatMessage, event_frame, format_timestamp, utc_now
from .relay import Relay
from .store import MessageStore

log = logging.getLogger(__name__)

EXTENSION_KEY = "quartchat"


class Chat:
    """One instance's share of the chat: its sockets, its writers, its link to the rest."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.instance_id = uuid4().hex
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
            publish=self._publish_stored, commit_window=settings.commit_window
        )
        self.metrics = Metrics(self.hub, self.directory, self.store)
        self.relay = Relay(self.hub, broker, self.store, self.instance_id)
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
        if not self.presence.spans_instances or await _answer(
            self.presence.joined(subscriber.room_id, subscriber.user_id, subscriber.username)
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
        if not self.presence.spans_instances:
            self._announce("user_left", subscriber.room_id, subscriber.user_id, subscriber.username)
        else:
            # Reported now, before any rejoin of the same user can be.
            gone = self.presence.left(subscriber.room_id, subscriber.user_id)
            self._spawn(self._announce_left(subscriber, gone))

    async def members(self, room_id: str) -> list[tuple[str, str]]:
        try:
            return await self.presence.members(room_id)
        except Exception as error:
            log.warning("presence unavailable, answering with this instance's: %s", error)
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

    async def _announce_left(self, subscriber: Subscriber, gone: Awaitable[bool]) -> None:
        if await _answer(gone):
            self._announce("user_left", subscriber.room_id, subscriber.user_id, subscriber.username)

    def _announce(
        self,
        event_type: Literal["user_joined", "user_left"],
        room_id: str,
        user_id: str,
        username: str,
        exclude: Subscriber | None = None,
    ) -> None:
        text = event_frame(
            event_type,
            user_id=user_id,
            username=username,
            room_id=room_id,
            timestamp=format_timestamp(utc_now()),
        )
        self.relay.publish_event(room_id, text, exclude=exclude)

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


async def _answer(question: Awaitable[bool]) -> bool:
    """A presence answer; True when presence could not be asked: announcing twice beats
    never announcing."""
    try:
        return await question
    except Exception as error:
        log.warning("presence unavailable: %s", error)
        return True


def init_app(app: Quart, settings: Settings) -> Chat:
    """Create the chat; lifecycle.py starts and stops it."""
    chat = Chat(settings)
    app.extensions[EXTENSION_KEY] = chat
    return chat


def current_chat() -> Chat:
    chat: Chat = current_app.extensions[EXTENSION_KEY]
    return chat
