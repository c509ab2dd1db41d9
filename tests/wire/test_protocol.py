"""Parsing socket frames: every bad frame is an ChatError with the documented code."""

from __future__ import annotations

import uuid

import pytest

from quartchat.wire.errors import ChatError
from quartchat.wire.protocol import ClientFrame, parse_client_frame


def test_message_ping_and_typing() -> None:
    message_id = uuid.uuid4()
    assert parse_client_frame('{"content": "hi"}', 10) == ClientFrame("message", "hi")
    assert parse_client_frame(
        f'{{"type": "message", "content": "hi", "id": "{message_id}"}}', 10
    ) == ClientFrame("message", "hi", message_id)
    with pytest.raises(ChatError) as binary:
        parse_client_frame(b'{"type": "ping"}', 10)
    assert binary.value.code == "INVALID_JSON" and "binary" in binary.value.detail
    assert parse_client_frame('{"type": "typing", "extra": 1}', 10) == ClientFrame("typing")


@pytest.mark.parametrize(
    ("raw", "code"),
    [
        ("", "INVALID_JSON"),
        ("{", "INVALID_JSON"),
        ("null", "INVALID_JSON"),
        ("[]", "INVALID_JSON"),
        ('{"type": "Message", "content": "hi"}', "UNKNOWN_TYPE"),
        ('{"type": null, "content": "hi"}', "UNKNOWN_TYPE"),
        ('{"type": "message", "content": null}', "INVALID_CONTENT"),
        ('{"content": ""}', "INVALID_CONTENT"),
        ('{"content": "\\t"}', "INVALID_CONTENT"),
        ('{"content": "12345678901"}', "INVALID_CONTENT"),
        ('{"content": ["hi"]}', "INVALID_CONTENT"),
        ('{"content": "hi", "id": 7}', "INVALID_ID"),
        ('{"content": "hi", "id": "abc"}', "INVALID_ID"),
    ],
)
def test_bad_frames(raw: str, code: str) -> None:
    with pytest.raises(ChatError) as error:
        parse_client_frame(raw, 10)
    assert error.value.code == code
    assert error.value.detail


def test_unknown_type_detail_is_bounded() -> None:
    with pytest.raises(ChatError) as error:
        parse_client_frame('{"type": "' + "x" * 10_000 + '"}', 10)
    assert len(error.value.detail) < 200
