"""The REST polling fallback: `GET`/`POST /rooms/{id}/messages` through a real server."""

from __future__ import annotations

import asyncio
import re
import sqlite3
import uuid
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support import (
    RunningServer,
    create_room,
    create_user,
    metric,
    open_socket,
    receive_messages,
    served,
    stored_messages,
)

pytestmark = pytest.mark.server  # starts servers of its own (tests/support/tiers.py)

TIMESTAMP = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$")
MESSAGE_KEYS = {"type", "id", "user_id", "username", "content", "timestamp", "room_id", "seq"}


async def post(
    http: httpx.AsyncClient, room_id: str, user_id: str, content: str, **extra: Any
) -> httpx.Response:
    return await http.post(
        f"/rooms/{room_id}/messages", json={"user_id": user_id, "content": content, **extra}
    )


async def test_post_message_returns_the_frontend_shape(http: httpx.AsyncClient) -> None:
    room = await create_room(http)
    user = await create_user(http, "John Doe")
    response = await post(http, room["id"], user["id"], "Hello!")
    assert response.status_code == 201
    message = response.json()
    assert set(message) == MESSAGE_KEYS
    assert message["type"] == "message"
    assert uuid.UUID(message["id"])
    assert (message["user_id"], message["username"]) == (user["id"], "John Doe")
    assert (message["content"], message["room_id"], message["seq"]) == ("Hello!", room["id"], 1)
    assert TIMESTAMP.match(message["timestamp"])
    assert (await http.get(f"/rooms/{room['id']}/messages")).json() == [message]


async def test_history_order_limit_and_latest(http: httpx.AsyncClient) -> None:
    room = await create_room(http)
    user = await create_user(http)
    posted = [(await post(http, room["id"], user["id"], f"m{i}")).json() for i in range(7)]
    assert [m["seq"] for m in posted] == list(range(1, 8))

    everything = (await http.get(f"/rooms/{room['id']}/messages")).json()
    assert everything == posted
    latest = (await http.get(f"/rooms/{room['id']}/messages", params={"limit": 3})).json()
    assert latest == posted[-3:]
    for bad_limit in ("0", "501", "abc", "-1"):
        response = await http.get(f"/rooms/{room['id']}/messages", params={"limit": bad_limit})
        assert response.status_code == 400, bad_limit
        assert response.json()["code"] == "INVALID_REQUEST"
    assert (
        await http.get(f"/rooms/{room['id']}/messages", params={"limit": 500})
    ).status_code == 200


async def test_since_is_strictly_after_in_every_spelling(http: httpx.AsyncClient) -> None:
    room = await create_room(http)
    user = await create_user(http)
    posted = [(await post(http, room["id"], user["id"], f"m{i}")).json() for i in range(4)]
    stamp = posted[1]["timestamp"]
    moment = datetime.fromisoformat(stamp.replace("Z", "+00:00"))
    spellings = [
        stamp,
        stamp.replace("Z", "+00:00"),
        moment.astimezone(timezone(timedelta(hours=2))).isoformat(),
        stamp.replace("Z", ""),
    ]
    url = f"/rooms/{room['id']}/messages"
    for since in spellings:
        response = await http.get(url, params={"since": since})
        assert response.status_code == 200, since
        assert response.json() == posted[2:], since
    # A "+" sent unencoded arrives as a space; it must still mean +00:00.
    raw = await http.get(f"{url}?since={stamp.replace('Z', '+00:00')}")
    assert raw.json() == posted[2:]
    for bad in ("yesterday", "2025-13-01T00:00:00Z", ""):
        response = await http.get(url, params={"since": bad})
        assert response.status_code == 400, bad
        assert response.json()["code"] in {"INVALID_SINCE", "INVALID_REQUEST"}


async def test_after_is_strictly_after_a_message(http: httpx.AsyncClient) -> None:
    room = await create_room(http)
    user = await create_user(http)
    posted = [(await post(http, room["id"], user["id"], f"m{i}")).json() for i in range(4)]
    url = f"/rooms/{room['id']}/messages"
    assert (await http.get(url, params={"after": posted[0]["id"]})).json() == posted[1:]
    assert (await http.get(url, params={"after": posted[3]["id"]})).json() == []
    for bad in ("not-a-uuid", str(uuid.uuid4())):
        response = await http.get(url, params={"after": bad})
        assert response.status_code == 400
        assert response.json()["code"] == "INVALID_AFTER"
    both = await http.get(url, params={"after": posted[0]["id"], "since": posted[0]["timestamp"]})
    assert both.status_code == 400
    assert (await http.get("/rooms/no-such-room/messages")).status_code == 404


async def test_post_validation(http: httpx.AsyncClient) -> None:
    room = await create_room(http)
    user = await create_user(http)
    url = f"/rooms/{room['id']}/messages"
    cases: list[tuple[dict[str, Any], int, str]] = [
        ({"user_id": user["id"], "content": "   "}, 400, "INVALID_CONTENT"),
        ({"user_id": user["id"], "content": "x" * 4001}, 400, "INVALID_CONTENT"),
        ({"user_id": user["id"], "content": 42}, 400, "INVALID_CONTENT"),
        ({"user_id": user["id"]}, 400, "INVALID_REQUEST"),
        ({"content": "hi"}, 400, "INVALID_REQUEST"),
        ({"user_id": user["id"], "content": "hi", "id": "nope"}, 400, "INVALID_ID"),
        ({"user_id": "ghost-user", "content": "hi"}, 404, "USER_NOT_FOUND"),
    ]
    for body, status, code in cases:
        response = await http.post(url, json=body)
        assert (response.status_code, response.json()["code"]) == (status, code), body
    missing_room = await http.post(
        "/rooms/no-such-room/messages", json={"user_id": user["id"], "content": "hi"}
    )
    assert missing_room.status_code == 404
    assert (await post(http, room["id"], user["id"], "x" * 4000)).status_code == 201
    assert len((await http.get(url)).json()) == 1


async def test_client_chosen_id_is_idempotent(http: httpx.AsyncClient) -> None:
    room = await create_room(http)
    user = await create_user(http)
    other_room = await create_room(http)
    message_id = str(uuid.uuid4())
    first = await post(http, room["id"], user["id"], "once", id=message_id)
    again = await post(http, room["id"], user["id"], "once", id=message_id)
    assert (first.status_code, again.status_code) == (201, 200)
    assert again.json() == first.json()
    assert first.json()["id"] == message_id
    assert len((await http.get(f"/rooms/{room['id']}/messages")).json()) == 1
    conflict = await post(http, other_room["id"], user["id"], "elsewhere", id=message_id)
    assert conflict.status_code == 409
    assert conflict.json()["code"] == "MESSAGE_ID_CONFLICT"
    assert (await http.get(f"/rooms/{other_room['id']}/messages")).json() == []


async def test_rest_post_reaches_sockets(server: RunningServer, http: httpx.AsyncClient) -> None:
    room = await create_room(http)
    user = await create_user(http)
    async with open_socket(server, room["id"], user["id"]) as ws:
        posted = (await post(http, room["id"], user["id"], "from REST")).json()
        [received] = await receive_messages(ws, 1)
        assert received == posted


async def test_polling_with_since_misses_and_repeats_nothing(
    server: RunningServer, http: httpx.AsyncClient
) -> None:
    """A poller that asks `since=<last timestamp>` sees every message once, while
    several senders post concurrently (the frontend's fallback, polled fast)."""
    room = await create_room(http)
    users = [await create_user(http, f"sender{i}") for i in range(5)]
    per_sender = 30
    done = asyncio.Event()

    async def send_all(user: dict[str, Any]) -> None:
        for i in range(per_sender):
            assert (
                await post(http, room["id"], user["id"], f"{user['id']}:{i}")
            ).status_code == 201

    async def poll() -> list[dict[str, Any]]:
        seen: list[dict[str, Any]] = []
        since = (datetime.now(UTC) - timedelta(seconds=1)).isoformat()
        while True:
            finished = done.is_set()
            page = (
                await http.get(f"/rooms/{room['id']}/messages", params={"since": since, "limit": 7})
            ).json()
            seen.extend(page)
            if page:
                since = page[-1]["timestamp"]
            elif finished:
                return seen
            await asyncio.sleep(0.01)

    poller = asyncio.create_task(poll())
    await asyncio.gather(*(send_all(user) for user in users))
    done.set()
    seen = await poller
    assert [m["seq"] for m in seen] == list(range(1, 5 * per_sender + 1))
    assert seen == await stored_messages(http, room["id"])


async def test_before_pages_back_oldest_first(http: httpx.AsyncClient) -> None:
    room = await create_room(http)
    user = await create_user(http)
    posted = [(await post(http, room["id"], user["id"], f"m{i}")).json() for i in range(7)]
    url = f"/rooms/{room['id']}/messages"
    page = (await http.get(url, params={"before": posted[5]["id"], "limit": 3})).json()
    assert page == posted[2:5]
    assert (await http.get(url, params={"before": posted[2]["id"]})).json() == posted[:2]
    assert (await http.get(url, params={"before": posted[0]["id"]})).json() == []
    other = await create_room(http)
    foreign = (await post(http, other["id"], user["id"], "elsewhere")).json()
    for bad in ("not-a-uuid", str(uuid.uuid4()), foreign["id"], ""):
        response = await http.get(url, params={"before": bad})
        assert response.status_code == 400, bad
        assert response.json()["code"] == "INVALID_BEFORE"
    both = await http.get(url, params={"before": posted[3]["id"], "after": posted[1]["id"]})
    assert both.status_code == 400 and both.json()["code"] == "INVALID_REPLAY"
    missing = await http.get("/rooms/no-such-room/messages", params={"before": posted[3]["id"]})
    assert missing.status_code == 404


async def test_rest_messages_ask_the_directory_not_the_database_each_time(
    tmp_path: Path,
) -> None:
    async with served(tmp_path) as (_, http):
        room = await create_room(http)
        # A user this server did not create (another instance did): unknown to its cache.
        with sqlite3.connect(tmp_path / "chat.sqlite3") as database:
            database.execute(
                "INSERT INTO users (id, username, created_at) VALUES (?, ?, ?)",
                ("elsewhere", "Elsewhere", "2026-12-02 00:00:00+00:00"),
            )
        before = metric((await http.get("/metrics")).text, "quartchat_directory_queries_total")
        for i in range(3):
            posted = await http.post(
                f"/rooms/{room['id']}/messages", json={"user_id": "elsewhere", "content": f"{i}"}
            )
            assert posted.status_code == 201
            assert posted.json()["username"] == "Elsewhere"
            assert (await http.get(f"/rooms/{room['id']}/messages")).status_code == 200
        after = metric((await http.get("/metrics")).text, "quartchat_directory_queries_total")
        assert after - before == 1  # the user's first post read it; the rest were cached
        missing = await http.get("/rooms/nowhere/messages")
        assert (missing.status_code, missing.json()["code"]) == (404, "ROOM_NOT_FOUND")
        ghost = await http.post(
            f"/rooms/{room['id']}/messages", json={"user_id": "ghost", "content": "hi"}
        )
        assert (ghost.status_code, ghost.json()["code"]) == (404, "USER_NOT_FOUND")
