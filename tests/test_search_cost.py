"""Searches (`GET /users?q=`, `GET /rooms?q=`) cost what they return at any table size,
through a real server on SQLite and PostgreSQL with 200,000 users: one address
searching as fast as its read budget allows leaves a neighbour's round trip alone.
Before, a search that matched nothing read the whole table (0.7-1.3 s at a million
users on SQLite) on the connection that commits everyone's messages."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator

import asyncpg
import httpx
import pytest

from quartchat.api.access import visible_rooms
from quartchat.rooms.auth import Identity
from quartchat.storage.search import _names, _same_id
from tests.support import (
    RunningServer,
    create_postgres_database,
    drop_postgres_database,
    migrate_database,
    start_server,
)
from tests.support.echo_timer import echo_timer

pytestmark = pytest.mark.slow  # 15-20 s a backend: seeds rooms and users to search

USERS = 200_000
FLOOR = 0.25  # see tests/test_history_costs.py


@pytest.fixture(name="server", scope="module", params=["sqlite", "postgres"])
async def _server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[tuple[RunningServer, str]]:
    workdir = tmp_path_factory.mktemp("search")
    postgres = await create_postgres_database() if request.param == "postgres" else None
    url = postgres or f"sqlite://{workdir / 'chat.sqlite3'}"
    migrated = migrate_database(url, workdir)
    assert migrated.returncode == 0, migrated.stdout + migrated.stderr
    if postgres:
        connection = await asyncpg.connect(postgres)
        await connection.execute(
            "INSERT INTO users (id, username, created_at) SELECT 'seed-' || n, "
            "'Seeded user ' || n, now() FROM generate_series(0, $1 - 1) AS n",
            USERS,
        )
        await connection.execute("ANALYZE users")
        await connection.close()
    else:
        with sqlite3.connect(workdir / "chat.sqlite3") as connection:
            connection.executemany(
                "INSERT INTO users (id, username, created_at) VALUES (?, ?, ?)",
                (
                    (f"seed-{n}", f"Seeded user {n}", "2026-01-01 00:00:00+00:00")
                    for n in range(USERS)
                ),
            )
    # The default read budget: the searcher stays within it.
    env = {"DATABASE_URL": url, "REST_READS_PER_MINUTE": "600", "REST_READS_BURST": "100"}
    server = start_server(workdir, env=env)
    yield server, url
    server.stop()
    if postgres:
        await drop_postgres_database(postgres)


async def test_searches_within_budget_leave_the_neighbour_alone(
    server: tuple[RunningServer, str],
) -> None:
    running, _ = server
    outcomes: list[tuple[str, int, int]] = []

    async def search(http: httpx.AsyncClient, path: str, q: str) -> None:
        response = await http.get(path, params={"q": q, "limit": 100})
        outcomes.append((q, response.status_code, len(response.json())))

    async with httpx.AsyncClient(base_url=running.http_url, timeout=30) as http:
        async with echo_timer(running, http) as timer:
            await timer.during("calm", 3)
            timer.phase = "attacked"
            searches = []
            for index in range(50):  # 10 a second for 5 s: inside the burst of 100
                path, q = ("/users", "nobody") if index % 2 else ("/rooms", "nothing")
                if index % 5 == 0:
                    path, q = "/users", f"Seeded user {index}"
                searches.append(asyncio.create_task(search(http, path, q)))
                await asyncio.sleep(0.1)
            await asyncio.gather(*searches)
        calm, attacked = timer.p90("calm"), timer.p90("attacked")
        assert attacked <= max(5 * calm, FLOOR), (calm, attacked)
    assert len(outcomes) == 50
    for q, status, count in outcomes:
        digits = q.removeprefix("Seeded user ")
        matching = sum(str(n).startswith(digits) for n in range(USERS)) if digits != q else 0
        assert (status, count) == (200, min(100, matching)), q


async def test_search_plans_walk_their_indexes(server: tuple[RunningServer, str]) -> None:
    _, url = server
    postgres = not url.startswith("sqlite")
    columns = "id, username, created_at"
    # A user's search of rooms also asks which private rooms it may see.
    rooms_seen = visible_rooms(Identity(user_id="seed-1", rooms=frozenset({"room-a"})))
    queries = [
        _same_id(postgres, "users", columns, "nobody", None, 100, None),
        _names(
            postgres,
            "users",
            "username",
            columns,
            "seeded user 5",
            ("seeded user 5", "seed-5"),
            100,
            None,
        ),
        _names(
            postgres, "rooms", "name", "id, name, created_at, private", "r", None, 100, rooms_seen
        ),
    ]
    if not postgres:
        with sqlite3.connect(url.removeprefix("sqlite://")) as connection:
            for query in queries:
                plan = " ".join(
                    row[3]
                    for row in connection.execute(f"EXPLAIN QUERY PLAN {query.text}", query.params)
                )
                assert "USING INDEX idx_" in plan and "_search" in plan, plan
                assert "SCAN" not in plan and "TEMP B-TREE" not in plan, plan
        return
    connection = await asyncpg.connect(url)
    try:
        for query in queries:
            rows = await connection.fetch(f"EXPLAIN {query.text}", *query.params)
            plan = "\n".join(row[0] for row in rows)
            assert "Index Scan using idx_" in plan and "Sort" not in plan, plan
    finally:
        await connection.close()
