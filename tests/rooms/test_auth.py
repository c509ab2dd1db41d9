"""Optional authentication through a real server with AUTH_SECRET set."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest
from websockets.exceptions import ConnectionClosed

from tests.support import (
    RunningServer,
    open_socket,
    receive_messages,
    receive_type,
    start_server,
    unique_id,
)

TOKEN_TTL = 3


@pytest.fixture(name="secured", scope="module")
def _secured(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    env = {
        "AUTH_SECRET": "test-secret-d41d8cd98f00b204e9800998ecf8427e",
        "AUTH_TOKEN_TTL": str(TOKEN_TTL),
    }
    server = start_server(tmp_path_factory.mktemp("auth"), env=env)
    yield server
    server.stop()


@pytest.fixture(name="client")
async def _client(secured: RunningServer) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=secured.http_url) as http:
        yield http


async def new_user(http: httpx.AsyncClient, name: str) -> dict[str, Any]:
    response = await http.post("/users", json={"username": name, "id": unique_id("user")})
    assert response.status_code == 201
    user: dict[str, Any] = response.json()
    assert user["token"]
    return user


def bearer(user: dict[str, Any]) -> dict[str, str]:
    return {"Authorization": f"Bearer {user['token']}"}


async def close_code(ws: Any) -> tuple[int, str]:
    with pytest.raises(ConnectionClosed) as closed:
        await asyncio.wait_for(ws.recv(), 5)
    assert closed.value.rcvd is not None
    return closed.value.rcvd.code, closed.value.rcvd.reason


async def test_rest_writes_need_the_right_bearer(client: httpx.AsyncClient) -> None:
    alice, bob = await new_user(client, "Alice"), await new_user(client, "Bob")
    assert (await client.post("/rooms", json={"name": "R"})).status_code == 401
    room = await client.post("/rooms", json={"name": "R"}, headers=bearer(alice))
    assert room.status_code == 201
    url = f"/rooms/{room.json()['id']}/messages"
    body = {"user_id": alice["id"], "content": "hi"}
    missing = await client.post(url, json=body)
    assert (missing.status_code, missing.json()["code"]) == (401, "UNAUTHORIZED")
    impersonation = await client.post(url, json=body, headers=bearer(bob))
    assert (impersonation.status_code, impersonation.json()["code"]) == (403, "FORBIDDEN")
    forged = await client.post(url, json=body, headers={"Authorization": "Bearer forged.token"})
    assert (forged.status_code, forged.json()["code"]) == (401, "INVALID_TOKEN")
    assert (await client.post(url, json=body, headers=bearer(alice))).status_code == 201
    history = await client.get(url, headers=bearer(bob))  # any user may read
    assert [m["content"] for m in history.json()] == ["hi"]


async def test_reads_need_any_users_bearer(client: httpx.AsyncClient) -> None:
    alice, bob = await new_user(client, "Alice"), await new_user(client, "Bob")
    room = (await client.post("/rooms", json={"name": "R"}, headers=bearer(alice))).json()
    reads = [
        "/users",
        f"/users/{alice['id']}",
        "/rooms",
        f"/rooms/{room['id']}",
        f"/rooms/{room['id']}/messages",
        f"/rooms/{room['id']}/presence",
    ]
    for path in reads:
        missing = await client.get(path)
        assert (missing.status_code, missing.json()["code"]) == (401, "UNAUTHORIZED"), path
        forged = await client.get(path, headers={"Authorization": "Bearer forged.token"})
        assert (forged.status_code, forged.json()["code"]) == (401, "INVALID_TOKEN"), path
        assert (await client.get(path, headers=bearer(bob))).status_code == 200, path
    # What every client needs before it has a token stays open.
    assert (await client.get("/health")).status_code == 200
    assert (await client.get("/openapi.json")).status_code == 200


async def test_sockets_need_their_users_token(
    secured: RunningServer, client: httpx.AsyncClient
) -> None:
    alice, bob = await new_user(client, "Alice"), await new_user(client, "Bob")
    room = (await client.post("/rooms", json={"name": "R"}, headers=bearer(alice))).json()
    async with open_socket(secured, room["id"], alice["id"]) as anonymous:
        code, reason = await close_code(anonymous)
        assert code == 4401 and "token" in reason
    query = f"token={bob['token']}"
    async with open_socket(secured, room["id"], alice["id"], query=query) as wrong:
        assert (await close_code(wrong))[0] == 4401
    async with open_socket(secured, room["id"], alice["id"], query=f"token={alice['token']}") as ws:
        await ws.send(json.dumps({"content": "authenticated"}))
        [message] = await receive_messages(ws, 1)
        assert message["user_id"] == alice["id"]


async def test_a_socket_may_offer_its_token_as_a_subprotocol_kept_out_of_the_url(
    secured: RunningServer, client: httpx.AsyncClient
) -> None:
    alice, bob = await new_user(client, "Alice"), await new_user(client, "Bob")
    room = (await client.post("/rooms", json={"name": "R"}, headers=bearer(alice))).json()
    offered = ["quartchat", f"token.{alice['token']}"]
    async with open_socket(secured, room["id"], alice["id"], subprotocols=offered) as ws:
        assert ws.subprotocol == "quartchat"  # one the client offered, as browsers require
        await ws.send(json.dumps({"content": "authenticated by subprotocol"}))
        [message] = await receive_messages(ws, 1)
        assert message["user_id"] == alice["id"]
    # The refusals answer the subprotocol too: a browser would otherwise see no close code.
    for token in (bob["token"], "forged.token"):
        refused = ["quartchat", f"token.{token}"]
        async with open_socket(secured, room["id"], alice["id"], subprotocols=refused) as wrong:
            assert wrong.subprotocol == "quartchat"
            assert (await close_code(wrong))[0] == 4401
    async with open_socket(secured, room["id"], alice["id"], subprotocols=["quartchat"]) as none:
        code, reason = await close_code(none)
        assert code == 4401 and "token.<TOKEN>" in reason
    # The subprotocol's token wins over a query's.
    query = f"token={bob['token']}"
    async with open_socket(
        secured, room["id"], alice["id"], query=query, subprotocols=offered
    ) as both:
        await both.send('{"type": "ping"}')
        await receive_type(both, "pong")
    await asyncio.sleep(0.3)  # the access log is written as each handshake ends
    log = secured.log()
    assert f"/ws/{room['id']}/{alice['id']}" in log  # the handshakes were logged
    assert alice["token"] not in log


async def test_tokens_expire_and_can_be_renewed(
    secured: RunningServer, client: httpx.AsyncClient
) -> None:
    alice = await new_user(client, "Alice")
    renewed = await client.post(f"/users/{alice['id']}/token", headers=bearer(alice))
    assert renewed.status_code == 200 and renewed.json()["user_id"] == alice["id"]
    await asyncio.sleep(TOKEN_TTL + 1.5)
    expired = await client.post("/rooms", json={"name": "R"}, headers=bearer(alice))
    assert (expired.status_code, expired.json()["code"]) == (401, "TOKEN_EXPIRED")
    room = "any-room"
    async with open_socket(secured, room, alice["id"], query=f"token={alice['token']}") as ws:
        code, reason = await close_code(ws)
        assert code == 4401 and "expired" in reason


async def test_without_a_secret_nothing_is_required(http: httpx.AsyncClient) -> None:
    user = (await http.post("/users", json={"username": "Open"})).json()
    assert "token" not in user
    assert (await http.post("/rooms", json={"name": "Open room"})).status_code == 201
    renewal = await http.post(f"/users/{user['id']}/token")
    assert (renewal.status_code, renewal.json()["code"]) == (404, "AUTH_DISABLED")
    assert (await http.get(f"/users/{user['id']}")).status_code == 200
