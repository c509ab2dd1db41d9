"""The socket protocol's machine-readable description, `/asyncapi.json`."""

from __future__ import annotations

import json
from typing import Literal

from pydantic import BaseModel, ConfigDict
from quart import Blueprint, Response, current_app, request
from quart_schema import document_response, operation_id

from quartchat.rooms.chat import current_chat
from quartchat.wire.asyncapi import asyncapi_document

blueprint = Blueprint("asyncapi", __name__)

# How /docs (the OpenAPI document's info and external docs) links to it.
TITLE = "The WebSocket protocol, as an AsyncAPI 3.0 document"
LINK_TEXT = (
    "The REST API of quartchat. The WebSocket `/ws/{room_id}/{user_id}` is described frame "
    "by frame by the AsyncAPI 3.0 document [/asyncapi.json](/asyncapi.json)."
)


class AsyncAPIDocument(BaseModel):
    """The AsyncAPI 3.0 document of the socket protocol (its schema is AsyncAPI's own)."""

    model_config = ConfigDict(extra="allow")
    asyncapi: Literal["3.0.0"]


@blueprint.get("/asyncapi.json")
@operation_id("getAsyncApiDocument")
@document_response(AsyncAPIDocument)
async def get_asyncapi() -> Response:
    """The WebSocket protocol as an AsyncAPI 3.0 document.

    The socket `/ws/{room_id}/{user_id}`: every frame in both directions with its JSON
    Schema, the error codes and the close codes. It is generated from the definitions
    the server checks frames with."""
    key = (current_chat().settings.max_message_chars, request.scheme in ("https", "wss"))
    body = _documents.get(key)
    if body is None:
        body = _documents[key] = current_app.json.dumps(asyncapi_document(key[0], _HOST, key[1]))
    host = json.dumps(request.host)[1:-1]  # as the JSON string's inside
    return Response(body.replace(_HOST, host), content_type="application/json")


# Built once per scheme (and MAX_MESSAGE_CHARS) with this stand-in for the host the
# client named (any Host header: no cache keyed by it could stay small), which each
# answer replaces: a build costs 20-50 ms of CPU, and the route is open to anyone.
_HOST = "host.quartchat.invalid"
_documents: dict[tuple[int, bool], str] = {}
