"""Fetching the rooms and users a request names (404, without asking the database for
an id no row can have), and creating them (409)."""

from __future__ import annotations

from typing import Any, TypeVar

from tortoise.exceptions import IntegrityError

from .errors import APIError
from .models import Room, User
from .text import is_resource_id

# Said instead of echoing an id that no row can have (it may be long, or hold anything).
_NO_SUCH_ID = "ids are 1-64 characters of A-Z a-z 0-9 _ -"

RoomOrUser = TypeVar("RoomOrUser", Room, User)


async def create_or_409(model: type[RoomOrUser], code: str, **fields: Any) -> RoomOrUser:
    """Create a row whose `id` the client may have chosen; a taken id is 409 `code`."""
    try:
        return await model.create(**fields)
    except IntegrityError:
        noun = model.__name__.lower()
        raise APIError(409, code, f"{noun} {fields['id']!r} already exists") from None


async def room_or_404(room_id: str) -> Room:
    if not is_resource_id(room_id):
        raise APIError(404, "ROOM_NOT_FOUND", f"no room has this id: {_NO_SUCH_ID}")
    room = await Room.get_or_none(id=room_id)
    if room is None:
        raise APIError(404, "ROOM_NOT_FOUND", f"room {room_id!r} does not exist")
    return room


async def user_or_404(user_id: str) -> User:
    if not is_resource_id(user_id):
        raise APIError(404, "USER_NOT_FOUND", f"no user has this id: {_NO_SUCH_ID}")
    user = await User.get_or_none(id=user_id)
    if user is None:
        raise APIError(404, "USER_NOT_FOUND", f"user {user_id!r} does not exist")
    return user
