"""Who and where: usernames and room existence, cached for the socket handshake.

Neither changes once created (the API renames and deletes nothing), so after the first
connection (or its creation through this instance) a reconnect storm opens sockets
without asking the database again. Only positive answers are kept: a user or room may
be created after a miss.
"""

from __future__ import annotations

from collections import OrderedDict

from .models import Room, User


class Directory:
    def __init__(self, capacity: int = 50_000) -> None:
        self._capacity = capacity
        self._usernames: OrderedDict[str, str] = OrderedDict()
        self._rooms: OrderedDict[str, None] = OrderedDict()

    async def username(self, user_id: str) -> str | None:
        """The user's name, or None if there is no such user."""
        username = self._usernames.get(user_id)
        if username is None:
            names = await User.filter(id=user_id).values_list("username", flat=True)
            if not names:
                return None
            username = str(names[0])
            self._remember(self._usernames, user_id, username)
        else:
            self._usernames.move_to_end(user_id)
        return username

    async def room_exists(self, room_id: str) -> bool:
        if room_id in self._rooms:
            self._rooms.move_to_end(room_id)
            return True
        if not await Room.exists(id=room_id):
            return False
        self._remember(self._rooms, room_id, None)
        return True

    def add_user(self, user_id: str, username: str) -> None:
        """Remember a user this instance just created: its first socket is seldom far."""
        self._remember(self._usernames, user_id, username)

    def add_room(self, room_id: str) -> None:
        """Remember a room this instance just created."""
        self._remember(self._rooms, room_id, None)

    def _remember(
        self, cache: OrderedDict[str, str] | OrderedDict[str, None], key: str, value: str | None
    ) -> None:
        cache[key] = value  # type: ignore[assignment]
        if len(cache) > self._capacity:
            cache.popitem(last=False)
