"""Fetching the rooms and users a request names (404), and creating them (409)."""

from __future__ import annotations

from typing import Any, TypeVar

from tortoise.exceptions import IntegrityError

from .errors import APIError
from .models import Room, User

RoomOrUser = TypeVar("RoomOrUser", Room, User)


async def create_or_409(model: type[RoomOrUser], code: str, **fields: Any) -> RoomOrUser:
    """Create a row whose `id` the client may have chosen; a taken id is 409 `code`."""
    try:
        return await model.create(**fields)
    except IntegrityError:
        noun = model.__name__.lower()
        raise APIError(409, code, f"{noun} {fields['id']!r} already exists") from None


async def room_or_404(room_id: str) -> Room:
    room = await Room.get_or_none(id=room_id)
    if room is None:
        raise APIError(404, "ROOM_NOT_FOUND", f"room {room_id!r} does not exist")
    return room


async def user_or_404(user_id: str) -> User:
    user = await User.get_or_none(id=user_id)
    if user is None:
        raise APIError(404, "USER_NOT_FOUND", f"user {user_id!r} does not exist")
    return user
