"""Who and where: usernames and rooms (their existence and privacy), cached for the
socket handshake.

None of these changes once created (the API renames and deletes nothing), so after the first
connection (or its creation through this instance) a reconnect storm opens sockets
without asking the database again. Only positive answers are kept: a user or room may
be created after a miss.

A redeploy is exactly when every client reconnects at once, so a starting instance
reads the directory before it serves (`preload`: every room and the newest users, up to
the cache's capacity). Misses asked for meanwhile are read together, one query for many
handshakes instead of one each (a 1000-socket storm on a cold cache still made 77 of
them, for 0.4 s of the server's CPU: every answer waits its turn on the busy loop).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Iterable

from quartchat.storage.faults import is_outage
from quartchat.storage.models import Room, User
from quartchat.wire.text import is_resource_id

log = logging.getLogger(__name__)

# Ids read with one query at most (the query's IN list).
LOAD_BATCH = 500


class LookupCache:
    """Positive answers by id, least recently used first out, with misses read in
    batches through `fetch` (ids -> the answers found)."""

    def __init__(
        self, capacity: int, fetch: Callable[[list[str]], Awaitable[dict[str, str]]]
    ) -> None:
        self._capacity = capacity
        self._fetch = fetch
        self._known: OrderedDict[str, str] = OrderedDict()
        self._wanted: dict[str, asyncio.Future[str | None]] = {}
        self._loader: asyncio.Task[None] | None = None
        self.queries = 0

    @property
    def capacity(self) -> int:
        return self._capacity

    async def get(self, key: str) -> str | None:
        value = self._known.get(key)
        if value is not None:
            self._known.move_to_end(key)
            return value
        wanted = self._wanted.get(key)
        if wanted is None:
            wanted = asyncio.get_running_loop().create_future()
            self._wanted[key] = wanted
            if self._loader is None:
                self._loader = asyncio.create_task(self._load_wanted())
        # Shielded: a handshake that goes away must not cancel the others' answer.
        return await asyncio.shield(wanted)

    def add(self, key: str, value: str) -> None:
        self._known[key] = value
        self._known.move_to_end(key)
        if len(self._known) > self._capacity:
            self._known.popitem(last=False)

    def discard(self, key: str) -> None:
        self._known.pop(key, None)

    async def _load_wanted(self) -> None:
        try:
            while self._wanted:
                await asyncio.sleep(0)  # let the other handshakes of a storm ask too
                keys = list(self._wanted)[:LOAD_BATCH]
                batch = {key: self._wanted.pop(key) for key in keys}
                await self._load(batch)
        finally:
            self._loader = None

    async def _load(self, batch: dict[str, asyncio.Future[str | None]]) -> None:
        """Answer a batch with one read. If it fails for anything but an outage, each
        key is read alone, so that a key the database refuses fails only its askers."""
        self.queries += 1
        try:
            found = await self._fetch(list(batch))
        except Exception as error:
            if len(batch) == 1 or is_outage(error):
                _fail(batch.values(), error)
                return
            for key, wanted in batch.items():
                await self._load({key: wanted})
            return
        for key, wanted in batch.items():
            value = found.get(key)
            if value is not None:
                self.add(key, value)
            if not wanted.done():
                wanted.set_result(value)


def _fail(waiting: Iterable[asyncio.Future[str | None]], error: Exception) -> None:
    for wanted in waiting:
        if not wanted.done():
            wanted.set_exception(error)
            wanted.exception()  # nobody may be left to read it; that is fine


async def _usernames(user_ids: list[str]) -> dict[str, str]:
    rows = await User.filter(id__in=user_ids).values_list("id", "username")
    return {str(user_id): str(username) for user_id, username in rows}


# What the rooms cache holds for a room that exists: its privacy, which never changes.
PUBLIC, PRIVATE = "public", "private"


async def _rooms(room_ids: list[str]) -> dict[str, str]:
    rows = await Room.filter(id__in=room_ids).values_list("id", "private")
    return {str(room_id): PRIVATE if private else PUBLIC for room_id, private in rows}


class Directory:
    def __init__(self, capacity: int = 50_000) -> None:
        self._usernames = LookupCache(capacity, _usernames)
        self._rooms = LookupCache(capacity, _rooms)

    @property
    def queries(self) -> int:
        """Database reads made for handshakes whose user or room was not cached."""
        return self._usernames.queries + self._rooms.queries

    async def preload(self) -> None:
        """Fill the caches before serving: every room and the most recently created
        users, as many as they hold. A failure only leaves them cold."""
        started = time.perf_counter()
        try:
            rooms = await Room.all().limit(self._rooms.capacity).values_list("id", "private")
            newest_users = (
                await User.all()
                .order_by("-created_at")
                .limit(self._usernames.capacity)
                .values_list("id", "username")
            )
        except Exception as error:
            log.warning("directory not preloaded, the first handshakes will read it: %s", error)
            return
        for room_id, private in rooms:
            self.add_room(str(room_id), private=bool(private))
        for user_id, username in reversed(newest_users):  # the newest stays longest
            self.add_user(str(user_id), str(username))
        elapsed_ms = 1000 * (time.perf_counter() - started)
        log.info(
            "directory: %d rooms, %d users cached in %.0f ms",
            len(rooms),
            len(newest_users),
            elapsed_ms,
        )

    async def username(self, user_id: str) -> str | None:
        """The user's name, or None if there is no such user (nor can be)."""
        if not is_resource_id(user_id):
            return None
        return await self._usernames.get(user_id)

    async def room_privacy(self, room_id: str) -> str | None:
        """`PUBLIC` or `PRIVATE`, or None if there is no such room (nor can be)."""
        return await self._rooms.get(room_id) if is_resource_id(room_id) else None

    def add_user(self, user_id: str, username: str) -> None:
        """Remember a user this instance just created: its first socket is seldom far."""
        self._usernames.add(user_id, username)

    def add_room(self, room_id: str, *, private: bool = False) -> None:
        """Remember a room this instance just created."""
        self._rooms.add(room_id, PRIVATE if private else PUBLIC)

    def forget_user(self, user_id: str) -> None:
        """Drop a cached user (the startup probe's, which only the cache ever held)."""
        self._usernames.discard(user_id)

    def forget_room(self, room_id: str) -> None:
        self._rooms.discard(room_id)
