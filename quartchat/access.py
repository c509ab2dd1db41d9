"""Who may see a room. Public rooms: anyone. A private room: its members (a RoomMember
row, or a token whose `rooms` claim names it) and the app's backend (API_KEY); to
anyone else it does not exist (REST answers 404 `ROOM_NOT_FOUND`), except that a socket
is told why it is closed (4403). Its creator, and the app's backend, manage members."""

from __future__ import annotations

from tortoise.expressions import Q, Subquery

from .auth import Identity
from .directory import PRIVATE, Directory
from .errors import APIError
from .lookups import not_found
from .models import Room, RoomMember


async def is_member(room_id: str, caller: Identity | None) -> bool:
    """Whether `caller` is one of a private room's members (the app's backend counts)."""
    if caller is None:
        return False
    if caller.server or room_id in caller.rooms:
        return True
    return await RoomMember.exists(room_id=room_id, user_id=caller.user_id)


async def may_see(directory: Directory, room_id: str, caller: Identity | None) -> bool:
    privacy = await directory.room_privacy(room_id)
    if privacy is None:
        return False
    return privacy != PRIVATE or await is_member(room_id, caller)


async def require_visible_room(directory: Directory, room_id: str, caller: Identity | None) -> None:
    """404 unless the room exists and `caller` may see it."""
    if not await may_see(directory, room_id, caller):
        raise not_found("room", "ROOM_NOT_FOUND", room_id)


def require_manager(room: Room, caller: Identity | None) -> None:
    """403 unless `caller` may manage the private room's members."""
    if caller is None or not (caller.server or caller.user_id == room.created_by):
        raise APIError(403, "FORBIDDEN", "only the room's creator or API_KEY manages members")


def visible_rooms(caller: Identity | None) -> Q | None:
    """The rooms `GET /rooms` lists to `caller` (None: every room, for API_KEY)."""
    if caller is not None and caller.server:
        return None
    visible = Q(private=False)
    if caller is not None:
        member_of = RoomMember.filter(user_id=caller.user_id).values("room_id")
        visible |= Q(id__in=Subquery(member_of))
        if caller.rooms:
            visible |= Q(id__in=sorted(caller.rooms))
    return visible
