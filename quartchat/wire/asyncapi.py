"""The socket protocol as an AsyncAPI 3.0 document, generated from `frames`.

The document describes the server: it *receives* the client frames and *sends* the
server frames on one channel, `/ws/{room_id}/{user_id}`. Close codes have no AsyncAPI
construct, so they travel in the channel's `x-close-codes` extension.
"""

from __future__ import annotations

import copy
from typing import Any

from quartchat.wire.frames import (
    CLOSE_CODES,
    ERROR_CODES,
    Schema,
    client_frame_schemas,
    server_frame_schemas,
)
from quartchat.wire.text import ID_PATTERN

CHANNEL = "room"
DESCRIPTION = """\
The chat socket of quartchat. Each frame is a JSON object in a text frame; its `type`
says which message it is (a client message may leave `type` out).

Reconnecting clients add `?after=<id of the last message they have>` (or
`?since=<its timestamp>`): the server first sends every message they missed, in `seq`
order, then live ones, with none lost or repeated at the seam.

Refused frames are answered with an `error` frame (see its `code`); the socket stays open.
A socket the server ends gets one of the close codes in the channel's `x-close-codes`.
"""

EXAMPLES: dict[str, list[dict[str, Any]]] = {
    "client.message": [
        {"type": "message", "content": "Hello!"},
        {"content": "Hello!", "id": "6f1c3b9e-2a4d-4c8e-9f10-5b7a2d3e4f60"},
    ],
    "client.ping": [{"type": "ping"}],
    "client.typing": [{"type": "typing"}],
    "server.message": [
        {
            "type": "message",
            "id": "6f1c3b9e-2a4d-4c8e-9f10-5b7a2d3e4f60",
            "user_id": "test-user",
            "username": "John Doe",
            "content": "Hello!",
            "timestamp": "2025-10-21T12:00:00.123456Z",
            "room_id": "test-room",
            "seq": 17,
        }
    ],
    "server.pong": [{"type": "pong", "timestamp": "2025-10-21T12:00:00.123456Z"}],
    "server.typing": [
        {"type": "typing", "user_id": "test-user", "username": "John Doe", "room_id": "test-room"}
    ],
    "server.user_joined": [
        {
            "type": "user_joined",
            "user_id": "test-user",
            "username": "John Doe",
            "room_id": "test-room",
            "timestamp": "2025-10-21T12:00:00.123456Z",
        }
    ],
    "server.user_left": [
        {
            "type": "user_left",
            "user_id": "test-user",
            "username": "John Doe",
            "room_id": "test-room",
            "timestamp": "2025-10-21T12:00:00.123456Z",
        }
    ],
    "server.error": [
        {"type": "error", "code": "INVALID_CONTENT", "detail": "content must not be blank"},
        {
            "type": "error",
            "code": "RATE_LIMITED",
            "detail": "over 10 frames per second; not handled",
            "retry_after": 0.1,
        },
    ],
}


def _message(key: str, schema: Schema) -> Schema:
    return {
        "name": schema["title"],
        "title": schema["title"],
        "summary": schema["description"],
        "contentType": "application/json",
        "payload": copy.deepcopy(schema),
        "examples": [{"payload": example} for example in EXAMPLES.get(key, [])],
    }


def _operation(action: str, key: str, schema: Schema) -> Schema:
    return {
        "action": action,
        "channel": {"$ref": f"#/channels/{CHANNEL}"},
        "summary": schema["description"],
        "messages": [{"$ref": f"#/channels/{CHANNEL}/messages/{key}"}],
    }


def asyncapi_document(max_message_chars: int, host: str, secure: bool) -> Schema:
    """The AsyncAPI 3.0 document of the socket of a server reached at `host`."""
    messages = {
        f"client.{name}": _message(f"client.{name}", schema)
        for name, schema in client_frame_schemas(max_message_chars).items()
    }
    messages |= {
        f"server.{name}": _message(f"server.{name}", schema)
        for name, schema in server_frame_schemas().items()
    }
    operations = {
        f"receive.{key}" if key.startswith("client.") else f"send.{key}": _operation(
            "receive" if key.startswith("client.") else "send", key, message["payload"]
        )
        for key, message in messages.items()
    }
    id_rule = f"matches `{ID_PATTERN}`"
    return {
        "asyncapi": "3.0.0",
        "info": {
            "title": "quartchat socket",
            "version": "0.1.0",
            "description": DESCRIPTION,
            "externalDocs": {
                "description": "the REST API",
                "url": f"{'https' if secure else 'http'}://{host}/docs",
            },
        },
        "defaultContentType": "application/json",
        "servers": {
            "quartchat": {
                "host": host,
                "protocol": "wss" if secure else "ws",
                "description": "this server",
            }
        },
        "channels": {
            CHANNEL: {
                "address": "/ws/{room_id}/{user_id}",
                "title": "a room, as one user",
                "description": "Join a room as a user. Messages and events of the room "
                "arrive in `seq` order.",
                "parameters": {
                    "room_id": {"description": f"an existing room's id ({id_rule})"},
                    "user_id": {"description": f"an existing user's id ({id_rule})"},
                },
                "messages": messages,
                "bindings": {
                    "ws": {"method": "GET", "query": _query_schema(), "headers": _headers_schema()}
                },
                "x-error-codes": dict(ERROR_CODES),
                "x-close-codes": {
                    str(int(code)): {"meaning": meaning, "action": action}
                    for code, (meaning, action) in CLOSE_CODES.items()
                },
            }
        },
        "operations": operations,
    }


def _headers_schema() -> Schema:
    return {
        "type": "object",
        "properties": {
            "Sec-WebSocket-Protocol": {
                "type": "string",
                "description": (
                    "with AUTH_SECRET set: `quartchat, token.<the user's token>` (the "
                    "server answers `quartchat`); the token kept out of the URL"
                ),
            },
        },
    }


def _query_schema() -> Schema:
    return {
        "type": "object",
        "properties": {
            "after": {
                "type": "string",
                "description": "replay every message after this message id first",
            },
            "since": {
                "type": "string",
                "description": "replay every message after this ISO 8601 timestamp first",
            },
            "token": {
                "type": "string",
                "description": (
                    "with authentication on: the user's token, a JWT (else close 4401); "
                    "prefer the Sec-WebSocket-Protocol header, which edge proxies do not log"
                ),
            },
        },
    }
