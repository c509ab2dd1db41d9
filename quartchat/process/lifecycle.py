"""What starts first: the one place that orders a server's startup and its shutdown.

Startup runs the steps below in order, shutdown stops them in reverse, and each logs
one line (`startup: database`, `shutdown: database`), so a server's log shows the order.

0. framework shortcuts: check (and log) the shortcuts into Hypercorn, Quart, wsproto
   and aiosqlite (internals/shortcuts.py); stop here if the SQLite one is needed and
   gone, and under `quartchat serve` if any is gone.
1. database: connect (and migrate); everything after may read it.
2. directory: preload usernames and rooms, so a redeploy's reconnect storm finds
   them warm.
3. broker: connect to the other instances (nothing to do with the memory broker).
4. relay: listen to the broker, publish to it, resync with the database; on shutdown
   it publishes what is still queued before the broker disconnects.
5. presence heartbeat (Redis presence only) and 6. pinger: the timers.
   Then, only with `workers > 1`, worker metrics: answer the other workers' scrapes
   (worker_metrics.py).
7. sockets: served from here on; on shutdown new ones are refused, open ones closed
   with 1012, and every accepted message is committed and published (while the relay,
   broker and database are still up).
8. fast paths, only under `quartchat serve`: the startup probe (probe.py) proves the
   socket path and the SQLite write path with the code that will serve clients, over
   a loopback connection, before Hypercorn's listeners accept anyone (they start once
   startup is over). After the sockets step, because the probe's socket needs all of
   the above; a failure stops the server (`FastPathBroken`, one log line).
9. garbage collector tuning, only under `quartchat serve`: last, so that it freezes
   what startup created.

`quartchat serve` stops intake and closes sockets with 1012 as soon as the signal
arrives (server.py); step 7's stop then finds nothing left to close.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from hypercorn.config import Config
from hypercorn.typing import AppWrapper
from quart import Quart

from quartchat.config.settings import Settings
from quartchat.internals import frameguard, headguard, shortcuts
from quartchat.process import probe, startup
from quartchat.process.probe import FastPathBroken
from quartchat.rooms import gc_tuning
from quartchat.rooms.chat import Chat
from quartchat.storage import db

log = logging.getLogger(__name__)

EXTENSION_KEY = "quartchat.process.lifecycle"


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
        self._served: tuple[AppWrapper, Config] | None = None
        self.tunes_garbage_collector = False

    def prove_fast_paths(self, app: AppWrapper, config: Config) -> None:
        """Under `quartchat serve`: prove the fast paths at startup with the app and
        Hypercorn settings that will serve clients, and refuse to start without them."""
        self._served = (app, config)

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
        ]
        if chat.metrics.workers is not None:
            steps.append(
                Step("worker metrics", chat.metrics.workers.start, chat.metrics.workers.stop)
            )
        steps.append(Step("sockets", stop=chat.finish))
        if self._served is not None:
            steps.append(Step("fast paths", self._prove_fast_paths))
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
        needs_sqlite = not db.is_postgres(self._settings.database_url)
        try:
            found = shortcuts.report(
                needs_sqlite=needs_sqlite,
                frame_guard_installed=frameguard.install(self._settings),
                head_guard_installed=headguard.install(self._settings),
            )
        except shortcuts.ShortcutMissingError as error:
            raise FastPathBroken(shortcuts.SQLITE_BATCH, str(error)) from None
        if self._served is None:
            return  # other servers fall back to the public behaviour where one is gone
        for shortcut in found:
            if not shortcut.active and (needs_sqlite or shortcut.name != shortcuts.SQLITE_BATCH):
                raise FastPathBroken(shortcut.name, f"missing {', '.join(shortcut.missing)}")

    async def _prove_fast_paths(self) -> None:
        assert self._served is not None
        app, config = self._served
        sqlite = not db.is_postgres(self._settings.database_url)
        try:
            await probe.prove(self._chat, app, config, sqlite=sqlite)
        except FastPathBroken:
            if not self._chat.stopping.is_set():
                raise
            # SIGTERM came while the probe ran: its socket was refused (503) as every
            # new one now is. Not a broken install; the server just stops.
            log.info("fast paths not proven: told to stop before the probe finished")
            return
        self._chat.fast_paths = "ok"

    async def _open_database(self) -> None:
        settings = self._settings
        await startup.open_database(
            settings.database_url_with_pool,
            migrate=settings.migrate_on_start,
            within=settings.db_startup_timeout,
            stopping=self._chat.stopping,
        )

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
