"""Schema migrations: `quartchat migrate` on SQLite and PostgreSQL, twice is harmless."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import asyncpg
import pytest

from tests.support import run_script


def migrate(database_url: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "quartchat.cli", "migrate"],
        cwd=cwd,
        env={**os.environ, "DATABASE_URL": database_url},
        capture_output=True,
        text=True,
        timeout=60,
    )


async def test_migrate_postgres_twice(postgres_url: str, tmp_path: Path) -> None:
    for _ in range(2):
        result = migrate(postgres_url, tmp_path)
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
        result = migrate(url, tmp_path)
        assert result.returncode == 0, result.stderr
    assert "schema is up to date" in result.stdout


_PRINT_PRAGMA = """
import asyncio, sys
from tortoise import connections
from quartchat import db

async def main() -> None:
    await db.connect(sys.argv[1])
    rows = await connections.get("default").execute_query_dict(f"PRAGMA {sys.argv[2]}")
    print(rows[0][sys.argv[2]])
    await db.disconnect()

asyncio.run(main())
"""


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
    printed = run_script(_PRINT_PRAGMA, url, pragma, cwd=tmp_path)
    assert int(printed.split()[-1]) == expected
