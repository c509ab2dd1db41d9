"""Rooms: `POST /rooms`, `GET /rooms`, `GET /rooms/{id}`, `GET /rooms/{id}/presence`."""

from __future__ import annotations

from uuid import uuid4

from pydantic import BaseModel, Field
from quart import Blueprint, Response
from quart_schema import (
    document_response,
    operation_id,
    security_scheme,
    validate_querystring,
    validate_request,
    validate_response,
)
from tortoise.transactions import in_transaction

from quartchat.api.access import require_visible_room, visible_rooms
from quartchat.api.listing import ListQuery, NextPageHeaders, list_page
from quartchat.api.lookups import create_or_409, room_or_404, username_of
from quartchat.api.schemas import ResourceId, Timestamp, bounded_text, errors
from quartchat.rooms.chat import current_chat
from quartchat.rooms.limits import limit_creations, limit_reads
from quartchat.storage.models import Room, RoomMember
from quartchat.wire.errors import ChatError
from quartchat.wire.payloads import format_timestamp

blueprint = Blueprint("rooms", __name__)


class RoomCreate(BaseModel):
    name: bounded_text(100)  # type: ignore[valid-type]
    id: ResourceId | None = None
    private: bool = Field(
        default=False,
        description="seen only by its members (its creator first) and API_KEY; needs "
        "authentication on",
    )


class RoomOut(BaseModel):
    """A room: its id, name, creation time and whether it is private."""

    id: str
    name: str
    created_at: Timestamp
    private: bool = False

    @classmethod
    def of(cls, room: Room) -> RoomOut:
        return cls(
            id=room.id,
            name=room.name,
            created_at=format_timestamp(room.created_at),
            private=room.private,
        )


class PresenceOut(BaseModel):
    """A user with at least one socket open in the room."""

    user_id: str
    username: str


@blueprint.post("/rooms")
@operation_id("createRoom")
@limit_creations
@security_scheme([{"bearer": []}])
@validate_request(RoomCreate)
@validate_response(RoomOut, 201)
@errors(400, 401, 409, 429)
async def post_room(data: RoomCreate) -> tuple[RoomOut, int]:
    """Create a room.

    The client may choose the id; otherwise it is a UUID4. 409 if the id is taken.
    With authentication on, any user's `Authorization: Bearer` token is required (with
    OPEN_SIGNUP=false, API_KEY's). A `private` room is seen only by its members: a user
    who creates one is its first member and manages the others; 400 `AUTH_REQUIRED`
    while authentication is off.
    """
    chat = current_chat()
    caller = await chat.tokens.require_creator(user_needed=True)
    if data.private and not chat.tokens.enabled:
        detail = "private rooms need authentication (AUTH_SECRET, AUTH_PUBLIC_KEY or AUTH_JWKS_URL)"
        raise ChatError("AUTH_REQUIRED", detail)
    creator = caller.user_id if caller is not None and not caller.server else None
    if creator is not None:
        await username_of(chat.directory, creator, caller)  # a token's new user exists
    async with in_transaction():
        room = await create_or_409(
            Room,
            "ROOM_EXISTS",
            id=data.id or str(uuid4()),
            name=data.name,
            private=data.private,
            created_by=creator,
        )
        if data.private and creator is not None:
            await RoomMember.create(room_id=room.id, user_id=creator)
    chat.directory.add_room(room.id, private=room.private)
    return RoomOut.of(room), 201


@blueprint.get("/rooms")
@operation_id("listRooms")
@limit_reads
@security_scheme([{"bearer": []}])
@validate_querystring(ListQuery)
@document_response(list[RoomOut], 200, NextPageHeaders)
@errors(400, 401, 429)
async def get_rooms(query_args: ListQuery) -> Response:
    """Rooms, oldest first, a page at a time (`limit`, default 100, at most 500).

    When more follow, the `Link` header names the next page:
    `</rooms?limit=100&after=<id of the last room>>; rel="next"`. `q` searches: the room
    whose id is `q` (ignoring case) first, then rooms whose name starts with `q`,
    ignoring case, in name order. With authentication on, any user's
    `Authorization: Bearer` token is required; private rooms are listed only to their
    members (and API_KEY).
    """
    caller = await current_chat().tokens.require_bearer()
    return await list_page(
        Room, "name", query_args, visible=visible_rooms(caller), extra=("private",)
    )


@blueprint.get("/rooms/<room_id>")
@operation_id("getRoom")
@security_scheme([{"bearer": []}])
@validate_response(RoomOut)
@errors(401, 404)
async def get_room(room_id: str) -> RoomOut:
    """Fetch one room.

    With authentication on, any user's Bearer token is required; a private room is 404
    to anyone but its members."""
    chat = current_chat()
    caller = await chat.tokens.require_bearer()
    await require_visible_room(chat.directory, room_id, caller)
    return RoomOut.of(await room_or_404(room_id))


@blueprint.get("/rooms/<room_id>/presence")
@operation_id("getRoomPresence")
@security_scheme([{"bearer": []}])
@validate_response(list[PresenceOut])
@errors(401, 404)
async def get_presence(room_id: str) -> list[PresenceOut]:
    """Users with at least one open socket in the room.

    With authentication on, any user's `Authorization: Bearer` token is required; a
    private room is 404 to anyone but its members."""
    chat = current_chat()
    caller = await chat.tokens.require_bearer()
    await require_visible_room(chat.directory, room_id, caller)
    return [
        PresenceOut(user_id=user_id, username=username)
        for user_id, username in await chat.members(room_id)
    ]
