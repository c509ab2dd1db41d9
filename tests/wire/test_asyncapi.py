"""The generated AsyncAPI document: valid AsyncAPI 3.0, one message per frame in each
direction, payload schemas that are valid JSON Schema and that accept their examples.

`asyncapi-3.0.0.schema.json` is the specification's own JSON Schema of an AsyncAPI 3.0.0
document, `schemas/3.0.0-without-$id.json` of the npm package `@asyncapi/specs` 6.11.1
(Apache-2.0).
"""

from __future__ import annotations

import json
import re
from typing import Any

import jsonschema_rs
import pytest

from quartchat.wire.asyncapi import asyncapi_document
from quartchat.wire.frames import CLIENT_FRAMES, CLOSE_CODES, ERROR_CODES, SERVER_FRAMES
from tests.support import PROJECT_ROOT

ASYNCAPI_3_SCHEMA = json.loads(
    (PROJECT_ROOT / "tests" / "asyncapi-3.0.0.schema.json").read_text(encoding="utf-8")
)


@pytest.fixture(name="document", scope="module")
def _document() -> dict[str, Any]:
    return asyncapi_document(4000, "chat.example.com", secure=True)


def messages_of(document: dict[str, Any], action: str) -> dict[str, dict[str, Any]]:
    """{frame type: message object} of the operations with `action`."""
    channel = document["channels"]["room"]
    found = {}
    for operation in document["operations"].values():
        if operation["action"] == action:
            assert operation["channel"] == {"$ref": "#/channels/room"}
            for reference in operation["messages"]:
                prefix, key = reference["$ref"].rsplit("/", 1)
                assert prefix == "#/channels/room/messages"
                message = channel["messages"][key]
                found[message["payload"]["properties"]["type"]["const"]] = message
    return found


def test_is_a_valid_asyncapi_3_document(document: dict[str, Any]) -> None:
    validator = jsonschema_rs.Draft7Validator(ASYNCAPI_3_SCHEMA)
    problems = [f"{e.instance_path}: {e.message}" for e in validator.iter_errors(document)]
    assert problems == []
    assert document["asyncapi"] == "3.0.0"
    assert document["servers"]["quartchat"] == {
        "host": "chat.example.com",
        "protocol": "wss",
        "description": "this server",
    }
    assert document["channels"]["room"]["address"] == "/ws/{room_id}/{user_id}"


def test_the_meta_schema_catches_a_broken_document(document: dict[str, Any]) -> None:
    broken = json.loads(json.dumps(document))
    next(iter(broken["operations"].values()))["action"] = "emit"
    assert not jsonschema_rs.Draft7Validator(ASYNCAPI_3_SCHEMA).is_valid(broken)


def test_has_every_frame_in_each_direction(document: dict[str, Any]) -> None:
    assert set(messages_of(document, "receive")) == set(CLIENT_FRAMES)
    assert set(messages_of(document, "send")) == set(SERVER_FRAMES)


@pytest.mark.parametrize("action", ["receive", "send"])
def test_payloads_are_json_schemas_that_accept_their_examples(
    document: dict[str, Any], action: str
) -> None:
    for frame_type, message in messages_of(document, action).items():
        payload = message["payload"]
        assert jsonschema_rs.meta.is_valid(payload), frame_type
        validator = jsonschema_rs.Draft7Validator(payload, validate_formats=True)
        assert message["examples"], f"{frame_type} has no example"
        for example in message["examples"]:
            validator.validate(example["payload"])


def test_lists_error_and_close_codes(document: dict[str, Any]) -> None:
    channel = document["channels"]["room"]
    error = messages_of(document, "send")["error"]["payload"]
    assert [entry["const"] for entry in error["properties"]["code"]["oneOf"]] == list(ERROR_CODES)
    assert set(channel["x-error-codes"]) == set(ERROR_CODES)
    assert {int(code) for code in channel["x-close-codes"]} == set(CLOSE_CODES)
    assert all(entry["meaning"] and entry["action"] for entry in channel["x-close-codes"].values())


def test_message_limit_follows_the_setting() -> None:
    for limit in (10, 4000):
        content = messages_of(asyncapi_document(limit, "h", False), "receive")["message"]
        assert content["payload"]["properties"]["content"]["maxLength"] == limit


def test_close_codes_are_those_of_the_protocol_page() -> None:
    page = (PROJECT_ROOT / "docs" / "protocol.md").read_text(encoding="utf-8")
    section = page.split("\n## Close codes\n", 1)[1].split("\n## ", 1)[0]
    rows = [line.split("|")[1:4] for line in section.splitlines() if re.match(r"\| \d", line)]
    assert {int(code): (meaning.strip(), action.strip()) for code, meaning, action in rows} == {
        code: (meaning, action) for code, (meaning, action) in CLOSE_CODES.items()
    }
