"""Schema migrations: `quartchat migrate` on SQLite and PostgreSQL, twice is harmless."""

from __future__ import annotations

from pathlib import Path

import asyncpg
import pytest

from tests.support import migrate_database, run_script


async def test_migrate_postgres_twice(postgres_url: str, tmp_path: Path) -> None:
    for _ in range(2):
        result = migrate_database(postgres_url, tmp_path)
        assert result.returncode == 0, result.stderr
    connection = await asyncpg.connect(postgres_url)
    try:
        tables = {
            row["tablename"]
            for row in await connection.fetch(
                "SELECT tablename FROM pg_tables WHERE schemaname = 'public'"
            )
        }
    finally:
        await connection.close()
    assert {"users", "rooms", "messages"} <= tables


def test_migrate_sqlite_twice(tmp_path: Path) -> None:
    url = f"sqlite://{tmp_path / 'fresh.sqlite3'}"
    for _ in range(2):
        result = migrate_database(url, tmp_path)
        assert result.returncode == 0, result.stderr
    assert "schema is up to date" in result.stdout


@pytest.mark.parametrize(
    ("pragma", "query", "expected"),
    [
        # A write-ahead log that keeps its size between checkpoints (ours), unless the URL
        # sets its own limit.
        ("journal_size_limit", "", 32 * 1024 * 1024),
        ("journal_size_limit", "?journal_size_limit=65536", 65536),
        # Every commit synced to disk (FULL), unless the URL trades that away.
        ("synchronous", "", 2),
        ("synchronous", "?synchronous=NORMAL", 1),
    ],
    ids=["wal-limit-ours", "wal-limit-the-url-s", "sync-full-by-default", "sync-normal-from-url"],
)
def test_sqlite_pragmas_are_ours_unless_the_url_sets_them(
    tmp_path: Path, pragma: str, query: str, expected: int
) -> None:
    url = f"sqlite://{tmp_path / 'pragmas.sqlite3'}{query}"
    printed = run_script("print_pragma", url, pragma, cwd=tmp_path)
    assert int(printed.split()[-1]) == expected


def migrate_to(database_url: str, name: str, cwd: Path) -> None:
    run_script("migrate_to", database_url, name, cwd=cwd)


async def test_private_rooms_migrate_sqlite_with_data(tmp_path: Path) -> None:
    await upgrade_with_data(f"sqlite://{tmp_path / 'old.sqlite3'}", tmp_path)


async def test_private_rooms_migrate_postgres_with_data(postgres_url: str, tmp_path: Path) -> None:
    await upgrade_with_data(postgres_url, tmp_path)


async def upgrade_with_data(url: str, tmp_path: Path) -> None:
    """0003 adds privacy and members to a database that already holds rooms, users and
    messages: every room stays public, nothing is lost."""
    migrate_to(url, "0002_list_indexes", tmp_path)
    inserts = [
        "INSERT INTO users (id, username, created_at) VALUES ('u1', 'Old', CURRENT_TIMESTAMP)",
        "INSERT INTO rooms (id, name, created_at, last_seq) "
        "VALUES ('r1', 'Old room', CURRENT_TIMESTAMP, 1)",
        "INSERT INTO messages (id, room_id, user_id, content, created_at, seq) VALUES "
        "('6f1c4c5e-0000-4000-8000-000000000001', 'r1', 'u1', 'kept', CURRENT_TIMESTAMP, 1)",
    ]
    await run_sql(url, inserts)
    result = migrate_database(url, tmp_path)
    assert result.returncode == 0, result.stderr
    [room] = await run_sql(url, ["SELECT id, private, created_by FROM rooms"])
    assert (room[0], bool(room[1]), room[2]) == ("r1", False, None)
    [message] = await run_sql(url, ["SELECT content FROM messages"])
    assert message[0] == "kept"
    assert await run_sql(url, ["SELECT room_id, user_id FROM room_members"]) == []


async def run_sql(url: str, statements: list[str]) -> list[tuple[object, ...]]:
    """Run statements with the plain driver; the last one's rows."""
    rows: list[tuple[object, ...]] = []
    if url.startswith("sqlite://"):
        import sqlite3

        with sqlite3.connect(url.removeprefix("sqlite://")) as connection:
            for statement in statements:
                rows = [tuple(row) for row in connection.execute(statement).fetchall()]
        return rows
    connection = await asyncpg.connect(url)
    try:
        for statement in statements:
            rows = [tuple(row) for row in await connection.fetch(statement)]
    finally:
        await connection.close()
    return rows
