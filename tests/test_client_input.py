"""Bad input from a client, through a real server: always a 4xx with a JSON error (or an
error frame, or a documented close code), never a server error."""

from __future__ import annotations

import json

import httpx
import pytest
from websockets.exceptions import ConnectionClosed

from tests.support import (
    RunningServer,
    create_room,
    create_user,
    open_socket,
    receive_messages,
    receive_type,
)

LONG_ID = "x" * 65
CALENDAR_EDGES = ["0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-01:00"]


async def post_json(http: httpx.AsyncClient, url: str, body: str) -> httpx.Response:
    return await http.post(url, content=body, headers={"content-type": "application/json"})


@pytest.mark.parametrize("path", ["/rooms/{}", "/users/{}", "/rooms/{}/messages"])
@pytest.mark.parametrize("bad_id", [LONG_ID, "x%00", "x%0Ay", "%ED%A0%80", "a.b"])
async def test_a_path_id_no_row_can_have_is_404(
    http: httpx.AsyncClient, path: str, bad_id: str
) -> None:
    response = await http.get(path.format(bad_id))
    assert response.status_code == 404, response.text
    assert response.json()["code"] in {"ROOM_NOT_FOUND", "USER_NOT_FOUND"}


@pytest.mark.parametrize("depth", [2_000, 100_000])
async def test_a_deeply_nested_body_is_bad_json(http: httpx.AsyncClient, depth: int) -> None:
    for body in ("[" * depth + "]" * depth, '{"name": ' + "[" * depth + "]" * depth + "}"):
        response = await post_json(http, "/rooms", body)
        assert response.status_code == 400, response.text
        assert response.json()["code"] == "INVALID_REQUEST"


async def test_a_deeply_nested_frame_is_refused_and_the_socket_stays(
    server: RunningServer, http: httpx.AsyncClient
) -> None:
    room, user = await create_room(http), await create_user(http)
    async with open_socket(server, room["id"], user["id"]) as ws:
        await ws.send('{"content": ' + "[" * 5_000 + "]" * 5_000 + "}")
        assert (await receive_type(ws, "error"))["code"] == "INVALID_JSON"
        await ws.send('{"content": "still here"}')
        [message] = await receive_messages(ws, 1)
        assert message["content"] == "still here"


@pytest.mark.parametrize(
    "content",
    ["a\\u0000b", "lone \\ud800 surrogate", "\\udfff", "bell\\u0007", "esc\\u001b[31m", "\\u0085"],
)
async def test_content_the_database_cannot_store_or_a_control_is_invalid(
    server: RunningServer, http: httpx.AsyncClient, content: str
) -> None:
    room, user = await create_room(http), await create_user(http)
    body = f'{{"user_id": "{user["id"]}", "content": "{content}"}}'
    response = await post_json(http, f"/rooms/{room['id']}/messages", body)
    assert response.status_code == 400, response.text
    assert response.json()["code"] == "INVALID_CONTENT"
    async with open_socket(server, room["id"], user["id"]) as ws:
        await ws.send(f'{{"content": "{content}"}}')
        error = await receive_type(ws, "error")
        assert error["code"] == "INVALID_CONTENT", error
    assert (await http.get(f"/rooms/{room['id']}/messages")).json() == []


@pytest.mark.parametrize("content", ["\\u200b", "\\u200b\\u200d \\ufeff", "\\u2800\\n\\t"])
async def test_content_that_shows_nothing_is_blank(http: httpx.AsyncClient, content: str) -> None:
    room, user = await create_room(http), await create_user(http)
    body = f'{{"user_id": "{user["id"]}", "content": "{content}"}}'
    response = await post_json(http, f"/rooms/{room['id']}/messages", body)
    assert (response.status_code, response.json()["code"]) == (400, "INVALID_CONTENT")
    assert "blank" in response.json()["detail"]


async def test_content_keeps_newlines_tabs_and_bidi_text(http: httpx.AsyncClient) -> None:
    room, user = await create_room(http), await create_user(http)
    content = "line one\n\tindented \u202eright-to-left\u202c \u05e9\u05dc\u05d5\u05dd \U0001f600"
    response = await http.post(
        f"/rooms/{room['id']}/messages", json={"user_id": user["id"], "content": content}
    )
    assert response.status_code == 201, response.text
    assert response.json()["content"] == content


@pytest.mark.parametrize(
    "name",
    [
        "a\\u0000b",
        "two\\nlines",
        "tab\\there",
        "x\\ud800",
        "admin\\u202e",
        "\\u2066isolate",
        "mark\\u200f",
        "\\u200b\\u200c",
        "\\u3164",
        "para\\u2029graph",
    ],
)
@pytest.mark.parametrize("field", ["/users:username", "/rooms:name"])
async def test_names_with_controls_bidi_formatting_or_nothing_visible_are_refused(
    http: httpx.AsyncClient, name: str, field: str
) -> None:
    url, key = field.split(":")
    response = await post_json(http, url, f'{{"{key}": "{name}"}}')
    assert response.status_code == 400, response.text
    assert response.json()["code"] == "INVALID_REQUEST"
    assert key in response.json()["detail"]


async def test_names_keep_other_scripts_and_inner_zero_width_joiners(
    http: httpx.AsyncClient,
) -> None:
    for name in ("\u05e9\u05dc\u05d5\u05dd", "Zo\u00eb \U0001f469\u200d\U0001f4bb", "\u674e\u96f7"):
        user = await http.post("/users", json={"username": name})
        assert (user.status_code, user.json()["username"]) == (201, name)


async def test_a_key_given_twice_keeps_its_last_value(
    server: RunningServer, http: httpx.AsyncClient
) -> None:
    response = await post_json(http, "/users", '{"username": "first", "username": "last"}')
    assert (response.status_code, response.json()["username"]) == (201, "last")
    user, room = response.json(), await create_room(http)
    async with open_socket(server, room["id"], user["id"]) as ws:
        await ws.send('{"content": "first", "content": "last"}')
        [message] = await receive_messages(ws, 1)
        assert message["content"] == "last"


@pytest.mark.parametrize("since", CALENDAR_EDGES)
async def test_since_at_the_edges_of_the_calendar_is_invalid(
    server: RunningServer, http: httpx.AsyncClient, since: str
) -> None:
    room, user = await create_room(http), await create_user(http)
    response = await http.get(f"/rooms/{room['id']}/messages", params={"since": since})
    assert (response.status_code, response.json()["code"]) == (400, "INVALID_SINCE")
    query = httpx.QueryParams({"since": since})
    async with open_socket(server, room["id"], user["id"], str(query)) as ws:
        assert (await receive_type(ws, "error"))["code"] == "INVALID_SINCE"


async def test_the_widest_valid_since_values_are_answered(http: httpx.AsyncClient) -> None:
    room = await create_room(http)
    for since in ("0001-01-01T00:00:00Z", "9999-12-31T23:59:59.999999+00:00"):
        response = await http.get(f"/rooms/{room['id']}/messages", params={"since": since})
        assert (response.status_code, response.json()) == (200, [])


@pytest.mark.parametrize("name, code", [("since", "INVALID_SINCE"), ("after", "INVALID_AFTER")])
async def test_an_empty_since_or_after_is_invalid_over_rest_and_on_the_socket(
    server: RunningServer, http: httpx.AsyncClient, name: str, code: str
) -> None:
    room, user = await create_room(http), await create_user(http)
    response = await http.get(f"/rooms/{room['id']}/messages?{name}=")
    assert (response.status_code, response.json()["code"]) == (400, code)
    async with open_socket(server, room["id"], user["id"], f"{name}=") as ws:
        assert (await receive_type(ws, "error"))["code"] == code


async def test_since_with_after_is_invalid_replay_over_rest_and_on_the_socket(
    server: RunningServer, http: httpx.AsyncClient
) -> None:
    room, user = await create_room(http), await create_user(http)
    posted = await http.post(
        f"/rooms/{room['id']}/messages", json={"user_id": user["id"], "content": "first"}
    )
    query = f"since=2025-01-01T00:00:00Z&after={posted.json()['id']}"
    response = await http.get(f"/rooms/{room['id']}/messages?{query}")
    assert (response.status_code, response.json()["code"]) == (400, "INVALID_REPLAY")
    async with open_socket(server, room["id"], user["id"], query) as ws:
        assert (await receive_type(ws, "error"))["code"] == "INVALID_REPLAY"


@pytest.mark.parametrize("which", ["room", "user"])
@pytest.mark.parametrize("bad_id", [LONG_ID, "x%00", "x%0Ay", "%ED%A0%80"])
async def test_a_socket_url_id_no_row_can_have_closes_4404(
    server: RunningServer, http: httpx.AsyncClient, which: str, bad_id: str
) -> None:
    room, user = await create_room(http), await create_user(http)
    room_id, user_id = (bad_id, user["id"]) if which == "room" else (room["id"], bad_id)
    async with open_socket(server, room_id, user_id) as ws:
        with pytest.raises(ConnectionClosed):
            await ws.recv()
    assert ws.close_code == 4404
    assert ws.close_reason.startswith(f"{which} not found")
    # ...and the server answers the next client as usual
    async with open_socket(server, room["id"], user["id"]) as ws:
        await ws.send(json.dumps({"type": "ping"}))
        await receive_type(ws, "pong")
