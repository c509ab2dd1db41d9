"""Rooms: `POST /rooms`, `GET /rooms`, `GET /rooms/{id}`, `GET /rooms/{id}/presence`."""

from __future__ import annotations

from uuid import uuid4

from pydantic import BaseModel
from quart import Blueprint, Response
from quart_schema import (
    document_response,
    operation_id,
    security_scheme,
    validate_querystring,
    validate_request,
    validate_response,
)

from ..chat import current_chat
from ..limits import limit_creations, limit_reads
from ..listing import ListQuery, NextPageHeaders, list_page
from ..lookups import create_or_409, require_room, room_or_404
from ..models import Room
from ..payloads import format_timestamp
from ..schemas import ResourceId, Timestamp, bounded_text, errors

blueprint = Blueprint("rooms", __name__)


class RoomCreate(BaseModel):
    name: bounded_text(100)  # type: ignore[valid-type]
    id: ResourceId | None = None


class RoomOut(BaseModel):
    """A room: its id, name and creation time."""

    id: str
    name: str
    created_at: Timestamp

    @classmethod
    def of(cls, room: Room) -> RoomOut:
        return cls(id=room.id, name=room.name, created_at=format_timestamp(room.created_at))


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
    With AUTH_SECRET set, any user's `Authorization: Bearer` token is required.
    """
    chat = current_chat()
    await chat.tokens.require_creator(user_needed=True)
    room = await create_or_409(Room, "ROOM_EXISTS", id=data.id or str(uuid4()), name=data.name)
    chat.directory.add_room(room.id)
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
    ignoring case, in name order. With AUTH_SECRET set, any user's
    `Authorization: Bearer` token is required.
    """
    await current_chat().tokens.require_bearer()
    return await list_page(Room, "name", query_args)


@blueprint.get("/rooms/<room_id>")
@operation_id("getRoom")
@security_scheme([{"bearer": []}])
@validate_response(RoomOut)
@errors(401, 404)
async def get_room(room_id: str) -> RoomOut:
    """Fetch one room (with AUTH_SECRET set, any user's Bearer token is required)."""
    await current_chat().tokens.require_bearer()
    return RoomOut.of(await room_or_404(room_id))


@blueprint.get("/rooms/<room_id>/presence")
@operation_id("getRoomPresence")
@security_scheme([{"bearer": []}])
@validate_response(list[PresenceOut])
@errors(401, 404)
async def get_presence(room_id: str) -> list[PresenceOut]:
    """Users with at least one open socket in the room.

    With AUTH_SECRET set, any user's `Authorization: Bearer` token is required."""
    chat = current_chat()
    await chat.tokens.require_bearer()
    await require_room(chat.directory, room_id)
    return [
        PresenceOut(user_id=user_id, username=username)
        for user_id, username in await chat.members(room_id)
    ]
