"""Every frame of the chat socket, declared once, with the error and close codes.

`protocol` parses the client frames of `CLIENT_FRAMES` (a property test holds its checks
to the schemas below), the builders in `payloads` return these TypedDicts and build only
these event types (mypy holds them to it), and `/asyncapi.json` publishes the JSON
Schemas generated from them.
Nothing here runs per frame: the builders stay plain dicts encoded by orjson.
"""

from __future__ import annotations

import re
from enum import IntEnum
from functools import cache
from typing import Annotated, Any, Literal, NotRequired

from pydantic import ConfigDict, Field, TypeAdapter, with_config
from typing_extensions import TypedDict  # pydantic needs it on Python < 3.12

from quartchat.wire.text import ID_PATTERN, REFUSED_IN_CONTENT, VISIBLE

Schema = dict[str, Any]

UUID_PATTERN = r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"
TIMESTAMP_PATTERN = r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z$"

MessageId = Annotated[
    str,
    Field(
        pattern=UUID_PATTERN,
        json_schema_extra={"format": "uuid"},
        examples=["6f1c3b9e-2a4d-4c8e-9f10-5b7a2d3e4f60"],
    ),
]
RoomId = Annotated[str, Field(pattern=ID_PATTERN, examples=["test-room"])]
UserId = Annotated[str, Field(pattern=ID_PATTERN, examples=["test-user"])]
Username = Annotated[str, Field(min_length=1, max_length=64, examples=["John Doe"])]
Timestamp = Annotated[
    str,
    Field(
        pattern=TIMESTAMP_PATTERN,
        json_schema_extra={"format": "date-time"},
        description="ISO 8601 UTC with microseconds and a `Z`",
        examples=["2025-10-21T12:00:00.123456Z"],
    ),
]


# Client -> server. Unknown fields are ignored, so these schemas allow them.


@with_config(ConfigDict(title="message (client)"))
class MessageIn(TypedDict):
    """Store a message, then broadcast it to every socket in the room, the sender's
    included. `type` may be left out: `{"content": "…"}` is a message too."""

    type: NotRequired[Literal["message"]]
    content: Annotated[
        str,
        Field(
            description="the text: at most MAX_MESSAGE_CHARS characters, some of them "
            "visible, and of the controls only \\n and \\t",
        ),
    ]
    id: NotRequired[
        Annotated[
            str | None,
            Field(
                pattern=UUID_PATTERN,
                description="a client-chosen UUID: a message with an id already stored "
                "is not stored or broadcast again, so a resend after a reconnect is safe",
            ),
        ]
    ]


@with_config(ConfigDict(title="ping"))
class PingIn(TypedDict):
    """Ask for a `pong` to this socket only (a keep-alive that measures the round trip)."""

    type: Literal["ping"]


@with_config(ConfigDict(title="typing (client)"))
class TypingIn(TypedDict):
    """Tell the room's other sockets that this user is typing; nothing is stored."""

    type: Literal["typing"]


# The frame types a client may send; a frame without `type` is a message.
CLIENT_FRAMES: dict[str, type[Any]] = {"message": MessageIn, "ping": PingIn, "typing": TypingIn}
DEFAULT_CLIENT_FRAME = "message"


# Server -> client. Exactly these fields: a test fails on any other.


@with_config(ConfigDict(extra="forbid", title="message"))
class MessageFrame(TypedDict):
    """A stored message, to every socket in the room (sender included), in `seq` order;
    also what `GET /rooms/{id}/messages` lists and the replay of `?after=`/`?since=`."""

    type: Literal["message"]
    id: MessageId
    user_id: UserId
    username: Username
    content: Annotated[str, Field(min_length=1)]
    timestamp: Timestamp
    room_id: RoomId
    seq: Annotated[int, Field(ge=1, description="1, 2, 3… per room, without gaps")]


@with_config(ConfigDict(extra="forbid", title="pong"))
class PongFrame(TypedDict):
    """The answer to a `ping`, to that socket only."""

    type: Literal["pong"]
    timestamp: Timestamp


@with_config(ConfigDict(extra="forbid", title="typing"))
class TypingFrame(TypedDict):
    """Another user in the room is typing."""

    type: Literal["typing"]
    user_id: UserId
    username: Username
    room_id: RoomId


@with_config(ConfigDict(extra="forbid", title="user_joined"))
class UserJoinedFrame(TypedDict):
    """A user's first socket in the room opened (sent to the others)."""

    type: Literal["user_joined"]
    user_id: UserId
    username: Username
    room_id: RoomId
    timestamp: Timestamp


@with_config(ConfigDict(extra="forbid", title="user_left"))
class UserLeftFrame(TypedDict):
    """A user's last socket in the room closed (or its instance stopped answering)."""

    type: Literal["user_left"]
    user_id: UserId
    username: Username
    room_id: RoomId
    timestamp: Timestamp


# The codes of `error` frames; each refused frame is not handled and the socket stays open.
ERROR_CODES: dict[str, str] = {
    "INVALID_JSON": "the frame is not JSON, not a JSON object, or a binary frame: frames "
    "are JSON text",
    "UNKNOWN_TYPE": "`type` is not one of the client frame types",
    "INVALID_CONTENT": "`content` is missing, not a string, blank, over MAX_MESSAGE_CHARS, "
    "or holds a character refused in content",
    "INVALID_ID": "`id` is not a UUID string",
    "MESSAGE_ID_CONFLICT": "the message's `id` belongs to another message; nothing was stored",
    "UNAVAILABLE": "the database failed: the message named by `id` was not stored and "
    "nobody saw it; send it again",
    "MESSAGE_REJECTED": "the database refused this one message, named by `id`; it was not "
    "stored, and sending it unchanged will fail again",
    "INVALID_AFTER": "`?after=` names no message of this room; live frames follow",
    "INVALID_SINCE": "`?since=` is not an ISO 8601 timestamp; live frames follow",
    "INVALID_REPLAY": "both `?after=` and `?since=` were given (REST: more than one of "
    "`since`, `after`, `before`); live frames follow",
    "RATE_LIMITED": "over the socket's frame budget: the frame was not handled; send it "
    "again after `retry_after` seconds",
}


# The optional fields of an `error` frame that some codes always carry.
ERROR_FIELDS: dict[str, tuple[str, ...]] = {
    "RATE_LIMITED": ("retry_after",),
    "UNAVAILABLE": ("id",),
    "MESSAGE_ID_CONFLICT": ("id",),
    "MESSAGE_REJECTED": ("id",),
}


@with_config(ConfigDict(extra="forbid", title="error"))
class ErrorFrame(TypedDict):
    """A frame was refused, or a message was not stored; the socket stays open."""

    type: Literal["error"]
    code: str  # its schema, one entry per ERROR_CODES, is added by `server_frame_schemas`
    detail: Annotated[str, Field(min_length=1, description="a human explanation")]
    retry_after: NotRequired[
        Annotated[float, Field(ge=0, description="RATE_LIMITED: seconds to wait")]
    ]
    id: NotRequired[
        Annotated[
            str,
            Field(
                pattern=UUID_PATTERN,
                json_schema_extra={"format": "uuid"},
                description="the message this error is about (UNAVAILABLE, "
                "MESSAGE_ID_CONFLICT, MESSAGE_REJECTED; and any refusal of a frame that "
                "carried a valid id, such as RATE_LIMITED or INVALID_CONTENT)",
            ),
        ]
    ]


# The frames `payloads.event_frame` builds: every server frame but `message` and `error`.
EventType = Literal["pong", "typing", "user_joined", "user_left"]

SERVER_FRAMES: dict[str, type[Any]] = {
    "message": MessageFrame,
    "pong": PongFrame,
    "typing": TypingFrame,
    "user_joined": UserJoinedFrame,
    "user_left": UserLeftFrame,
    "error": ErrorFrame,
}


class CloseCode(IntEnum):
    """Every close code the server sends; `CLOSE_CODES` says what each means."""

    NOT_FOUND = 4404
    UNAUTHORIZED = 4401
    TOO_SLOW = 4008
    MESSAGE_TOO_BIG = 1009
    SERVICE_RESTART = 1012
    POLICY_VIOLATION = 1008
    # wsproto's, for a frame it cannot parse, which frameguard makes Hypercorn send
    INVALID_FRAME_PAYLOAD_DATA = 1007
    PROTOCOL_ERROR = 1002
    TOO_MANY_SOCKETS = 4429
    NOT_A_MEMBER = 4403
    INTERNAL_ERROR = 1011


# What each close code means and what the client should do: docs/protocol.md's table.
CLOSE_CODES: dict[CloseCode, tuple[str, str]] = {
    CloseCode.NOT_FOUND: (
        "the room or the user does not exist, or the URL's id is not a valid id, so none can "
        "(the reason names which)",
        "create it, then connect again",
    ),
    CloseCode.NOT_A_MEMBER: (
        "the room is private and the user is not one of its members, or was just removed from it",
        "ask to be added (by the room's creator or the app); quartchat.js reports "
        "`NOT_A_MEMBER` and never retries",
    ),
    CloseCode.UNAUTHORIZED: (
        "with authentication on: no token (neither subprotocol `token.<TOKEN>` nor "
        "`?token=`), or a token that is expired, forged or another user's",
        "get a token (from the app, `POST /users`, `POST /users/{id}/token`)",
    ),
    CloseCode.TOO_SLOW: (
        "the client read too slowly and `SEND_QUEUE_SIZE` frames piled up for it",
        "reconnect with `?after=` to replay what it missed, after a random delay, longer "
        "each time in a row",
    ),
    CloseCode.MESSAGE_TOO_BIG: ("a frame over 64 KiB", "send smaller frames"),
    CloseCode.SERVICE_RESTART: (
        "the server is restarting (every redeploy)",
        "reconnect (with `?after=`) after a random delay of a few seconds, so that all clients "
        "do not arrive at once",
    ),
    CloseCode.POLICY_VIOLATION: (
        "the socket, or its user's messages, kept going far over the rate limit",
        "slow down, then reconnect",
    ),
    CloseCode.INVALID_FRAME_PAYLOAD_DATA: ("a text frame that is not UTF-8", "fix the client"),
    CloseCode.PROTOCOL_ERROR: (
        "a frame that breaks RFC 6455 (RSV bits without an extension, a reserved opcode, an "
        "unmasked client frame, a continuation without a start)",
        "fix the client",
    ),
    CloseCode.TOO_MANY_SOCKETS: (
        "too many sockets open for this user (or address), or opened too fast: "
        "the reason says which, and when to retry",
        "close another one first, or wait as long as the reason says",
    ),
    CloseCode.INTERNAL_ERROR: ("an internal error", "reconnect"),
}


def _schema(frame: type[Any]) -> Schema:
    """The frame's JSON Schema, without pydantic's per-field titles ("User Id": the
    field names say it) and with its docstring on one line."""
    schema = TypeAdapter(frame).json_schema()
    schema["description"] = " ".join(schema["description"].split())
    for field in schema["properties"].values():
        field.pop("title", None)
    return schema


def _portable(pattern: str) -> str:
    """A pattern of `text` in the syntax JSON Schema validators share: astral characters
    as themselves rather than `\\U` escapes, and without the surrogates (no JSON document
    holds a lone one, and validators in Rust refuse them in a pattern)."""
    pattern = pattern.replace("\\ud800-\\udfff", "")
    return re.sub(r"\\U([0-9a-fA-F]{8})", lambda escape: chr(int(escape[1], 16)), pattern)


@cache
def client_frame_schemas(max_chars: int) -> dict[str, Schema]:
    """The JSON Schema of each client frame type, with the server's MAX_MESSAGE_CHARS and
    the characters `text` refuses in content."""
    schemas = {name: _schema(frame) for name, frame in CLIENT_FRAMES.items()}
    content = schemas["message"]["properties"]["content"]
    content["maxLength"] = max_chars
    content["not"] = {"pattern": _portable(REFUSED_IN_CONTENT.pattern)}
    content["pattern"] = _portable(VISIBLE.pattern)
    return schemas


@cache
def server_frame_schemas() -> dict[str, Schema]:
    """The JSON Schema of each server frame type."""
    schemas = {name: _schema(frame) for name, frame in SERVER_FRAMES.items()}
    schemas["error"]["properties"]["code"] = {
        "type": "string",
        "oneOf": [{"const": code, "description": meaning} for code, meaning in ERROR_CODES.items()],
    }
    schemas["error"]["allOf"] = [
        {"if": {"properties": {"code": {"const": code}}}, "then": {"required": list(fields)}}
        for code, fields in ERROR_FIELDS.items()
    ]
    return schemas
