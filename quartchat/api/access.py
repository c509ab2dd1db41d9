"""Who may see a room. Public rooms: anyone. A private room: its members (a RoomMember
row, or a token whose `rooms` claim names it) and the app's backend (API_KEY); to
anyone else it does not exist (REST answers 404 `ROOM_NOT_FOUND`), except that a socket
is told why it is closed (4403). Its creator, and the app's backend, manage members."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from tortoise.expressions import Q, Subquery

from quartchat.api.lookups import not_found
from quartchat.rooms.auth import Identity
from quartchat.rooms.directory import PRIVATE, Directory
from quartchat.storage.models import Room, RoomMember
from quartchat.storage.search import Visibility
from quartchat.wire.errors import ChatError


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
        raise ChatError("FORBIDDEN", "only the room's creator or API_KEY manages members")


def visible_rooms(caller: Identity | None) -> Visibility | None:
    """The rooms `GET /rooms` lists (and searches) for `caller`; None: every room (the
    app's backend)."""
    if caller is not None and caller.server:
        return None
    return RoomsVisibleTo(caller)


@dataclass(frozen=True, slots=True)
class RoomsVisibleTo:
    """Public rooms, and the private ones `caller` is a member of (search.Visibility)."""

    caller: Identity | None

    def q(self) -> Q:
        visible = Q(private=False)
        if self.caller is not None:
            member_of = RoomMember.filter(user_id=self.caller.user_id).values("room_id")
            visible |= Q(id__in=Subquery(member_of))
            if self.caller.rooms:
                visible |= Q(id__in=sorted(self.caller.rooms))
        return visible

    def sql(self, bind: Callable[[Any], str]) -> str:
        parts = ["NOT private"]
        if self.caller is not None:
            members = "SELECT room_id FROM room_members WHERE user_id = "
            parts.append(f"id IN ({members}{bind(self.caller.user_id)})")
            if self.caller.rooms:
                granted = ", ".join(bind(room) for room in sorted(self.caller.rooms))
                parts.append(f"id IN ({granted})")
        return f"({' OR '.join(parts)})"
