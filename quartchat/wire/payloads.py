"""The JSON shapes clients see, on the socket and over REST, and their timestamps."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

import orjson

from quartchat.wire.frames import EventType, MessageFrame

_SPACE_FOR_PLUS = re.compile(r" (\d{2}:?\d{2})$")


def format_timestamp(moment: datetime) -> str:
    """ISO 8601 in UTC with microseconds and a `Z`: `2025-10-21T12:00:00.123456Z`."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_timestamp(raw: str) -> datetime:
    """Parse a client's ISO 8601 timestamp into an aware UTC datetime.

    Accepts `Z`, `+00:00` and any other offset, a `+` that a query string turned into a
    space, and a naive value (taken as UTC). Raises ValueError otherwise.
    """
    text = _SPACE_FOR_PLUS.sub(r"+\1", raw.strip())
    if not text:
        raise ValueError("empty timestamp")
    moment = datetime.fromisoformat(text)
    if moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    try:
        return moment.astimezone(UTC)
    except OverflowError:  # e.g. 0001-01-01T00:00:00+01:00: before the calendar starts
        raise ValueError(f"{raw!r} in UTC is outside years 1-9999") from None


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True, slots=True)
class ChatMessage:
    """A stored message as every client sees it."""

    id: UUID
    room_id: str
    user_id: str
    username: str
    content: str
    created_at: datetime
    seq: int

    def payload(self) -> MessageFrame:
        return {
            "type": "message",
            "id": str(self.id),
            "user_id": self.user_id,
            "username": self.username,
            "content": self.content,
            "timestamp": format_timestamp(self.created_at),
            "room_id": self.room_id,
            "seq": self.seq,
        }


def encode(payload: Any) -> str:
    return orjson.dumps(payload).decode()


def message_frame(message: ChatMessage) -> str:
    return encode(message.payload())


def event_frame(event_type: EventType, **fields: Any) -> str:
    """A non-message frame such as `pong`, `typing`, `user_joined` or `user_left`."""
    return encode({"type": event_type, **fields})


# (user_id, True for an arrival) of a user_joined / user_left frame.
PresenceChange = tuple[str, bool]
_PRESENCE_PREFIXES = ('{"type":"user_joined"', '{"type":"user_left"')


def presence_change(text: str) -> PresenceChange | None:
    """What a frame built by `event_frame` says about presence, None if it is no
    user_joined / user_left (another instance's events arrive as text)."""
    if not text.startswith(_PRESENCE_PREFIXES):
        return None
    user_id = orjson.loads(text).get("user_id")
    return (user_id, text.startswith(_PRESENCE_PREFIXES[0])) if isinstance(user_id, str) else None


def error_frame(code: str, detail: str, **extra: Any) -> str:
    return encode({"type": "error", "code": code, "detail": detail, **extra})
