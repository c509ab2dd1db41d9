"""quartchat.js in Chromium: `room.messages` keeps the newest `maxMessages`, and
`loadOlder()` pages back from the window's edge to the room's first message."""

from __future__ import annotations

from typing import Any

import httpx

from tests.client.conftest import OpenPage
from tests.client.test_room import join, wait_for_messages
from tests.support import RunningServer, create_room, create_user, stored_messages


async def post(http: httpx.AsyncClient, room_id: str, user_id: str, contents: range) -> None:
    for i in contents:
        response = await http.post(
            f"/rooms/{room_id}/messages", json={"user_id": user_id, "content": f"m{i}"}
        )
        assert response.status_code == 201, response.text


def seqs(messages: list[dict[str, Any]]) -> list[int]:
    return [m["seq"] for m in messages]


async def test_messages_keep_the_newest_max_and_load_older_pages_back_from_the_edge(
    server: RunningServer, open_page: OpenPage, http: httpx.AsyncClient
) -> None:
    room = await create_room(http)
    user = await create_user(http)
    await post(http, room["id"], user["id"], range(1, 31))
    page = await open_page(server.http_url)
    opened = await join(page, server.http_url, room["id"], user["id"], history=10, maxMessages=20)
    assert opened == "opened"
    assert seqs(await page.evaluate("room.messages")) == list(range(21, 31))

    await post(http, room["id"], user["id"], range(31, 56))
    # Every message is still an event once; the window holds the newest 20.
    assert seqs(await wait_for_messages(page, 35)) == list(range(21, 56))
    assert seqs(await page.evaluate("room.messages")) == list(range(36, 56))

    # At the window's edge, loadOlder() reads what the window dropped, and prepends it.
    assert seqs(await page.evaluate("room.loadOlder(10)")) == list(range(26, 36))
    assert seqs(await page.evaluate("room.messages")) == list(range(26, 56))
    # The next message brings the window back to 20.
    await post(http, room["id"], user["id"], range(56, 57))
    await wait_for_messages(page, 36)
    assert seqs(await page.evaluate("room.messages")) == list(range(37, 57))

    pages = []
    while older := await page.evaluate("room.loadOlder(15)"):
        pages.append(seqs(older))
    assert pages == [list(range(22, 37)), list(range(7, 22)), list(range(1, 7))]
    everything = await page.evaluate("room.messages")
    assert everything == await stored_messages(http, room["id"])
    assert [m["content"] for m in everything] == [f"m{i}" for i in range(1, 57)]
