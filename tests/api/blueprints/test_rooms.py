"""Rooms over REST, and presence through real sockets."""

from __future__ import annotations

import httpx

from tests.support import (
    RunningServer,
    create_room,
    create_user,
    open_socket,
    receive_type,
    unique_id,
)


async def test_create_list_and_fetch_rooms(http: httpx.AsyncClient) -> None:
    room_id = unique_id("room")
    response = await http.post("/rooms", json={"name": "Lobby", "id": room_id})
    assert response.status_code == 201
    room = response.json()
    assert room["id"] == room_id and room["name"] == "Lobby"

    assert (await http.get(f"/rooms/{room_id}")).json() == room
    listed = (await http.get("/rooms", params={"q": room_id})).json()
    assert listed == [room]


async def test_room_errors(http: httpx.AsyncClient) -> None:
    room = await create_room(http)
    duplicate = await http.post("/rooms", json={"name": "Again", "id": room["id"]})
    assert duplicate.status_code == 409
    assert duplicate.json()["code"] == "ROOM_EXISTS"
    for body in ({}, {"name": ""}, {"name": "x" * 101}, {"name": "ok", "id": "a/b"}):
        response = await http.post("/rooms", json=body)
        assert response.status_code == 400, body
        assert response.json()["code"] == "INVALID_REQUEST"
    missing = await http.get("/rooms/no-such-room")
    assert missing.status_code == 404
    assert missing.json() == {
        "code": "ROOM_NOT_FOUND",
        "detail": "room 'no-such-room' does not exist",
    }


async def test_presence_follows_sockets(server: RunningServer, http: httpx.AsyncClient) -> None:
    room = await create_room(http)
    alice = await create_user(http, "Alice")
    bob = await create_user(http, "Bob")
    assert (await http.get(f"/rooms/{room['id']}/presence")).json() == []

    async with open_socket(server, room["id"], alice["id"]) as alice_ws:
        async with open_socket(server, room["id"], bob["id"]):
            joined = await receive_type(alice_ws, "user_joined")
            assert joined["user_id"] == bob["id"]
            presence = (await http.get(f"/rooms/{room['id']}/presence")).json()
            assert sorted(presence, key=lambda p: p["username"]) == [
                {"user_id": alice["id"], "username": "Alice"},
                {"user_id": bob["id"], "username": "Bob"},
            ]
        left = await receive_type(alice_ws, "user_left")
        assert left["user_id"] == bob["id"]
        presence = (await http.get(f"/rooms/{room['id']}/presence")).json()
        assert presence == [{"user_id": alice["id"], "username": "Alice"}]


async def test_presence_of_unknown_room_is_404(http: httpx.AsyncClient) -> None:
    response = await http.get("/rooms/no-such-room/presence")
    assert response.status_code == 404
