"""Members of private rooms: `GET /rooms/{id}/members`, `PUT` and `DELETE
/rooms/{id}/members/{user_id}`."""

from __future__ import annotations

from pydantic import BaseModel, Field
from quart import Blueprint, Response, jsonify
from quart_schema import (
    document_response,
    operation_id,
    security_scheme,
    validate_querystring,
    validate_response,
)

from quartchat.api.access import require_manager, require_visible_room
from quartchat.api.lookups import room_or_404, user_or_404
from quartchat.api.schemas import Timestamp, errors
from quartchat.rooms.auth import Identity
from quartchat.rooms.chat import Chat, current_chat
from quartchat.storage.models import Room, RoomMember
from quartchat.wire.errors import ChatError
from quartchat.wire.payloads import format_timestamp

blueprint = Blueprint("members", __name__)


class MemberOut(BaseModel):
    """A member of a private room, and since when."""

    room_id: str
    user_id: str
    username: str
    added_at: Timestamp


class MembersQuery(BaseModel):
    limit: int = Field(default=100, ge=1, le=500, description="members per page")
    after: str | None = Field(
        default=None, description="the user id of the last member of the previous page"
    )


async def _private_room(chat: Chat, room_id: str, caller: Identity | None) -> Room:
    await require_visible_room(chat.directory, room_id, caller)
    room = await room_or_404(room_id)
    if not room.private:
        raise ChatError("ROOM_NOT_PRIVATE", "public rooms have no members: anyone may join")
    return room


@blueprint.get("/rooms/<room_id>/members")
@operation_id("listRoomMembers")
@security_scheme([{"bearer": []}])
@validate_querystring(MembersQuery)
@document_response(list[MemberOut])
@errors(400, 401, 404)
async def get_members(room_id: str, query_args: MembersQuery) -> Response:
    """A private room's members, in the order they were added, a page at a time.

    For its members and API_KEY; 404 to anyone else, as the room itself. `after` is
    the user id of the last member of the previous page."""
    chat = current_chat()
    caller = await chat.tokens.require_bearer()
    await _private_room(chat, room_id, caller)
    rows = RoomMember.filter(room_id=room_id)
    if query_args.after is not None:
        last = await RoomMember.get_or_none(room_id=room_id, user_id=query_args.after)
        if last is None:
            raise ChatError("INVALID_AFTER", "after= is no member of this room")
        rows = rows.filter(id__gt=last.id)
    page = await rows.order_by("id").limit(query_args.limit).prefetch_related("user")
    return jsonify([_member(member, member.user.username) for member in page])


@blueprint.put("/rooms/<room_id>/members/<user_id>")
@operation_id("addRoomMember")
@security_scheme([{"bearer": []}])
@validate_response(MemberOut, 201)
@validate_response(MemberOut, 200)
@errors(400, 401, 403, 404)
async def put_member(room_id: str, user_id: str) -> tuple[MemberOut, int]:
    """Add a user to a private room (201; 200 if already a member).

    For the room's creator and API_KEY (403 for other members, 404 for anyone else);
    404 `USER_NOT_FOUND` for a user that does not exist."""
    chat = current_chat()
    caller = await chat.tokens.require_bearer()
    room = await _private_room(chat, room_id, caller)
    require_manager(room, caller)
    user = await user_or_404(user_id)
    member, created = await RoomMember.get_or_create(room_id=room.id, user_id=user.id)
    return MemberOut(**_member(member, user.username)), 201 if created else 200


@blueprint.delete("/rooms/<room_id>/members/<user_id>")
@operation_id("removeRoomMember")
@security_scheme([{"bearer": []}])
@errors(400, 401, 403, 404)
async def delete_member(room_id: str, user_id: str) -> tuple[str, int]:
    """Remove a user from a private room (204, also when it was no member).

    For the room's creator and API_KEY. It takes effect before the answer on this
    instance, and within a second on the others: the user's sockets in the room are
    closed with 4403, and nothing of the room reaches them, or comes from them, after."""
    chat = current_chat()
    caller = await chat.tokens.require_bearer()
    room = await _private_room(chat, room_id, caller)
    require_manager(room, caller)
    await RoomMember.filter(room_id=room.id, user_id=user_id).delete()
    chat.relay.evict(room.id, user_id)
    return "", 204


def _member(member: RoomMember, username: str) -> dict[str, str]:
    return {
        "room_id": member.room_id,
        "user_id": member.user_id,
        "username": username,
        "added_at": format_timestamp(member.added_at),
    }
