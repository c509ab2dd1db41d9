"""Property tests: whatever a socket sends, parsing either yields a valid frame or an
ChatError with a documented code; it never raises anything else."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from quartchat.api.errors import status_of
from quartchat.wire.errors import ChatError
from quartchat.wire.protocol import parse_client_frame

CODES = {"INVALID_JSON", "UNKNOWN_TYPE", "INVALID_CONTENT", "INVALID_ID"}
MAX_CHARS = 50

json_values: st.SearchStrategy[Any] = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=10,
)
frame_objects = st.fixed_dictionaries(
    {},
    optional={
        "type": st.sampled_from(["message", "ping", "typing", "Message", ""]) | json_values,
        "content": st.text(max_size=80) | json_values,
        "id": st.uuids().map(str) | json_values,
    },
)
raw_frames = (
    st.text()
    | st.binary()
    | json_values.map(json.dumps)
    | frame_objects.map(json.dumps)
    | frame_objects.map(lambda frame: json.dumps(frame).encode())
)


@settings(max_examples=600, deadline=None)
@given(raw_frames)
def test_any_frame_parses_or_is_refused_with_a_known_code(raw: str | bytes) -> None:
    try:
        frame = parse_client_frame(raw, MAX_CHARS)
    except ChatError as error:
        assert error.code in CODES
        assert status_of(error) == 400 and error.detail
        return
    assert frame.type in {"message", "ping", "typing"}
    if frame.type == "message":
        assert isinstance(frame.content, str)
        assert frame.content.strip() and len(frame.content) <= MAX_CHARS
