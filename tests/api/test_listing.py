"""`GET /users` and `GET /rooms` a page at a time, among thousands, through a real server;
and the per-address budget of expensive reads."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support import (
    RunningServer,
    create_postgres_database,
    create_room,
    drop_postgres_database,
    run_script,
    served,
    start_server,
    unique_id,
)

SEEDED = 3000


@pytest.fixture(name="seeded", scope="module", params=["sqlite", "postgres"])
async def _seeded(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[RunningServer]:
    workdir = tmp_path_factory.mktemp("listing")
    postgres = await create_postgres_database() if request.param == "postgres" else None
    url = postgres or f"sqlite://{workdir / 'chat.sqlite3'}"
    run_script("seed_users", url, str(SEEDED), cwd=workdir)
    server = start_server(workdir, env={"DATABASE_URL": url})
    yield server
    server.stop()
    if postgres:
        await drop_postgres_database(postgres)


@pytest.fixture(name="client")
async def _client(seeded: RunningServer) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=seeded.http_url, timeout=30) as http:
        yield http


def next_url(response: httpx.Response) -> str | None:
    match = re.fullmatch(r'<([^>]+)>; rel="next"', response.headers.get("link", ""))
    return match.group(1) if match else None


async def test_every_user_once_in_order_following_next_links(client: httpx.AsyncClient) -> None:
    first = await client.get("/users")
    assert first.status_code == 200
    assert len(first.json()) == 100  # the default page
    users: list[dict[str, Any]] = []
    url: str | None = "/users?limit=500"
    pages = 0
    while url:
        response = await client.get(url)
        assert response.status_code == 200, response.text
        page = response.json()
        assert len(page) <= 500
        users.extend(page)
        url = next_url(response)
        pages += 1
    assert pages == 7  # 3001 users
    ids = [user["id"] for user in users]
    assert len(ids) == len(set(ids)) == SEEDED + 1
    keys = [(user["created_at"], user["id"]) for user in users]
    assert keys == sorted(keys)
    assert users[:100] == first.json()


async def test_limit_and_cursor_are_checked(client: httpx.AsyncClient) -> None:
    for query in ("limit=501", "limit=0", "limit=x"):
        response = await client.get(f"/users?{query}")
        assert (response.status_code, response.json()["code"]) == (400, "INVALID_REQUEST")
    for after in ("no-such-user", "x" * 65, "a%00b", ""):
        response = await client.get(f"/users?after={after}")
        assert (response.status_code, response.json()["code"]) == (400, "INVALID_AFTER")
    response = await client.get("/users?q=a%00")
    assert (response.status_code, response.json()["code"]) == (400, "INVALID_REQUEST")


async def test_search_finds_a_user_among_thousands(client: httpx.AsyncClient) -> None:
    found = await client.get("/users", params={"q": "zOë 100%_"})
    assert [user["id"] for user in found.json()] == ["odd-one"]
    assert next_url(found) is None
    # `%` and `_` are literal, not wildcards
    assert (await client.get("/users", params={"q": "Seeded 1_"})).json() == []
    # Names in name order (ignoring case), ties by id; "Seeded 1", "Seeded 10"...
    by_name = await client.get("/users", params={"q": "seeded 29", "limit": 5})
    expected = ["Seeded 29", *(f"Seeded 29{i}" for i in range(10))]
    expected += [f"Seeded {n}" for n in range(2900, 3000)]
    names = [user["username"] for user in by_name.json()]
    url = next_url(by_name)
    while url:
        following = await client.get(url)
        names += [user["username"] for user in following.json()]
        url = next_url(following)
    assert names == sorted(expected)
    # The user whose id is `q` (ignoring case) comes first, then the names.
    by_id = await client.get("/users", params={"q": "SEED-00029", "limit": 2})
    assert [user["id"] for user in by_id.json()] == ["seed-00029"]
    assert next_url(by_id) is None
    await client.post("/users", json={"id": "seeded", "username": "Seeded 2999"})
    both = await client.get("/users", params={"q": "Seeded", "limit": 2})
    assert [user["id"] for user in both.json()] == ["seeded", "seed-00000"]
    rest = await client.get(next_url(both) or "")
    assert [user["id"] for user in rest.json()] == ["seed-00001", "seed-00010"]


async def test_rooms_page_like_users(client: httpx.AsyncClient) -> None:
    made = [await create_room(client, f"Paged {i}") for i in range(3)]
    first = await client.get("/rooms", params={"limit": 2})
    assert first.json() == made[:2]
    assert next_url(first) == f"/rooms?limit=2&after={made[1]['id']}"
    second = await client.get(next_url(first) or "")
    assert second.json() == made[2:]
    assert next_url(second) is None


async def test_rooms_are_searched_by_name_or_id_ignoring_case(client: httpx.AsyncClient) -> None:
    name = unique_id("Atrium")
    made = [await create_room(client, f"{name} {i}") for i in range(3)]
    await create_room(client, f"Not {name}")
    first = await client.get("/rooms", params={"q": name.upper(), "limit": 2})
    assert first.json() == made[:2]
    # JSON's false, not SQLite's 0 (which Python's == takes for False).
    assert [room["private"] for room in first.json()] == [False, False]
    assert all(type(room["private"]) is bool for room in first.json())
    following = await client.get(next_url(first) or "")
    assert following.json() == made[2:]
    assert next_url(following) is None
    by_id = await client.get("/rooms", params={"q": made[1]["id"].upper()})
    assert by_id.json() == [made[1]]


@pytest.mark.server
async def test_reads_have_a_budget_per_address(tmp_path: Path) -> None:
    limits = {"REST_READS_PER_MINUTE": "60", "REST_READS_BURST": "3"}
    async with served(tmp_path, env=limits) as (_, http):
        room = await create_room(http)
        reads = ["/users", "/rooms", f"/rooms/{room['id']}/messages"]
        for path in reads:
            assert (await http.get(path)).status_code == 200
        for path in reads:
            refused = await http.get(path)
            assert refused.status_code == 429
            assert refused.json()["code"] == "RATE_LIMITED"
            assert int(refused.headers["retry-after"]) >= 1
        # Cheap reads and writes have budgets of their own.
        assert (await http.get(f"/rooms/{room['id']}")).status_code == 200
        assert (await http.get("/health")).status_code == 200
        assert (await http.post("/users", json={"username": "still"})).status_code == 201


@pytest.mark.server
async def test_a_search_costs_one_read(tmp_path: Path) -> None:
    # An index serves it, so it costs what a page of the plain list does.
    limits = {"REST_READS_PER_MINUTE": "60", "REST_READS_BURST": "3"}
    async with served(tmp_path, env=limits) as (_, http):
        for path in ("/users", "/rooms", "/users"):
            assert (await http.get(path, params={"q": "nobody"})).status_code == 200
        refused = await http.get("/rooms", params={"q": "nobody"})
        assert (refused.status_code, refused.json()["code"]) == (429, "RATE_LIMITED")
