"""Timestamps and the message shape shared by the socket and REST."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta, timezone

import pytest

from quartchat.wire.payloads import (
    ChatMessage,
    event_frame,
    format_timestamp,
    message_frame,
    parse_timestamp,
    presence_change,
)


def test_format_always_has_microseconds_and_z() -> None:
    moment = datetime(2025, 10, 21, 14, 0, 0, tzinfo=timezone(timedelta(hours=2)))
    assert format_timestamp(moment) == "2025-10-21T12:00:00.000000Z"


@pytest.mark.parametrize(
    "raw",
    [
        "2025-10-21T12:00:00.123456Z",
        "2025-10-21T12:00:00.123456+00:00",
        "2025-10-21T12:00:00.123456 00:00",
        "2025-10-21T14:00:00.123456+02:00",
        "2025-10-21T14:00:00.123456 0200",
        "2025-10-21T12:00:00.123456",
    ],
)
def test_parse_accepts_every_spelling_of_one_instant(raw: str) -> None:
    assert parse_timestamp(raw) == datetime(2025, 10, 21, 12, 0, 0, 123456, tzinfo=UTC)


@pytest.mark.parametrize("raw", ["", "  ", "yesterday", "2025-10-21T25:00:00Z", "12"])
def test_parse_rejects_non_timestamps(raw: str) -> None:
    with pytest.raises(ValueError):
        parse_timestamp(raw)


def test_message_frame_has_the_frontend_fields_in_order() -> None:
    message = ChatMessage(
        id=uuid.UUID("12345678-1234-5678-1234-567812345678"),
        room_id="room",
        user_id="user",
        username="John Doe",
        content="Hello!",
        created_at=datetime(2025, 10, 21, 12, 0, 0, 123456, tzinfo=UTC),
        seq=17,
    )
    assert message_frame(message) == (
        '{"type":"message","id":"12345678-1234-5678-1234-567812345678","user_id":"user",'
        '"username":"John Doe","content":"Hello!","timestamp":"2025-10-21T12:00:00.123456Z",'
        '"room_id":"room","seq":17}'
    )


def test_presence_change_reads_joins_and_leaves_only() -> None:
    joined = event_frame("user_joined", user_id="u1", username="U", room_id="r", timestamp="t")
    left = event_frame("user_left", user_id="u1", username="U", room_id="r", timestamp="t")
    assert presence_change(joined) == ("u1", True)
    assert presence_change(left) == ("u1", False)
    assert presence_change(event_frame("typing", user_id="u1", username="U", room_id="r")) is None
    assert presence_change('{"type":"message","user_id":"u1"}') is None
