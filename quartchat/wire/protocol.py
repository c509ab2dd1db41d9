"""Validation of what clients send: socket frames, message content and message ids.

Every rejection is an `ChatError` whose code and detail reach the client, as an HTTP
response on REST or as an `error` frame on the socket.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal
from uuid import UUID

import orjson
from quart import Quart
from quart.json.provider import JSONProvider

from quartchat.wire.errors import ChatError
from quartchat.wire.frames import CLIENT_FRAMES, DEFAULT_CLIENT_FRAME
from quartchat.wire.text import content_problem

FrameType = Literal["message", "ping", "typing"]
FRAME_TYPES: tuple[str, ...] = tuple(CLIENT_FRAMES)


@dataclass(frozen=True, slots=True)
class ClientFrame:
    """A valid frame from a socket; `content` is set only for messages."""

    type: FrameType
    content: str = ""
    message_id: UUID | None = None


def validate_content(value: object, max_chars: int) -> str:
    """Message content as sent, or INVALID_CONTENT (see `text.content_problem`)."""
    if not isinstance(value, str):
        raise ChatError("INVALID_CONTENT", "content must be a string")
    if len(value) > max_chars:
        raise ChatError(
            "INVALID_CONTENT", f"content is {len(value)} characters; the limit is {max_chars}"
        )
    problem = content_problem(value)
    if problem is not None:
        raise ChatError("INVALID_CONTENT", problem)
    return value


def parse_message_id(value: object) -> UUID | None:
    """A client-chosen message id (a UUID string), or None when the client chose none."""
    if value is None:
        return None
    if isinstance(value, str):
        try:
            return UUID(value)
        except ValueError:
            pass
    raise ChatError("INVALID_ID", "id must be a UUID string")


def refuse_deep_json(app: Quart) -> None:
    """Make a request body nested deeper than the JSON parser can go bad JSON (400
    `INVALID_REQUEST`) rather than a `RecursionError` (500). Call it once QuartSchema
    has set the app's JSON provider, which this one extends.

    Like the socket's parser, a key given twice keeps its last value."""
    base: type[JSONProvider] = type(app.json)

    class ClientJSONProvider(base):  # type: ignore[valid-type,misc]
        def loads(self, s: str | bytes, **kwargs: Any) -> Any:
            try:
                return super().loads(s, **kwargs)
            except RecursionError:
                raise ValueError("the JSON is nested too deeply") from None

    app.json = ClientJSONProvider(app)


def parse_client_frame(raw: str | bytes, max_chars: int) -> ClientFrame:
    """Parse one socket frame, one of `frames.CLIENT_FRAMES` (whose schemas
    `/asyncapi.json` publishes); `{"content": …}` without a type is a message.

    Binary frames are refused: the protocol is JSON text, and a binary frame that
    happened to hold JSON would otherwise work by accident in one client and not in
    the next."""
    if not isinstance(raw, str):
        raise ChatError("INVALID_JSON", "binary frames are not accepted; send JSON as text")
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError as error:
        # orjson refuses a lone surrogate escape ("\ud800") while parsing; REST's parser
        # takes it and content validation refuses it, so the socket says the same.
        if "surrogate" in str(error):
            detail = "content holds a lone surrogate (\\ud800-\\udfff), which is not text"
            raise ChatError("INVALID_CONTENT", detail) from None
        raise ChatError("INVALID_JSON", "the frame is not valid JSON") from None
    if not isinstance(data, dict):
        raise ChatError("INVALID_JSON", "the frame must be a JSON object")
    frame_type = data.get("type", DEFAULT_CLIENT_FRAME)
    if frame_type == "ping":
        return ClientFrame("ping")
    if frame_type == "typing":
        return ClientFrame("typing")
    if frame_type != "message":
        known = ", ".join(FRAME_TYPES)
        shown = repr(frame_type)[:64]
        raise ChatError("UNKNOWN_TYPE", f"unknown frame type {shown}; use one of {known}")
    content = validate_content(data.get("content"), max_chars)
    return ClientFrame("message", content, parse_message_id(data.get("id")))


def refused_message_id(raw: str | bytes) -> str | None:
    """The `id` a refused frame carried, if it is a UUID, so that the error frame can
    name the message the client should send again; None for anything else."""
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return None
    if not isinstance(data, dict):
        return None
    try:
        message_id = parse_message_id(data.get("id"))
    except ChatError:
        return None
    return None if message_id is None else str(message_id)
