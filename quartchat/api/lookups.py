"""Fetching the rooms and users a request names (404, without asking the database for
an id no row can have), and creating them (409). Requests that only need to know a room
exists or a user's name ask the directory's cache, as socket handshakes do."""

from __future__ import annotations

from typing import Any

from tortoise.exceptions import IntegrityError

from quartchat.rooms.auth import Identity
from quartchat.rooms.directory import Directory
from quartchat.storage.models import Room, RoomOrUser, User
from quartchat.wire.errors import ChatError
from quartchat.wire.text import is_resource_id

# Said instead of echoing an id that no row can have (it may be long, or hold anything).
_NO_SUCH_ID = "ids are 1-64 characters of A-Z a-z 0-9 _ -"


async def create_or_409(model: type[RoomOrUser], code: str, **fields: Any) -> RoomOrUser:
    """Create a row whose `id` the client may have chosen; a taken id is 409 `code`."""
    try:
        return await model.create(**fields)
    except IntegrityError:
        noun = model.__name__.lower()
        raise ChatError(code, f"{noun} {fields['id']!r} already exists") from None


def not_found(noun: str, code: str, key: str) -> ChatError:
    if not is_resource_id(key):
        return ChatError(code, f"no {noun} has this id: {_NO_SUCH_ID}")
    return ChatError(code, f"{noun} {key!r} does not exist")


async def _row_or_404(model: type[RoomOrUser], code: str, key: str) -> RoomOrUser:
    row = await model.get_or_none(id=key) if is_resource_id(key) else None
    if row is None:
        raise not_found(model.__name__.lower(), code, key)
    return row


async def room_or_404(room_id: str) -> Room:
    """The room's row (for answers that show it)."""
    return await _row_or_404(Room, "ROOM_NOT_FOUND", room_id)


async def user_or_404(user_id: str) -> User:
    """The user's row (for answers that show it)."""
    return await _row_or_404(User, "USER_NOT_FOUND", user_id)


async def username_or_404(directory: Directory, user_id: str) -> str:
    """The user's name from the directory's cache (as sockets get it), else 404."""
    username = await directory.username(user_id)
    if username is None:
        raise not_found("user", "USER_NOT_FOUND", user_id)
    return username


async def username_of(directory: Directory, user_id: str, vouched: Identity | None) -> str:
    """The user's name; a user that a verified token names (`vouched`: the app's backend
    signed it) but that does not exist yet is created first, named by the token's `name`
    or else its id. Anyone else: 404 as `username_or_404`."""
    username = await directory.username(user_id)
    if username is not None:
        return username
    if vouched is None or vouched.server or vouched.user_id != user_id:
        raise not_found("user", "USER_NOT_FOUND", user_id)
    username = vouched.name or user_id
    try:
        await User.create(id=user_id, username=username)
    except IntegrityError:  # created meanwhile (another socket, another instance)
        return await username_or_404(directory, user_id)
    directory.add_user(user_id, username)
    return username
