"""A PostgreSQL outage: clear errors meanwhile, nothing shown that is not stored, and
recovery without a restart."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.support import (
    PrivatePostgres,
    RunningServer,
    create_room,
    create_user,
    open_socket,
    receive_messages,
    receive_type,
    start_server,
)


@pytest.fixture(name="postgres")
def _postgres() -> Iterator[PrivatePostgres]:
    postgres = PrivatePostgres()
    yield postgres
    postgres.remove()


async def wait_for_health(http: httpx.AsyncClient, status: int, timeout: float = 30) -> None:
    async with asyncio.timeout(timeout):
        while (await http.get("/health")).status_code != status:  # noqa: ASYNC110
            await asyncio.sleep(0.2)


async def test_outage_is_reported_and_recovered_from(
    postgres: PrivatePostgres, tmp_path: Path
) -> None:
    server: RunningServer = start_server(tmp_path, env={"DATABASE_URL": postgres.url})
    try:
        async with httpx.AsyncClient(base_url=server.http_url, timeout=15) as http:
            room = await create_room(http)
            alice, bob = await create_user(http, "Alice"), await create_user(http, "Bob")
            url = f"/rooms/{room['id']}/messages"
            async with (
                open_socket(server, room["id"], alice["id"]) as on_alice,
                open_socket(server, room["id"], bob["id"]) as on_bob,
            ):
                await on_alice.send('{"content": "before"}')
                await receive_messages(on_bob, 1)

                postgres.stop()
                health = await http.get("/health")
                assert health.status_code == 503
                assert health.json()["database"] == "unavailable"
                posted = await http.post(url, json={"user_id": alice["id"], "content": "lost"})
                assert (posted.status_code, posted.json()["code"]) == (503, "UNAVAILABLE")
                await on_alice.send(json.dumps({"content": "during the outage"}))
                error = await receive_type(on_alice, "error", timeout=15)
                assert error["code"] == "UNAVAILABLE" and error["id"]
                with pytest.raises(TimeoutError):
                    await receive_type(on_bob, "message", timeout=1)  # nothing unstored shown

                postgres.start()
                await wait_for_health(http, 200)
                await on_alice.send('{"content": "after"}')
                [after] = await receive_messages(on_bob, 1)
                assert after["content"] == "after"
            stored = (await http.get(url)).json()
            assert [m["content"] for m in stored] == ["before", "after"]
            assert [m["seq"] for m in stored] == [1, 2]
    finally:
        server.stop()
