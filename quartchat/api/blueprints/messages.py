"""Messages over REST: the polling fallback, `GET`/`POST /rooms/{id}/messages`."""

from __future__ import annotations

from typing import Any
from uuid import UUID, uuid4

from pydantic import BaseModel, Field
from quart import Blueprint, Response, jsonify
from quart_schema import (
    document_response,
    operation_id,
    security_scheme,
    validate_querystring,
    validate_request,
)

from quartchat.api.access import require_visible_room
from quartchat.api.lookups import username_of
from quartchat.api.replay import parse_since, require_one_point, seq_of
from quartchat.api.schemas import ResourceId, Timestamp, errors
from quartchat.rooms.chat import current_chat
from quartchat.rooms.limits import limit_reads, require_message_budget
from quartchat.storage.store import Draft, Outcome
from quartchat.wire.errors import ChatError
from quartchat.wire.protocol import parse_message_id, validate_content

blueprint = Blueprint("messages", __name__)

MAX_LIMIT = 500


class HistoryQuery(BaseModel):
    since: str | None = Field(
        default=None,
        description="ISO 8601 timestamp: only messages strictly after it",
        json_schema_extra={"format": "date-time"},
    )
    after: str | None = Field(
        default=None,
        description="a message id: only messages after it",
        json_schema_extra={"format": "uuid"},
    )
    before: str | None = Field(
        default=None,
        description="a message id: the `limit` messages just before it (scroll-back)",
        json_schema_extra={"format": "uuid"},
    )
    limit: int = Field(default=50, ge=1, le=MAX_LIMIT)


class MessageCreate(BaseModel):
    user_id: ResourceId
    # Typed Any so that a wrong type gets this API's own INVALID_CONTENT / INVALID_ID;
    # the schema still says what is expected.
    content: Any = Field(
        description="1 to MAX_MESSAGE_CHARS characters, not blank",
        json_schema_extra={"type": "string", "minLength": 1, "pattern": r"\S"},
    )
    id: Any = Field(
        default=None,
        description="a UUID chosen by the client (idempotency key)",
        json_schema_extra={"type": "string", "format": "uuid"},
    )


class MessageOut(BaseModel):
    """A stored message, as sockets receive it."""

    type: str = "message"
    id: UUID
    user_id: str
    username: str
    content: str
    timestamp: Timestamp
    room_id: str
    seq: int


@blueprint.get("/rooms/<room_id>/messages")
@operation_id("listMessages")
@limit_reads
@security_scheme([{"bearer": []}])
@validate_querystring(HistoryQuery)
@document_response(list[MessageOut])
@errors(400, 401, 404, 429)
async def get_messages(room_id: str, query_args: HistoryQuery) -> Response:
    """Messages of a room, oldest first, as a JSON array.

    `since` (a timestamp; `Z`, `+00:00` or a space for `+`) or `after` (a message id)
    returns what came strictly after it; `before` (a message id) the `limit` messages
    just before it, to scroll back; with none of them, the latest `limit` messages.
    Poll with the timestamp of the last message received to miss nothing. With
    authentication on, any user's `Authorization: Bearer` token is required; a private
    room is 404 to anyone but its members.
    """
    chat = current_chat()
    caller = await chat.tokens.require_bearer()
    since, after, before = query_args.since, query_args.after, query_args.before
    require_one_point(since=since, after=after, before=before)
    await require_visible_room(chat.directory, room_id, caller)
    store = chat.store
    since_time = parse_since(since) if since is not None else None
    after_seq = await seq_of(store, room_id, after, "after") if after is not None else None
    before_seq = await seq_of(store, room_id, before, "before") if before is not None else None
    messages = await store.history(
        room_id,
        since=since_time,
        after_seq=after_seq,
        before_seq=before_seq,
        limit=query_args.limit,
    )
    return jsonify([message.payload() for message in messages])


@blueprint.post("/rooms/<room_id>/messages")
@operation_id("createMessage")
@security_scheme([{"bearer": []}])
@validate_request(MessageCreate)
@document_response(MessageOut, 201)
@document_response(MessageOut, 200)
@errors(400, 401, 403, 404, 409, 422, 429)
async def post_message(room_id: str, data: MessageCreate) -> tuple[Response, int]:
    """Post a message as `user_id`: stored, then broadcast to the room's sockets.

    A client-chosen `id` that is already stored returns that message with 200 and
    broadcasts nothing; an `id` used by another room or user is 409. With
    authentication on, `Authorization: Bearer` must carry `user_id`'s token (401, 403),
    or API_KEY; a private room is 404 to anyone but its members. A user's
    messages over REST and over sockets draw from one rate limit (429, `Retry-After`).
    """
    chat = current_chat()
    caller = await chat.tokens.require_bearer(data.user_id)
    content = validate_content(data.content, chat.settings.max_message_chars)
    message_id = parse_message_id(data.id)
    await require_visible_room(chat.directory, room_id, caller)
    username = await username_of(chat.directory, data.user_id, caller)
    require_message_budget(data.user_id)
    stored = await chat.store.submit(
        Draft(
            id=message_id or uuid4(),
            room_id=room_id,
            user_id=data.user_id,
            username=username,
            content=content,
            client_id=message_id is not None,
        )
    )
    if stored.outcome is Outcome.CONFLICT:
        raise ChatError("MESSAGE_ID_CONFLICT", f"message id {message_id} is already used")
    status = 201 if stored.outcome is Outcome.CREATED else 200
    return jsonify(stored.message.payload()), status
