"""The handshake's cache of usernames and rooms."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from quartchat.rooms.directory import PUBLIC, Directory, LookupCache
from tests.support import (
    create_postgres_database,
    create_room,
    create_user,
    drop_postgres_database,
    metric,
    open_socket,
    receive_type,
    start_server,
)


async def test_users_and_rooms_created_here_are_known_without_asking_the_database() -> None:
    directory = Directory()
    # Neither exists in any database the suite uses: a lookup that asked would miss.
    directory.add_user("never-stored-user", "Ghost")
    directory.add_room("never-stored-room")
    assert await directory.username("never-stored-user") == "Ghost"
    assert await directory.room_privacy("never-stored-room") == PUBLIC


async def test_the_cache_keeps_only_the_most_recent_entries() -> None:
    directory = Directory(capacity=2)
    for index in range(3):
        directory.add_user(f"cached-{index}", f"User {index}")
    assert await directory.username("cached-2") == "User 2"
    assert await directory.username("cached-1") == "User 1"


async def test_misses_asked_together_are_read_with_one_query() -> None:
    queries: list[list[str]] = []

    async def fetch(keys: list[str]) -> dict[str, str]:
        queries.append(sorted(keys))
        return {key: key.upper() for key in keys if key != "nobody"}

    cache = LookupCache(100, fetch)
    answers = await asyncio.gather(*(cache.get(key) for key in ("a", "b", "a", "nobody")))
    assert answers == ["A", "B", "A", None]
    assert queries == [["a", "b", "nobody"]]
    assert await cache.get("a") == "A" and len(queries) == 1  # kept
    assert await cache.get("nobody") is None and len(queries) == 2  # misses are not kept


async def test_a_failed_read_fails_its_askers_and_the_next_ask_reads_again() -> None:
    failing = True

    async def fetch(keys: list[str]) -> dict[str, str]:
        if failing:
            raise OSError("database down")
        return {key: "found" for key in keys}

    cache = LookupCache(100, fetch)
    results = await asyncio.gather(cache.get("a"), cache.get("b"), return_exceptions=True)
    assert all(isinstance(result, OSError) for result in results)
    failing = False
    assert await cache.get("a") == "found"


async def test_a_key_the_database_refuses_fails_only_its_own_askers() -> None:
    queries: list[list[str]] = []

    async def fetch(keys: list[str]) -> dict[str, str]:
        queries.append(sorted(keys))
        if "poison" in keys:
            raise ValueError("the database cannot read this key")  # not an outage
        return {key: key.upper() for key in keys}

    cache = LookupCache(100, fetch)
    answers = await asyncio.gather(
        *(cache.get(key) for key in ("a", "poison", "b", "c")), return_exceptions=True
    )
    assert answers[0] == "A" and answers[2:] == ["B", "C"]
    assert isinstance(answers[1], ValueError)
    assert queries[0] == ["a", "b", "c", "poison"]  # asked together first, then apart
    assert sorted(queries[1:]) == [["a"], ["b"], ["c"], ["poison"]]


async def test_an_outage_fails_a_batch_without_asking_again_key_by_key() -> None:
    queries: list[list[str]] = []

    async def fetch(keys: list[str]) -> dict[str, str]:
        queries.append(keys)
        raise ConnectionRefusedError("database down")

    cache = LookupCache(100, fetch)
    answers = await asyncio.gather(*(cache.get(key) for key in "abc"), return_exceptions=True)
    assert all(isinstance(answer, ConnectionRefusedError) for answer in answers)
    assert len(queries) == 1


async def test_ids_no_row_can_have_are_not_looked_up() -> None:
    directory = Directory()
    for bad in ("x" * 65, "x\x00", "x\ud800", "a b", ""):
        assert await directory.username(bad) is None
        assert await directory.room_privacy(bad) is None
    assert directory.queries == 0


@pytest.fixture(params=["sqlite", "postgres"], name="database_env")
async def _database_env(request: pytest.FixtureRequest) -> AsyncIterator[dict[str, str]]:
    """Environment for servers sharing one database: the SQLite file of the test's
    folder, or a fresh PostgreSQL database."""
    if request.param == "sqlite":
        yield {}
        return
    url = await create_postgres_database()
    try:
        yield {"DATABASE_URL": url}
    finally:
        await drop_postgres_database(url)


async def test_a_restarted_server_opens_known_users_sockets_without_a_query(
    tmp_path: Path, database_env: dict[str, str]
) -> None:
    first = start_server(tmp_path, env=database_env)
    try:
        async with httpx.AsyncClient(base_url=first.http_url) as http:
            room = await create_room(http)
            users = [await create_user(http, f"Reader {index}") for index in range(3)]
    finally:
        first.stop()

    restarted = start_server(tmp_path, env=database_env)  # the redeploy
    try:
        for user in users:
            async with open_socket(restarted, room["id"], user["id"]) as ws:
                await ws.send('{"type": "ping"}')
                await receive_type(ws, "pong")
        async with httpx.AsyncClient(base_url=restarted.http_url) as http:
            assert (
                metric((await http.get("/metrics")).text, "quartchat_directory_queries_total") == 0
            )
            async with open_socket(restarted, room["id"], "nobody-by-this-id") as ws:
                await ws.wait_closed()
            assert (
                metric((await http.get("/metrics")).text, "quartchat_directory_queries_total") == 1
            )
    finally:
        restarted.stop()
