"""`GET /asyncapi.json` through a real server, and the link to it from `/docs`."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from playwright.async_api import expect

from quartchat.wire.asyncapi import asyncapi_document
from tests.support import RunningServer, served
from tests.support.browser import launch_chromium


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


@pytest.mark.browser
async def test_docs_page_shows_the_link(server: RunningServer) -> None:
    async with launch_chromium() as browser:
        page = await browser.new_page()
        await page.goto(server.http_url + "/docs")
        links = page.locator('.information-container a[href="/asyncapi.json"]')
        await expect(links.first).to_be_visible(timeout=30_000)
        document = await page.request.get(server.http_url + "/asyncapi.json")
        assert (await document.json())["asyncapi"] == "3.0.0"


@pytest.mark.server
async def test_message_limit_is_the_servers(tmp_path: Path) -> None:
    async with served(tmp_path, env={"MAX_MESSAGE_CHARS": "123"}) as (_, http):
        document = (await http.get("/asyncapi.json")).json()
    messages = document["channels"]["room"]["messages"]
    assert messages["client.message"]["payload"]["properties"]["content"]["maxLength"] == 123
