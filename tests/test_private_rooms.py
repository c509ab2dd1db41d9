"""Private rooms through real servers, on SQLite and PostgreSQL: seen, read and joined by
their members only, managed by their creator and the app's backend, and a removal that
takes effect at once, on every instance."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
from websockets.exceptions import ConnectionClosed

from tests.support import (
    REDIS_TEST_URL,
    RunningServer,
    open_socket,
    receive_messages,
    start_instances,
    start_server,
    unique_id,
)
from tests.support.timing import within

SECRET = "private-rooms-secret-8f14e45fceea167a5a36dedd4bea2543"
API_KEY = "app-backend-key-c9f0f895fb98ab9159f51fd0297e236d"
AUTH = {"AUTH_SECRET": SECRET, "API_KEY": API_KEY}


@pytest.fixture(name="server", params=["sqlite", "postgres"])
def _server(
    request: pytest.FixtureRequest, tmp_path: Path, postgres_url: str
) -> Iterator[RunningServer]:
    env = dict(AUTH)
    if request.param == "postgres":
        env["DATABASE_URL"] = postgres_url
    server = start_server(tmp_path, env=env)
    yield server
    server.stop()


@pytest.fixture(name="http")
async def _http(server: RunningServer) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=server.http_url, timeout=15) as http:
        yield http


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def new_user(http: httpx.AsyncClient, name: str) -> dict[str, Any]:
    response = await http.post("/users", json={"username": name, "id": unique_id("user")})
    assert response.status_code == 201, response.text
    user: dict[str, Any] = response.json()
    return user


async def private_room(http: httpx.AsyncClient, owner: dict[str, Any]) -> dict[str, Any]:
    body = {"name": "Secret", "id": unique_id("room"), "private": True}
    response = await http.post("/rooms", json=body, headers=bearer(owner["token"]))
    assert response.status_code == 201, response.text
    room: dict[str, Any] = response.json()
    assert room["private"] is True
    return room


async def close_of(server: RunningServer, room_id: str, user: dict[str, Any]) -> tuple[int, str]:
    async with open_socket(server, room_id, user["id"], f"token={user['token']}") as ws:
        with pytest.raises(ConnectionClosed) as closed:
            await asyncio.wait_for(ws.recv(), 10)
    assert closed.value.rcvd is not None
    return closed.value.rcvd.code, closed.value.rcvd.reason


async def test_a_private_room_is_invisible_to_non_members(
    server: RunningServer, http: httpx.AsyncClient
) -> None:
    alice, bob = await new_user(http, "Alice"), await new_user(http, "Bob")
    room = await private_room(http, alice)
    url = f"/rooms/{room['id']}"
    async with open_socket(server, room["id"], alice["id"], f"token={alice['token']}") as ws:
        await ws.send(json.dumps({"content": "for members only"}))
        [message] = await receive_messages(ws, 1)
    as_bob = bearer(bob["token"])
    for listing in ("/rooms?limit=500", "/rooms?q=Secret", f"/rooms?q={room['id']}"):
        listed = (await http.get(listing, headers=as_bob)).json()
        assert room["id"] not in [r["id"] for r in listed], listing
        found = (await http.get(listing, headers=bearer(alice["token"]))).json()
        assert room["id"] in [r["id"] for r in found], listing
    guesses = [
        url,
        f"{url}/messages",
        f"{url}/messages?after={message['id']}",
        f"{url}/messages?before={message['id']}",
        f"{url}/messages?since=2000-01-01T00:00:00Z",
        f"{url}/presence",
        f"{url}/members",
    ]
    for path in guesses:
        response = await http.get(path, headers=as_bob)
        assert (response.status_code, response.json()["code"]) == (404, "ROOM_NOT_FOUND"), path
    post = await http.post(
        f"{url}/messages", json={"user_id": bob["id"], "content": "let me in"}, headers=as_bob
    )
    assert (post.status_code, post.json()["code"]) == (404, "ROOM_NOT_FOUND")
    adding = await http.put(f"{url}/members/{bob['id']}", headers=as_bob)
    assert adding.status_code == 404
    assert await close_of(server, room["id"], bob) == (4403, "not a member; ask to be added")
    for query in (f"after={message['id']}", "since=2000-01-01T00:00:00Z"):
        token = f"token={bob['token']}&{query}"
        async with open_socket(server, room["id"], bob["id"], token) as ws:
            with pytest.raises(ConnectionClosed) as closed:
                await asyncio.wait_for(ws.recv(), 10)  # no replay before the close
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 4403
    # Alice, its member, sees all of it; nothing of Bob's reached it.
    mine = (await http.get("/rooms?limit=500", headers=bearer(alice["token"]))).json()
    assert {"id": room["id"], "private": True}.items() <= next(
        r for r in mine if r["id"] == room["id"]
    ).items()
    history = (await http.get(f"{url}/messages", headers=bearer(alice["token"]))).json()
    assert [m["content"] for m in history] == ["for members only"]


async def test_members_are_managed_by_the_creator_and_the_server_key(
    server: RunningServer, http: httpx.AsyncClient
) -> None:
    alice, bob, carol = [await new_user(http, name) for name in ("Alice", "Bob", "Carol")]
    room = await private_room(http, alice)
    url = f"/rooms/{room['id']}/members"
    added = await http.put(f"{url}/{bob['id']}", headers=bearer(alice["token"]))
    assert added.status_code == 201 and added.json()["user_id"] == bob["id"]
    again = await http.put(f"{url}/{bob['id']}", headers=bearer(alice["token"]))
    assert again.status_code == 200
    # A member may see the room and its members, but not manage them.
    forbidden = await http.put(f"{url}/{carol['id']}", headers=bearer(bob["token"]))
    assert (forbidden.status_code, forbidden.json()["code"]) == (403, "FORBIDDEN")
    members = (await http.get(url, headers=bearer(bob["token"]))).json()
    assert [m["user_id"] for m in members] == [alice["id"], bob["id"]]
    page = await http.get(f"{url}?limit=1&after={alice['id']}", headers=bearer(bob["token"]))
    assert [m["user_id"] for m in page.json()] == [bob["id"]]
    missing = await http.put(f"{url}/{unique_id('user')}", headers=bearer(API_KEY))
    assert (missing.status_code, missing.json()["code"]) == (404, "USER_NOT_FOUND")
    by_key = await http.put(f"{url}/{carol['id']}", headers=bearer(API_KEY))
    assert by_key.status_code == 201
    listed = (await http.get("/rooms?limit=500", headers=bearer(API_KEY))).json()
    assert room["id"] in [r["id"] for r in listed]
    public = await http.post("/rooms", json={"name": "Open"}, headers=bearer(alice["token"]))
    not_private = await http.get(f"/rooms/{public.json()['id']}/members", headers=bearer(API_KEY))
    assert (not_private.status_code, not_private.json()["code"]) == (400, "ROOM_NOT_PRIVATE")


async def test_a_removed_member_is_closed_before_the_answer(
    server: RunningServer, http: httpx.AsyncClient
) -> None:
    alice, bob = await new_user(http, "Alice"), await new_user(http, "Bob")
    room = await private_room(http, alice)
    url = f"/rooms/{room['id']}"
    await http.put(f"{url}/members/{bob['id']}", headers=bearer(alice["token"]))
    async with (
        open_socket(server, room["id"], bob["id"], f"token={bob['token']}") as bobs,
        open_socket(server, room["id"], alice["id"], f"token={alice['token']}") as alices,
    ):
        await bobs.send(json.dumps({"content": "hello"}))
        await receive_messages(alices, 1)
        removed = await http.delete(f"{url}/members/{bob['id']}", headers=bearer(alice["token"]))
        assert removed.status_code == 204
        answered = time.monotonic()
        with pytest.raises(ConnectionClosed) as closed:
            while True:
                await asyncio.wait_for(bobs.recv(), 5)
        within(time.monotonic() - answered, 3.0, "removed member's socket closed 4403")
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 4403
        await alices.send(json.dumps({"content": "after Bob"}))
        await receive_messages(alices, 1)
    post = await http.post(
        f"{url}/messages", json={"user_id": bob["id"], "content": "x"}, headers=bearer(bob["token"])
    )
    assert post.status_code == 404
    assert (await close_of(server, room["id"], bob))[0] == 4403


async def test_a_token_can_grant_membership(server: RunningServer, http: httpx.AsyncClient) -> None:
    alice = await new_user(http, "Alice")
    room = await private_room(http, alice)
    now = int(time.time())
    user_id = unique_id("user")
    claims = {"sub": user_id, "iat": now, "exp": now + 300, "rooms": [room["id"]]}
    granted = jwt.encode(claims, SECRET, "HS256")
    async with open_socket(server, room["id"], user_id, f"token={granted}") as ws:
        await ws.send(json.dumps({"content": "granted by the app"}))
        [message] = await receive_messages(ws, 1)
    assert message["user_id"] == user_id
    read = await http.get(f"/rooms/{room['id']}/messages", headers=bearer(granted))
    assert read.status_code == 200
    bad = jwt.encode({**claims, "rooms": "not-a-list"}, SECRET, "HS256")
    assert (await http.get("/rooms", headers=bearer(bad))).status_code == 401


@pytest.mark.server
async def test_private_rooms_need_authentication(tmp_path: Path) -> None:
    server = start_server(tmp_path)
    try:
        async with httpx.AsyncClient(base_url=server.http_url, timeout=15) as http:
            refused = await http.post("/rooms", json={"name": "x", "private": True})
            assert (refused.status_code, refused.json()["code"]) == (400, "AUTH_REQUIRED")
    finally:
        server.stop()


async def test_a_removal_reaches_the_other_instance_within_a_second(
    tmp_path: Path, postgres_url: str
) -> None:
    env = {
        **AUTH,
        "DATABASE_URL": postgres_url,
        "REDIS_URL": REDIS_TEST_URL,
        "REDIS_PREFIX": unique_id("test"),
    }
    first, second = start_instances(tmp_path, env)
    try:
        async with httpx.AsyncClient(base_url=first.http_url, timeout=15) as http:
            alice, bob = await new_user(http, "Alice"), await new_user(http, "Bob")
            room = await private_room(http, alice)
            url = f"/rooms/{room['id']}/members/{bob['id']}"
            await http.put(url, headers=bearer(alice["token"]))
            async with open_socket(second, room["id"], bob["id"], f"token={bob['token']}") as ws:
                await ws.send(json.dumps({"type": "ping"}))
                await asyncio.wait_for(ws.recv(), 5)
                assert (await http.delete(url, headers=bearer(alice["token"]))).status_code == 204
                answered = time.monotonic()
                with pytest.raises(ConnectionClosed) as closed:
                    while True:
                        await asyncio.wait_for(ws.recv(), 5)
                within(
                    time.monotonic() - answered, 3.0, "removed member closed on the other instance"
                )
            assert closed.value.rcvd is not None and closed.value.rcvd.code == 4403
    finally:
        first.stop()
        second.stop()
