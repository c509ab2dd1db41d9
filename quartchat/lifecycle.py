"""What starts first: the one place that orders a server's startup and its shutdown.

Startup runs the steps below in order, shutdown stops them in reverse, and each logs
one line (`startup: database`, `shutdown: database`), so a server's log shows the order.

0. framework shortcuts: check (and log) the shortcuts into Hypercorn, Quart, wsproto
   and aiosqlite (internals/shortcuts.py); stop here if the SQLite one is needed and gone.
1. database: connect (and migrate); everything after may read it.
2. directory: preload usernames and rooms, so a redeploy's reconnect storm finds
   them warm.
3. broker: connect to the other instances (nothing to do with the memory broker).
4. relay: listen to the broker, publish to it, resync with the database; on shutdown
   it publishes what is still queued before the broker disconnects.
5. presence heartbeat (Redis presence only) and 6. pinger: the timers.
7. sockets: served from here on; on shutdown new ones are refused, open ones closed
   with 1012, and every accepted message is committed and published (while the relay,
   broker and database are still up).
8. garbage collector tuning, only under `quartchat serve`: last, so that it freezes
   what startup created.

`quartchat serve` stops intake and closes sockets with 1012 as soon as the signal
arrives (server.py); step 7's stop then finds nothing left to close.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from quart import Quart

from . import db, gc_tuning
from .chat import Chat
from .config import Settings
from .internals import frameguard, headguard, shortcuts

log = logging.getLogger(__name__)

EXTENSION_KEY = "quartchat.lifecycle"


async def _nothing() -> None:
    return None


@dataclass(frozen=True, slots=True)
class Step:
    name: str
    start: Callable[[], Awaitable[None]] = _nothing
    stop: Callable[[], Awaitable[None]] = _nothing


class Lifecycle:
    """The server's startup and shutdown steps, in order."""

    def __init__(self, settings: Settings, chat: Chat) -> None:
        self._settings = settings
        self._chat = chat
        self._started: list[Step] = []
        self._collecting: asyncio.Task[None] | None = None
        self.tunes_garbage_collector = False

    def steps(self) -> list[Step]:
        chat = self._chat
        steps = [
            Step("framework shortcuts", self._use_shortcuts),
            Step("database", self._open_database, db.disconnect),
            Step("directory", chat.directory.preload),
            Step("broker", chat.broker.connect, chat.broker.disconnect),
            Step("relay", chat.relay.start, chat.relay.stop),
            Step("presence heartbeat", chat.start_heartbeat, chat.stop_heartbeat),
            Step("pinger", chat.start_pinger, chat.stop_pinger),
            Step("sockets", stop=chat.finish),
        ]
        if self.tunes_garbage_collector:
            steps.append(Step("garbage collector tuning", self._tune_gc, self._stop_gc))
        return steps

    async def start(self) -> None:
        """Run every step's start in order; if one fails, stop those already started."""
        for step in self.steps():
            log.info("startup: %s", step.name)
            try:
                await step.start()
            except BaseException:
                await self.stop()
                raise
            self._started.append(step)

    async def stop(self) -> None:
        """Stop the started steps in reverse order; one failing does not skip the rest."""
        while self._started:
            step = self._started.pop()
            log.info("shutdown: %s", step.name)
            try:
                await step.stop()
            except Exception:
                log.exception("shutdown step %r failed", step.name)

    async def _use_shortcuts(self) -> None:
        shortcuts.report(
            needs_sqlite=not db.is_postgres(self._settings.database_url),
            frame_guard_installed=frameguard.install(self._settings),
            head_guard_installed=headguard.install(self._settings),
        )

    async def _open_database(self) -> None:
        settings = self._settings
        await db.connect(settings.database_url_with_pool, migrate=settings.migrate_on_start)

    async def _tune_gc(self) -> None:
        gc_tuning.settle()
        self._collecting = asyncio.create_task(gc_tuning.collect_after_closes(self._chat.hub))

    async def _stop_gc(self) -> None:
        if self._collecting is not None:
            self._collecting.cancel()


def init_app(app: Quart, settings: Settings, chat: Chat) -> Lifecycle:
    """Start and stop the server's parts in the order above (Tortoise's own Quart
    helper fails under Hypercorn in tortoise-orm 1.1: "No TortoiseContext is
    currently active")."""
    lifecycle = Lifecycle(settings, chat)
    app.extensions[EXTENSION_KEY] = lifecycle
    app.before_serving(lifecycle.start)
    app.after_serving(lifecycle.stop)
    return lifecycle


def lifecycle_of(app: Quart) -> Lifecycle:
    lifecycle: Lifecycle = app.extensions[EXTENSION_KEY]
    return lifecycle
