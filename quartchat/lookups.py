"""Fetching the rooms and users a request names, or failing with a 404 `APIError`."""

from __future__ import annotations

from .errors import APIError
from .models import Room, User


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
