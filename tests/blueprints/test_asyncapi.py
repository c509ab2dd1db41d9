"""`GET /asyncapi.json` through a real server, and the link to it from `/docs`."""

from __future__ import annotations

from pathlib import Path

import httpx

from quartchat.asyncapi import asyncapi_document
from tests.support import RunningServer, start_server


async def test_serves_the_socket_protocol(server: RunningServer, http: httpx.AsyncClient) -> None:
    response = await http.get("/asyncapi.json")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    document = response.json()
    assert document["asyncapi"] == "3.0.0"
    host = f"127.0.0.1:{server.port}"
    assert document["servers"]["quartchat"]["host"] == host
    assert document["servers"]["quartchat"]["protocol"] == "ws"
    assert document == asyncapi_document(4000, host, secure=False)


async def test_is_linked_from_the_docs(http: httpx.AsyncClient) -> None:
    openapi = (await http.get("/openapi.json")).json()
    assert "[/asyncapi.json](/asyncapi.json)" in openapi["info"]["description"]
    assert openapi["externalDocs"]["url"] == "/asyncapi.json"
    docs = await http.get("/docs")
    assert docs.status_code == 200
    assert "/openapi.json" in docs.text  # Swagger UI renders that document's links


async def test_message_limit_is_the_servers(tmp_path: Path) -> None:
    server = start_server(tmp_path, env={"MAX_MESSAGE_CHARS": "123"})
    try:
        async with httpx.AsyncClient(base_url=server.http_url, timeout=10) as http:
            document = (await http.get("/asyncapi.json")).json()
    finally:
        server.stop()
    messages = document["channels"]["room"]["messages"]
    assert messages["client.message"]["payload"]["properties"]["content"]["maxLength"] == 123
