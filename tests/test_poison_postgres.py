"""Poison input on PostgreSQL, through a real server: what the database cannot store is
refused at the edge as the client's mistake (never a 503 "database not answering"), and
one client's poison never costs another client a message or a handshake."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Iterator
from typing import Any

import asyncpg
import httpx
import pytest
from websockets.asyncio.client import ClientConnection
from websockets.exceptions import ConnectionClosed

from tests.support import (
    RunningServer,
    create_postgres_database,
    create_room,
    create_user,
    drop_postgres_database,
    open_socket,
    receive_type,
    start_server,
    stored_messages,
    unique_id,
)

SENDERS = 20
PER_SENDER = 15


@pytest.fixture(scope="module", name="postgres_url")
async def _postgres_url() -> AsyncIterator[str]:
    url = await create_postgres_database()
    yield url
    await drop_postgres_database(url)


@pytest.fixture(scope="module", name="pg_server")
def _pg_server(
    postgres_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RunningServer]:
    server = start_server(tmp_path_factory.mktemp("pg"), env={"DATABASE_URL": postgres_url})
    yield server
    server.stop()


@pytest.fixture(name="pg_http")
async def _pg_http(pg_server: RunningServer) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=pg_server.http_url, timeout=30) as client:
        yield client


async def errors_until_quiet(ws: ClientConnection, quiet: float = 2.0) -> list[dict[str, Any]]:
    """The error frames a socket receives until it has been quiet for `quiet` seconds."""
    errors: list[dict[str, Any]] = []
    while True:
        try:
            frame = await receive_type(ws, "error", timeout=quiet)
        except TimeoutError:
            return errors
        errors.append(frame)


async def test_an_attacker_among_twenty_senders_costs_them_no_message(
    pg_server: RunningServer, pg_http: httpx.AsyncClient
) -> None:
    room = await create_room(pg_http)
    senders = [await create_user(pg_http, f"Sender {index}") for index in range(SENDERS)]
    attacker = await create_user(pg_http, "Mallory")
    sockets = [open_socket(pg_server, room["id"], user["id"]) for user in senders]
    async with open_socket(pg_server, room["id"], attacker["id"]) as evil:
        connections = [await socket.__aenter__() for socket in sockets]
        try:

            async def send(ws: ClientConnection, index: int) -> None:
                for i in range(PER_SENDER):
                    await ws.send(json.dumps({"content": f"{index}:{i}"}))

            async def poison() -> None:
                frames = [
                    json.dumps({"content": "nul \u0000 inside"}),  # sent as the escape \u0000
                    '{"content": "lone \\ud800 surrogate"}',
                    json.dumps({"content": "bell \u0007"}),
                ]
                for i in range(PER_SENDER * 2):
                    await evil.send(frames[i % 3])

            await asyncio.gather(poison(), *(send(ws, i) for i, ws in enumerate(connections)))
            attacker_errors = await errors_until_quiet(evil)
            assert len(attacker_errors) == PER_SENDER * 2
            assert {error["code"] for error in attacker_errors} <= {
                "INVALID_CONTENT",
                "INVALID_JSON",
            }
            for ws in connections:
                assert await errors_until_quiet(ws, quiet=0.1) == []
        finally:
            for socket in sockets:
                await socket.__aexit__(None, None, None)
    stored = await stored_messages(pg_http, room["id"])
    assert sorted(message["content"] for message in stored) == sorted(
        f"{index}:{i}" for index in range(SENDERS) for i in range(PER_SENDER)
    )


@pytest.mark.parametrize("bad", ["nul \\u0000 inside", "lone \\ud800 surrogate"])
async def test_text_postgresql_cannot_store_is_the_clients_mistake(
    pg_server: RunningServer, pg_http: httpx.AsyncClient, bad: str
) -> None:
    headers = {"content-type": "application/json"}
    for url, key in (("/users", "username"), ("/rooms", "name")):
        response = await pg_http.post(url, content=f'{{"{key}": "{bad}"}}', headers=headers)
        assert (response.status_code, response.json()["code"]) == (400, "INVALID_REQUEST")
    room, user = await create_room(pg_http), await create_user(pg_http)
    body = f'{{"user_id": "{user["id"]}", "content": "{bad}"}}'
    response = await pg_http.post(f"/rooms/{room['id']}/messages", content=body, headers=headers)
    assert (response.status_code, response.json()["code"]) == (400, "INVALID_CONTENT")
    body = f'{{"user_id": "x{bad}", "content": "hi"}}'
    response = await pg_http.post(f"/rooms/{room['id']}/messages", content=body, headers=headers)
    assert (response.status_code, response.json()["code"]) == (400, "INVALID_REQUEST")
    for path in ("/rooms/x%00", "/users/x%00", "/rooms/x%00/messages", "/rooms/%ED%A0%80"):
        response = await pg_http.get(path)
        assert response.status_code == 404, (path, response.text)
    response = await pg_http.get(f"/rooms/{room['id']}/messages", params={"since": "x\x00"})
    assert (response.status_code, response.json()["code"]) == (400, "INVALID_SINCE")
    response = await pg_http.get(f"/rooms/{room['id']}/messages", params={"after": "x\x00"})
    assert (response.status_code, response.json()["code"]) == (400, "INVALID_AFTER")
    for room_id, user_id in ((room["id"], "x%00"), ("x%00", user["id"])):
        async with open_socket(pg_server, room_id, user_id) as ws:
            with pytest.raises(ConnectionClosed):
                await ws.recv()
        assert ws.close_code == 4404
    async with open_socket(pg_server, room["id"], user["id"], "after=x%00") as ws:
        assert (await receive_type(ws, "error"))["code"] == "INVALID_AFTER"
    assert "UNAVAILABLE" not in pg_server.log()


async def test_a_malformed_handshake_does_not_fail_its_uncached_neighbours(
    pg_server: RunningServer, pg_http: httpx.AsyncClient, postgres_url: str
) -> None:
    room = await create_room(pg_http)
    # Written behind the server's back, so that no handshake finds them in its cache.
    user_ids = [unique_id("uncached") for _ in range(15)]
    connection = await asyncpg.connect(postgres_url)
    try:
        await connection.executemany(
            "INSERT INTO users (id, username, created_at) VALUES ($1, $2, now())",
            [(user_id, f"Uncached {user_id}") for user_id in user_ids],
        )
    finally:
        await connection.close()

    async def handshake(user_id: str) -> int | None:
        """None when the socket opened and answered a ping, else its close code."""
        try:
            async with open_socket(pg_server, room["id"], user_id) as ws:
                await ws.send('{"type": "ping"}')
                await receive_type(ws, "pong", timeout=15)
        except ConnectionClosed as closed:
            return closed.rcvd.code if closed.rcvd else None
        return None

    bad = ["x%00", "y" * 65, "%ED%A0%80"]
    outcomes = await asyncio.gather(*(handshake(user_id) for user_id in [*bad, *user_ids]))
    assert outcomes == [4404] * len(bad) + [None] * len(user_ids)
