"""The frame definitions: the parser accepts exactly what the client schemas describe,
the builders produce what the server schemas describe, every close code is listed."""

from __future__ import annotations

import json
import re
import uuid
from datetime import UTC, datetime
from typing import Any, get_args

import jsonschema_rs
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from wsproto.frame_protocol import CloseReason

from quartchat.wire.errors import ChatError
from quartchat.wire.frames import (
    CLIENT_FRAMES,
    CLOSE_CODES,
    ERROR_CODES,
    SERVER_FRAMES,
    CloseCode,
    EventType,
    client_frame_schemas,
)
from quartchat.wire.payloads import (
    ChatMessage,
    error_frame,
    event_frame,
    format_timestamp,
    message_frame,
)
from quartchat.wire.protocol import FrameType, parse_client_frame
from tests.support import PROJECT_ROOT
from tests.support.protocol_check import check_frame

MAX_CHARS = 50
# White space, controls, zero-width and other invisible characters, and visible ones.
TRICKY_CHARACTERS = (
    "\t\n\x0b\x1c\x1f \x7f\x85\x9f\xa0\xad\u061c\u1680\u180e\u200b\u200d\u2028\u202e"
    "\u3000\u3164\ufeff\U0001d173\U000e0041xé字😀"
)
json_values: st.SearchStrategy[Any] = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=10,
)
CLIENT_VALIDATORS = {
    name: jsonschema_rs.Draft7Validator(schema)
    for name, schema in client_frame_schemas(MAX_CHARS).items()
}


def described_by_schemas(frame: Any) -> bool:
    return any(validator.is_valid(frame) for validator in CLIENT_VALIDATORS.values())


def accepted_by_parser(frame: Any) -> bool:
    try:
        parse_client_frame(json.dumps(frame), MAX_CHARS)
    except ChatError:
        return False
    return True


client_frames = st.fixed_dictionaries(
    {},
    optional={
        "type": st.sampled_from([*CLIENT_FRAMES, "Message", "pong", ""]) | json_values,
        "content": st.text(max_size=8)
        | st.text(min_size=MAX_CHARS - 1, max_size=MAX_CHARS + 1)
        | st.text(TRICKY_CHARACTERS, max_size=3)
        | json_values,
        "id": st.uuids().map(str) | st.uuids().map(lambda u: str(u).upper()) | json_values,
        "extra": json_values,
    },
)


@settings(max_examples=800, deadline=None)
@given(client_frames | json_values)
@example({"content": "x" * MAX_CHARS})
@example({"content": "x" * (MAX_CHARS + 1)})
@example({"content": "\x1c"})
@example({"content": "\ufeff"})
@example({"content": "a\x00"})
@example({"content": "\u200b\u200b"})
@example({"content": "\U000e0041"})
@example({"content": "line\nnext\ttab"})
@example({"type": "message", "content": "hi", "id": None})
@example({"type": "typing", "content": 5})
def test_the_parser_accepts_exactly_what_the_schemas_describe(frame: Any) -> None:
    assert accepted_by_parser(frame) == described_by_schemas(frame), frame


def test_the_parser_refuses_with_documented_codes() -> None:
    for raw in ["{", '{"type": 1}', '{"content": " "}', '{"content": "x", "id": "y"}']:
        with pytest.raises(ChatError) as error:
            parse_client_frame(raw, MAX_CHARS)
        assert error.value.code in ERROR_CODES


def test_the_builders_produce_documented_frames() -> None:
    now = format_timestamp(datetime.now(UTC))
    message = ChatMessage(uuid.uuid4(), "room-1", "user_1", "Zoë", "hi", datetime.now(UTC), 1)
    person = {"user_id": "user_1", "username": "Zoë", "room_id": "room-1"}
    frames = [
        message_frame(message),
        event_frame("pong", timestamp=now),
        event_frame("typing", **person),
        event_frame("user_joined", **person, timestamp=now),
        event_frame("user_left", **person, timestamp=now),
        error_frame("INVALID_JSON", "the frame is not valid JSON"),
        error_frame("RATE_LIMITED", "too fast", retry_after=0.25),
        error_frame("UNAVAILABLE", "not stored", id=str(uuid.uuid4())),
    ]
    for frame in frames:
        check_frame(frame)


def test_every_close_code_the_server_uses_is_documented() -> None:
    assert set(CLOSE_CODES) == set(CloseCode)
    # wsproto's own codes, which Hypercorn sends for a frame it cannot parse or too big
    assert (
        CloseCode.INVALID_FRAME_PAYLOAD_DATA.value == CloseReason.INVALID_FRAME_PAYLOAD_DATA.value
    )
    assert CloseCode.PROTOCOL_ERROR.value == CloseReason.PROTOCOL_ERROR.value
    assert CloseCode.MESSAGE_TOO_BIG.value == CloseReason.MESSAGE_TOO_BIG.value


def test_no_module_but_frames_declares_a_close_code() -> None:
    declared = re.compile(r"^CLOSE_\w+ = \d+$|close\w*\(\s*\d{4}\b", re.MULTILINE)
    package = PROJECT_ROOT / "quartchat"
    offenders = [
        f"{path.relative_to(package)}: {match[0]}"
        for path in sorted(package.rglob("*.py"))
        if path.name != "frames.py"
        for match in declared.finditer(path.read_text())
    ]
    assert offenders == []


def test_the_builders_types_are_the_declared_frames() -> None:
    assert set(get_args(EventType)) == set(SERVER_FRAMES) - {"message", "error"}
    assert get_args(FrameType) == tuple(CLIENT_FRAMES)
